//! `cargo xtask gpu-check --prepare DIR`: the bundle that checks and
//! measures medcap on the GPU machine, which has torch in its `python3` but
//! no Rust toolchain and no network. Built here:
//!
//! - `bin/`: release `medcap-torch` (the whole `medcap` command line; the
//!   front end, which only forwards to it, is left out to save 10 MB) and
//!   `medcap-device-check`, stripped (they find libtorch through
//!   `LD_LIBRARY_PATH`, which `run.sh` points at that machine's torch);
//! - `fixtures/`: the tiny BLIP checkpoint with transformers' golden ids and
//!   tensors, the fixture images and `gen.py` (which makes the base-size
//!   random checkpoint there), the tiny RoBERTa with bert-score's values;
//! - `gpu_reference.py`: the transformers side, and `wheels/`: transformers
//!   4.57.1 with the huggingface-hub and tokenizers it accepts, for a
//!   machine whose python3 has another transformers;
//! - `run.sh` (`--device cuda|cpu`, `--quick`, `--no-reference`) and a README.
//!
//! `cargo xtask test` prepares the bundle (without wheels) and runs
//! `run.sh --device cpu --quick --no-reference`, so that the one GPU run
//! does not fail on a typo.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::setup;
use crate::workspace::Workspace;

/// The transformers the golden files were made with, and the versions of
/// its dependencies that it accepts (`dependency_versions_check`).
const WHEELS: [&str; 3] = [
    "transformers==4.57.1",
    "huggingface-hub==0.36.0",
    "tokenizers==0.22.1",
];

/// The binaries of the bundle.
const BINARIES: [&str; 2] = ["medcap-torch", "medcap-device-check"];

/// Options of `gpu-check`.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    /// Where the bundle goes.
    pub dir: PathBuf,
    /// Download the transformers wheels into the bundle.
    pub wheels: bool,
}

/// Parses `--prepare DIR [--no-wheels]`; `DIR` relative to `cwd`.
pub fn options(args: &[String], cwd: &Path) -> Result<Options> {
    let mut dir = None;
    let mut wheels = true;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--prepare" => {
                let value = it.next().context("--prepare needs a directory")?;
                dir = Some(cwd.join(value));
            }
            "--no-wheels" => wheels = false,
            other => bail!("unknown gpu-check option `{other}` (--prepare DIR, --no-wheels)"),
        }
    }
    let dir = dir.context("gpu-check needs --prepare DIR (the bundle to write)")?;
    Ok(Options { dir, wheels })
}

/// Builds the bundle into `options.dir` (replacing an earlier one); returns
/// cargo's release directory.
pub fn prepare(ws: &Workspace, env: &setup::Environment, options: &Options) -> Result<PathBuf> {
    let dir = &options.dir;
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    let binaries = build(ws, env)?;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("cannot create {}", bin.display()))?;
    for (name, path) in &binaries {
        let to = bin.join(name);
        std::fs::copy(path, &to)
            .with_context(|| format!("cannot copy {} to {}", path.display(), to.display()))?;
        strip(&to);
    }
    let root = &ws.root;
    let fixtures = dir.join("fixtures");
    for (from, to) in [
        ("data-fixtures/blip/tiny-caption", "blip/tiny-caption"),
        ("data-fixtures/blip/images", "blip/images"),
        ("data-fixtures/blip/golden.json", "blip/golden.json"),
        (
            "data-fixtures/blip/golden.safetensors",
            "blip/golden.safetensors",
        ),
        ("data-fixtures/blip/gen.py", "blip/gen.py"),
        ("data-fixtures/roberta/tiny-roberta", "roberta/tiny-roberta"),
        ("data-fixtures/roberta/golden.json", "roberta/golden.json"),
    ] {
        copy_tree(&root.join(from), &fixtures.join(to))?;
    }
    let own = root.join("crates/medcap-device-check");
    for file in ["run.sh", "gpu_reference.py"] {
        copy_tree(&own.join(file), &dir.join(file))?;
    }
    std::fs::write(dir.join("README.md"), README)
        .with_context(|| format!("cannot write {}", dir.join("README.md").display()))?;
    if options.wheels {
        download_wheels(root, &dir.join("wheels"))?;
    }
    let bytes = size_of(dir)?;
    println!(
        "==> bundle in {} ({:.1} MiB; the device machine takes at most 64 MiB with the \
         repository's own files); run it there with {}/run.sh",
        dir.display(),
        bytes as f64 / (1024.0 * 1024.0),
        dir.display()
    );
    binaries
        .first()
        .and_then(|(_, p)| p.parent())
        .map(Path::to_owned)
        .context("no release directory")
}

