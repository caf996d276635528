#!/usr/bin/env python3
"""A small random CLIP in OpenAI's layout, converted by scripts/openai_clip_to_hf.py, and
open_clip's values with the original, for the parity test of that conversion (how PAC-S's
released checkpoint, OpenAI's ViT-B/32 layout, becomes a directory medcap reads).

* tiny-pacs/   the conversion's output: config.json and model.safetensors from a random
               open_clip `CLIP` with OpenAI's layout and quick GELU (32 px images in 8 px patches,
               widths 128, 2 layers, mlp ratio 1, projection 16), saved as PAC-S saves its
               checkpoint (`{"state_dict": ...}`); tokenizer and preprocessor files copied from
               ../clip/tiny-clip (`--tokenizer-from`).
* golden.json  versions; for texts, open_clip's `encode_text` of the ids the tokenizer gives;
               for the images of ../blip/images (RGB and grey), `encode_image` of the pixel values
               CLIPImageProcessor gives.

Scratch environment (not needed by CI): as ../open-clip/gen.py.

    PYTHONPATH=/tmp/tfpkgs:/tmp/ocpkgs .venv/bin/python data-fixtures/pacs/gen.py
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import open_clip
import torch
import transformers
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
from PIL import Image
from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
MODEL = os.path.join(HERE, "tiny-pacs")
TOKENIZER = os.path.join(HERE, "..", "clip", "tiny-clip")
IMAGES = os.path.join(HERE, "..", "blip", "images")

TEXTS = [
    "chest radiograph showing a left pleural effusion",
    "",
    "A photo depicts axial computed tomography of the abdomen",
    "portable chest radiograph demonstrates a right internal jugular central venous catheter " * 4,
]


def reinit_(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln_" in name:
                p.copy_((0.8 + 0.4 * torch.rand(p.shape, generator=g)) if name.endswith("weight") else torch.randn(p.shape, generator=g) * 0.1)
            elif p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]) * (3.0 if "embedding" in name else 1.0))
            elif name == "logit_scale":
                p.fill_(math.log(1 / 0.07))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def main():
    tokenizer = CLIPTokenizerFast.from_pretrained(TOKENIZER)
    model = CLIP(
        embed_dim=16,
        vision_cfg=CLIPVisionCfg(layers=2, width=128, head_width=64, mlp_ratio=1.0, patch_size=8, image_size=32),
        text_cfg=CLIPTextCfg(context_length=77, vocab_size=len(tokenizer), width=128, heads=2, layers=2, mlp_ratio=1.0),
        quick_gelu=True,
    ).eval()
    reinit_(model, 5)
    work = tempfile.mkdtemp()
    checkpoint = os.path.join(work, "clip_ViT-tiny.pth")
    torch.save({"state_dict": model.state_dict()}, checkpoint)
    shutil.rmtree(MODEL, ignore_errors=True)
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "openai_clip_to_hf.py"), checkpoint, MODEL,
                    "--tokenizer-from", TOKENIZER], check=True)
    shutil.rmtree(work)

    hf = CLIPModel.from_pretrained(MODEL).eval()
    processor = CLIPImageProcessor.from_pretrained(MODEL)
    out = {"versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                        "open_clip": open_clip.__version__}, "texts": [], "images": []}
    for t in TEXTS:
        ids = tokenizer(t, truncation=True, max_length=77)["input_ids"]
        x = torch.tensor([ids + [0] * (77 - len(ids))])
        with torch.no_grad():
            ref = model.encode_text(x)[0]
            ours = hf.get_text_features(input_ids=torch.tensor([ids]))[0]
        assert (ref - ours).abs().max() < 1e-5, (t, (ref - ours).abs().max())
        out["texts"].append({"text": t, "ids": ids, "features": ref.tolist()})
    for name in ["rgb_wide", "grey", "rgb_large"]:
        px = processor(images=Image.open(os.path.join(IMAGES, name + ".png")), return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            ref = model.encode_image(px)[0]
            ours = hf.get_image_features(pixel_values=px)[0]
        assert (ref - ours).abs().max() < 1e-5, (name, (ref - ours).abs().max())
        out["images"].append({"name": name, "features": ref.tolist()})
    with open(os.path.join(HERE, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
