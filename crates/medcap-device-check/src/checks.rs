//! The checks on the committed fixtures: tiny BLIP generation and BERTScore
//! on the device against the reference packages' CPU values, and training
//! steps on the device against the same steps on the CPU.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use medcap_metrics::bertscore::{BertScoreOptions, bert_score_with};
use medcap_model::bertscore::BertScorer;
use medcap_model::blip::BlipForConditionalGeneration;
use medcap_model::generation::GenerationConfig;
use medcap_model::tch::{Device, Kind, Tensor, no_grad_guard};
use medcap_model::tokenizer::BlipTokenizer;
use medcap_train::config::{LossKind, Precision, TrainConfig};
use medcap_train::run::MetricsRow;
use medcap_train::trainer::{Observer, Trainer};
use serde_json::{Value, json};

use crate::{Check, read_json};

/// A named tensor of a safetensors file, as fp32.
pub(crate) fn tensor_from(path: &Path, name: &str) -> Result<Tensor> {
    Tensor::read_safetensors(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t.to_kind(Kind::Float))
        .with_context(|| format!("{name} is not in {}", path.display()))
}

pub(crate) fn id_rows(value: &Value) -> Vec<Vec<i64>> {
    value
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    row.as_array()
                        .map(|r| r.iter().filter_map(Value::as_i64).collect())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every generation setting of `golden.json` (greedy, beam search,
/// repetition penalty, minimum lengths, prompts, interpolated positions)
/// on the device, all five images in one batch.
pub fn tiny_generation(blip: &Path, device: Device) -> Result<Check> {
    let dir = blip.join("tiny-caption");
    let (model, _) = BlipForConditionalGeneration::from_dir(&dir, device)?;
    let tokenizer = BlipTokenizer::from_dir(&dir, &model.config().text_config)?;
    let golden = read_json(&blip.join("golden.json"))?;
    let tensors = blip.join("golden.safetensors");
    let Some(settings) = golden["caption"]["generate"].as_object() else {
        bail!("golden.json has no caption.generate settings");
    };
    let mut mismatches = Vec::new();
    for (name, setting) in settings {
        let config = GenerationConfig::from_transformers_kwargs(&setting["kwargs"]);
        let prompt = tokenizer.decoder_prompt(setting["prompt"].as_str())?;
        let interpolate = setting["interpolate_pos_encoding"]
            .as_bool()
            .unwrap_or(false);
        let pixels = tensor_from(
            &tensors,
            if interpolate {
                "pixel_values_48"
            } else {
                "pixel_values"
            },
        )?
        .to_device(device);
        let embeds = {
            let _guard = no_grad_guard();
            model.encode_images(&pixels, interpolate)?
        };
        let ids = model.generate(&embeds, &prompt, &config)?;
        if ids != id_rows(&setting["single_ids"]) {
            mismatches.push(name.clone());
        }
    }
    Ok(Check::new(
        "tiny_blip_token_ids_equal_cpu_fixtures",
        mismatches.is_empty(),
        json!({"settings": settings.len(), "mismatched": mismatches}),
    ))
}

/// BERTScore P/R/F of the tiny RoBERTa's 306 pairs on the device against
/// bert-score's CPU values, within 1e-4.
pub fn bertscore(roberta: &Path, device: Device) -> Result<Check> {
    let golden = read_json(&roberta.join("golden.json"))?;
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let cands = strings(&golden["cands"]);
    let refs: Vec<Vec<String>> = golden["refs"]
        .as_array()
        .map(|a| a.iter().map(strings).collect())
        .unwrap_or_default();
    let layer = golden["layer"]
        .as_u64()
        .context("golden.json has no layer")? as usize;
    let scorer = BertScorer::from_dir(&roberta.join("tiny-roberta"), layer, device)?;
    let cands: Vec<&str> = cands.iter().map(String::as_str).collect();
    let scores = bert_score_with(
        &scorer,
        &cands,
        &refs,
        &BertScoreOptions {
            idf: false,
            batch_size: golden["batch_size"].as_u64().map(|b| b as usize),
        },
    )?;
    let mut max_diff = 0.0f64;
    let expected = golden["plain"].as_array().context("no plain scores")?;
    for (got, want) in scores.values.iter().zip(expected) {
        for (value, w) in [got.precision, got.recall, got.f1]
            .iter()
            .zip(want.as_array().into_iter().flatten())
        {
            let diff = match w.as_f64() {
                Some(w) => (value - w).abs(),
                None if value.is_nan() => 0.0,
                None => f64::INFINITY,
            };
            max_diff = max_diff.max(diff);
        }
    }
    let pairs = scores.values.len();
    Ok(Check::new(
        "bertscore_equals_bert_score_within_1e-4",
        pairs == expected.len() && max_diff <= 1e-4,
        json!({"pairs": pairs, "max_abs_diff": max_diff}),
    ))
}

pub(crate) const CAPTIONS: [&str; 4] = [
    "a chest x-ray with a left pleural effusion",
    "frontal radiograph showing cardiomegaly",
    "right upper lobe consolidation",
    "normal chest radiograph",
];

/// A training CSV of `rows` fixture images with cycling captions.
fn training_csv(blip: &Path, work: &Path, rows: usize) -> Result<PathBuf> {
    let images = ["rgb_wide", "grey", "rgba", "palette", "rgb_large"];
    let mut text = String::from("id,pdf_hash,image_path,caption,raw_caption\n");
    for i in 0..rows {
        let image = blip
            .join("images")
            .join(format!("{}.png", images[i % images.len()]));
        let caption = CAPTIONS[i % CAPTIONS.len()];
        text += &format!("f{i},p{i},{},{caption},{caption}\n", image.display());
    }
    let path = work.join(format!("train-{rows}.csv"));
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

pub(crate) fn tiny_config(
    blip: &Path,
    work: &Path,
    name: &str,
    rows: usize,
) -> Result<TrainConfig> {
    let mut c = TrainConfig::default();
    c.data.train_csv = training_csv(blip, work, rows)?;
    c.data.workers = 1;
    c.model.base_model = blip.join("tiny-caption");
    c.run.runs_dir = work.join("runs");
    c.run.name = name.into();
    c.run.log_every = 1;
    c.optim.lr = 1e-3;
    c.loss.kind = LossKind::CePlusContrastive;
    c.loss.contrastive_weight = 0.1;
    let run = c.run.runs_dir.join(name);
    if run.exists() {
        std::fs::remove_dir_all(&run).with_context(|| format!("cannot clear {}", run.display()))?;
    }
    Ok(c)
}

pub(crate) struct Quiet;
impl Observer for Quiet {}

/// Raises the stop flag after a given step, as Ctrl-C would.
struct StopAt(usize, AtomicBool);
impl Observer for StopAt {
    fn step(&self, step: usize, _: f64, _: f64) {
        if step == self.0 {
            self.1.store(true, Ordering::SeqCst);
        }
    }
}

pub(crate) fn losses(run_dir: &Path) -> Result<Vec<f64>> {
    let text = std::fs::read_to_string(run_dir.join("metrics.jsonl"))?;
    text.lines()
        .map(|l| Ok(serde_json::from_str::<MetricsRow>(l)?))
        .filter_map(|r: Result<MetricsRow>| r.map(|r| r.train_loss).transpose())
        .collect()
}

/// The first three training losses of the tiny model in each precision on
/// the device, against fp32 on the CPU: the same weights and batches, so
/// only arithmetic separates them.
pub fn training_loss(blip: &Path, work: &Path, device: Device) -> Result<Check> {
    let run = |name: &str, precision: Precision, device: Device| -> Result<Vec<f64>> {
        let mut c = tiny_config(blip, work, name, 12)?;
        c.optim.precision = precision;
        c.optim.micro_batch = 4;
        c.optim.accumulation = 1;
        c.optim.max_steps = Some(3);
        let summary = Trainer::new(c, device, false)?.run(&Quiet, &AtomicBool::new(false))?;
        losses(&summary.run_dir)
    };
    let cpu = run("loss-cpu-fp32", Precision::F32, Device::Cpu)?;
    let mut detail = json!({"cpu_fp32": cpu});
    let mut passed = true;
    // fp32 on CUDA may use TF32 convolutions (cuDNN's default), hence 1e-3.
    for (precision, tolerance) in [(Precision::F32, 1e-3), (Precision::Bf16, 2e-2)] {
        let ours = run(&format!("loss-device-{precision}"), precision, device)?;
        let relative = ours
            .iter()
            .zip(&cpu)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1e-12))
            .fold(0.0, f64::max);
        passed &= ours.len() == cpu.len() && relative <= tolerance;
        detail[format!("device_{precision}")] = json!({
            "losses": ours,
            "max_relative_diff_to_cpu_fp32": relative,
            "tolerance": tolerance,
        });
    }
    Ok(Check::new(
        "training_loss_on_device_equals_cpu",
        passed,
        detail,
    ))
}

pub(crate) fn weights(dir: &Path) -> Result<Vec<(String, Tensor)>> {
    let (model, _) = BlipForConditionalGeneration::from_dir(dir, Device::Cpu)?;
    let mut v: Vec<_> = model.vars().variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}

pub(crate) fn max_weight_diff(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> f64 {
    a.iter()
        .zip(b)
        .map(|((_, x), (_, y))| (x - y).abs().max().double_value(&[]))
        .fold(0.0, f64::max)
}

/// A run stopped after step 2 of 4 and resumed, against the same run
/// uninterrupted, twice: whether the device is deterministic at all, and
/// whether resuming changes anything beyond that.
pub fn resume(blip: &Path, work: &Path, device: Device) -> Result<Check> {
    let config = |name: &str| -> Result<TrainConfig> {
        let mut c = tiny_config(blip, work, name, 8)?;
        c.optim.micro_batch = 2;
        c.optim.accumulation = 2;
        c.optim.epochs = 2; // two steps per epoch
        c.data.random_crop = true;
        Ok(c)
    };
    let mut straight = Vec::new();
    for name in ["resume-straight-a", "resume-straight-b"] {
        let s = Trainer::new(config(name)?, device, false)?.run(&Quiet, &AtomicBool::new(false))?;
        straight.push(weights(&s.run_dir.join("checkpoints/latest"))?);
    }
    let c = config("resume-cut")?;
    let stopper = StopAt(2, AtomicBool::new(false));
    let cut = Trainer::new(c.clone(), device, false)?.run(&stopper, &stopper.1)?;
    let resumed = Trainer::new(c, device, true)?.run(&Quiet, &AtomicBool::new(false))?;
    let resumed = weights(&resumed.run_dir.join("checkpoints/latest"))?;
    let run_to_run = max_weight_diff(&straight[0], &straight[1]);
    let resume_diff = max_weight_diff(&straight[0], &resumed);
    let deterministic = run_to_run == 0.0;
    // Bit-identical where the device repeats itself; elsewhere, a resume
    // may differ by no more than two uninterrupted runs do.
    let passed = cut.steps == 2
        && (resume_diff == 0.0 || (!deterministic && resume_diff <= 10.0 * run_to_run));
    Ok(Check::new(
        "resume_bit_identical_where_deterministic",
        passed,
        json!({
            "interrupted_at_step": cut.steps,
            "deterministic": deterministic,
            "max_abs_diff_between_two_uninterrupted_runs": run_to_run,
            "max_abs_diff_resumed_vs_uninterrupted": resume_diff,
        }),
    ))
}
