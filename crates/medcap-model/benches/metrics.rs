//! Throughput of BLEU and ROUGE on 10,000 caption pairs, one thread, and of
//! the reference Python packages on the same pairs when a Python with nltk,
//! sacrebleu and rouge-score is available (`MEDCAP_BENCH_PYTHON`, default
//! `python3`; see data-fixtures/metrics/gen.py for the versions).
//!
//! BERTScore (all-MiniLM-L6-v2, layer 5, CPU) is included when
//! `MEDCAP_MINILM_DIR` is set, against bert-score
//! when the Python also has it (and torch); and a RoBERTa of roberta-large's
//! geometry at layer 17 (random weights: `cargo xtask parity
//! --roberta-large` makes it) when `MEDCAP_BENCH_ROBERTA_DIR` names it, on
//! the first `MEDCAP_BENCH_ROBERTA_PAIRS` pairs (default 500).
//!
//! BLEU and ROUGE: three rounds that alternate the two sides (five Rust runs
//! and one Python run per round), each side's fastest reported; BERTScore:
//! two alternating rounds of one run each (model loading included on both
//! sides, as `bert_score.score` loads its model on every call).
//!
//! With `MEDCAP_BENCH_CAPTIONS` naming a ROCO `captions.txt`, the pairs are
//! real captions, each against the next caption of the same imaging
//! modality (`cargo xtask bench metrics --real`).
//!
//! `cargo bench -p medcap-model --bench metrics` (or `cargo xtask bench metrics`). It
//! lives in medcap-model because BERTScore's row needs this crate's encoder;
//! medcap-metrics never links libtorch.
#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::process::Command;
use std::time::Instant;

use medcap_metrics::bleu::{Bleu, NltkSmoothing};
use medcap_metrics::rouge::Rouge;
use medcap_rng::SplitMix64;

/// Pairs scored (`MEDCAP_BENCH_PAIRS` overrides, for a quick look).
fn pair_count() -> usize {
    std::env::var("MEDCAP_BENCH_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

const MODALITY: [&str; 5] = [
    "Chest radiograph",
    "Chest X-ray",
    "Frontal chest radiograph",
    "PA chest X-ray",
    "Axial CT of the chest",
];
const FINDINGS: [&str; 8] = [
    "a 3.5 cm nodule in the right upper lobe",
    "a small left pleural effusion",
    "a right pneumothorax",
    "cardiomegaly with a cardiothoracic ratio of 0.62",
    "consolidation in the left lower zone",
    "an endotracheal tube with its tip 4.0 cm above the carina",
    "ground-glass opacities in both lungs",
    "no acute abnormality",
];

/// The imaging modality a real caption names, for pairing captions of the
/// same kind (a CT caption against another CT caption).
fn modality(caption: &str) -> &'static str {
    let lower = caption.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if has(&["mri", "magnetic resonance", "t1", "t2", "flair"]) {
        "mr"
    } else if has(&["ct ", "ct,", "ct.", "computed tomography", "hrct"]) {
        "ct"
    } else if has(&["ultraso", "sonogra", "echocardio", "doppler"]) {
        "us"
    } else if has(&["angiogra"]) {
        "angio"
    } else if has(&["pet", "scintigra", "spect"]) {
        "nuclear"
    } else if has(&["radiograph", "x-ray", "x ray", "cxr", "film"]) {
        "radiograph"
    } else {
        "other"
    }
}

/// Real captions (`MEDCAP_BENCH_CAPTIONS`: a ROCO `captions.txt`, `id<TAB>
/// caption` per line), each paired with the next caption of its modality.
fn real_pairs(path: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let captions: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(_, c)| c.trim().to_owned()))
        .filter(|c| !c.is_empty())
        .collect();
    let mut by_modality: std::collections::BTreeMap<&str, Vec<&String>> = Default::default();
    for c in &captions {
        by_modality.entry(modality(c)).or_default().push(c);
    }
    let mut pairs = Vec::new();
    for group in by_modality.values() {
        for (i, c) in group.iter().enumerate() {
            let partner = group[(i + 1) % group.len()];
            pairs.push(((*c).clone(), partner.clone()));
        }
    }
    pairs
}

fn caption(rng: &mut SplitMix64) -> String {
    let k = 1 + rng.below(3);
    let f: Vec<&str> = (0..k).map(|_| *rng.pick(&FINDINGS)).collect();
    format!("{} showing {}.", rng.pick(&MODALITY), f.join(" and "))
}

