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
