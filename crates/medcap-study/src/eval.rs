//! Evaluation: captions for the test figures from one model (same decoding
//! for every model) and their scores with every metric of medcap-metrics.

use std::path::{Path, PathBuf};

use medcap_metrics::bertscore::BertScorer;
use medcap_metrics::caption_scores::{
    BertScoreSetup, CaptionScores, Metrics, score_captions_with_bertscore,
};
use medcap_model::generate::GenerationConfig;
use medcap_model::pipeline::Captioner;
use medcap_model::preprocess::RgbImage;
use serde::{Deserialize, Serialize};
use tch::Device;

use crate::error::StudyError;

/// One test figure with its reference and a model's caption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptionRow {
    /// Figure id.
    pub id: String,
    /// Image file.
    pub image_path: String,
    /// The cleaned reference caption.
    pub reference: String,
    /// The model's caption ("" when the image could not be read).
    pub caption: String,
}

/// Reads the `id`, `image_path` and `caption` columns of a split CSV.
pub fn read_split(path: &Path) -> Result<Vec<(String, String, String)>, StudyError> {
    let err = |reason: String| StudyError::Stage {
        stage: "eval",
        reason: format!("{}: {reason}", path.display()),
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| err(e.to_string()))?;
    let mut rows = Vec::new();
    for record in reader.deserialize::<std::collections::HashMap<String, String>>() {
        let mut r = record.map_err(|e| err(e.to_string()))?;
        let get = |r: &mut std::collections::HashMap<String, String>, k: &str| {
            r.remove(k).ok_or_else(|| err(format!("no `{k}` column")))
        };
        rows.push((
            get(&mut r, "id")?,
            get(&mut r, "image_path")?,
            get(&mut r, "caption")?,
        ));
    }
    Ok(rows)
}

/// Captions every test figure with the model in `model_dir`.
pub fn caption_split(
    model_dir: &Path,
    test: &[(String, String, String)],
    decoding: &GenerationConfig,
    batch: usize,
    device: Device,
) -> Result<Vec<CaptionRow>, StudyError> {
    let captioner = Captioner::from_dir(model_dir, device)?;
    let mut rows = Vec::with_capacity(test.len());
    for chunk in test.chunks(batch.max(1)) {
        let mut images = Vec::new();
        let mut readable = Vec::new();
        for (id, path, _) in chunk {
            match RgbImage::open(Path::new(path)) {
                Ok(image) => {
                    images.push(image);
                    readable.push(true);
                }
                Err(e) => {
                    tracing::warn!(id, "test image unreadable, scored as an empty caption: {e}");
                    readable.push(false);
                }
            }
        }
        let mut captions = if images.is_empty() {
            Vec::new()
        } else {
            captioner.caption(&images, None, decoding)?
        }
        .into_iter();
        for ((id, path, reference), ok) in chunk.iter().zip(readable) {
            let caption = if ok {
                captions.next().map(|c| c.text).unwrap_or_default()
            } else {
                String::new()
            };
            rows.push(CaptionRow {
                id: id.clone(),
                image_path: path.clone(),
                reference: reference.clone(),
                caption,
            });
        }
    }
    Ok(rows)
}

/// Per-caption scores (BLEU in the study's convention, ROUGE, CIDEr-D,
/// BERTScore with `scorer`). The report draws its own summaries and
/// intervals, so the scorer's are not kept.
pub fn score_rows(
    rows: &[CaptionRow],
    scorer: &BertScorer,
) -> Result<Vec<CaptionScores>, StudyError> {
    let metrics = Metrics::default();
    let hyps: Vec<&str> = rows.iter().map(|r| r.caption.as_str()).collect();
    let refs: Vec<Vec<&str>> = rows.iter().map(|r| vec![r.reference.as_str()]).collect();
    let scored = score_captions_with_bertscore(
        &hyps,
        &refs,
        &metrics,
        &BertScoreSetup {
            embedder: scorer,
            idf: false,
            baseline: None,
        },
    )
    .map_err(|e| StudyError::Metrics(e.to_string()))?;
    Ok(scored.per_caption)
}

/// The BERTScore model: the configured one, else `MEDCAP_MINILM_DIR` (set by
/// `cargo xtask setup` in `.cargo/local.toml`).
pub fn bertscore_dir(configured: Option<&Path>) -> Result<PathBuf, StudyError> {
    if let Some(dir) = configured {
        return Ok(dir.to_owned());
    }
    std::env::var_os("MEDCAP_MINILM_DIR")
        .map(PathBuf::from)
        .ok_or_else(|| {
            StudyError::Config(
                "no BERTScore model: set bertscore_model or MEDCAP_MINILM_DIR (cargo xtask setup installs all-MiniLM-L6-v2)".into(),
            )
        })
}
