#!/usr/bin/env python3
"""Golden values for medcap-metrics, computed with the reference packages.

Run in a scratch environment (not needed by CI):

    python3 -m venv /tmp/pyref
    /tmp/pyref/bin/pip install nltk==3.10.4 sacrebleu==2.6.0 rouge-score==0.1.2
    /tmp/pyref/bin/pip install --no-deps pycocoevalcap==1.2   # only its CIDEr-D (numpy) is used
    /tmp/pyref/bin/python data-fixtures/metrics/gen.py > data-fixtures/metrics/golden.json

Versions used for the committed golden.json: nltk 3.10.4, sacrebleu 2.6.0,
rouge-score 0.1.2, pycocoevalcap 1.2 with numpy 2.4 (Python 3.11). CIDEr-D is
fed white-space tokens of the raw text (pycocoevalcap's Java PTB tokenizer is
not run). The caption pairs are built deterministically
below: radiology-style templates with varied overlap, multiple references,
and the edge cases users meet (empty hypothesis or reference, shorter
than the n-gram order, punctuation only, repeated words, non-ASCII, very long,
CRLF).
"""
import json
import random
import warnings

import nltk
import rouge_score
import sacrebleu
from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu, sentence_bleu
from rouge_score import rouge_scorer
from nltk.stem.porter import PorterStemmer

warnings.filterwarnings("ignore")

MODALITY = ["Chest radiograph", "Chest X-ray", "Frontal chest radiograph", "PA chest X-ray", "Axial CT of the chest",
            "Portable AP chest film", "chest radiograph"]
FINDINGS = ["a 3.5 cm nodule in the right upper lobe", "a small left pleural effusion", "a right pneumothorax",
            "cardiomegaly with a cardiothoracic ratio of 0.62", "consolidation in the left lower zone",
            "an endotracheal tube with its tip 4.0 cm above the carina", "bilateral pleural effusions",
            "a 5-cm mass in the left hilum", "ground-glass opacities in both lungs", "no acute abnormality",
            "T2-weighted hyperintensity", "COVID-19 pneumonia with bilateral infiltrates"]
VERBS = ["showing", "demonstrates", "shows", "with", "reveals"]

EDGE = [
    ("", ["left pleural effusion"]),
    ("left pleural effusion", [""]),
    ("", [""]),
    ("effusion", ["left pleural effusion"]),
    ("a chest x-ray", ["chest x-ray showing a left pleural effusion"]),
    ("the cat sat on the mat", ["the cat is on the mat"]),
    ("a dog on the grass", ["chest radiograph with effusion"]),
    ("the heart is normal in size", ["the heart is normal", "heart size is normal and the lungs are clear"]),
    ("left pleural effusion", ["left pleural effusion"]),
    ("...", ["left pleural effusion."]),
    ("?!", ["!?"]),
    ("effusion effusion effusion effusion effusion", ["left pleural effusion"]),
    ("the the the the", ["the heart is the organ"]),
    ("Épanchement pleural gauche à la radiographie", ["épanchement pleural gauche"]),
    ("胸部X线片显示左侧胸腔积液", ["胸部X线片显示胸腔积液"]),
    ("Café au lait spots; µ-opioid receptor", ["cafe au lait spots and mu opioid receptor"]),
    ("Chest X-ray (PA view) shows a 3.5-cm nodule, right lung.", ["Chest X-ray (PA view): 3.5-cm nodule, right lung."]),
    ("bilateral pleural effusion noted", ["Bilateral pleural effusions are noted."]),
    ("no effusion.\nthe heart is normal.", ["the heart is normal.\nno effusion."]),
    ("left effusion.\r\nno pneumothorax.", ["no pneumothorax.\r\nsmall left effusion."]),
    ("Axial CT scan of the abdomen.", ["axial ct scan of the abdomen showing a mass."]),
    ("The lungs are clear. The heart is normal. No effusion.", ["Lungs clear.\nHeart normal.\nNo pleural effusion seen."]),
]


def make_pairs(n, seed=2023):
    rng = random.Random(seed)
    pairs = list(EDGE)
    while len(pairs) < n:
        m1, m2 = rng.choice(MODALITY), rng.choice(MODALITY)
        f = rng.sample(FINDINGS, rng.randint(1, 3))
        ref = f"{m1} {rng.choice(VERBS)} {' and '.join(f)}."
        mode = rng.random()
        if mode < 0.3:
            hyp = f"{m2} {rng.choice(VERBS)} {' and '.join(f)}."
        elif mode < 0.6:
            g = rng.sample(FINDINGS, rng.randint(1, 2))
            hyp = f"{m2} {rng.choice(VERBS)} {' and '.join(g)}."
        elif mode < 0.8:
            words = ref.split()
            rng.shuffle(words)
            hyp = " ".join(words[: rng.randint(1, len(words))])
        else:
            hyp = f"{m2} {rng.choice(VERBS)} {rng.choice(FINDINGS)}, {rng.choice(FINDINGS)}; {rng.choice(FINDINGS)}"
        refs = [ref]
        if rng.random() < 0.3:
            refs.append(f"{rng.choice(MODALITY)} {rng.choice(VERBS)} {' and '.join(rng.sample(FINDINGS, 2))}.")
        if rng.random() < 0.05:
            refs[0] = " ".join([ref] * 40)  # very long
        pairs.append((hyp, refs))
    return pairs


