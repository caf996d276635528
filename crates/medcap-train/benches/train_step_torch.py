#!/usr/bin/env python3
"""The PyTorch side of medcap-train's training-step benchmark (benches/train_step.rs).

Runs the same optimisation step (micro-batch of 4, captioning cross-entropy, AdamW) with
transformers' BlipForConditionalGeneration on the same inputs and thread count, and prints
one JSON object: steps per second and the process's peak resident memory (MiB).
Needs torch 2.11.0 and transformers 4.57.1 (`cargo xtask setup` + `cargo xtask bench train`).

usage: train_step_torch.py MODEL_DIR INPUTS.safetensors THREADS STEPS
"""
import json
import resource
import sys
import time

import torch
from safetensors.torch import load_file
from transformers import BlipForConditionalGeneration


def main():
    model_dir, inputs_path, threads, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    model = BlipForConditionalGeneration.from_pretrained(model_dir)
    model.train()
    inputs = load_file(inputs_path)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)

    def step():
        out = model(pixel_values=inputs["pixel_values"], input_ids=inputs["input_ids"],
                    attention_mask=inputs["attention_mask"], labels=inputs["labels"])
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step()  # warm-up (allocations, optimizer state)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    elapsed = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"steps_per_second": steps / elapsed, "peak_mib": peak_mib}))


if __name__ == "__main__":
    main()
