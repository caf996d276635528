#!/usr/bin/env python3
"""Golden values for medcap-metrics' `imageclef` module, made by the official
ImageCLEFmedical Caption evaluators themselves: their file loaders and format
checks (caption and concept tasks), their caption preprocessing and ROUGE-1,
and their concept-detection scores, on files built to hit every rule.

The evaluators are not packages: check them out at the commits medcap follows,
into one directory per year, and point --evaluators at it:

    git clone https://github.com/taubsity/clef-caption-evaluation E/2025
    git -C E/2025 checkout ce1308618eb379bc6d1650f6853c10efc628d952
    git clone https://github.com/taubsity/clef-caption-evaluation-2026 E/2026
    git -C E/2026 checkout 9966c1351d8830eeaff12431c220d6503a8c5939
    git clone https://github.com/TiagoFilipeSousaGoncalves/ImageCLEFmedical2023VCMI E/2023
    git -C E/2023 checkout d8fa3f10f6c8cfd9e11df509def45077e1285900

Scratch environment (not needed by CI), Python 3.11:

    python3 -m venv /tmp/clef && /tmp/clef/bin/pip install scikit-learn numpy rouge-score==0.1.2 tqdm
    /tmp/clef/bin/python data-fixtures/imageclef/gen.py --evaluators E > data-fixtures/imageclef/golden.json

Versions used for the committed golden.json: Python 3.11.7, scikit-learn 1.7,
numpy 2.3, rouge-score 0.1.2. The caption evaluators import their models'
packages at the top (bert_score, alignscore, bleurt_pytorch, MedCAT,
MedImageInsight, torch); those modules are replaced by empty stand-ins here.
The loaders, the checks, the preprocessing and ROUGE run as they are; the
official MedCAT and Similarity code (`medcat_scorer.py`'s F1,
`compute_medcats`, `compute_similarity` of 2025 and 2026) runs on stand-in
entities and float32 embeddings drawn from each text's digest, which
golden.json records beside the values, so that medcap scores the same inputs.
`evaluate.load("rouge")` (which fetches its script from the Hugging Face hub)
is replaced by what that script computes: rouge-score's scorer with the four
default ROUGE types and `use_aggregator=False`, a one-element list per type.
"""
import argparse
import base64
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import types

import numpy as np
from rouge_score import rouge_scorer


class Rouge:
    """evaluate's `rouge` metric (metrics/rouge/rouge.py), use_aggregator=False."""

    def compute(self, predictions, references, use_aggregator=True, use_stemmer=False):
        assert not use_aggregator
        types_ = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
        scorer = rouge_scorer.RougeScorer(rouge_types=types_, use_stemmer=use_stemmer)
        out = {t: [] for t in types_}
        for ref, pred in zip(references, predictions):
            score = scorer.score(ref, pred)
            for t in types_:
                out[t].append(score[t].fmeasure)
        return out


def stub_modules():
    """Empty stand-ins for the model packages the caption evaluators import."""
    evaluate = types.ModuleType("evaluate")
    evaluate.load = lambda name: Rouge()
    sys.modules["evaluate"] = evaluate
    torch = types.ModuleType("torch")
    torch.no_grad = contextlib.nullcontext
    sys.modules["torch"] = torch
    for name, attrs in [
        ("alignscore", ["AlignScore"]),
        ("bert_score", ["BERTScorer"]),
        ("medcat_scorer", ["MedCatScorer"]),
        ("bleurt_pytorch", ["BleurtConfig", "BleurtForSequenceClassification", "BleurtTokenizer"]),
        ("medimageinsightmodel", ["MedImageInsight"]),
    ]:
        module = types.ModuleType(name)
        for attr in attrs:
            setattr(module, attr, type(attr, (), {}))
        sys.modules[name] = module


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def caption_module(evaluators, year, work):
    """The year's caption evaluator, copied beside an empty MedImageInsights
    directory (the 2025/2026 modules refuse to import without one)."""
    here = os.path.join(work, f"caption-{year}")
    os.makedirs(os.path.join(here, "MedImageInsights"), exist_ok=True)
    shutil.copy(os.path.join(evaluators, year, "caption_prediction", "evaluator.py"), here)
    module = load_module(os.path.join(here, "evaluator.py"), f"caption_{year}")
    check = None
    if year == "2026":
        check = load_module(
            os.path.join(evaluators, year, "caption_prediction", "submission_check.py"),
            "caption_check_2026",
        )
    return module, check


