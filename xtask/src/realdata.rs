//! `cargo xtask realdata`: medcap's caption cleanup and chest selection
//! measured on real captions, the ROCO test-set radiology captions in
//! `../shared/data/roco-test-radiology` (or the ROCO directory named), which
//! a user's clone does not have: a task, not a test.
//!
//! It runs the release `medcap prepare` four times on them (images not
//! checked: the captions come without their images): every figure with the
//! cleanup audit, the default chest rule, the study's rule, and a wider
//! anatomy rule; then writes `target/realdata/report.md` with the counts,
//! every caption that lost a word no removal rule accounts for, the words
//! removed, and samples of what each rule keeps and misses.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::workspace::Workspace;

/// The anatomy rule measured beside the default: chest and the words of
/// the organs a chest figure shows.
const ANATOMY: [&str; 9] = [
    "chest",
    "thorax",
    "thoracic",
    "lung",
    "lungs",
    "pulmonary",
    "pleural",
    "mediastinum",
    "mediastinal",
];

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// `figures.csv` rows as (id, raw caption, kept).
fn figures(path: &Path) -> Result<Vec<(String, String, bool)>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{} has no `{name}` column", path.display()))
    };
    let (id, raw, caption) = (column("id")?, column("raw_caption")?, column("caption")?);
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record?;
        let cell = |i: usize| record.get(i).unwrap_or_default().to_owned();
        rows.push((cell(id), cell(raw), !cell(caption).is_empty()));
    }
    Ok(rows)
}

/// Every `step`-th item, at most `n`: a sample that is the same on every run.
fn sample<T: Clone>(items: &[T], n: usize) -> Vec<T> {
    let step = (items.len() / n.max(1)).max(1);
    items.iter().step_by(step).take(n).cloned().collect()
}

pub fn run(ws: &Workspace, args: &[String]) -> Result<()> {
    let input: PathBuf = match args.first() {
        Some(dir) => ws.cwd.join(dir),
        None => ws.root.join("../shared/data/roco-test-radiology"),
    };
    if !input.join("captions.txt").is_file() {
        bail!(
            "{} has no captions.txt: `cargo xtask realdata [DIR]` reads ROCO captions (by \
             default ../shared/data/roco-test-radiology beside the checkout)",
            input.display()
        );
    }
    let env = crate::setup::run(&ws.root)?;
    let medcap = crate::build_medcap(ws, &env)?;
    let out = ws.root.join("target/realdata");
    let anatomy: Vec<String> = ANATOMY
        .iter()
        .flat_map(|w| ["--keyword".to_owned(), (*w).to_owned()])
        .collect();
    let runs: [(&str, Vec<String>); 4] = [
        (
            "all",
            vec!["--all-figures".into(), "--cleanup-audit".into()],
        ),
        ("chest", vec![]),
        ("study", vec!["--study-rule".into()]),
        ("anatomy", anatomy),
    ];
    let mut summaries = BTreeMap::new();
    for (name, extra) in &runs {
        let dir = out.join(name);
        let mut cmd = Command::new(&medcap);
        cmd.arg("prepare")
            .arg("--input")
            .arg(&input)
            .args(["--format", "roco", "--skip-image-check", "--out"])
            .arg(&dir)
            .args(extra);
        env.apply(&mut cmd);
        let status = cmd.output().context("cannot run medcap prepare")?;
        if !status.status.success() {
            bail!(
                "medcap prepare ({name}) failed: {}",
                String::from_utf8_lossy(&status.stderr)
            );
        }
        summaries.insert(*name, read_json(&dir.join("summary.json"))?);
    }
    let all = &summaries["all"];
    let count = |s: &serde_json::Value, key: &str| s[key].as_u64().unwrap_or(0);
    let mut report = String::new();
    let _ = writeln!(report, "# medcap on real captions: {}\n", input.display());
    let _ = writeln!(
        report,
        "Records read: {}; malformed: {}; empty captions: {}.\n",
        count(all, "lines"),
        count(all, "malformed"),
        count(all, "empty_caption")
    );

    // Cleanup.
    let audit_text = std::fs::read_to_string(out.join("all/cleanup_audit.jsonl"))?;
    let audits: Vec<serde_json::Value> = audit_text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut removed: BTreeMap<String, u64> = BTreeMap::new();
    for a in &audits {
        for w in a["removed"].as_array().into_iter().flatten() {
            *removed
                .entry(w.as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
    }
    let mut removed: Vec<(String, u64)> = removed.into_iter().collect();
    removed.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let _ = writeln!(report, "## Caption cleanup\n");
    let _ = writeln!(
        report,
        "Captions changed: {} of {}; emptied (nothing but labels and markers): {}; \
         captions that lost a word no removal rule accounts for: {}.\n",
        count(all, "cleanup_changed"),
        count(all, "selected"),
        count(all, "empty_after_cleanup"),
        count(all, "cleanup_unexpected")
    );
    let _ = writeln!(
        report,
        "Words removed, by count (one entry per occurrence):\n"
    );
    let list: Vec<String> = removed.iter().map(|(w, n)| format!("{w} {n}")).collect();
    let _ = writeln!(report, "{}\n", list.join(", "));
    let _ = writeln!(
        report,
        "Captions with a word lost outside every removal rule:\n"
    );
    for a in audits
        .iter()
        .filter(|a| a["unexpected"].as_array().is_some_and(|u| !u.is_empty()))
    {
        let _ = writeln!(
            report,
            "- {} (lost: {})\n  - raw: {}\n  - cleaned: {}",
            a["id"].as_str().unwrap_or_default(),
            a["unexpected"],
            a["raw"].as_str().unwrap_or_default(),
            a["cleaned"].as_str().unwrap_or_default()
        );
    }

    // Selection.
    let _ = writeln!(report, "\n## Chest selection\n");
    let _ = writeln!(
        report,
        "| rule | kept of {} |\n|---|---:|",
        count(all, "lines")
    );
    for (name, label) in [
        ("chest", "default: the whole word `chest`, any case"),
        (
            "study",
            "the study's: case-sensitive `Chest`, `Brain` set aside",
        ),
        (
            "anatomy",
            "anatomy words: chest, thorax, thoracic, lung(s), pulmonary, pleural, mediastinum/al",
        ),
    ] {
        let _ = writeln!(
            report,
            "| {label} | {} |",
            count(&summaries[name], "selected")
        );
    }
    let chest = figures(&out.join("chest/figures.csv"))?;
    let anatomy = figures(&out.join("anatomy/figures.csv"))?;
    let kept_by_chest: Vec<&(String, String, bool)> = chest.iter().filter(|r| r.2).collect();
    let only_anatomy: Vec<&(String, String, bool)> = anatomy
        .iter()
        .zip(&chest)
        .filter(|(a, c)| a.2 && !c.2)
        .map(|(a, _)| a)
        .collect();
    for (title, rows) in [
        (
            "Kept by the default rule (sample of 25)",
            sample(&kept_by_chest, 25),
        ),
        (
            "Kept by the anatomy rule but not the default (sample of 20)",
            sample(&only_anatomy, 20),
        ),
    ] {
        let _ = writeln!(report, "\n{title}:\n");
        for (id, raw, _) in rows {
            let short: String = raw.chars().take(160).collect();
            let _ = writeln!(report, "- {id}: {short}");
        }
    }
    std::fs::write(out.join("report.md"), &report)?;
    println!("{report}");
    println!("(written to {})", out.join("report.md").display());
    Ok(())
}
