//! Table 1 in the study's layout, the one rendering for every output that
//! shows it (`medcap score --format table`, the study's `table1.md` and
//! `table1.csv`): one row per system, the columns in [`Metric::TABLE_ORDER`]
//! (BLEU, BERT-F1, ROUGE-1, ROUGE-2, ROUGE-L, then the rest), each cell a
//! mean, its sample s.d. and its 95% bootstrap interval.
//!
//! ```
//! use std::collections::BTreeMap;
//! use medcap_metrics::{metric::Metric, stats::{Bootstrap, summarize}, table1::Table1};
//!
//! let bootstrap = Bootstrap::default();
//! let blip = BTreeMap::from([(Metric::Bleu, summarize(&[0.1, 0.3], &bootstrap))]);
//! let ft2 = BTreeMap::from([(Metric::Bleu, summarize(&[0.4, 0.6], &bootstrap))]);
//! let table = Table1::new(&Metric::TABLE_ORDER, vec![("BLIP".into(), blip), ("FT-2".into(), ft2)]);
//! assert!(table.to_markdown().starts_with("| Model | BLEU Avg. | BLEU S.d. |"));
//! assert!(table.to_markdown().contains("| FT-2 | 0.500 | 0.141 |"));
//! ```

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::metric::Metric;
use crate::stats::{PairedComparison, Summary};

/// A Table 1: systems by metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Table1 {
    /// The columns, in [`Metric::TABLE_ORDER`].
    pub metrics: Vec<Metric>,
    /// Each system's name and summaries, in row order.
    pub rows: Vec<(String, BTreeMap<Metric, Summary>)>,
}

/// Width of the system column and of a metric column in plain text.
const NAME_WIDTH: usize = 12;
const CELL_WIDTH: usize = 22;

/// `v` with three significant digits, as the study prints its table
/// (`0.165`, `0.0270`); zero and non-finite values as they are.
pub fn three_significant(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    format!("{v:.digits$}")
}

impl Table1 {
    /// The table of `systems` over the metrics of `columns` that at least
    /// one system has a summary of, in [`Metric::TABLE_ORDER`] (a metric
    /// outside that order, such as BERTScore's precision, is not a column).
    pub fn new(columns: &[Metric], systems: Vec<(String, BTreeMap<Metric, Summary>)>) -> Self {
        let metrics = Metric::TABLE_ORDER
            .into_iter()
            .filter(|m| columns.contains(m))
            .filter(|m| systems.iter().any(|(_, s)| s.contains_key(m)))
            .collect();
        Self {
            metrics,
            rows: systems,
        }
    }

    /// The summary of `metric` for `system`.
    pub fn cell(&self, system: &str, metric: Metric) -> Option<&Summary> {
        self.rows
            .iter()
            .find(|(name, _)| name == system)
            .and_then(|(_, s)| s.get(&metric))
    }

    /// Markdown, as the study prints Table 1: mean and s.d. per metric with
    /// three significant digits, then a second table of the intervals.
    pub fn to_markdown(&self) -> String {
        let mut md = String::from("| Model |");
        for m in &self.metrics {
            let _ = write!(
                md,
                " {heading} Avg. | {heading} S.d. |",
                heading = m.heading()
            );
        }
        md.push_str("\n|---|");
        md.push_str(&"---:|---:|".repeat(self.metrics.len()));
        md.push('\n');
        self.markdown_rows(&mut md, " - | - |", |s| {
            format!(
                " {} | {} |",
                three_significant(s.mean),
                three_significant(s.sd)
            )
        });
        md.push_str("\n95% bootstrap confidence intervals of the means:\n\n| Model |");
        for m in &self.metrics {
            let _ = write!(md, " {} |", m.heading());
        }
        md.push_str("\n|---|");
        md.push_str(&"---|".repeat(self.metrics.len()));
        md.push('\n');
        self.markdown_rows(&mut md, " - |", |s| {
            format!(
                " [{}, {}] |",
                three_significant(s.ci95.0),
                three_significant(s.ci95.1)
            )
        });
        md
    }

    /// One Markdown row per system: `cell` of each summary, `missing` where
    /// the system has none.
    fn markdown_rows(&self, md: &mut String, missing: &str, cell: impl Fn(&Summary) -> String) {
        for (name, summaries) in &self.rows {
            let _ = write!(md, "| {name} |");
            for m in &self.metrics {
                match summaries.get(m) {
                    Some(s) => md.push_str(&cell(s)),
                    None => md.push_str(missing),
                }
            }
            md.push('\n');
        }
    }

    /// CSV: one row per system, mean, s.d. and interval per metric (full
    /// precision), columns `<key>_mean,<key>_sd,<key>_ci95_low,<key>_ci95_high`.
    pub fn to_csv(&self) -> String {
        let mut csv = String::from("model");
        for m in &self.metrics {
            let _ = write!(csv, ",{m}_mean,{m}_sd,{m}_ci95_low,{m}_ci95_high");
        }
        csv.push('\n');
        for (name, summaries) in &self.rows {
            csv.push_str(name);
            for m in &self.metrics {
                match summaries.get(m) {
                    Some(s) => {
                        let _ = write!(csv, ",{},{},{},{}", s.mean, s.sd, s.ci95.0, s.ci95.1);
                    }
                    None => csv.push_str(",,,,"),
                }
            }
            csv.push('\n');
        }
        csv
    }

