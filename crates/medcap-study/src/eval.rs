//! Evaluation: captions for the test figures from one model (same decoding
//! for every model) and their scores with every metric of medcap-metrics.

use std::collections::HashMap;
use std::path::Path;

use medcap_model::bertscore::BertScorer;

use medcap_metrics::caption_scores::{
    BertScoreSetup, Metrics, ScoredCaptions, score_captions_with_bertscore,
};
use medcap_model::ModelError;
use medcap_model::distributed::ProcessGroup;
use medcap_model::generation::GenerationConfig;
use medcap_model::pipeline::{Caption, Captioner};
use serde::{Deserialize, Serialize};
use tch::Device;

use medcap_dataset::split_csv::{SplitRow, read_split_csv};
use medcap_dataset::synth::TruthRecord;
use medcap_metrics::findings::Labels;
use medcap_metrics::findings::scores::FindingsOptions;

use crate::error::StudyError;
use crate::truth::{TruthScore, truth_findings};

/// One test figure with its reference and a model's caption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptionRow {
    /// Figure id.
    pub id: String,
    /// Image file (in `captions.jsonl`, relative to the file's directory,
    /// see `medcap_dataset::paths`).
    pub image_path: String,
    /// The cleaned reference caption.
    pub reference: String,
    /// The model's caption ("" when the image could not be read).
    pub caption: String,
}

/// Reads a split CSV through medcap-dataset's one reader (image paths
/// resolved against the CSV's directory).
pub fn read_split(path: &Path) -> Result<Vec<SplitRow>, StudyError> {
    Ok(read_split_csv(path)?)
}

/// Captions every test figure with the model in `model_dir`, in batches of
/// `batch`. With a process `group` (a study under `torchrun`) the ranks
/// share the batches and rank 0 returns every row; the others return none.
///
/// # Errors
/// The model cannot be loaded or a batch fails; a peer is lost.
pub fn caption_split(
    model_dir: &Path,
    test: &[SplitRow],
    decoding: &GenerationConfig,
    batch: usize,
    device: Device,
    group: Option<&ProcessGroup>,
) -> Result<Vec<CaptionRow>, StudyError> {
    let captioner = Captioner::from_dir(model_dir, device)?;
    let mut rows = Vec::with_capacity(test.len());
    let mut unreadable: Vec<String> = Vec::new();
    let paths: Vec<&Path> = test.iter().map(|r| Path::new(&r.image_path)).collect();
    let each_batch = |_: &[&Path], results: Vec<Result<Caption, ModelError>>| {
        // The batch's rows: those after the rows already captioned.
        let batch_rows = test.iter().skip(rows.len());
        for (row, result) in batch_rows.zip(results) {
            let caption = match result {
                Ok(caption) => caption.text,
                Err(e) => {
                    unreadable.push(format!("{}: {e}", row.id));
                    String::new()
                }
            };
            rows.push(CaptionRow {
                id: row.id.clone(),
                image_path: row.image_path.clone(),
                reference: row.caption.clone(),
                caption,
            });
        }
        Ok::<(), StudyError>(())
    };
    match group {
        Some(group) => {
            captioner.caption_files_sharded(group, &paths, None, decoding, batch, each_batch)?
        }
        None => captioner.caption_files(&paths, None, decoding, batch, each_batch)?,
    }
    // One warning for the set, not a line per figure.
    if let Some(first) = unreadable.first() {
        tracing::warn!(
            model = %model_dir.display(),
            unreadable = unreadable.len(),
            "test images unreadable, scored as empty captions: {first}{}",
            match unreadable.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            }
        );
    }
    Ok(rows)
}

/// Per-caption scores (BLEU in the study's convention, ROUGE, CIDEr-D,
/// BERTScore with `scorer`, findings). The report draws its own summaries
/// and intervals from the per-caption scores.
pub fn score_rows(rows: &[CaptionRow], scorer: &BertScorer) -> Result<ScoredCaptions, StudyError> {
    let metrics = Metrics::default();
    let hyps: Vec<&str> = rows.iter().map(|r| r.caption.as_str()).collect();
    let refs: Vec<Vec<&str>> = rows.iter().map(|r| vec![r.reference.as_str()]).collect();
    score_captions_with_bertscore(
        &hyps,
        &refs,
        &metrics,
        &BertScoreSetup {
            embedder: scorer,
            idf: false,
            baseline: None,
            batch_size: None,
        },
    )
    .map_err(StudyError::from)
}

/// Each caption (its `labels` from scoring) against its figure's true
/// findings (positive labels only, with the sides the caption gives; `None`
/// for a figure the truth file does not have).
pub fn truth_scores(
    rows: &[CaptionRow],
    labels: &[Labels],
    truth: &HashMap<String, TruthRecord>,
) -> Vec<Option<TruthScore>> {
    let options = FindingsOptions {
        with_side: true,
        ..FindingsOptions::default()
    };
    rows.iter()
        .zip(labels)
        .map(|(row, labels)| {
            truth
                .get(&row.id)
                .map(|record| TruthScore::of(&options.findings(labels), &truth_findings(record)))
        })
        .collect()
}
