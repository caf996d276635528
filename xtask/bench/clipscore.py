"""`cargo xtask bench clipscore`: CLIPScore over N images (default 1,000) by medcap against
torchmetrics' `CLIPScore` with the same model, on this machine; writes OUT/report.md.

The model is a random CLIPModel of openai/clip-vit-base-patch32's geometry (timing depends on
geometry, not weights; there is no model hub here) with a CLIP byte-level BPE tokenizer trained
here on the caption file, so that captions split into realistic numbers of tokens. Images are
JPEG files written here (figure-like: 400-700 px sides, grey gradients with shapes and noise), one
per caption; caption i is line 7i + 1 (mod the file's length) of the caption file.

* medcap: `medcap score --hyps H --images I --clip-model M --clip-score-form torchmetrics --format
  jsonl` (images decoded and preprocessed in parallel, embedded in batches of 32);
* torchmetrics: the images opened with Pillow and turned into tensors, `CLIPScore(M)` updated in
  batches of 32 (the body of its `update`: `_clip_score_update`, whose per-caption values it
  sums, kept for the comparison), then `compute`.

Each side runs once, as its own process, with the same threads; wall time and peak memory by
measure.py, model loading included; the per-caption values are compared (1e-3 on the 0-100
scale, float32 on both sides).

Needs a Python with torch, transformers 4.57, torchmetrics 1.9 and Pillow (see
data-fixtures/clip/gen.py).
"""
import argparse
import json
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def read_captions(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.strip():
                out.append(line.split("\t", 1)[1].strip() if "\t" in line else line.strip())
    return out


def make_model(out, captions):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizerFast
    import torch

    d = os.path.join(out, "clip-vit-base-patch32")
    if os.path.isfile(os.path.join(d, "model.safetensors")):
        return d
    os.makedirs(d, exist_ok=True)
    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=8000, end_of_word_suffix="</w>",
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|startoftext|>", "<|endoftext|>"])
    tok.train_from_iterator(captions, trainer)
    tmp = os.path.join(out, "bpe")
    os.makedirs(tmp, exist_ok=True)
    tok.model.save(tmp)
    tokenizer = CLIPTokenizerFast(os.path.join(tmp, "vocab.json"), os.path.join(tmp, "merges.txt"))
    tokenizer.model_max_length = 77
    config = CLIPConfig(text_config=dict(vocab_size=len(tokenizer), eos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
                                         bos_token_id=tokenizer.convert_tokens_to_ids("<|startoftext|>")))
    torch.manual_seed(0)
    CLIPModel(config).eval().save_pretrained(d, safe_serialization=True)
    CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tokenizer).save_pretrained(d)
    return d


def make_images(out, n):
    from PIL import Image, ImageDraw, ImageFilter

    d = os.path.join(out, "images")
    os.makedirs(d, exist_ok=True)
    rng = random.Random(7)
    paths = []
    for i in range(n):
        path = os.path.join(d, f"fig{i:05d}.jpg")
        paths.append(path)
        if os.path.isfile(path):
            continue
        w, h = rng.randint(400, 700), rng.randint(400, 700)
        im = Image.linear_gradient("L").resize((w, h)).convert("RGB")
        draw = ImageDraw.Draw(im)
        for _ in range(6):
            x, y = rng.randint(0, w - 1), rng.randint(0, h - 1)
            r = rng.randint(10, 120)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(rng.randint(0, 255) for _ in range(3)))
        im = im.filter(ImageFilter.GaussianBlur(2))
        im.save(path, quality=90)
    return paths


