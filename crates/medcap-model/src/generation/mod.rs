//! Caption generation with transformers' semantics (`generate`, transformers
//! 4.57): greedy search, beam search with length penalty and the same
//! finishing heuristic, and temperature / top-k / nucleus sampling, with the
//! repetition penalty and minimum length applied in the same order.
//!
//! The search is written once, over any model that scores the next token
//! ([`NextTokenLogits`]: logits of the last position, a cache between
//! steps, the cache reordered by beam), as candle's `generation` module and
//! transformers' `GenerationMixin` keep it apart from the models. The score
//! changes are [`LogitsProcessor`]s, separate from both (transformers'
//! `LogitsProcessor`s and `LogitsWarper`s). BLIP's captioner implements the
//! trait on its text decoder (`BlipForConditionalGeneration::generate`).

mod processors;
mod search;
mod stored;

pub use processors::{
    LogitsProcessor, MinNewTokens, NoRepeatNGram, RepetitionPenalty, Temperature, TopK, TopP,
};
pub use stored::StoredGeneration;

use tch::{Device, Tensor};

use crate::error::ModelError;

/// Sampling instead of search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Logits are divided by this (1: unchanged).
    pub temperature: f64,
    /// Keep the `top_k` most likely tokens (0: no limit; transformers' default is 50).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches `top_p` (1: all).
    pub top_p: f64,
    /// Seed of libtorch's generator, so that a run is repeatable.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 50,
            top_p: 1.0,
            seed: 0,
        }
    }
}

/// Decoding settings. Lengths count new tokens only (not `[DEC]` nor the prompt).
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// Most tokens to add (transformers' default `max_length` 20 adds 20).
    pub max_new_tokens: usize,
    /// `[SEP]` is forbidden before this many new tokens.
    pub min_new_tokens: usize,
    /// 1: greedy or sampling; more: beam search.
    pub num_beams: usize,
    /// Beam scores are divided by `new_tokens ^ length_penalty`.
    pub length_penalty: f64,
    /// Scores of tokens already in the sequence are divided (if positive)
    /// or multiplied (if negative) by this; 1 disables it.
    pub repetition_penalty: f64,
    /// No n-gram of this size appears twice in a sequence (0: off).
    pub no_repeat_ngram_size: usize,
    /// `Some`: sample (with `num_beams` = 1).
    pub sampling: Option<Sampling>,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 20,
            min_new_tokens: 0,
            num_beams: 1,
            length_penalty: 1.0,
            repetition_penalty: 1.0,
            no_repeat_ngram_size: 0,
            sampling: None,
        }
    }
}

impl GenerationConfig {
    /// The settings of transformers' `generate(**kwargs)` given as JSON
    /// (`max_new_tokens`, `min_new_tokens`, `num_beams`, `length_penalty`,
    /// `repetition_penalty`, and `min_length`, which transformers counts
    /// with `[DEC]`: one less new token when there is no prompt, and which
    /// a given `min_new_tokens` replaces); other
    /// keys and missing ones keep the defaults. How the parity fixtures
    /// record the settings they were made with.
    ///
    /// ```
    /// use medcap_model::generation::GenerationConfig;
    ///
    /// let kwargs = serde_json::json!({"num_beams": 3, "min_length": 5});
    /// let c = GenerationConfig::from_transformers_kwargs(&kwargs);
    /// assert_eq!((c.num_beams, c.min_new_tokens, c.max_new_tokens), (3, 4, 20));
    /// ```
    pub fn from_transformers_kwargs(kwargs: &serde_json::Value) -> Self {
        let get = |k: &str| kwargs.get(k).and_then(serde_json::Value::as_f64);
        let count = |k: &str| get(k).filter(|v| *v >= 0.0).map(|v| v as usize);
        let mut config = Self::default();
        if let Some(v) = count("max_new_tokens") {
            config.max_new_tokens = v;
        }
        if let Some(v) = count("num_beams") {
            config.num_beams = v;
        }
        if let Some(v) = get("length_penalty") {
            config.length_penalty = v;
        }
        if let Some(v) = get("repetition_penalty") {
            config.repetition_penalty = v;
        }
        // transformers: a given min_new_tokens replaces min_length.
        if let Some(v) = count("min_new_tokens") {
            config.min_new_tokens = v;
        } else if let Some(v) = count("min_length") {
            config.min_new_tokens = v.saturating_sub(1);
        }
        config
    }

