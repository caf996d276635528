//! `cargo xtask bench score`: the whole `medcap score` process against a
//! Python script doing the same work with the reference packages
//! (`xtask/bench/score_reference.py`: sacrebleu, rouge-score, pycocoevalcap's
//! CIDEr-D, bert-score), on real captions, with each side's wall time and
//! peak memory (`xtask/bench/measure.py`, getrusage of the one child).
//!
//! Pairs come from a caption file (default: the shared ROCO test radiology
//! captions): hypothesis i is caption i, its reference k is caption
//! 7i + k + 1 (mod the number of captions), so that sets larger than the file
//! repeat its captions as held-out pairs repeated would. Runs alternate
//! (medcap, Python, medcap) and medcap keeps its faster run: this shared
//! machine's speed drifts, and alternating keeps a slow spell from landing on
//! one side only. The two sides' summary means are compared too: the same
//! work, not merely similar work.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

/// One configuration measured.
#[derive(Debug, Clone, Copy)]
struct Case {
    pairs: usize,
    refs: usize,
    bertscore: bool,
}

/// One side's run.
#[derive(Debug, Clone, Copy)]
struct Measured {
    seconds: f64,
    max_rss_kib: f64,
}

/// Options of `cargo xtask bench score`.
pub struct Options {
    /// The caption file (one caption per line, or ROCO's `ID<TAB>caption`).
    pub captions: PathBuf,
    /// Only the 10,000-pair sets.
    pub quick: bool,
}

/// Parses `[--captions FILE] [--quick]` (paths relative to `cwd`).
pub fn options(args: &[String], cwd: &Path, root: &Path) -> Result<Options> {
    let mut captions = root.join("../shared/data/roco-test-radiology/captions.txt");
    let mut quick = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--captions" => {
                captions = cwd.join(it.next().context("--captions needs a FILE")?);
            }
            "--quick" => quick = true,
            other => bail!("unknown option `{other}` of bench score (--captions FILE, --quick)"),
        }
    }
    ensure!(
        captions.is_file(),
        "{} does not exist: bench score needs real captions (--captions FILE, one per line)",
        captions.display()
    );
    Ok(Options { captions, quick })
}

