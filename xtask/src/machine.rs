//! What two tests need from the machine beyond Rust and `.venv/`: a Chromium
//! (the report page opened headless, `crates/medcap-study/tests/html_report.rs`)
//! and the right to mount a tmpfs (full and read-only disks,
//! `crates/medcap-cli/tests/disk_faults.rs`).
//!
//! `cargo xtask test` checks both before its long steps. It installs Debian's
//! `chromium` where it runs as root with `apt-get`; what is still missing
//! stops the run at once with what to do, unless `MEDCAP_SKIP` names the
//! check (`MEDCAP_SKIP=chromium,tmpfs`). The tests read the same variable: a
//! missing prerequisite fails them unless it is named there, so a check is
//! never left out silently.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Result, bail};

/// The checks `MEDCAP_SKIP` may name.
const CHECKS: [&str; 2] = ["chromium", "tmpfs"];

/// The checks a `MEDCAP_SKIP` value (`raw`, comma-separated) names, refused
/// when it names one that does not exist (a misspelling would otherwise
/// leave nothing out and say nothing).
fn skipped(raw: &str) -> Result<Vec<String>> {
    let names: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    for n in &names {
        if !CHECKS.contains(&n.as_str()) {
            bail!(
                "MEDCAP_SKIP names `{n}`, which is not a check that can be left out (these are: {})",
                CHECKS.join(", ")
            );
        }
    }
    Ok(names)
}

/// The Chromium the report page test will find: `MEDCAP_CHROMIUM`, else the
/// first of its usual names on the `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MEDCAP_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "headless_shell",
    ]
    .iter()
    .find_map(|name| on_path(name))
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.trim_ascii() == b"0")
}

/// Installs Debian's `chromium` with `apt-get` (at most 10 minutes a step);
/// whether it worked is judged by finding it afterwards.
fn install_chromium() {
    println!("==> no Chromium found: installing Debian's chromium with apt-get");
    for args in [
        &["600", "apt-get", "update", "-qq"][..],
        &["600", "apt-get", "install", "-y", "-qq", "chromium"][..],
    ] {
        let ok = Command::new("timeout")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            println!("    apt-get {} did not succeed", args[2]);
            return;
        }
    }
}

/// Whether a tmpfs can be mounted here, tried on a new directory under the
/// system's temporary directory.
fn can_mount_tmpfs() -> bool {
    let dir = std::env::temp_dir().join(format!("tmpfs-probe-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return false;
    }
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&dir)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if mounted {
        let _ = Command::new("umount").arg(&dir).status();
    }
    let _ = std::fs::remove_dir(&dir);
    mounted
}

/// What [`prepare`] found.
pub(crate) struct Machine {
    /// The checks `MEDCAP_SKIP` leaves out.
    pub(crate) skipped: Vec<String>,
    /// The Chromium the report page test is to use (given to it as
    /// `MEDCAP_CHROMIUM`, so that it needs no search of its own).
    pub(crate) chromium: Option<PathBuf>,
}

/// Checks (and where it can, provides) what the tests need from the
/// machine.
pub(crate) fn prepare() -> Result<Machine> {
    let skip = skipped(&std::env::var("MEDCAP_SKIP").unwrap_or_default())?;
    let mut missing = Vec::new();
    if !skip.iter().any(|s| s == "chromium") {
        if chromium().is_none() && is_root() && on_path("apt-get").is_some() {
            install_chromium();
        }
        if chromium().is_none() {
            missing.push(
                "Chromium, for the report page test: install Debian's `chromium` (cargo xtask \
                 test does so when it runs as root with apt-get) or set MEDCAP_CHROMIUM to a \
                 Chromium or Chrome executable; MEDCAP_SKIP=chromium leaves the test out",
            );
        }
    }
    if !skip.iter().any(|s| s == "tmpfs") && !can_mount_tmpfs() {
        missing.push(
            "the right to mount a tmpfs, for the disk-fault tests: run as root or in a \
             container with CAP_SYS_ADMIN; MEDCAP_SKIP=tmpfs leaves the tests out",
        );
    }
    if !missing.is_empty() {
        bail!(
            "this machine lacks what some tests need:\n  - {}",
            missing.join("\n  - ")
        );
    }
    if !skip.is_empty() {
        println!("==> left out by MEDCAP_SKIP: {}", skip.join(", "));
    }
    Ok(Machine {
        chromium: chromium(),
        skipped: skip,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn skip_names_are_read_and_misspellings_refused() {
        assert!(skipped("").unwrap().is_empty());
        assert_eq!(
            skipped(" tmpfs , chromium,").unwrap(),
            ["tmpfs", "chromium"]
        );
        let error = skipped("chromium,chromiun").unwrap_err().to_string();
        assert!(
            error.contains("`chromiun`") && error.contains("chromium, tmpfs"),
            "{error}"
        );
    }
}