def concept_module(evaluators, year):
    module = load_module(
        os.path.join(evaluators, year, "concept_detection", "evaluator.py"), f"concept_{year}"
    )
    check = None
    if year == "2026":
        check = load_module(
            os.path.join(evaluators, year, "concept_detection", "submission_check.py"),
            "concept_check_2026",
        )
    return module, check


def write(work, name, text):
    path = os.path.join(work, name)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return path


def outcome_of(call):
    """('ok', value) or ('error', kind, message)."""
    try:
        return {"ok": call()}
    except Exception as e:  # the evaluators raise bare Exceptions
        return {"error": type(e).__name__, "message": str(e)}


GT_2025 = (
    "ID,Caption\n"
    'img1,"A 3.5 cm mass, left lung."\n'
    "img2,Normal chest X-ray\n"
    "img3,\n"
    "img4,Dilatación del ventrículo ² (ß) 2x\n"
    'img5,"He said ""no"" to 10/20 CT\'s"\n'
)
GT_2023 = (
    "ID|Caption\n"
    "img1|A 3.5 cm mass, left lung.\n"
    "img2|Normal chest X-ray\n"
    "img3|\n"
    "img4|Dilatación del ventrículo ² (ß) 2x\n"
)

CAPTION_CASES_2025 = {
    "complete": (
        "ID,Caption\n"
        'img2,"normal chest x ray, no effusion"\n'
        "img1,mass 35 cm in the left lung\n"
        "img3,\n"
        "img4,Dilatacion del ventriculo 2 x\n"
        "img5,CT 10 20\n"
    ),
    "complete_crlf_quotes": (
        "ID,Caption\r\n"
        'img1,"a ""quoted"" mass\r\nover two lines"\r\n'
        "img2,chest\r\n"
        "img3,\r\n"
        "img4,\"x\"y\r\n"
        "img5,\r\n"
    ),
    "in_order": (
        "ID,Caption\n"
        'img1,"mass 35 cm, in the left lung"\n'
        "img2,normal chest x ray\n"
        "img3,\n"
        "img4,\n"
        'img5,"CT 10, 20 ""s"""\n'
    ),
    "no_both_empty": (
        "id,caption\n"
        "img1,mass 3 cm\n"
        "img2,normal\n"
        "img3,anything\n"
        "img4,x\n"
        "img5,ct\n"
    ),
    "no_header": "img1,a\nimg2,b\nimg3,c\nimg4,d\nimg5,e\n",
    "no_header_repeating_first": "img1,a\nimg1,a2\nimg2,b\nimg3,c\nimg4,d\nimg5,e\n",
    "other_header": "ImageID,Caption\nimg1,a\nimg2,b\nimg3,c\nimg4,d\nimg5,e\n",
    "bom_header": "\ufeffID,Caption\nimg1,a\nimg2,b\nimg3,c\nimg4,d\nimg5,e\n",
    "duplicate": "ID,Caption\nimg1,a\nimg2,b\nimg1,c\nimg4,d\nimg5,e\n",
    "unknown": "ID,Caption\nimg1,a\nimg9,b\n",
    "missing": "ID,Caption\nimg1,a\nimg2,b\nimg3,c\n",
    "blank_line": "ID,Caption\nimg1,a\n\nimg2,b\n",
    "one_field": "ID,Caption\nimg1,a\nimg2\n",
    "only_header": "ID,Caption\n",
    "extra_field": "ID,Caption\nimg1,a,b\nimg2,b\nimg3,\nimg4,d\nimg5,e\n",
    "unquoted_comma": "ID,Caption\nimg1,a, b\nimg2,b\nimg3,\nimg4,d\nimg5,e\n",
    "out_of_order": "ID,Caption\nimg2,b\nimg1,a\nimg3,\nimg4,d\nimg5,e\n",
    "space_in_id": "ID,Caption\n img1,a\nimg2,b\nimg3,\nimg4,d\nimg5,e\n",
    "trailing_blank_lines": "ID,Caption\nimg1,a\nimg2,b\nimg3,\nimg4,d\nimg5,e\n\n",
    "extra_id": "ID,Caption\nimg1,a\nimg2,b\nimg3,\nimg4,d\nimg5,e\nimg6,f\n",
}

