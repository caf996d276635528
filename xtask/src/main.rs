//! Project automation, in the `cargo xtask` convention
//! (<https://github.com/matklad/cargo-xtask/>).
//!
//! `cargo xtask setup` installs what the workspace needs (libtorch from the pinned
//! `torch` wheel, the MiniLM model) into a project-local virtual environment and
//! records its location in `.cargo/local.toml`, which cargo reads through the
//! `include` in `.cargo/config.toml`. Every other task runs setup first, so a clean
//! clone needs no hand steps.
//!
//! xtask finds the workspace at run time ([`workspace`]) and runs its steps
//! from its root; what the user typed is read against the directory
//! `cargo xtask` was started in.
#![allow(clippy::print_stdout)]

mod artifact;
mod bench_dist;
mod bench_score;
mod fuzz;
mod gpu_check;
mod machine;
mod realdata;
mod seeds;
mod setup;
mod tidy;
mod workspace;

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};

use crate::workspace::Workspace;

const HELP: &str = "\
cargo xtask <task> [options]

Run it from anywhere in the checkout; it finds the workspace itself and runs
its steps from the workspace root. Relative paths in options are taken from
the directory you run cargo xtask in.

Tasks:
  setup       install libtorch (torch==2.11.0) and the MiniLM model into .venv; idempotent
  doctor      print what setup found: torch version, lib dir, CUDA, MiniLM model dir
  test        setup, then the architecture invariants, cargo package of the published
              crates (metadata and versions, no build), cargo fmt --check,
              clippy -D warnings and every workspace test. Two tests need a
              Chromium and the right to mount a tmpfs: it installs Debian's
              chromium when root with apt-get, and stops at once naming what
              is missing unless MEDCAP_SKIP=chromium,tmpfs leaves them out
  package     cargo package of every published crate in dependency order, each
              built from its package as crates.io would (minutes: libtorch's
              bindings are compiled again)
  reproduce   setup, then rerun the study end to end (data, base model, FT-1, FT-2,
              evaluation, report); resumes unfinished runs. Options (medcap reproduce's):
              --out DIR (default medcap-out), --config FILE, --medicat DIR,
              --base-model DIR, --device auto|cpu|cuda, --fresh, --seed N,
              --check-targets; --nproc-per-node N runs it as N processes under
              the project's torchrun. With --seeds N: N runs (seeds S, S+1, ...; S from
              --seed, the configuration, else 2023) in OUT/seed-S, then the
              spread of every Table 1 cell over them (OUT/seeds.md); fails when
              a seed misses a reproduction target.
              Relative paths are taken from the directory you run cargo xtask
              in; the default --out medcap-out is created there. The medcap
              binary is taken from where cargo builds it (CARGO_TARGET_DIR and
              build.target-dir are honoured)
  bench       run the benchmarks: prepare on a MedICaT-sized JSONL; BLEU and ROUGE on
              10,000 pairs against the Python packages (MEDCAP_BENCH_PYTHON, if it has them)
              options: dataset | metrics | caption | train | all (default: dataset and metrics);
              caption installs transformers into .venv and compares BLIP-base generation;
              train also compares one BLIP-base training step with PyTorch's;
              metrics --real [DIR] scores real captions (ROCO's captions.txt, default the
              shared ROCO test captions), each against another of the same modality;
              score [--captions FILE] [--quick]: the whole `medcap score` process on 10,000
              and 105,000 real-caption pairs (1 and 5 references; BERTScore on 10,000)
              against the Python packages doing the same work, with each side's peak
              memory; installs sacrebleu, rouge-score and pycocoevalcap into .venv and
              writes target/bench-score/report.md;
              dist [--base]: one training run as 1 process × 2 threads and as 2 processes
              × 1 thread under torchrun (tiny model; --base also a BLIP-base-size one):
              s/step, images/s, bytes all-reduced and time in all-reduce per step;
              writes target/bench-dist/report.md
              imageclef --evaluators DIR --alignscore DIR [--python PY] [--pairs N]:
              ImageCLEF's text components (ROUGE on every ROCO caption; BERTScore,
              BLEURT, AlignScore on N pairs with random models of the official
              geometries) against the official evaluator; target/bench-imageclef/report.md
              clipscore [--python PY] [--images N]: CLIPScore over N (1,000) images with a
              random CLIP of ViT-B/32's geometry against torchmetrics' CLIPScore with the
              same model; target/bench-clipscore/report.md
  parity      rerun medcap-model's parity tests against the committed transformers fixtures;
              --base also builds a full-size random blip-image-captioning-base checkpoint
              with transformers (installed into .venv) and checks it the same way;
              --roberta-large builds a random RoBERTa of roberta-large's geometry and
              compares medcap's BERTScore with bert-score's at layer 17
  fuzz        [--seconds N] [TARGET ...]: coverage-guided fuzzing (cargo-fuzz, nightly) of
              every parser of user input, N seconds per target (default 60); inputs
              that break a check are copied to fuzz/regressions/ and fail the task;
              writes target/fuzz/report.md. Without nightly or cargo-fuzz it says so
              and exits 0 (the stable tests replay the seeds and regressions)
  gpu-check   --prepare DIR [--no-wheels]: a bundle that checks and measures medcap on a
              GPU machine with torch in its python3 and no Rust: release binaries,
              fixtures, transformers' side (gpu_reference.py and its wheels) and
              DIR/run.sh [--device cuda|cpu] [--quick] [--no-reference], which writes
              out/report.json (see docs/BENCHMARKS.md)
  realdata    caption cleanup and the chest selection on real captions: the ROCO test
              radiology captions in ../shared/data/roco-test-radiology (or DIR); writes
              target/realdata/report.md (counts, damaged captions, words removed, samples)
