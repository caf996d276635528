//! End-to-end tests of `prepare` on synthetic releases, with planted faults.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use medcap_dataset::DatasetError;
use medcap_dataset::filter::StudyRule;
use medcap_dataset::formats::ReleaseFormat;
use medcap_dataset::layout::{FIGURES_DIR, JSONL_NAME};
use medcap_dataset::prepare::{
    FigureRow, NoProgress, PrepareOptions, PrepareSummary, SplitRow, prepare,
};
use medcap_dataset::split::SplitPlan;
use medcap_dataset::synth::{SynthConfig, generate};
use serde_json::Value;

fn synth(dir: &Path, figures: usize, seed: u64) -> PathBuf {
    let summary = generate(
        dir,
        &SynthConfig {
            figures,
            seed,
            non_chest_share: 0.25,
        },
    )
    .unwrap();
    summary.release_dir
}

fn options(plan: SplitPlan) -> PrepareOptions {
    PrepareOptions {
        plan,
        seed: 17,
        ..PrepareOptions::default()
    }
}

fn small_plan() -> SplitPlan {
    SplitPlan {
        test: 10,
        val: 5,
        ft1: 20,
        ft2_extra: 10,
    }
}

fn read_csv<T: serde::de::DeserializeOwned>(path: &Path) -> Vec<T> {
    csv::Reader::from_path(path)
        .unwrap()
        .deserialize()
        .map(Result::unwrap)
        .collect()
}

fn records(release: &Path) -> Vec<Value> {
    std::fs::read_to_string(release.join(JSONL_NAME))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Independent of the library's filter: does the caption hold the word "chest"?
fn says_chest(record: &Value) -> bool {
    let caption = record["s2_caption"]
        .as_str()
        .or(record["s2orc_caption"].as_str())
        .unwrap_or("");
    caption
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| w == "chest")
}

fn id(record: &Value) -> String {
    format!(
        "{}_{}",
        record["pdf_hash"].as_str().unwrap(),
        record["fig_uri"].as_str().unwrap()
    )
}

fn append_line(jsonl: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(jsonl)
        .unwrap();
    f.write_all(bytes).unwrap();
    f.write_all(b"\n").unwrap();
}

