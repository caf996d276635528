//! Loading `medcap score`'s BERTScore encoder and baseline: the libtorch
//! half of the command, compiled into `medcap-torch` only.

use anyhow::{Context, Result};
use medcap_metrics::bertscore::Baseline;
use medcap_model::bertscore::BertScorer;
use medcap_model::device::DeviceChoice;

use crate::score::ScoreArgs;

/// The BERTScore encoder and baseline the arguments ask for.
pub fn bertscore_encoder(args: &ScoreArgs) -> Result<Option<(BertScorer, Option<Baseline>)>> {
    if args.no_bertscore {
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

/// The BERTScore encoder of `--suite imageclef-YYYY`: `--bertscore-model`
/// at `--bertscore-layer` (default: the official layer 40), or none when no
/// model is given (the component is then reported missing).
pub fn suite_encoder(args: &ScoreArgs) -> Result<Option<BertScorer>> {
    crate::score::check_suite_bertscore(args)?;
    let Some(dir) = args.bertscore_model.as_deref() else {
        return Ok(None);
    };
    let device: DeviceChoice = args.device.parse()?;
    let layer = args
        .bertscore_layer
        .unwrap_or(medcap_metrics::imageclef::BERTSCORE_LAYER);
    let scorer = BertScorer::from_dir(dir, layer, device.resolve()?)
        .with_context(|| format!("cannot load the BERTScore model {}", dir.display()))?;
    Ok(Some(scorer))
}
