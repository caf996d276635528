//! The training loop, in the manner of burn-train's learner: micro-batches
//! accumulated into optimizer steps ([`step`]), validation
//! ([`validation`]) with an early-stopping strategy ([`early_stopping`]),
//! a checkpoint policy ([`checkpointing`]), resume ([`resume`]), the
//! contrastive heads ([`heads`]), the metrics log ([`progress_log`]) and the
//! [`Observer`] that shows progress; a clean stop on a non-finite loss or an
//! interrupt.

mod checkpointing;
pub mod early_stopping;
mod heads;
mod observer;
pub mod parallel;
mod progress_log;
mod resume;
mod step;
mod validation;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use medcap_model::blip::BlipForConditionalGeneration;
use medcap_model::preprocess::ImageProcessor;
use medcap_model::tokenizer::BlipTokenizer;
use tch::{Device, Tensor};

pub use checkpointing::CheckpointPolicy;
pub use observer::{LogObserver, Observer};
pub use parallel::{Replicas, Traffic};

use crate::config::Precision;
use crate::config::{LossKind, TrainConfig};
use crate::data::{self, Augment, CaptionExample, Prefetcher};
use crate::error::TrainError;
use crate::loss_scale::LossScaler;
use crate::optim::Adam;
use crate::run::{RunDir, TrainState};
use heads::Heads;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All steps done.
    Finished,
    /// Validation stopped improving for `early_stopping_patience` validations.
    EarlyStopped,
    /// The stop flag was raised; a checkpoint was written first.
    Interrupted,
}

/// What a run leaves behind.
#[derive(Debug, Clone)]
pub struct Summary {
    /// How it ended.
    pub outcome: Outcome,
    /// Optimizer steps done in total.
    pub steps: usize,
    /// Best validation loss, if validation ran.
    pub best_val_loss: Option<f64>,
    /// The run directory.
    pub run_dir: PathBuf,
    /// The checkpoint to use: best by validation loss, else the latest.
    pub checkpoint: PathBuf,
    /// Training images skipped because they could not be read.
    pub skipped_images: usize,
}

/// A configured training run.
pub struct Trainer {
    config: TrainConfig,
    device: Device,
    model: BlipForConditionalGeneration,
    heads: Option<Heads>,
    tokenizer: BlipTokenizer,
    processor: ImageProcessor,
    train: Arc<Vec<CaptionExample>>,
    val: Vec<CaptionExample>,
    run: RunDir,
    optimizer: Adam,
    state: TrainState,
    /// Running sums for the next metrics row.
    pending_loss: (f64, usize),
    pending_images: usize,
    pending_since: Instant,
    /// Reasons of the images skipped in the current epoch, summarised at its end.
    skipped_in_epoch: Vec<String>,
    /// The global gradient norm of the last update, before clipping.
    last_grad_norm: Option<f64>,
    /// The processes of a data-parallel run (one alone).
    replicas: Replicas,
}

fn trainable(
    model: &BlipForConditionalGeneration,
    heads: Option<&Heads>,
    freeze_vision: bool,
) -> Vec<(String, Tensor)> {
    let mut params: Vec<(String, Tensor)> = model
        .vars()
        .variables()
        .into_iter()
        .filter(|(name, _)| !(freeze_vision && name.starts_with("vision_model.")))
        .collect();
    if let Some(h) = heads {
        params.extend(
            h.vars
                .variables()
                .into_iter()
                .map(|(n, t)| (format!("heads.{n}"), t)),
        );
    }
    params.sort_by(|a, b| a.0.cmp(&b.0));
    params
}

impl Trainer {
    /// Prepares the run directory and loads the data and the model; with
    /// `resume`, continues from the run's latest checkpoint when it has one.
    pub fn new(config: TrainConfig, device: Device, resume: bool) -> Result<Self, TrainError> {
        Self::with_replicas(config, device, resume, Replicas::single())
    }

