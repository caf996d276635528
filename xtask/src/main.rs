//! Project automation, in the `cargo xtask` convention
//! (<https://github.com/matklad/cargo-xtask/>).
//!
//! `cargo xtask setup` installs what the workspace needs (libtorch from the pinned
//! `torch` wheel, the MiniLM model) into a project-local virtual environment and
//! records its location in `.cargo/local.toml`, which cargo reads through the
//! `include` in `.cargo/config.toml`. Every other task runs setup first, so a clean
//! clone needs no hand steps.
#![allow(clippy::print_stdout)]

mod setup;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const HELP: &str = "\
cargo xtask <task> [options]

Tasks:
  setup       install libtorch (torch==2.11.0) and the MiniLM model into .venv; idempotent
  doctor      print what setup found: torch version, lib dir, CUDA, MiniLM model dir
  test        setup, then the architecture invariants, cargo fmt --check,
              clippy -D warnings and every workspace test
  reproduce   setup, then rerun the study end to end (data, base model, FT-1, FT-2,
              evaluation, report); resumes unfinished runs. Options (medcap reproduce's):
              --out DIR (default medcap-out), --config FILE, --medicat DIR,
              --base-model DIR, --device auto|cpu|cuda, --fresh
  bench       run the benchmarks: prepare on a MedICaT-sized JSONL; BLEU and ROUGE on
              10,000 pairs against the Python packages (MEDCAP_BENCH_PYTHON, if it has them)
              options: dataset | metrics | caption | train | all (default: dataset and metrics);
              caption installs transformers into .venv and compares BLIP-base generation;
              train also compares one BLIP-base training step with PyTorch's
  parity      rerun medcap-model's parity tests against the committed transformers fixtures;
              --base also builds a full-size random blip-image-captioning-base checkpoint
              with transformers (installed into .venv) and checks it the same way
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(task) = args.first() else {
        print!("{HELP}");
        return Ok(());
    };
    let root = project_root();
    std::env::set_current_dir(&root)
        .with_context(|| format!("cannot enter the project root {}", root.display()))?;
    let rest = &args[1..];
    match task.as_str() {
        "setup" => setup::run(&root).map(|_| ()),
        "doctor" => setup::doctor(&root),
        "test" => test(&root),
        "reproduce" => reproduce(&root, rest),
        "bench" => bench(&root, rest),
        "parity" => parity(&root, rest),
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => bail!("unknown task `{other}`\n\n{HELP}"),
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A `cargo` command whose environment points at the libtorch that setup chose.
///
/// The variables are set explicitly rather than left to `.cargo/local.toml`,
/// because this process may have inherited stale values from the cargo that
/// started it before setup rewrote the file.
fn cargo(env: &setup::Environment) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    env.apply(&mut cmd);
    cmd
}

fn run_step(what: &str, cmd: &mut Command) -> Result<()> {
    println!("==> {what}");
    let started = std::time::Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{what}`"))?;
    if !status.success() {
        bail!("`{what}` failed ({status})");
    }
    println!("    ({what}: {:.1} s)", started.elapsed().as_secs_f64());
    Ok(())
}

fn test(root: &Path) -> Result<()> {
    let env = setup::run(root)?;
    println!("==> architecture invariants (docs/ARCHITECTURE.md)");
    tidy::run(root)?;
    run_step(
        "cargo fmt --check",
        cargo(&env).args(["fmt", "--all", "--check"]),
    )?;
    run_step(
        "cargo clippy",
        cargo(&env).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run_step(
        "cargo test",
        cargo(&env).args(["test", "--workspace", "--all-features"]),
    )?;
    println!("==> all checks passed");
    Ok(())
}

fn bench(root: &Path, args: &[String]) -> Result<()> {
    let env = setup::run(root)?;
    let which = args.first().map_or("default", String::as_str);
    let (packages, caption): (&[&str], bool) = match which {
        "default" => (&["medcap-dataset", "medcap-metrics"], false),
        "dataset" => (&["medcap-dataset"], false),
        "metrics" => (&["medcap-metrics"], false),
        "caption" | "train" => (&[], true),
        "all" => (&["medcap-dataset", "medcap-metrics"], true),
        other => bail!("unknown benchmark `{other}` (dataset, metrics, caption, train or all)"),
    };
    if !packages.is_empty() {
        let mut cmd = cargo(&env);
        cmd.args(["bench", "--all-features"]);
        for p in packages {
            cmd.args(["--package", p]);
        }
        run_step(&format!("cargo bench {}", packages.join(" ")), &mut cmd)?;
    }
    if caption {
        let python = setup::reference_python(root)?;
        run_step(
            "cargo bench -p medcap-model --bench caption",
            cargo(&env)
                .args(["bench", "--package", "medcap-model", "--bench", "caption"])
                .env("MEDCAP_BENCH_PYTHON", &python),
        )?;
        if which == "train" || which == "all" {
            // Uses the base-size checkpoint the caption benchmark made.
            run_step(
                "cargo bench -p medcap-train --bench train_step",
                cargo(&env)
                    .args([
                        "bench",
                        "--package",
                        "medcap-train",
                        "--bench",
                        "train_step",
                    ])
                    .env("MEDCAP_BENCH_PYTHON", &python),
            )?;
        }
    }
    Ok(())
}

/// The committed parity tests, and with `--base` the full-size check: a
/// random checkpoint of blip-image-captioning-base's geometry made by
/// transformers (`data-fixtures/blip/gen.py --base`, about 1 GB, under
/// `target/`), then medcap's ignored base test against it.
fn parity(root: &Path, args: &[String]) -> Result<()> {
    let env = setup::run(root)?;
    let base = match args.first().map(String::as_str) {
        None => false,
        Some("--base") => true,
        Some(other) => bail!("unknown parity option `{other}` (only --base)"),
    };
    run_step(
        "cargo test -p medcap-model --test blip_parity --test preprocess_parity",
        cargo(&env).args([
            "test",
            "--package",
            "medcap-model",
            "--test",
            "blip_parity",
            "--test",
            "preprocess_parity",
        ]),
    )?;
    if base {
        let python = setup::reference_python(root)?;
        let dir = root.join("target/blip-base-parity");
        if !dir.join("golden.json").is_file() {
            run_step(
                "gen.py --base (transformers builds and runs the full-size model)",
                Command::new(&python)
                    .arg(root.join("data-fixtures/blip/gen.py"))
                    .arg("--base")
                    .arg(&dir),
            )?;
        }
        run_step(
            "base-size parity (release build)",
            cargo(&env)
                .args([
                    "test",
                    "--release",
                    "--package",
                    "medcap-model",
                    "--test",
                    "blip_parity",
                    "--",
                    "--ignored",
                    "--nocapture",
                    "base_configuration_matches",
                ])
                .env("MEDCAP_BLIP_BASE_DIR", &dir),
        )?;
    }
    Ok(())
}

/// Builds the release `medcap` and runs `medcap reproduce` with the given
/// options (xtask itself never links libtorch).
fn reproduce(root: &Path, args: &[String]) -> Result<()> {
    let env = setup::run(root)?;
    run_step(
        "cargo build --release -p medcap-cli",
        cargo(&env).args(["build", "--release", "--package", "medcap-cli"]),
    )?;
    let mut cmd = Command::new(root.join("target/release/medcap"));
    cmd.arg("reproduce").args(args);
    env.apply(&mut cmd);
    run_step("medcap reproduce", &mut cmd)
}
