//! Every seed and every committed regression input through its target's
//! check, on stable Rust: the fuzzers' findings stay tested where no
//! nightly toolchain is installed.

use std::collections::BTreeSet;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use medcap_fuzz::{TARGETS, target_names};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The input files in `dir` (none when it does not exist), README aside.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    files.retain(|p| p.is_file() && p.file_name().is_none_or(|n| n != "README.md"));
    files.sort();
    files
}

/// The seed directories of a target: its own, plus the project's image
/// fixtures for the decoder (the same list `cargo xtask fuzz` gives the fuzzer).
fn seed_dirs(target: &str) -> Vec<PathBuf> {
    let mut dirs = vec![root().join("seeds").join(target)];
    if target == "image_decode" {
        dirs.push(root().join("../data-fixtures/images/inputs"));
    }
    dirs
}

#[test]
fn every_seed_and_regression_input_passes_its_check() {
    let mut failures = Vec::new();
    for target in TARGETS {
        let mut files: Vec<PathBuf> = seed_dirs(target.name)
            .iter()
            .flat_map(|d| inputs(d))
            .collect();
        assert!(!files.is_empty(), "{} has no seeds", target.name);
        files.extend(inputs(&root().join("regressions").join(target.name)));
        for file in files {
            let data = fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if catch_unwind(AssertUnwindSafe(|| (target.check)(&data))).is_err() {
                failures.push(format!("{}: {}", target.name, file.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "checks failed on:\n{}",
        failures.join("\n")
    );
}

#[test]
fn seeds_regressions_and_fuzz_targets_name_the_same_targets() {
    let names = target_names();
    assert_eq!(names.len(), TARGETS.len(), "target names repeat");
    for dir in ["seeds", "regressions"] {
        for entry in fs::read_dir(root().join(dir)).unwrap_or_else(|e| panic!("{dir}: {e}")) {
            let path = entry
                .map(|e| e.path())
                .unwrap_or_else(|e| panic!("{dir}: {e}"));
            if path.is_dir() {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                assert!(
                    names.contains(name.as_str()),
                    "{} is no target",
                    path.display()
                );
            }
        }
    }
    let binaries: BTreeSet<String> = fs::read_dir(root().join("fuzz_targets"))
        .unwrap_or_else(|e| panic!("fuzz_targets: {e}"))
        .filter_map(|e| {
            e.ok()?
                .path()
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .collect();
    let expected: BTreeSet<String> = names.iter().map(|n| (*n).to_owned()).collect();
    assert_eq!(binaries, expected);
}