CAPTION_CASES_2023 = {
    "complete": (
        "ID|Caption\n"
        "img2|normal chest x ray, no effusion\n"
        "img1|mass 35 cm in the left lung\n"
        "img3|some words\n"
        "img4|Dilatacion del ventriculo 2 x\n"
    ),
    "tabs_no_header": "img1\ta\nimg2\tb\nimg3\tc\nimg4\td\n",
    "header_rows_anywhere": "ID|Caption\nimg1|a\nmyID|x\nimg2|b\nimg3|c\nimg4|d\n",
    "duplicate": "img1|a\nimg1|b\n",
    "unknown": "img9|a\n",
    "one_field": "img1|a\nimg2\n",
    "missing": "img1|a\nimg2|b\n",
    "quote_is_a_character": 'img1|"a|b"\nimg2|b\nimg3|c\nimg4|d\n',
}

CONCEPT_GT = "ID,CUIs\nimg1,C0002978;C0040405\nimg2,C0024485\nimg3,\nimg4,C9999999;c0032743\n"
CONCEPT_MANUAL = "ID,CUIs\nimg1,C0002978\nimg2,C0000001\nimg3,\nimg4,C0032743;C0040405;c0006141\n"
CONCEPT_GT_2023 = "ID|CUIs\nimg1|C0002978;C0040405\nimg2|C0024485\nimg3|\nimg4|C9999999;c0032743\n"

CONCEPT_CASES = {
    "complete": "ID,CUIs\nimg1,C0002978;C0000726\nimg2,c0024485\nimg3,\nimg4,C0032743;C0040405\n",
    "empty_predictions": "ID,CUIs\nimg1\nimg2,\nimg3,C1\nimg4,C0032743 ; C0040405 \n",
    "trailing_semicolon": "ID,CUIs\nimg1,C0002978;\nimg2,C0024485\nimg3,\nimg4,C0032743\n",
    "double_empty": "ID,CUIs\nimg1,C0002978;;\nimg2,C1\nimg3,\nimg4,C2\n",
    "duplicate_concept": "ID,CUIs\nimg1,C1;C1\n",
    "case_duplicates_pass_2025": "ID,CUIs\nimg1,C1;c1\nimg2,C0024485\nimg3,\nimg4,C2\n",
    "too_many": "ID,CUIs\nimg1," + ";".join(f"C{i}" for i in range(101)) + "\n",
    "exactly_100": "ID,CUIs\nimg1," + ";".join(f"C{i}" for i in range(100)) + "\nimg2,C1\nimg3,\nimg4,C2\n",
    "three_fields": "ID,CUIs\nimg1,C1,C2\n",
    "unknown": "ID,CUIs\nimg7,C1\n",
    "duplicate_id": "ID,CUIs\nimg1,C1\nimg1,C2\n",
    "missing": "ID,CUIs\nimg1,C1\nimg2,C2\n",
    "header_in_the_middle": "img1,C0002978\nID,CUIs\nimg2,C0024485\nxIDx,C1\nimg3,\nimg4,C0032743\n",
    "blank_line": "ID,CUIs\nimg1,C1\n\nimg2,C2\n",
    "invalid_cui_2026": "ID,CUIs\nimg1,X12\nimg2,C2\nimg3,\nimg4,C3\n",
    "spaces_2026": "ID,CUIs\nimg1,C1 \nimg2,C2\nimg3,\nimg4,C3\n",
    "unicode_digits_2026": "ID,CUIs\nimg1,C\u0663\u0664\nimg2,C2\nimg3,\nimg4,C3\n",
}
CONCEPT_CASES_2023 = {
    "complete": "ID|CUIs\nimg1|C0002978;C0000726\nimg2|c0024485\nimg3|\nimg4|C0032743;C0040405\n",
    "tabs": "img1\tC0002978\nimg2\tC0024485\nimg3\t\nimg4\tC0032743\n",
    "duplicate_concept": "img1|C1;C1\n",
    "three_fields": "img1|C1|C2\n",
}


