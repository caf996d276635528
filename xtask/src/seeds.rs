//! `cargo xtask reproduce --seeds N`: the study once per seed (the first
//! from `--seed`, else the configuration's `seed`, else the default 2023;
//! then the next ones), each in `OUT/seed-S`, and the spread of every
//! Table 1 cell and reproduction target over the seeds, printed and written
//! to `OUT/seeds.md`. Fails when a seed misses a target.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The study configuration's default seed (medcap-study's `StudyConfig`).
const DEFAULT_SEED: u64 = 2023;

/// A seeds run: how many, from which seed, where, and the options each run gets.
#[derive(Debug, PartialEq)]
pub struct Plan {
    /// Seeds, in order.
    pub seeds: Vec<u64>,
    /// The parent output directory, as the user typed it.
    pub out: PathBuf,
    /// `medcap reproduce` options other than `--seeds`, `--seed` and `--out`.
    pub rest: Vec<String>,
}

fn value_of(args: &[String], i: usize, flag: &str) -> Result<String> {
    args.get(i + 1)
        .cloned()
        .with_context(|| format!("{flag} needs a value"))
}

/// Reads `--seeds N` out of `args`; `None` without it. `cwd`: where relative
/// paths (`--config`) are read from.
pub fn plan(args: &[String], cwd: &Path) -> Result<Option<Plan>> {
    let mut count = None;
    let mut seed = None;
    let mut out = PathBuf::from("medcap-out");
    let mut config = None;
    let mut rest = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let (flag, inline) = match args[i].split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (args[i].clone(), None),
        };
        let takes_value = matches!(flag.as_str(), "--seeds" | "--seed" | "--out" | "--config");
        let value = match (&inline, takes_value) {
            (Some(v), _) => Some(v.clone()),
            (None, true) => {
                i += 1;
                Some(value_of(args, i - 1, &flag)?)
            }
            (None, false) => None,
        };
        match flag.as_str() {
            "--seeds" => {
                let v = value.unwrap_or_default();
                let n: usize = v
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .with_context(|| format!("--seeds {v}: expected a count of at least 1"))?;
                count = Some(n);
            }
            "--seed" => {
                let v = value.unwrap_or_default();
                seed = Some(
                    v.parse::<u64>()
                        .with_context(|| format!("--seed {v}: expected a whole number"))?,
                );
            }
            "--out" => out = PathBuf::from(value.unwrap_or_default()),
            "--config" => {
                let v = value.unwrap_or_default();
                rest.extend(["--config".to_owned(), v.clone()]);
                config = Some(cwd.join(v));
            }
            _ => rest.push(args[i].clone()),
        }
        i += 1;
    }
    let Some(count) = count else {
        return Ok(None);
    };
    let first = match (seed, config) {
        (Some(s), _) => s,
        (None, Some(path)) => config_seed(&path)?.unwrap_or(DEFAULT_SEED),
        (None, None) => DEFAULT_SEED,
    };
    Ok(Some(Plan {
        seeds: (0..count as u64).map(|k| first + k).collect(),
        out,
        rest,
    }))
}

/// The `seed` of a TOML or JSON study configuration, if it sets one.
fn config_seed(path: &Path) -> Result<Option<u64>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the study configuration {}", path.display()))?;
    let seed = if path.extension().is_some_and(|e| e == "json") {
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        v.get("seed").and_then(Value::as_u64)
    } else {
        let v: toml::Table = toml::from_str(&text)
            .with_context(|| format!("{} is not valid TOML", path.display()))?;
        v.get("seed")
            .and_then(toml::Value::as_integer)
            .and_then(|s| u64::try_from(s).ok())
    };
    Ok(seed)
}

/// `OUT/seed-S` for one seed.
pub fn seed_dir(out: &Path, seed: u64) -> PathBuf {
    out.join(format!("seed-{seed}"))
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// Mean, s.d., min and max of `values`.
fn spread(values: &[f64]) -> (f64, f64, f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, var.sqrt(), min, max)
}

