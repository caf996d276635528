#!/usr/bin/env python3
"""A small random AlignScore checkpoint and the AlignScore code's values with it, for medcap's
AlignScore parity tests.

AlignScore-base.ckpt is 0.5 GB and there is no model hub here, so parity is proven on a model with
the same code path and a tiny geometry:

* tiny-alignscore/  a RoBERTa of tiny geometry (3 layers, width 32, 130 positions,
                    model_max_length 128; the byte-level BPE tokenizer of ../roberta/tiny-roberta)
                    inside AlignScore's own BERTAlignModel (yuh-zha/AlignScore `a0936d5`,
                    src/alignscore/model.py), its pooler and heads re-drawn, saved as a Lightning
                    checkpoint and converted to model.safetensors with the one line README gives
                    (`torch.load(ckpt, weights_only=False)["state_dict"]`, then safetensors'
                    save_file); config.json, vocab.json, merges.txt and tokenizer_config.json are
                    the base model's;
* golden.json       versions and (premise, hypothesis) pairs with the ids of the inferencer's
                    call (`tokenizer(premise, hypothesis, truncation="only_first",
                    padding="max_length", max_length=128)`, padding removed) and the probability it
                    gives (`Inferencer.inference(...)[2][:, 0]`, the nli head's first class).

The AlignScore code is not a package on PyPI: point --alignscore at a checkout of
yuh-zha/AlignScore (its src/ is put on sys.path). spaCy, which its inferencer loads but never uses
for these calls, is stood in for, and so is transformers' AdamW (training only). Scratch environment (not needed by CI): torch 2.11.0 of the
project's .venv, transformers 4.57.1 (/tmp/tfpkgs, see ../deberta/gen.py) and pytorch-lightning
2.4.0:

    .venv/bin/python -m pip install --target /tmp/plpkgs --no-deps pytorch-lightning==2.4.0 \\
        lightning-utilities torchmetrics pyyaml fsspec
    PYTHONPATH=/tmp/bspkgs:/tmp/tfpkgs:/tmp/plpkgs .venv/bin/python data-fixtures/alignscore/gen.py \\
        --alignscore AlignScore
"""
import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import types

import torch
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "tiny-alignscore")
TOKENIZER = os.path.join(HERE, "..", "roberta", "tiny-roberta")
MAX_LEN = 128

PAIRS = [
    ("Chest radiograph showing a left pleural effusion.", "left pleural effusion"),
    ("Normal chest X-ray", "There is a large mass."),
    ("", "anything"),
    ("CT of the thorax: right upper lobe nodule measuring 12 mm.", "Nodule in the right upper lobe."),
    ("Résumé: épanchement pleural gauche.", "épanchement"),
    ("portable chest radiograph demonstrates a right internal jugular central venous catheter " * 6,
     "the catheter tip is in the superior vena cava"),
]


def stub_spacy():
    """spaCy stood in for, and transformers' AdamW (gone from transformers 4.57; AlignScore imports
    it for training only) given as torch's."""
    spacy = types.ModuleType("spacy")
    spacy.load = lambda name: None
    sys.modules["spacy"] = spacy
    transformers.AdamW = torch.optim.AdamW


def reinit_(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2:
                std = 1.0 if "embeddings" in name else 1.0 / math.sqrt(p.shape[1])
                p.copy_(torch.randn(p.shape, generator=g) * std)
            elif "LayerNorm.weight" in name:
                p.copy_(0.8 + 0.4 * torch.rand(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def base_model(work):
    """A random RoBERTa with tiny-roberta's tokenizer, in a directory whose name says roberta (as
    BERTAlignModel chooses its class by the name)."""
    base = os.path.join(work, "tiny-roberta-base")
    os.makedirs(base)
    for name in ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer.json"):
        shutil.copy(os.path.join(TOKENIZER, name), base)
    with open(os.path.join(TOKENIZER, "tokenizer_config.json")) as f:
        tok_config = json.load(f)
    tok_config["model_max_length"] = MAX_LEN
    with open(os.path.join(base, "tokenizer_config.json"), "w") as f:
        json.dump(tok_config, f, indent=2)
    tok = transformers.AutoTokenizer.from_pretrained(base)
    config = transformers.RobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=3,
                                        num_attention_heads=4, intermediate_size=64,
                                        max_position_embeddings=MAX_LEN + 2, type_vocab_size=1,
                                        pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                        layer_norm_eps=1e-5)
    torch.manual_seed(3)
    model = transformers.RobertaForMaskedLM(config)
    reinit_(model, 3)
    model.save_pretrained(base, safe_serialization=True)
    return base


def main():
    torch.set_num_threads(2)
    parser = argparse.ArgumentParser()
    parser.add_argument("--alignscore", required=True, help="a checkout of yuh-zha/AlignScore")
    args = parser.parse_args()
    stub_spacy()
    sys.path.insert(0, os.path.join(args.alignscore, "src"))
    from alignscore.inference import Inferencer
    from alignscore.model import BERTAlignModel

    with tempfile.TemporaryDirectory() as work:
        base = base_model(work)
        align = BERTAlignModel(model=base)
        reinit_(align.base_model.pooler, 4)
        reinit_(align.tri_layer, 5)
        with torch.no_grad():
            align.tri_layer.weight.mul_(8.0)  # probabilities spread over (0, 1)
        ckpt = os.path.join(work, "AlignScore-tiny.ckpt")
        torch.save({"state_dict": align.state_dict(), "hyper_parameters": dict(align.hparams),
                    "pytorch-lightning_version": "2.4.0"}, ckpt)
        shutil.rmtree(MODEL, ignore_errors=True)
        os.makedirs(MODEL)
        for name in ("config.json", "vocab.json", "merges.txt", "tokenizer_config.json"):
            shutil.copy(os.path.join(base, name), MODEL)
        # README's conversion, as typed there (in the model directory).
        import safetensors.torch as s
        s.save_file({k: v.contiguous().clone()
                     for k, v in torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"].items()},
                    os.path.join(MODEL, "model.safetensors"))
        inferencer = Inferencer(ckpt_path=ckpt, model=base, batch_size=32, device="cpu", verbose=False)
        inferencer.nlg_eval_mode = "nli"
        premises = [p for p, _ in PAIRS]
        hypos = [h for _, h in PAIRS]
        probs = inferencer.inference(premises, hypos)[1].tolist()
        batch = inferencer.tokenizer(premises, hypos, truncation="only_first", padding="max_length",
                                     max_length=MAX_LEN)
        rows = []
        for i, (p, h) in enumerate(PAIRS):
            n = sum(batch["attention_mask"][i])
            rows.append({"premise": p, "hypothesis": h, "ids": batch["input_ids"][i][:n],
                         "aligned": probs[i]})
        out = {"versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                            "alignscore": "a0936d5afee642a46b22f6c02a163478447aa493"},
               "model_max_length": MAX_LEN, "pairs": rows}
        with open(os.path.join(HERE, "golden.json"), "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
