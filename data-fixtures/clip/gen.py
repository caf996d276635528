#!/usr/bin/env python3
"""A small random CLIP checkpoint in the Hugging Face `CLIPModel` layout and the reference values
with it, for medcap's CLIP and CLIPScore parity tests.

openai/clip-vit-base-patch32 is 0.6 GB and there is no model hub here, so parity is proven on a
model with the same code path and a tiny geometry:

* tiny-clip/   a CLIP byte-level BPE tokenizer (vocab.json/merges.txt learned here on a few
               sentences, the 512 byte symbols with and without `</w>`, <|startoftext|>,
               <|endoftext|>) saved through CLIPTokenizerFast (tokenizer.json); a random CLIPModel
               (text: width 32, 2 layers, 2 heads, exact GELU, 77 positions; vision: 32 px images
               in 8 px patches, width 32, 2 layers, 4 heads, quick GELU; projection 16) saved as
               safetensors; CLIPImageProcessor with shortest edge 32 and a 32 x 32 centre crop.
* golden.json  versions; for texts built to hit every rule (empty, Unicode, whitespace, past the
               77-token context), the ids of CLIPProcessor's call with truncation and the text
               features of `get_text_features`; for the images of ../blip/images (wide, grey,
               RGBA, palette, large, 16-bit grey) the pixel values of CLIPImageProcessor and the
               image features of `get_image_features`; CLIPScore and RefCLIPScore per caption by
               Hessel et al.'s formula (clipscore.py: w = 2.5, the "A photo depicts" prefix on
               candidates and references, the reference cosine not clamped, and the paper's
               clamped form) and torchmetrics' per-sample 100 * cos from its own
               `_clip_score_update` with this model (its truncation by slicing included).

Scratch environment (not needed by CI): torch 2.11.0 of the project's .venv, transformers 4.57.1
and tokenizers (/tmp/tfpkgs, see ../deberta/gen.py), and torchmetrics, pillow:

    .venv/bin/python -m pip install --target /tmp/ocpkgs --no-deps torchmetrics==1.9.0 \
        lightning-utilities==0.15.3 pillow==13.0.0
    PYTHONPATH=/tmp/tfpkgs:/tmp/ocpkgs .venv/bin/python data-fixtures/clip/gen.py
"""
import collections
import json
import math
import os
import shutil

import numpy as np
import PIL
import torch
import transformers
from PIL import Image
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "tiny-clip")
IMAGES = os.path.join(HERE, "..", "blip", "images")
IMAGE_NAMES = ["rgb_wide", "grey", "rgba", "palette", "rgb_large", "gray16"]

CORPUS = [
    "chest radiograph showing a left pleural effusion",
    "axial computed tomography of the abdomen with contrast",
    "magnetic resonance image of the brain demonstrating a lesion",
    "no evidence of pneumothorax or consolidation",
    "the arrow points to a small nodule in the right upper lobe",
    "ultrasound of the liver shows a hypoechoic mass",
    "a photo depicts a frontal chest x ray",
]

LONG = ("portable chest radiograph demonstrates a right internal jugular central venous catheter with "
        "its tip in the superior vena cava and a small left pleural effusion ")

TEXTS = [
    "chest radiograph showing a left pleural effusion",
    "",
    "   ",
    "Axial CT of the ABDOMEN, with contrast!",
    "résumé naïve café  ﬁbrosis  ＣＴ",
    "the  arrow\tpoints to a nodule\n",
    LONG * 3,
    "A photo depicts " + LONG * 2,
]

# (image, candidate, references): several references, one, none.
CAPTIONS = [
    (0, "chest radiograph showing a left pleural effusion", ["left pleural effusion", "a frontal chest x ray", "normal study"]),
    (1, "magnetic resonance image of the brain", ["brain mri with a lesion"]),
    (2, "", ["ultrasound of the liver"]),
    (3, "no evidence of pneumothorax", []),
    (4, LONG * 3, ["a small nodule", LONG * 2]),
    (5, "axial computed tomography of the abdomen", ["axial ct", "ct of the abdomen with contrast"]),
]


def bytes_to_unicode():
    """GPT-2's byte-to-symbol table, which CLIP's BPE uses."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def learn_merges(count):
    """Byte-pair merges learned on CORPUS, words ending in `</w>` as CLIP's."""
    words = collections.Counter()
    for line in CORPUS:
        for w in line.lower().split():
            symbols = list(w)
            symbols[-1] += "</w>"
            words[tuple(symbols)] += 1
    merges = []
    for _ in range(count):
        pairs = collections.Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append((a, b))
        merged = collections.Counter()
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] += c
        words = merged
    return merges


