//! `medcap label FILE`: the findings of each line of FILE in the CheXpert
//! labeller's output format (a `Reports` column, then the 14 observations
//! with 1.0, 0.0, -1.0 or blank), so reports labelled by medcap can be
//! compared with the CheXpert tools'. `--format jsonl` adds each mention's
//! side and zone.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use medcap_metrics::findings::{Labeller, Observation};

#[derive(Debug, Args)]
pub struct LabelArgs {
    /// A text file with one caption or report per line (`-` for standard input).
    file: PathBuf,
    /// Output: the CheXpert labeller's CSV, or JSON lines with the mentions.
    #[arg(long, value_enum, default_value_t = LabelFormat::Csv)]
    format: LabelFormat,
    /// A vocabulary directory laid out as medcap's `data/findings/` (default: the built-in one).
    #[arg(long, value_name = "DIR")]
    vocabulary: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LabelFormat {
    Csv,
    Jsonl,
}

pub fn run(args: &LabelArgs) -> Result<()> {
    let text = if args.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        let bytes = std::fs::read(&args.file)
            .with_context(|| format!("cannot read {}", args.file.display()))?;
        String::from_utf8(bytes).map_err(|e| {
            anyhow::anyhow!(
                "{}: not UTF-8 text (first bad byte at offset {})",
                args.file.display(),
                e.utf8_error().valid_up_to()
            )
        })?
    };
    let owned;
    let labeller = match &args.vocabulary {
        Some(dir) => {
            owned = Labeller::from_dir(dir)
                .with_context(|| format!("cannot use the vocabulary {}", dir.display()))?;
            &owned
        }
        None => Labeller::built_in(),
    };
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let labels = labeller.label_all(&lines);
    let mut out = medcap_cli::results_out::results_out();
    match args.format {
        LabelFormat::Csv => {
            let mut csv = csv::Writer::from_writer(&mut out);
            let mut header = vec!["Reports"];
            header.extend(Observation::ALL.iter().map(|o| o.name()));
            csv.write_record(&header)?;
            for (line, l) in lines.iter().zip(&labels) {
                let mut row = vec![*line];
                row.extend(l.chexpert_row());
                csv.write_record(&row)?;
            }
            csv.flush()?;
        }
        LabelFormat::Jsonl => {
            for (line, l) in lines.iter().zip(&labels) {
                let value = serde_json::json!({"text": line, "labels": l, "mentions": l.mentions});
                writeln!(out, "{value}")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
