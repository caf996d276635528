//! Loading `medcap score`'s models, the libtorch half of the command,
//! compiled into `medcap-torch` only: BERTScore's encoder and baseline, and
//! the model components of the ImageCLEF suites (BERTScore, BLEURT,
//! AlignScore), and CLIPScore's image-text encoder.

use std::path::Path;

use anyhow::{Context, Result};
use medcap_metrics::alignscore::AlignmentModel;
use medcap_metrics::bertscore::{Baseline, TokenEmbedder};
use medcap_metrics::clipscore::{ClipScoreForm, ClipScoreSettings, ImageCaptionScorer};
use medcap_metrics::imageclef::PairScorer;
use medcap_metrics::punkt::{Punkt, PunktParameters};
use medcap_model::alignscore::AlignScoreModel;
use medcap_model::bertscore::BertScorer;
use medcap_model::bleurt::Bleurt;
use medcap_model::device::DeviceChoice;
use medcap_model::image_text::{ClipScorer, load_encoder};

use crate::imageclef::SuiteModels;
use crate::score::ScoreArgs;

/// The BERTScore encoder and baseline the arguments ask for (none without
/// references: CLIPScore alone).
pub fn bertscore_encoder(args: &ScoreArgs) -> Result<Option<(BertScorer, Option<Baseline>)>> {
    if args.no_bertscore || args.clip_only() {
        return Ok(None);
    }
    let device: DeviceChoice = args.device.parse()?;
    let (scorer, choice) = BertScorer::choose(
        args.bertscore_model.as_deref(),
        args.bertscore_model_type.as_deref(),
        args.bertscore_layer,
        device.resolve()?,
    )
    .context("cannot load BERTScore's model; or pass --no-bertscore to score without it")?;
    let baseline = Baseline::for_model(
        &choice,
        args.bertscore_baseline.as_deref(),
        args.bertscore_rescale,
    )?;
    Ok(Some((scorer, baseline)))
}

/// CLIPScore's scorer with the encoder of `--clip-model`, when given.
pub fn clip_scorer(args: &ScoreArgs) -> Result<Option<ClipScorer>> {
    let Some(dir) = args.clip_model.as_deref() else {
        return Ok(None);
    };
    let device: DeviceChoice = args.device.parse()?;
    let encoder = load_encoder(dir, device.resolve()?)
        .with_context(|| format!("cannot load the image-text encoder {}", dir.display()))?;
    Ok(Some(ClipScorer::new(
        encoder,
        args.clip_settings(),
        args.clip_batch_size as usize,
    )))
}

/// The model components of `--suite imageclef-YYYY` the arguments name,
/// each with its label for the signature.
#[derive(Default)]
pub struct SuiteModelsLoaded {
    bert: Option<(BertScorer, String)>,
    bleurt: Option<(Bleurt, String)>,
    align: Option<(AlignScoreModel, Punkt, String)>,
    similarity: Option<(ClipScorer, std::path::PathBuf)>,
}

impl SuiteModelsLoaded {
    /// The components as `medcap score --suite` takes them.
    pub fn as_models(&self) -> SuiteModels<'_> {
        SuiteModels {
            bert: self
                .bert
                .as_ref()
                .map(|(m, label)| (m as &dyn TokenEmbedder, label.clone())),
            bleurt: self
                .bleurt
                .as_ref()
                .map(|(m, label)| (m as &dyn PairScorer, label.clone())),
            align: self
                .align
                .as_ref()
                .map(|(m, punkt, label)| (m as &dyn AlignmentModel, punkt, label.clone())),
            similarity: self
                .similarity
                .as_ref()
                .map(|(s, dir)| (s as &dyn ImageCaptionScorer, dir.as_path())),
        }
    }
}

