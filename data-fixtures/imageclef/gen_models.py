#!/usr/bin/env python3
"""Golden values of ImageCLEFmedical Caption's model components, made by the official evaluators
themselves with small random models of the official architectures in place of the official
weights (only the model paths, and the layer a 3-layer model has, are patched):

* BERTScore: each year's `compute_bertscore` (2023: `evaluate`'s bertscore with
  microsoft/deberta-xlarge-mnli and no idf; 2025 and 2026: bert-score's BERTScorer with idf from
  the preprocessed ground truth, one pair per call), with data-fixtures/deberta/tiny-deberta at
  its layer 2 in place of deberta-xlarge-mnli at layer 40;
* BLEURT: 2025's and 2026's `compute_bleurt` (bleurt-pytorch's classes, all pairs in one call in
  2025, batches of 8 in 2026), with data-fixtures/bleurt/tiny-bleurt in place of
  lucadiliello/BLEURT-20-D12;
* AlignScore: 2025's and 2026's `compute_alignscore` (the AlignScore code's `AlignScore`,
  `nli_sp`), with data-fixtures/alignscore/tiny-alignscore in place of AlignScore-base (its
  converted weights back in a Lightning checkpoint) and nltk's Punkt with
  data-fixtures/punkt/punkt_tab in place of English's parameters (nltk's data path).

The evaluators are constructed as they are (their real `__init__`), with stand-ins for the
components not computed here (MedCAT, MedImageInsight), run on captions built
to hit every rule: digits inside words, punctuation only, empty captions on one or both sides,
Unicode, captions past the model's 40-token limit. Each pair is scored alone (a one-pair
submission dict) and the whole submission at once; a Python error is recorded as such.

Check out the evaluators as data-fixtures/imageclef/gen.py says, then (scratch environment, not
needed by CI: torch 2.11.0 of the project's .venv, transformers 4.57.1, bert-score 0.3.13,
rouge-score 0.1.2, bleurt-pytorch 0.0.1, nltk 3.9.1, pytorch-lightning 1.9.5 and scikit-learn, see
data-fixtures/{deberta,bleurt,alignscore,punkt}/gen.py; a checkout of yuh-zha/AlignScore at
`a0936d5` as --alignscore):

    PYTHONPATH=/tmp/bspkgs:/tmp/tfpkgs:/tmp/plpkgs .venv/bin/python \
        data-fixtures/imageclef/gen_models.py --evaluators E --alignscore AlignScore \
        > data-fixtures/imageclef/models.json
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import types

import bert_score
import bleurt_pytorch
import numpy as np
import torch
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen  # noqa: E402  (the caption module loader and ROUGE stand-in)

DEBERTA = os.path.join(HERE, "..", "deberta", "tiny-deberta")
DEBERTA_LAYER = 2
ALIGNSCORE_FACTORY = None
BLEURT = os.path.join(HERE, "..", "bleurt", "tiny-bleurt")
ALIGNSCORE = os.path.join(HERE, "..", "alignscore", "tiny-alignscore")
PUNKT = os.path.join(HERE, "..", "punkt", "punkt_tab")

GT = [
    ("m1", "Chest radiograph showing a left pleural effusion, 3.5 cm."),
    ("m2", "Normal chest X-ray"),
    ("m3", ""),
    ("m4", "Dilatación del ventrículo ² (ß) 2x"),
    ("m5", "CT of the thorax: right upper lobe nodule measuring 12 mm; no pneumothorax is seen in the "
           "middle lobes, which are clear, and the lower lobes show atelectasis with consolidation "
           "near the catheter tip and a small effusion."),
    ("m6", "!!!"),
    ("m7", "a1b22 word3 ct"),
    ("m8", "Edema"),
    ("m9", "no evidence of pneumothorax"),
]
SUBMISSION = [
    ("m1", "left pleural effusion of 35 cm"),
    ("m2", ""),
    ("m3", ""),
    ("m4", "dilatacion ventriculo 2 x"),
    ("m5", "no evidence of pneumothorax the middle lobes are clear " * 3),
    ("m6", "..."),
    ("m7", "a1b22 word3 ct"),
    ("m8", "   "),
    ("m9", "No evidence of pneumothorax."),
]


def quoted(text):
    return '"' + text.replace('"', '""') + '"'


def csv_text(rows, separator):
    head = "ID" + separator + "Caption\n"
    if separator == ",":
        return head + "".join(f"{k},{quoted(v)}\n" for k, v in rows)
    return head + "".join(f"{k}{separator}{v}\n" for k, v in rows)


class Anything:
    """A stand-in for a component this script does not compute."""

    def __init__(self, *args, **kwargs):
        pass

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        return cls()


class EvaluateBertScore:
    """evaluate's `bertscore` metric (metrics/bertscore/bertscore.py, v0.4.0): references wrapped
    one per list, idf sentences from them when idf is asked, a BERTScorer, its P/R/F lists."""

    def compute(self, predictions, references, model_type=None, num_layers=None, idf=False,
                batch_size=64, **kwargs):
        if isinstance(references[0], str):
            references = [[r] for r in references]
        idf_sents = [r for ref in references for r in ref] if idf else None
        scorer = tiny_scorer(model_type=model_type, num_layers=num_layers, batch_size=batch_size,
                             nthreads=4, all_layers=False, idf=idf, idf_sents=idf_sents,
                             device=None, lang=None, rescale_with_baseline=False,
                             use_fast_tokenizer=False, baseline_path=None)
        p, r, f = scorer.score(cands=predictions, refs=references, verbose=False, batch_size=batch_size)
        return {"precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist()}


def tiny_scorer(**kwargs):
    """bert-score's BERTScorer with the tiny DeBERTa for deberta-xlarge-mnli (path and layer)."""
    assert kwargs.get("model_type") == "microsoft/deberta-xlarge-mnli", kwargs
    kwargs.update(model_type=DEBERTA, num_layers=DEBERTA_LAYER)
    return bert_score.BERTScorer(**kwargs)


