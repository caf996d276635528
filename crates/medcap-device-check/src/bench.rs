//! The base-size sections: caption ids against transformers on the same
//! device, half-precision captions against fp32, captioning throughput, and
//! training-step time and peak memory per micro-batch size (each size in a
//! child process, `medcap-device-check step`, so that a size that does not
//! fit fails alone and each peak is its own).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use medcap_model::blip::BlipForConditionalGeneration;
use medcap_model::generation::GenerationConfig;
use medcap_model::precision::{Autocast, Precision, peak_memory, reset_peak_memory};
use medcap_model::preprocess::{ImageProcessor, RgbImage};
use medcap_model::tch::{Device, Kind, Tensor, no_grad_guard};
use medcap_model::tokenizer::BlipTokenizer;
use medcap_train::config::OptimConfig;
use medcap_train::loss::caption_loss_sum;
use medcap_train::optim::Adam;
use medcap_train::targets::caption_targets;
use serde_json::{Value, json};

use crate::checks::id_rows;
use crate::{Check, parse_device};

/// The fixture images every section captions and trains on.
const IMAGES: [&str; 4] = ["rgb_wide", "grey", "rgba", "rgb_large"];
/// Generated tokens per caption in the timings: fixed, so that both sides
/// do the same work whatever they generate.
const NEW_TOKENS: usize = 20;

/// Pixel values of the fixture images at the model's size, repeated to `n` rows.
fn pixels(model_dir: &Path, blip: &Path, image_size: i64, n: usize) -> Result<Tensor> {
    let processor = ImageProcessor::from_dir(model_dir, image_size)?;
    let images = IMAGES
        .iter()
        .map(|name| RgbImage::open(&blip.join("images").join(format!("{name}.png"))))
        .collect::<Result<Vec<_>, _>>()?;
    let four = processor.pixel_values(&images)?;
    let index: Vec<i64> = (0..n as i64).map(|i| i % 4).collect();
    Ok(four.index_select(0, &Tensor::from_slice(&index)))
}

fn load(dir: &Path, device: Device) -> Result<BlipForConditionalGeneration> {
    let (model, _) = BlipForConditionalGeneration::from_dir(dir, device)
        .with_context(|| format!("cannot load {}", dir.display()))?;
    Ok(model)
}

fn generation(num_beams: usize, fixed: bool) -> GenerationConfig {
    GenerationConfig {
        max_new_tokens: NEW_TOKENS,
        min_new_tokens: if fixed { NEW_TOKENS } else { 0 },
        num_beams,
        ..GenerationConfig::default()
    }
}

/// Greedy and beam-3 ids of the four fixture images, and the first-step logits.
fn captions(model: &BlipForConditionalGeneration, pixels: &Tensor) -> Result<(Value, Tensor)> {
    let device = model.device();
    let embeds = {
        let _guard = no_grad_guard();
        model.encode_images(&pixels.to_device(device).to_kind(model_kind(model)), false)?
    };
    let dec = [30522i64];
    let greedy = model.generate(&embeds, &dec, &generation(1, false))?;
    let beam = model.generate(&embeds, &dec, &generation(3, false))?;
    let logits = {
        let _guard = no_grad_guard();
        let rows = embeds.size()[0];
        let ids = Tensor::from_slice(&vec![30522i64; rows as usize])
            .view([rows, 1])
            .to_device(device);
        model
            .decode(&embeds, &ids, None, false)
            .logits
            .select(1, 0)
            .to_kind(Kind::Float)
            .to_device(Device::Cpu)
    };
    Ok((json!({"greedy": greedy, "beam3": beam}), logits))
}

fn model_kind(model: &BlipForConditionalGeneration) -> Kind {
    model
        .vars()
        .variables()
        .values()
        .next()
        .map_or(Kind::Float, Tensor::kind)
}

/// Share of equal sequences and of equal tokens at the same positions.
fn agreement(a: &Value, b: &Value) -> (f64, f64) {
    let (a, b) = (id_rows(a), id_rows(b));
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    let (mut equal, mut total) = (0usize, 0usize);
    for (x, y) in a.iter().zip(&b) {
        total += x.len().max(y.len());
        equal += x.iter().zip(y).take_while(|(p, q)| p == q).count();
    }
    (
        same as f64 / a.len().max(1) as f64,
        equal as f64 / total.max(1) as f64,
    )
}