def fake_entities(text):
    """MedCAT's entities stood in for: each word of four letters or more is
    a concept (its CUI from the word's digest, its name the word), some
    names shared by two CUIs and some CUIs by two names, as MedCAT's can be."""
    out = {}
    for i, word in enumerate(w for w in text.lower().split() if len(w) >= 4):
        digest = int(hashlib.sha256(word.strip(".,").encode()).hexdigest(), 16)
        cui = "C%07d" % (digest % 7)
        out[i] = {"pretty_name": word[:5], "cui": cui}
    return {"entities": out}


class FakeCat:
    def get_entities(self, text):
        return fake_entities(text)


def fake_vector(key, dim=8):
    """A float32 embedding drawn from the key's digest, as the model's are float32."""
    seed = int(hashlib.sha256(key.encode()).hexdigest(), 16) % (2**32)
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


class FakeInsight2025:
    """MedImageInsight for 2025's compute_similarity: the image is named by
    the bytes of its file (the id), the text by itself."""

    def load_model(self):
        pass

    def encode(self, images, texts):
        key = base64.decodebytes(images[0].encode()).decode()
        return {"image_embeddings": [fake_vector("image:" + key)],
                "text_embeddings": [fake_vector("text:" + texts[0])]}


def model_components(module, year, evaluator, pairs, work):
    """The official MedCAT and Similarity code on stand-in entities and
    embeddings, per caption; with the inputs that produced them."""
    medcat = load_module(
        os.path.join(EVALUATORS, year, "caption_prediction", "medcat_scorer.py"), f"medcat_{year}"
    )
    scorer = medcat.MedCatScorer.__new__(medcat.MedCatScorer)
    scorer.cat = FakeCat()
    evaluator.medcat_scorer = scorer
    entities = {}
    for k, caption in pairs.items():
        side = lambda t: [[e["cui"], e["pretty_name"]] for e in fake_entities(t)["entities"].values()]
        entities[k] = [side(evaluator.gt[k]), side(caption)]
    per_medcat = [float(evaluator.compute_medcats({k: pairs[k]})) for k in pairs]
    embeddings = {k: [fake_vector("image:" + k).tolist(), fake_vector("text:" + pairs[k]).tolist()] for k in pairs}
    if year == "2025":
        images = os.path.join(os.path.dirname(evaluator.ground_truth_path), "images")
        os.makedirs(images, exist_ok=True)
        for k in pairs:
            with open(os.path.join(images, k + ".jpg"), "wb") as f:
                f.write(k.encode())
        evaluator.image_similarity_scorer = FakeInsight2025()
    else:
        evaluator.device = "cpu"
        evaluator._image_embeddings = {k: fake_vector("image:" + k) for k in pairs}
        evaluator._load_image_similarity_scorer = lambda: None
        evaluator._encode_texts = lambda texts: [fake_vector("text:" + t) for t in texts]
    per_similarity = [float(evaluator.compute_similarity({k: pairs[k]})) for k in pairs]
    return {
        "entities": entities,
        "medcat": per_medcat,
        "embeddings": embeddings,
        "similarity": per_similarity,
    }


