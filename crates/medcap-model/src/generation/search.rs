//! The searches of [`super::generate`]: greedy or sampled decoding one row
//! per item, and beam search, over any [`NextTokenLogits`] model.

use tch::{Device, Kind, Tensor};

use super::processors;
use super::{GenerationConfig, Limits, NextTokenLogits};
use crate::error::ModelError;

/// Masked-out score used by beam search's bookkeeping, as in transformers.
const FAR: f32 = -1.0e9;

/// Greedy search, or sampling with `config.sampling`: one row per item.
pub(crate) fn greedy_or_sample<M: NextTokenLogits>(
    model: &M,
    rows: usize,
    prompt: &[i64],
    config: &GenerationConfig,
    limits: &Limits,
    device: Device,
) -> Result<Vec<Vec<i64>>, ModelError> {
    let processors = processors::for_config(config, limits);
    let warpers = config.sampling.map(|s| processors::warpers(&s));
    let mut sequences = vec![prompt.to_vec(); rows];
    let mut running = vec![true; rows];
    let mut tokens = prompt_tensor(prompt, rows, device);
    let mut past: Option<M::Cache> = None;
    if let Some(s) = &config.sampling {
        tch::manual_seed(s.seed as i64);
    }
    loop {
        let (logits, cache) = model.next_token_logits(&tokens, past.as_ref());
        let rows_so_far: Vec<&[i64]> = sequences.iter().map(Vec::as_slice).collect();
        let scores = processors::apply(&processors, logits, &rows_so_far);
        let chosen = match &warpers {
            Some(warpers) => processors::sample(&processors::apply(warpers, scores, &rows_so_far)),
            None => scores.argmax(-1, false),
        };
        let chosen = to_vec_i64(&chosen)?;
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
    Ok(sequences)
}

/// Beam search with transformers' candidate selection, length penalty and
/// finishing heuristic: `config.num_beams` adjacent rows per item.
pub(crate) fn beam_search<M: NextTokenLogits>(
    model: &M,
    images: usize,
    prompt: &[i64],
    config: &GenerationConfig,
    limits: &Limits,
    device: Device,
) -> Result<Vec<Vec<i64>>, ModelError> {
    let k = config.num_beams;
    let rows = images * k;
    let vocab = limits.vocab;
    let processors = processors::for_config(config, limits);
    let candidates = 2 * k;
    if candidates as i64 > vocab {
        return Err(ModelError::Generation(format!(
            "{k} beams need {candidates} candidates but the vocabulary has {vocab} tokens"
        )));
    }

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
    let mut past: Option<M::Cache> = None;
    let mut cur_len = limits.prompt_len;
    let lengths = |n: usize| (n as f64).powf(config.length_penalty) as f32;
    loop {
        let (logits, cache) = model.next_token_logits(&tokens, past.as_ref());
        let flat: Vec<&[i64]> = beams
            .iter()
            .flatten()
            .map(|b| b.tokens.as_slice())
            .collect();
        let log_probs = processors::apply(&processors, logits.log_softmax(-1, Kind::Float), &flat);
        let running: Vec<f32> = beams.iter().flatten().map(|b| b.score).collect();
        let running = Tensor::from_slice(&running).to_device(device).unsqueeze(1);
        let accumulated = (log_probs + running).view([images as i64, k as i64 * vocab]);
        let (top_values, top_indices) = accumulated.topk(candidates as i64, -1, true, true);
        let top_values = to_vec_f32(&top_values)?;
        let top_indices = to_vec_i64(&top_indices)?;

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
        past = Some(model.reorder_cache(&cache, &reorder));
        let last: Vec<i64> = beams
            .iter()
            .flatten()
            .map(|b| b.tokens.last().copied().unwrap_or(limits.pad))
            .collect();
        tokens = Tensor::from_slice(&last)
            .view([rows as i64, 1])
            .to_device(device);
    }
    // Every image keeps `k >= 1` finished hypotheses, the best first.
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

fn prompt_tensor(prompt: &[i64], rows: usize, device: Device) -> Tensor {
    Tensor::from_slice(prompt)
        .view([1, prompt.len() as i64])
        .repeat([rows as i64, 1])
        .to_device(device)
}

fn to_vec_i64(t: &Tensor) -> Result<Vec<i64>, ModelError> {
    Vec::<i64>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Int64).view([-1])).map_err(
        |source| ModelError::Torch {
            context: "reading chosen token ids".into(),
            source,
        },
    )
}

fn to_vec_f32(t: &Tensor) -> Result<Vec<f32>, ModelError> {
    Vec::<f32>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Float).view([-1])).map_err(
        |source| ModelError::Torch {
            context: "reading beam scores".into(),
            source,
        },
    )
}
