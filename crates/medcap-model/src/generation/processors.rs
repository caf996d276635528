//! Changes to the next-token scores, in transformers' order: the
//! processors (repetition penalty, no repeated n-gram, then the minimum
//! length) on every search,
//! then, when sampling, the warpers (temperature, top-k, top-p) before one
//! draw per row. Each is a [`LogitsProcessor`], independent of the model.

use tch::{Kind, Tensor};

use super::{GenerationConfig, Limits, Sampling};

/// One change to the scores `[rows, vocab]` of the next token, given the
/// tokens of each row so far (all rows of one length).
pub trait LogitsProcessor {
    /// The changed scores.
    fn process(&self, scores: Tensor, sequences: &[&[i64]]) -> Tensor;
}

/// transformers' `RepetitionPenaltyLogitsProcessor`: the score of every token
/// already in a row is divided by the penalty when positive, multiplied
/// when negative.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RepetitionPenalty(pub f64);

impl LogitsProcessor for RepetitionPenalty {
    fn process(&self, scores: Tensor, sequences: &[&[i64]]) -> Tensor {
        let len = sequences.first().map_or(0, |s| s.len());
        let ids: Vec<i64> = sequences.iter().flat_map(|s| s.iter().copied()).collect();
        let ids = Tensor::from_slice(&ids)
            .view([sequences.len() as i64, len as i64])
            .to_device(scores.device());
        let seen = scores.gather(1, &ids, false);
        let p = self.0;
        let penalised = (&seen * p).where_self(&seen.lt(0.0), &(&seen / p));
        scores.scatter(1, &ids, &penalised)
    }
}

/// transformers' `NoRepeatNGramLogitsProcessor`: a token that would
/// complete an n-gram of size `n` already present in the row (the prompt
/// and `[DEC]` included) becomes impossible; 0 disables it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRepeatNGram(pub usize);

impl NoRepeatNGram {
    /// The tokens banned after `row`: the last tokens of every n-gram whose
    /// first `n - 1` tokens equal the row's last `n - 1`.
    pub fn banned(&self, row: &[i64]) -> Vec<i64> {
        let n = self.0;
        if n == 0 || row.len() + 1 < n {
            return Vec::new();
        }
        let prefix = &row[row.len() + 1 - n..];
        row.windows(n)
            .filter(|gram| gram[..n - 1] == *prefix)
            .map(|gram| gram[n - 1])
            .collect()
    }
}

impl LogitsProcessor for NoRepeatNGram {
    fn process(&self, scores: Tensor, sequences: &[&[i64]]) -> Tensor {
        let vocab = scores.size().get(1).copied().unwrap_or(0);
        for (r, row) in sequences.iter().enumerate() {
            for token in self.banned(row) {
                if (0..vocab).contains(&token) {
                    let _ = scores
                        .get(r as i64)
                        .narrow(0, token, 1)
                        .fill_(f64::NEG_INFINITY);
                }
            }
        }
        scores
    }
}

/// transformers' `MinLengthLogitsProcessor`: the end token is impossible
/// while rows are shorter than `min_len` tokens (prompt included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinNewTokens {
    /// Shortest length at which a row may end.
    pub min_len: usize,
    /// The end token.
    pub eos_token_id: i64,
}

impl LogitsProcessor for MinNewTokens {
    fn process(&self, scores: Tensor, sequences: &[&[i64]]) -> Tensor {
        let len = sequences.first().map_or(0, |s| s.len());
        if len < self.min_len {
            let _ = scores
                .narrow(1, self.eos_token_id, 1)
                .fill_(f64::NEG_INFINITY);
        }
        scores
    }
}

/// transformers' `TemperatureLogitsWarper`: scores divided by the temperature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Temperature(pub f64);

impl LogitsProcessor for Temperature {
    fn process(&self, scores: Tensor, _: &[&[i64]]) -> Tensor {
        if self.0 != 1.0 {
            scores / self.0
        } else {
            scores
        }
    }
}

/// transformers' `TopKLogitsWarper`: all but the `k` highest scores of a row
/// become impossible (0: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopK(pub usize);

impl LogitsProcessor for TopK {
    fn process(&self, scores: Tensor, _: &[&[i64]]) -> Tensor {
        let vocab = scores.size()[1];
        if self.0 == 0 || self.0 as i64 >= vocab {
            return scores;
        }
        let (values, _) = scores.topk(self.0 as i64, -1, true, true);
        let threshold = values.narrow(1, self.0 as i64 - 1, 1);
        scores.masked_fill(&scores.lt_tensor(&threshold), f64::NEG_INFINITY)
    }
}

/// transformers' `TopPLogitsWarper`: only the smallest set of most likely
/// tokens whose probability reaches `p` stays (the most likely always).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopP(pub f64);

impl LogitsProcessor for TopP {
    fn process(&self, scores: Tensor, _: &[&[i64]]) -> Tensor {
        if self.0 >= 1.0 {
            return scores;
        }
        let vocab = scores.size()[1];
        let (sorted, order) = scores.sort(-1, false);
        let cumulative = sorted.softmax(-1, Kind::Float).cumsum(-1, Kind::Float);
        let remove_sorted = cumulative.le(1.0 - self.0);
        // The most likely token always stays.
        let _ = remove_sorted.narrow(1, vocab - 1, 1).fill_(0);
        let remove = remove_sorted.scatter(1, &order, &remove_sorted);
        scores.masked_fill(&remove, f64::NEG_INFINITY)
    }
}

/// The processors of `config`, in transformers' order.
pub(crate) fn for_config(
    config: &GenerationConfig,
    limits: &Limits,
) -> Vec<Box<dyn LogitsProcessor>> {
    let mut list: Vec<Box<dyn LogitsProcessor>> = Vec::new();
    if config.repetition_penalty != 1.0 {
        list.push(Box::new(RepetitionPenalty(config.repetition_penalty)));
    }
    if config.no_repeat_ngram_size > 0 {
        list.push(Box::new(NoRepeatNGram(config.no_repeat_ngram_size)));
    }
    list.push(Box::new(MinNewTokens {
        min_len: limits.min_len,
        eos_token_id: limits.sep,
    }));
    list
}

/// The warpers of sampling, in transformers' order.
pub(crate) fn warpers(s: &Sampling) -> Vec<Box<dyn LogitsProcessor>> {
    vec![
        Box::new(Temperature(s.temperature)),
        Box::new(TopK(s.top_k)),
        Box::new(TopP(s.top_p)),
    ]
}

/// `processors` applied in order.
pub(crate) fn apply(
    processors: &[Box<dyn LogitsProcessor>],
    scores: Tensor,
    sequences: &[&[i64]],
) -> Tensor {
    processors
        .iter()
        .fold(scores, |scores, p| p.process(scores, sequences))
}

/// One draw per row from the softmax of `scores`.
pub(crate) fn sample(scores: &Tensor) -> Tensor {
    scores
        .softmax(-1, Kind::Float)
        .multinomial(1, false)
        .squeeze_dim(1)
}