/// fp32 ids against transformers' on the same device; bf16 and fp16
/// captions against fp32.
pub fn base_checks(
    base: &Path,
    blip: &Path,
    reference: Option<&Value>,
    device: Device,
) -> Result<Vec<Check>> {
    let model = load(base, device)?;
    let size = model.config().vision_config.image_size;
    let pixels = pixels(base, blip, size, 4)?;
    let (fp32, fp32_logits) = captions(&model, &pixels)?;
    drop(model);
    let mut checks = Vec::new();
    let name = "base_fp32_caption_ids_equal_transformers_on_device";
    checks.push(match reference.map(|r| &r["ids"]) {
        None => Check::skipped(name, "no transformers reference (run.sh --no-reference)"),
        Some(theirs) => Check::new(
            name,
            !id_rows(&theirs["greedy"]).is_empty()
                && id_rows(&theirs["greedy"]) == id_rows(&fp32["greedy"])
                && id_rows(&theirs["beam3"]) == id_rows(&fp32["beam3"]),
            json!({"medcap": fp32, "transformers": theirs}),
        ),
    });
    let mut detail = json!({});
    let mut ran = true;
    for precision in [Precision::Bf16, Precision::F16] {
        let outcome = (|| -> Result<Value> {
            let mut model = load(base, device)?;
            model.set_precision(precision);
            let (ids, logits) = captions(&model, &pixels)?;
            let (sequences, tokens) = agreement(&ids["greedy"], &fp32["greedy"]);
            let diff = (&logits - &fp32_logits).abs().max().double_value(&[]);
            Ok(json!({
                "ids": ids,
                "greedy_captions_equal_to_fp32": sequences,
                "greedy_tokens_equal_to_fp32": tokens,
                "max_abs_first_step_logit_diff": diff,
                "largest_abs_fp32_logit": fp32_logits.abs().max().double_value(&[]),
            }))
        })();
        detail[precision.name()] = outcome.unwrap_or_else(|e| {
            ran = false;
            json!({"error": format!("{e:#}")})
        });
    }
    checks.push(Check::new(
        "base_half_precision_captions_against_fp32",
        ran,
        detail,
    ));
    Ok(checks)
}

fn synchronize(device: Device) {
    if let Device::Cuda(index) = device {
        medcap_model::tch::Cuda::synchronize(index as i64);
    }
}

/// Images per second for greedy and beam-3 captioning at batch 1, 8 and 32.
pub fn captioning(base: &Path, blip: &Path, device: Device, images: usize) -> Result<Value> {
    let model = load(base, device)?;
    let size = model.config().vision_config.image_size;
    let all = pixels(base, blip, size, images)?.to_device(device);
    let dec = [30522i64];
    let mut out = Vec::new();
    for num_beams in [1usize, 3] {
        for batch in [1usize, 8, 32] {
            let config = generation(num_beams, true);
            let run = |rows: usize| -> Result<()> {
                for first in (0..rows).step_by(batch) {
                    let n = batch.min(rows - first);
                    let chunk = all.narrow(0, first as i64, n as i64);
                    let embeds = {
                        let _guard = no_grad_guard();
                        model.encode_images(&chunk, false)?
                    };
                    model.generate(&embeds, &dec, &config)?;
                }
                Ok(())
            };
            run(batch.min(images))?; // warm-up
            reset_peak_memory(device);
            synchronize(device);
            let start = Instant::now();
            run(images)?;
            synchronize(device);
            let seconds = start.elapsed().as_secs_f64();
            out.push(json!({
                "num_beams": num_beams,
                "batch": batch,
                "images": images,
                "images_per_second": images as f64 / seconds,
                "peak_bytes": peak_memory(device),
            }));
        }
    }
    Ok(Value::Array(out))
}

