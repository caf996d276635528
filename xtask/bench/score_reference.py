"""The work of `medcap score --bleu-impl sacrebleu --no-findings` done with
the reference Python packages, for `cargo xtask bench score`.

Per caption: sacrebleu's sentence BLEU (13a, exp smoothing, effective
order), rouge-score's ROUGE-1/2/L/Lsum (max over references, as its
score_multi), pycocoevalcap's CIDEr-D over the whole set (13a tokens, as
medcap feeds it), and with --bertscore-model bert-score's P/R/F (max over
references); one JSON object per caption on stdout, then a summary line:
mean, sample s.d. and a 1,000-resample percentile bootstrap of each metric
(numpy, the same resampled captions for every metric, as medcap).

Usage: python score_reference.py HYPS REFS [REFS...] [--bertscore-model DIR --bertscore-layer N]
"""

import json
import sys

import numpy as np
import sacrebleu
from pycocoevalcap.cider.cider import Cider
from rouge_score import rouge_scorer
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a


def lines(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if not text:
        return []
    if text.endswith("\n"):
        text = text[:-1]
    return [l[:-1] if l.endswith("\r") else l for l in text.split("\n")]


def main(argv):
    model = layer = None
    if "--bertscore-model" in argv:
        i = argv.index("--bertscore-model")
        model, layer = argv[i + 1], int(argv[argv.index("--bertscore-layer") + 1])
        argv = argv[:i]
    hyps = lines(argv[0])
    refs = [list(r) for r in zip(*[lines(p) for p in argv[1:]])]
    n = len(hyps)
    names = ["bleu", "rouge1", "rouge2", "rougeL", "rougeLsum", "cider_d"]
    rouge = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"])
    columns = {k: np.zeros(n) for k in names}
    for i, (h, r) in enumerate(zip(hyps, refs)):
        columns["bleu"][i] = sacrebleu.sentence_bleu(h, r).score / 100.0
        s = rouge.score_multi(r, h)
        for k in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
            columns[k][i] = s[k].fmeasure
    tok = Tokenizer13a()
    gts = {i: [tok(x) for x in r] for i, r in enumerate(refs)}
    res = {i: [tok(h)] for i, h in enumerate(hyps)}
    _, per_image = Cider().compute_score(gts, res)
    columns["cider_d"][:] = per_image
    if model is not None:
        import bert_score

        p, r, f = bert_score.score(hyps, refs, model_type=model, num_layers=layer,
                                   batch_size=64, device="cpu")
        for k, v in (("bert_p", p), ("bert_r", r), ("bert_f1", f)):
            names.append(k)
            columns[k] = v.numpy().astype(np.float64)
    out = sys.stdout
    for i in range(n):
        out.write(json.dumps({k: float(columns[k][i]) for k in names}) + "\n")
    matrix = np.stack([columns[k] for k in names], axis=1)
    rng = np.random.default_rng(0)
    means = np.empty((1000, len(names)))
    for b in range(1000):
        means[b] = matrix[rng.integers(0, n, n)].mean(axis=0)
    summary = {}
    for j, k in enumerate(names):
        lo, hi = np.percentile(means[:, j], [2.5, 97.5])
        summary[k] = {"mean": float(matrix[:, j].mean()), "sd": float(matrix[:, j].std(ddof=1)),
                      "ci95": [float(lo), float(hi)], "n": n}
    out.write(json.dumps({"summary": summary}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
