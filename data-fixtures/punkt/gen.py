#!/usr/bin/env python3
"""Punkt parameters and nltk's sentence splits with them, for medcap's Punkt parity tests.

nltk's English parameters (`punkt_tab`) are a download medcap does not redistribute, so parity is
proven on parameters of the same kind trained here:

* punkt_tab/   abbrev_types.txt, collocations.tab, sent_starters.txt, ortho_context.tab, as nltk
               3.9's `save_punkt_params` writes them, from nltk's PunktTrainer run on a corpus this
               script writes (radiology-style sentences with abbreviations, initials, numbered
               items and frequent sentence starters), with a few abbreviations, a collocation and a
               sentence starter added so that every rule has something to act on;
* golden.json  versions and, for texts built to hit every rule (abbreviations, initials, numbers,
               ellipses, ?! runs, closing quotes and brackets after a break, line breaks, runs of
               whitespace, Unicode, empty and blank texts), the sentences
               `PunktTokenizer.tokenize` returns (what `nltk.sent_tokenize` does with English's).

Scratch environment (not needed by CI): nltk 3.9.1 and regex (in /tmp/tfpkgs, see ../deberta/gen.py), e.g.

    .venv/bin/python -m pip install --target /tmp/bspkgs --no-deps nltk==3.9.1 regex joblib click tqdm
    PYTHONPATH=/tmp/bspkgs:/tmp/tfpkgs .venv/bin/python data-fixtures/punkt/gen.py
"""
import json
import os
import shutil

import nltk
from nltk.tokenize.punkt import PunktSentenceTokenizer, PunktTrainer, load_punkt_params, save_punkt_params

HERE = os.path.dirname(os.path.abspath(__file__))
PARAMS = os.path.join(HERE, "punkt_tab")


def corpus():
    findings = ["effusion", "nodule", "mass", "consolidation", "pneumothorax", "fracture", "edema"]
    sides = ["left", "right"]
    lines = []
    for i in range(400):
        f, s = findings[i % 7], sides[i % 2]
        lines.append(f"The {s} lung shows a {f} of approx. {i % 9 + 1} cm (Fig. {i % 4 + 1}).")
        lines.append(f"There is no {f} on the {s} side. No change since the prior study.")
        lines.append(f"Dr. J. Smith reviewed the case no. {i}. However, the {f} persists.")
        lines.append(f"This was seen e.g. on CT. In the U.S. such cases are common.")
        lines.append(f"Item {i % 5 + 1}. the {f} was measured at {i % 30}.5 mm.")
    return " ".join(lines)


TEXTS = [
    "",
    "   ",
    "A single sentence without a final period",
    "Chest radiograph. Left pleural effusion.",
    "Mass in the lung (Fig. 2). No effusion.",
    "Reviewed by Dr. Smith. The mass is stable.",
    "J. Smith and K. Lee reported it. They agreed.",
    "The nodule measures approx. 3 cm. There is no change.",
    "Findings: 1. effusion 2. mass. The end.",
    "He said \"no effusion.\" The report ended.",
    "(Sent one.) Sent two.",
    "Wait... The image is blurred. Really?! Yes!!! Done.",
    "Is it a mass? No. It is a vessel.",
    "First line.\nSecond line.\n\nNew paragraph. Last one.",
    "Spaces  after.   Many   spaces.\tTab here.  ",
    "CT of the U.S. patient. In the U.S. cases are common.",
    "See e.g. the CT. This was seen i.e. on MRI.",
    "Résumé du cas. Épanchement pleural gauche. Ça va.",
    "Value 3.5 cm. Next 4.2 mm. End.",
    "The end.\" Then: 'quoted.' [Bracketed.] {Braced.} Last.",
    "A--B. C -- D. E.",
    "x. y. z.",
    "Numbered 12. The list continues.",
    "no. 5 was seen. However, it persists.",
    "Fig. 3 shows it. Fig. 4 does not.",
    "word.Another without space. Fine.",
    "End with space after period. ",
    "Ends with newline.\n",
    "Question?\"Quoted after.\" Next.",
    "ÉCHO. Ölfleck. ümlaut start. Ω sign.",
]


def main():
    trainer = PunktTrainer()
    trainer.INCLUDE_ALL_COLLOCS = True
    trainer.train(corpus(), finalize=True)
    params = trainer.get_params()
    params.abbrev_types.update({"fig", "approx", "e.g", "i.e", "no"})
    params.collocations.add(("##number##", "the"))
    params.sent_starters.update({"however", "there", "this"})
    shutil.rmtree(PARAMS, ignore_errors=True)
    save_punkt_params(params, dir=PARAMS)
    tokenizer = PunktSentenceTokenizer(load_punkt_params(PARAMS))
    out = {
        "versions": {"nltk": nltk.__version__},
        "cases": [{"text": t, "sentences": tokenizer.tokenize(t)} for t in TEXTS],
    }
    with open(os.path.join(HERE, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
