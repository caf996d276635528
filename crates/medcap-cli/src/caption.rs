//! `medcap caption` and `medcap itm`: BLIP captions and image-text match
//! scores for image files, with a bad image reported and skipped.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use medcap_dataset::prepare::Progress;
use medcap_metrics::clipscore::{ClipScoreForm, ClipScoreSettings, cosine};
use medcap_model::blip::Precision;
use medcap_model::generation::{GenerationConfig, Sampling};
use medcap_model::image_text::{ClipScorer, load_encoder};
use medcap_model::pipeline::{Captioner, Matcher};
use medcap_model::preprocess::RgbImage;

use crate::dist::DistArgs;
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

/// Decoding settings left unset come from the model, as in transformers'
/// `generate(**inputs)`: the keys its config.json stores in `text_config`
/// (`num_beams`, `max_length`, `min_length`, `no_repeat_ngram_size`,
/// `repetition_penalty`, `length_penalty`, `do_sample`, `top_k`, `top_p`,
/// `temperature`, ...; `generation_config.json` is not read for BLIP,
/// as transformers does not read it), else transformers' defaults. Each
/// option given here overrides the model's setting; the settings taken
/// from the model are logged when captioning starts.
#[derive(Debug, Args)]
#[command(
    after_help = "Decoding options left unset take the model's text_config settings \
                        (num_beams, max_length, min_length, no_repeat_ngram_size, ...), as \
                        transformers' generate does; the defaults shown apply when the model \
                        stores none."
)]
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
    /// Most new tokens per caption [default: the model's max_new_tokens or
    /// max_length, else 20].
    #[arg(long)]
    max_new_tokens: Option<usize>,
    /// No [SEP] before this many new tokens [default: the model's
    /// min_length / min_new_tokens, else 0].
    #[arg(long)]
    min_new_tokens: Option<usize>,
    /// Beam search with this many beams (1: greedy) [default: the model's
    /// num_beams, else 1].
    #[arg(long)]
    num_beams: Option<usize>,
    /// Beam scores are divided by length^this [default: the model's, else 1.0].
    #[arg(long)]
    length_penalty: Option<f64>,
    /// Penalty on tokens already generated (1: none) [default: the model's, else 1.0].
    #[arg(long)]
    repetition_penalty: Option<f64>,
    /// No n-gram of this many tokens twice in a caption (0: off) [default:
    /// the model's no_repeat_ngram_size, else 0].
    #[arg(long)]
    no_repeat_ngram_size: Option<usize>,
    /// Text every caption starts with (e.g. "a picture of"); removed from the printed caption.
    #[arg(long)]
    prompt: Option<String>,
    /// Sample instead of searching [default: the model's do_sample].
    #[arg(long, conflicts_with = "no_sample")]
    sample: bool,
    /// Search even when the model's text_config sets do_sample.
    #[arg(long)]
    no_sample: bool,
    /// Nucleus sampling threshold [default: the model's top_p, else 1.0].
    #[arg(long, requires = "sample")]
    top_p: Option<f64>,
    /// Sample among this many most likely tokens (0: all) [default: the
    /// model's top_k, else 50].
    #[arg(long, requires = "sample")]
    top_k: Option<usize>,
    /// Sampling temperature [default: the model's, else 1.0].
    #[arg(long, requires = "sample")]
    temperature: Option<f64>,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0, requires = "sample")]
    seed: u64,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// CLIP-guided reranking: generate K candidates per image (the decoding above,
    /// then K-1 sampled captions with seeds seed+1..) and keep the one --rerank-model
    /// scores highest against the image. Costs K decoding passes per image and one
    /// encoder pass per candidate.
    #[arg(long, value_name = "K", requires = "rerank_model", value_parser = clap::value_parser!(u64).range(2..))]
    rerank: Option<u64>,
    /// The image-text encoder that reranks: a Hugging Face CLIP directory, an
    /// open_clip directory (BiomedCLIP) or a BLIP retrieval checkpoint. Scoring the
    /// chosen captions later with the same encoder is circular.
    #[arg(long, value_name = "DIR", requires = "rerank")]
    rerank_model: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: CaptionFormat,
    /// Image files (PNG or JPEG).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[command(flatten)]
    dist: DistArgs,
}