def tiny_bleurt(cls):
    """A bleurt-pytorch class whose from_pretrained loads the tiny BLEURT for BLEURT-20-D12."""

    class Tiny:
        @staticmethod
        def from_pretrained(name, *args, **kwargs):
            assert name == "lucadiliello/BLEURT-20-D12", name
            return cls.from_pretrained(BLEURT, *args, **kwargs)

    return Tiny


def tiny_alignscore_factory(work):
    """AlignScore with the tiny model: its directory copied under a name that says roberta (as
    BERTAlignModel picks its class by the name) and its weights back in a Lightning checkpoint; and
    AlignScore's sentence splitter given the fixture's Punkt parameters."""
    # transformers may have replaced its module in sys.modules since install_stubs.
    sys.modules["transformers"].AdamW = torch.optim.AdamW
    import alignscore
    import alignscore.inference
    from nltk.tokenize.punkt import PunktSentenceTokenizer, load_punkt_params
    from safetensors.torch import load_file

    base = os.path.join(work, "tiny-roberta-alignscore")
    shutil.copytree(ALIGNSCORE, base)
    ckpt = os.path.join(work, "AlignScore-tiny.ckpt")
    torch.save({"state_dict": load_file(os.path.join(base, "model.safetensors")),
                "hyper_parameters": {"model": base}, "pytorch-lightning_version": "1.9.5"}, ckpt)
    alignscore.inference.sent_tokenize = PunktSentenceTokenizer(load_punkt_params(PUNKT)).tokenize

    def make(**kwargs):
        assert kwargs["model"] == "roberta-large", kwargs
        assert kwargs["ckpt_path"].endswith("models/AlignScore/AlignScore-base.ckpt"), kwargs
        kwargs.update(model=base, ckpt_path=ckpt, device="cpu")
        return alignscore.AlignScore(**kwargs)

    return make


def install_stubs():
    evaluate = types.ModuleType("evaluate")
    evaluate.load = lambda name: {"rouge": gen.Rouge, "bertscore": EvaluateBertScore}[name]()
    sys.modules["evaluate"] = evaluate
    spacy = types.ModuleType("spacy")
    spacy.load = lambda name: None
    sys.modules["spacy"] = spacy
    # AlignScore imports transformers' AdamW (gone from 4.57) for training only.
    transformers.AdamW = torch.optim.AdamW
    for name, attrs in [
        ("medcat_scorer", ["MedCatScorer"]),
        ("medimageinsightmodel", ["MedImageInsight"]),
    ]:
        module = types.ModuleType(name)
        for attr in attrs:
            setattr(module, attr, type(attr, (Anything,), {}))
        sys.modules[name] = module


