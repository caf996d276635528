//! `cargo xtask fuzz [--seconds N] [TARGET ...]`: coverage-guided fuzzing of
//! the `fuzz/` targets with cargo-fuzz (libFuzzer, a nightly toolchain).
//!
//! Each target runs for N seconds (default 60) over a working corpus in
//! `target/fuzz/corpus/TARGET`, seeded from `fuzz/seeds/TARGET` (and the
//! image fixtures for the decoder). An input that breaks a check is copied
//! to `fuzz/regressions/TARGET/`, where the stable corpus test replays it,
//! and the task fails. A summary (runs, corpus, coverage) is printed and
//! written to `target/fuzz/report.md`.
//!
//! Without a nightly toolchain or cargo-fuzz, it says what is missing and
//! how to install it, and exits successfully: fuzzing is an extra, the
//! stable tests replay everything it has found.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::setup::Environment;
use crate::workspace::Workspace;

/// The targets, as in `fuzz/src/lib.rs`'s `TARGETS` (the corpus test checks
/// that `fuzz/fuzz_targets/` has exactly these; [`targets`] checks it here).
const TARGETS: [&str; 6] = [
    "jsonl_reader",
    "caption_text",
    "text_metrics",
    "score_files",
    "image_decode",
    "config",
];

struct Options {
    seconds: u64,
    targets: Vec<String>,
}

fn options(args: &[String]) -> Result<Options> {
    let mut seconds = 60;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = it.next().context("--seconds needs a number of seconds")?;
                seconds = value
                    .parse()
                    .ok()
                    .filter(|&s| s > 0)
                    .with_context(|| format!("--seconds {value}: not a positive number"))?;
            }
            name if TARGETS.contains(&name) => targets.push(name.to_owned()),
            other => bail!(
                "unknown fuzz option or target `{other}` (targets: {})",
                TARGETS.join(", ")
            ),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    Ok(Options { seconds, targets })
}

/// A command under the nightly toolchain, without the variables the stable
/// cargo that started xtask set for itself.
fn nightly(program: &str) -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", "nightly", program]);
    for key in [
        "CARGO",
        "RUSTC",
        "RUSTDOC",
        "RUSTUP_TOOLCHAIN",
        "RUSTC_WRAPPER",
    ] {
        cmd.env_remove(key);
    }
    cmd
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What is missing for fuzzing here, if anything.
fn missing_tools() -> Option<&'static str> {
    if !succeeds(nightly("rustc").arg("--version")) {
        return Some(
            "no nightly toolchain (rustup toolchain install nightly), which cargo-fuzz needs",
        );
    }
    if !succeeds(nightly("cargo").args(["fuzz", "--version"])) {
        return Some("cargo-fuzz is not installed (cargo install cargo-fuzz)");
    }
    None
}