def reinit_(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name or "layrnorm" in name:
                p.copy_((0.8 + 0.4 * torch.rand(p.shape, generator=g)) if name.endswith("weight") else torch.randn(p.shape, generator=g) * 0.1)
            elif p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in) * (3.0 if "embedding" in name else 1.0))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def build():
    shutil.rmtree(MODEL, ignore_errors=True)
    os.makedirs(MODEL)
    symbols = bytes_to_unicode()
    merges = learn_merges(200)
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = list(dict.fromkeys(vocab))
    tmp = os.path.join(HERE, "tmp-tok")
    os.makedirs(tmp, exist_ok=True)
    with open(os.path.join(tmp, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(tmp, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    tokenizer = CLIPTokenizerFast(os.path.join(tmp, "vocab.json"), os.path.join(tmp, "merges.txt"))
    tokenizer.model_max_length = 77
    shutil.rmtree(tmp)
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    bos = tokenizer.convert_tokens_to_ids("<|startoftext|>")
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, hidden_act="gelu",
                         bos_token_id=bos, eos_token_id=eos, pad_token_id=eos),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                           image_size=32, patch_size=8, hidden_act="quick_gelu"),
        projection_dim=16,
    )
    torch.manual_seed(0)
    model = CLIPModel(config).eval()
    reinit_(model, 7)
    model.save_pretrained(MODEL, safe_serialization=True)
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
    )
    processor.save_pretrained(MODEL)
    # Only what medcap reads (and transformers needs) stays.
    for name in os.listdir(MODEL):
        if name not in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                        "special_tokens_map.json", "preprocessor_config.json", "vocab.json", "merges.txt"):
            os.remove(os.path.join(MODEL, name))


def hessel(image_feats, cand_feats, refs_feats, w=2.5):
    """clipscore.py's arithmetic: normalise rows, w * clip(cos, 0); RefCLIPScore is the harmonic
    mean with the best candidate-reference cosine (not clamped in the code, clamped at 0 in the
    paper)."""
    images = image_feats / np.sqrt(np.sum(image_feats ** 2, axis=1, keepdims=True))
    cands = cand_feats / np.sqrt(np.sum(cand_feats ** 2, axis=1, keepdims=True))
    per = w * np.clip(np.sum(images * cands, axis=1), 0, None)
    ref_code, ref_paper = [], []
    for i, refs in enumerate(refs_feats):
        if refs is None:
            ref_code.append(None)
            ref_paper.append(None)
            continue
        refs = refs / np.sqrt(np.sum(refs ** 2, axis=1, keepdims=True))
        best = np.max(cands[i].dot(refs.transpose()))
        with np.errstate(invalid="ignore", divide="ignore"):
            ref_code.append(float(2 * per[i] * best / (per[i] + best)))
            clamped = max(best, 0.0)
            ref_paper.append(float(2 * per[i] * clamped / (per[i] + clamped)) if per[i] + clamped > 0 else 0.0)
    return per, ref_code, ref_paper


def main():
    build()
    model = CLIPModel.from_pretrained(MODEL).eval()
    processor = CLIPProcessor.from_pretrained(MODEL)
    image_processor = CLIPImageProcessor.from_pretrained(MODEL)
    tok = processor.tokenizer
    assert type(tok).__name__ == "CLIPTokenizerFast", type(tok)

    def text_features(texts):
        enc = tok(texts, padding=True, truncation=True, max_length=77, return_tensors="pt")
        with torch.no_grad():
            return model.get_text_features(**enc).numpy().astype(np.float64)

    out = {"versions": {"torch": torch.__version__, "transformers": transformers.__version__, "pillow": PIL.__version__}}
    out["texts"] = []
    feats = text_features(TEXTS)
    for i, t in enumerate(TEXTS):
        ids = tok(t, truncation=True, max_length=77)["input_ids"]
        alone = text_features([t])[0]
        assert np.abs(alone - feats[i]).max() < 1e-5
        out["texts"].append({"text": t, "ids": ids, "features": feats[i].tolist()})

    out["images"] = []
    pil = [Image.open(os.path.join(IMAGES, n + ".png")) for n in IMAGE_NAMES]
    pixels = image_processor(images=pil, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        image_feats = model.get_image_features(pixel_values=pixels).numpy().astype(np.float64)
    for n, im, px, f in zip(IMAGE_NAMES, pil, pixels, image_feats):
        out["images"].append({"name": n, "mode": im.mode, "size": list(im.size),
                              "pixel_values": px.flatten().tolist(), "features": f.tolist()})

    # CLIPScore, Hessel's prefix on (candidates and references) and off.
    for prefix_name, prefix in [("prefix", "A photo depicts "), ("no_prefix", "")]:
        cands = text_features([prefix + c for _, c, _ in CAPTIONS])
        refs = [text_features([prefix + r for r in rs]) if rs else None for _, _, rs in CAPTIONS]
        imgs = image_feats[[i for i, _, _ in CAPTIONS]]
        for form, w in [("hessel", 2.5), ("pacs", 2.0)]:
            per, ref_code, ref_paper = hessel(imgs, cands, refs, w)
            out[f"{form}_{prefix_name}"] = {"clip_s": per.tolist(), "ref_clip_s_code": ref_code, "ref_clip_s_paper": ref_paper}
    out["captions"] = [{"image": i, "candidate": c, "references": rs} for i, c, rs in CAPTIONS]

    # torchmetrics' own per-sample score (before its mean and clamp).
    from torchmetrics.functional.multimodal.clip_score import _clip_score_update
    from torchmetrics import __version__ as tm_version
    out["versions"]["torchmetrics"] = tm_version
    tensors = [torch.from_numpy(np.array(pil[i].convert("RGB"))).permute(2, 0, 1) for i, _, _ in CAPTIONS]
    scores = []
    for t, (_, c, _) in zip(tensors, CAPTIONS):
        # One caption per call, so that padding and its slicing are the caption's own.
        s, _ = _clip_score_update([t], [c], model, processor)
        scores.append(float(s[0]))
    out["torchmetrics"] = scores

    with open(os.path.join(HERE, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
