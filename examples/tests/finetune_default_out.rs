//! `cargo run --example finetune_ft1` as a user types it: no `--out`, so the
//! run lands in `medcap-examples-out/` under the working directory (here a
//! temporary one, not the workspace), with the reduced configuration and a
//! clean environment.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;
use std::process::Command;

/// The example binary that `cargo test` built beside this test's own
/// (`target/<profile>/deps/<test>` → `target/<profile>/examples/<name>`).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

#[test]
fn finetune_ft1_with_its_default_out_leaves_a_run_directory_in_the_working_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(example("finetune_ft1"));
    cmd.env_clear()
        .current_dir(tmp.path())
        .args(["--reduced", "--device", "cpu"]);
    for keep in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "finetune_ft1 failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = tmp.path().join("medcap-examples-out/runs/ft1");
    for file in [
        "config.json",
        "metrics.jsonl",
        "loss.svg",
        "checkpoints/latest/state.json",
    ] {
        assert!(
            run.join(file).is_file(),
            "{file} missing in {}",
            run.display()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("medcap-examples-out"), "{stdout}");
}

/// A full standard output is an error that names it (exit 1), not a panic
/// (exit 101), and the outputs are still written.
#[cfg(target_os = "linux")]
#[test]
fn prepare_synthetic_onto_a_full_standard_output_fails_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(example("prepare_synthetic"))
        .current_dir(tmp.path())
        .arg("out")
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write the results to standard output: No space left on device"),
        "{stderr}"
    );
    assert!(tmp.path().join("out/prepared/test.csv").is_file());
}