fn time<F: FnMut()>(mut f: F) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// The fastest of five runs: this shared machine's speed drifts by up to 2x
/// between runs, and the fastest run is the least disturbed one.
fn best_time<F: FnMut()>(mut f: F) -> f64 {
    (0..5).map(|_| time(&mut f)).fold(f64::INFINITY, f64::min)
}

const PYTHON: &str = r#"
import sys, time, warnings
warnings.filterwarnings("ignore")
import sacrebleu
from nltk.translate.bleu_score import sentence_bleu, SmoothingFunction
from rouge_score import rouge_scorer
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
pairs = [(lines[i], lines[i + 1]) for i in range(0, len(lines) - 1, 2)]
def timed(label, run):
    t = time.perf_counter()
    run()
    print(label, time.perf_counter() - t)
if len(sys.argv) == 2:
    timed("sacrebleu", lambda: [sacrebleu.sentence_bleu(h, [r]) for h, r in pairs])
    sf = SmoothingFunction().method1
    timed("nltk", lambda: [sentence_bleu([r.split()], h.split(), smoothing_function=sf) for h, r in pairs])
    sc = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"])
    timed("rouge", lambda: [sc.score(r, h) for h, r in pairs])
else:
    import bert_score
    n = int(sys.argv[4])
    t = time.perf_counter()
    bert_score.score([h for h, _ in pairs[:n]], [r for _, r in pairs[:n]], model_type=sys.argv[2],
                     num_layers=int(sys.argv[3]), batch_size=64, device="cpu")
    print("bertscore", time.perf_counter() - t)
"#;

/// One timed run of sacrebleu, nltk and rouge-score on `pairs.txt` in
/// `dir`, or with `bertscore` set, of bert-score alone with that model.
fn python_times(
    dir: &std::path::Path,
    bertscore: Option<&BertModel>,
) -> Option<Vec<(String, f64)>> {
    let python = std::env::var("MEDCAP_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(&python);
    cmd.arg("-c").arg(PYTHON).arg(dir.join("pairs.txt"));
    if let Some(model) = bertscore {
        cmd.arg(&model.dir)
            .arg(model.layer.to_string())
            .arg(model.pairs.to_string());
    }
    let out = cmd.output().ok()?;
    if !out.status.success() {
        println!(
            "({python} lacks nltk/sacrebleu/rouge-score: no Python comparison; set MEDCAP_BENCH_PYTHON)"
        );
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                l.split_once(' ')
                    .and_then(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
            })
            .collect(),
    )
}

/// A BERTScore model of the benchmark.
struct BertModel {
    label: &'static str,
    dir: String,
    layer: usize,
    /// Pairs scored (the first of the set).
    pairs: usize,
}

