#!/usr/bin/env python3
"""Small random DeBERTa (v1) checkpoints and transformers' hidden states with them, for medcap's
DeBERTa parity tests.

microsoft/deberta-xlarge-mnli is 1.6 GB and there is no model hub here, so parity is proven on
models with the same code paths and a tiny geometry:

* tiny-deberta/      deberta-xlarge-mnli's kind: relative attention with both terms
                     (`pos_att_type` written as the older "c2p|p2c" string), no absolute
                     positions (`position_biased_input` false, yet a stored position table, which
                     transformers drops), no token types, saved as DebertaForSequenceClassification
                     (keys under `deberta.`, a pooler and a classifier beside them); a GPT-2
                     byte-level BPE trained here with `tokenizers`, written as DebertaTokenizer
                     writes it (vocab.json, merges.txt, model_max_length 40, no tokenizer.json);
* tiny-deberta-abs/  the other options: absolute positions added to the input, two token
                     types, word embeddings narrower than the hidden width (`embed_proj`), a
                     relative span of 6 (distances clamped), `pos_att_type` ["p2c", "p2p"]
                     (transformers adds only p2c but counts both in the scale), a bare DebertaModel;
* golden.json        versions; per model, the texts, the slow DebertaTokenizer's ids (bert-score's
                     `sent_encode`: stripped, [CLS] ... [SEP], cut at model_max_length), and the
                     hidden states of every layer for the texts as one padded batch (valid tokens
                     only, row-major) after the first and the last layer, to 1e-6.

Scratch environment (not needed by CI): torch 2.11.0 of the project's .venv plus transformers
4.57.1 and bert-score 0.3.13, e.g.

    .venv/bin/python -m pip install --target /tmp/tfpkgs transformers==4.57.1
    .venv/bin/python -m pip install --target /tmp/bspkgs --no-deps pandas matplotlib
    PYTHONPATH=/tmp/bspkgs:/tmp/tfpkgs .venv/bin/python data-fixtures/deberta/gen.py
"""
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
from transformers import (DebertaConfig, DebertaForSequenceClassification, DebertaModel,
                          DebertaTokenizer)

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_LEN = 40
SPECIALS = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]  # ids 0..4

TEXTS = [
    "Chest radiograph showing a left pleural effusion.",
    "ct numbernumber cm mass in the right upper lobe",
    "",
    "   ",
    "Résumé: épanchement pleural gauche, naïve café",
    "x",
    "no evidence of pneumothorax the middle lobes are clear " * 4,
    "[CLS] inside text and   double  spaces\tand tabs",
]


def corpus():
    sides = ["left", "right", "bilateral"]
    places = ["upper", "middle", "lower"]
    findings = ["pleural effusion", "pneumothorax", "consolidation", "nodule", "mass", "cardiomegaly",
                "atelectasis", "opacity", "fracture", "catheter", "edema", "numbernumber cm"]
    frames = ["Chest radiograph showing a {s} {f} in the {p} zone.",
              "no evidence of {f} the {p} lobes are clear",
              "ct of the thorax {s} {p} lobe {f} measuring number cm"]
    lines = [frames[i % 3].format(s=sides[i % 3], p=places[(i // 3) % 3], f=findings[(i // 9) % 12])
             for i in range(600)]
    lines += ["Résumé: épanchement pleural gauche, naïve café, über straße.",
              "Numbers 0 1 2 3 4 5 6 7 8 9 10 and symbols ( ) [ ] ; : , . ! ? - / %"] * 20
    return lines


def reinit_(model, seed):
    """Weights wider than DeBERTa's initialisation, so that token vectors and attention differ."""
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


def tokenizer_into(model_dir):
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus(), vocab_size=500, min_frequency=2, special_tokens=SPECIALS)
    bpe.save_model(model_dir)
    slow = DebertaTokenizer(os.path.join(model_dir, "vocab.json"), os.path.join(model_dir, "merges.txt"),
                            model_max_length=MAX_LEN)
    slow.save_pretrained(model_dir)
    return DebertaTokenizer.from_pretrained(model_dir)


def clean(model_dir):
    for junk in ("generation_config.json", "tokenizer.json", "added_tokens.json"):
        path = os.path.join(model_dir, junk)
        if os.path.exists(path):
            os.remove(path)


def build_mnli_kind(model_dir):
    shutil.rmtree(model_dir, ignore_errors=True)
    os.makedirs(model_dir)
    tok = tokenizer_into(model_dir)
    config = DebertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=MAX_LEN, type_vocab_size=0,
                           relative_attention=True, max_relative_positions=-1, position_biased_input=False,
                           pos_att_type="c2p|p2c", layer_norm_eps=1e-7, num_labels=3, pad_token_id=0)
    torch.manual_seed(11)
    model = DebertaForSequenceClassification(config)
    reinit_(model, 11)
    state = model.state_dict()
    # The Hub's checkpoint stores a position table it does not use.
    state["deberta.embeddings.position_embeddings.weight"] = torch.randn(MAX_LEN, 32)
    model.save_pretrained(model_dir, state_dict=state, safe_serialization=True)
    # save_pretrained writes the list form; the Hub's config has the string form.
    path = os.path.join(model_dir, "config.json")
    with open(path) as f:
        stored = json.load(f)
    stored["pos_att_type"] = "c2p|p2c"
    with open(path, "w") as f:
        json.dump(stored, f, indent=2)
    clean(model_dir)
    return tok, DebertaModel.from_pretrained(model_dir).eval()


def build_other_options(model_dir):
    shutil.rmtree(model_dir, ignore_errors=True)
    os.makedirs(model_dir)
    tok = tokenizer_into(model_dir)
    config = DebertaConfig(vocab_size=len(tok), hidden_size=32, embedding_size=24, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=48, max_position_embeddings=MAX_LEN,
                           type_vocab_size=2, relative_attention=True, max_relative_positions=6,
                           position_biased_input=True, pos_att_type=["p2c", "p2p"], layer_norm_eps=1e-5,
                           pad_token_id=0)
    torch.manual_seed(12)
    model = DebertaModel(config)
    reinit_(model, 12)
    model.save_pretrained(model_dir, safe_serialization=True)
    clean(model_dir)
    return tok, DebertaModel.from_pretrained(model_dir).eval()


def hidden(tok, model):
    ids = [sent_encode(tok, t) for t in TEXTS]
    longest = max(len(i) for i in ids)
    input_ids = torch.tensor([i + [0] * (longest - len(i)) for i in ids])
    mask = torch.tensor([[1] * len(i) + [0] * (longest - len(i)) for i in ids])
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True)
    # The first layer and the last (parity of the last needs every layer
    # right), rounded to 1e-6, well inside the tests' 1e-5.
    layers = sorted({1, len(out.hidden_states) - 1})
    hidden_states = {
        str(n): [[round(x, 6) for x in out.hidden_states[n][row, : len(i)].reshape(-1).tolist()]
                 for row, i in enumerate(ids)]
        for n in layers
    }
    return {"texts": TEXTS, "ids": ids, "hidden": hidden_states}


def main():
    torch.set_num_threads(2)
    out = {"versions": {"bert_score": bert_score.__version__, "transformers": transformers.__version__,
                        "torch": torch.__version__, "tokenizers": tokenizers.__version__},
           "model_max_length": MAX_LEN}
    for name, build in (("tiny-deberta", build_mnli_kind), ("tiny-deberta-abs", build_other_options)):
        tok, model = build(os.path.join(HERE, name))
        out[name] = hidden(tok, model)
    with open(os.path.join(HERE, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
