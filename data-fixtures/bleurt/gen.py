#!/usr/bin/env python3
"""A small random BLEURT checkpoint and bleurt-pytorch's values with it, for medcap's BLEURT parity
tests.

lucadiliello/BLEURT-20-D12 is 0.7 GB and there is no model hub here, so parity is proven on a model
with the same code path and a tiny geometry:

* tiny-bleurt/   BLEURT-20's kind: a SentencePiece unigram model trained here with `sentencepiece`
                 (nmt_nfkc normalization; [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] as control
                 pieces), saved through bleurt-pytorch's BleurtSPTokenizer (spm.model,
                 tokenizer_config.json with do_lower_case false), and a random
                 BleurtForSequenceClassification with embeddings narrower than its layers (16 and
                 32, so `encoder.embedding_projection` is used), 2 layers, 512 positions, saved as
                 safetensors;
* golden.json    versions, the tokenizer class BleurtTokenizer.from_pretrained returned, and for
                 (reference, candidate) pairs built to hit every rule (empty sides, whitespace,
                 Unicode and compatibility characters, [CLS] inside a text, pairs past 512 tokens
                 on one or both sides): the ids and token types the official call gives
                 (`tokenizer(refs, cands, padding="longest", truncation=True, max_length=512)`,
                 padding removed), and the logits for all pairs in one batch (2025's call) and in
                 batches of 8 (2026's).

Scratch environment (not needed by CI): torch 2.11.0 of the project's .venv, transformers 4.57.1,
sentencepiece and protobuf (/tmp/tfpkgs, see ../deberta/gen.py) and bleurt-pytorch 0.0.1:

    .venv/bin/python -m pip install --target /tmp/bspkgs --no-deps bleurt-pytorch==0.0.1
    PYTHONPATH=/tmp/bspkgs:/tmp/tfpkgs .venv/bin/python data-fixtures/bleurt/gen.py
"""
import io
import json
import math
import os
import shutil

import sentencepiece as spm
import torch
import transformers
from bleurt_pytorch import BleurtConfig, BleurtForSequenceClassification, BleurtTokenizer
from bleurt_pytorch.bleurt.tokenization_bleurt_sp import BleurtSPTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "tiny-bleurt")

LONG = ("portable chest radiograph demonstrates a right internal jugular central venous catheter with "
        "its tip in the superior vena cava and a small left pleural effusion ")

PAIRS = [
    ("chest radiograph showing a left pleural effusion", "left pleural effusion"),
    ("", ""),
    ("normal chest x ray", ""),
    ("", "normal chest x ray"),
    ("   ", " a "),
    ("ct numbernumber cm mass", "ct  numbernumber   cm\tmass"),
    ("dilatación del ventrículo ² ß numberx", "dilatacion del ventriculo number x"),
    ("ﬁbrosis Ⅻ ＡＢＣ ｶﾀｶﾅ café", "fibrosis XII ABC カタカナ cafe\u0301"),
    ("[CLS] a [SEP] b", "no evidence of pneumothorax"),
    ("he said no to numbernumber cts", "He said \"no\" to 10/20 CT's"),
    (LONG * 20, "a small left pleural effusion"),
    ("a small left pleural effusion", LONG * 20),
    (LONG * 14, LONG * 13),
    (LONG * 13, LONG * 13),
]


def corpus():
    sides = ["left", "right", "bilateral"]
    findings = ["pleural effusion", "pneumothorax", "consolidation", "nodule", "mass", "cardiomegaly",
                "atelectasis", "opacity", "fracture", "catheter", "edema", "numbernumber cm"]
    lines = [f"chest radiograph showing a {sides[i % 3]} {findings[i % 12]} number" for i in range(300)]
    lines += [LONG] * 20
    lines += ["dilatación del ventrículo café über straße naïve résumé"] * 10
    lines += ["he said no to ct scans and x rays", "ABC XII fibrosis カタカナ"] * 10
    words = ("the of and in with no evidence small large upper lower lobe zone tube line tip seen "
             "normal stable unchanged interval increased decreased mild moderate severe").split()
    lines += [" ".join(words[(i * 7 + k) % len(words)] for k in range(9)) for i in range(200)]
    return lines


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
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def build():
    shutil.rmtree(MODEL, ignore_errors=True)
    os.makedirs(MODEL)
    model_file = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()), model_writer=model_file, vocab_size=150, hard_vocab_limit=False, model_type="unigram",
        normalization_rule_name="nmt_nfkc", pad_id=0, pad_piece="[PAD]", unk_id=1, unk_piece="[UNK]",
        bos_id=2, bos_piece="[CLS]", eos_id=3, eos_piece="[SEP]", control_symbols=["[MASK]"],
        character_coverage=1.0, minloglevel=2)
    spm_path = os.path.join(HERE, "spm.model.tmp")
    with open(spm_path, "wb") as f:
        f.write(model_file.getvalue())
    BleurtSPTokenizer(spm_path, do_lower_case=False).save_pretrained(MODEL)
    os.remove(spm_path)
    tok = BleurtTokenizer.from_pretrained(MODEL)
    config = BleurtConfig(vocab_size=len(tok), embedding_size=16, hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=4, intermediate_size=48, max_position_embeddings=512,
                          type_vocab_size=2, pad_token_id=0)
    torch.manual_seed(5)
    model = BleurtForSequenceClassification(config)
    reinit_(model, 5)
    model.save_pretrained(MODEL, safe_serialization=True)
    for junk in ("generation_config.json", "added_tokens.json", "special_tokens_map.json"):
        path = os.path.join(MODEL, junk)
        if os.path.exists(path):
            os.remove(path)
    return BleurtTokenizer.from_pretrained(MODEL), BleurtForSequenceClassification.from_pretrained(MODEL).eval()


def main():
    torch.set_num_threads(2)
    tok, model = build()
    refs = [r for r, _ in PAIRS]
    cands = [c for _, c in PAIRS]
    inputs = tok(refs, cands, padding="longest", return_tensors="pt", truncation=True, max_length=512)
    with torch.no_grad():
        whole = model(**inputs).logits.flatten().tolist()
        batched = []
        for start in range(0, len(PAIRS), 8):
            part = tok(refs[start:start + 8], cands[start:start + 8], padding="longest",
                       return_tensors="pt", truncation=True, max_length=512)
            batched += model(**part).logits.flatten().tolist()
    rows = []
    for i, (r, c) in enumerate(PAIRS):
        n = int(inputs["attention_mask"][i].sum())
        rows.append({"reference": r, "candidate": c, "ids": inputs["input_ids"][i, :n].tolist(),
                     "types": inputs["token_type_ids"][i, :n].tolist()})
    out = {"versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                        "sentencepiece": spm.__version__, "bleurt_pytorch": "0.0.1"},
           "tokenizer_class": type(tok).__name__, "pairs": rows, "logits_one_batch": whole,
           "logits_batches_of_8": batched}
    with open(os.path.join(HERE, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
