//! The metrics by name: [`Metric`] is the one list of what medcap scores,
//! with the key each has in files (`rougeL`, as rouge-score names it;
//! `bert_f1`; `cider_d`) and its heading in tables (`ROUGE-L`), so that no
//! crate spells a metric's name twice.
//!
//! ```
//! use medcap_metrics::metric::Metric;
//!
//! let metric: Metric = "rougeL".parse()?;
//! assert_eq!(metric, Metric::RougeL);
//! assert_eq!(metric.heading(), "ROUGE-L");
//! assert_eq!(serde_json::to_string(&Metric::BertF1)?, "\"bert_f1\"");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A caption metric. The order of the variants is the order of the columns
/// of Table 1 ([`Metric::TABLE_ORDER`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Sentence BLEU in the convention scored with.
    Bleu,
    /// BERTScore F1.
    BertF1,
    /// BERTScore precision.
    BertP,
    /// BERTScore recall.
    BertR,
    /// ROUGE-1 F-measure.
    Rouge1,
    /// ROUGE-2 F-measure.
    Rouge2,
    /// ROUGE-L F-measure.
    RougeL,
    /// ROUGE-Lsum F-measure.
    RougeLsum,
    /// CIDEr-D (pycocoevalcap's, within the scored set).
    CiderD,
    /// Findings F1 against the best-matching reference caption
    /// ([`crate::findings::scores`]).
    FindingsF1,
    /// Findings F1 against a figure's true findings (synthetic data, whose
    /// truth is known).
    TruthFindingsF1,
    /// CLIPScore of the caption against its image
    /// ([`crate::clipscore`]; PAC-S or torchmetrics' form when so scored).
    ClipScore,
    /// RefCLIPScore: the harmonic mean of CLIPScore and the best
    /// caption–reference cosine.
    RefClipScore,
}

/// A metric name that medcap does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metric `{0}`; known: {known}", known = Metric::ALL.map(Metric::key).join(", "))]
pub struct UnknownMetric(pub String);

impl Metric {
    /// Every metric, in Table 1's column order.
    pub const ALL: [Metric; 13] = [
        Metric::Bleu,
        Metric::BertF1,
        Metric::BertP,
        Metric::BertR,
        Metric::Rouge1,
        Metric::Rouge2,
        Metric::RougeL,
        Metric::RougeLsum,
        Metric::CiderD,
        Metric::FindingsF1,
        Metric::TruthFindingsF1,
        Metric::ClipScore,
        Metric::RefClipScore,
    ];

    /// Table 1's columns, in order: the study's five (BLEU, BERT-F1,
    /// ROUGE-1, ROUGE-2, ROUGE-L), then the rest. A table shows those its
    /// systems have values of.
    pub const TABLE_ORDER: [Metric; 11] = [
        Metric::Bleu,
        Metric::BertF1,
        Metric::Rouge1,
        Metric::Rouge2,
        Metric::RougeL,
        Metric::RougeLsum,
        Metric::CiderD,
        Metric::FindingsF1,
        Metric::TruthFindingsF1,
        Metric::ClipScore,
        Metric::RefClipScore,
    ];

    /// The key in files and JSON (`bleu`, `rouge1`, `rougeL`, `bert_f1`,
    /// `cider_d`, `findings_f1`, `truth_findings_f1`).
    pub const fn key(self) -> &'static str {
        match self {
            Metric::Bleu => "bleu",
            Metric::BertF1 => "bert_f1",
            Metric::BertP => "bert_p",
            Metric::BertR => "bert_r",
            Metric::Rouge1 => "rouge1",
            Metric::Rouge2 => "rouge2",
            Metric::RougeL => "rougeL",
            Metric::RougeLsum => "rougeLsum",
            Metric::CiderD => "cider_d",
            Metric::FindingsF1 => "findings_f1",
            Metric::TruthFindingsF1 => "truth_findings_f1",
            Metric::ClipScore => "clip_s",
            Metric::RefClipScore => "ref_clip_s",
        }
    }

    /// The heading in tables (`BLEU`, `BERT-F1`, `ROUGE-L`, `CIDEr-D`).
    pub const fn heading(self) -> &'static str {
        match self {
            Metric::Bleu => "BLEU",
            Metric::BertF1 => "BERT-F1",
            Metric::BertP => "BERT-P",
            Metric::BertR => "BERT-R",
            Metric::Rouge1 => "ROUGE-1",
            Metric::Rouge2 => "ROUGE-2",
            Metric::RougeL => "ROUGE-L",
            Metric::RougeLsum => "ROUGE-Lsum",
            Metric::CiderD => "CIDEr-D",
            Metric::FindingsF1 => "Findings F1",
            Metric::TruthFindingsF1 => "Findings F1 vs truth",
            Metric::ClipScore => "CLIP-S",
            Metric::RefClipScore => "RefCLIP-S",
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

impl std::str::FromStr for Metric {
    type Err = UnknownMetric;

    /// A metric by its [`Metric::key`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Metric::ALL
            .into_iter()
            .find(|m| m.key() == s)
            .ok_or_else(|| UnknownMetric(s.to_owned()))
    }
}

impl Serialize for Metric {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.key())
    }
}

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let key = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        key.parse().map_err(serde::de::Error::custom)
    }
}

/// JSON has no NaN: serde_json writes an undefined score (BLEU of an empty
/// caption, BERTScore's side with no weight) as `null`; reading it back
/// gives NaN again.
pub(crate) fn nan_if_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// [`nan_if_null`] for an optional score: absent is `None`, `null` is
/// `Some(NaN)`.
pub(crate) fn some_nan_if_null<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<f64>, D::Error> {
    nan_if_null(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_key_parses_back_and_keys_and_headings_are_distinct() {
        let mut keys = std::collections::BTreeSet::new();
        let mut headings = std::collections::BTreeSet::new();
        for m in Metric::ALL {
            assert_eq!(m.key().parse::<Metric>().unwrap(), m);
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<Metric>(&json).unwrap(), m);
            assert!(keys.insert(m.key()) && headings.insert(m.heading()));
        }
        let err = "rouge_l".parse::<Metric>().unwrap_err().to_string();
        assert!(err.contains("rouge_l") && err.contains("rougeL"), "{err}");
    }

    #[test]
    fn the_table_order_starts_with_the_studys_five_and_follows_the_variant_order() {
        let five: Vec<&str> = Metric::TABLE_ORDER[..5]
            .iter()
            .map(|m| m.heading())
            .collect();
        assert_eq!(five, ["BLEU", "BERT-F1", "ROUGE-1", "ROUGE-2", "ROUGE-L"]);
        assert!(Metric::TABLE_ORDER.windows(2).all(|w| w[0] < w[1]));
    }
}
