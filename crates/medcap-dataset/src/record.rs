//! One MedICaT figure record, as the release JSONL stores it.
//!
//! Only the three key strings are required; every other field is optional and
//! unknown fields are ignored, because the full release has nulls and missing
//! keys that the ten-record sample does not show.

use serde::{Deserialize, Serialize};

/// A figure record from `s2_full_figures_oa_nonroco_combined_medical_top4_public.jsonl`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct FigureRecord {
    /// Semantic Scholar paper hash (40 hex characters); the image-name prefix.
    pub pdf_hash: String,
    /// The figure's label in the paper, such as `Figure4`.
    pub fig_key: String,
    /// The image-name suffix, such as `3-Figure4-1.png`.
    pub fig_uri: String,
    /// Caption from Semantic Scholar's figure extraction.
    #[serde(default)]
    pub s2_caption: Option<String>,
    /// The same caption from the S2ORC parse.
    #[serde(default)]
    pub s2orc_caption: Option<String>,
    /// Sentences of the paper that mention the figure.
    #[serde(default)]
    pub s2orc_references: Option<Vec<String>>,
    /// Classifier label: a radiology image.
    #[serde(default)]
    pub radiology: Option<bool>,
    /// Classifier label, probably "endoscopy image"; opaque.
    #[serde(default)]
    pub scope: Option<bool>,
    /// Top DocFigure class; a free string.
    #[serde(default)]
    pub predicted_type: Option<String>,
    /// Open-access metadata of the paper.
    #[serde(default)]
    pub oa_info: Option<OaInfo>,
}

/// Open-access metadata (`oa_info`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct OaInfo {
    /// The paper's DOI.
    #[serde(default)]
    pub doi: Option<String>,
    /// The DOI as a URL.
    #[serde(default)]
    pub doi_url: Option<String>,
    /// Unpaywall's record.
    #[serde(default)]
    pub oa: Option<OaStatus>,
}

/// Unpaywall's open-access record (`oa_info.oa`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct OaStatus {
    /// Whether the paper is open access.
    #[serde(default)]
    pub is_oa: Option<bool>,
    /// `gold`, `bronze`, `hybrid`, ...
    #[serde(default)]
    pub oa_status: Option<String>,
    /// Whether the journal is open access.
    #[serde(default)]
    pub journal_is_oa: Option<bool>,
    /// Whether the journal is in DOAJ.
    #[serde(default)]
    pub journal_is_in_doaj: Option<bool>,
    /// The article's license, such as `cc-by`; null for many bronze papers.
    #[serde(default)]
    pub license: Option<String>,
    /// Where the record came from (`unpaywall`).
    #[serde(default)]
    pub provenance: Option<String>,
}

impl FigureRecord {
    /// The figure's identifier and image file name: `{pdf_hash}_{fig_uri}`.
    pub fn id(&self) -> String {
        format!("{}_{}", self.pdf_hash, self.fig_uri)
    }

    /// The caption medcap uses: `s2_caption`, falling back to `s2orc_caption`
    /// when the former is missing or blank.
    pub fn caption(&self) -> Option<&str> {
        [&self.s2_caption, &self.s2orc_caption]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .find(|c| !c.trim().is_empty())
    }

    /// The article's license, if recorded.
    pub fn license(&self) -> Option<&str> {
        self.oa_info.as_ref()?.oa.as_ref()?.license.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_readme_record_and_ignores_unknown_fields() {
        let line = r#"{"pdf_hash": "57c9ad0f4aab133f96d40992c46926fabc901ffa", "fig_key": "Figure1",
            "fig_uri": "2-Figure1-1.png", "s2_caption": "Figure 1. (A) Barium enema.",
            "s2orc_caption": null, "s2orc_references": null, "radiology": false, "scope": true,
            "predicted_type": "Medical images", "new_field": [1, 2],
            "oa_info": {"doi": "10.14309/crj.2014.54", "oa": {"is_oa": true, "license": "cc-by-nc-nd"}}}"#;
        let record: FigureRecord = serde_json::from_str(line).unwrap();
        assert_eq!(
            record.id(),
            "57c9ad0f4aab133f96d40992c46926fabc901ffa_2-Figure1-1.png"
        );
        assert_eq!(record.caption(), Some("Figure 1. (A) Barium enema."));
        assert_eq!(record.license(), Some("cc-by-nc-nd"));
        assert_eq!(record.scope, Some(true));
    }

    #[test]
    fn caption_falls_back_to_s2orc_when_s2_is_missing_or_blank() {
        let mut record: FigureRecord = serde_json::from_str(
            r#"{"pdf_hash":"a","fig_key":"F","fig_uri":"u.png","s2orc_caption":"kept"}"#,
        )
        .unwrap();
        assert_eq!(record.caption(), Some("kept"));
        record.s2_caption = Some("  ".into());
        assert_eq!(record.caption(), Some("kept"));
        record.s2orc_caption = None;
        assert_eq!(record.caption(), None);
    }

    #[test]
    fn keys_are_required() {
        assert!(serde_json::from_str::<FigureRecord>(r#"{"pdf_hash":"a","fig_key":"F"}"#).is_err());
    }
}