";

const TASKS: [&str; 10] = [
    "setup",
    "doctor",
    "test",
    "package",
    "reproduce",
    "bench",
    "parity",
    "realdata",
    "fuzz",
    "gpu-check",
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(task) = args.first() else {
        print!("{HELP}");
        return Ok(());
    };
    if matches!(task.as_str(), "help" | "--help" | "-h") {
        print!("{HELP}");
        return Ok(());
    }
    if !TASKS.contains(&task.as_str()) {
        bail!("unknown task `{task}`\n\n{HELP}");
    }
    // Before anything changes directory: relative arguments are the user's.
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let ws = Workspace::from_process(cwd)?;
    std::env::set_current_dir(&ws.root)
        .with_context(|| format!("cannot enter the project root {}", ws.root.display()))?;
    let rest = &args[1..];
    match task.as_str() {
        "setup" => setup::run(&ws.root).map(|_| ()),
        "doctor" => setup::doctor(&ws),
        "test" => test(&ws),
        "package" => package(&ws, &setup::run(&ws.root)?, true),
        "reproduce" => reproduce(&ws, rest),
        "bench" => bench(&ws, rest),
        "parity" => parity(&ws, rest),
        "realdata" => realdata::run(&ws, rest),
        "fuzz" => fuzz::run(&ws, &setup::run(&ws.root)?, rest),
        "gpu-check" => {
            let options = gpu_check::options(rest, &ws.cwd)?;
            gpu_check::prepare(&ws, &setup::run(&ws.root)?, &options).map(|_| ())
        }
        other => bail!("unknown task `{other}`\n\n{HELP}"),
    }
}

/// A `cargo` command whose environment points at the libtorch that setup chose.
///
/// The variables are set explicitly rather than left to `.cargo/local.toml`,
/// because this process may have inherited stale values from the cargo that
/// started it before setup rewrote the file. A relative target directory from
/// the environment is made absolute against the user's directory, where the
/// cargo that started xtask read it.
fn cargo(ws: &Workspace, env: &setup::Environment) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    env.apply(&mut cmd);
    for (key, dir) in ws.target_dir_overrides() {
        cmd.env(key, dir);
    }
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

/// `cargo package` of every crate meant for crates.io, in dependency order
/// (cargo orders them and resolves each against the ones before it); with
/// `verify`, each is also built from its package.
fn package(ws: &Workspace, env: &setup::Environment, verify: bool) -> Result<()> {
    let mut cmd = cargo(ws, env);
    cmd.args([
        "package",
        "--workspace",
        "--exclude",
        "xtask",
        "--exclude",
        "medcap-examples",
        // A development tree may hold uncommitted work; CI's clone is clean.
        "--allow-dirty",
    ]);
    if !verify {
        cmd.args(["--no-verify", "--offline"]);
    }
    run_step(
        if verify {
            "cargo package (every published crate, built from its package)"
        } else {
            "cargo package (every published crate: metadata, versions, resolution)"
        },
        &mut cmd,
    )
}