/// The spread over the seeds' `report.json`s as Markdown, and the targets
/// each seed missed.
pub fn summarize(reports: &[(u64, Value)]) -> Result<(String, Vec<String>)> {
    let Some((_, first)) = reports.first() else {
        bail!("no report to summarize");
    };
    let seeds: Vec<String> = reports.iter().map(|(s, _)| s.to_string()).collect();
    let mut md = format!(
        "# Spread over {} seeds ({})\n\n| Model | Metric | {} | mean | s.d. | min | max |\n|---|---|{}---:|---:|---:|---:|\n",
        reports.len(),
        seeds.join(", "),
        seeds.join(" | "),
        "---:|".repeat(reports.len())
    );
    let cells: Vec<(String, String)> = first["table"]
        .as_array()
        .context("report.json has no table")?
        .iter()
        .filter_map(|e| {
            Some((
                e["model"].as_str()?.to_owned(),
                e["metric"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let mut rows: Vec<(String, String, Vec<f64>)> = cells
        .into_iter()
        .map(|(model, metric)| {
            let values = reports
                .iter()
                .filter_map(|(_, r)| {
                    r["table"].as_array()?.iter().find_map(|e| {
                        (e["model"] == model.as_str() && e["metric"] == metric.as_str())
                            .then(|| number(&e["summary"]["mean"]))
                            .flatten()
                    })
                })
                .collect();
            (model, metric, values)
        })
        .collect();
    for model in ["BLIP", "FT-1", "FT-2"] {
        let values: Vec<f64> = reports
            .iter()
            .filter_map(|(_, r)| number(&r["truth_findings"][model]["with_sides"]["f1"]))
            .collect();
        if !values.is_empty() {
            rows.push((
                model.into(),
                "findings micro-F1 vs truth (with sides)".into(),
                values,
            ));
        }
        let values: Vec<f64> = reports
            .iter()
            .filter_map(|(_, r)| {
                // Reports written before 2026-12-01 name the share by words only.
                let share = &r["repetition"][model];
                number(&share["three_times_in_a_row"])
                    .or_else(|| number(&share["word_three_times"]))
            })
            .collect();
        if !values.is_empty() {
            rows.push((
                model.into(),
                "share repeating a word, phrase or word piece 3 times".into(),
                values,
            ));
        }
    }
    for (model, metric, values) in &rows {
        let (mean, sd, min, max) = spread(values);
        let each: Vec<String> = values.iter().map(|v| format!("{v:.3}")).collect();
        let _ = writeln!(
            md,
            "| {model} | {metric} | {} | {mean:.3} | {sd:.3} | {min:.3} | {max:.3} |",
            each.join(" | ")
        );
    }
    let mut missed = Vec::new();
    md += "\n| Seed | required targets met | missed |\n|---|---:|---|\n";
    for (seed, report) in reports {
        let targets: Vec<Value> = report["targets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t["required"] != false)
            .collect();
        let misses: Vec<String> = targets
            .iter()
            .filter(|t| t["met"] != true && t["required"] != false)
            .map(|t| {
                format!(
                    "{} (measured {})",
                    t["requirement"].as_str().unwrap_or("?"),
                    t["measured"].as_str().unwrap_or("?")
                )
            })
            .collect();
        if targets.is_empty() {
            missed.push(format!("seed {seed}: the report has no targets"));
        }
        missed.extend(misses.iter().map(|m| format!("seed {seed}: {m}")));
        let _ = writeln!(
            md,
            "| {seed} | {} of {} | {} |",
            targets.len() - misses.len(),
            targets.len(),
            misses.join("; ")
        );
    }
    Ok((md, missed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn seeds_and_out_are_taken_out_of_the_options() {
        let cwd = Path::new("/nowhere");
        assert_eq!(plan(&args("--out x --fresh"), cwd).unwrap(), None);
        let p = plan(&args("--seeds 3 --out runs --fresh --device cpu"), cwd)
            .unwrap()
            .unwrap();
        assert_eq!(p.seeds, [2023, 2024, 2025]);
        assert_eq!(p.out, PathBuf::from("runs"));
        assert_eq!(p.rest, args("--fresh --device cpu"));
        let p = plan(&args("--seeds=2 --seed=7"), cwd).unwrap().unwrap();
        assert_eq!((p.seeds, p.out), (vec![7, 8], PathBuf::from("medcap-out")));
        assert!(plan(&args("--seeds 0"), cwd).is_err());
        assert!(plan(&args("--seeds"), cwd).is_err());
        assert!(plan(&args("--seeds 2 --seed x"), cwd).is_err());
    }

    #[test]
    fn the_first_seed_comes_from_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.toml"), "seed = 11\nscenes = 10\n").unwrap();
        std::fs::write(dir.path().join("n.toml"), "scenes = 10\n").unwrap();
        let p = plan(&args("--seeds 2 --config s.toml"), dir.path())
            .unwrap()
            .unwrap();
        assert_eq!(p.seeds, [11, 12]);
        assert_eq!(p.rest, args("--config s.toml"));
        let p = plan(&args("--seeds 1 --config n.toml"), dir.path())
            .unwrap()
            .unwrap();
        assert_eq!(p.seeds, [2023]);
        let err = plan(&args("--seeds 1 --config missing.toml"), dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("missing.toml"), "{err:#}");
    }

    fn report(f1: f64, met: bool) -> Value {
        serde_json::json!({
            "table": [{"model": "FT-2", "metric": "rougeL", "summary": {"mean": f1}}],
            "truth_findings": {"FT-2": {"with_sides": {"f1": f1}}},
            "repetition": {"FT-2": {"three_times_in_a_row": 0.0}},
            "targets": [{"requirement": "FT-2 high", "measured": format!("{f1}"), "met": met}],
        })
    }

    #[test]
    fn the_spread_covers_every_cell_and_misses_are_named_by_seed() {
        let (md, missed) = summarize(&[(1, report(0.5, true)), (2, report(0.7, false))]).unwrap();
        assert!(
            md.contains("| FT-2 | rougeL | 0.500 | 0.700 | 0.600 | 0.141 | 0.500 | 0.700 |"),
            "{md}"
        );
        assert!(
            md.contains("findings micro-F1 vs truth (with sides)"),
            "{md}"
        );
        assert_eq!(missed, ["seed 2: FT-2 high (measured 0.7)"]);
        assert!(summarize(&[]).is_err());
    }
}