def run_torchmetrics(args):
    import numpy as np
    import torch
    from PIL import Image
    from torchmetrics.functional.multimodal.clip_score import _clip_score_update
    from torchmetrics.multimodal.clip_score import CLIPScore

    torch.set_num_threads(args.threads)
    with open(args.list) as f:
        paths = [l.rstrip("\n") for l in f]
    with open(args.hyps, encoding="utf-8") as f:
        captions = [l.rstrip("\n") for l in f]
    from transformers import CLIPModel, CLIPProcessor

    # A local directory is given as torchmetrics takes a model it does not know by name: a
    # callable returning the pair it would load for "openai/..." names.
    metric = CLIPScore(model_name_or_path=lambda: (CLIPModel.from_pretrained(args.model),
                                                   CLIPProcessor.from_pretrained(args.model)))
    per = []
    for start in range(0, len(paths), 32):
        images = [torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1)
                  for p in paths[start:start + 32]]
        texts = captions[start:start + 32]
        # CLIPScore.update's body, keeping the per-caption values it sums for the comparison
        # (calling update as well would compute everything twice).
        with torch.no_grad():
            s, n = _clip_score_update(images, texts, metric.model, metric.processor)
        metric.score += s.sum(0)
        metric.n_samples += n
        per.extend(float(v) for v in s)
    json.dump({"per_caption": per, "score": float(metric.compute())}, sys.stdout)


def measure(cmd, out_path):
    line = subprocess.run([sys.executable, os.path.join(HERE, "measure.py"), out_path, "--", *cmd],
                          capture_output=True, text=True, check=True).stdout
    result = json.loads(line.strip().splitlines()[-1])
    if result["status"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {result['status']})")
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--torchmetrics", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--list", help=argparse.SUPPRESS)
    parser.add_argument("--hyps", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--medcap")
    parser.add_argument("--captions")
    parser.add_argument("--out")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    if args.torchmetrics:
        run_torchmetrics(args)
        return
    captions = read_captions(args.captions)
    os.makedirs(args.out, exist_ok=True)
    model = make_model(args.out, captions)
    paths = make_images(args.out, args.images)
    hyps = os.path.join(args.out, "hyps.txt")
    with open(hyps, "w", encoding="utf-8") as f:
        f.write("".join(captions[(7 * i + 1) % len(captions)] + "\n" for i in range(args.images)))
    listing = os.path.join(args.out, "images.txt")
    with open(listing, "w") as f:
        f.write("".join(p + "\n" for p in paths))
    ours_path = os.path.join(args.out, "medcap.jsonl")
    ours = measure([args.medcap, "score", "--hyps", hyps, "--images", listing, "--clip-model", model,
                    "--clip-score-form", "torchmetrics", "--format", "jsonl", "--device", "cpu"],
                   ours_path)
    theirs_path = os.path.join(args.out, "torchmetrics.json")
    theirs = measure([sys.executable, os.path.abspath(__file__), "--torchmetrics", "--list", listing,
                      "--hyps", hyps, "--model", model, "--threads", str(args.threads)], theirs_path)
    with open(ours_path, encoding="utf-8") as f:
        rows = [json.loads(l) for l in f]
    our_values = [r["clip_s"] for r in rows[:-1]]
    with open(theirs_path) as f:
        their = json.loads(f.read().strip().splitlines()[-1])
    worst = max(abs(a - b) for a, b in zip(our_values, their["per_caption"]))
    if len(our_values) != len(their["per_caption"]) or worst > 1e-3:
        raise SystemExit(f"per-caption values differ by {worst}")
    report = "\n".join([
        f"CLIPScore over {args.images} images (CLIP ViT-B/32 geometry, torchmetrics' form), "
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} threads; captions: {args.captions}\n",
        "| images | medcap s | torchmetrics s | ratio | medcap peak MiB | torchmetrics peak MiB | per-caption values |",
        "|---|---|---|---|---|---|---|",
        f"| {args.images} | {ours['seconds']:.1f} | {theirs['seconds']:.1f} | "
        f"{theirs['seconds'] / ours['seconds']:.1f}x | {ours['max_rss_kib'] / 1024:.0f} | "
        f"{theirs['max_rss_kib'] / 1024:.0f} | equal to {worst:.1e} |",
    ]) + "\n"
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(report)
    print(report)


if __name__ == "__main__":
    main()
