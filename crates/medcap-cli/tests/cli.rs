//! The `medcap` binary: exit codes, messages and outputs of its commands.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{medcap, path};

#[test]
fn synth_then_prepare_succeeds_and_writes_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("medicat");
    let out = dir.path().join("prepared");
    let synth = medcap(&["synth", "--out", path(&data), "--n", "60", "--seed", "4"]);
    assert!(
        synth.status.success(),
        "{}",
        String::from_utf8_lossy(&synth.stderr)
    );
    let prep = medcap(&[
        "prepare",
        "--medicat",
        path(&data),
        "--out",
        path(&out),
        "--test",
        "5",
        "--val",
        "5",
        "--ft1",
        "10",
        "--ft2-extra",
        "5",
    ]);
    assert!(
        prep.status.success(),
        "{}",
        String::from_utf8_lossy(&prep.stderr)
    );
    for file in [
        "figures.csv",
        "test.csv",
        "val.csv",
        "ft1.csv",
        "ft2.csv",
        "problems.jsonl",
        "summary.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let stdout = String::from_utf8_lossy(&prep.stdout);
    assert!(stdout.contains("usable figures"), "{stdout}");
}

#[test]
fn unusable_input_fails_with_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let prep = medcap(&[
        "prepare",
        "--medicat",
        path(dir.path()),
        "--out",
        path(&dir.path().join("o")),
    ]);
    assert_eq!(prep.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&prep.stderr);
    assert!(
        stderr.contains("no MedICaT figure JSONL") && stderr.contains(path(dir.path())),
        "{stderr}"
    );
}

#[test]
fn strict_mode_turns_a_malformed_line_into_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("medicat");
    assert!(
        medcap(&["synth", "--out", path(&data), "--n", "5"])
            .status
            .success()
    );
    let jsonl = data
        .join("release")
        .join(medcap_dataset::layout::JSONL_NAME);
    let mut text = std::fs::read_to_string(&jsonl).unwrap();
    text.push_str("{broken\n");
    std::fs::write(&jsonl, text).unwrap();
    let out = dir.path().join("o");
    let lenient = medcap(&["prepare", "--medicat", path(&data), "--out", path(&out)]);
    assert!(lenient.status.success());
    let strict = medcap(&[
        "prepare",
        "--medicat",
        path(&data),
        "--out",
        path(&out),
        "--strict",
    ]);
    assert_eq!(strict.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&strict.stderr).contains("line 6"));
}

#[test]
fn info_reports_the_linked_libtorch() {
    let info = medcap(&["info"]);
    assert!(
        info.status.success(),
        "{}",
        String::from_utf8_lossy(&info.stderr)
    );
    let stdout = String::from_utf8_lossy(&info.stdout);
    assert!(stdout.contains("libtorch:       2.11.0"), "{stdout}");
    assert!(stdout.contains("CUDA available:"), "{stdout}");
}

#[test]
fn bad_arguments_fail() {
    assert!(
        !medcap(&["synth", "--out", "x", "--non-chest-share", "2"])
            .status
            .success()
    );
    assert!(
        !medcap(&[
            "prepare",
            "--medicat",
            "x",
            "--out",
            "y",
            "--study-rule",
            "--keyword",
            "lung"
        ])
        .status
        .success()
    );
}