/// Training-step time and peak memory per micro-batch size, for fp32,
/// bf16 autocast and fp32 with the vision encoder frozen; sizes double
/// from 4 until one fails (does not fit) or passes `max_micro_batch`.
pub fn training(
    base: &Path,
    blip: &Path,
    device_text: &str,
    max_micro_batch: usize,
) -> Result<Value> {
    let exe = std::env::current_exe().context("cannot find this program")?;
    let mut out = Vec::new();
    for (precision, freeze) in [("fp32", false), ("bf16", false), ("fp32", true)] {
        let mut size = 4;
        let mut largest = None;
        while size <= max_micro_batch {
            let mut cmd = Command::new(&exe);
            cmd.args(["step", "--device", device_text, "--precision", precision])
                .arg("--model")
                .arg(base)
                .arg("--fixtures")
                .arg(blip)
                .args(["--micro-batch", &size.to_string()]);
            if freeze {
                cmd.arg("--freeze-vision");
            }
            let child = cmd.output().context("cannot run a step measurement")?;
            if !child.status.success() {
                let why = String::from_utf8_lossy(&child.stderr);
                out.push(json!({
                    "precision": precision,
                    "freeze_vision": freeze,
                    "micro_batch": size,
                    "failed": why.lines().last().unwrap_or("").to_owned(),
                }));
                break;
            }
            let row: Value = serde_json::from_slice(&child.stdout)
                .context("a step measurement printed no JSON")?;
            out.push(row);
            largest = Some(size);
            size *= 2;
        }
        eprintln!("{precision} freeze_vision={freeze}: largest micro-batch that ran {largest:?}");
    }
    Ok(Value::Array(out))
}

#[derive(clap::Args)]
pub struct StepArgs {
    /// Where to run.
    #[arg(long)]
    device: String,
    /// The captioning checkpoint.
    #[arg(long)]
    model: PathBuf,
    /// The bundle's `blip/` fixtures (images).
    #[arg(long)]
    fixtures: PathBuf,
    /// Images per step.
    #[arg(long)]
    micro_batch: usize,
    /// fp32, bf16 or fp16.
    #[arg(long, default_value = "fp32")]
    precision: String,
    /// Keep the vision encoder fixed.
    #[arg(long)]
    freeze_vision: bool,
    /// Timed steps after one warm-up step.
    #[arg(long, default_value_t = 3)]
    steps: usize,
}

/// Peak resident memory of this process (the CPU's only peak counter).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// One configuration's training steps (captioning cross-entropy, Adam),
/// as medcap-train's step runs them; prints one JSON object.
pub fn step_command(args: &StepArgs) -> Result<()> {
    let device = parse_device(&args.device)?;
    let precision: Precision = args.precision.parse()?;
    if args.micro_batch == 0 || args.steps == 0 {
        bail!("--micro-batch and --steps must be at least 1");
    }
    reset_peak_memory(device);
    let model = load(&args.model, device)?;
    let tokenizer = BlipTokenizer::from_dir(&args.model, &model.config().text_config)?;
    let size = model.config().vision_config.image_size;
    let pixels = pixels(&args.model, &args.fixtures, size, args.micro_batch)?.to_device(device);
    let captions: Vec<String> = (0..args.micro_batch)
        .map(|i| crate::checks::CAPTIONS[i % 4].to_owned())
        .collect();
    let targets = caption_targets(&tokenizer, &captions, None, 40)?;
    let (ids, mask, labels) = (
        targets.input_ids.to_device(device),
        targets.attention_mask.to_device(device),
        targets.labels.to_device(device),
    );
    let mut params: Vec<(String, Tensor)> = model
        .vars()
        .variables()
        .into_iter()
        .filter(|(name, _)| !(args.freeze_vision && name.starts_with("vision_model.")))
        .collect();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let mut optimizer = Adam::new(params, &OptimConfig::default());
    let mut step = || -> Result<()> {
        let loss = {
            let _autocast = Autocast::enter(device, precision)?;
            let embeds = if args.freeze_vision {
                let _guard = no_grad_guard();
                model.encode_images_t(&pixels, false, false)?
            } else {
                model.encode_images_t(&pixels, false, true)?
            };
            let out = model.decode(&embeds, &ids, Some(&mask), true);
            caption_loss_sum(&out.logits, &labels, 0.0).to_kind(Kind::Float)
                / targets.target_tokens as f64
        };
        loss.backward();
        optimizer.update(1e-5);
        optimizer.zero_grad();
        Ok(())
    };
    step()?;
    synchronize(device);
    let start = Instant::now();
    for _ in 0..args.steps {
        step()?;
    }
    synchronize(device);
    let seconds = start.elapsed().as_secs_f64() / args.steps as f64;
    let (peak, source) = match peak_memory(device) {
        Some(bytes) => (Some(bytes), "cuda_max_memory_allocated"),
        None => (peak_rss_bytes(), "process_peak_rss"),
    };
    println!(
        "{}",
        json!({
            "precision": precision.name(),
            "freeze_vision": args.freeze_vision,
            "micro_batch": args.micro_batch,
            "seconds_per_step": seconds,
            "images_per_second": args.micro_batch as f64 / seconds,
            "peak_bytes": peak,
            "peak_source": source,
        })
    );
    Ok(())
}
