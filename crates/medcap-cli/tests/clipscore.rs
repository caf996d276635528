//! `medcap score` with images: CLIPScore and RefCLIPScore as README types
//! the command (relative paths, a BiomedCLIP directory), equal to Hessel's
//! formula on open_clip's and transformers' features
//! (`data-fixtures/open-clip`, `data-fixtures/clip`); the line file or a
//! directory of images, a CSV `image` column, statistics and paired tests;
//! bad input: a missing image is an error in its row while the others are
//! scored, an encoder directory of an unknown layout, `--clip-model`
//! without images.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{medcap_in, text};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures")
}

fn golden(set: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(fixtures().join(set).join("golden.json")).unwrap(),
    )
    .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// The JSON lines of a run's standard output: rows, then the summary.
fn lines(stdout: &[u8]) -> Vec<Value> {
    text(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn close(a: &Value, b: f64, what: &str) {
    let a = a.as_f64().unwrap_or_else(|| panic!("{what}: {a}"));
    assert!((a - b).abs() <= 1e-5, "{what}: {a} vs {b}");
}

/// A working directory laid out as README's example: caption files, an
/// image list with paths relative to it, images in `figures/`, and the
/// tiny BiomedCLIP under the real model's directory name.
fn readme_layout() -> (tempfile::TempDir, Vec<Value>) {
    let g = golden("open-clip");
    let lines = g["clipscore_lines"].as_array().unwrap().clone();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_dir(
        &fixtures().join("open-clip/tiny-biomedclip"),
        &d.join("BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"),
    );
    std::fs::create_dir_all(d.join("figures")).unwrap();
    let mut hyps = String::new();
    let mut refs = String::new();
    let mut images = String::new();
    for l in &lines {
        let name = l["image"].as_str().unwrap();
        std::fs::copy(
            fixtures().join(format!("blip/images/{name}.png")),
            d.join(format!("figures/{name}.png")),
        )
        .unwrap();
        hyps += &format!("{}\n", l["candidate"].as_str().unwrap());
        refs += &format!("{}\n", l["reference"].as_str().unwrap());
        images += &format!("figures/{name}.png\n");
    }
    std::fs::write(d.join("hyps.txt"), hyps).unwrap();
    std::fs::write(d.join("refs.txt"), refs).unwrap();
    std::fs::write(d.join("images.txt"), images).unwrap();
    (dir, lines)
}

#[test]
fn readme_clipscore_command_as_typed_equals_hessels_formula_on_biomedclip() {
    let (dir, want) = readme_layout();
    let readme = [
        "score",
        "--refs",
        "refs.txt",
        "--hyps",
        "hyps.txt",
        "--images",
        "images.txt",
        "--clip-model",
        "BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
    ];
    let out = medcap_in(dir.path(), &readme);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    for part in [
        "CLIP-S",
        "RefCLIP-S",
        "95% CI",
        "clipscore:hessel:open_clip:BiomedCLIP-PubMedBERT_256-vit_base_patch16_224:prefix=\"A photo depicts \":ref=code",
        "trained on PubMed Central figures",
    ] {
        assert!(table.contains(part), "{part} missing from:\n{table}");
    }
    // The same run as JSON lines: each caption's values.
    let mut jsonl = readme.to_vec();
    jsonl.extend(["--format", "jsonl", "--no-bertscore"]);
    let out = medcap_in(dir.path(), &jsonl);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = lines(&out.stdout);
    assert_eq!(rows.len(), want.len() + 1);
    for (i, (row, w)) in rows.iter().zip(&want).enumerate() {
        close(
            &row["clip_s"],
            w["clip_s"].as_f64().unwrap(),
            &format!("clip_s {i}"),
        );
        close(
            &row["ref_clip_s"],
            w["ref_clip_s"].as_f64().unwrap(),
            &format!("ref_clip_s {i}"),
        );
        assert!(row["rougeL"].is_number());
    }
    let summary = &rows[want.len()]["summary"];
    let mean = want
        .iter()
        .map(|w| w["clip_s"].as_f64().unwrap())
        .sum::<f64>()
        / 3.0;
    close(&summary["clip_s"]["mean"], mean, "mean");
    assert_eq!(summary["clip_s"]["ci95"].as_array().unwrap().len(), 2);

    // From another working directory, with absolute paths.
    let elsewhere = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = d.join("BiomedCLIP-PubMedBERT_256-vit_base_patch16_224");
    let out = medcap_in(
        elsewhere.path(),
        &[
            "score",
            "--hyps",
            d.join("hyps.txt").to_str().unwrap(),
            "--images",
            d.join("images.txt").to_str().unwrap(),
            "--clip-model",
            model.to_str().unwrap(),
            "--format",
            "jsonl",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = lines(&out.stdout);
    // No references: CLIPScore alone.
    assert_eq!(
        rows[1].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["clip_s"]
    );
    close(
        &rows[1]["clip_s"],
        want[1]["clip_s"].as_f64().unwrap(),
        "no refs",
    );
}

#[test]
fn clipscore_forms_prefix_compare_directory_and_csv_image_column_on_clip() {
    let g = golden("clip");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_dir(&fixtures().join("clip/tiny-clip"), &d.join("clip"));
    let names: Vec<&str> = g["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    // Captions 1 and 2 of the golden set have one reference each.
    let captions: Vec<&Value> = g["captions"].as_array().unwrap()[1..3].iter().collect();
    std::fs::create_dir_all(d.join("imgs")).unwrap();
    let (mut hyps, mut refs, mut csv) = (
        String::new(),
        String::new(),
        String::from("image,candidate,reference\n"),
    );
    for (k, c) in captions.iter().enumerate() {
        let name = names[c["image"].as_u64().unwrap() as usize];
        // Named so that file-name order is caption order.
        std::fs::copy(
            fixtures().join(format!("blip/images/{name}.png")),
            d.join(format!("imgs/{k}-{name}.png")),
        )
        .unwrap();
        let cand = c["candidate"].as_str().unwrap();
        let r = c["references"][0].as_str().unwrap();
        hyps += &format!("{cand}\n");
        refs += &format!("{r}\n");
        csv += &format!("imgs/{k}-{name}.png,\"{cand}\",\"{r}\"\n");
    }
    std::fs::write(d.join("h.txt"), &hyps).unwrap();
    std::fs::write(d.join("r.txt"), &refs).unwrap();
    std::fs::write(d.join("pairs.csv"), &csv).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "score",
            "--clip-model",
            "clip",
            "--format",
            "jsonl",
            "--no-bertscore",
        ];
        args.extend(extra);
        let out = medcap_in(d, &args);
        assert!(out.status.success(), "{:?}: {}", extra, text(&out.stderr));
        lines(&out.stdout)
    };
    for (extra, key) in [
        (
            vec!["--refs", "r.txt", "--hyps", "h.txt", "--images", "imgs"],
            "hessel_prefix",
        ),
        (vec!["--csv", "pairs.csv"], "hessel_prefix"),
        (
            vec![
                "--refs",
                "r.txt",
                "--hyps",
                "h.txt",
                "--images",
                "imgs",
                "--no-clip-prefix",
            ],
            "hessel_no_prefix",
        ),
        (
            vec![
                "--refs",
                "r.txt",
                "--hyps",
                "h.txt",
                "--images",
                "imgs",
                "--clip-score-form",
                "pacs",
                "--refclip-form",
                "paper",
            ],
            "pacs_no_prefix",
        ),
    ] {
        let rows = run(&extra);
        let reference_key = if extra.contains(&"paper") {
            "ref_clip_s_paper"
        } else {
            "ref_clip_s_code"
        };
        for (i, row) in rows[..2].iter().enumerate() {
            close(
                &row["clip_s"],
                g[key]["clip_s"][i + 1].as_f64().unwrap(),
                &format!("{key} {extra:?} {i}"),
            );
            close(
                &row["ref_clip_s"],
                g[key][reference_key][i + 1].as_f64().unwrap(),
                &format!("{key} {extra:?} {i} ref"),
            );
        }
    }
    // A second system: paired comparison of CLIP-S.
    let rows = run(&[
        "--refs",
        "r.txt",
        "--hyps",
        "h.txt",
        "--images",
        "imgs",
        "--compare",
        "r.txt",
    ]);
    let cmp = &rows[2]["comparison"]["b_minus_a"];
    assert!(
        cmp["clip_s"]["p_value"].is_number() && cmp["ref_clip_s"]["ci95"].is_array(),
        "{cmp}"
    );
}

#[test]
fn a_missing_image_fails_its_row_only_and_bad_encoder_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_dir(&fixtures().join("clip/tiny-clip"), &d.join("clip"));
    std::fs::copy(fixtures().join("blip/images/grey.png"), d.join("grey.png")).unwrap();
    std::fs::write(d.join("h.txt"), "a\nb\nc\n").unwrap();
    std::fs::write(d.join("images.txt"), "grey.png\nmissing.png\ngrey.png\n").unwrap();
    let out = medcap_in(
        d,
        &[
            "score",
            "--hyps",
            "h.txt",
            "--images",
            "images.txt",
            "--clip-model",
            "clip",
            "--format",
            "jsonl",
        ],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("caption 2") && err.contains("missing.png"),
        "{err}"
    );
    let rows = lines(&out.stdout);
    assert!(rows[0]["clip_s"].is_number() && rows[2]["clip_s"].is_number());
    assert!(rows[1]["clip_s"].is_null());
    assert!(
        rows[1]["clip_error"]
            .as_str()
            .unwrap()
            .contains("missing.png")
    );
    assert_eq!(rows[3]["summary"]["clip_s"]["left_out"], 1);

    // Fewer images than captions.
    std::fs::write(d.join("two.txt"), "grey.png\ngrey.png\n").unwrap();
    let out = medcap_in(
        d,
        &[
            "score",
            "--hyps",
            "h.txt",
            "--images",
            "two.txt",
            "--clip-model",
            "clip",
        ],
    );
    let err = text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("two.txt gives 2 images but h.txt has 3"),
        "{err}"
    );

    // --clip-model without images.
    let out = medcap_in(
        d,
        &[
            "score",
            "--hyps",
            "h.txt",
            "--refs",
            "h.txt",
            "--clip-model",
            "clip",
        ],
    );
    let err = text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("give --images"),
        "{err}"
    );

    // An encoder directory of an unknown layout.
    std::fs::create_dir_all(d.join("bert")).unwrap();
    std::fs::write(d.join("bert/config.json"), r#"{"model_type": "bert"}"#).unwrap();
    let out = medcap_in(
        d,
        &[
            "score",
            "--hyps",
            "h.txt",
            "--images",
            "images.txt",
            "--clip-model",
            "bert",
        ],
    );
    let err = text(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("model_type `bert`")
            && err.contains("not an image-text encoder"),
        "{err}"
    );
}

#[test]
fn caption_rerank_keeps_the_candidate_the_encoder_scores_highest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in ["grey", "rgb_wide"] {
        std::fs::copy(
            fixtures().join(format!("blip/images/{name}.png")),
            d.join(format!("{name}.png")),
        )
        .unwrap();
    }
    let model = fixtures().join("blip/tiny-caption");
    let encoder = fixtures().join("clip/tiny-clip");
    let plain = medcap_in(
        d,
        &[
            "caption",
            "--model",
            model.to_str().unwrap(),
            "--format",
            "jsonl",
            "grey.png",
            "rgb_wide.png",
        ],
    );
    assert!(plain.status.success(), "{}", text(&plain.stderr));
    let out = medcap_in(
        d,
        &[
            "caption",
            "--model",
            model.to_str().unwrap(),
            "--rerank",
            "4",
            "--rerank-model",
            encoder.to_str().unwrap(),
            "--format",
            "jsonl",
            "grey.png",
            "rgb_wide.png",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    for (row, plain) in lines(&out.stdout).iter().zip(lines(&plain.stdout)) {
        let candidates = row["rerank"].as_array().unwrap();
        assert_eq!(candidates.len(), 4);
        // The first candidate is the plain decoding's caption.
        assert_eq!(candidates[0]["caption"], plain["caption"]);
        let best = candidates
            .iter()
            .map(|c| c["clip_s"].as_f64().unwrap())
            .fold(f64::MIN, f64::max);
        let chosen = candidates
            .iter()
            .find(|c| c["caption"] == row["caption"])
            .unwrap();
        assert_eq!(chosen["clip_s"].as_f64().unwrap(), best, "{row}");
    }
    // Reranking needs its encoder.
    let out = medcap_in(
        d,
        &[
            "caption",
            "--model",
            model.to_str().unwrap(),
            "--rerank",
            "3",
            "grey.png",
        ],
    );
    assert!(!out.status.success() && text(&out.stderr).contains("--rerank-model"));
}

/// ImageCLEF's Similarity component from an image-text encoder and the
/// test images named by id: 2.5 * max(cos, 0) of transformers' image and
/// raw-caption features, under each year's empty-caption rule.
#[test]
fn imageclef_similarity_from_an_encoder_follows_each_years_rules() {
    let g = golden("clip");
    let cos = |a: &Value, b: &Value| {
        let (a, b): (Vec<f64>, Vec<f64>) = (
            a.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect(),
            b.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect(),
        );
        let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        dot / (norm(&a) * norm(&b))
    };
    let (image, texts) = (&g["images"], &g["texts"]);
    let want_a = 2.5 * cos(&image[0]["features"], &texts[0]["features"]).max(0.0);
    let want_b = 2.5 * cos(&image[1]["features"], &texts[3]["features"]).max(0.0);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_dir(&fixtures().join("clip/tiny-clip"), &d.join("clip"));
    std::fs::create_dir_all(d.join("figures")).unwrap();
    for (id, name) in [("a", "rgb_wide"), ("b", "grey"), ("c", "rgb_large")] {
        std::fs::copy(
            fixtures().join(format!("blip/images/{name}.png")),
            d.join(format!("figures/{id}.png")),
        )
        .unwrap();
    }
    std::fs::write(
        d.join("gt.csv"),
        "ID,Caption\na,left pleural effusion\nb,normal chest x ray\nc,\n",
    )
    .unwrap();
    std::fs::write(
        d.join("run.csv"),
        format!(
            "ID,Caption\na,{}\nb,\"{}\"\nc,\n",
            texts[0]["text"].as_str().unwrap(),
            texts[3]["text"].as_str().unwrap()
        ),
    )
    .unwrap();
    for (suite, empty) in [("imageclef-2025", 1.0), ("imageclef-2026", 0.0)] {
        let out = medcap_in(
            d,
            &[
                "score",
                "--suite",
                suite,
                "--ground-truth",
                "gt.csv",
                "--submission",
                "run.csv",
                "--clip-model",
                "clip",
                "--images",
                "figures",
                "--format",
                "jsonl",
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let rows = lines(&out.stdout);
        close(&rows[0]["similarity"], want_a, suite);
        close(&rows[1]["similarity"], want_b, suite);
        close(&rows[2]["similarity"], empty, suite);
        let table = medcap_in(
            d,
            &[
                "score",
                "--suite",
                suite,
                "--ground-truth",
                "gt.csv",
                "--submission",
                "run.csv",
                "--clip-model",
                "clip",
                "--images",
                "figures",
            ],
        );
        assert!(
            text(&table.stdout).contains("similarity:clip:clip:w2.5"),
            "{}",
            text(&table.stdout)
        );
    }
    // A test image missing: every missing id named.
    std::fs::remove_file(d.join("figures/b.png")).unwrap();
    let out = medcap_in(
        d,
        &[
            "score",
            "--suite",
            "imageclef-2025",
            "--ground-truth",
            "gt.csv",
            "--submission",
            "run.csv",
            "--clip-model",
            "clip",
            "--images",
            "figures",
        ],
    );
    let err = text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("for the ids b"),
        "{err}"
    );
}
