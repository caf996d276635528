//! A generator of synthetic MedICaT-format data sets.
//!
//! It writes the release layout (`release/figures/{pdf_hash}_{fig_uri}` and
//! the figure JSONL with MedICaT's schema), schematic chest radiographs with
//! findings drawn in, captions with MedICaT-style noise, a share of non-chest
//! figures for the filter to remove, and the true content of every figure in
//! `release/synthetic_truth.jsonl`. Output is a pure function of the seed and
//! the figure count, whatever the thread count.
//!
//! It is medcap's embedded default data set (no real data can be downloaded
//! on the machines it is built on) and its test data.

mod canvas;
mod captions;
mod draw;
mod findings;

use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use findings::{Amount, Device, FigureKind, Finding, Side, Zone};

use crate::error::DatasetError;
use crate::layout;
use crate::output::{write_atomic, write_json_atomic};
use medcap_rng::SplitMix64;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SynthConfig {
    /// Number of figures.
    pub figures: usize,
    /// Seed: the same seed and count give byte-identical output.
    pub seed: u64,
    /// Fraction of figures that are not chest radiographs.
    pub non_chest_share: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            figures: 1_000,
            seed: 0,
            non_chest_share: 0.2,
        }
    }
}

/// The ground truth of one synthetic figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthRecord {
    /// `{pdf_hash}_{fig_uri}`.
    pub id: String,
    /// What the figure is.
    pub kind: FigureKind,
    /// Findings drawn into it (chest radiographs only).
    pub findings: Vec<Finding>,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthSummary {
    /// The configuration.
    pub config: SynthConfig,
    /// Figures written.
    pub figures: usize,
    /// Chest radiographs among them.
    pub chest_radiographs: usize,
    /// Papers (distinct `pdf_hash`).
    pub papers: usize,
    /// Where the release directory is (in `synth.json`: `release`, relative
    /// to the manifest).
    pub release_dir: PathBuf,
}

/// The manifest file that marks a directory as made by this generator.
pub const MANIFEST: &str = "synth.json";
/// The ground-truth side file, inside the release directory.
pub const TRUTH_FILE: &str = "synthetic_truth.jsonl";

struct FigurePlan {
    pdf_hash: String,
    fig_number: usize,
    page: usize,
}

fn hex_hash(rng: &mut SplitMix64) -> String {
    format!(
        "{:016x}{:016x}{:08x}",
        rng.next_u64(),
        rng.next_u64(),
        rng.next_u64() as u32
    )
}

/// Papers of 1 to 4 figures each, in order.
fn plan_papers(config: &SynthConfig) -> Vec<FigurePlan> {
    let mut rng = SplitMix64::new(config.seed ^ 0x5EED_0F9A_9E55);
    let mut plans = Vec::with_capacity(config.figures);
    while plans.len() < config.figures {
        let pdf_hash = hex_hash(&mut rng);
        let figures = 1 + rng.below(4);
        let mut page = 1 + rng.below(3);
        for fig_number in 1..=figures.min(config.figures - plans.len()) {
            plans.push(FigurePlan {
                pdf_hash: pdf_hash.clone(),
                fig_number,
                page,
            });
            page += rng.below(2);
        }
    }
    plans
}

/// One figure: its JSONL record, its truth, and its picture.
struct SynthFigure {
    record: serde_json::Value,
    truth: TruthRecord,
    image: Option<image::DynamicImage>,
}

