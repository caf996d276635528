//! `medcap score --suite` and `medcap check-submission` as README shows
//! them: relative paths from the files' own directory, the front end with
//! a clean environment (the suites need no libtorch), the official
//! messages on refused files, nothing written on failure.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::text;

fn golden() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data-fixtures/imageclef/golden.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn case<'a>(golden: &'a Value, task: &str, suite: &str, name: &str) -> &'a Value {
    golden[task]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["suite"] == suite && c["case"] == name)
        .unwrap()
}

fn medcap(cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medcap"));
    cmd.env_clear().current_dir(cwd).args(args);
    if let Some(v) = std::env::var_os("PATH") {
        cmd.env("PATH", v);
    }
    cmd.output().unwrap()
}

fn medcap_line(out: &mut String, value: Value) {
    out.push_str(&value.to_string());
    out.push('\n');
}

#[test]
fn score_and_check_submissions_as_typed() {
    let golden = golden();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let write = |name: &str, case: &Value, key: &str| {
        std::fs::write(dir.join(name), case[key].as_str().unwrap()).unwrap();
    };
    let ordered = case(&golden, "captions", "imageclef-2025", "in_order");
    write("captions.csv", ordered, "ground_truth");
    write("run.csv", ordered, "submission");
    write(
        "other.csv",
        case(&golden, "captions", "imageclef-2025", "complete"),
        "submission",
    );
    write(
        "no-header.csv",
        case(&golden, "captions", "imageclef-2025", "no_header"),
        "submission",
    );

    let out = medcap(
        dir,
        &[
            "score",
            "--suite",
            "imageclef-2025",
            "--submission",
            "run.csv",
            "--ground-truth",
            "captions.csv",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    // The official per-caption ROUGE-1 values, averaged.
    let official: Vec<f64> = ordered["rouge1"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let mean = official.iter().sum::<f64>() / official.len() as f64;
    assert!(
        table.contains(&format!("| ROUGE-1 | {mean:.4} [")),
        "{table}"
    );
    assert!(
        table.contains("| Relevance | incomplete: lacks BERTScore, Similarity |"),
        "{table}"
    );
    assert!(table.contains("| BERTScore | missing: "), "{table}");
    assert!(
        table.contains("signature: imageclef-2025|rouge1:nostem:preprocessed|medcap-"),
        "{table}"
    );

    // MedCAT and Similarity from what MedCAT and an image encoder gave.
    let mut medcat = String::new();
    let mut embeddings = String::new();
    for pair in ordered["pairs"].as_array().unwrap() {
        let id = pair[0].as_str().unwrap();
        let sides = &ordered["entities"][id];
        let side = |k: usize| -> Vec<Value> {
            sides[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| serde_json::json!({"cui": e[0], "pretty_name": e[1]}))
                .collect()
        };
        medcap_line(
            &mut medcat,
            serde_json::json!({"id": id, "reference": side(0), "candidate": side(1)}),
        );
        let v = &ordered["embeddings"][id];
        medcap_line(
            &mut embeddings,
            serde_json::json!({"id": id, "image": v[0], "text": v[1]}),
        );
    }
    std::fs::write(dir.join("medcat.jsonl"), medcat).unwrap();
    std::fs::write(dir.join("embeddings.jsonl"), embeddings).unwrap();
    let out = medcap(
        dir,
        &[
            "score",
            "--suite",
            "imageclef-2025",
            "--submission",
            "run.csv",
            "--ground-truth",
            "captions.csv",
            "--medcat-entities",
            "medcat.jsonl",
            "--similarity-embeddings",
            "embeddings.jsonl",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let mean_of = |key: &str| {
        let v: Vec<f64> = ordered[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!(
        table.contains(&format!("| MedCAT | {:.4} [", mean_of("medcat"))),
        "{table}"
    );
    assert!(
        table.contains(&format!("| Similarity | {:.4} [", mean_of("similarity"))),
        "{table}"
    );
    assert!(
        table.contains("| Relevance | incomplete: lacks BERTScore |"),
        "{table}"
    );
    assert!(
        table.contains("| Factuality | incomplete: lacks AlignScore |"),
        "{table}"
    );

    // Per caption, and two submissions compared.
    let out = medcap(
        dir,
        &[
            "score",
            "--suite",
            "imageclef-2025",
            "--submission",
            "run.csv",
            "--ground-truth",
            "captions.csv",
            "--format",
            "jsonl",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 5);
    for (row, value) in rows.iter().zip(&official) {
        assert!(
            (row["rouge"].as_f64().unwrap() - value).abs() < 1e-12,
            "{row}"
        );
    }
    let out = medcap(
        dir,
        &[
            "score",
            "--suite",
            "imageclef-2025",
            "--submission",
            "run.csv",
            "--submission",
            "other.csv",
            "--ground-truth",
            "captions.csv",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("ROUGE-1, other.csv minus run.csv: "),
        "{}",
        text(&out.stdout)
    );

    // Refused as the official loader refuses, with why.
    let out = medcap(
        dir,
        &[
            "score",
            "--suite",
            "imageclef-2025",
            "--submission",
            "no-header.csv",
            "--ground-truth",
            "captions.csv",
        ],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("Number in submission: 4 Error occurred at record line 3."),
        "{err}"
    );
    assert!(err.contains("add the header"), "{err}");
    assert!(out.stdout.is_empty());
    let out = medcap(
        dir,
        &[
            "check-submission",
            "--suite",
            "imageclef-2026",
            "--submission",
            "other.csv",
            "--ground-truth",
            "captions.csv",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr)
            .contains("Row 2: ID order mismatch. Expected 'img1' at position 1, found 'img2'."),
        "{}",
        text(&out.stderr)
    );
    let out = medcap(
        dir,
        &[
            "check-submission",
            "--suite",
            "imageclef-2026",
            "--submission",
            "run.csv",
            "--ground-truth",
            "captions.csv",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .contains("run.csv passes imageclef-2026's official checks (caption task, 5 images)")
    );
    std::fs::write(dir.join("latin1.csv"), b"ID,Caption\nimg1,caf\xe9\n").unwrap();
    let out = medcap(
        dir,
        &[
            "check-submission",
            "--suite",
            "imageclef-2026",
            "--submission",
            "latin1.csv",
            "--ground-truth",
            "captions.csv",
        ],
    );
    assert!(
        text(&out.stderr).contains(
            "'utf-8' codec can't decode byte 0xe9 in position 19: invalid continuation byte"
        ),
        "{}",
        text(&out.stderr)
    );

    // The concept task, primary and secondary.
    let concepts = case(&golden, "concepts", "imageclef-2025", "complete");
    write("concepts.csv", concepts, "ground_truth");
    write("concepts_manual.csv", concepts, "manual");
    write("concept-run.csv", concepts, "submission");
    let out = medcap(
        dir,
        &[
            "score",
            "--suite",
            "imageclef-2025",
            "--task",
            "concepts",
            "--submission",
            "concept-run.csv",
            "--ground-truth",
            "concepts.csv",
            "--ground-truth-secondary",
            "concepts_manual.csv",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let primary = concepts["primary"].as_f64().unwrap();
    let secondary = concepts["secondary"].as_f64().unwrap();
    assert!(
        table.contains(&format!("| primary F1 | {primary:.4} |")),
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "| secondary F1 (curated concepts) | {secondary:.4} |"
        )),
        "{table}"
    );
}

/// The BERTScore and BLEURT components from their model directories,
/// README's command as typed, with the tiny DeBERTa and BLEURT of the
/// fixtures in those directories: refused at the official layer 40 with
/// the layers the DeBERTa has, then at its layer 2: the official 2025
/// evaluator's per-caption values (`models.json`) in the JSONL, their mean
/// in the table, the signature naming the model, and options the year
/// fixes refused.
#[test]
fn model_components_equal_the_official_evaluator() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures");
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("imageclef/models.json")).unwrap(),
    )
    .unwrap();
    let case = golden["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["suite"] == "imageclef-2025")
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("captions.csv"),
        case["ground_truth"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("run.csv"), case["submission"].as_str().unwrap()).unwrap();
    // README's directory names, holding the tiny models (the DeBERTa has
    // 3 layers, not 48).
    for (name, tiny) in [
        ("deberta-xlarge-mnli", "deberta/tiny-deberta"),
        ("BLEURT-20-D12", "bleurt/tiny-bleurt"),
        ("AlignScore-base", "alignscore/tiny-alignscore"),
        (
            "home/nltk_data/tokenizers/punkt_tab/english",
            "punkt/punkt_tab",
        ),
    ] {
        let model = dir.join(name);
        std::fs::create_dir_all(&model).unwrap();
        for entry in std::fs::read_dir(fixtures.join(tiny)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), model.join(entry.file_name())).unwrap();
        }
    }
    let readme = [
        "score",
        "--suite",
        "imageclef-2025",
        "--submission",
        "run.csv",
        "--ground-truth",
        "captions.csv",
        "--bertscore-model",
        "deberta-xlarge-mnli/",
        "--bleurt-model",
        "BLEURT-20-D12/",
        "--alignscore-model",
        "AlignScore-base/",
    ];
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = readme.map(String::from).to_vec();
        a.extend(
            ["--bertscore-layer", "2"]
                .iter()
                .chain(extra)
                .map(|s| s.to_string()),
        );
        a
    };
    // nltk's Punkt parameters where nltk keeps them, under HOME.
    let medcap = |a: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_medcap"))
            .current_dir(dir)
            .args(a)
            .env("MEDCAP_LOG", "warn")
            .env("HOME", dir.join("home"))
            .env_remove("NLTK_DATA")
            .output()
            .unwrap()
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        medcap(&a)
    };
    // As typed: the official layer 40, which the tiny model does not have.
    let out = medcap(&readme);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("deberta-xlarge-mnli")
            && stderr.contains("layer 40 requested, but the model has 3 layers"),
        "{stderr}"
    );

    let out = run(args(&["--format", "jsonl"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = text(&out.stdout);
    let rows: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (key, official) in [
        ("bert", "bertscore"),
        ("bleurt", "bleurt"),
        ("align", "align"),
    ] {
        let want = case[official].as_array().unwrap();
        assert_eq!(rows.len(), want.len(), "{lines}");
        for (row, (id, w)) in rows
            .iter()
            .zip(case["ids"].as_array().unwrap().iter().zip(want))
        {
            assert_eq!(&row["id"], id);
            // Where the official code stops (a candidate without a
            // sentence), medcap's AlignScore is 0.
            let (got, w) = (row[key].as_f64().unwrap(), w.as_f64().unwrap_or(0.0));
            assert!((got - w).abs() <= 1e-6, "{key} {id}: {got} vs {w}");
        }
    }

    let out = run(args(&[]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let mean = case["bertscore_official_mean"].as_f64().unwrap();
    assert!(
        table.contains(&format!("| BERTScore | {mean:.4} [")),
        "{table}"
    );
    assert!(
        table.contains("| Factuality | incomplete: lacks MedCAT |")
            && table.contains("candidates without a sentence (empty or blank) against a reference that is not empty: 2;"),
        "{table}"
    );
    let mean = case["bleurt_official_mean"].as_f64().unwrap();
    assert!(
        table.contains(&format!("| BLEURT | {mean:.4} [")),
        "{table}"
    );
    assert!(
        table.contains("signature: imageclef-2025|bertscore:deberta-xlarge-mnli:L2:idf=gt:preprocessed|rouge1:nostem:preprocessed|bleurt:BLEURT-20-D12:preprocessed|align:AlignScore-base:nli_sp:punkt|medcap-"),
        "{table}"
    );
    assert!(
        table.contains("| Relevance | incomplete: lacks Similarity |"),
        "{table}"
    );

    // Each model directory alone computes its component (and only it).
    for (flag, dir, key) in [
        ("--bertscore-model", "deberta-xlarge-mnli/", "bert"),
        ("--bleurt-model", "BLEURT-20-D12/", "bleurt"),
        ("--alignscore-model", "AlignScore-base/", "align"),
    ] {
        let mut a: Vec<&str> = readme[..7].to_vec();
        a.extend([flag, dir, "--bertscore-layer", "2", "--format", "jsonl"]);
        let out = medcap(&a);
        assert!(out.status.success(), "{flag}: {}", text(&out.stderr));
        let first: Value = serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
        for other in ["bert", "bleurt", "align"] {
            assert_eq!(first.get(other).is_some(), other == key, "{flag}: {first}");
        }
    }

    // No Punkt parameters anywhere nltk looks: said, with how to get them.
    let mut a = args(&[]);
    a.retain(|x| x != "--punkt");
    let out = Command::new(env!("CARGO_BIN_EXE_medcap"))
        .current_dir(dir)
        .args(&a)
        .env("HOME", dir.join("empty-home"))
        .env_remove("NLTK_DATA")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("give --punkt DIR, nltk's punkt_tab/english directory"),
        "{}",
        text(&out.stderr)
    );

    let out = run(args(&["--bertscore-idf"]));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--bertscore-idf does not apply to --suite"),
        "{}",
        text(&out.stderr)
    );
}