/// The captions of `path`: the text after the tab of ROCO's `ID<TAB>caption`
/// lines, else the whole line; empty ones skipped.
fn read_captions(path: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let captions: Vec<String> = text
        .lines()
        .map(|l| l.split_once('\t').map_or(l, |(_, c)| c).trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    ensure!(
        captions.len() > 10,
        "{} has {} captions; bench score needs more",
        path.display(),
        captions.len()
    );
    Ok(captions)
}

/// Writes the hypothesis file and `refs` reference files of `pairs` pairs
/// into `dir` (once), returning their paths.
fn write_set(
    dir: &Path,
    captions: &[String],
    pairs: usize,
    refs: usize,
) -> Result<(PathBuf, Vec<PathBuf>)> {
    let n = captions.len();
    let write = |name: String, pick: &dyn Fn(usize) -> usize| -> Result<PathBuf> {
        let path = dir.join(name);
        if !path.is_file() {
            let mut text = String::new();
            for i in 0..pairs {
                text.push_str(&captions[pick(i) % n]);
                text.push('\n');
            }
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, &path)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(path)
    };
    let hyps = write(format!("hyps-{pairs}.txt"), &|i| i)?;
    let refs = (0..refs)
        .map(|k| write(format!("refs-{pairs}-{k}.txt"), &|i| 7 * i + k + 1))
        .collect::<Result<_>>()?;
    Ok((hyps, refs))
}

/// Runs `command` under `measure.py`, its output into `out`.
fn measure(python: &Path, root: &Path, out: &Path, command: &[String]) -> Result<Measured> {
    let output = Command::new(python)
        .arg(root.join("xtask/bench/measure.py"))
        .arg(out)
        .arg("--")
        .args(command)
        .output()
        .context("cannot run xtask/bench/measure.py")?;
    let line = String::from_utf8_lossy(&output.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim())
        .with_context(|| format!("measure.py printed {line:?}"))?;
    if v["status"].as_i64() != Some(0) || !output.status.success() {
        bail!(
            "`{}` failed: {}",
            command.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(Measured {
        seconds: v["seconds"].as_f64().context("no seconds")?,
        max_rss_kib: v["max_rss_kib"].as_f64().context("no max_rss_kib")?,
    })
}

/// The largest difference between the two sides' summary means.
fn max_mean_difference(a: &Path, b: &Path) -> Result<f64> {
    let summary = |path: &Path| -> Result<serde_json::Value> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let last = text.lines().last().context("empty output")?;
        let v: serde_json::Value = serde_json::from_str(last)?;
        Ok(v["summary"].clone())
    };
    let (a, b) = (summary(a)?, summary(b)?);
    let mut worst = 0f64;
    for (name, sa) in a.as_object().context("no summary")? {
        let (Some(x), Some(y)) = (sa["mean"].as_f64(), b[name]["mean"].as_f64()) else {
            bail!("metric {name} missing from one side");
        };
        worst = worst.max((x - y).abs());
    }
    Ok(worst)
}

/// Runs the benchmark and writes `target/bench-score/report.md`.
pub fn run(
    root: &Path,
    medcap: &Path,
    python: &Path,
    minilm: &Path,
    options: &Options,
) -> Result<()> {
    let captions = read_captions(&options.captions)?;
    let dir = root.join("target/bench-score");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let sizes: &[usize] = if options.quick {
        &[10_000]
    } else {
        &[10_000, 105_000]
    };
    let mut cases: Vec<Case> = Vec::new();
    for &pairs in sizes {
        for refs in [1, 5] {
            cases.push(Case {
                pairs,
                refs,
                bertscore: false,
            });
        }
    }
    cases.push(Case {
        pairs: 10_000,
        refs: 1,
        bertscore: true,
    });
    let mut table = String::from(
        "| pairs | refs | BERTScore | medcap s | Python s | ratio | medcap peak MiB | Python peak MiB | max mean difference |\n\
         |---:|---:|:---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for case in cases {
        let (hyps, refs) = write_set(&dir, &captions, case.pairs, case.refs)?;
        let path = |p: &Path| p.display().to_string();
        let mut ours = vec![path(medcap), "score".into(), "--hyps".into(), path(&hyps)];
        for r in &refs {
            ours.extend(["--refs".into(), path(r)]);
        }
        ours.extend(
            [
                "--bleu-impl",
                "sacrebleu",
                "--no-findings",
                "--format",
                "jsonl",
            ]
            .map(String::from),
        );
        let mut theirs = vec![
            path(python),
            path(&root.join("xtask/bench/score_reference.py")),
            path(&hyps),
        ];
        theirs.extend(refs.iter().map(|r| path(r)));
        if case.bertscore {
            // The default model (the installed MiniLM at layer 5), as on the Python side.
            ours.extend(["--device", "cpu"].map(String::from));
            theirs.extend(
                ["--bertscore-model", &path(minilm), "--bertscore-layer", "5"].map(String::from),
            );
        } else {
            ours.push("--no-bertscore".into());
        }
        let label = format!(
            "{} pairs, {} reference{}{}",
            case.pairs,
            case.refs,
            if case.refs > 1 { "s" } else { "" },
            if case.bertscore { ", BERTScore" } else { "" }
        );
        println!("==> bench score: {label}");
        let (out_ours, out_theirs) = (dir.join("medcap.jsonl"), dir.join("python.jsonl"));
        let first = measure(python, root, &out_ours, &ours)?;
        let py = measure(python, root, &out_theirs, &theirs)?;
        let second = measure(python, root, &out_ours, &ours)?;
        let best = if second.seconds < first.seconds {
            second
        } else {
            first
        };
        let peak = first.max_rss_kib.max(second.max_rss_kib);
        let difference = max_mean_difference(&out_ours, &out_theirs)?;
        println!(
            "    medcap {:.2} s ({:.0} MiB), Python {:.1} s ({:.0} MiB): {:.1}x; means differ by at most {difference:.1e}",
            best.seconds,
            peak / 1024.0,
            py.seconds,
            py.max_rss_kib / 1024.0,
            py.seconds / best.seconds
        );
        let _ = writeln!(
            table,
            "| {} | {} | {} | {:.2} | {:.1} | {:.1}x | {:.0} | {:.0} | {difference:.1e} |",
            case.pairs,
            case.refs,
            if case.bertscore { "on" } else { "off" },
            best.seconds,
            py.seconds,
            py.seconds / best.seconds,
            peak / 1024.0,
            py.max_rss_kib / 1024.0
        );
        // Written after each case: a long run that stops keeps what it measured.
        let report = dir.join("report.md");
        let text = format!(
            "# cargo xtask bench score\n\n\
             The whole process: `medcap score --bleu-impl sacrebleu --no-findings --format jsonl` \
             (sentence BLEU, ROUGE-1/2/L/Lsum, CIDEr-D, 1,000-resample bootstrap, per-caption \
             rows) against xtask/bench/score_reference.py (sacrebleu, rouge-score, pycocoevalcap, \
             numpy bootstrap; bert-score with the installed all-MiniLM-L6-v2 at layer 5 where \
             BERTScore is on), on pairs made from {} ({} captions). Peak memory: each process's \
             maximum resident set.\n\n{table}",
            options.captions.display(),
            captions.len()
        );
        std::fs::write(&report, text)
            .with_context(|| format!("cannot write {}", report.display()))?;
    }
    let report = dir.join("report.md");
    println!("{table}\nreport: {}", report.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_are_taken_from_the_users_directory_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let (cwd, root) = (dir.path().join("here"), dir.path().join("checkout"));
        std::fs::create_dir_all(&cwd).unwrap();
        std::fs::write(cwd.join("mine.txt"), "a\n").unwrap();
        let args = [
            "--captions".to_owned(),
            "mine.txt".to_owned(),
            "--quick".to_owned(),
        ];
        let options = options(&args, &cwd, &root).unwrap();
        assert_eq!(options.captions, cwd.join("mine.txt"));
        assert!(options.quick);
        // The default: the shared ROCO captions beside the checkout, absent here.
        let err = options_error(&[], &cwd, &root);
        assert!(
            err.contains("roco-test-radiology/captions.txt does not exist"),
            "{err}"
        );
        assert!(options_error(&["--sizes".to_owned()], &cwd, &root).contains("unknown option"));
    }

    fn options_error(args: &[String], cwd: &Path, root: &Path) -> String {
        match options(args, cwd, root) {
            Ok(_) => panic!("accepted {args:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn sets_pair_caption_i_with_caption_7i_plus_k_plus_1() {
        let dir = tempfile::tempdir().unwrap();
        let captions: Vec<String> = (0..11).map(|i| format!("c{i}")).collect();
        let (hyps, refs) = write_set(dir.path(), &captions, 13, 2).unwrap();
        let lines = |p: &Path| -> Vec<String> {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        };
        let (h, r0, r1) = (lines(&hyps), lines(&refs[0]), lines(&refs[1]));
        assert_eq!(h.len(), 13);
        assert_eq!(
            (h[12].as_str(), r0[12].as_str(), r1[12].as_str()),
            ("c1", "c8", "c9")
        );
    }
}