/// Builds figure `index`. The picture is drawn last, from the same random
/// stream, so a metadata-only run gives the same records.
fn make_figure(
    config: &SynthConfig,
    index: usize,
    plan: &FigurePlan,
    with_image: bool,
) -> SynthFigure {
    let mut rng = SplitMix64::for_item(config.seed, index as u64);
    let kind = if rng.chance(config.non_chest_share) {
        *rng.pick(&[
            FigureKind::BrainMri,
            FigureKind::KneeRadiograph,
            FigureKind::Histology,
        ])
    } else {
        FigureKind::ChestRadiograph
    };
    let findings = if kind == FigureKind::ChestRadiograph {
        findings::sample_findings(&mut rng)
    } else {
        Vec::new()
    };
    let caption = captions::caption(kind, &findings, plan.fig_number, &mut rng);
    let fig_key = format!("Figure{}", plan.fig_number);
    let fig_uri = format!("{}-{fig_key}-1.png", plan.page);
    let id = format!("{}_{fig_uri}", plan.pdf_hash);

    let mut record = json!({
        "pdf_hash": plan.pdf_hash,
        "fig_key": fig_key,
        "fig_uri": fig_uri,
        "s2_caption": caption,
        "radiology": kind != FigureKind::Histology,
        "scope": false,
        "predicted_type": "Medical images",
        "oa_info": {
            "doi": format!("10.5555/synth.{}", &plan.pdf_hash[..8]),
            "doi_url": format!("https://doi.org/10.5555/synth.{}", &plan.pdf_hash[..8]),
            "oa": {
                "is_oa": true,
                "oa_status": rng.pick(&["gold", "bronze", "hybrid", "green"]),
                "journal_is_oa": rng.chance(0.6),
                "journal_is_in_doaj": rng.chance(0.5),
                "license": rng.pick(&[json!("cc-by"), json!("cc-by-nc"), json!("cc-by-nc-nd"), json!(null)]),
                "provenance": "unpaywall",
            },
        },
    });
    // The optional fields vary as in the release: usually a copy of the S2
    // caption, sometimes null or absent, and rarely the only caption.
    if let Some(obj) = record.as_object_mut() {
        match rng.below(20) {
            0 => {
                obj.insert("s2orc_caption".into(), json!(null));
            }
            1 => {}
            2 => {
                obj.insert("s2orc_caption".into(), json!(caption));
                obj.remove("s2_caption");
            }
            _ => {
                obj.insert("s2orc_caption".into(), json!(caption));
            }
        }
        if rng.chance(0.7) {
            let reference = format!("The findings are shown in ( Figure {} ) .", plan.fig_number);
            obj.insert("s2orc_references".into(), json!([reference]));
        } else {
            obj.insert("s2orc_references".into(), json!(null));
        }
    }
    let image = with_image.then(|| draw::render(kind, &findings, &mut rng));
    SynthFigure {
        record,
        truth: TruthRecord { id, kind, findings },
        image,
    }
}

/// Present in a data set's directory while it is being generated.
const GENERATING: &str = ".generating";

/// Generates a synthetic data set in `out` (the directory that will hold
/// `release/`). When `out` already holds a data set generated with the same
/// configuration it is kept as is; a directory with anything else in it is
/// refused rather than overwritten.
pub fn generate(out: &Path, config: &SynthConfig) -> Result<SynthSummary, DatasetError> {
    let manifest_path = out.join(MANIFEST);
    if let Ok(text) = std::fs::read_to_string(&manifest_path)
        && let Ok(previous) = serde_json::from_str::<SynthSummary>(&text)
    {
        if previous.config == *config
            && out
                .join(layout::RELEASE_DIR)
                .join(layout::JSONL_NAME)
                .is_file()
        {
            tracing::info!(dir = %out.display(), "synthetic data set already generated with this configuration");
            return Ok(SynthSummary {
                release_dir: crate::paths::resolve(&previous.release_dir, out),
                ..previous
            });
        }
        // Our own earlier data set with another configuration: replace it
        // whole, so that no figure of the old one lingers.
        let old = out.join(layout::RELEASE_DIR);
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(DatasetError::io(&old))?;
        }
    } else if out.join(GENERATING).is_file() {
        // Our own generation, interrupted before its manifest: start over.
        let old = out.join(layout::RELEASE_DIR);
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(DatasetError::io(&old))?;
        }
    } else if std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(DatasetError::OutputNotEmpty {
            path: out.to_owned(),
        });
    }
    std::fs::create_dir_all(out).map_err(DatasetError::io(out))?;
    // Says "a generation is under way here" until the manifest says it is
    // complete, so that a rerun after a kill knows the half-written release
    // is its own to replace.
    write_atomic(&out.join(GENERATING), |_| Ok(()))?;

    let release = out.join(layout::RELEASE_DIR);
    let figures_dir = release.join(layout::FIGURES_DIR);
    std::fs::create_dir_all(&figures_dir).map_err(DatasetError::io(&figures_dir))?;
    let plans = plan_papers(config);
    tracing::info!(
        figures = config.figures,
        seed = config.seed,
        "generating synthetic MedICaT data set"
    );

    let lines: Vec<(String, String, bool)> = plans
        .par_iter()
        .enumerate()
        .map(|(i, plan)| {
            let figure = make_figure(config, i, plan, true);
            let path = figures_dir.join(&figure.truth.id);
            if let Some(image) = &figure.image {
                image
                    .save_with_format(&path, image::ImageFormat::Png)
                    .map_err(|source| DatasetError::Encode {
                        path: path.clone(),
                        source,
                    })?;
            }
            let truth =
                serde_json::to_string(&figure.truth).map_err(|source| DatasetError::Json {
                    path: path.clone(),
                    source,
                })?;
            Ok((
                figure.record.to_string(),
                truth,
                figure.truth.kind == FigureKind::ChestRadiograph,
            ))
        })
        .collect::<Result<_, DatasetError>>()?;

    let write_lines = |path: &Path, pick: fn(&(String, String, bool)) -> &String| {
        write_atomic(path, |w| {
            for line in &lines {
                writeln!(w, "{}", pick(line)).map_err(DatasetError::io(path))?;
            }
            Ok(())
        })
    };
    write_lines(&release.join(TRUTH_FILE), |l| &l.1)?;
    write_lines(&release.join(layout::JSONL_NAME), |l| &l.0)?;

    let mut papers: Vec<&str> = plans.iter().map(|p| p.pdf_hash.as_str()).collect();
    papers.dedup();
    let summary = SynthSummary {
        config: *config,
        figures: lines.len(),
        chest_radiographs: lines.iter().filter(|l| l.2).count(),
        papers: papers.len(),
        release_dir: release,
    };
    // Written last: its presence means the data set is complete. The
    // release directory is stored relative to the manifest (crate::paths).
    let stored = SynthSummary {
        release_dir: PathBuf::from(layout::RELEASE_DIR),
        ..summary.clone()
    };
    write_json_atomic(&manifest_path, &stored)?;
    std::fs::remove_file(out.join(GENERATING)).map_err(DatasetError::io(out.join(GENERATING)))?;
    Ok(summary)
}