/// The JSON lines of a successful run's standard output.
fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn score_writes_one_json_object_per_pair_then_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    // CRLF, an empty hypothesis, punctuation only, non-ASCII, a final line without newline.
    let hyps = write(
        dir.path(),
        "h.txt",
        "left pleural effusion\r\n\n...\nÉpanchement pleural gauche".as_bytes(),
    );
    let refs = write(
        dir.path(),
        "r.txt",
        b"left pleural effusion\r\nnormal chest\r\nnormal\r\npleural effusion\r\n",
    );
    let out = medcap(&[
        "score", "--refs", &refs, "--hyps", &hyps, "--format", "jsonl",
    ]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["rouge1"], 1.0, "CRLF must not leave a stray token");
    for key in [
        "bleu",
        "rouge1",
        "rouge2",
        "rougeL",
        "rougeLsum",
        "cider_d",
        "bert_p",
        "bert_r",
        "bert_f1",
    ] {
        assert!(lines[1][key].is_number(), "{key}");
        assert_eq!(lines[1][key], 0.0, "an empty hypothesis scores 0 on {key}");
    }
    assert!(
        lines[3]["rouge1"].as_f64().unwrap() > 0.0,
        "pleural survives rouge-score tokenization"
    );
    assert!(
        lines[0]["bert_f1"].as_f64().unwrap() > 0.99,
        "identical captions"
    );
    let summary = &lines[4]["summary"]["rouge1"];
    assert_eq!(summary["n"], 4);
    assert!(summary["ci95"][0].as_f64().unwrap() <= summary["mean"].as_f64().unwrap());
}

#[test]
fn score_reads_csv_and_compares_two_systems() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "p.csv",
        b"reference,candidate\n\"small, left effusion\",left effusion\nnormal heart,normal heart\n",
    );
    let out = medcap(&["score", "--csv", &csv, "--format", "csv"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);

    let refs = write(dir.path(), "r.txt", b"a b c d e\nf g h i j\n");
    let a = write(dir.path(), "a.txt", b"x y z\nx y z\n");
    let b = write(dir.path(), "b.txt", b"a b c d e\nf g h i j\n");
    let out = medcap(&["score", "--refs", &refs, "--hyps", &a, "--compare", &b]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && table.contains("B - A") && table.contains("+1.0000"),
        "{table}"
    );
}

#[test]
fn score_rejects_mismatched_and_non_utf8_files_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let refs = write(dir.path(), "r.txt", b"one\ntwo\n");
    let hyps = write(dir.path(), "h.txt", b"one\n");
    let out = medcap(&["score", "--refs", &refs, "--hyps", &hyps]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("r.txt has 2 lines") && stderr.contains("h.txt has 1"),
        "{stderr}"
    );

    let bad = write(dir.path(), "bad.txt", b"ok\nnot \xff utf8\n");
    let out = medcap(&["score", "--refs", &refs, "--hyps", &bad]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("bad.txt: line 2 is not valid UTF-8"),
        "{stderr}"
    );

    let out = medcap(&[
        "score",
        "--refs",
        &refs,
        "--hyps",
        &refs,
        "--bleu-impl",
        "nltk",
        "--bleu-smoothing",
        "method9",
    ]);
    assert!(!out.status.success());
}

#[test]
fn score_truncates_captions_longer_than_the_model_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let long = "left pleural effusion with adjacent atelectasis ".repeat(150); // ~900 word pieces
    let hyps = write(
        dir.path(),
        "h.txt",
        format!("{long}\nshort caption\n").as_bytes(),
    );
    let refs = write(
        dir.path(),
        "r.txt",
        format!("{long}\nanother caption\n").as_bytes(),
    );
    let out = medcap(&[
        "score", "--refs", &refs, "--hyps", &hyps, "--format", "jsonl", "--device", "cpu",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert!(first["bert_f1"].as_f64().unwrap() > 0.99, "{first}");
    // The long caption is one distinct text (hypothesis and reference alike).
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["bertscore_truncated_texts"], 1, "{last}");

    let no_bert = medcap(&[
        "score",
        "--refs",
        &refs,
        "--hyps",
        &hyps,
        "--format",
        "jsonl",
        "--no-bertscore",
    ]);
    let first: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&no_bert.stdout)
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert!(first.get("bert_f1").is_none());
}

