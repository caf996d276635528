//! Helpers shared by the command-line tests: running the `medcap`
//! executable and finding the committed fixtures.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `medcap ARGS` in the test's working directory, warnings and errors only.
pub fn medcap(args: &[&str]) -> Output {
    medcap_in(Path::new("."), args)
}

/// `medcap ARGS` run from `cwd`, warnings and errors only.
pub fn medcap_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medcap"))
        .current_dir(cwd)
        .args(args)
        .env("MEDCAP_LOG", "warn")
        .output()
        .unwrap()
}

/// A path as an argument.
pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `data-fixtures/blip`: tiny checkpoints, images and transformers' outputs.
pub fn blip_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/blip")
}
