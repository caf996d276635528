#!/usr/bin/env python3
"""Golden decoder logits of the tiny captioning checkpoint under torch.autocast on the CPU,
for medcap-model's mixed-precision parity test (crates/medcap-model/tests/blip_parity.rs,
`autocast_logits_match_torch_autocast`).

Inputs are those of gen.py's `logits_prompt` record: the five fixture images' pixel values
from golden.safetensors and the prompt "a picture of" after [DEC] (token ids 30522, 1037,
3861, 1997). The whole forward pass (vision encoder, then text decoder) runs once in fp32 and
once inside `torch.autocast("cpu", dtype=...)` for bfloat16 and float16, as a training step
of medcap-train runs it with `precision = "bf16"` or `"fp16"`. Writes autocast.safetensors:

    logits_fp32, logits_bf16, logits_fp16   [5, vocab] decoder logits at the last prompt
                                            position, stored as float32

and autocast.json with the versions. Rerun from the repository root, after `cargo xtask
parity` has installed transformers 4.57.1 into the project's .venv:

    .venv/bin/python data-fixtures/blip/gen_autocast.py
"""

import json
import os
import platform

import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import BlipForConditionalGeneration

HERE = os.path.dirname(os.path.abspath(__file__))
PROMPT_IDS = [30522, 1037, 3861, 1997]


def decoder_logits(model, pixel_values, ids):
    vision = model.vision_model(pixel_values=pixel_values).last_hidden_state
    mask = torch.ones(vision.shape[:-1], dtype=torch.long)
    out = model.text_decoder(input_ids=ids, encoder_hidden_states=vision, encoder_attention_mask=mask)
    return out.logits[:, -1]


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = BlipForConditionalGeneration.from_pretrained(os.path.join(HERE, "tiny-caption")).eval()
    with safe_open(os.path.join(HERE, "golden.safetensors"), "pt") as f:
        pixel_values = f.get_tensor("pixel_values").float()
    ids = torch.tensor([PROMPT_IDS] * pixel_values.shape[0], dtype=torch.long)
    tensors = {}
    with torch.no_grad():
        tensors["logits_fp32"] = decoder_logits(model, pixel_values, ids)
        for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
            with torch.autocast("cpu", dtype=dtype):
                logits = decoder_logits(model, pixel_values, ids)
            tensors[f"logits_{name}"] = logits
            tensors[f"kind_{name}"] = torch.tensor([1.0 if logits.dtype == dtype else 0.0])
    for name in ("bf16", "fp16"):
        diff = (tensors[f"logits_{name}"].float() - tensors["logits_fp32"]).abs().max().item()
        print(f"{name}: max |autocast - fp32| = {diff:.4g}, dtype {tensors[f'logits_{name}'].dtype}")
    clean = {k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()}
    path = os.path.join(HERE, "autocast.safetensors")
    save_file(clean, path)
    os.chmod(path, 0o644)
    meta = {
        "generator": "data-fixtures/blip/gen_autocast.py",
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "device": "cpu",
            "torch_num_threads": torch.get_num_threads(),
        },
        "prompt_ids": PROMPT_IDS,
    }
    with open(os.path.join(HERE, "autocast.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