#[test]
fn score_reports_a_bertscore_side_without_idf_weight_as_undefined() {
    // Identical references: every reference token has idf 0, so recall is
    // undefined (bert-score: NaN) while precision keeps its value and F1 is 0.
    let dir = tempfile::tempdir().unwrap();
    let same = "chest radiograph showing a left pleural effusion";
    let refs = write(dir.path(), "r.txt", format!("{same}\n{same}\n").as_bytes());
    let hyps = write(
        dir.path(),
        "h.txt",
        b"chest x-ray with small left effusion\nnormal chest radiograph\n",
    );
    let base = [
        "score",
        "--refs",
        &refs,
        "--hyps",
        &hyps,
        "--bertscore-idf",
        "--device",
        "cpu",
    ];
    let out = medcap(&[&base[..], &["--format", "jsonl"]].concat());
    let lines = json_lines(&out);
    // bert-score 0.3.13 (data-fixtures/metrics/bertscore_edges.json): 0.647710 and 0.355763.
    for (line, precision) in lines[..2].iter().zip([0.647710, 0.355763]) {
        assert!(
            (line["bert_p"].as_f64().unwrap() - precision).abs() < 1e-5,
            "{line}"
        );
        assert!(line["bert_r"].is_null(), "{line}");
        assert_eq!(line["bert_f1"], 0.0, "{line}");
    }
    let summary = &lines[2]["summary"];
    assert_eq!(summary["bert_r"]["n"], 0);
    assert_eq!(summary["bert_r"]["left_out"], 2);
    assert_eq!(summary["bert_p"]["left_out"], 0);

    let csv = medcap(&[&base[..], &["--format", "csv"]].concat());
    let text = String::from_utf8_lossy(&csv.stdout);
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let column = header.iter().position(|h| *h == "bert_r").unwrap();
    for row in text.lines().skip(1) {
        assert_eq!(row.split(',').nth(column), Some(""), "{row}");
    }

    let table = medcap(&base);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("left out of means") && text.contains("bert_r 2"),
        "{text}"
    );
}

#[test]
fn score_reproduces_bert_scores_batches_on_request() {
    // The pair whose value depends on the batch, at layer 6 of MiniLM, inside the 105 pairs of the
    // fixture: bert-score gives F1 0.270777 alone and 0.273339 at its default
    // batch size of 64 (data-fixtures/metrics/bertscore_edges.json).
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data-fixtures/metrics/bertscore_edges.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let batches = &fixture["batches"];
    let lines = |key: &str| -> String {
        batches[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| format!("{}\n", v.as_str().unwrap()))
            .collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let refs = write(dir.path(), "r.txt", lines("refs").as_bytes());
    let hyps = write(dir.path(), "h.txt", lines("cands").as_bytes());
    let first_f1 = |extra: &[&str]| -> f64 {
        let args = [
            &[
                "score",
                "--refs",
                &refs,
                "--hyps",
                &hyps,
                "--format",
                "jsonl",
                "--device",
                "cpu",
                "--bertscore-layer",
                "6",
                "--no-findings",
            ][..],
            extra,
        ]
        .concat();
        let out = medcap(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let first: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap())
                .unwrap();
        first["bert_f1"].as_f64().unwrap()
    };
    assert!((first_f1(&[]) - 0.270777).abs() < 1e-5);
    assert!((first_f1(&["--bertscore-batch-size", "64"]) - 0.273339).abs() < 1e-5);
    assert!((first_f1(&["--bertscore-batch-size", "1"]) - 0.270777).abs() < 1e-5);
    let zero = medcap(&[
        "score",
        "--refs",
        &refs,
        "--hyps",
        &hyps,
        "--bertscore-batch-size",
        "0",
    ]);
    assert!(!zero.status.success());
}

/// The RoBERTa fixture of `data-fixtures/roberta` (made by `gen.py` there):
/// its directory, and its single-reference pairs with bert-score's values.
fn roberta_fixture() -> (PathBuf, Vec<(String, String, serde_json::Value)>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/roberta");
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("golden.json")).unwrap()).unwrap();
    let pairs = golden["cands"]
        .as_array()
        .unwrap()
        .iter()
        .zip(golden["refs"].as_array().unwrap())
        .enumerate()
        // One reference, and no line breaks: the pairs go into line files.
        .filter(|(_, (c, r))| {
            let one_line = |v: &serde_json::Value| !v.as_str().unwrap().contains(['\n', '\r']);
            r.as_array().unwrap().len() == 1 && one_line(c) && one_line(&r[0])
        })
        .map(|(i, (c, r))| {
            let want = serde_json::json!({
                "plain": golden["plain"][i],
                "rescaled": golden["rescaled"][i],
            });
            (
                c.as_str().unwrap().to_owned(),
                r[0].as_str().unwrap().to_owned(),
                want,
            )
        })
        .take(60)
        .collect();
    (dir, pairs)
}