/// The model's settings (`model`, from its text_config) with every option
/// the user gave on top.
fn generation_config(args: &CaptionArgs, model: GenerationConfig) -> GenerationConfig {
    let mut config = model;
    let set = |option: Option<usize>, value: &mut usize| {
        if let Some(v) = option {
            *value = v;
        }
    };
    set(args.max_new_tokens, &mut config.max_new_tokens);
    set(args.min_new_tokens, &mut config.min_new_tokens);
    set(args.num_beams, &mut config.num_beams);
    set(args.no_repeat_ngram_size, &mut config.no_repeat_ngram_size);
    config.length_penalty = args.length_penalty.unwrap_or(config.length_penalty);
    config.repetition_penalty = args.repetition_penalty.unwrap_or(config.repetition_penalty);
    if args.no_sample {
        config.sampling = None;
    } else if args.sample || config.sampling.is_some() {
        let base = config.sampling.unwrap_or_default();
        config.sampling = Some(Sampling {
            temperature: args.temperature.unwrap_or(base.temperature),
            top_k: args.top_k.unwrap_or(base.top_k),
            top_p: args.top_p.unwrap_or(base.top_p),
            seed: args.seed,
        });
    }
    config
}

/// Whether two paths name the same directory.
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// A caption with, when reranked, every candidate and its CLIPScore.
type Ranked = (
    Result<medcap_model::pipeline::Caption, medcap_model::ModelError>,
    Option<Vec<(String, f64)>>,
);

/// CLIP-guided reranking of `k` candidates per image.
struct Reranker {
    scorer: ClipScorer,
    k: usize,
}

impl Reranker {
    /// For a batch captioned with `config` (`first`): K-1 more candidates
    /// per image by sampling, each candidate's CLIPScore against its image
    /// (Hessel's form and prefix), the highest kept (the first on a tie).
    fn choose(
        &self,
        captioner: &Captioner,
        paths: &[PathBuf],
        first: Vec<Result<medcap_model::pipeline::Caption, medcap_model::ModelError>>,
        prompt: Option<&str>,
        config: &GenerationConfig,
    ) -> Result<Vec<Ranked>> {
        let mut candidates: Vec<Vec<medcap_model::pipeline::Caption>> =
            first.iter().map(|_| Vec::new()).collect();
        let base = config.sampling.unwrap_or_default();
        for k in 1..self.k {
            let sampled = GenerationConfig {
                num_beams: 1,
                sampling: Some(Sampling {
                    seed: base.seed.wrapping_add(k as u64),
                    ..base
                }),
                ..config.clone()
            };
            captioner.caption_files(
                paths,
                prompt,
                &sampled,
                paths.len().max(1),
                |_, results| -> Result<(), medcap_model::ModelError> {
                    for (c, r) in candidates.iter_mut().zip(results) {
                        if let Ok(caption) = r {
                            c.push(caption);
                        }
                    }
                    Ok(())
                },
            )?;
        }
        let mut out = Vec::with_capacity(paths.len());
        for ((path, first), mut more) in paths.iter().zip(first).zip(candidates) {
            let Ok(first) = first else {
                out.push((first, None));
                continue;
            };
            more.insert(0, first);
            let image = self
                .scorer
                .image_embeddings(&[path.as_path()])?
                .pop()
                .context("no image embedding")?
                .map_err(|e| anyhow::anyhow!(e))?;
            let texts: Vec<&str> = more.iter().map(|c| c.text.as_str()).collect();
            let vectors = self.scorer.text_embeddings(&texts)?;
            let scores: Vec<f64> = vectors.iter().map(|v| cosine(&image, v)).collect();
            // The highest cosine (CLIPScore clamps at 0, which would tie
            // every candidate below it).
            let best = (0..scores.len())
                .fold(0, |best, i| if scores[i] > scores[best] { i } else { best });
            let listed = texts
                .iter()
                .zip(&scores)
                .map(|(t, c)| ((*t).to_owned(), clip_score_of_cosine(*c)))
                .collect();
            out.push((Ok(more.swap_remove(best)), Some(listed)));
        }
        Ok(out)
    }
}

/// Hessel's CLIPScore of a cosine.
fn clip_score_of_cosine(cos: f64) -> f64 {
    ClipScoreForm::Hessel.weight() * cos.max(0.0)
}