/// Where nltk looks for its data: `punkt_tab/english` in the first of
/// $NLTK_DATA's entries, ~/nltk_data and the system directories that has it.
fn default_punkt_dir() -> Option<std::path::PathBuf> {
    let mut roots: Vec<std::path::PathBuf> = std::env::var_os("NLTK_DATA")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        roots.push(Path::new(&home).join("nltk_data"));
    }
    for system in [
        "/usr/share/nltk_data",
        "/usr/local/share/nltk_data",
        "/usr/lib/nltk_data",
        "/usr/local/lib/nltk_data",
    ] {
        roots.push(system.into());
    }
    roots
        .into_iter()
        .map(|r| r.join("tokenizers/punkt_tab/english"))
        .find(|d| d.join("abbrev_types.txt").is_file())
}

/// A directory's own name, for a signature (`deberta-xlarge-mnli/` gives
/// `deberta-xlarge-mnli`).
fn dir_name(dir: &Path) -> String {
    dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Loads the suite's model components the arguments give: BERTScore's
/// encoder from `--bertscore-model` at `--bertscore-layer` (default: the
/// official layer 40), BLEURT from `--bleurt-model`; a component without
/// its model is reported missing.
pub fn suite_models(args: &ScoreArgs) -> Result<SuiteModelsLoaded> {
    crate::score::check_suite_bertscore(args)?;
    let mut loaded = SuiteModelsLoaded::default();
    if !args.suite_needs_models() {
        return Ok(loaded);
    }
    let device: DeviceChoice = args.device.parse()?;
    let device = device.resolve()?;
    if let Some(dir) = args.bertscore_model.as_deref() {
        let layer = args
            .bertscore_layer
            .unwrap_or(medcap_metrics::imageclef::BERTSCORE_LAYER);
        let scorer = BertScorer::from_dir(dir, layer, device)
            .with_context(|| format!("cannot load the BERTScore model {}", dir.display()))?;
        loaded.bert = Some((scorer, format!("{}:L{layer}", dir_name(dir))));
    }
    if let Some(dir) = args.imageclef.bleurt_model.as_deref() {
        let bleurt = Bleurt::from_dir(dir, device)
            .with_context(|| format!("cannot load the BLEURT model {}", dir.display()))?;
        loaded.bleurt = Some((bleurt, dir_name(dir)));
    }
    if let Some(dir) = args.imageclef.alignscore_model.as_deref() {
        let punkt_dir = match &args.imageclef.punkt {
            Some(p) => p.clone(),
            None => default_punkt_dir().context(
                "AlignScore splits sentences with nltk's Punkt: give --punkt DIR, nltk's \
                 punkt_tab/english directory (python -c \"import nltk; \
                 nltk.download('punkt_tab')\" puts it in ~/nltk_data/tokenizers/punkt_tab/english)",
            )?,
        };
        let params = PunktParameters::from_dir(&punkt_dir)?;
        let model = AlignScoreModel::from_dir(dir, device)
            .with_context(|| format!("cannot load the AlignScore model {}", dir.display()))?;
        loaded.align = Some((model, Punkt::new(params), dir_name(dir)));
    }
    if let Some(dir) = args.clip_model.as_deref() {
        if !args.imageclef.similarity_embeddings.is_empty() {
            anyhow::bail!(
                "--clip-model and --similarity-embeddings both give the Similarity component: \
                 choose one"
            );
        }
        let images = args.images.as_deref().filter(|p| p.is_dir()).context(
            "--clip-model with --suite computes Similarity from the test images: give \
                 --images DIR, the directory of the images named by their ids (ID.jpg)",
        )?;
        let encoder = load_encoder(dir, device)
            .with_context(|| format!("cannot load the image-text encoder {}", dir.display()))?;
        // The year's Similarity: 2.5 * max(cos, 0) of the raw candidate caption.
        let settings = ClipScoreSettings {
            prefix: String::new(),
            ..ClipScoreSettings::defaults(ClipScoreForm::Hessel)
        };
        loaded.similarity = Some((
            ClipScorer::new(encoder, settings, args.clip_batch_size as usize),
            images.to_owned(),
        ));
    }
    Ok(loaded)
}