def outcome(call):
    try:
        return float(call())
    except Exception as e:  # noqa: BLE001  (recorded as the evaluator's own failure)
        return {"error": type(e).__name__, "message": str(e)}


def year_case(evaluators, year, work):
    module, _ = gen.caption_module(evaluators, year, work)
    module.BERTScorer = tiny_scorer
    module.AlignScore = ALIGNSCORE_FACTORY
    for name in ("BleurtConfig", "BleurtForSequenceClassification", "BleurtTokenizer"):
        setattr(module, name, tiny_bleurt(getattr(bleurt_pytorch, name)))
    separator = "|" if year == "2023" else ","
    data = os.path.join(work, f"data-{year}", "valid")
    os.makedirs(data, exist_ok=True)
    gt_path = os.path.join(data, "captions.csv")
    with open(gt_path, "w", encoding="utf-8", newline="") as f:
        f.write(csv_text(GT, separator))
    submission_path = os.path.join(work, f"run-{year}.csv")
    with open(submission_path, "w", encoding="utf-8", newline="") as f:
        f.write(csv_text(SUBMISSION, separator))
    os.makedirs(os.path.join(work, "models", "MedCAT"), exist_ok=True)
    open(os.path.join(work, "models", "MedCAT", "pack.zip"), "w").close()
    cwd = os.getcwd()
    os.chdir(work)
    try:
        evaluator = module.CaptionEvaluator(ground_truth_path=gt_path)
    finally:
        os.chdir(cwd)
    evaluator.device = "cpu"
    pairs = evaluator.load_predictions(submission_path)
    per = [outcome(lambda: evaluator.compute_bertscore({k: pairs[k]})) for k in pairs]
    bleurt = {}
    if year != "2023":
        bleurt = {
            "bleurt": [outcome(lambda: evaluator.compute_bleurt({k: pairs[k]})) for k in pairs],
            "bleurt_official_mean": outcome(lambda: evaluator.compute_bleurt(pairs)),
            "align": [outcome(lambda: evaluator.compute_alignscore({k: pairs[k]})) for k in pairs],
            "align_official_mean": outcome(lambda: evaluator.compute_alignscore(pairs)),
        }
    return {
        "suite": f"imageclef-{year}",
        "ground_truth": csv_text(GT, separator),
        "submission": csv_text(SUBMISSION, separator),
        "ids": list(pairs),
        "bertscore": per,
        "bertscore_official_mean": outcome(lambda: evaluator.compute_bertscore(pairs)),
        **bleurt,
    }


def main():
    torch.set_num_threads(2)
    parser = argparse.ArgumentParser()
    parser.add_argument("--evaluators", required=True)
    parser.add_argument("--alignscore", required=True, help="a checkout of yuh-zha/AlignScore")
    args = parser.parse_args()
    install_stubs()
    sys.path.insert(0, os.path.join(args.alignscore, "src"))
    gen.EVALUATORS = args.evaluators
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        with tempfile.TemporaryDirectory() as work:
            global ALIGNSCORE_FACTORY
            ALIGNSCORE_FACTORY = tiny_alignscore_factory(work)
            cases = [year_case(args.evaluators, year, work) for year in ["2023", "2025", "2026"]]
    finally:
        sys.stdout = real_stdout
    out = {
        "versions": {"bert_score": bert_score.__version__, "transformers": transformers.__version__,
                     "torch": torch.__version__, "numpy": np.__version__,
                     "bleurt_pytorch": "0.0.1"},
        "bertscore_model": "data-fixtures/deberta/tiny-deberta",
        "bertscore_layer": DEBERTA_LAYER,
        "bleurt_model": "data-fixtures/bleurt/tiny-bleurt",
        "alignscore_model": "data-fixtures/alignscore/tiny-alignscore",
        "punkt": "data-fixtures/punkt/punkt_tab",
        "cases": cases,
    }
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()
