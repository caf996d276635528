//! Caption generation with transformers' semantics (`generate` of
//! `BlipForConditionalGeneration`, transformers 4.57): greedy search, beam
//! search with length penalty and the same finishing heuristic, and
//! temperature / top-k / nucleus sampling, with the repetition penalty and
//! minimum length applied in the same order. Self-attention keys and values
//! are cached; cross-attention keys and values are computed once per image.

use tch::{Kind, Tensor};

use crate::bert::KeyValue;
use crate::blip::BlipForConditionalGeneration;
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
            sampling: None,
        }
    }
}

impl GenerationConfig {
    fn check(&self) -> Result<(), ModelError> {
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

/// Masked-out score used by beam search's bookkeeping, as in transformers.
const FAR: f32 = -1.0e9;

struct Limits {
    prompt_len: usize,
    max_len: usize,
    min_len: usize,
    sep: i64,
    pad: i64,
}

impl BlipForConditionalGeneration {
    /// Generates one token sequence per image. `image_embeds`: from
    /// [`Self::encode_images`]; `prompt`: the decoder's start,
    /// [`crate::tokenizer::BlipTokenizer::decoder_prompt`] (`[DEC]` alone, or
    /// `[DEC]` and a prompt's word pieces). Each returned sequence starts
    /// with the prompt and ends with `[SEP]` unless it reached the length
    /// limit, as transformers' `generate` returns it (without batch padding).
    pub fn generate(
        &self,
        image_embeds: &Tensor,
        prompt: &[i64],
        config: &GenerationConfig,
    ) -> Result<Vec<Vec<i64>>, ModelError> {
        config.check()?;
        let text = &self.config().text_config;
        if prompt.is_empty() {
            return Err(ModelError::Generation(
                "the prompt needs at least [DEC]".into(),
            ));
        }
        if let Some(bad) = prompt.iter().find(|&&t| t < 0 || t >= text.vocab_size) {
            return Err(ModelError::Generation(format!(
                "prompt token {bad} is outside the vocabulary"
            )));
        }
        let positions = text.max_position_embeddings as usize;
        let limits = Limits {
            prompt_len: prompt.len(),
            max_len: (prompt.len() + config.max_new_tokens).min(positions),
            min_len: prompt.len() + config.min_new_tokens,
            sep: text.sep_token_id,
            pad: text.pad_token_id,
        };
        if limits.prompt_len >= limits.max_len {
            return Err(ModelError::Generation(format!(
                "a prompt of {} tokens leaves no room within {positions} positions",
                prompt.len()
            )));
        }
        let _no_grad = tch::no_grad_guard();
        let image_embeds = image_embeds.to_device(self.device());
        if image_embeds.size()[0] == 0 {
            return Ok(Vec::new());
        }
        if config.num_beams > 1 {
            self.beam_search(&image_embeds, prompt, config, &limits)
        } else {
            Ok(self.greedy_or_sample(&image_embeds, prompt, config, &limits))
        }
    }

    /// One decoder step: logits of the last position, as float32 `[rows, vocab]`.
    fn step(
        &self,
        tokens: &Tensor,
        past: Option<&[KeyValue]>,
        cross: &[KeyValue],
    ) -> (Tensor, Vec<KeyValue>) {
        let out = self
            .text_decoder()
            .forward_t(tokens, None, past, cross, false);
        (out.logits.select(1, -1).to_kind(Kind::Float), out.cache)
    }

    fn greedy_or_sample(
        &self,
        image_embeds: &Tensor,
        prompt: &[i64],
        config: &GenerationConfig,
        limits: &Limits,
    ) -> Vec<Vec<i64>> {
        let device = self.device();
        let rows = image_embeds.size()[0] as usize;
        let cross = self.text_decoder().cross_key_values(image_embeds);
        let mut sequences = vec![prompt.to_vec(); rows];
        let mut running = vec![true; rows];
        let mut tokens = prompt_tensor(prompt, rows, device);
        let mut past: Option<Vec<KeyValue>> = None;
        if let Some(s) = &config.sampling {
            tch::manual_seed(s.seed as i64);
        }
        loop {
            let (logits, cache) = self.step(&tokens, past.as_deref(), &cross);
            let rows_so_far: Vec<&[i64]> = sequences.iter().map(Vec::as_slice).collect();
            let scores = apply_processors(logits, &rows_so_far, config, limits);
            let chosen = match &config.sampling {
                Some(s) => sample(&scores, s),
                None => scores.argmax(-1, false),
            };
            let chosen = to_vec_i64(&chosen);
            let mut next = Vec::with_capacity(rows);
            for (i, seq) in sequences.iter_mut().enumerate() {
                let token = if running[i] { chosen[i] } else { limits.pad };
                seq.push(token);
                next.push(token);
                if running[i] && (seq.len() >= limits.max_len || token == limits.sep) {
                    running[i] = false;
                }
            }
            if !running.iter().any(|&r| r) {
                break;
            }
            tokens = Tensor::from_slice(&next)
                .view([rows as i64, 1])
                .to_device(device);
            past = Some(cache);
        }
        // Rows that stopped early were padded while others ran on.
        for seq in &mut sequences {
            if let Some(end) = seq[limits.prompt_len..]
                .iter()
                .position(|&t| t == limits.sep)
            {
                seq.truncate(limits.prompt_len + end + 1);
            }
        }
        sequences
    }

    fn beam_search(
        &self,
        image_embeds: &Tensor,
        prompt: &[i64],
        config: &GenerationConfig,
        limits: &Limits,
    ) -> Result<Vec<Vec<i64>>, ModelError> {
        let device = self.device();
        let k = config.num_beams;
        let images = image_embeds.size()[0] as usize;
        let rows = images * k;
        let vocab = self.config().text_config.vocab_size;
        let candidates = 2 * k;
        if candidates as i64 > vocab {
            return Err(ModelError::Generation(format!(
                "{k} beams need {candidates} candidates but the vocabulary has {vocab} tokens"
            )));
        }
        // Beams of one image are adjacent rows; they share the image's
        // cross-attention keys and values, which never need reordering.
        let per_beam: Vec<i64> = (0..rows as i64).map(|r| r / k as i64).collect();
        let per_beam = Tensor::from_slice(&per_beam).to_device(device);
        let cross: Vec<KeyValue> = self
            .text_decoder()
            .cross_key_values(image_embeds)
            .iter()
            .map(|kv| kv.index_select(&per_beam))
            .collect();

        let mut beams: Vec<Vec<Beam>> = (0..images)
            .map(|_| {
                (0..k)
                    .map(|j| Beam {
                        tokens: prompt.to_vec(),
                        score: if j == 0 { 0.0 } else { FAR },
                    })
                    .collect()
            })
            .collect();
        let mut finished: Vec<Vec<Finished>> = vec![vec![Finished::default(); k]; images];
        let mut improvable = vec![true; images];
        let mut tokens = prompt_tensor(prompt, rows, device);
        let mut past: Option<Vec<KeyValue>> = None;
        let mut cur_len = limits.prompt_len;
        let lengths = |n: usize| (n as f64).powf(config.length_penalty) as f32;
        loop {
            let (logits, cache) = self.step(&tokens, past.as_deref(), &cross);
            let flat: Vec<&[i64]> = beams
                .iter()
                .flatten()
                .map(|b| b.tokens.as_slice())
                .collect();
            let log_probs =
                apply_processors(logits.log_softmax(-1, Kind::Float), &flat, config, limits);
            let running: Vec<f32> = beams.iter().flatten().map(|b| b.score).collect();
            let running = Tensor::from_slice(&running).to_device(device).unsqueeze(1);
            let accumulated = (log_probs + running).view([images as i64, k as i64 * vocab]);
            let (top_values, top_indices) = accumulated.topk(candidates as i64, -1, true, true);
            let top_values = to_vec_f32(&top_values);
            let top_indices = to_vec_i64(&top_indices);

            let mut all_hit = true;
            let mut reorder = Vec::with_capacity(rows);
            for image in 0..images {
                let cands: Vec<Candidate> = (0..candidates)
                    .map(|j| {
                        let flat_index = top_indices[image * candidates + j];
                        let source = (flat_index / vocab) as usize;
                        let token = flat_index % vocab;
                        let hit = cur_len + 1 >= limits.max_len || token == limits.sep;
                        Candidate {
                            source,
                            token,
                            score: top_values[image * candidates + j],
                            hit,
                        }
                    })
                    .collect();
                all_hit &= cands.iter().all(|c| c.hit);

                // Next running beams: the best candidates that did not finish.
                let penalised: Vec<f32> = cands
                    .iter()
                    .map(|c| c.score + if c.hit { FAR } else { 0.0 })
                    .collect();
                let chosen = top_k_stable(&penalised, k);
                let old = &beams[image];
                let next: Vec<Beam> = chosen
                    .iter()
                    .map(|&j| {
                        let mut tokens = old[cands[j].source].tokens.clone();
                        tokens.push(cands[j].token);
                        Beam {
                            tokens,
                            score: penalised[j],
                        }
                    })
                    .collect();
                reorder.extend(chosen.iter().map(|&j| (image * k + cands[j].source) as i64));

                // Finished hypotheses: only the top `k` candidates may enter.
                let divisor = lengths(cur_len + 1 - limits.prompt_len);
                let mut merged: Vec<Finished> = finished[image].clone();
                for (j, c) in cands.iter().enumerate() {
                    let just = c.hit && j < k;
                    let mut score = c.score / divisor;
                    if !improvable[image] {
                        score += FAR;
                    }
                    if !just {
                        score += FAR;
                    }
                    let mut tokens = old[c.source].tokens.clone();
                    tokens.push(c.token);
                    merged.push(Finished {
                        score,
                        tokens,
                        done: just,
                    });
                }
                let scores: Vec<f32> = merged.iter().map(|f| f.score).collect();
                finished[image] = top_k_stable(&scores, k)
                    .into_iter()
                    .map(|i| merged[i].clone())
                    .collect();
                beams[image] = next;
            }
            cur_len += 1;
            for image in 0..images {
                let best = beams[image][0].score / lengths(cur_len - limits.prompt_len);
                let lowest = finished[image]
                    .iter()
                    .map(|f| f.score)
                    .fold(f32::INFINITY, f32::min);
                let can_improve = finished[image]
                    .iter()
                    .any(|f| best > if f.done { lowest } else { FAR });
                improvable[image] &= can_improve;
            }
            if !improvable.iter().any(|&i| i) || all_hit {
                break;
            }
            let reorder = Tensor::from_slice(&reorder).to_device(device);
            past = Some(cache.iter().map(|kv| kv.index_select(&reorder)).collect());
            let last: Vec<i64> = beams
                .iter()
                .flatten()
                .map(|b| b.tokens.last().copied().unwrap_or(limits.pad))
                .collect();
            tokens = Tensor::from_slice(&last)
                .view([rows as i64, 1])
                .to_device(device);
        }
        Ok(finished
            .into_iter()
            .map(|f| {
                f.into_iter()
                    .next()
                    .map(|best| best.tokens)
                    .unwrap_or_default()
            })
            .collect())
    }
}

#[derive(Debug, Clone)]
struct Beam {
    tokens: Vec<i64>,
    score: f32,
}

#[derive(Debug, Clone)]
struct Finished {
    score: f32,
    tokens: Vec<i64>,
    done: bool,
}

impl Default for Finished {
    fn default() -> Self {
        Self {
            score: FAR,
            tokens: Vec::new(),
            done: false,
        }
    }
}

struct Candidate {
    source: usize,
    token: i64,
    score: f32,
    hit: bool,
}

/// Indices of the `k` largest values, largest first (ties: lower index first).
fn top_k_stable(values: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order.truncate(k);
    order
}

fn prompt_tensor(prompt: &[i64], rows: usize, device: tch::Device) -> Tensor {
    Tensor::from_slice(prompt)
        .view([1, prompt.len() as i64])
        .repeat([rows as i64, 1])
        .to_device(device)
}

/// Repetition penalty, then the minimum length, as transformers orders them.
fn apply_processors(
    mut scores: Tensor,
    sequences: &[&[i64]],
    config: &GenerationConfig,
    limits: &Limits,
) -> Tensor {
    let device = scores.device();
    let len = sequences.first().map_or(0, |s| s.len());
    if config.repetition_penalty != 1.0 {
        let ids: Vec<i64> = sequences.iter().flat_map(|s| s.iter().copied()).collect();
        let ids = Tensor::from_slice(&ids)
            .view([sequences.len() as i64, len as i64])
            .to_device(device);
        let seen = scores.gather(1, &ids, false);
        let p = config.repetition_penalty;
        let penalised = (&seen * p).where_self(&seen.lt(0.0), &(&seen / p));
        scores = scores.scatter(1, &ids, &penalised);
    }
    if len < limits.min_len {
        let _ = scores.narrow(1, limits.sep, 1).fill_(f64::NEG_INFINITY);
    }
    scores
}

/// Temperature, top-k, then top-p filtering, and one draw per row.
fn sample(scores: &Tensor, s: &Sampling) -> Tensor {
    let mut scores = if s.temperature != 1.0 {
        scores / s.temperature
    } else {
        scores.shallow_clone()
    };
    let vocab = scores.size()[1];
    if s.top_k > 0 && (s.top_k as i64) < vocab {
        let (values, _) = scores.topk(s.top_k as i64, -1, true, true);
        let threshold = values.narrow(1, s.top_k as i64 - 1, 1);
        scores = scores.masked_fill(&scores.lt_tensor(&threshold), f64::NEG_INFINITY);
    }
    if s.top_p < 1.0 {
        let (sorted, order) = scores.sort(-1, false);
        let cumulative = sorted.softmax(-1, Kind::Float).cumsum(-1, Kind::Float);
        let remove_sorted = cumulative.le(1.0 - s.top_p);
        // The most likely token always stays.
        let _ = remove_sorted.narrow(1, vocab - 1, 1).fill_(0);
        let remove = remove_sorted.scatter(1, &order, &remove_sorted);
        scores = scores.masked_fill(&remove, f64::NEG_INFINITY);
    }
    scores
        .softmax(-1, Kind::Float)
        .multinomial(1, false)
        .squeeze_dim(1)
}

fn to_vec_i64(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(
        t.to_device(tch::Device::Cpu)
            .to_kind(Kind::Int64)
            .view([-1]),
    )
    .unwrap_or_default()
}

fn to_vec_f32(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(
        t.to_device(tch::Device::Cpu)
            .to_kind(Kind::Float)
            .view([-1]),
    )
    .unwrap_or_default()
}