    /// [`Self::new`] as one rank of a data-parallel run: rank 0 prepares
    /// the run directory while the others wait, every rank loads the model
    /// and takes rank 0's parameters. `optim.accumulation` micro-batches
    /// still make one optimizer step, shared among the ranks.
    ///
    /// # Errors
    /// As [`Self::new`]; [`TrainError::Config`] when the number of
    /// processes does not divide `optim.accumulation`; a distributed error
    /// when the ranks were started with different configurations or a
    /// rank failed.
    pub fn with_replicas(
        config: TrainConfig,
        device: Device,
        resume: bool,
        replicas: Replicas,
    ) -> Result<Self, TrainError> {
        medcap_io::config::check(&config)?;
        let processes = replicas.size();
        if !config.optim.accumulation.is_multiple_of(processes) {
            return Err(TrainError::Config {
                path: config.run.runs_dir.join(&config.run.name),
                reason: format!(
                    "optim.accumulation {} is not divisible by the {processes} processes; each \
                     process runs an equal share of a step's micro-batches (use a number of \
                     processes that divides it, or change accumulation)",
                    config.optim.accumulation
                ),
            });
        }
        replicas.check_same("configuration", fingerprint(&config, resume))?;
        let opened = if replicas.leader() {
            resume::open_run(&config, resume).map(Some)
        } else {
            Ok(None)
        };
        let (run, resume_from) = match replicas.settle("opening the run directory", opened)? {
            Some(opened) => opened,
            None => resume::follow_run(&config, resume)?,
        };

        // What each rank loads for itself; a failure on any rank stops
        // every rank here, before the collectives of training begin.
        let loaded = (|| -> Result<_, TrainError> {
            let train = data::read_examples(&config.data.train_csv, config.data.limit_train)?;
            let val = match &config.data.val_csv {
                Some(path) => data::read_examples(path, config.data.limit_val)?,
                None => Vec::new(),
            };
            let source = resume_from
                .clone()
                .unwrap_or_else(|| config.model.base_model.clone());
            tch::manual_seed(config.run.seed as i64);
            let (mut model, _) = BlipForConditionalGeneration::from_dir(&source, device)?;
            let tokenizer = BlipTokenizer::from_dir(&source, &model.config().text_config)?;
            let processor =
                ImageProcessor::from_dir(&source, model.config().vision_config.image_size)?;
            check_lengths(&config, &tokenizer, &run.config_path())?;
            if config.model.freeze_vision {
                for (name, var) in model.vars_mut().variables() {
                    if name.starts_with("vision_model.") {
                        let _ = var.set_requires_grad(false);
                    }
                }
            }
            let heads = match config.loss.kind {
                LossKind::Ce => None,
                _ => Some(Heads::load_or_new(
                    &source,
                    (
                        model.config().vision_config.hidden_size,
                        model.config().text_config.hidden_size,
                    ),
                    config.loss.projection_dim,
                    device,
                    config.run.seed,
                )?),
            };
            Ok((train, val, model, tokenizer, processor, heads))
        })();
        let (train, val, model, tokenizer, processor, heads) =
            replicas.settle("loading the data and the model", loaded)?;
        // Every rank starts from rank 0's weights, as DistributedDataParallel does.
        replicas.broadcast(&trainable(&model, heads.as_ref(), false))?;
        let mut optimizer = Adam::new(
            trainable(&model, heads.as_ref(), config.model.freeze_vision),
            &config.optim,
        );
        let restored = match &resume_from {
            Some(dir) => resume::restore(dir, &mut optimizer, &run, replicas.leader()),
            None => Ok(TrainState::default()),
        };
        let mut state = replicas.settle("restoring the checkpoint", restored)?;
        // Every rank must continue from the same checkpoint: one that finds
        // none (a run directory not shared with rank 0) would start over.
        replicas.check_same(
            "checkpoint to continue from (every rank must see rank 0's run directory)",
            resume_fingerprint(resume_from.is_some(), &state),
        )?;
        if config.optim.precision == Precision::F16 && state.loss_scale.is_none() {
            state.loss_scale = Some(LossScaler::default());
        }
        Ok(Self {
            config,
            device,
            model,
            heads,
            tokenizer,
            processor,
            train: Arc::new(train),
            val,
            run,
            optimizer,
            state,
            pending_loss: (0.0, 0),
            pending_images: 0,
            pending_since: Instant::now(),
            skipped_in_epoch: Vec::new(),
            last_grad_norm: None,
            replicas,
        })
    }

