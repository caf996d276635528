#!/usr/bin/env python3
"""A small random RoBERTa and bert-score 0.3.13's values with it, for medcap's RoBERTa parity tests.

roberta-large is 1.4 GB and there is no model hub here, so the parity is proven on a model with
the same code path and a tiny geometry:

* tiny-roberta/   a byte-level BPE tokenizer trained here with `tokenizers` on sentences this
                  script writes (vocab.json, merges.txt, tokenizer.json, tokenizer_config.json
                  with model_max_length 40, special_tokens_map.json), and a random
                  RobertaForMaskedLM (3 layers, width 32, 4 heads, 42 positions, type
                  vocabulary 1) saved as safetensors, so that its keys carry the `roberta.`
                  prefix and an `lm_head` as the Hub's roberta-large does; weights re-drawn
                  wider than RoBERTa's initialisation so that token vectors differ;
* baseline.tsv    a rescaling baseline in bert-score's format (LAYER,P,R,F), made-up values;
* golden.json     versions, the pairs, bert-score's token ids (`sent_encode`: stripped text,
                  prefix space, <s> ... </s>, truncated at model_max_length) and P/R/F at layer 2
                  plain, with idf, and rescaled with baseline.tsv (`rescale_with_baseline=True`,
                  `baseline_path`), all at bert-score's default batch size of 64.

The pairs: the 300 caption pairs of ../metrics/golden.json (empty texts, punctuation, non-ASCII
among them) and pairs written here that run past the 40-token limit.

`--large DIR` instead writes (not committed; about 1.4 GB) a random RoBERTa with roberta-large's
exact geometry (24 layers, width 1024, 16 heads, feed-forward 4096, 514 positions, vocabulary
50265 of which the local tokenizer uses the first rows, model_max_length 512) and DIR/golden.json
with bert-score's P/R/F at layer 17 on the first 64 pairs and the long ones. `cargo xtask parity
--roberta-large` runs it and medcap's ignored test against it.

Scratch environment (not needed by CI): torch 2.11.0 of the project's .venv plus transformers
4.57.1 and bert-score 0.3.13 (see ../metrics/gen_bertscore_edges.py), e.g.

    PYTHONPATH=/tmp/bspkgs:/tmp/tfpkgs .venv/bin/python data-fixtures/roberta/gen.py
"""
import argparse
import json
import math
import os
import shutil

import bert_score
import tokenizers
import torch
import transformers
from bert_score.utils import sent_encode
from tokenizers import ByteLevelBPETokenizer
from transformers import AutoTokenizer, RobertaConfig, RobertaForMaskedLM, RobertaTokenizer, RobertaTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
LAYER = 2
MAX_LEN = 40
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0..4, as roberta-base's


