#!/usr/bin/env python3
"""A small random model in open_clip's BiomedCLIP layout and open_clip's values with it, for
medcap's open_clip parity tests.

microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224 is 0.8 GB and there is no model hub here,
so parity is proven on a model with BiomedCLIP's code path and a tiny geometry, loaded by open_clip
itself from a `local-dir:` directory:

* tiny-biomedclip/  open_clip_config.json as BiomedCLIP's (timm ViT image tower with the class
                    token and a linear head, Hugging Face BERT text tower with the
                    cls_last_hidden_state pooler and the mlp projection), with a timm ViT registered
                    here (`vit_medcap_test`: 32 px images in 8 px patches, width 128, 2 blocks,
                    2 heads, mlp ratio 1) and a BERT of width 128, 2 layers, 2 heads, 64 positions;
                    context length 48; an uncased WordPiece tokenizer (vocab written here) saved
                    through BertTokenizerFast; weights as open_clip_model.safetensors.
* golden.json       versions; for texts built to hit open_clip's cleaning (ftfy's quotes,
                    ligatures and widths, HTML entities, whitespace) and the context length, the
                    ids open_clip's tokenizer gives (padding removed) and `encode_text`; for the
                    images of ../blip/images the tensors of open_clip's validation transform and
                    `encode_image`.

Scratch environment (not needed by CI): torch 2.11.0 of the project's .venv, transformers 4.57.1
(/tmp/tfpkgs, see ../deberta/gen.py), and:

    .venv/bin/python -m pip install --target /tmp/ocpkgs --no-deps open_clip_torch==3.3.0 \
        timm==1.0.31 torchvision==0.26.0 ftfy==6.3.1 wcwidth==0.9.5 pillow==13.0.0
    PYTHONPATH=/tmp/tfpkgs:/tmp/ocpkgs .venv/bin/python data-fixtures/open-clip/gen.py
"""
import json
import math
import os
import shutil
import tempfile

import open_clip
import PIL
import timm
import torch
import transformers
from PIL import Image
from safetensors.torch import save_file
from timm.models import register_model
from timm.models.vision_transformer import _create_vision_transformer
from transformers import BertConfig, BertTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "tiny-biomedclip")
IMAGES = os.path.join(HERE, "..", "blip", "images")
IMAGE_NAMES = ["rgb_wide", "grey", "rgba", "palette", "rgb_large", "gray16"]


@register_model
def vit_medcap_test(pretrained=False, **kwargs):
    args = dict(img_size=32, patch_size=8, embed_dim=128, depth=2, num_heads=2, mlp_ratio=1.0)
    return _create_vision_transformer("vit_medcap_test", pretrained=pretrained, **dict(args, **kwargs))


WORDS = ("chest radiograph showing a left right pleural effusion axial computed tomography of the abdomen "
         "with contrast magnetic resonance image brain lesion no evidence pneumothorax arrow points to small "
         "nodule upper lobe ultrasound liver mass ct mri x ray fibrosis it s").split()

LONG = ("portable chest radiograph demonstrates a right internal jugular central venous catheter with "
        "its tip in the superior vena cava and a small left pleural effusion ")

TEXTS = [
    "chest radiograph showing a left pleural effusion",
    "",
    "   ",
    "Axial CT of the ABDOMEN, with contrast!",
    "\u201cﬁbrosis\u201d it\u2019s ＣＴ\u3000mass",
    "&amp;lt;b&amp;gt; &amp;amp;amp; arrow&#39;s",
    "<b> &amp;amp;amp; </b>",
    "the  arrow\tpoints to a nodule\n\nin the lobe",
    "résumé naïve café",
    LONG * 2,
]

CAPTIONS = [
    ("rgb_wide", "chest radiograph showing a left pleural effusion", "left pleural effusion"),
    ("grey", "axial ct of the abdomen with contrast", "ct of the abdomen"),
    ("rgb_large", "no evidence of pneumothorax", "normal chest x ray"),
]

CONFIG = {
    "model_cfg": {
        "embed_dim": 16,
        "vision_cfg": {"timm_model_name": "vit_medcap_test", "timm_model_pretrained": False, "timm_pool": "",
                       "timm_proj": "linear", "image_size": 32},
        "text_cfg": {"hf_model_name": "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract",
                     "hf_tokenizer_name": "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract",
                     "hf_proj_type": "mlp", "hf_pooler_type": "cls_last_hidden_state_pooler",
                     "context_length": 48},
    },
    "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]},
}


