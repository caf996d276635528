//! `medcap caption` and `medcap itm`: BLIP captions and image-text match
//! scores for image files, with a bad image reported and skipped.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use medcap_dataset::prepare::Progress;
use medcap_model::blip::Precision;
use medcap_model::device::DeviceChoice;
use medcap_model::generation::{GenerationConfig, Sampling};
use medcap_model::pipeline::{Captioner, Matcher};
use medcap_model::preprocess::RgbImage;

use crate::progress::Bars;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CaptionFormat {
    /// `PATH<TAB>CAPTION` per image.
    Text,
    /// One JSON object per image: image, caption, token_ids.
    Jsonl,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PrecisionArg {
    Fp32,
    Bf16,
    Fp16,
}

#[derive(Debug, Args)]
pub struct CaptionArgs {
    /// A BLIP captioning checkpoint directory (config.json, model.safetensors,
    /// tokenizer.json, preprocessor_config.json).
    #[arg(long)]
    model: PathBuf,
    /// auto (CUDA when present), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Weights and activations; bf16/fp16 are for CUDA.
    #[arg(long, value_enum, default_value = "fp32")]
    precision: PrecisionArg,
    /// Most new tokens per caption.
    #[arg(long, default_value_t = 20)]
    max_new_tokens: usize,
    /// No [SEP] before this many new tokens.
    #[arg(long, default_value_t = 0)]
    min_new_tokens: usize,
    /// Beam search with this many beams (1: greedy).
    #[arg(long, default_value_t = 1)]
    num_beams: usize,
    /// Beam scores are divided by length^this.
    #[arg(long, default_value_t = 1.0)]
    length_penalty: f64,
    /// Penalty on tokens already generated (1: none).
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f64,
    /// Text every caption starts with (e.g. "a picture of"); removed from the printed caption.
    #[arg(long)]
    prompt: Option<String>,
    /// Sample instead of searching.
    #[arg(long)]
    sample: bool,
    /// Nucleus sampling threshold.
    #[arg(long, default_value_t = 1.0, requires = "sample")]
    top_p: f64,
    /// Sample among this many most likely tokens (0: all).
    #[arg(long, default_value_t = 50, requires = "sample")]
    top_k: usize,
    /// Sampling temperature.
    #[arg(long, default_value_t = 1.0, requires = "sample")]
    temperature: f64,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0, requires = "sample")]
    seed: u64,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: CaptionFormat,
    /// Image files (PNG or JPEG).
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

fn generation_config(args: &CaptionArgs) -> GenerationConfig {
    GenerationConfig {
        max_new_tokens: args.max_new_tokens,
        min_new_tokens: args.min_new_tokens,
        num_beams: args.num_beams,
        length_penalty: args.length_penalty,
        repetition_penalty: args.repetition_penalty,
        sampling: args.sample.then_some(Sampling {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            seed: args.seed,
        }),
    }
}

pub fn caption(args: &CaptionArgs) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let device = args.device.parse::<DeviceChoice>()?.resolve()?;
    let mut captioner = Captioner::from_dir(&args.model, device)
        .with_context(|| format!("cannot load the captioning model {}", args.model.display()))?;
    let precision = match args.precision {
        PrecisionArg::Fp32 => Precision::F32,
        PrecisionArg::Bf16 => Precision::Bf16,
        PrecisionArg::Fp16 => Precision::F16,
    };
    if precision != Precision::F32 && device == medcap_model::tch::Device::Cpu {
        bail!("--precision bf16/fp16 needs a CUDA device; use fp32 on the CPU");
    }
    captioner.model_mut().set_precision(precision);
    let config = generation_config(args);

    let bars = Bars::new();
    bars.begin("captioning", Some(args.images.len() as u64));
    let mut failures = 0usize;
    let mut out = medcap_cli::results_out::results_out();
    captioner.caption_files(
        &args.images,
        args.prompt.as_deref(),
        &config,
        args.batch_size,
        |paths, results| -> Result<()> {
            // Results go out in input order, failures included, so that line
            // N of the output is about image N.
            for (path, result) in paths.iter().zip(results) {
                match (result, args.format) {
                    (Ok(caption), CaptionFormat::Text) => {
                        writeln!(out, "{}\t{}", path.display(), caption.text)?
                    }
                    (Ok(caption), CaptionFormat::Jsonl) => writeln!(
                        out,
                        "{}",
                        serde_json::json!({
                            "image": path.display().to_string(),
                            "caption": caption.text,
                            "token_ids": caption.token_ids,
                        })
                    )?,
                    (Err(err), format) => {
                        failures += 1;
                        eprintln!("error: {err}");
                        if let CaptionFormat::Jsonl = format {
                            writeln!(
                                out,
                                "{}",
                                serde_json::json!({"image": path.display().to_string(), "error": err.to_string()})
                            )?;
                        }
                    }
                }
            }
            // Each batch is out before the next is computed.
            out.flush()?;
            bars.advance(paths.len() as u64);
            Ok(())
        },
    )?;
    bars.end();
    if failures > 0 {
        bail!(
            "{failures} of {} images could not be captioned",
            args.images.len()
        );
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct ItmArgs {
    /// A BLIP retrieval checkpoint directory (e.g. blip-itm-base-coco).
    #[arg(long)]
    model: PathBuf,
    /// auto (CUDA when present), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// The image.
    #[arg(long)]
    image: PathBuf,
    /// Texts to score against the image.
    #[arg(long, required = true, num_args = 1..)]
    text: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: CaptionFormat,
}

pub fn itm(args: &ItmArgs) -> Result<()> {
    let device = args.device.parse::<DeviceChoice>()?.resolve()?;
    let matcher = Matcher::from_dir(&args.model, device)
        .with_context(|| format!("cannot load the retrieval model {}", args.model.display()))?;
    let image = RgbImage::open(&args.image)?;
    let texts: Vec<&str> = args.text.iter().map(String::as_str).collect();
    let scores = matcher.score(&image, &texts).context("scoring failed")?;
    let mut out = medcap_cli::results_out::results_out();
    if let CaptionFormat::Text = args.format {
        writeln!(out, "itm_probability\titc_similarity\ttext")?;
    }
    for (text, s) in texts.iter().zip(scores) {
        match args.format {
            CaptionFormat::Text => writeln!(
                out,
                "{:.6}\t{:.6}\t{text}",
                s.itm_probability, s.itc_similarity
            )?,
            CaptionFormat::Jsonl => writeln!(
                out,
                "{}",
                serde_json::json!({
                    "text": text,
                    "itm_probability": s.itm_probability,
                    "itc_similarity": s.itc_similarity,
                })
            )?,
        }
    }
    out.flush()?;
    Ok(())
}