pub fn caption(args: &CaptionArgs) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let (group, device) = crate::dist::join(&args.dist, &args.device)?;
    if let Some(group) = &group {
        crate::dist::same_options(group, args)?;
    }
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
    let (model_settings, from_model) = captioner
        .model_generation(args.prompt.as_deref(), args.max_new_tokens)
        .with_context(|| {
            format!(
                "the decoding settings of {}",
                args.model.join("config.json").display()
            )
        })?;
    if !from_model.is_empty() {
        tracing::info!(
            "decoding settings from the model's text_config: {} (options given override them)",
            from_model.join(", ")
        );
    }
    let config = generation_config(args, model_settings);
    let reranker = match (&args.rerank, &args.rerank_model) {
        (Some(k), Some(dir)) => {
            if group.is_some() {
                bail!("--rerank runs in one process; run it without torchrun");
            }
            if same_dir(dir, &args.model) {
                tracing::warn!(
                    "--rerank-model is the captioning model itself: its ITC heads judge its own \
                     captions (circular)"
                );
            }
            let encoder = load_encoder(dir, device)
                .with_context(|| format!("cannot load the reranking encoder {}", dir.display()))?;
            Some(Reranker {
                scorer: ClipScorer::new(
                    encoder,
                    ClipScoreSettings::defaults(ClipScoreForm::Hessel),
                    args.batch_size,
                ),
                k: *k as usize,
            })
        }
        _ => None,
    };

    let bars = Bars::new();
    // Under torchrun rank 0 shows the progress of all.
    if group.as_ref().is_none_or(|g| g.rank() == 0) {
        bars.begin("captioning", Some(args.images.len() as u64));
    }
    let mut failures = 0usize;
    let mut out = medcap_cli::results_out::results_out();
    let prompt = args.prompt.as_deref();
    let write = |paths: &[PathBuf],
                 results: Vec<
        Result<medcap_model::pipeline::Caption, medcap_model::ModelError>,
    >|
     -> Result<()> {
        let ranked = match &reranker {
            Some(r) => r.choose(&captioner, paths, results, prompt, &config)?,
            None => results.into_iter().map(|c| (c, None)).collect(),
        };
        // Results go out in input order, failures included, so that line
        // N of the output is about image N.
        for (path, (result, candidates)) in paths.iter().zip(ranked) {
            match (result, args.format) {
                (Ok(caption), CaptionFormat::Text) => {
                    writeln!(out, "{}\t{}", path.display(), caption.text)?
                }
                (Ok(caption), CaptionFormat::Jsonl) => {
                    let mut row = serde_json::json!({
                        "image": path.display().to_string(),
                        "caption": caption.text,
                        "token_ids": caption.token_ids,
                    });
                    if let Some(c) = candidates {
                        row["rerank"] = serde_json::json!(
                            c.iter()
                                .map(|(text, clip_s)| serde_json::json!({"caption": text, "clip_s": clip_s}))
                                .collect::<Vec<_>>()
                        );
                    }
                    writeln!(out, "{row}")?
                }
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
    };
    match &group {
        // Under torchrun each rank captions its share; rank 0 writes all.
        Some(group) => captioner.caption_files_sharded(
            group,
            &args.images,
            prompt,
            &config,
            args.batch_size,
            write,
        )?,
        None => captioner.caption_files(&args.images, prompt, &config, args.batch_size, write)?,
    }
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
    #[command(flatten)]
    dist: DistArgs,
}

pub fn itm(args: &ItmArgs) -> Result<()> {
    let (group, device) = crate::dist::join(&args.dist, &args.device)?;
    if let Some(group) = &group {
        crate::dist::same_options(group, args)?;
    }
    let matcher = Matcher::from_dir(&args.model, device)
        .with_context(|| format!("cannot load the retrieval model {}", args.model.display()))?;
    let image = RgbImage::open(&args.image)?;
    let texts: Vec<&str> = args.text.iter().map(String::as_str).collect();
    let scores = match &group {
        // Under torchrun each rank scores a share of the texts; rank 0 writes.
        Some(group) => {
            let scores = matcher
                .score_sharded(group, &image, &texts)
                .context("scoring failed")?;
            if group.rank() != 0 {
                return Ok(());
            }
            scores
        }
        None => matcher.score(&image, &texts).context("scoring failed")?,
    };
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
