//! The synthetic data set generator: layout, determinism, and refusal to
//! overwrite foreign directories.
#![allow(clippy::unwrap_used, missing_docs)]

use medcap_dataset::DatasetError;
use medcap_dataset::layout::{FIGURES_DIR, JSONL_NAME};
use medcap_dataset::record::FigureRecord;
use medcap_dataset::synth::{FigureKind, SynthConfig, TRUTH_FILE, TruthRecord, generate};

#[test]
fn same_seed_same_bytes_and_medicat_layout() {
    let dir = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        figures: 40,
        seed: 12,
        non_chest_share: 0.3,
    };
    let a = generate(&dir.path().join("a"), &config).unwrap();
    let b = generate(&dir.path().join("b"), &config).unwrap();
    let jsonl_a = std::fs::read(a.release_dir.join(JSONL_NAME)).unwrap();
    assert_eq!(
        jsonl_a,
        std::fs::read(b.release_dir.join(JSONL_NAME)).unwrap()
    );

    let records: Vec<FigureRecord> = std::str::from_utf8(&jsonl_a)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 40);
    for r in &records {
        assert_eq!(r.pdf_hash.len(), 40);
        assert!(r.caption().is_some());
        let png_a = std::fs::read(a.release_dir.join(FIGURES_DIR).join(r.id())).unwrap();
        let png_b = std::fs::read(b.release_dir.join(FIGURES_DIR).join(r.id())).unwrap();
        assert_eq!(png_a, png_b, "{}", r.id());
        assert!(image::load_from_memory(&png_a).is_ok());
    }
    let truth: Vec<TruthRecord> = std::fs::read_to_string(a.release_dir.join(TRUTH_FILE))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(truth.len(), 40);
    assert_eq!(
        truth
            .iter()
            .filter(|t| t.kind == FigureKind::ChestRadiograph)
            .count(),
        a.chest_radiographs
    );
    assert!(a.chest_radiographs > 0 && a.chest_radiographs < 40);
    assert!(
        truth
            .iter()
            .filter(|t| t.kind != FigureKind::ChestRadiograph)
            .all(|t| t.findings.is_empty())
    );
}

#[test]
fn rerun_reuses_and_foreign_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        figures: 5,
        seed: 1,
        non_chest_share: 0.2,
    };
    let first = generate(dir.path(), &config).unwrap();
    assert_eq!(generate(dir.path(), &config).unwrap(), first);
    let figures = || {
        std::fs::read_dir(first.release_dir.join(FIGURES_DIR))
            .unwrap()
            .count()
    };
    assert_eq!(figures(), 5);
    let smaller = SynthConfig {
        figures: 3,
        ..config
    };
    generate(dir.path(), &smaller).unwrap();
    assert_eq!(figures(), 3, "a regenerated data set keeps no old figure");

    let foreign = tempfile::tempdir().unwrap();
    std::fs::write(foreign.path().join("notes.txt"), "mine").unwrap();
    let err = generate(foreign.path(), &config).unwrap_err();
    assert!(matches!(err, DatasetError::OutputNotEmpty { .. }));
    assert_eq!(
        std::fs::read_to_string(foreign.path().join("notes.txt")).unwrap(),
        "mine"
    );
}

/// A generation killed before its manifest leaves a half-written release
/// and its `.generating` marker: the rerun replaces it instead of refusing
/// the directory as someone else's.
#[test]
fn an_interrupted_generation_is_started_over() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("synthetic");
    std::fs::create_dir_all(out.join("release/figures")).unwrap();
    std::fs::write(out.join("release/figures/half.png"), b"\x89PNG").unwrap();
    std::fs::write(out.join(".generating"), b"").unwrap();
    let config = SynthConfig {
        figures: 20,
        seed: 1,
        ..Default::default()
    };
    let summary = generate(&out, &config).unwrap();
    assert_eq!(summary.figures, 20);
    assert!(!out.join("release/figures/half.png").exists());
    assert!(!out.join(".generating").exists());
    // Someone else's directory is still refused.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"mine").unwrap();
    assert!(generate(&other, &config).is_err());
}