/// libFuzzer's last status line and its final count, from its output.
struct Outcome {
    target: String,
    runs: Option<u64>,
    last_status: Option<String>,
    corpus_files: usize,
    found: Vec<PathBuf>,
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn run_target(ws: &Workspace, env: &Environment, target: &str, seconds: u64) -> Result<Outcome> {
    let work = ws.root.join("target/fuzz");
    let corpus = work.join("corpus").join(target);
    let artifacts = work.join("artifacts").join(target);
    for dir in [&corpus, &artifacts] {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let before: Vec<PathBuf> = files_in(&artifacts);
    let mut seeds = vec![ws.root.join("fuzz/seeds").join(target)];
    if target == "image_decode" {
        seeds.push(ws.root.join("data-fixtures/images/inputs"));
    }
    let log_path = work.join(format!("{target}.log"));
    let log = fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    println!(
        "==> fuzzing {target} for {seconds} s (log: {})",
        log_path.display()
    );
    let mut cmd = nightly("cargo");
    env.apply(&mut cmd);
    cmd.args([
        "fuzz",
        "run",
        "--fuzz-dir",
        "fuzz",
        "--features",
        "fuzzing",
        target,
    ])
    .arg(&corpus)
    .args(&seeds)
    .arg("--")
    .arg(format!("-max_total_time={seconds}"))
    .arg(format!("-artifact_prefix={}/", artifacts.display()))
    // Captions, lines and configurations are small; images need room.
    .arg("-max_len=65536")
    .arg("-rss_limit_mb=4096")
    .arg("-print_final_stats=1")
    .current_dir(&ws.root)
    .stdout(log.try_clone().context("cannot share the log file")?)
    .stderr(log);
    let status = cmd
        .status()
        .context("cannot run cargo fuzz under the nightly toolchain")?;
    let text = fs::read_to_string(&log_path).unwrap_or_default();
    let runs = text
        .lines()
        .filter_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .find_map(|v| v.trim().parse().ok());
    let last_status = text
        .lines()
        .rev()
        .find(|l| l.starts_with('#') && l.contains("cov:"))
        .map(str::to_owned);
    let found: Vec<PathBuf> = files_in(&artifacts)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    if !status.success() && found.is_empty() {
        bail!(
            "cargo fuzz run {target} failed ({status}) without a crash input; see {}",
            log_path.display()
        );
    }
    let regressions = ws.root.join("fuzz/regressions").join(target);
    for input in &found {
        fs::create_dir_all(&regressions)
            .with_context(|| format!("cannot create {}", regressions.display()))?;
        let name = input.file_name().context("an artifact without a name")?;
        fs::copy(input, regressions.join(name))
            .with_context(|| format!("cannot copy {}", input.display()))?;
    }
    Ok(Outcome {
        target: target.to_owned(),
        runs,
        last_status,
        corpus_files: files_in(&corpus).len(),
        found,
    })
}

pub fn run(ws: &Workspace, env: &Environment, args: &[String]) -> Result<()> {
    let options = options(args)?;
    let listed: Vec<String> = files_in(&ws.root.join("fuzz/fuzz_targets"))
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    for target in TARGETS {
        if !listed.iter().any(|l| l == target) {
            bail!("fuzz/fuzz_targets/{target}.rs is missing");
        }
    }
    if let Some(missing) = missing_tools() {
        println!("cargo xtask fuzz: not fuzzing here: {missing}.");
        println!(
            "The inputs found so far (fuzz/regressions) and the seeds are replayed on stable \
             by `cargo test -p medcap-fuzz`, part of `cargo xtask test`."
        );
        return Ok(());
    }
    let mut outcomes = Vec::new();
    for target in &options.targets {
        outcomes.push(run_target(ws, env, target, options.seconds)?);
    }
    let mut report = format!(
        "# cargo xtask fuzz\n\n{} s per target.\n\n| target | runs | corpus files | inputs that broke a check | libFuzzer's last status |\n|---|---:|---:|---:|---|\n",
        options.seconds
    );
    for o in &outcomes {
        report.push_str(&format!(
            "| {} | {} | {} | {} | `{}` |\n",
            o.target,
            o.runs.map_or("?".to_owned(), |r| r.to_string()),
            o.corpus_files,
            o.found.len(),
            o.last_status.as_deref().unwrap_or("-"),
        ));
    }
    print!("\n{report}");
    let path = ws.root.join("target/fuzz/report.md");
    fs::write(&path, &report).with_context(|| format!("cannot write {}", path.display()))?;
    let found: Vec<String> = outcomes
        .iter()
        .flat_map(|o| {
            o.found.iter().map(move |p| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default();
                format!("fuzz/regressions/{}/{name}", o.target)
            })
        })
        .collect();
    if !found.is_empty() {
        bail!(
            "inputs broke a check (fix the code or the check, then keep them as tests):\n  {}",
            found.join("\n  ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_take_seconds_and_targets() {
        let o = options(&args(&["--seconds", "600", "config", "image_decode"])).unwrap();
        assert_eq!(o.seconds, 600);
        assert_eq!(o.targets, ["config", "image_decode"]);
        assert_eq!(options(&[]).unwrap().targets.len(), TARGETS.len());
        for bad in [&["--seconds"][..], &["--seconds", "0"], &["nonsense"]] {
            assert!(options(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_target_list_matches_the_fuzz_package() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/fuzz_targets");
        let mut listed: Vec<String> = files_in(&dir)
            .iter()
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect();
        listed.sort();
        let mut ours: Vec<&str> = TARGETS.to_vec();
        ours.sort_unstable();
        assert_eq!(listed, ours);
    }
}