def reinit_(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name.lower():
                p.copy_((0.8 + 0.4 * torch.rand(p.shape, generator=g)) if name.endswith("weight") else torch.randn(p.shape, generator=g) * 0.1)
            elif p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in) * (3.0 if "embed" in name or "token" in name else 1.0))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def build(bert_dir):
    shutil.rmtree(MODEL, ignore_errors=True)
    os.makedirs(MODEL)
    chars = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789.,!?;:'\"<>&#()-/"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars if c.isalnum()]
    vocab += [w for w in dict.fromkeys(WORDS) if w not in vocab]
    with open(os.path.join(bert_dir, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(v + "\n" for v in vocab))
    tokenizer = BertTokenizerFast(os.path.join(bert_dir, "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(MODEL)
    BertConfig(vocab_size=len(vocab), hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=128, max_position_embeddings=64).save_pretrained(bert_dir)
    config = json.loads(json.dumps(CONFIG))
    config["model_cfg"]["text_cfg"]["hf_model_name"] = bert_dir
    with open(os.path.join(MODEL, "open_clip_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    # Built from the configuration alone (no weights yet).
    model = open_clip.create_model("local-dir:" + MODEL, pretrained_text=False)
    reinit_(model, 11)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(MODEL, "open_clip_model.safetensors"))


def main():
    bert_dir = tempfile.mkdtemp()
    build(bert_dir)
    model, _, preprocess = open_clip.create_model_and_transforms("local-dir:" + MODEL)
    model.eval()
    tokenizer = open_clip.get_tokenizer("local-dir:" + MODEL)
    out = {"versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                        "open_clip": open_clip.__version__, "timm": timm.__version__, "pillow": PIL.__version__},
           "tokenizer": type(tokenizer).__name__, "transform": str(preprocess)}
    ids = tokenizer(TEXTS)
    with torch.no_grad():
        feats = model.encode_text(ids)
    out["texts"] = []
    for t, row, f in zip(TEXTS, ids, feats):
        out["texts"].append({"text": t, "ids": [int(i) for i in row if i != 0], "features": f.tolist()})
    out["images"] = []
    for n in IMAGE_NAMES:
        im = Image.open(os.path.join(IMAGES, n + ".png"))
        px = preprocess(im).unsqueeze(0)
        with torch.no_grad():
            f = model.encode_image(px)[0]
        # The same image converted to RGB before the transform (what medcap decodes to).
        px_rgb = preprocess(im.convert("RGB")).unsqueeze(0)
        out["images"].append({"name": n, "mode": im.mode, "pixel_values": px.flatten().tolist(),
                              "features": f.tolist(),
                              "rgb_first_equal": bool(torch.equal(px, px_rgb))})
    # CLIPScore and RefCLIPScore by Hessel's formula (his prefix on captions and references, the
    # reference cosine not clamped) for caption lines as `medcap score` reads them: one image
    # (RGB or grey, which open_clip and medcap preprocess alike) and one reference per caption.
    lines = []
    for name, cand, ref in CAPTIONS:
        im = Image.open(os.path.join(IMAGES, name + ".png"))
        with torch.no_grad():
            fi = model.encode_image(preprocess(im).unsqueeze(0))[0].double()
            fc = model.encode_text(tokenizer(["A photo depicts " + cand]))[0].double()
            fr = model.encode_text(tokenizer(["A photo depicts " + ref]))[0].double()
        norm = lambda v: v / v.norm()
        clip_s = 2.5 * max(float(norm(fi) @ norm(fc)), 0.0)
        best = float(norm(fc) @ norm(fr))
        lines.append({"image": name, "candidate": cand, "reference": ref, "clip_s": clip_s,
                      "ref_clip_s": 2 * clip_s * best / (clip_s + best)})
    out["clipscore_lines"] = lines
    # The directory as BiomedCLIP's: the real text tower's name in the config.
    with open(os.path.join(MODEL, "open_clip_config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
    shutil.rmtree(bert_dir)
    with open(os.path.join(HERE, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