    /// The processes of this run.
    pub fn replicas(&self) -> &Replicas {
        &self.replicas
    }

    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        self.run.root()
    }

    /// Optimizer steps the whole run takes.
    pub fn total_steps(&self) -> usize {
        let o = &self.config.optim;
        let per_epoch =
            data::batches_per_epoch(self.train.len(), o.micro_batch).div_ceil(o.accumulation);
        let all = per_epoch * o.epochs;
        match o.max_steps {
            Some(m) if o.epochs == 0 => m,
            Some(m) => m.min(all),
            None => all,
        }
    }

    fn checkpoint_policy(&self) -> CheckpointPolicy {
        CheckpointPolicy {
            every: self.config.run.checkpoint_every,
        }
    }

    /// The model being trained.
    pub fn model(&self) -> &BlipForConditionalGeneration {
        &self.model
    }

    /// Runs until done, early-stopped, or `stop` is raised (checked after
    /// every optimizer step; a checkpoint is written before returning).
    pub fn run(
        &mut self,
        observer: &dyn Observer,
        stop: &AtomicBool,
    ) -> Result<Summary, TrainError> {
        let total = self.total_steps();
        observer.started(total, self.state.step);
        let mut outcome = Outcome::Finished;
        'epochs: while !self.state.finished && self.state.step < total {
            let epoch = self.state.epoch;
            let steps_before = self.state.step;
            let mut batches_seen = 0;
            let order = data::epoch_order(self.train.len(), self.config.run.seed, epoch);
            let mut prefetch = Prefetcher::start(
                Arc::clone(&self.train),
                order,
                self.config.optim.micro_batch,
                self.state.batch_in_epoch,
                self.processor.clone(),
                Augment {
                    random_crop: self.config.data.random_crop,
                    horizontal_flip: self.config.data.horizontal_flip,
                },
                self.config.run.seed,
                epoch,
                self.config.data.workers,
                (self.replicas.rank(), self.replicas.size()),
            );
            let per_epoch =
                data::batches_per_epoch(self.train.len(), self.config.optim.micro_batch);
            loop {
                // The step's micro-batches in the one-process order; this
                // rank runs positions rank, rank + N, ... of them.
                let consumed = self
                    .config
                    .optim
                    .accumulation
                    .min(per_epoch.saturating_sub(self.state.batch_in_epoch));
                if consumed == 0 {
                    break;
                }
                let mut group = Vec::with_capacity(consumed);
                for position in (self.replicas.rank()..consumed).step_by(self.replicas.size()) {
                    match prefetch.next_batch() {
                        Some(batch) => group.push((position, batch)),
                        None => break,
                    }
                }
                batches_seen += consumed;
                self.optimizer_step(group, total)?;
                self.state.batch_in_epoch += consumed;
                observer.step(self.state.step, self.pending_mean(), self.current_lr(total));
                let step = self.state.step;
                if step.is_multiple_of(self.config.run.log_every.max(1)) || step == total {
                    self.log_row(observer, None)?;
                }
                let every = self.config.run.eval_every;
                if every > 0 && step.is_multiple_of(every) && self.validate_and_track(observer)? {
                    outcome = Outcome::EarlyStopped;
                    break 'epochs;
                }
                if self.checkpoint_policy().after_step(step) {
                    self.save_checkpoint("latest")?;
                }
                medcap_io::crash::point("train-step");
                if self.replicas.any(stop.load(Ordering::SeqCst))? {
                    drop(prefetch);
                    self.report_skipped(epoch);
                    self.save_checkpoint("latest")?;
                    return Ok(self.summary(Outcome::Interrupted));
                }
                if step >= total {
                    break;
                }
            }
            drop(prefetch);
            let first_skipped = self.report_skipped(epoch);
            if self.state.step == steps_before && batches_seen > 0 {
                // A whole epoch without one readable image: more epochs would loop forever.
                return Err(TrainError::NoData {
                    skipped: self.state.skipped_images,
                    first: first_skipped.unwrap_or_default(),
                });
            }
            if self.state.step < total
                || self.state.batch_in_epoch
                    >= data::batches_per_epoch(self.train.len(), self.config.optim.micro_batch)
            {
                self.state.epoch += 1;
                self.state.batch_in_epoch = 0;
            }
            if self.config.run.eval_every == 0 && self.validate_and_track(observer)? {
                outcome = Outcome::EarlyStopped;
                break;
            }
            if self.checkpoint_policy().after_epoch() {
                self.save_checkpoint("latest")?;
            }
        }
        self.state.finished = true;
        self.save_checkpoint("latest")?;
        self.write_plot()?;
        Ok(self.summary(outcome))
    }
}

/// What every rank of a run must agree on: the configuration and whether
/// it resumes (a hash; compared across ranks at the start).
fn fingerprint(config: &TrainConfig, resume: bool) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    // A configuration always serialises; an error would only make every
    // rank hash the same empty text.
    serde_json::to_string(config)
        .unwrap_or_default()
        .hash(&mut hasher);
    resume.hash(&mut hasher);
    hasher.finish()
}

/// Where a rank continues from: whether it resumes, and the step and data
/// position of its checkpoint.
fn resume_fingerprint(resumes: bool, state: &TrainState) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    (resumes, state.step, state.epoch, state.batch_in_epoch).hash(&mut hasher);
    hasher.finish()
}

/// `data.max_tokens` within the model's position table, and room after the
/// prompt for at least one caption token: a longer caption would index
/// past the table (libtorch aborts the step there).
fn check_lengths(
    config: &TrainConfig,
    tokenizer: &BlipTokenizer,
    shown: &Path,
) -> Result<(), TrainError> {
    let bad = |reason: String| TrainError::Config {
        path: shown.to_owned(),
        reason,
    };
    let positions = tokenizer.max_positions();
    if config.data.max_tokens > positions {
        return Err(bad(format!(
            "data.max_tokens {} exceeds the model's {positions} positions \
             (text_config.max_position_embeddings); set it to {positions} or less",
            config.data.max_tokens
        )));
    }
    if let Some(prompt) = config
        .data
        .prompt
        .as_deref()
        .filter(|p| !p.trim().is_empty())
    {
        // `[DEC]` and the prompt's pieces, then a caption token and `[SEP]`.
        let prompt_tokens = tokenizer.decoder_prompt(Some(prompt.trim()))?.len();
        if prompt_tokens + 2 > config.data.max_tokens {
            return Err(bad(format!(
                "data.prompt takes {prompt_tokens} of data.max_tokens {} tokens, leaving no room \
                 for a caption",
                config.data.max_tokens
            )));
        }
    }
    Ok(())
}
