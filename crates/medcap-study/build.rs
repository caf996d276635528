//! Links libtorch into this package's tests (run path, libtorch_cuda kept),
//! and records the commit the study code was built from for the report's
//! provenance: asking git at run time would name the repository of the
//! working directory, which may be any other one.
// Build scripts talk to cargo through stdout.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::Command;

fn main() {
    medcap_build::link_libtorch();
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let git = Path::new(&manifest).join("../../.git");
    for file in ["HEAD", "packed-refs"] {
        println!("cargo:rerun-if-changed={}", git.join(file).display());
    }
    let head = std::fs::read_to_string(git.join("HEAD")).unwrap_or_default();
    if let Some(reference) = head.trim().strip_prefix("ref: ") {
        println!("cargo:rerun-if-changed={}", git.join(reference).display());
    }
    let commit = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&manifest)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!("cargo:rustc-env=MEDCAP_GIT_COMMIT={commit}");
}