def nltk_sentence(hyp, refs, method):
    sf = getattr(SmoothingFunction(), f"method{method}")
    try:
        return float(sentence_bleu([r.split() for r in refs], hyp.split(), smoothing_function=sf))
    except (AssertionError, ZeroDivisionError):
        return None


def harvested_words():
    """A large English word list: every lowercase word of 3+ letters in the
    installed nltk package's sources (docstrings and comments), deterministic
    for a given nltk version."""
    import os
    import re
    words = set()
    root = os.path.dirname(nltk.__file__)
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(dirpath, name), encoding="utf-8", errors="ignore") as f:
                    words.update(re.findall(r"\b[a-z]{3,}\b", f.read()))
    return words


def main():
    pairs = make_pairs(300)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=False)
    stem_scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    out = []
    for hyp, refs in pairs:
        row = {"hyp": hyp, "refs": refs}
        row["nltk"] = [nltk_sentence(hyp, refs, m) for m in range(8)]
        sacre = {}
        for name, kwargs in [("exp", {}), ("floor", {"smooth_value": 0.1}), ("add-k", {"smooth_value": 1}),
                             ("none", {})]:
            sacre[name] = sacrebleu.sentence_bleu(hyp, refs, smooth_method=name, **kwargs).score / 100
        sacre["exp_no_eff"] = sacrebleu.sentence_bleu(hyp, refs, use_effective_order=False).score / 100
        sacre["exp_lower"] = sacrebleu.BLEU(lowercase=True, effective_order=True).sentence_score(hyp, refs).score / 100
        row["sacrebleu"] = sacre
        for key, sc in [("rouge", scorer), ("rouge_stem", stem_scorer)]:
            s = sc.score_multi(refs, hyp) if len(refs) > 1 else sc.score(refs[0], hyp)
            row[key] = {k: [v.precision, v.recall, v.fmeasure] for k, v in s.items()}
        out.append(row)
    corpus = {
        "sacrebleu_exp": sacrebleu.corpus_bleu([h for h, _ in pairs],
                                               [[r[0] for _, r in pairs]]).score / 100,
        "nltk": [float(corpus_bleu([[r[0].split()] for _, r in pairs], [h.split() for h, _ in pairs],
                                   smoothing_function=getattr(SmoothingFunction(), f"method{m}")))
                 for m in range(8) if m != 6],
    }
    from pycocoevalcap.cider.cider import Cider
    gts = {i: refs for i, (_, refs) in enumerate(pairs)}
    res = {i: [hyp] for i, (hyp, _) in enumerate(pairs)}
    cider_corpus, cider_images = Cider().compute_score(gts, res)
    cider_d_corpus = float(cider_corpus)
    for row, value in zip(out, cider_images):
        row["cider_d"] = float(value)
    stemmer = PorterStemmer()
    words = sorted({w for h, refs in pairs for t in [h] + refs for w in t.lower().split()} | set(WORDS)
                   | harvested_words())
    stems = {w: stemmer.stem(w) for w in words}
    print(json.dumps({"versions": {"nltk": nltk.__version__, "sacrebleu": sacrebleu.__version__,
                                   "rouge_score": "0.1.2"},
                      "pairs": out, "corpus_first_reference": corpus, "cider_d_corpus": cider_d_corpus, "porter": stems}, ensure_ascii=False,
                     indent=None))


WORDS = """effusions noted opacities consolidation atelectasis calcified degenerative hypodense weighted image
skies dying lying tying news innings outings cannings howe proceed exceed succeed generalization oscillators
relational conditional rational valenci hesitanci digitizer conformabli radicalli differentli vileli analogousli
vietnamization predication operator feudalism decisiveness hopefulness callousness formaliti sensitiviti
sensibiliti triplicate formative formalize electriciti electrical hopeful goodness revival allowance inference
airliner gyroscopic adjustable defensible irritant replacement adjustment dependent adoption homologou
communism activate angulariti homologous effective bowdlerize probate rate cease controll roll caresses ponies
ties caress cats feed agreed plastered bled motoring sing conflated troubled sized hopping tanned falling
hissing fizzed failing filing happy sky pneumothorax cardiomegaly mediastinal hilar bronchiectasis
emphysematous nodular reticular interstitial radiographs radiography lobes lobar pleural pericardial
thoracotomy sternotomy intubated extubation catheterization"""
WORDS = WORDS.split()

if __name__ == "__main__":
    main()
