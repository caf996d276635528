//! Loading `medcap score`'s BERTScore encoder and baseline: the libtorch
//! half of the command, compiled into `medcap-torch` only.

use anyhow::{Context, Result};
use medcap_metrics::bertscore::{Baseline, baseline_file, choose_model};
use medcap_model::bertscore::BertScorer;
use medcap_model::device::DeviceChoice;

use crate::score::ScoreArgs;

/// The BERTScore encoder and baseline the arguments ask for.
pub fn bertscore_encoder(args: &ScoreArgs) -> Result<Option<(BertScorer, Option<Baseline>)>> {
    if args.no_bertscore {
        return Ok(None);
    }
    let choice = choose_model(
        args.bertscore_model.as_deref(),
        args.bertscore_model_type.as_deref(),
        args.bertscore_layer,
    )
    .map_err(|e| anyhow::anyhow!("{e}; or pass --no-bertscore to score without it"))?;
    let device: DeviceChoice = args.device.parse()?;
    let scorer = BertScorer::from_dir(&choice.dir, choice.layer, device.resolve()?)
        .with_context(|| format!("cannot load the BERTScore model {}", choice.dir.display()))?;
    let baseline_path = match &args.bertscore_baseline {
        Some(path) => Some(path.clone()),
        None if args.bertscore_rescale => {
            let name = choice.name.with_context(|| {
                format!(
                    "--bertscore-rescale needs bert-score's name for {} (--bertscore-model-type)",
                    choice.dir.display()
                )
            })?;
            Some(baseline_file(name, "en")?)
        }
        None => None,
    };
    let baseline = match &baseline_path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(
                Baseline::from_csv(&text, choice.layer)
                    .with_context(|| format!("{}", path.display()))?,
            )
        }
        None => None,
    };
    Ok(Some((scorer, baseline)))
}
