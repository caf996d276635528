//! Decoding settings a checkpoint stores in its text configuration, and the
//! [`GenerationConfig`] transformers derives from them.
//!
//! transformers' `BlipForConditionalGeneration.generate` calls its text
//! decoder's `generate`, whose defaults come from `config.text_config`
//! (`GenerationConfig.from_model_config(BlipTextConfig)`): keys such as
//! `num_beams`, `max_length` or `no_repeat_ngram_size` saved there (as
//! community tools do) change what a plain `generate(**inputs)` returns.
//! `generation_config.json` and the outer `config.json` keys are loaded
//! into the outer model's generation config, which BLIP's `generate` never
//! reads: they are ignored, as transformers 4.57 ignores them. Explicit
//! settings override what the model stores.

use serde::{Deserialize, Serialize};

use super::{GenerationConfig, Sampling};
use crate::error::ModelError;

/// transformers' `max_length` default; a stored `max_length` equal to it
/// counts new tokens (20 after the prompt), any other value the whole
/// sequence, `[DEC]` and prompt included (`_prepare_generated_length`).
const DEFAULT_MAX_LENGTH: usize = 20;

/// The generation keys of a BLIP `text_config` (transformers'
/// `GenerationConfig` fields); absent keys are `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // transformers' own names; each is documented by `GenerationConfig`
pub struct StoredGeneration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_new_tokens: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_new_tokens: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_beams: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub do_sample: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repetition_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_repeat_ngram_size: Option<usize>,
    /// Keys transformers honours that medcap does not implement, with
    /// their value when present: refused unless they hold transformers'
    /// default, so that a stored setting is never silently dropped.
    #[serde(flatten, skip_serializing, deserialize_with = "only_unsupported")]
    pub other: std::collections::BTreeMap<String, serde_json::Value>,
}

/// The keys of [`UNSUPPORTED`] among the ones no other field took.
fn only_unsupported<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<std::collections::BTreeMap<String, serde_json::Value>, D::Error> {
    let mut all =
        std::collections::BTreeMap::<String, serde_json::Value>::deserialize(deserializer)?;
    all.retain(|key, _| UNSUPPORTED.iter().any(|(k, _)| k == key));
    Ok(all)
}

/// Generation keys medcap does not implement, with transformers' default
/// value (a stored default, or `null`, changes nothing and is accepted).
const UNSUPPORTED: [(&str, &str); 27] = [
    ("early_stopping", "false"),
    ("num_return_sequences", "1"),
    ("typical_p", "1.0"),
    ("min_p", "null"),
    ("epsilon_cutoff", "0.0"),
    ("eta_cutoff", "0.0"),
    ("bad_words_ids", "null"),
    ("suppress_tokens", "null"),
    ("begin_suppress_tokens", "null"),
    ("forced_bos_token_id", "null"),
    ("forced_eos_token_id", "null"),
    ("exponential_decay_length_penalty", "null"),
    ("encoder_no_repeat_ngram_size", "0"),
    ("num_beam_groups", "1"),
    ("diversity_penalty", "0.0"),
    ("max_time", "null"),
    ("remove_invalid_values", "false"),
    ("encoder_repetition_penalty", "1.0"),
    ("renormalize_logits", "false"),
    ("sequence_bias", "null"),
    ("guidance_scale", "null"),
    ("penalty_alpha", "null"),
    ("dola_layers", "null"),
    ("stop_strings", "null"),
    ("constraints", "null"),
    ("force_words_ids", "null"),
    ("token_healing", "false"),
];

fn is_default(value: &serde_json::Value, default: &str) -> bool {
    match serde_json::from_str::<serde_json::Value>(default) {
        Ok(serde_json::Value::Null) => value.is_null(),
        Ok(d) => {
            value.is_null()
                || *value == d
                || matches!((value.as_f64(), d.as_f64()), (Some(a), Some(b)) if a == b)
        }
        Err(_) => false,
    }
}