/// The library crates other projects build on, whose docs are their API
/// reference.
const PUBLISHED_API: [&str; 6] = [
    "medcap-metrics",
    "medcap-model",
    "medcap-dataset",
    "medcap-io",
    "medcap-image",
    "medcap-rng",
];

fn test(ws: &Workspace) -> Result<()> {
    let env = setup::run(&ws.root)?;
    println!("==> architecture invariants (docs/ARCHITECTURE.md)");
    tidy::run(&ws.root)?;
    let machine = machine::prepare()?;
    package(ws, &env, false)?;
    run_step(
        "cargo fmt --check",
        cargo(ws, &env).args(["fmt", "--all", "--check"]),
    )?;
    run_step(
        "cargo clippy",
        cargo(ws, &env).args([
            "clippy",
            "--workspace",
            "--all-targets",
            // Default features: the model crates' one feature, `doc-only`,
            // builds tch without linking libtorch (for docs.rs) and cannot run.
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    let mut test = cargo(ws, &env);
    test.args(["test", "--workspace"]);
    if let Some(browser) = &machine.chromium {
        test.env("MEDCAP_CHROMIUM", browser);
    }
    run_step("cargo test", &mut test)?;
    // The published crates' API reference: every public item documented
    // (the workspace's `missing_docs` lint) and no broken link, as rustdoc
    // builds it.
    let mut doc = cargo(ws, &env);
    doc.args(["doc", "--no-deps"]);
    for c in PUBLISHED_API {
        doc.args(["-p", c]);
    }
    doc.env("RUSTDOCFLAGS", "-D warnings");
    run_step("cargo doc (the library crates, warnings denied)", &mut doc)?;
    default_run(ws, &env)?;
    gpu_check::test_on_cpu(ws, &env)?;
    if machine.skipped.is_empty() {
        println!("==> all checks passed");
    } else {
        println!(
            "==> all checks passed but those MEDCAP_SKIP left out: {}",
            machine.skipped.join(", ")
        );
    }
    Ok(())
}

/// The run users get: `medcap reproduce` with no configuration, from the
/// start, in `target/default-run`, held to the reproduction targets
/// (medcap-study's `targets`; README's Table 1 comes from this run).
fn default_run(ws: &Workspace, env: &setup::Environment) -> Result<()> {
    let medcap = build_medcap(ws, env)?;
    // Beside the release directory cargo built into: target/default-run.
    let out = medcap
        .parent()
        .and_then(Path::parent)
        .context("the medcap executable has no target directory")?
        .join("default-run");
    let mut cmd = Command::new(&medcap);
    cmd.args([
        "reproduce",
        "--fresh",
        "--device",
        "cpu",
        "--check-targets",
        "--out",
    ])
    .arg(&out)
    .current_dir(&ws.root);
    env.apply(&mut cmd);
    run_step(
        "the default run (medcap reproduce --check-targets, into target/default-run)",
        &mut cmd,
    )?;
    readme_caption(ws, &medcap, &out, env)
}

/// README's tour captions a test figure with the FT-2 model of the run
/// `cargo xtask reproduce` leaves in `medcap-out/`: that command as typed,
/// after the tour's `export PATH=...` line, in a directory laid out as a
/// checkout after the run (its `medcap-out` is this default run, its
/// `target/release` the binaries just built). The caption must be the one
/// the run's report holds for that figure.
fn readme_caption(
    ws: &Workspace,
    medcap: &Path,
    out: &Path,
    env: &setup::Environment,
) -> Result<()> {
    let readme = std::fs::read_to_string(ws.root.join("README.md")).context("reading README.md")?;
    let line = readme
        .lines()
        .find(|l| l.starts_with("medcap caption --model medcap-out/"))
        .context("README.md has no `medcap caption --model medcap-out/...` line")?;
    let dir = out.with_file_name("readme-caption");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // The tour's first line puts `$PWD/target/release` on the path; here
    // that is the directory holding the `medcap` just built.
    let export = readme
        .lines()
        .find(|l| l.starts_with("export PATH="))
        .context("README.md has no `export PATH=...` line before its tour")?;
    let bin = medcap.parent().context("medcap has no directory")?;
    std::fs::create_dir_all(dir.join("target"))
        .with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(out, dir.join("medcap-out"))
            .with_context(|| format!("linking {}", dir.display()))?;
        std::os::unix::fs::symlink(bin, dir.join("target/release"))
            .with_context(|| format!("linking {}", dir.display()))?;
    }
    #[cfg(not(unix))]
    bail!("README's caption check needs a symbolic link (Unix)");
    // Both lines as README types them, in one shell.
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!("set -e\n{export}\n{line}\n"))
        .current_dir(&dir);
    env.apply(&mut cmd);
    let output = cmd
        .output()
        .with_context(|| format!("running README's `{line}`"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let figure = line.split_whitespace().last().unwrap_or_default();
    let caption = stdout
        .strip_prefix(&format!("{figure}\t"))
        .map(str::trim)
        .unwrap_or_default();
    ensure!(
        output.status.success() && !caption.is_empty() && stdout.lines().count() == 1,
        "README's `{line}` in a directory holding the default run printed {stdout:?} ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // Decoded as the study decodes, README's command gives the caption the
    // study's report holds for that figure from the FT-2 model.
    let report = out.join("report/captions.json");
    let captions: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&report)
            .with_context(|| format!("reading {}", report.display()))?,
    )
    .with_context(|| format!("{} is not JSON", report.display()))?;
    let file = Path::new(figure)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    let in_report = captions["FT-2"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == file))
        .and_then(|r| r["caption"].as_str())
        .with_context(|| format!("{} has no FT-2 caption of {file}", report.display()))?;
    ensure!(
        caption == in_report,
        "README's `{line}` printed {caption:?}; the study's report has {in_report:?} for that figure"
    );
    println!("README's caption command, as typed: {caption} (as in the report)");
    Ok(())
}

fn bench(ws: &Workspace, args: &[String]) -> Result<()> {
    let env = setup::run(&ws.root)?;
    if args.first().map(String::as_str) == Some("dist") {
        let base = match args.get(1).map(String::as_str) {
            None => false,
            Some("--base") => true,
            Some(other) => bail!("unknown option `{other}` of bench dist (--base)"),
        };
        if base {
            make_base_checkpoint(&ws.root)?;
        }
        let medcap = build_medcap(ws, &env)?;
        return bench_dist::run(
            &ws.root,
            &medcap,
            &|cmd| env.apply(cmd),
            &bench_dist::models(&ws.root, base),
        );
    }
    if args.first().map(String::as_str) == Some("imageclef") {
        let medcap = build_medcap(ws, &env)?;
        return bench_imageclef(ws, &medcap, &args[1..]);
    }
    if args.first().map(String::as_str) == Some("clipscore") {
        let medcap = build_medcap(ws, &env)?;
        return bench_clipscore(ws, &medcap, &args[1..]);
    }
    if args.first().map(String::as_str) == Some("score") {
        let options = bench_score::options(&args[1..], &ws.cwd, &ws.root)?;
        let python = setup::metrics_python(&ws.root)?;
        let medcap = build_medcap(ws, &env)?;
        return bench_score::run(&ws.root, &medcap, &python, &env.minilm, &options);
    }
    let which = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .map_or("default", String::as_str);
    // `--real [DIR]`: the metrics on real captions (a ROCO directory with
    // captions.txt; default the shared ROCO test captions).
    let real = match args.iter().position(|a| a == "--real") {
        Some(i) => {
            let dir = match args.get(i + 1).filter(|a| !a.starts_with("--")) {
                Some(d) => ws.cwd.join(d),
                None => ws.root.join("../shared/data/roco-test-radiology"),
            };
            let captions = dir.join("captions.txt");
            if !captions.is_file() {
                bail!(
                    "{} does not exist: --real needs ROCO captions",
                    captions.display()
                );
            }
            Some(captions)
        }
        None => None,
    };
    // (package, bench target) pairs, each run as its own `cargo bench`.
    let dataset: (&str, Option<&str>) = ("medcap-dataset", None);
    let findings = ("medcap-metrics", Some("findings"));
    let metrics = ("medcap-model", Some("metrics"));
    let (benches, caption): (Vec<(&str, Option<&str>)>, bool) = match which {
        "default" => (vec![dataset, findings, metrics], false),
        "dataset" => (vec![dataset], false),
        "metrics" => (vec![findings, metrics], false),
        "caption" | "train" => (vec![], true),
        "all" => (vec![dataset, findings, metrics], true),
        other => {
            bail!("unknown benchmark `{other}` (dataset, metrics, caption, train, score or all)")
        }
    };
    // BERTScore with RoBERTa at roberta-large's size, when `cargo xtask
    // parity --roberta-large` has made the model.
    let roberta = ws.root.join("target/roberta-large-parity/model");
    let has_roberta = roberta.join("model.safetensors").is_file();
    if !has_roberta && benches.contains(&metrics) {
        println!(
            "(no RoBERTa BERTScore row: run `cargo xtask parity --roberta-large` first to make \
             the roberta-large-size model)"
        );
    }
    for (package, bench) in benches {
        let mut cmd = cargo(ws, &env);
        cmd.args(["bench", "--package", package]);
        if let Some(bench) = bench {
            cmd.args(["--bench", bench]);
        }
        if let Some(captions) = &real {
            cmd.env("MEDCAP_BENCH_CAPTIONS", captions);
        }
        if has_roberta {
            cmd.env("MEDCAP_BENCH_ROBERTA_DIR", &roberta);
        }
        let name = match bench {
            Some(b) => format!("cargo bench -p {package} --bench {b}"),
            None => format!("cargo bench -p {package}"),
        };
        run_step(&name, &mut cmd)?;
    }
    if caption {
        let python = setup::reference_python(&ws.root)?;
        run_step(
            "cargo bench -p medcap-model --bench caption",
            cargo(ws, &env)
                .args(["bench", "--package", "medcap-model", "--bench", "caption"])
                .env("MEDCAP_BENCH_PYTHON", &python),
        )?;
        if which == "train" || which == "all" {
            // Uses the base-size checkpoint the caption benchmark made.
            run_step(
                "cargo bench -p medcap-train --bench train_step",
                cargo(ws, &env)
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

/// A random checkpoint of blip-image-captioning-base's geometry, made once
/// by transformers (installed into .venv) in `target/blip-base-parity`.
fn make_base_checkpoint(root: &Path) -> Result<PathBuf> {
    let dir = root.join("target/blip-base-parity");
    if !dir.join("golden.json").is_file() {
        let python = setup::reference_python(root)?;
        run_step(
            "gen.py --base (transformers builds and runs the full-size model)",
            Command::new(&python)
                .arg(root.join("data-fixtures/blip/gen.py"))
                .arg("--base")
                .arg(&dir),
        )?;
    }
    Ok(dir)
}

/// The committed parity tests, and with `--base` the full-size check: a
/// random checkpoint of blip-image-captioning-base's geometry made by
/// transformers (`data-fixtures/blip/gen.py --base`, about 1 GB, under
/// `target/`), then medcap's ignored base test against it.
fn parity(ws: &Workspace, args: &[String]) -> Result<()> {
    let root = ws.root.as_path();
    let env = setup::run(root)?;
    let (base, roberta_large) = match args.first().map(String::as_str) {
        None => (false, false),
        Some("--base") => (true, false),
        Some("--roberta-large") => (false, true),
        Some(other) => bail!("unknown parity option `{other}` (--base or --roberta-large)"),
    };
    run_step(
        "cargo test -p medcap-model --test tests -- blip_parity:: preprocess_parity::",
        cargo(ws, &env).args([
            "test",
            "--package",
            "medcap-model",
            "--test",
            "tests",
            "--",
            "blip_parity::",
            "preprocess_parity::",
        ]),
    )?;
    if base {
        let dir = make_base_checkpoint(root)?;
        run_step(
            "base-size parity (release build)",
            cargo(ws, &env)
                .args([
                    "test",
                    "--release",
                    "--package",
                    "medcap-model",
                    "--test",
                    "tests",
                    "--",
                    "--ignored",
                    "--nocapture",
                    "blip_parity::base_configuration_matches",
                ])
                .env("MEDCAP_BLIP_BASE_DIR", &dir),
        )?;
    }
    if roberta_large {
        let python = setup::bertscore_python(root)?;
        let dir = root.join("target/roberta-large-parity");
        if !dir.join("golden.json").is_file() {
            run_step(
                "roberta/gen.py --large (transformers builds the model, bert-score scores with it)",
                Command::new(&python)
                    .arg(root.join("data-fixtures/roberta/gen.py"))
                    .arg("--large")
                    .arg(&dir),
            )?;
        }
        run_step(
            "roberta-large-size BERTScore parity (release build)",
            cargo(ws, &env)
                .args([
                    "test",
                    "--release",
                    "--package",
                    "medcap-metrics",
                    "--test",
                    "tests",
                    "--",
                    "--ignored",
                    "roberta_parity::roberta_large_geometry_matches",
                ])
                .env("MEDCAP_ROBERTA_LARGE_DIR", &dir),
        )?;
    }
    Ok(())
}

/// Builds the release `medcap` and runs `medcap reproduce` with the given
/// options (xtask itself never links libtorch), in the directory the user
/// started `cargo xtask` in, so that relative paths (and the default
/// `--out medcap-out`) are the user's.
fn reproduce(ws: &Workspace, args: &[String]) -> Result<()> {
    let (processes, args) = nproc_per_node(args)?;
    let args = &args[..];
    let plan = seeds::plan(args, &ws.cwd)?;
    let env = setup::run(&ws.root)?;
    let medcap = build_medcap(ws, &env)?;
    // With --nproc-per-node N, torchrun of the project's environment starts
    // N processes on this machine (see README, "On several GPUs or
    // machines").
    let torchrun = ws.root.join(".venv/bin/torchrun");
    if processes.is_some() && !torchrun.is_file() {
        bail!(
            "--nproc-per-node needs torchrun, which setup installs with torch into {}",
            ws.root.join(".venv").display()
        );
    }
    let run = |args: &[String]| {
        let mut cmd = study_command(&medcap, processes.map(|n| (torchrun.as_path(), n)), args);
        cmd.current_dir(&ws.cwd);
        env.apply(&mut cmd);
        println!(
            "    ({} reproduce {}, in {})",
            medcap.display(),
            args.join(" "),
            ws.cwd.display()
        );
        run_step("medcap reproduce", &mut cmd)
    };
    let Some(plan) = plan else {
        return run(args);
    };
    let mut reports = Vec::new();
    for &seed in &plan.seeds {
        let dir = seeds::seed_dir(&plan.out, seed);
        let mut args = plan.rest.clone();
        args.extend([
            "--seed".to_owned(),
            seed.to_string(),
            "--out".to_owned(),
            dir.display().to_string(),
        ]);
        run(&args)?;
        let path = ws.cwd.join(&dir).join("report/report.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let report: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        reports.push((seed, report));
    }
    let (md, missed) = seeds::summarize(&reports)?;
    println!("{md}");
    let summary = ws.cwd.join(&plan.out).join("seeds.md");
    std::fs::write(&summary, &md).with_context(|| format!("cannot write {}", summary.display()))?;
    println!("spread over the seeds: {}", summary.display());
    if !missed.is_empty() {
        bail!(
            "{} reproduction target(s) missed:\n  {}",
            missed.len(),
            missed.join("\n  ")
        );
    }
    Ok(())
}

/// `cargo build --release -p medcap-cli`, returning the `medcap` executable.
/// `cargo xtask bench imageclef --evaluators DIR --alignscore DIR [--python PY]
/// [--pairs N] [--captions FILE]`: `xtask/bench/imageclef.py` with the
/// release `medcap`, writing `target/bench-imageclef/report.md`.
fn bench_imageclef(ws: &Workspace, medcap: &Path, args: &[String]) -> Result<()> {
    let mut python = "python3".to_owned();
    let mut forwarded: Vec<String> = Vec::new();
    let mut captions = ws
        .root
        .join("../shared/data/roco-test-radiology/captions.txt");
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .with_context(|| format!("bench imageclef: {flag} needs a value"))?;
        match flag.as_str() {
            "--python" => python = value.clone(),
            "--captions" => captions = ws.cwd.join(value),
            "--evaluators" | "--alignscore" => {
                forwarded.push(flag.clone());
                forwarded.push(ws.cwd.join(value).display().to_string());
            }
            "--pairs" => forwarded.extend([flag.clone(), value.clone()]),
            other => bail!(
                "unknown option `{other}` of bench imageclef (--evaluators, --alignscore, \
                 --python, --pairs, --captions)"
            ),
        }
    }
    for needed in ["--evaluators", "--alignscore"] {
        if !forwarded.iter().any(|a| a == needed) {
            bail!("bench imageclef needs {needed} DIR (see xtask/bench/imageclef.py)");
        }
    }
    bench_script(ws, &python, "imageclef", medcap, &captions, &forwarded)
}

/// `xtask/bench/NAME.py --medcap M --captions C --out target/bench-NAME
/// ARGS` with `python`; its report is `target/bench-NAME/report.md`.
fn bench_script(
    ws: &Workspace,
    python: &str,
    name: &str,
    medcap: &Path,
    captions: &Path,
    args: &[String],
) -> Result<()> {
    let out = ws.root.join(format!("target/bench-{name}"));
    let script = format!("xtask/bench/{name}.py");
    let status = Command::new(python)
        .arg(ws.root.join(&script))
        .arg("--medcap")
        .arg(medcap)
        .arg("--captions")
        .arg(captions)
        .arg("--out")
        .arg(&out)
        .args(args)
        .status()
        .with_context(|| format!("cannot run {python}"))?;
    ensure!(status.success(), "{script} failed ({status})");
    println!("report: {}", out.join("report.md").display());
    Ok(())
}

/// `cargo xtask bench clipscore [--python PY] [--images N] [--captions FILE]`:
/// `xtask/bench/clipscore.py` with the release `medcap`, writing
/// `target/bench-clipscore/report.md`.
fn bench_clipscore(ws: &Workspace, medcap: &Path, args: &[String]) -> Result<()> {
    let mut python = "python3".to_owned();
    let mut images = "1000".to_owned();
    let mut captions = ws
        .root
        .join("../shared/data/roco-test-radiology/captions.txt");
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .with_context(|| format!("bench clipscore: {flag} needs a value"))?;
        match flag.as_str() {
            "--python" => python = value.clone(),
            "--captions" => captions = ws.cwd.join(value),
            "--images" => images = value.clone(),
            other => bail!(
                "unknown option `{other}` of bench clipscore (--python, --images, --captions)"
            ),
        }
    }
    bench_script(
        ws,
        &python,
        "clipscore",
        medcap,
        &captions,
        &["--images".to_owned(), images],
    )
}

fn build_medcap(ws: &Workspace, env: &setup::Environment) -> Result<PathBuf> {
    let mut found = build_release(ws, env, &["medcap-cli"], &["medcap"])?;
    found.pop().context("no medcap executable")
}

/// `cargo build --release` of `packages`, returning the executables of
/// `bins` (in that order) from cargo's own messages: wherever
/// `CARGO_TARGET_DIR`, `build.target-dir` or a build target put them.
/// Cargo renders the diagnostics on its standard error, which goes to the
/// user's terminal as usual.
fn build_release(
    ws: &Workspace,
    env: &setup::Environment,
    packages: &[&str],
    bins: &[&str],
) -> Result<Vec<PathBuf>> {
    let what = format!(
        "cargo build --release{}",
        packages
            .iter()
            .map(|p| format!(" -p {p}"))
            .collect::<String>()
    );
    println!("==> {what}");
    let started = std::time::Instant::now();
    let mut cmd = cargo(ws, env);
    cmd.args(["build", "--release"]);
    for package in packages {
        cmd.args(["--package", package]);
    }
    let mut child = cmd
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{what}`"))?;
    let stdout = child
        .stdout
        .take()
        .context("cargo's standard output was not captured")?;
    let found = artifact::find_executables(BufReader::new(stdout), bins, std::io::stdout());
    let status = child
        .wait()
        .with_context(|| format!("cannot wait for `{what}`"))?;
    if !status.success() {
        bail!("`{what}` failed ({status})");
    }
    let found = found?;
    let mut paths = Vec::with_capacity(bins.len());
    for (bin, path) in bins.iter().zip(found) {
        paths.push(path.with_context(|| {
            format!("`{what}` succeeded but reported no executable of the `{bin}` binary")
        })?);
    }
    println!("    ({what}: {:.1} s)", started.elapsed().as_secs_f64());
    Ok(paths)
}

/// `medcap reproduce ARGS`, or with `(torchrun, n)` the same under
/// `torchrun --standalone --nproc-per-node n --no-python`.
fn study_command(medcap: &Path, torchrun: Option<(&Path, usize)>, args: &[String]) -> Command {
    let mut cmd = match torchrun {
        Some((torchrun, n)) => {
            let mut cmd = Command::new(torchrun);
            cmd.args(["--standalone", "--nproc-per-node", &n.to_string()])
                .arg("--no-python")
                .arg(medcap);
            cmd
        }
        None => Command::new(medcap),
    };
    cmd.arg("reproduce").args(args);
    cmd
}

/// `--nproc-per-node N` (or `=N`) taken out of `args`: how many processes
/// torchrun starts for the study, and the rest for `medcap reproduce`.
fn nproc_per_node(args: &[String]) -> Result<(Option<usize>, Vec<String>)> {
    let mut processes = None;
    let mut rest = Vec::with_capacity(args.len());
    let mut i = 0;
    while i < args.len() {
        let value = if args[i] == "--nproc-per-node" {
            i += 1;
            Some(
                args.get(i)
                    .cloned()
                    .context("--nproc-per-node needs a number")?,
            )
        } else {
            args[i].strip_prefix("--nproc-per-node=").map(str::to_owned)
        };
        match value {
            Some(v) => {
                let n: usize = v.parse().ok().filter(|&n| n >= 1).with_context(|| {
                    format!("--nproc-per-node {v}: expected a count of at least 1")
                })?;
                processes = Some(n);
            }
            None => rest.push(args[i].clone()),
        }
        i += 1;
    }
    Ok((processes, rest))
}

#[cfg(test)]
mod tests {
    use super::{nproc_per_node, study_command};
    use std::path::Path;

    #[test]
    fn the_study_runs_under_the_projects_torchrun_when_asked() {
        let medcap = Path::new("/b/medcap");
        let argv = |cmd: &std::process::Command| {
            std::iter::once(cmd.get_program())
                .chain(cmd.get_args())
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        let (n, rest) = nproc_per_node(&strings(&["--nproc-per-node", "2", "--reduced"])).unwrap();
        let torchrun = Path::new("/p/.venv/bin/torchrun");
        assert_eq!(
            argv(&study_command(medcap, n.map(|n| (torchrun, n)), &rest)),
            [
                "/p/.venv/bin/torchrun",
                "--standalone",
                "--nproc-per-node",
                "2",
                "--no-python",
                "/b/medcap",
                "reproduce",
                "--reduced"
            ]
        );
        assert_eq!(
            argv(&study_command(medcap, None, &rest)),
            ["/b/medcap", "reproduce", "--reduced"]
        );
    }

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn nproc_per_node_is_taken_out_of_the_study_options() {
        let (n, rest) = nproc_per_node(&strings(&[
            "--reduced",
            "--nproc-per-node",
            "2",
            "--out",
            "x",
        ]))
        .unwrap();
        assert_eq!(n, Some(2));
        assert_eq!(rest, strings(&["--reduced", "--out", "x"]));
        let (n, rest) = nproc_per_node(&strings(&["--nproc-per-node=4"])).unwrap();
        assert_eq!((n, rest.len()), (Some(4), 0));
        assert_eq!(nproc_per_node(&strings(&["--out", "x"])).unwrap().0, None);
        for bad in [
            &["--nproc-per-node"][..],
            &["--nproc-per-node", "0"],
            &["--nproc-per-node=two"],
        ] {
            assert!(nproc_per_node(&strings(bad)).is_err(), "{bad:?}");
        }
    }
}