#[test]
fn planted_faults_are_reported_and_every_good_record_survives() {
    let dir = tempfile::tempdir().unwrap();
    let release = synth(&dir.path().join("medicat"), 120, 5);
    let jsonl = release.join(JSONL_NAME);
    let figures = release.join(FIGURES_DIR);
    let original = records(&release);
    let chest: Vec<&Value> = original.iter().filter(|r| says_chest(r)).collect();
    assert!(
        chest.len() > 20,
        "the synthetic set should have chest figures"
    );
    let (missing, truncated, symlinked) = (chest[0], chest[1], chest[2]);

    // Faults in existing records' images.
    std::fs::remove_file(figures.join(id(missing))).unwrap();
    let png = figures.join(id(truncated));
    let bytes = std::fs::read(&png).unwrap();
    std::fs::write(&png, &bytes[..bytes.len() / 2]).unwrap();
    let outside = dir.path().join("outside.png");
    image::GrayImage::new(64, 64).save(&outside).unwrap();
    std::fs::remove_file(figures.join(id(symlinked))).unwrap();
    std::os::unix::fs::symlink(&outside, figures.join(id(symlinked))).unwrap();

    // Faulty lines appended after the good ones.
    let first_new_line = original.len() as u64 + 1;
    append_line(&jsonl, br#"{"pdf_hash": "0123", "fig_key": "#); // truncated JSON
    let mut not_utf8 = chest[3].to_string().into_bytes();
    let at = not_utf8.len() - 20;
    not_utf8.insert(at, 0xff);
    append_line(&jsonl, &not_utf8);
    append_line(
        &jsonl,
        br#"{"pdf_hash": "feedfacefeedfacefeedfacefeedfacefeedface", "fig_key": "Figure1", "fig_uri": "../../../outside.png", "s2_caption": "Chest X-ray with a nodule."}"#,
    );
    append_line(
        &jsonl,
        br#"{"pdf_hash": "feedfacefeedfacefeedfacefeedfacefeedface", "fig_key": "Figure2", "fig_uri": "1-Figure2-1.png", "s2_caption": "", "s2orc_caption": null}"#,
    );
    append_line(&jsonl, chest[4].to_string().as_bytes()); // duplicate
    let sliver = "feedfacefeedfacefeedfacefeedfacefeedface_1-Figure3-1.png";
    image::GrayImage::new(3000, 20)
        .save(figures.join(sliver))
        .unwrap();
    append_line(
        &jsonl,
        br#"{"pdf_hash": "feedfacefeedfacefeedfacefeedfacefeedface", "fig_key": "Figure3", "fig_uri": "1-Figure3-1.png", "s2_caption": "Chest CT scout image."}"#,
    );
    let input_before = std::fs::read(&jsonl).unwrap();

    let out = dir.path().join("prepared");
    let summary = prepare(&release, &out, &options(small_plan()), &NoProgress).unwrap();

    assert_eq!(summary.lines, original.len() as u64 + 6);
    assert_eq!(summary.malformed, 2);
    assert_eq!(summary.duplicates, 1);
    assert_eq!(summary.empty_caption, 1);
    assert_eq!(summary.images.missing, 1);
    assert_eq!(summary.images.undecodable, 1);
    assert_eq!(summary.images.outside_root, 2);
    assert_eq!(summary.images.bad_dimensions, 1);
    assert_eq!(summary.usable as usize, chest.len() - 3);
    assert_eq!(
        std::fs::read(&jsonl).unwrap(),
        input_before,
        "the input must not change"
    );

    // Every good chest record is in the output, kept, with a split.
    let rows: Vec<FigureRow> = read_csv(&out.join("figures.csv"));
    let mut by_id: HashMap<&str, &FigureRow> = HashMap::new();
    for row in &rows {
        by_id.entry(row.id.as_str()).or_insert(row); // the first of duplicates
    }
    let faulty = [id(missing), id(truncated), id(symlinked)];
    for record in &chest {
        let row = by_id[id(record).as_str()];
        if faulty.contains(&id(record)) {
            assert!(
                row.split.is_empty() && row.dropped.starts_with("image_"),
                "{row:?}"
            );
        } else {
            assert!(
                row.dropped.is_empty() && !row.split.is_empty() && !row.caption.is_empty(),
                "{row:?}"
            );
        }
    }

    // Each fault is in the problem report with its line number.
    let problems: Vec<Value> = std::fs::read_to_string(out.join("problems.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: BTreeSet<(u64, String)> = problems
        .iter()
        .map(|p| {
            (
                p["line"].as_u64().unwrap(),
                p["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(kinds.contains(&(first_new_line, "malformed".into())));
    assert!(kinds.contains(&(first_new_line + 1, "malformed".into())));
    assert!(kinds.contains(&(first_new_line + 2, "image_outside_root".into())));
    assert!(kinds.contains(&(first_new_line + 4, "duplicate".into())));
    assert!(kinds.contains(&(first_new_line + 5, "image_bad_dimensions".into())));
    let utf8 = problems
        .iter()
        .find(|p| p["line"] == first_new_line + 1)
        .unwrap();
    assert!(utf8["detail"].as_str().unwrap().contains("UTF-8"));

    let on_disk: PrepareSummary =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(on_disk, summary);
}

#[test]
fn strict_mode_stops_at_the_first_malformed_line() {
    let dir = tempfile::tempdir().unwrap();
    let release = synth(&dir.path().join("medicat"), 10, 1);
    let jsonl = release.join(JSONL_NAME);
    append_line(&jsonl, b"{not json");
    let strict = PrepareOptions {
        strict: true,
        ..options(small_plan())
    };
    let err = prepare(&release, &dir.path().join("out"), &strict, &NoProgress).unwrap_err();
    assert!(
        matches!(err, DatasetError::MalformedLine { line: 11, .. }),
        "{err}"
    );
    assert!(!dir.path().join("out/summary.json").exists());
}

#[test]
fn no_paper_has_figures_on_two_sides_of_a_split() {
    let dir = tempfile::tempdir().unwrap();
    let release = synth(&dir.path().join("medicat"), 260, 9);
    let out = dir.path().join("prepared");
    let plan = SplitPlan {
        test: 30,
        val: 20,
        ft1: 80,
        ft2_extra: 40,
    };
    let summary = prepare(&release, &out, &options(plan), &NoProgress).unwrap();
    assert_eq!(summary.splits["test"].figures, 30);
    assert_eq!(summary.splits["ft1"].figures, 80);

    let papers = |file: &str| -> BTreeSet<String> {
        read_csv::<SplitRow>(&out.join(file))
            .into_iter()
            .map(|r| r.pdf_hash)
            .collect()
    };
    let (test, val, ft1, ft2) = (
        papers("test.csv"),
        papers("val.csv"),
        papers("ft1.csv"),
        papers("ft2.csv"),
    );
    assert!(test.is_disjoint(&val));
    assert!(test.is_disjoint(&ft2));
    assert!(val.is_disjoint(&ft2));
    assert!(ft1.is_subset(&ft2), "FT-2 trains on FT-1's figures too");
    let ft2_rows: Vec<SplitRow> = read_csv(&out.join("ft2.csv"));
    assert_eq!(
        ft2_rows.len(),
        summary.splits["ft1"].figures + summary.splits["ft2_extra"].figures
    );
}

#[test]
fn prepare_is_deterministic_and_the_seed_matters() {
    let dir = tempfile::tempdir().unwrap();
    let release = synth(&dir.path().join("medicat"), 80, 2);
    let run = |name: &str, seed: u64| {
        let out = dir.path().join(name);
        prepare(
            &release,
            &out,
            &PrepareOptions {
                seed,
                ..options(small_plan())
            },
            &NoProgress,
        )
        .unwrap();
        std::fs::read_to_string(out.join("figures.csv")).unwrap()
    };
    assert_eq!(run("a", 1), run("b", 1));
    assert_ne!(run("a", 1), run("c", 2));
}

#[test]
fn the_study_rule_and_the_default_rule_select_differently() {
    let dir = tempfile::tempdir().unwrap();
    let release = synth(&dir.path().join("medicat"), 200, 4);
    let default = prepare(
        &release,
        &dir.path().join("a"),
        &options(small_plan()),
        &NoProgress,
    )
    .unwrap();
    let study = PrepareOptions {
        selector: Box::new(StudyRule),
        ..options(small_plan())
    };
    let study = prepare(&release, &dir.path().join("b"), &study, &NoProgress).unwrap();
    // Lower-case "chest" is missed by the case-sensitive rule.
    assert!(
        study.selected < default.selected,
        "{} vs {}",
        study.selected,
        default.selected
    );
    let expected_default = records(&release).iter().filter(|r| says_chest(r)).count() as u64;
    assert_eq!(default.selected, expected_default);
}

#[test]
fn a_missing_figures_directory_reports_every_image_missing() {
    let dir = tempfile::tempdir().unwrap();
    let release = synth(&dir.path().join("medicat"), 30, 8);
    let moved = dir.path().join("elsewhere");
    std::fs::rename(release.join(FIGURES_DIR), &moved).unwrap();
    let summary = prepare(
        &release,
        &dir.path().join("out"),
        &options(small_plan()),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(summary.usable, 0);
    assert_eq!(summary.images.missing, summary.selected);
}

#[test]
fn unusable_input_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = prepare(
        dir.path(),
        &dir.path().join("out"),
        &PrepareOptions::default(),
        &NoProgress,
    )
    .unwrap_err();
    // Detection names what it looked for.
    assert!(matches!(err, DatasetError::Layout { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&dir.path().display().to_string()) && text.contains("ROCO"),
        "{text}"
    );
    let medicat = PrepareOptions {
        format: Some(ReleaseFormat::Medicat),
        ..PrepareOptions::default()
    };
    let err = prepare(dir.path(), &dir.path().join("out"), &medicat, &NoProgress).unwrap_err();
    assert!(matches!(err, DatasetError::NoJsonl { .. }));
    assert!(err.to_string().contains(&dir.path().display().to_string()));
    let err = prepare(
        &dir.path().join("nope"),
        &dir.path().join("out"),
        &PrepareOptions::default(),
        &NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, DatasetError::Io { .. }));
}