impl StoredGeneration {
    /// The settings transformers' `generate(**inputs)` uses for a decoder
    /// whose `text_config` stores `self`, with a decoder prompt of
    /// `prompt_len` tokens (`[DEC]` included), and the stored keys that
    /// made them differ from the defaults (`"num_beams=3"`, ...), for the
    /// user to see where a setting came from.
    ///
    /// Lengths follow transformers 4.57: `max_new_tokens` when given
    /// (`explicit_max_new_tokens`, the caller's own, wins over the stored
    /// one); else a `max_length` of 20 (the default) adds 20 tokens and any
    /// other `max_length` is the whole sequence's; `min_new_tokens`, when
    /// stored (even 0), replaces `min_length`, which counts the whole
    /// sequence.
    /// `do_sample` samples with the stored temperature, `top_k` and `top_p`
    /// (seed 0: transformers draws from torch's global generator, so
    /// sampled tokens are not comparable).
    ///
    /// ```
    /// use medcap_model::generation::StoredGeneration;
    ///
    /// let stored: StoredGeneration =
    ///     serde_json::from_str(r#"{"num_beams": 3, "max_length": 30}"#).unwrap();
    /// let (config, from_model) = stored.resolve(1, None).unwrap();
    /// assert_eq!((config.num_beams, config.max_new_tokens), (3, 29));
    /// assert_eq!(from_model, ["max_length=30", "num_beams=3"]);
    /// ```
    ///
    /// # Errors
    /// [`ModelError::Generation`] naming the key: one medcap does not
    /// implement holding other than its default, or a `max_length` that
    /// leaves no room after the prompt (unless `explicit_max_new_tokens`
    /// replaces it).
    pub fn resolve(
        &self,
        prompt_len: usize,
        explicit_max_new_tokens: Option<usize>,
    ) -> Result<(GenerationConfig, Vec<String>), ModelError> {
        for (key, default) in UNSUPPORTED {
            if let Some(value) = self.other.get(key)
                && !is_default(value, default)
            {
                return Err(ModelError::Generation(format!(
                    "the model's text_config sets {key} = {value}, which medcap's decoding does \
                     not implement (transformers' default is {default}); remove it from \
                     config.json to decode without it"
                )));
            }
        }
        let mut from_model = Vec::new();
        let mut note = |key: &str, value: String| from_model.push(format!("{key}={value}"));
        let mut config = GenerationConfig::default();
        if let Some(n) = explicit_max_new_tokens {
            config.max_new_tokens = n;
        } else if let Some(n) = self.max_new_tokens {
            note("max_new_tokens", n.to_string());
            config.max_new_tokens = n;
        } else if let Some(total) = self.max_length.filter(|&m| m != DEFAULT_MAX_LENGTH) {
            note("max_length", total.to_string());
            config.max_new_tokens = total
                .checked_sub(prompt_len)
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    ModelError::Generation(format!(
                        "the model's text_config.max_length {total} leaves no room after a \
                         prompt of {prompt_len} tokens"
                    ))
                })?;
        }
        match (self.min_new_tokens, self.min_length) {
            (Some(n), _) => {
                note("min_new_tokens", n.to_string());
                config.min_new_tokens = n;
            }
            (None, Some(total)) if total > 0 => {
                note("min_length", total.to_string());
                config.min_new_tokens = total.saturating_sub(prompt_len);
            }
            _ => {}
        }
        if let Some(n) = self.num_beams.filter(|&n| n != 1) {
            note("num_beams", n.to_string());
            config.num_beams = n;
        }
        if let Some(p) = self.length_penalty.filter(|&p| p != 1.0) {
            note("length_penalty", p.to_string());
            config.length_penalty = p;
        }
        if let Some(p) = self.repetition_penalty.filter(|&p| p != 1.0) {
            note("repetition_penalty", p.to_string());
            config.repetition_penalty = p;
        }
        if let Some(n) = self.no_repeat_ngram_size.filter(|&n| n > 0) {
            note("no_repeat_ngram_size", n.to_string());
            config.no_repeat_ngram_size = n;
        }
        if self.do_sample == Some(true) {
            note("do_sample", "true".into());
            let defaults = Sampling::default();
            let sampling = Sampling {
                temperature: self.temperature.unwrap_or(defaults.temperature),
                top_k: self.top_k.unwrap_or(defaults.top_k),
                top_p: self.top_p.unwrap_or(defaults.top_p),
                seed: defaults.seed,
            };
            for (key, set, default) in [
                ("temperature", sampling.temperature, defaults.temperature),
                ("top_k", sampling.top_k as f64, defaults.top_k as f64),
                ("top_p", sampling.top_p, defaults.top_p),
            ] {
                if set != default {
                    note(key, set.to_string());
                }
            }
            config.sampling = Some(sampling);
        }
        from_model.sort();
        Ok((config, from_model))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(json: &str) -> StoredGeneration {
        serde_json::from_str(json).unwrap()
    }

    /// (max_new_tokens, min_new_tokens) for `json` and a prompt of `prompt` tokens.
    fn lengths(json: &str, prompt: usize) -> (usize, usize) {
        let c = stored(json).resolve(prompt, None).unwrap().0;
        (c.max_new_tokens, c.min_new_tokens)
    }

    #[test]
    fn lengths_count_as_transformers_counts_them() {
        // No key: 20 new tokens whatever the prompt.
        assert_eq!(lengths("{}", 4), (20, 0));
        assert!(stored("{}").resolve(4, None).unwrap().1.is_empty());
        // max_length 20 stored explicitly is still "20 new tokens".
        assert_eq!(lengths(r#"{"max_length": 20}"#, 4), (20, 0));
        // Any other max_length is the whole sequence's.
        assert_eq!(lengths(r#"{"max_length": 30}"#, 4), (26, 0));
        assert_eq!(lengths(r#"{"max_length": 10}"#, 1), (9, 0));
        // max_new_tokens wins over max_length.
        assert_eq!(
            lengths(r#"{"max_length": 30, "max_new_tokens": 5}"#, 4),
            (5, 0)
        );
        // min_new_tokens, stored even as 0, replaces min_length.
        assert_eq!(
            lengths(r#"{"min_length": 9, "min_new_tokens": 2}"#, 1),
            (20, 2)
        );
        assert_eq!(
            lengths(r#"{"min_length": 9, "min_new_tokens": 0}"#, 1),
            (20, 0)
        );
        // The caller's own max_new_tokens replaces a max_length with no room.
        let c = stored(r#"{"max_length": 4}"#)
            .resolve(4, Some(10))
            .unwrap()
            .0;
        assert_eq!(c.max_new_tokens, 10);
        // min_length counts the prompt; min_new_tokens does not.
        assert_eq!(lengths(r#"{"min_length": 6}"#, 1), (20, 5));
        assert_eq!(
            lengths(r#"{"min_length": 6, "min_new_tokens": 7}"#, 1),
            (20, 7)
        );
        let err = stored(r#"{"max_length": 4}"#)
            .resolve(4, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_length 4"), "{err}");
    }

    #[test]
    fn defaults_pass_and_other_settings_are_refused_by_name() {
        let ok = stored(
            r#"{"early_stopping": false, "bad_words_ids": null, "typical_p": 1, "num_return_sequences": 1}"#,
        );
        assert!(ok.resolve(1, None).is_ok());
        for (json, key) in [
            (r#"{"early_stopping": true}"#, "early_stopping"),
            (r#"{"typical_p": 0.9}"#, "typical_p"),
            (r#"{"bad_words_ids": [[5]]}"#, "bad_words_ids"),
            (r#"{"num_return_sequences": 3}"#, "num_return_sequences"),
        ] {
            let err = stored(json).resolve(1, None).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn sampling_takes_its_stored_warpers() {
        let (c, notes) = stored(r#"{"do_sample": true, "top_k": 5, "temperature": 0.7}"#)
            .resolve(1, None)
            .unwrap();
        let s = c.sampling.unwrap();
        assert_eq!((s.top_k, s.temperature, s.top_p), (5, 0.7, 1.0));
        assert_eq!(notes, ["do_sample=true", "temperature=0.7", "top_k=5"]);
        assert!(
            stored(r#"{"do_sample": false, "top_k": 5}"#)
                .resolve(1, None)
                .unwrap()
                .0
                .sampling
                .is_none()
        );
    }
}
