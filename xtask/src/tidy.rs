//! `cargo xtask test`'s first step: the architecture invariants of
//! docs/ARCHITECTURE.md, checked rather than trusted.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Crates that must not link libtorch (their normal dependencies, all features).
const LIBTORCH_FREE: [&str; 5] = [
    "medcap-dataset",
    "medcap-image",
    "medcap-io",
    "medcap-metrics",
    "medcap-rng",
];
const LIBTORCH_CRATES: [&str; 2] = ["tch", "torch-sys"];
/// Library crates, which must not use binary-only dependencies.
const LIBRARIES: [&str; 9] = [
    "medcap-dataset",
    "medcap-image",
    "medcap-io",
    "medcap-rng",
    "medcap-model",
    "medcap-train",
    "medcap-metrics",
    "medcap-study",
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

/// Crates under `crates/` that the workspace does not list: members are
/// listed by name, not globbed, so that an output directory a user creates
/// there is not taken for a crate; a new crate must be added by hand.
fn unlisted_crates(root: &Path) -> Result<Vec<String>> {
    let manifest = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not TOML", manifest.display()))?;
    let listed = |key: &str| -> Vec<String> {
        table
            .get("workspace")
            .and_then(|w| w.get(key))
            .and_then(toml::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (members, defaults) = (listed("members"), listed("default-members"));
    let mut out = Vec::new();
    let crates = root.join("crates");
    let entries =
        std::fs::read_dir(&crates).with_context(|| format!("cannot read {}", crates.display()))?;
    for entry in entries {
        let dir = entry?.path();
        if !dir.join("Cargo.toml").is_file() {
            continue;
        }
        let name = format!(
            "crates/{}",
            dir.file_name().unwrap_or_default().to_string_lossy()
        );
        for (list, key) in [(&members, "members"), (&defaults, "default-members")] {
            if !list.contains(&name) {
                out.push(format!("{name} is not in the workspace's {key}"));
            }
        }
    }
    Ok(out)
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
    violations.extend(unlisted_crates(root)?);
    let mut missing = Vec::new();
    for dir in ["crates", "examples", "fuzz", "xtask"] {
        check_rust_headers(&root.join(dir), &mut missing)?;
    }
    violations.extend(
        missing
            .into_iter()
            .map(|p| format!("{p} does not start with a `//!` header")),
    );
    violations.extend(circumstance_words(root)?);
    violations.extend(broken_links(root)?);
    if !violations.is_empty() {
        bail!(
            "architecture invariants violated:\n  {}",
            violations.join("\n  ")
        );
    }
    Ok(())
}

/// Phrases that speak of how the project was written (who had which
/// machine, which work item asked for what) rather than of the product;
/// matched on word boundaries, case-insensitively.
const CIRCUMSTANCE: [&str; 12] = [
    "session",
    "sessions",
    "work item",
    "work items",
    "this round",
    "issue",
    "issues",
    "ticket",
    "lent",
    "this work",
    "design card",
    "build machine does not have",
];

/// Whether `phrase` occurs in `line` (lower case) as whole words, outside
/// a reference to a public tracker: a URL, or `owner/repository issue N`.
fn speaks_of_circumstances(line: &str, phrase: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(at) = line[from..].find(phrase) {
        let start = from + at;
        let end = start + phrase.len();
        from = end;
        let before = line[..start].chars().next_back();
        let after = line[end..].chars().next();
        if before.is_some_and(is_word) || after.is_some_and(is_word) {
            continue;
        }
        let word_before = line[..start].split_whitespace().next_back().unwrap_or("");
        let public =
            line.contains("://") || (phrase.starts_with("issue") && word_before.contains('/'));
        if !public {
            return true;
        }
    }
    false
}

/// The lines of Markdown files, Rust comments and Python files that speak
/// of the circumstances of the project's writing (`CIRCUMSTANCE`).
/// The Markdown, Rust and Python files of the project (outputs,
/// environments and third-party code left out) with extension in `exts`.
fn project_files(root: &Path, exts: &[&str]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
        {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !name.starts_with('.')
                    && ![
                        "target",
                        "vendor",
                        "medcap-out",
                        "node_modules",
                        "seeds",
                        "regressions",
                    ]
                    .contains(&name)
                {
                    stack.push(path);
                }
            } else if exts.contains(&path.extension().and_then(|e| e.to_str()).unwrap_or("")) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The lines of a Markdown text outside fenced code blocks, numbered from 1.
fn prose_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut fenced = false;
    text.lines().enumerate().filter_map(move |(n, line)| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return None;
        }
        (!fenced).then_some((n + 1, line))
    })
}

/// The anchors GitHub gives a Markdown file's headings: lower case, the
/// characters other than letters, digits, spaces, `-` and `_` dropped,
/// spaces as `-`, a repeated one suffixed `-1`, `-2`, ...
fn heading_anchors(text: &str) -> Vec<String> {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut anchors = Vec::new();
    for (_, line) in prose_lines(text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let heading = heading.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let slug: String = heading
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.entry(slug.clone()).or_default();
        anchors.push(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    anchors
}

/// The relative links of `text`'s prose: the targets of `[text](target)`.
fn relative_links(text: &str) -> Vec<(usize, String)> {
    let mut links = Vec::new();
    for (n, line) in prose_lines(text) {
        // Inline code may show link syntax without being a link.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        for (i, _) in prose.match_indices("](") {
            let rest = &prose[i + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = rest[..end].split_whitespace().next().unwrap_or("");
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            links.push((n, target.to_owned()));
        }
    }
    links
}

/// Relative links in the project's Markdown files whose file does not
/// exist, or whose `#anchor` is none of the target's headings.
fn broken_links(root: &Path) -> Result<Vec<String>> {
    let mut broken = Vec::new();
    // Each linked file's anchors, read once however often it is linked.
    let mut anchors: std::collections::HashMap<PathBuf, Vec<String>> =
        std::collections::HashMap::new();
    for file in project_files(root, &["md"])? {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let shown = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        for (n, target) in relative_links(&text) {
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap_or(root).join(path)
            };
            if !resolved.exists() {
                broken.push(format!("{shown}:{n}: link to `{target}`: no such file"));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if resolved.extension().and_then(|e| e.to_str()) != Some("md") {
                continue;
            }
            let headings = match anchors.entry(resolved) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let text = std::fs::read_to_string(e.key())
                        .with_context(|| format!("reading {}", e.key().display()))?;
                    e.insert(heading_anchors(&text))
                }
            };
            if !headings.iter().any(|a| a == anchor) {
                broken.push(format!(
                    "{shown}:{n}: link to `{target}`: no heading with that anchor"
                ));
            }
        }
    }
    Ok(broken)
}

fn circumstance_words(root: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for path in project_files(root, &["md", "rs", "py"])? {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        // This file names the words it looks for.
        if path.ends_with("xtask/src/tidy.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for (n, line) in text.lines().enumerate() {
            // Rust: comments only (code may name things freely).
            let words = if ext == "rs" {
                match line.find("//") {
                    Some(i) => &line[i..],
                    None => continue,
                }
            } else {
                line
            };
            let lower = words.to_lowercase();
            if let Some(p) = CIRCUMSTANCE
                .iter()
                .find(|p| speaks_of_circumstances(&lower, p))
            {
                let shown = path.strip_prefix(root).unwrap_or(&path);
                found.push(format!(
                    "{}:{}: `{p}` speaks of how the project was written, not of the product",
                    shown.display(),
                    n + 1
                ));
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn heading_anchors_are_github_s() {
        let text = "# Benchmarks\n## `medcap score`, the whole process\n```sh\n# not a heading\n```\n### On a GPU: `cargo xtask gpu-check`\n## Overview\n## Overview\n#hashtag\n";
        assert_eq!(
            heading_anchors(text),
            [
                "benchmarks",
                "medcap-score-the-whole-process",
                "on-a-gpu-cargo-xtask-gpu-check",
                "overview",
                "overview-1"
            ]
        );
    }

    #[test]
    fn broken_links_and_anchors_are_found() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("docs/guide")).unwrap();
        std::fs::write(tmp.path().join("docs/A.md"), "# A\n## Some part\n").unwrap();
        std::fs::write(
            tmp.path().join("docs/guide/b.md"),
            "[ok](../A.md) [ok](../A.md#some-part) [web](https://x.org/y.md)\n\
             [gone](../../A.md) [anchor](../A.md#other) `[code](nowhere.md)`\n\
             ```\n[fenced](nowhere.md)\n```\n[self](#b)\n# B\n",
        )
        .unwrap();
        let found = broken_links(tmp.path()).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("docs/guide/b.md:2: link to `../../A.md`: no such file"));
        assert!(found[1].contains("`../A.md#other`: no heading"));
    }

    #[test]
    fn this_repository_has_no_broken_links() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let found = broken_links(&root).unwrap();
        assert!(found.is_empty(), "{}", found.join("\n"));
    }

    #[test]
    fn circumstance_words_are_found_on_word_boundaries_outside_public_trackers() {
        for (line, hit) in [
            ("as the issue asks, the table has", true),
            ("measured in this session", true),
            ("no gpu was lent to the build", true),
            ("the gpu machines this project is lent", true),
            ("over three runs during this work", true),
            ("the design card lists tch", true),
            ("lentil-shaped opacity, silent and relentless", false),
            ("tissue contrast and reissued scans", false),
            ("stanfordmlgroup/chexpert-labeler issue 34 says so", false),
            ("see https://github.com/a/b/issues/7 for the issue", false),
            ("a known issue of rouge-score", true),
        ] {
            assert_eq!(
                CIRCUMSTANCE
                    .iter()
                    .any(|p| speaks_of_circumstances(line, p)),
                hit,
                "{line}"
            );
        }
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("docs")).unwrap();
        std::fs::write(tmp.path().join("docs/a.md"), "fine\nbuilt in one session\n").unwrap();
        std::fs::write(
            tmp.path().join("b.rs"),
            "let session = 1; // fine\n// per issue 3\n",
        )
        .unwrap();
        assert_eq!(circumstance_words(tmp.path()).unwrap().len(), 2);
    }

    #[test]
    fn this_repository_speaks_of_the_product_only() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let found = circumstance_words(&root).unwrap();
        assert!(found.is_empty(), "{}", found.join("\n"));
    }

    #[test]
    fn a_crate_missing_from_the_member_lists_is_named_and_output_directories_are_not() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::write(
            root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"crates/a\", \"crates/b\"]\ndefault-members = [\"crates/a\"]\n",
        )
        .unwrap();
        for c in ["a", "b", "c"] {
            std::fs::create_dir_all(root.join("crates").join(c)).unwrap();
            std::fs::write(root.join("crates").join(c).join("Cargo.toml"), "").unwrap();
        }
        // What `cd crates && cargo xtask reproduce` leaves: no manifest, no member.
        std::fs::create_dir_all(root.join("crates/medcap-out/report")).unwrap();
        let mut found = unlisted_crates(root).unwrap();
        found.sort();
        assert_eq!(
            found,
            [
                "crates/b is not in the workspace's default-members",
                "crates/c is not in the workspace's default-members",
                "crates/c is not in the workspace's members",
            ]
        );
    }
}