    /// Settings that contradict each other.
    ///
    /// # Errors
    /// [`ModelError::Generation`] naming the setting.
    pub fn check(&self) -> Result<(), ModelError> {
        let fail = |m: &str| Err(ModelError::Generation(m.into()));
        if self.num_beams == 0 {
            return fail("num_beams must be at least 1");
        }
        if self.max_new_tokens == 0 {
            return fail("max_new_tokens must be at least 1");
        }
        if self.repetition_penalty <= 0.0 || !self.repetition_penalty.is_finite() {
            return fail("repetition_penalty must be a positive number");
        }
        if let Some(s) = &self.sampling {
            if self.num_beams > 1 {
                return fail("sampling with beams is not supported; use num_beams 1");
            }
            if s.temperature <= 0.0 || !s.temperature.is_finite() {
                return fail("temperature must be a positive number");
            }
            if !(s.top_p > 0.0 && s.top_p <= 1.0) {
                return fail("top_p must be in (0, 1]");
            }
        }
        Ok(())
    }
}

/// The token ids and limits decoding needs of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenSpec {
    /// Vocabulary size (logits' last dimension).
    pub vocab_size: i64,
    /// The token that ends a sequence (`[SEP]` for BLIP).
    pub eos_token_id: i64,
    /// The token that fills finished rows while others run on.
    pub pad_token_id: i64,
    /// Most positions a sequence may have, prompt included.
    pub max_positions: usize,
}

/// A decoder that scores the next token of every row (an image, or one beam
/// of an image), keeping a cache between steps.
pub trait NextTokenLogits {
    /// What the model keeps between steps (BLIP: self-attention keys and
    /// values of every token so far).
    type Cache;

    /// Logits of the last position of each row, float32 `[rows, vocab]`,
    /// after feeding `tokens` `[rows, new tokens]` on top of `cache`, and
    /// the cache extended by them.
    fn next_token_logits(
        &self,
        tokens: &Tensor,
        cache: Option<&Self::Cache>,
    ) -> (Tensor, Self::Cache);

    /// `cache` with its rows taken in the order of `rows` (int64 `[rows]`),
    /// as beam search keeps the surviving beams.
    fn reorder_cache(&self, cache: &Self::Cache, rows: &Tensor) -> Self::Cache;
}

/// Where a sequence may end: lengths count the prompt.
pub(crate) struct Limits {
    pub(crate) prompt_len: usize,
    pub(crate) max_len: usize,
    pub(crate) min_len: usize,
    pub(crate) sep: i64,
    pub(crate) pad: i64,
    pub(crate) vocab: i64,
}

/// Generates one token sequence per item. `model` holds
/// `items * config.num_beams` rows (with beams, an item's rows adjacent);
/// every row starts from `prompt`. Each returned sequence starts with the
/// prompt and ends with the end token unless it reached the length limit, as
/// transformers' `generate` returns it (without batch padding).
///
/// # Errors
/// [`ModelError::Generation`] for contradictory settings, an empty prompt
/// or one outside the vocabulary, or no room left within the model's
/// positions; [`ModelError::Torch`] when a step's values cannot be read.
pub fn generate<M: NextTokenLogits>(
    model: &M,
    items: usize,
    prompt: &[i64],
    config: &GenerationConfig,
    spec: TokenSpec,
    device: Device,
) -> Result<Vec<Vec<i64>>, ModelError> {
    config.check()?;
    if prompt.is_empty() {
        return Err(ModelError::Generation(
            "the prompt needs at least its start token".into(),
        ));
    }
    if let Some(bad) = prompt.iter().find(|&&t| t < 0 || t >= spec.vocab_size) {
        return Err(ModelError::Generation(format!(
            "prompt token {bad} is outside the vocabulary"
        )));
    }
    let limits = Limits {
        prompt_len: prompt.len(),
        max_len: (prompt.len() + config.max_new_tokens).min(spec.max_positions),
        min_len: prompt.len() + config.min_new_tokens,
        sep: spec.eos_token_id,
        pad: spec.pad_token_id,
        vocab: spec.vocab_size,
    };
    if limits.prompt_len >= limits.max_len {
        return Err(ModelError::Generation(format!(
            "a prompt of {} tokens leaves no room within {} positions",
            prompt.len(),
            spec.max_positions
        )));
    }
    if items == 0 {
        return Ok(Vec::new());
    }
    let _no_grad = tch::no_grad_guard();
    if config.num_beams > 1 {
        search::beam_search(model, items, prompt, config, &limits, device)
    } else {
        search::greedy_or_sample(model, items, prompt, config, &limits, device)
    }
}
