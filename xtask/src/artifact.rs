//! Where cargo put a binary: read from the JSON messages of
//! `cargo build --message-format=json-render-diagnostics`, so that
//! `CARGO_TARGET_DIR`, `build.target-dir` and `--target` are honoured without
//! xtask guessing the layout of the target directory.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::Value;

/// One line of cargo's standard output in JSON message mode.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A `compiler-artifact` message of the binary target asked for, with
    /// the path of its executable.
    Executable(PathBuf),
    /// Any other JSON message.
    Message,
    /// Not a JSON message (a build script's or a tool's stray output).
    Text,
}

/// Classifies one line, looking for the executable of the binary target `bin`.
pub fn classify(line: &str, bin: &str) -> Line {
    let Ok(message) = serde_json::from_str::<Value>(line) else {
        return Line::Text;
    };
    if !message.is_object() {
        return Line::Text;
    }
    let target = &message["target"];
    let is_bin = message["reason"] == "compiler-artifact"
        && target["name"] == bin
        && target["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"));
    match message["executable"].as_str() {
        Some(path) if is_bin => Line::Executable(PathBuf::from(path)),
        _ => Line::Message,
    }
}

/// Reads cargo's JSON messages to the end and returns, for each of `bins`
/// in order, the last executable of that binary target that they name.
/// Lines that are not JSON are passed on to `echo`, so nothing meant for
/// the user is swallowed (cargo itself renders the diagnostics on its
/// standard error, which xtask leaves alone).
pub fn find_executables(
    messages: impl BufRead,
    bins: &[&str],
    mut echo: impl Write,
) -> Result<Vec<Option<PathBuf>>> {
    let mut found = vec![None; bins.len()];
    for line in messages.split(b'\n') {
        let line = line.context("cannot read cargo's messages")?;
        let line = String::from_utf8_lossy(&line);
        if line.trim().is_empty() {
            continue;
        }
        let mut text = true;
        for (slot, bin) in found.iter_mut().zip(bins) {
            match classify(line.trim_end(), bin) {
                Line::Executable(path) => {
                    *slot = Some(path);
                    text = false;
                }
                Line::Message => text = false,
                Line::Text => {}
            }
        }
        if text {
            writeln!(echo, "{line}").context("cannot write to standard output")?;
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as cargo 1.95 prints them for `cargo build --release -p medcap-cli
    /// --message-format=json-render-diagnostics` (shortened, with a custom
    /// target directory).
    const MESSAGES: &str = r#"{"reason":"compiler-artifact","package_id":"registry+https://github.com/rust-lang/crates.io-index#memchr@2.7.4","manifest_path":"/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/memchr-2.7.4/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"memchr","src_path":"/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/memchr-2.7.4/src/lib.rs","edition":"2021","doc":true,"doctest":true,"test":true},"profile":{"opt_level":"3","debuginfo":0,"debug_assertions":false,"overflow_checks":false,"test":false},"features":["alloc","std"],"filenames":["/scratch/tgt/release/deps/libmemchr-0a1b2c3d.rlib","/scratch/tgt/release/deps/libmemchr-0a1b2c3d.rmeta"],"executable":null,"fresh":true}
{"reason":"build-script-executed","package_id":"registry+https://github.com/rust-lang/crates.io-index#torch-sys@0.24.0","linked_libs":["stdc++","static=tch"],"linked_paths":["native=/scratch/tgt/release/build/torch-sys-1234/out"],"cfgs":[],"env":[],"out_dir":"/scratch/tgt/release/build/torch-sys-1234/out"}
{"reason":"compiler-artifact","package_id":"path+file:///home/u/medcap/crates/medcap-cli#0.1.0","manifest_path":"/home/u/medcap/crates/medcap-cli/Cargo.toml","target":{"kind":["bin"],"crate_types":["bin"],"name":"medcap","src_path":"/home/u/medcap/crates/medcap-cli/src/main.rs","edition":"2024","doc":true,"doctest":false,"test":true},"profile":{"opt_level":"3","debuginfo":0,"debug_assertions":false,"overflow_checks":false,"test":false},"features":[],"filenames":["/scratch/tgt/release/medcap"],"executable":"/scratch/tgt/release/medcap","fresh":false}
{"reason":"build-finished","success":true}
"#;

    #[test]
    fn finds_the_medcap_executable_where_cargo_put_it() {
        let mut echoed = Vec::new();
        let found = find_executables(MESSAGES.as_bytes(), &["medcap"], &mut echoed)
            .unwrap()
            .pop()
            .flatten();
        assert_eq!(found, Some(PathBuf::from("/scratch/tgt/release/medcap")));
        assert!(echoed.is_empty());
    }

    #[test]
    fn other_targets_and_messages_name_no_executable() {
        let lines: Vec<&str> = MESSAGES.lines().collect();
        assert_eq!(classify(lines[0], "medcap"), Line::Message);
        assert_eq!(classify(lines[1], "medcap"), Line::Message);
        assert_eq!(classify(lines[3], "medcap"), Line::Message);
        // The same artifact is not the one asked for under another name.
        assert_eq!(classify(lines[2], "medcap-cli"), Line::Message);
        // A library target named like the binary has no executable.
        let lib = lines[2]
            .replace(r#""kind":["bin"]"#, r#""kind":["lib"]"#)
            .replace(
                r#""executable":"/scratch/tgt/release/medcap""#,
                r#""executable":null"#,
            );
        assert_eq!(classify(&lib, "medcap"), Line::Message);
    }

    #[test]
    fn lines_that_are_not_json_reach_the_user() {
        let input = format!("warning: something a tool printed\n{MESSAGES}42\n");
        let mut echoed = Vec::new();
        let found = find_executables(input.as_bytes(), &["medcap"], &mut echoed)
            .unwrap()
            .pop()
            .flatten();
        assert_eq!(found, Some(PathBuf::from("/scratch/tgt/release/medcap")));
        assert_eq!(
            String::from_utf8(echoed).unwrap(),
            "warning: something a tool printed\n42\n"
        );
    }

    #[test]
    fn no_artifact_means_none() {
        let mut echoed = Vec::new();
        let only_finish = r#"{"reason":"build-finished","success":false}"#;
        let found = find_executables(only_finish.as_bytes(), &["medcap"], &mut echoed)
            .unwrap()
            .pop()
            .flatten();
        assert_eq!(found, None);
    }
}