def caption_cases(evaluators, work):
    out = []
    for year in ["2023", "2025", "2026"]:
        module, check = caption_module(evaluators, year, work)
        gt_text = GT_2023 if year == "2023" else GT_2025
        gt_path = write(work, f"gt-{year}.csv", gt_text)
        evaluator = module.CaptionEvaluator.__new__(module.CaptionEvaluator)
        evaluator.ground_truth_path = gt_path
        evaluator.gt = evaluator.load_gt()
        evaluator.scorers = {"rouge": (Rouge(),)}
        cases = CAPTION_CASES_2023 if year == "2023" else CAPTION_CASES_2025
        for name, text in cases.items():
            path = write(work, f"sub-{year}-{name}.csv", text)
            case = {"suite": f"imageclef-{year}", "case": name, "ground_truth": gt_text, "submission": text}

            def load():
                if check is not None:
                    check.check_submission(path, gt_path, "valid")
                return evaluator.load_predictions(path)

            loaded = outcome_of(load)
            if "error" in loaded:
                case["error"] = loaded
            else:
                pairs = loaded["ok"]
                case["pairs"] = [[k, v] for k, v in pairs.items()]
                unknown = [k for k in pairs if k not in evaluator.gt]
                if unknown:
                    case["scoring_error"] = f"KeyError: {unknown[0]!r}"
                else:
                    per = []
                    for k in pairs:
                        one = outcome_of(lambda: float(evaluator.compute_rouge({k: pairs[k]})))
                        per.append(one.get("ok", one.get("error")))
                    case["rouge1"] = per
                    whole = outcome_of(lambda: float(evaluator.compute_rouge(pairs)))
                    case["rouge1_official_mean"] = whole.get("ok", whole.get("error"))
                    if year != "2023":
                        case.update(model_components(module, year, evaluator, pairs, work))
            out.append(case)
    # The preprocessing itself, on its own.
    module, _ = caption_module(evaluators, "2025", work)
    evaluator = module.CaptionEvaluator.__new__(module.CaptionEvaluator)
    texts = [
        "CT 3.5 cm, ²٣ x", "  (A)  ", "The 1st and 22nd", "İstanbul ΣΑΣ", "a_b-c/d\\e", "",
        "x\u00a0y\u2028z", "１２ three ٣٤", "émigré’s “quote”",
    ]
    preprocess = [[t, evaluator.preprocess_caption(t)] for t in texts]
    return out, preprocess


def concept_cases(evaluators, work):
    out = []
    for year in ["2023", "2025", "2026"]:
        module, check = concept_module(evaluators, year)
        gt_text = CONCEPT_GT_2023 if year == "2023" else CONCEPT_GT
        manual_text = CONCEPT_MANUAL.replace(",", "|") if year == "2023" else CONCEPT_MANUAL
        gt_path = write(work, f"cgt-{year}.csv", gt_text)
        manual_path = write(work, f"cman-{year}.csv", manual_text)
        if year == "2023":
            evaluator = module.ConceptEvaluator(gt_path)
        else:
            evaluator = module.ConceptEvaluator(gt_path, manual_path)
        cases = CONCEPT_CASES_2023 if year == "2023" else CONCEPT_CASES
        for name, text in cases.items():
            path = write(work, f"csub-{year}-{name}.csv", text)
            case = {
                "suite": f"imageclef-{year}", "case": name, "ground_truth": gt_text,
                "manual": manual_text, "submission": text,
            }

            def load():
                if check is not None:
                    check.check_submission(path, gt_path, manual_path, "valid")
                return evaluator.load_predictions(path)

            loaded = outcome_of(load)
            if "error" in loaded:
                case["error"] = loaded
            else:
                predictions = loaded["ok"]
                case["predictions"] = [[k, list(v)] for k, v in predictions.items()]
                primary = outcome_of(lambda: float(evaluator.compute_primary_score(predictions)))
                case["primary"] = primary.get("ok", primary.get("error"))
                if year != "2023":
                    secondary = outcome_of(
                        lambda: float(evaluator.compute_secondary_score(predictions))
                    )
                    case["secondary"] = secondary.get("ok", secondary.get("error"))
            out.append(case)
    return out


EVALUATORS = None


def main():
    global EVALUATORS
    parser = argparse.ArgumentParser()
    parser.add_argument("--evaluators", required=True)
    args = parser.parse_args()
    stub_modules()
    sys.modules["medcat.cat"] = types.ModuleType("medcat.cat")
    sys.modules["medcat.cat"].CAT = type("CAT", (), {})
    sys.modules["medcat"] = types.ModuleType("medcat")
    EVALUATORS = args.evaluators
    with tempfile.TemporaryDirectory() as work:
        # The evaluators print progress; golden.json goes to stdout alone.
        real_stdout = sys.stdout
        sys.stdout = sys.stderr
        try:
            captions, preprocess = caption_cases(args.evaluators, work)
            concepts = concept_cases(args.evaluators, work)
        finally:
            sys.stdout = real_stdout
    json.dump(
        {"captions": captions, "concepts": concepts, "preprocess": preprocess},
        sys.stdout, indent=1, ensure_ascii=False,
    )
    print()


if __name__ == "__main__":
    main()
