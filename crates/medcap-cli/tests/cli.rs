//! The `medcap` binary: exit codes, messages and outputs of its commands.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

fn medcap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medcap"))
        .args(args)
        .env("MEDCAP_LOG", "warn")
        .output()
        .unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

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