/// The MiniLM that setup installs, and the roberta-large-size RoBERTa when
/// one is named.
fn bertscore_models(n: usize) -> Vec<BertModel> {
    let mut models = Vec::new();
    if let Ok(dir) = std::env::var("MEDCAP_MINILM_DIR") {
        models.push(BertModel {
            label: "bertscore (all-MiniLM-L6-v2, layer 5)",
            dir,
            layer: 5,
            pairs: n,
        });
    }
    if let Ok(dir) = std::env::var("MEDCAP_BENCH_ROBERTA_DIR") {
        let pairs = std::env::var("MEDCAP_BENCH_ROBERTA_PAIRS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(500);
        models.push(BertModel {
            label: "bertscore (RoBERTa, roberta-large geometry, layer 17)",
            dir,
            layer: 17,
            pairs: pairs.min(n),
        });
    }
    models
}

fn time_bertscore(pairs: &[(String, String)], model: &BertModel) -> Option<f64> {
    use medcap_metrics::bertscore::{BertScoreOptions, bert_score_with};
    use medcap_model::bertscore::BertScorer;
    let pairs = &pairs[..model.pairs];
    let hyps: Vec<&str> = pairs.iter().map(|(h, _)| h.as_str()).collect();
    let refs: Vec<Vec<&str>> = pairs.iter().map(|(_, r)| vec![r.as_str()]).collect();
    // Loading counts, as it does inside `bert_score.score` on the Python side;
    // bert-score's batches, as on that side.
    let options = BertScoreOptions {
        idf: false,
        batch_size: Some(64),
    };
    Some(time(|| {
        let scorer =
            BertScorer::from_dir(model.dir.as_ref(), model.layer, tch::Device::Cpu).unwrap();
        bert_score_with(&scorer, &hyps, &refs, &options).unwrap();
    }))
}

/// Rounds of the BLEU/ROUGE comparison. Rust and Python runs alternate, and
/// each side keeps its fastest: this shared machine's speed drifts by up to
/// 2x within minutes, and alternating keeps a slow spell from landing on one
/// side only.
const ROUNDS: usize = 3;

fn main() {
    let mut rng = SplitMix64::new(42);
    let pairs: Vec<(String, String)> = match std::env::var("MEDCAP_BENCH_CAPTIONS") {
        Ok(path) => {
            let pairs = real_pairs(&path);
            println!(
                "(real captions: {} pairs of the same modality from {path})",
                pairs.len()
            );
            pairs
        }
        Err(_) => (0..pair_count())
            .map(|_| (caption(&mut rng), caption(&mut rng)))
            .collect(),
    };
    let n = pairs.len();
    let mut sink = 0.0;
    let study = Bleu::default();
    let sacre = Bleu::sacrebleu_sentence();
    let nltk = Bleu::nltk(NltkSmoothing::Method1);
    let rouge = Rouge::default();
    let dir = tempfile::tempdir().unwrap();
    let text: String = pairs.iter().map(|(h, r)| format!("{h}\n{r}\n")).collect();
    std::fs::write(dir.path().join("pairs.txt"), text).unwrap();

    let names = ["study BLEU (13a)", "sacrebleu", "nltk", "rouge"];
    let mut rust = [f64::INFINITY; 4];
    let mut python: Option<Vec<(String, f64)>> = None;
    for round in 0..ROUNDS {
        let times = [
            best_time(|| {
                pairs
                    .iter()
                    .for_each(|(h, r)| sink += study.sentence(h, &[r.as_str()]))
            }),
            best_time(|| {
                pairs
                    .iter()
                    .for_each(|(h, r)| sink += sacre.sentence(h, &[r.as_str()]))
            }),
            best_time(|| {
                pairs
                    .iter()
                    .for_each(|(h, r)| sink += nltk.sentence(h, &[r.as_str()]))
            }),
            best_time(|| {
                pairs
                    .iter()
                    .for_each(|(h, r)| sink += rouge.score(h, r).rouge_lsum.fmeasure)
            }),
        ];
        for (best, t) in rust.iter_mut().zip(times) {
            *best = best.min(t);
        }
        let Some(got) = python_times(dir.path(), None) else {
            break;
        };
        python = Some(match python {
            None => got,
            Some(old) => old
                .into_iter()
                .map(|(k, v)| {
                    let new = got.iter().find(|(g, _)| *g == k).map_or(v, |(_, t)| *t);
                    (k, v.min(new))
                })
                .collect(),
        });
        println!("(round {} of {ROUNDS} done)", round + 1);
    }
    let mut rows: Vec<(&str, usize, f64)> = names
        .into_iter()
        .zip(rust)
        .map(|(k, t)| (k, n, t))
        .collect();
    // BERTScore takes tens of seconds a run: two alternating rounds per model.
    for model in bertscore_models(n) {
        let mut bert = (f64::INFINITY, f64::INFINITY);
        for _ in 0..2 {
            let Some(secs) = time_bertscore(&pairs, &model) else {
                break;
            };
            bert.0 = bert.0.min(secs);
            if python.is_some()
                && let Some(b) = python_times(dir.path(), Some(&model))
            {
                let secs = b.iter().find(|(k, _)| k == "bertscore").map(|(_, t)| *t);
                bert.1 = bert.1.min(secs.unwrap_or(f64::INFINITY));
            }
        }
        if bert.0.is_finite() {
            rows.push((model.label, model.pairs, bert.0));
            if let Some(p) = &mut python
                && bert.1.is_finite()
            {
                p.push((model.label.into(), bert.1));
            }
        }
    }
    println!("(checksum {sink:.3})");
    println!(
        "| metric ({n} pairs; BLEU/ROUGE one thread, BERTScore libtorch threads) | medcap pairs/s | Python pairs/s | ratio |"
    );
    println!("|---|---|---|---|");
    for (name, count, secs) in rows {
        let key = if name == "study BLEU (13a)" { "" } else { name };
        let py = python
            .as_ref()
            .and_then(|p| p.iter().find(|(k, _)| k == key).map(|(_, s)| *s));
        match py {
            Some(p) => println!(
                "| {name} | {:.0} | {:.0} | {:.1}x |",
                count as f64 / secs,
                count as f64 / p,
                p / secs
            ),
            None => println!("| {name} | {:.0} | - | - |", count as f64 / secs),
        }
    }
}