    /// Plain text for a terminal: per system a row of `mean (s.d.)` and a
    /// row of intervals, in fixed-width columns; `difference` adds a row of
    /// paired differences (`+0.0123 p=0.004`) under the label given.
    pub fn to_text(
        &self,
        difference: Option<(&str, &BTreeMap<Metric, PairedComparison>)>,
    ) -> String {
        let mut out = format!("{:<NAME_WIDTH$}", "system");
        for m in &self.metrics {
            let _ = write!(out, "{:>CELL_WIDTH$}", m.heading());
        }
        out.push('\n');
        let cells = |out: &mut String,
                     summaries: &BTreeMap<Metric, Summary>,
                     cell: fn(&Summary) -> String| {
            for m in &self.metrics {
                let text = summaries.get(m).map_or_else(|| "-".to_owned(), cell);
                let _ = write!(out, "{text:>CELL_WIDTH$}");
            }
        };
        for (name, summaries) in &self.rows {
            let _ = write!(out, "{name:<NAME_WIDTH$}");
            cells(&mut out, summaries, |s| {
                format!("{:.6} ({:.6})", s.mean, s.sd)
            });
            let _ = write!(out, "\n{:<NAME_WIDTH$}", "  95% CI");
            cells(&mut out, summaries, |s| {
                format!("[{:.4}, {:.4}]", s.ci95.0, s.ci95.1)
            });
            out.push('\n');
        }
        if let Some((label, comparisons)) = difference {
            let _ = write!(out, "{label:<NAME_WIDTH$}");
            for m in &self.metrics {
                if let Some(c) = comparisons.get(m) {
                    let text = format!("{:+.4} p={:.3}", c.mean_difference, c.p_value);
                    let _ = write!(out, "{text:>CELL_WIDTH$}");
                }
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::stats::{Bootstrap, compare_paired, summarize};

    fn systems() -> Vec<(String, BTreeMap<Metric, Summary>)> {
        let b = Bootstrap::default();
        let a = BTreeMap::from([
            (Metric::RougeL, summarize(&[0.2, 0.4, 0.3], &b)),
            (Metric::Bleu, summarize(&[0.01, 0.02, 0.03], &b)),
            (Metric::BertP, summarize(&[0.5, 0.5, 0.5], &b)),
        ]);
        let c = BTreeMap::from([(Metric::Bleu, summarize(&[0.1, 0.2, 0.3], &b))]);
        vec![("A".into(), a), ("C".into(), c)]
    }

    #[test]
    fn columns_follow_table_1_and_missing_cells_are_marked() {
        let table = Table1::new(&Metric::ALL, systems());
        assert_eq!(
            table.metrics,
            [Metric::Bleu, Metric::RougeL],
            "BERT-P is no column"
        );
        let md = table.to_markdown();
        assert!(md.starts_with("| Model | BLEU Avg. | BLEU S.d. | ROUGE-L Avg. | ROUGE-L S.d. |\n|---|---:|---:|---:|---:|\n"), "{md}");
        assert!(
            md.contains("| A | 0.0200 | 0.0100 | 0.300 | 0.100 |"),
            "{md}"
        );
        assert!(md.contains("| C | 0.200 | 0.100 | - | - |"), "{md}");
        let csv = table.to_csv();
        assert!(
            csv.starts_with("model,bleu_mean,bleu_sd,bleu_ci95_low,bleu_ci95_high,rougeL_mean,"),
            "{csv}"
        );
        assert_eq!(csv.lines().nth(2).unwrap().split(',').count(), 9, "{csv}");
        let only_bleu = Table1::new(&[Metric::Bleu], systems());
        assert_eq!(only_bleu.metrics, [Metric::Bleu]);
    }

    #[test]
    fn plain_text_aligns_means_intervals_and_differences() {
        let b = Bootstrap::default();
        let table = Table1::new(&Metric::ALL, systems());
        let diff = BTreeMap::from([(
            Metric::Bleu,
            compare_paired(&[0.01, 0.02, 0.03], &[0.1, 0.2, 0.3], &b),
        )]);
        let text = table.to_text(Some(("B - A", &diff)));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert!(
            lines[0].starts_with("system") && lines[0].ends_with("ROUGE-L"),
            "{text}"
        );
        assert!(lines[1].contains("0.020000 (0.010000)"), "{text}");
        assert!(lines[2].starts_with("  95% CI"), "{text}");
        assert!(lines[3].ends_with("-"), "C has no ROUGE-L: {text}");
        assert!(
            lines[5].starts_with("B - A") && lines[5].contains("+0.1800 p="),
            "{text}"
        );
        assert_eq!(lines[0].len(), NAME_WIDTH + 2 * CELL_WIDTH);
    }

    #[test]
    fn three_significant_digits_as_the_study_prints() {
        assert_eq!(three_significant(0.16543), "0.165");
        assert_eq!(three_significant(0.027049), "0.0270");
        assert_eq!(three_significant(12.345), "12.3");
        assert_eq!(three_significant(0.0), "0");
    }
}