/// What `cargo xtask test` runs: the bundle, without wheels, in cargo's
/// target directory, and its `run.sh` on the CPU at small sizes without
/// transformers; fails when a check fails.
pub fn test_on_cpu(ws: &Workspace, env: &setup::Environment) -> Result<()> {
    // A first build to learn the target directory (a no-op after the default run).
    let release = build(ws, env)?
        .first()
        .and_then(|(_, p)| p.parent().map(Path::to_owned))
        .context("no release directory")?;
    let dir = release
        .parent()
        .context("the release directory has no parent")?
        .join("gpu-check");
    // As a user types it, from another directory of the checkout, with a
    // relative path where the target directory is inside it.
    let from = ws.root.join("docs");
    let typed = match dir.strip_prefix(&ws.root) {
        Ok(inside) => Path::new("..").join(inside),
        Err(_) => dir.clone(),
    };
    let mut prepare = crate::cargo(ws, env);
    prepare
        .args(["xtask", "gpu-check", "--prepare"])
        .arg(&typed)
        .arg("--no-wheels")
        .current_dir(&from);
    crate::run_step(
        &format!(
            "cargo xtask gpu-check --prepare {} --no-wheels (in docs/)",
            typed.display()
        ),
        &mut prepare,
    )?;
    let mut cmd = Command::new(dir.join("run.sh"));
    cmd.args(["--device", "cpu", "--quick", "--no-reference", "--out"])
        .arg(dir.join("out-cpu"))
        .arg("--work")
        .arg(dir.join("work"))
        .env("PYTHON", ws.root.join(".venv/bin/python"));
    crate::run_step(
        "the GPU check bundle on the CPU (run.sh --device cpu --quick --no-reference)",
        &mut cmd,
    )
}

/// `cargo build --release` of the bundle's binaries.
fn build(ws: &Workspace, env: &setup::Environment) -> Result<Vec<(&'static str, PathBuf)>> {
    let paths = crate::build_release(ws, env, &["medcap-cli", "medcap-device-check"], &BINARIES)?;
    Ok(BINARIES.into_iter().zip(paths).collect())
}

/// Drops symbols and debug information where `strip` exists (binutils;
/// the dynamic symbols stay): the bundle travels to the GPU machine, whose
/// working-tree limit is 64 MiB, the repository's files included.
fn strip(path: &Path) {
    let stripped = Command::new("strip")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        println!("    (not stripped: {})", path.display());
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
        for entry in
            std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
        {
            let entry = entry.with_context(|| format!("cannot read {}", from.display()))?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn size_of(path: &Path) -> Result<u64> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for entry in
        std::fs::read_dir(path).with_context(|| format!("cannot read {}", path.display()))?
    {
        total += size_of(
            &entry
                .with_context(|| format!("cannot read {}", path.display()))?
                .path(),
        )?;
    }
    Ok(total)
}

/// The wheels for CPython 3.12 on x86-64 Linux (the GPU machine's python3),
/// through the project environment's pip.
fn download_wheels(root: &Path, to: &Path) -> Result<()> {
    let python = root.join(".venv/bin/python");
    let mut cmd = Command::new(&python);
    cmd.args([
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.12",
        "--implementation",
        "cp",
        "--platform",
        "manylinux_2_17_x86_64",
        "--platform",
        "manylinux2014_x86_64",
        "--platform",
        "any",
        "-d",
    ])
    .arg(to)
    .args(WHEELS);
    crate::run_step("pip download the transformers wheels", &mut cmd)
}

const README: &str = "\
# medcap GPU check bundle

Made by `cargo xtask gpu-check --prepare DIR` in a medcap checkout. On a machine with
torch 2.11.0 in its `python3` (no Rust toolchain or network needed):

    ./run.sh                         # --device cuda; writes out/report.json
    ./run.sh --device cpu --quick    # the same checks on the CPU, small sizes

`run.sh` points `LD_LIBRARY_PATH` at python3's torch, installs the bundled transformers
4.57.1 wheels into the work directory if python3 has another version, makes a random
blip-image-captioning-base-size checkpoint with transformers, measures transformers
(`gpu_reference.py measure`), then runs `bin/medcap-torch caption` (the `medcap` command
line) and `bin/medcap-device-check run`, whose process-group check runs under python3's
torchrun (`python3 -m torch.distributed.run --nproc-per-node 1`): NCCL on cuda:0 (Gloo on
the CPU), training through the group against training alone, sharded captioning against
captioning alone. Options: `--out DIR` (default ./out), `--work DIR`
(default $TMPDIR/medcap-gpu-check; the checkpoint is 1 GB), `--quick`, `--no-reference`.

out/report.json holds every check (passed, skipped, details) and the measurements
(captioning images/s, training-step time and peak memory per micro-batch, medcap's and
transformers'). The exit status is 0 only when every check that ran passed.
";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_take_the_directory_from_the_callers_directory() {
        let cwd = Path::new("/home/u/elsewhere");
        assert_eq!(
            options(&strings(&["--prepare", "bundle"]), cwd).unwrap(),
            Options {
                dir: cwd.join("bundle"),
                wheels: true
            }
        );
        let o = options(&strings(&["--no-wheels", "--prepare", "/abs"]), cwd).unwrap();
        assert_eq!((o.dir, o.wheels), (PathBuf::from("/abs"), false));
        let err = options(&[], cwd).unwrap_err().to_string();
        assert!(err.contains("--prepare DIR"), "{err}");
        let err = options(&strings(&["--prepare"]), cwd)
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs a directory"), "{err}");
        let err = options(&strings(&["--fast"]), cwd).unwrap_err().to_string();
        assert!(err.contains("unknown gpu-check option `--fast`"), "{err}");
    }
}
