#!/usr/bin/env python3
"""The transformers side of medcap-model's caption benchmark (benches/caption.rs).

Captions the same pixel values with BlipForConditionalGeneration.generate under the
same settings and thread count, and prints one JSON object: images per second per
setting. Needs torch 2.11.0 and transformers 4.57.1 (`cargo xtask setup --reference`).

usage: caption_transformers.py MODEL_DIR PIXELS.safetensors THREADS REPEATS
"""
import json
import sys
import time

import torch
from safetensors.torch import load_file
from transformers import BlipForConditionalGeneration

SETTINGS = {
    "greedy, batch 1": dict(batch=1, num_beams=1),
    "greedy, batch 8": dict(batch=8, num_beams=1),
    "beam 3, batch 8": dict(batch=8, num_beams=3),
}
NEW_TOKENS = 20


def main():
    model_dir, pixels_path, threads, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    model = BlipForConditionalGeneration.from_pretrained(model_dir).eval()
    pixels = load_file(pixels_path)["pixel_values"]
    out = {}
    with torch.inference_mode():
        for name, s in SETTINGS.items():
            best = None
            for _ in range(repeats):
                start = time.perf_counter()
                for first in range(0, pixels.shape[0], s["batch"]):
                    model.generate(
                        pixel_values=pixels[first:first + s["batch"]],
                        num_beams=s["num_beams"],
                        max_new_tokens=NEW_TOKENS,
                        min_new_tokens=NEW_TOKENS,
                    )
                elapsed = time.perf_counter() - start
                best = elapsed if best is None else min(best, elapsed)
            out[name] = pixels.shape[0] / best
    print(json.dumps(out))


if __name__ == "__main__":
    main()
