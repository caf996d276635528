#!/usr/bin/env python3
"""The transformers side of `cargo xtask gpu-check`: what medcap-device-check compares with and
sets its timings beside, measured with transformers 4.57.1 on the same device in the same run.

  gpu_reference.py make-base --fixtures BLIP DIR
      a random checkpoint of blip-image-captioning-base's geometry in DIR, made by
      data-fixtures/blip/gen.py's --base mode (its tokenizer from the tiny fixture's)

  gpu_reference.py measure --model DIR --fixtures BLIP --device cuda|cpu --out FILE
                           [--max-micro-batch N] [--caption-images N]
      one JSON object: versions and device; greedy and beam-3 caption ids of the four
      fixture images (20 new tokens at most, cut after [SEP] as medcap returns them);
      captioning images/s at batch 1, 8, 32 (greedy, beam 3; exactly 20 new tokens); and
      training-step time and peak memory per micro-batch size (doubling from 4 until a size
      does not fit) for fp32, bf16 autocast and fp32 with the vision encoder frozen.

  gpu_reference.py check-trained DIR --out FILE
      loads a checkpoint that medcap trained (bf16 autocast) with transformers' from_pretrained:
      no missing, unexpected or mis-shaped key, every weight fp32; exits 1 otherwise

Inputs are those medcap-device-check uses: the fixture images rgb_wide, grey, rgba and
rgb_large through the checkpoint's BlipImageProcessor, repeated to the batch size, and the
same four captions.
"""
import argparse
import json
import os
import platform
import resource
import sys
import time

import torch
import transformers
from PIL import Image
from transformers import BertTokenizerFast, BlipForConditionalGeneration, BlipImageProcessor

IMAGES = ["rgb_wide", "grey", "rgba", "rgb_large"]
CAPTIONS = [
    "a chest x-ray with a left pleural effusion",
    "frontal radiograph showing cardiomegaly",
    "right upper lobe consolidation",
    "normal chest radiograph",
]
NEW_TOKENS = 20
SEP = 102


def make_base(fixtures, out_dir):
    sys.path.insert(0, fixtures)
    import gen  # data-fixtures/blip/gen.py, carried in the bundle

    gen.TOKENIZER_SRC = os.path.join(fixtures, "tiny-caption")
    gen.base_mode(out_dir)


def pixels(model_dir, fixtures, n):
    processor = BlipImageProcessor.from_pretrained(model_dir)
    images = [Image.open(os.path.join(fixtures, "images", f"{name}.png")) for name in IMAGES]
    four = processor(images=images, return_tensors="pt")["pixel_values"].float()
    return four[torch.arange(n) % 4]


def cut(rows):
    out = []
    for row in rows.tolist():
        out.append(row[: row.index(SEP) + 1] if SEP in row else row)
    return out


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "cuda_max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process_peak_rss_so_far"


def captions(model, pv):
    with torch.inference_mode():
        greedy = model.generate(pixel_values=pv, max_new_tokens=NEW_TOKENS)
        beam = model.generate(pixel_values=pv, max_new_tokens=NEW_TOKENS, num_beams=3)
    return {"greedy": cut(greedy), "beam3": cut(beam)}


def captioning(model, pv_all, device):
    rows = []
    n = pv_all.shape[0]
    for beams in (1, 3):
        for batch in (1, 8, 32):
            def run(count):
                with torch.inference_mode():
                    for first in range(0, count, batch):
                        model.generate(pixel_values=pv_all[first:first + batch], num_beams=beams,
                                       max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS)
            run(min(batch, n))
            reset_peak(device)
            sync(device)
            start = time.perf_counter()
            run(n)
            sync(device)
            seconds = time.perf_counter() - start
            rows.append({"num_beams": beams, "batch": batch, "images": n,
                         "images_per_second": n / seconds, "peak_bytes": peak(device)[0]})
    return rows


def training(model_dir, fixtures, device, max_micro_batch):
    tokenizer = BertTokenizerFast.from_pretrained(model_dir)
    rows = []
    for precision, freeze in (("fp32", False), ("bf16", False), ("fp32", True)):
        size = 4
        while size <= max_micro_batch:
            model = None
            try:
                reset_peak(device)
                model = BlipForConditionalGeneration.from_pretrained(model_dir).to(device)
                model.train()
                if freeze:
                    for p in model.vision_model.parameters():
                        p.requires_grad_(False)
                params = [p for p in model.parameters() if p.requires_grad]
                optimizer = torch.optim.Adam(params, lr=1e-5)
                pv = pixels(model_dir, fixtures, size).to(device)
                enc = tokenizer([CAPTIONS[i % 4] for i in range(size)], padding="longest",
                                return_tensors="pt")
                ids = enc["input_ids"].to(device)
                mask = enc["attention_mask"].to(device)
                labels = ids.masked_fill(mask == 0, -100)

                def step():
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                        out = model(pixel_values=pv, input_ids=ids, attention_mask=mask, labels=labels)
                    out.loss.backward()
                    optimizer.step()
                    optimizer.zero_grad()

                step()
                sync(device)
                start = time.perf_counter()
                for _ in range(3):
                    step()
                sync(device)
                seconds = (time.perf_counter() - start) / 3
                bytes_, source = peak(device)
                rows.append({"precision": precision, "freeze_vision": freeze, "micro_batch": size,
                             "seconds_per_step": seconds, "images_per_second": size / seconds,
                             "peak_bytes": bytes_, "peak_source": source})
            except torch.OutOfMemoryError as e:
                rows.append({"precision": precision, "freeze_vision": freeze, "micro_batch": size,
                             "failed": str(e).splitlines()[0]})
                break
            finally:
                del model
            size *= 2
    return rows


def measure(args):
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = BlipForConditionalGeneration.from_pretrained(args.model).to(device).eval()
    out = {
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__},
        "device": args.device,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "cuda_driver": torch.version.cuda,
    }
    print("ids", file=sys.stderr, flush=True)
    out["ids"] = captions(model, pixels(args.model, args.fixtures, 4).to(device))
    print("captioning", file=sys.stderr, flush=True)
    out["captioning"] = captioning(model, pixels(args.model, args.fixtures, args.caption_images).to(device), device)
    del model
    print("training", file=sys.stderr, flush=True)
    out["training"] = training(args.model, args.fixtures, device, args.max_micro_batch)
    tmp = args.out + ".partial"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
    os.replace(tmp, args.out)


def check_trained(model_dir, out_path):
    model, info = BlipForConditionalGeneration.from_pretrained(model_dir, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    dtypes = sorted({str(p.dtype) for p in model.state_dict().values()})
    result = {"checkpoint": model_dir, "loading_problems": problems, "dtypes": dtypes,
              "loaded": not problems and dtypes == ["torch.float32"]}
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result), file=sys.stderr)
    return 0 if result["loaded"] else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    mb = sub.add_parser("make-base")
    mb.add_argument("--fixtures", required=True)
    mb.add_argument("dir")
    me = sub.add_parser("measure")
    me.add_argument("--model", required=True)
    me.add_argument("--fixtures", required=True)
    me.add_argument("--device", default="cuda")
    me.add_argument("--out", required=True)
    me.add_argument("--max-micro-batch", type=int, default=64)
    me.add_argument("--caption-images", type=int, default=32)
    ct = sub.add_parser("check-trained")
    ct.add_argument("dir")
    ct.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.command == "make-base":
        make_base(args.fixtures, args.dir)
    elif args.command == "check-trained":
        sys.exit(check_trained(args.dir, args.out))
    else:
        measure(args)


if __name__ == "__main__":
    main()
