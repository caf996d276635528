//! `cargo xtask test`'s first step: the architecture invariants of
//! docs/ARCHITECTURE.md, checked rather than trusted.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Crates that must not link libtorch, with the cargo features they are checked with.
const LIBTORCH_FREE: [&str; 2] = ["medcap-dataset", "medcap-metrics"];
const LIBTORCH_CRATES: [&str; 2] = ["tch", "torch-sys"];
/// Library crates, which must not use binary-only dependencies.
const LIBRARIES: [&str; 5] = [
    "medcap-dataset",
    "medcap-model",
    "medcap-train",
    "medcap-metrics",
    "medcap-build",
];
const BINARY_ONLY: [&str; 4] = ["anyhow", "clap", "indicatif", "tracing-subscriber"];

fn dependencies(package: &str) -> Result<Vec<String>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--package",
            package,
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .context("cannot run cargo tree")?;
    if !out.status.success() {
        bail!(
            "cargo tree -p {package} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect())
}

fn check_rust_headers(dir: &Path, missing: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if !matches!(name, "target" | ".venv" | ".git") && !name.starts_with('.') {
                check_rust_headers(&path, missing)?;
            }
        } else if name.ends_with(".rs") {
            let text = std::fs::read_to_string(&path)?;
            if !text.trim_start().starts_with("//!") {
                missing.push(path.display().to_string());
            }
        }
    }
    Ok(())
}

pub fn run(root: &Path) -> Result<()> {
    let mut violations = Vec::new();
    for package in LIBTORCH_FREE {
        let deps = dependencies(package)?;
        for bad in LIBTORCH_CRATES {
            if deps.iter().any(|d| d == bad) {
                violations.push(format!(
                    "{package} depends on {bad} (it must not link libtorch)"
                ));
            }
        }
    }
    for package in LIBRARIES {
        let deps = dependencies(package)?;
        for bad in BINARY_ONLY {
            if deps.iter().any(|d| d == bad) {
                violations.push(format!(
                    "library {package} depends on {bad} (binaries only)"
                ));
            }
        }
    }
    let mut missing = Vec::new();
    for dir in ["crates", "examples", "xtask"] {
        check_rust_headers(&root.join(dir), &mut missing)?;
    }
    violations.extend(
        missing
            .into_iter()
            .map(|p| format!("{p} does not start with a `//!` header")),
    );
    if !violations.is_empty() {
        bail!(
            "architecture invariants violated:\n  {}",
            violations.join("\n  ")
        );
    }
    Ok(())
}
