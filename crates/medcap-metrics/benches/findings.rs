//! Throughput of the findings labeller: captions labelled per second on one
//! thread, on synthetic figure captions and report-style sentences.
//!
//! The CheXpert labeller (Python, with a constituency parser) publishes no
//! throughput; its users report about 5 reports per second
//! (stanfordmlgroup/chexpert-labeler issue 34) and 2.85 reports per second
//! for its parsing stage (MIT-LCP/mimic-cxr issue 7). It cannot be installed
//! here (its parser and NegBio need a pinned Python 3.6 environment), so the
//! ratio printed is against the faster of those two reported figures.
//!
//! `cargo bench -p medcap-metrics --bench findings` (or `cargo xtask bench`).
#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::time::Instant;

use medcap_metrics::findings::Labeller;
use medcap_rng::SplitMix64;

const OPENINGS: [&str; 6] = [
    "Chest radiograph showing",
    "Frontal chest X-ray demonstrates",
    "Portable AP chest X-ray with",
    "Figure 2. (A) PA chest radiograph showing",
    "There is",
    "Interval development of",
];
const FINDINGS: [&str; 14] = [
    "a small left pleural effusion",
    "no pneumothorax",
    "possible consolidation in the right lower lobe",
    "an enlarged cardiac silhouette (cardiomegaly)",
    "a 2.1 cm nodule in the right upper zone",
    "an endotracheal tube with its tip 4 cm above the carina",
    "bibasilar atelectasis",
    "pulmonary vascular congestion",
    "no focal consolidation, effusion or pneumothorax",
    "a right chest tube with its tip at the apex",
    "ground-glass opacities in both lungs",
    "pneumonia cannot be excluded",
    "blunting of the left costophrenic angle",
    "no acute cardiopulmonary abnormality",
];

/// Captions labelled (`MEDCAP_BENCH_CAPTIONS` overrides).
fn caption_count() -> usize {
    std::env::var("MEDCAP_BENCH_CAPTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// The CheXpert labeller's reported throughput (see the module doc).
const CHEXPERT_REPORTS_PER_SECOND: f64 = 5.0;

fn main() {
    let mut rng = SplitMix64::new(7);
    let captions: Vec<String> = (0..caption_count())
        .map(|_| {
            let k = 1 + rng.below(3);
            let parts: Vec<&str> = (0..k).map(|_| *rng.pick(&FINDINGS)).collect();
            format!("{} {}.", rng.pick(&OPENINGS), parts.join(", "))
        })
        .collect();
    let labeller = Labeller::built_in();
    let mut best = f64::INFINITY;
    let mut mentions = 0;
    for _ in 0..3 {
        let t = Instant::now();
        mentions = captions
            .iter()
            .map(|c| labeller.label(c).mentions.len())
            .sum::<usize>();
        best = best.min(t.elapsed().as_secs_f64());
    }
    let rate = captions.len() as f64 / best;
    println!(
        "findings labeller: {} captions ({mentions} mentions) in {best:.3} s on one thread: {rate:.0} captions/s, {:.0}x the CheXpert labeller's reported {CHEXPERT_REPORTS_PER_SECOND} reports/s",
        captions.len(),
        rate / CHEXPERT_REPORTS_PER_SECOND
    );
}