def corpus():
    """Sentences for the tokenizer: radiology phrases and everyday words, deterministic."""
    sides = ["left", "right", "bilateral"]
    places = ["upper", "middle", "lower"]
    findings = ["pleural effusion", "pneumothorax", "consolidation", "nodule", "mass", "cardiomegaly",
                "atelectasis", "opacity", "fracture", "catheter", "endotracheal tube", "edema"]
    frames = ["Chest radiograph showing a {s} {f} in the {p} zone.",
              "Frontal chest X-ray demonstrates {f} on the {s} side.",
              "No evidence of {f}; the {p} lobes are clear.",
              "CT of the thorax: {s} {p} lobe {f}, measuring 2.5 cm."]
    lines = []
    for i in range(600):
        lines.append(frames[i % 4].format(s=sides[i % 3], p=places[(i // 3) % 3], f=findings[(i // 9) % 12]))
    lines += ["The patient was admitted with fever, cough and shortness of breath.",
              "Images were acquired before and after the intravenous contrast injection.",
              "Résumé: épanchement pleural gauche, naïve café, über straße.",
              "Numbers 0 1 2 3 4 5 6 7 8 9 10 100 1000 and symbols ( ) [ ] ; : , . ! ? - / %"] * 20
    return lines


def long_pairs():
    words = ("portable chest radiograph demonstrates a right internal jugular central venous catheter with its tip "
             "in the superior vena cava and a small left pleural effusion with adjacent basilar atelectasis no "
             "pneumothorax is seen the cardiomediastinal silhouette is within normal limits").split()
    cands, refs = [], []
    for n in (8, 30, 37, 38, 39, 45):
        cands.append(" ".join(words[:n]))
        refs.append([" ".join(reversed(words[: n + 4]))])
    return cands, refs


def reinit_(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                std = 1.0 if "embeddings" in name else 1.0 / math.sqrt(p.shape[1])
                p.copy_(torch.randn(p.shape, generator=g) * std)
            elif "LayerNorm.weight" in name:
                p.copy_(0.8 + 0.4 * torch.rand(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


TINY = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64)
LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
             vocab_size=50265)


def build(model_dir, geometry=TINY, max_len=MAX_LEN):
    shutil.rmtree(model_dir, ignore_errors=True)
    os.makedirs(model_dir)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus(), vocab_size=600, min_frequency=2, special_tokens=SPECIALS)
    bpe.save_model(model_dir)  # vocab.json, merges.txt
    slow = RobertaTokenizer(os.path.join(model_dir, "vocab.json"), os.path.join(model_dir, "merges.txt"),
                            model_max_length=max_len)
    slow.save_pretrained(model_dir)
    fast = RobertaTokenizerFast.from_pretrained(model_dir)
    fast.save_pretrained(model_dir)  # adds tokenizer.json
    geometry = {"vocab_size": len(slow), **geometry}
    config = RobertaConfig(max_position_embeddings=max_len + 2, type_vocab_size=1, pad_token_id=1,
                           bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5, **geometry)
    torch.manual_seed(7)
    model = RobertaForMaskedLM(config)
    reinit_(model, 7)
    model.save_pretrained(model_dir, safe_serialization=True)
    for junk in ("generation_config.json",):
        path = os.path.join(model_dir, junk)
        if os.path.exists(path):
            os.remove(path)


def triples(p, r, f):
    return [[None if math.isnan(x) else x for x in row] for row in zip(p.tolist(), r.tolist(), f.tolist())]


def large(out_dir):
    """roberta-large's geometry, random weights, bert-score at its layer 17."""
    model_dir = os.path.join(out_dir, "model")
    build(model_dir, LARGE, max_len=512)
    with open(os.path.join(HERE, "..", "metrics", "golden.json"), encoding="utf-8") as f:
        pairs = json.load(f)["pairs"][:64]
    cands = [p["hyp"] for p in pairs]
    refs = [p["refs"] for p in pairs]
    more_c, more_r = long_pairs()
    cands += more_c
    refs += more_r
    p, r, f = bert_score.score(cands, refs, model_type=model_dir, num_layers=17, device="cpu", batch_size=64)
    out = {"versions": {"bert_score": bert_score.__version__, "transformers": transformers.__version__,
                        "torch": torch.__version__}, "layer": 17, "batch_size": 64, "cands": cands,
           "refs": refs, "plain": triples(p, r, f)}
    with open(os.path.join(out_dir, "golden.json"), "w", encoding="utf-8") as fh:
        json.dump(out, fh, ensure_ascii=False)


def main():
    torch.set_num_threads(2)
    parser = argparse.ArgumentParser()
    parser.add_argument("--large", metavar="DIR")
    args = parser.parse_args()
    if args.large:
        large(args.large)
        return
    model_dir = os.path.join(HERE, "tiny-roberta")
    build(model_dir)
    baseline = os.path.join(HERE, "baseline.tsv")
    with open(baseline, "w") as f:
        f.write("LAYER,P,R,F\n0,0.91,0.90,0.905\n1,0.62,0.61,0.615\n2,0.48,0.47,0.475\n3,0.33,0.35,0.34\n")
    with open(os.path.join(HERE, "..", "metrics", "golden.json"), encoding="utf-8") as f:
        pairs = json.load(f)["pairs"]
    cands = [p["hyp"] for p in pairs]
    refs = [p["refs"] for p in pairs]
    more_c, more_r = long_pairs()
    cands += more_c
    refs += more_r
    out = {"versions": {"bert_score": bert_score.__version__, "transformers": transformers.__version__,
                        "torch": torch.__version__, "tokenizers": tokenizers.__version__},
           "layer": LAYER, "model_max_length": MAX_LEN, "batch_size": 64, "cands": cands, "refs": refs}
    for key, kw in (("plain", {}), ("idf", {"idf": True}),
                    ("rescaled", {"rescale_with_baseline": True, "lang": "en", "baseline_path": baseline})):
        p, r, f = bert_score.score(cands, refs, model_type=model_dir, num_layers=LAYER, device="cpu",
                                   batch_size=64, **kw)
        out[key] = triples(p, r, f)
    tok = AutoTokenizer.from_pretrained(model_dir, use_fast=False)
    texts = sorted({t for c, rs in zip(cands, refs) for t in [c] + rs})
    out["tokens"] = {t: sent_encode(tok, t) for t in texts}
    with open(os.path.join(HERE, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()