/// `medcap score` of two line files with a RoBERTa directory, JSONL, no findings.
fn roberta_score_args<'a>(refs: &'a str, hyps: &'a str, model: &'a Path) -> Vec<&'a str> {
    vec![
        "score",
        "--refs",
        refs,
        "--hyps",
        hyps,
        "--format",
        "jsonl",
        "--device",
        "cpu",
        "--no-findings",
        "--bertscore-model",
        model.to_str().unwrap(),
    ]
}

#[test]
fn score_with_a_roberta_directory_equals_bert_score() {
    let (fixture, pairs) = roberta_fixture();
    let dir = tempfile::tempdir().unwrap();
    let join = |f: &dyn Fn(&(String, String, serde_json::Value)) -> &str| -> String {
        pairs.iter().map(|p| format!("{}\n", f(p))).collect()
    };
    let hyps = write(dir.path(), "h.txt", join(&|p| p.0.as_str()).as_bytes());
    let refs = write(dir.path(), "r.txt", join(&|p| p.1.as_str()).as_bytes());
    let model = fixture.join("tiny-roberta");
    let baseline = fixture.join("baseline.tsv");
    let base = roberta_score_args(&refs, &hyps, &model);
    let run = |extra: &[&str]| {
        let args = [
            &base[..],
            &["--bertscore-layer", "2", "--bertscore-batch-size", "64"][..],
            extra,
        ]
        .concat();
        json_lines(&medcap(&args))
    };
    for (extra, key) in [
        (vec![], "plain"),
        (
            vec!["--bertscore-baseline", baseline.to_str().unwrap()],
            "rescaled",
        ),
    ] {
        let lines = run(&extra);
        for (line, (_, _, want)) in lines.iter().zip(&pairs) {
            for (name, i) in [("bert_p", 0), ("bert_r", 1), ("bert_f1", 2)] {
                let (got, want) = (line[name].as_f64().unwrap(), want[key][i].as_f64().unwrap());
                assert!((got - want).abs() < 1e-6, "{key} {name}: {got} vs {want}");
            }
        }
    }
}

