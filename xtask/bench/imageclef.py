"""`cargo xtask bench imageclef`: ImageCLEFmedical Caption's text components computed by medcap
against the official 2025 evaluator itself, with the same models, on real captions, on this
machine; writes OUT/report.md.

Pairs: the reference of image i is caption i of the caption file, its candidate caption 7i + 1
(mod the file's length). Two cases:

* ROUGE-1 and the preprocessing on every caption of the file: `medcap score --suite
  imageclef-2025` (no model given) against the evaluator's `compute_rouge` (the evaluator built
  without its models, and evaluate's rouge as the script it fetches computes it);
* the model components on the first --pairs captions: BERTScore (DeBERTa of deberta-xlarge-mnli's
  geometry at layer 40, idf from the ground truth, one pair per call), BLEURT (BLEURT-20-D12's
  geometry) and AlignScore (AlignScore-base's geometry, nli_sp) with ROUGE-1: `medcap score
  --suite imageclef-2025 --bertscore-model ... --bleurt-model ... --alignscore-model ...` against
  the evaluator's `compute_bertscore`, `compute_rouge`, `compute_bleurt` and `compute_alignscore`.

The models are random, of the official geometries (timing depends on geometry, not weights), with
tokenizers trained here on the caption file (GPT-2-style byte-level BPE for DeBERTa and RoBERTa, a
SentencePiece unigram model for BLEURT), so that captions split into realistic numbers of tokens.
Each side runs once, as its own process, its wall time and peak memory measured by measure.py; the
two sides' means are compared too (the same work, not merely similar work). Model loading is
inside both timings.

Needs a Python with torch, transformers 4.57, bert-score 0.3.13, rouge-score, bleurt-pytorch 0.0.1,
nltk, sentencepiece, pytorch-lightning 1.9.5 and scikit-learn (see
data-fixtures/imageclef/gen_models.py), checkouts of the evaluators (--evaluators, as
data-fixtures/imageclef/gen.py describes) and of yuh-zha/AlignScore (--alignscore).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "data-fixtures", "imageclef"))


def read_captions(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            out.append(line.split("\t", 1)[1].strip() if "\t" in line else line.strip())
    return out


def write_csv(path, rows):
    import csv

    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ID", "Caption"])
        w.writerows(rows)


def split_files(out, captions, n, name):
    """captions.csv (the ground truth) and run.csv (the submission) of the first n images."""
    d = os.path.join(out, name, "valid")
    os.makedirs(d, exist_ok=True)
    ids = [f"img{i:05d}" for i in range(n)]
    write_csv(os.path.join(d, "captions.csv"), [(k, captions[i]) for i, k in enumerate(ids)])
    write_csv(os.path.join(d, "run.csv"),
              [(k, captions[(7 * i + 1) % len(captions)]) for i, k in enumerate(ids)])
    return d


def reinit_(model, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * (0.5 / math.sqrt(p.shape[1])))


def make_models(out, captions):
    """Random models of the official geometries, with tokenizers trained on the captions."""
    import io

    import sentencepiece as spm
    import torch
    import transformers
    from bleurt_pytorch import BleurtConfig, BleurtForSequenceClassification
    from bleurt_pytorch.bleurt.tokenization_bleurt_sp import BleurtSPTokenizer
    from tokenizers import ByteLevelBPETokenizer

    models = os.path.join(out, "models")
    if os.path.exists(os.path.join(models, "done")):
        return models
    shutil.rmtree(models, ignore_errors=True)
    os.makedirs(models)
    torch.manual_seed(0)
    # DeBERTa, deberta-xlarge-mnli's geometry.
    deberta = os.path.join(models, "deberta-xlarge-mnli")
    os.makedirs(deberta)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(captions, vocab_size=8000, min_frequency=2,
                            special_tokens=["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"])
    bpe.save_model(deberta)
    tok = transformers.DebertaTokenizer(os.path.join(deberta, "vocab.json"),
                                        os.path.join(deberta, "merges.txt"), model_max_length=512)
    tok.save_pretrained(deberta)
    config = transformers.DebertaConfig(vocab_size=len(tok), hidden_size=1024, num_hidden_layers=48,
                                        num_attention_heads=16, intermediate_size=4096,
                                        relative_attention=True, pos_att_type=["c2p", "p2c"],
                                        position_biased_input=False, max_position_embeddings=512,
                                        layer_norm_eps=1e-7, type_vocab_size=0)
    model = transformers.DebertaModel(config)
    reinit_(model, 1)
    model.save_pretrained(deberta, safe_serialization=True)
    del model
    # BLEURT, BLEURT-20-D12's geometry.
    bleurt = os.path.join(models, "BLEURT-20-D12")
    os.makedirs(bleurt)
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(captions), model_writer=buf, vocab_size=8000,
                                   hard_vocab_limit=False,
                                   model_type="unigram", normalization_rule_name="nmt_nfkc", pad_id=0,
                                   pad_piece="[PAD]", unk_id=1, unk_piece="[UNK]", bos_id=2,
                                   bos_piece="[CLS]", eos_id=3, eos_piece="[SEP]",
                                   control_symbols=["[MASK]"], minloglevel=2)
    spm_path = os.path.join(out, "spm.model")
    with open(spm_path, "wb") as f:
        f.write(buf.getvalue())
    bleurt_tok = BleurtSPTokenizer(spm_path, do_lower_case=False)
    bleurt_tok.save_pretrained(bleurt)
    config = BleurtConfig(vocab_size=len(bleurt_tok), embedding_size=128, hidden_size=768, num_hidden_layers=12,
                          num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512)
    model = BleurtForSequenceClassification(config)
    reinit_(model, 2)
    model.save_pretrained(bleurt, safe_serialization=True)
    del model
    # AlignScore, AlignScore-base's geometry (roberta-base), in a directory whose name says
    # roberta, as BERTAlignModel picks its class by the name.
    roberta = os.path.join(models, "roberta-base-geometry")
    os.makedirs(roberta)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(captions, vocab_size=8000, min_frequency=2,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(roberta)
    roberta_tok = transformers.RobertaTokenizer(os.path.join(roberta, "vocab.json"),
                                                os.path.join(roberta, "merges.txt"), model_max_length=512)
    roberta_tok.save_pretrained(roberta)
    config = transformers.RobertaConfig(vocab_size=len(roberta_tok), max_position_embeddings=514, type_vocab_size=1,
                                        pad_token_id=1, bos_token_id=0, eos_token_id=2)
    model = transformers.RobertaForMaskedLM(config)
    reinit_(model, 3)
    model.save_pretrained(roberta, safe_serialization=True)
    # AlignScore imports transformers' AdamW (training only), gone from 4.57; transformers may
    # have replaced its module in sys.modules by now, so the stand-in goes there.
    sys.modules["transformers"].AdamW = torch.optim.AdamW
    from alignscore.model import BERTAlignModel
    from safetensors.torch import save_file

    align = BERTAlignModel(model=roberta)
    reinit_(align, 4)
    align_dir = os.path.join(models, "AlignScore-base")
    os.makedirs(align_dir)
    for name in ("config.json", "vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy(os.path.join(roberta, name), align_dir)
    save_file({k: v.contiguous().clone() for k, v in align.state_dict().items()},
              os.path.join(align_dir, "model.safetensors"))
    open(os.path.join(models, "done"), "w").close()
    return models


def run_official(args):
    """The official 2025 evaluator's text components on one split, the models patched in; writes
    the per-caption values as JSON."""
    import numpy as np
    import torch

    import gen
    import gen_models

    torch.set_num_threads(args.threads)
    gen_models.install_stubs()
    sys.path.insert(0, os.path.join(args.alignscore, "src"))
    gen.EVALUATORS = args.evaluators
    models = os.path.join(args.out, "models")
    gen_models.DEBERTA = os.path.join(models, "deberta-xlarge-mnli")
    gen_models.DEBERTA_LAYER = 40
    gen_models.BLEURT = os.path.join(models, "BLEURT-20-D12")
    gen_models.ALIGNSCORE = os.path.join(models, "AlignScore-base")
    work = os.path.join(args.out, "python-work")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    module, _ = gen.caption_module(args.evaluators, "2025", work)
    module.BERTScorer = gen_models.tiny_scorer
    import bleurt_pytorch

    for name in ("BleurtConfig", "BleurtForSequenceClassification", "BleurtTokenizer"):
        setattr(module, name, gen_models.tiny_bleurt(getattr(bleurt_pytorch, name)))
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        module.AlignScore = gen_models.tiny_alignscore_factory(work)
        os.makedirs(os.path.join(work, "models", "MedCAT"), exist_ok=True)
        open(os.path.join(work, "models", "MedCAT", "pack.zip"), "w").close()
        truth = os.path.join(args.split, "captions.csv")
        if args.models:
            cwd = os.getcwd()
            os.chdir(work)
            try:
                evaluator = module.CaptionEvaluator(ground_truth_path=truth)
            finally:
                os.chdir(cwd)
        else:
            # ROUGE alone: the evaluator without its models (its __init__ loads them all).
            evaluator = module.CaptionEvaluator.__new__(module.CaptionEvaluator)
            evaluator.ground_truth_path = truth
            evaluator.gt = evaluator.load_gt()
            evaluator.scorers = {"rouge": (gen.Rouge(),)}
        pairs = evaluator.load_predictions(os.path.join(args.split, "run.csv"))
        out = {"rouge": float(evaluator.compute_rouge(pairs))}
        if args.models:
            out["bert"] = float(evaluator.compute_bertscore(pairs))
            out["bleurt"] = float(evaluator.compute_bleurt(pairs))
            out["align"] = float(evaluator.compute_alignscore(pairs))
    finally:
        sys.stdout = real_stdout
    json.dump({k: float(np.float64(v)) for k, v in out.items()}, sys.stdout)


def measure(cmd, out_path, env=None):
    line = subprocess.run([sys.executable, os.path.join(HERE, "measure.py"), out_path, "--", *cmd],
                          capture_output=True, text=True, env=env, check=True).stdout
    result = json.loads(line.strip().splitlines()[-1])
    if result["status"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {result['status']})")
    return result


def medcap_means(path):
    sums, n = {}, 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            n += 1
            for k in ("bert", "rouge", "bleurt", "align"):
                if k in row:
                    sums[k] = sums.get(k, 0.0) + row[k]
    return {k: v / n for k, v in sums.items()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--official", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--split", help=argparse.SUPPRESS)
    parser.add_argument("--models", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--medcap")
    parser.add_argument("--captions", required=True)
    parser.add_argument("--evaluators", required=True)
    parser.add_argument("--alignscore", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    if args.official:
        run_official(args)
        return
    sys.path.insert(0, os.path.join(args.alignscore, "src"))
    import gen_models

    gen_models.install_stubs()
    captions = read_captions(args.captions)
    os.makedirs(args.out, exist_ok=True)
    models = make_models(args.out, captions)
    punkt = os.path.join(ROOT, "data-fixtures", "punkt", "punkt_tab")
    rows = []
    for name, n, with_models in (("rouge", len(captions), False), ("models", args.pairs, True)):
        split = split_files(args.out, captions, n, name)
        cmd = [args.medcap, "score", "--suite", "imageclef-2025", "--submission",
               os.path.join(split, "run.csv"), "--ground-truth", os.path.join(split, "captions.csv"),
               "--format", "jsonl", "--device", "cpu"]
        if with_models:
            cmd += ["--bertscore-model", os.path.join(models, "deberta-xlarge-mnli"),
                    "--bleurt-model", os.path.join(models, "BLEURT-20-D12"),
                    "--alignscore-model", os.path.join(models, "AlignScore-base"), "--punkt", punkt]
        ours_path = os.path.join(args.out, f"{name}-medcap.jsonl")
        ours = measure(cmd, ours_path)
        theirs_path = os.path.join(args.out, f"{name}-official.json")
        official = [sys.executable, os.path.abspath(__file__), "--official", "--split", split,
                    "--captions", args.captions, "--evaluators", args.evaluators,
                    "--alignscore", args.alignscore, "--out", args.out,
                    "--threads", str(args.threads)] + (["--models"] if with_models else [])
        theirs = measure(official, theirs_path)
        with open(theirs_path) as f:
            official_means = json.loads(f.read().strip().splitlines()[-1])
        our_means = medcap_means(ours_path)
        for k, v in official_means.items():
            if abs(our_means[k] - v) > 1e-5:
                raise SystemExit(f"{name}: medcap's {k} mean {our_means[k]} differs from {v}")
        rows.append((name, n, ours, theirs, official_means))
    lines = [
        f"ImageCLEFmedical Caption 2025, text components, {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} threads; captions: {args.captions}\n",
        "| case | captions | medcap s | official s | ratio | medcap peak MiB | official peak MiB | means equal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, n, ours, theirs, means in rows:
        what = "ROUGE-1 + preprocessing" if name == "rouge" else "BERTScore, ROUGE-1, BLEURT, AlignScore"
        lines.append(
            f"| {what} | {n} | {ours['seconds']:.1f} | {theirs['seconds']:.1f} | "
            f"{theirs['seconds'] / ours['seconds']:.1f}x | {ours['max_rss_kib'] / 1024:.0f} | "
            f"{theirs['max_rss_kib'] / 1024:.0f} | {', '.join(sorted(means))} to 1e-5 |")
    report = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(report)
    print(report)


if __name__ == "__main__":
    main()
