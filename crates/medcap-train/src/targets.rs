//! Caption targets as BLIP's own fine-tuning builds them: `[DEC]` in place
//! of `[CLS]`, the optional prompt and the padding masked out of the loss
//! (-100), truncation to the longest allowed length (keeping `[SEP]`, which
//! teaches the model to stop).

use medcap_model::tokenizer::BlipTokenizer;
use tch::Tensor;

use crate::error::TrainError;

/// Label value the loss ignores.
pub const IGNORE: i64 = -100;

/// Decoder inputs and labels of a batch of captions.
#[derive(Debug)]
pub struct CaptionTargets {
    /// `[batch, len]`: `[DEC]`, prompt and caption word pieces, `[SEP]`, padding.
    pub input_ids: Tensor,
    /// `[batch, len]`: 1 for tokens, 0 for padding.
    pub attention_mask: Tensor,
    /// `[batch, len]`: `input_ids` with the prompt, `[DEC]` and padding set to -100.
    pub labels: Tensor,
    /// Positions that count in the loss (after the one shift).
    pub target_tokens: i64,
}

/// Builds the targets for `captions`, each prefixed with `prompt`.
pub fn caption_targets(
    tokenizer: &BlipTokenizer,
    captions: &[String],
    prompt: Option<&str>,
    max_tokens: usize,
) -> Result<CaptionTargets, TrainError> {
    let prompt = prompt.map(str::trim).filter(|p| !p.is_empty());
    let texts: Vec<String> = captions
        .iter()
        .map(|c| match prompt {
            Some(p) => format!("{p} {c}"),
            None => c.clone(),
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let batch = tokenizer.batch(&refs, Some(max_tokens))?;
    // [CLS] plus the prompt's pieces: the positions whose next token is
    // still part of the prompt are not predicted.
    let masked_prefix = match prompt {
        Some(p) => tokenizer.encode(p)?.len() as i64 - 1,
        None => 1,
    };
    let input_ids = batch.input_ids;
    let _ = input_ids.narrow(1, 0, 1).fill_(tokenizer.dec_id());
    let len = input_ids.size()[1];
    let positions = Tensor::arange(len, (tch::Kind::Int64, tch::Device::Cpu)).unsqueeze(0);
    let keep = batch
        .attention_mask
        .eq(1)
        .logical_and(&positions.ge(masked_prefix.min(len)));
    let labels = input_ids.where_self(&keep, &Tensor::from(IGNORE));
    let target_tokens = labels
        .narrow(1, 1, (len - 1).max(0))
        .ne(IGNORE)
        .sum(tch::Kind::Int64)
        .int64_value(&[]);
    Ok(CaptionTargets {
        input_ids,
        attention_mask: batch.attention_mask,
        labels,
        target_tokens,
    })
}