#[test]
fn score_takes_bert_scores_default_layer_and_baseline_by_model_name() {
    let (fixture, _) = roberta_fixture();
    let model = fixture.join("tiny-roberta");
    let dir = tempfile::tempdir().unwrap();
    let hyps = write(
        dir.path(),
        "h.txt",
        b"left pleural effusion\nnormal heart size\n",
    );
    let refs = write(
        dir.path(),
        "r.txt",
        b"small left effusion\nthe heart is normal\n",
    );
    let base = roberta_score_args(&refs, &hyps, &model);
    // A directory whose name is not in bert-score's table needs a name or a layer.
    let out = medcap(&base);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--bertscore-model-type"),
        "{stderr}"
    );
    // roberta-base's row: layer 10, which this 3-layer model does not have.
    let out = medcap(&[&base[..], &["--bertscore-model-type", "roberta-base"]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("layer 10"),
        "{stderr}"
    );
    let out = medcap(&[&base[..], &["--bertscore-model-type", "gpt-7"]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("gpt-7") && stderr.contains("roberta-large"),
        "{stderr}"
    );
    // --bertscore-rescale picks bert-score's own roberta-base file, row 2.
    let raw = json_lines(&medcap(&[&base[..], &["--bertscore-layer", "2"]].concat()));
    let rescaled = json_lines(&medcap(
        &[
            &base[..],
            &[
                "--bertscore-layer",
                "2",
                "--bertscore-model-type",
                "roberta-base",
                "--bertscore-rescale",
            ],
        ]
        .concat(),
    ));
    let baselines = std::env::var("MEDCAP_BERTSCORE_BASELINES")
        .expect("MEDCAP_BERTSCORE_BASELINES is set by `cargo xtask setup`");
    let table = std::fs::read_to_string(Path::new(&baselines).join("en/roberta-base.tsv")).unwrap();
    let row: Vec<f64> = table
        .lines()
        .find(|l| l.starts_with("2,"))
        .unwrap()
        .split(',')
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    for (r, s) in raw[..2].iter().zip(&rescaled[..2]) {
        for (name, b) in [("bert_p", row[0]), ("bert_r", row[1]), ("bert_f1", row[2])] {
            let want = (r[name].as_f64().unwrap() - b) / (1.0 - b);
            assert!((s[name].as_f64().unwrap() - want).abs() < 1e-12, "{name}");
        }
    }
}

/// The `medcap` front end links no libtorch (so `medcap score --no-bertscore`,
/// `prepare`, `synth` and `label` never load it), while `medcap-torch`, which
/// it runs for the other commands, does; and those commands answer through
/// the front end as before.
#[test]
fn the_front_end_loads_no_libtorch_and_forwards_the_rest() {
    let needs_libtorch = |path: &str| {
        let bytes = std::fs::read(path).unwrap();
        bytes.windows(15).any(|w| w == b"libtorch_cpu.so")
    };
    assert!(!needs_libtorch(env!("CARGO_BIN_EXE_medcap")));
    assert!(needs_libtorch(env!("CARGO_BIN_EXE_medcap-torch")));
    // Full help (medcap-torch's parser) through the front end, under the name users type.
    let help = medcap(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("caption") && text.contains("score"), "{text}");
    assert!(
        text.contains("Usage: medcap <COMMAND>") && !text.contains("medcap-torch"),
        "{text}"
    );
    // A command's help says what the command does, whichever binary parses it.
    for (command, about) in [
        ("score", medcap_cli::cli_args::about::SCORE),
        ("prepare", medcap_cli::cli_args::about::PREPARE),
        ("label", medcap_cli::cli_args::about::LABEL),
    ] {
        let help = medcap(&[command, "--help"]);
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(text.starts_with(about), "{command}: {text}");
        assert!(text.contains(&format!("Usage: medcap {command}")), "{text}");
    }
    let caption = medcap(&["caption", "--help"]);
    let text = String::from_utf8_lossy(&caption.stdout);
    assert!(text.contains("Usage: medcap caption"), "{text}");
    let info = medcap(&["info"]);
    assert!(info.status.success());
    assert!(String::from_utf8_lossy(&info.stdout).contains("libtorch:       2.11.0"));
    // A mistake in a forwarded command is medcap-torch's clap error, exit code 2.
    let wrong = medcap(&["caption", "--no-such-flag"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("--no-such-flag"));
}

/// `medcap score ... | head`, `medcap label ... | head` and `medcap caption
/// ... | head` stop quietly: a
/// reader that goes away is not an error of the command (one exit path for
/// every command, `logging::exit`).
#[test]
fn output_into_a_closed_pipe_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let lines: String = (0..50_000)
        .map(|i| format!("left pleural effusion {i}\n"))
        .collect();
    let file = dir.path().join("c.txt");
    std::fs::write(&file, lines).unwrap();
    let f = path(&file);
    let model = crate::common::blip_fixtures().join("tiny-caption");
    let image = crate::common::blip_fixtures().join("images/rgb_wide.png");
    let mut caption = vec![
        "caption",
        "--model",
        path(&model),
        "--device",
        "cpu",
        "--batch-size",
        "1",
    ];
    caption.extend(std::iter::repeat_n(path(&image), 200));
    let commands: [&[&str]; 3] = [
        &[
            "score",
            "--refs",
            f,
            "--hyps",
            f,
            "--no-bertscore",
            "--no-findings",
            "--format",
            "jsonl",
        ],
        &["label", f],
        &caption,
    ];
    for args in commands {
        let mut child = Command::new(env!("CARGO_BIN_EXE_medcap"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
    }
}

/// `medcap score` streams (a first pass over the references, then chunks of
/// 8,192 captions): every row and every summary equal the in-memory
/// library call on the whole set, across the chunk boundary, with two
/// references per caption and findings on.
#[test]
fn streamed_scores_equal_the_library_on_the_whole_set() {
    use medcap_metrics::caption_scores::{Metrics, score_captions};
    let words = [
        "left",
        "right",
        "pleural",
        "effusion",
        "small",
        "large",
        "chest",
        "radiograph",
        "shows",
        "no",
        "consolidation",
        "cardiomegaly",
        "opacity",
        "lower",
        "lobe",
        "pneumothorax",
    ];
    let caption = |seed: usize| -> String {
        let n = 3 + seed % 9;
        (0..n)
            .map(|k| words[(seed * 31 + k * 7 + k * k) % words.len()])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let n = 9_000;
    let hyps: Vec<String> = (0..n).map(caption).collect();
    let refs: Vec<Vec<String>> = (0..n)
        .map(|i| vec![caption(i * 3 + 1), caption(i * 5 + 2)])
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, lines: Vec<&str>| {
        let p = dir.path().join(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p
    };
    let h = write("h.txt", hyps.iter().map(String::as_str).collect());
    let r0 = write("r0.txt", refs.iter().map(|r| r[0].as_str()).collect());
    let r1 = write("r1.txt", refs.iter().map(|r| r[1].as_str()).collect());
    let whole = score_captions(&hyps, &refs, &Metrics::default()).unwrap();
    // Rows as CSV: Rust's shortest round-trip printing, parsed back exactly.
    let run = |format: &str| {
        let out = medcap(&[
            "score",
            "--hyps",
            path(&h),
            "--refs",
            path(&r0),
            "--refs",
            path(&r1),
            "--no-bertscore",
            "--format",
            format,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let csv = run("csv");
    let mut rows = csv.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    let mut count = 0;
    for (i, (row, want)) in rows.zip(&whole.per_caption).enumerate() {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells[0], i.to_string());
        for (name, value) in want.named() {
            let k = header.iter().position(|h| *h == name.key()).unwrap();
            assert_eq!(
                cells[k].parse::<f64>().unwrap(),
                value,
                "caption {i}, {name}"
            );
        }
        count += 1;
    }
    assert_eq!(count, n);
    let jsonl = run("jsonl");
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), n + 1);
    // serde_json parses floats to within an ulp.
    let close = |got: &serde_json::Value, want: f64| {
        let got = got.as_f64().unwrap();
        assert!(
            (got - want).abs() <= 4.0 * f64::EPSILON * want.abs(),
            "{got} vs {want}"
        );
    };
    let summary = &lines[n]["summary"];
    for (name, want) in &whole.summary {
        close(&summary[name.key()]["mean"], want.mean);
        close(&summary[name.key()]["ci95"][0], want.ci95.0);
        close(&summary[name.key()]["ci95"][1], want.ci95.1);
    }
    let efficacy = whole.findings.unwrap().efficacy;
    close(
        &lines[n]["clinical_efficacy"]["micro_14"]["f1"],
        efficacy.micro_14.f1,
    );
}
