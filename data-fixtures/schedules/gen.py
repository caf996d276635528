#!/usr/bin/env python3
"""Golden learning rates of transformers' warm-up schedules, per optimizer update.

For every schedule medcap-train offers (constant, linear, cosine), several
warm-up lengths and run lengths, this builds the schedule with transformers'
own function (get_constant_schedule_with_warmup, get_linear_schedule_with_warmup,
get_cosine_schedule_with_warmup), drives it the way a training loop does
(read the rate, optimizer.step(), scheduler.step()) and records the rate each
update ran at, including two updates past the end. The Rust test
crates/medcap-train/tests/schedules.rs compares medcap_train::optim::learning_rate
with every value.

Rerun from the repository root with transformers 4.57.1 next to the project's
torch 2.11.0 (`cargo xtask parity` installs it into .venv):

    .venv/bin/python data-fixtures/schedules/gen.py
"""
import json
import os
import warnings

import torch
import transformers
from transformers import (
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)

LR = 1e-3


def rates(schedule, warmup, total):
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=LR)
    if schedule == "constant":
        sched = get_constant_schedule_with_warmup(opt, warmup)
    elif schedule == "linear":
        sched = get_linear_schedule_with_warmup(opt, warmup, total)
    else:
        sched = get_cosine_schedule_with_warmup(opt, warmup, total)
    out = []
    for _ in range(total + 2):
        out.append(opt.param_groups[0]["lr"])
        param.grad = torch.ones(1)
        opt.step()
        sched.step()
    return out


def main():
    warnings.simplefilter("ignore")
    cases = []
    for schedule in ["constant", "linear", "cosine"]:
        for warmup in [0, 1, 3, 10]:
            for total in [1, 3, 8, 25]:
                cases.append(
                    {
                        "schedule": schedule,
                        "warmup_steps": warmup,
                        "total": total,
                        "lr": LR,
                        "rates": rates(schedule, warmup, total),
                    }
                )
    golden = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "cases": cases,
    }
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