/// Writes only the figure JSONL of a synthetic data set, without drawing
/// any picture: MedICaT-sized metadata for benchmarks, in seconds.
pub fn write_jsonl_only(path: &Path, config: &SynthConfig) -> Result<(), DatasetError> {
    let plans = plan_papers(config);
    let lines: Vec<String> = plans
        .par_iter()
        .enumerate()
        .map(|(i, plan)| make_figure(config, i, plan, false).record.to_string())
        .collect();
    write_atomic(path, |w| {
        for line in &lines {
            writeln!(w, "{line}").map_err(DatasetError::io(path))?;
        }
        Ok(())
    })
}

/// The truth and the raw caption (`s2_caption`, else `s2orc_caption`; `None`
/// for a figure that has neither) of every figure of a synthetic data set,
/// without drawing or writing anything: what a labeller is checked against.
pub fn truth_and_captions(config: &SynthConfig) -> Vec<(TruthRecord, Option<String>)> {
    let plans = plan_papers(config);
    plans
        .par_iter()
        .enumerate()
        .map(|(i, plan)| {
            let figure = make_figure(config, i, plan, false);
            let caption = ["s2_caption", "s2orc_caption"]
                .iter()
                .find_map(|k| figure.record.get(k).and_then(|v| v.as_str()))
                .map(str::to_owned);
            (figure.truth, caption)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_deterministic_per_index() {
        let config = SynthConfig {
            figures: 8,
            seed: 11,
            non_chest_share: 0.3,
        };
        let plans = plan_papers(&config);
        assert_eq!(plans.len(), 8);
        let a = make_figure(&config, 5, &plans[5], true);
        let b = make_figure(&config, 5, &plans[5], true);
        assert_eq!(a.record, b.record);
        assert_eq!(a.image, b.image);
        assert!(a.image.is_some());
        let metadata_only = make_figure(&config, 5, &plans[5], false);
        assert_eq!(metadata_only.record, a.record);
    }

    #[test]
    fn papers_hold_one_to_four_figures_with_distinct_keys() {
        let plans = plan_papers(&SynthConfig {
            figures: 500,
            seed: 1,
            non_chest_share: 0.2,
        });
        let mut ids: Vec<String> = plans
            .iter()
            .map(|p| format!("{}_{}-Figure{}", p.pdf_hash, p.page, p.fig_number))
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 500);
        assert!(plans.iter().all(|p| (1..=4).contains(&p.fig_number)));
        assert!(plans.iter().all(|p| p.pdf_hash.len() == 40));
    }
}
