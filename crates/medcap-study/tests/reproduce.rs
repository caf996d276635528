//! The whole study at a reduced size (a few hundred synthetic figures, a
//! tiny model, a few steps per stage): every stage runs, the report has
//! Table 1 for three models and five metrics, the HTML page references
//! images that exist, and a rerun resumes instead of starting over.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::atomic::AtomicBool;

use medcap_metrics::metric::Metric;
use medcap_study::config::StudyConfig;
use medcap_study::pipeline::{STAGES, Study};
use medcap_study::report::TABLE_METRICS;
use medcap_train::trainer::Observer;
use tch::Device;

struct Quiet;
impl Observer for Quiet {}

#[test]
fn reduced_study_runs_end_to_end_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("study");
    let stop = AtomicBool::new(false);
    // With an image-text encoder: the reference-free columns.
    let config = StudyConfig {
        clip_model: Some(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../data-fixtures/clip/tiny-clip"),
        ),
        ..StudyConfig::reduced()
    };
    let study = Study::new(config.clone(), &out, Device::Cpu, false, &Quiet, &stop).unwrap();
    let outcome = study.run().unwrap();
    for key in ["base", "ft1", "ft2"] {
        let text =
            std::fs::read_to_string(out.join("eval").join(key).join("captions.jsonl")).unwrap();
        for line in text.lines().take(3) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            eprintln!(
                "{key}: {} | ref: {}",
                v["row"]["caption"], v["row"]["reference"]
            );
        }
    }
    for stage in STAGES {
        assert!(
            study.finished(stage).is_some(),
            "stage {stage} not recorded"
        );
    }

    // Table 1: three models x every metric, means and s.d. in range.
    let data = &outcome.data;
    assert_eq!(data.table.len(), 3 * TABLE_METRICS.len());
    for e in &data.table {
        let s = &e.summary;
        assert_eq!(s.n, config.test, "{} {}", e.model, e.metric);
        // CLIP-S is on Hessel's 0-2.5 scale; RefCLIP-S as his code computes
        // it is unbounded where a reference cosine is negative.
        let range = match e.metric {
            Metric::ClipScore => 0.0..=2.5,
            Metric::RefClipScore => f64::MIN..=f64::MAX,
            _ => 0.0..=1.0,
        };
        assert!(
            range.contains(&s.mean),
            "{} {} mean {}",
            e.model,
            e.metric,
            s.mean
        );
        assert!(s.sd >= 0.0 && (e.metric != Metric::Bleu || s.sd <= 1.0));
        assert!(s.ci95.0 <= s.mean && s.mean <= s.ci95.1);
    }
    assert_eq!(data.comparisons.len(), 3 * TABLE_METRICS.len());

    let report = &outcome.report_dir;
    for file in [
        "table1.md",
        "table1.csv",
        "table1.svg",
        "report.json",
        "captions.json",
        "provenance.json",
        "index.html",
        "figure3_ft1_loss.svg",
        "figure4_ft2_loss.svg",
    ] {
        assert!(report.join(file).is_file(), "report/{file} missing");
    }
    let md = std::fs::read_to_string(report.join("table1.md")).unwrap();
    for name in [
        "BLIP",
        "FT-1",
        "FT-2",
        "BLEU",
        "BERT-F1",
        "ROUGE-1",
        "ROUGE-2",
        "ROUGE-L",
        "CLIP-S",
        "clipscore:hessel:clip:tiny-clip",
    ] {
        assert!(md.contains(name), "table1.md lacks {name}");
    }
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    let images: Vec<&str> = html
        .split("src=\"images/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(images.len(), config.report_sample);
    for img in images {
        assert!(report.join("images").join(img).is_file(), "{img} missing");
    }
    let provenance: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("provenance.json")).unwrap())
            .unwrap();
    assert_eq!(provenance["seed"], config.seed);
    assert!(provenance["stage_seconds"]["ft2"].as_f64().is_some());

    // Whether the models learn is not asked of this reduced run (a hundred
    // steps of a 32-wide model: the sign of FT-1 - BLIP moved with the
    // scenes of the base model). The default run is held to the
    // reproduction targets instead, at the end of `cargo xtask test`.
    assert!(!data.targets.is_empty(), "synthetic data has targets");
    // Findings against the truth, split by finding, in the page and the
    // markdown: every true finding of the test set is counted once per model.
    assert!(html.contains("<table id=\"truth-by-finding\">"));
    assert!(md.contains("| Model | Finding | present |"), "{md}");
    let present = |model: &str| -> usize {
        data.truth_findings[model]
            .by_observation
            .values()
            .map(|c| c.tp + c.fn_)
            .sum()
    };
    assert!(present("FT-2") > 0);
    assert_eq!(present("BLIP"), present("FT-2"));

    // A rerun finds every stage done and changes nothing.
    let before = std::fs::read_to_string(report.join("table1.csv")).unwrap();
    let again = Study::new(config, &out, Device::Cpu, false, &Quiet, &stop).unwrap();
    let second = again.run().unwrap();
    assert_eq!(
        std::fs::read_to_string(second.report_dir.join("table1.csv")).unwrap(),
        before
    );
}
