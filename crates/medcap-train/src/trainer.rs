//! The training loop: micro-batches accumulated into optimizer steps,
//! validation, best and latest checkpoints, early stopping, resume, and a
//! clean stop on a non-finite loss or an interrupt.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use medcap_model::blip::{BlipForConditionalGeneration, ContrastiveProjections};
use medcap_model::preprocess::ImageProcessor;
use medcap_model::tokenizer::BlipTokenizer;
use tch::{Device, Kind, Tensor, nn};

use crate::config::{LossKind, TrainConfig};
use crate::data::{self, Augment, Batch, CaptionExample, Prefetcher};
use crate::error::TrainError;
use crate::loss::{caption_loss_sum, margin_contrastive_loss};
use crate::optim::{Adam, learning_rate};
use crate::plot::{Series, line_plot};
use crate::run::{MetricsRow, RunDir, TrainState};
use crate::targets::{CaptionTargets, caption_targets};

const HEADS_FILE: &str = "contrastive_heads.safetensors";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";
const STATE_FILE: &str = "state.json";

/// Receives progress; the CLI draws a bar, [`LogObserver`] writes log lines.
pub trait Observer {
    /// The run starts (or resumes at `done` of `total` optimizer steps).
    fn started(&self, _total_steps: usize, _done: usize) {}
    /// An optimizer step finished.
    fn step(&self, _step: usize, _loss: f64, _lr: f64) {}
    /// A logged interval: mean loss and throughput.
    fn logged(&self, _row: &MetricsRow) {}
    /// Validation ran.
    fn validated(&self, _step: usize, _loss: f64, _best: bool) {}
}

/// Progress as `tracing` log lines (what CI logs show).
pub struct LogObserver;

impl Observer for LogObserver {
    fn started(&self, total: usize, done: usize) {
        tracing::info!(total_steps = total, resumed_at = done, "training");
    }

    fn logged(&self, row: &MetricsRow) {
        // Rows without a training loss only carry a validation, which
        // `validated` reports.
        if row.train_loss.is_none() {
            return;
        }
        tracing::info!(
            step = row.step,
            epoch = format!("{:.2}", row.epoch),
            loss = row.train_loss.map(|l| format!("{l:.4}")),
            lr = format!("{:.3e}", row.lr),
            images_per_second = row.images_per_second.map(|r| format!("{r:.1}")),
            "train"
        );
    }

    fn validated(&self, step: usize, loss: f64, best: bool) {
        tracing::info!(step, val_loss = format!("{loss:.4}"), best, "validation");
    }
}

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

/// Image and text projections for the contrastive loss.
struct Heads {
    vars: nn::VarStore,
    projections: ContrastiveProjections,
}

impl Heads {
    /// From `dir/contrastive_heads.safetensors`, or the checkpoint's own
    /// `vision_proj` / `text_proj` (ITM-style checkpoints), or fresh.
    fn load_or_new(
        dir: &Path,
        model: &BlipForConditionalGeneration,
        width: i64,
        device: Device,
        seed: u64,
    ) -> Result<Self, TrainError> {
        let config = model.config();
        let vars = nn::VarStore::new(device);
        let root = vars.root();
        let projections = ContrastiveProjections::new(
            &root,
            config.vision_config.hidden_size,
            config.text_config.hidden_size,
            width,
        );
        let heads = Self { vars, projections };
        heads.seeded_init(seed);
        for file in [dir.join(HEADS_FILE), dir.join("model.safetensors")] {
            if !file.is_file() {
                continue;
            }
            // A base-size model.safetensors is 1 GB: look at its header
            // before loading anything from it.
            let variables = heads.vars.variables();
            let keys = medcap_model::checkpoint::stored_keys(&file)?;
            if !variables.keys().all(|v| keys.contains(v)) {
                continue;
            }
            let stored = Tensor::read_safetensors(&file).map_err(|source| TrainError::Torch {
                context: format!("reading {}", file.display()),
                source,
            })?;
            let found: Vec<_> = stored
                .iter()
                .filter(|(n, _)| variables.contains_key(n))
                .collect();
            if found.len() == variables.len() {
                let _guard = tch::no_grad_guard();
                for (name, tensor) in found {
                    let mut var = variables[name].shallow_clone();
                    if var.size() != tensor.size() {
                        return Err(TrainError::Resume {
                            path: file.clone(),
                            reason: format!(
                                "{name} is {:?}, expected {:?}",
                                tensor.size(),
                                var.size()
                            ),
                        });
                    }
                    var.f_copy_(tensor).map_err(|source| TrainError::Torch {
                        context: format!("loading {name}"),
                        source,
                    })?;
                }
                tracing::info!(file = %file.display(), "contrastive projections loaded");
                return Ok(heads);
            }
        }
        Ok(heads)
    }

    /// torch's default Linear initialisation (uniform within 1/sqrt(fan_in)),
    /// drawn from the run seed rather than libtorch's global generator, so
    /// that fresh projections do not depend on anything else drawing from it.
    fn seeded_init(&self, seed: u64) {
        let _guard = tch::no_grad_guard();
        let mut rng = medcap_dataset::rng::SplitMix64::for_item(seed, 0x4ead5);
        for layer in [&self.projections.vision_proj, &self.projections.text_proj] {
            let bound = 1.0 / (layer.ws.size()[1] as f64).sqrt();
            let tensors = std::iter::once(&layer.ws).chain(layer.bs.as_ref());
            for var in tensors {
                let values: Vec<f32> = (0..var.numel())
                    .map(|_| rng.range_f64(-bound, bound) as f32)
                    .collect();
                let fresh = Tensor::from_slice(&values)
                    .view(var.size().as_slice())
                    .to_device(var.device());
                var.shallow_clone().copy_(&fresh);
            }
        }
    }

    fn save(&self, path: &Path) -> Result<(), TrainError> {
        let mut tensors: Vec<(String, Tensor)> = self
            .vars
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.detach().to_device(Device::Cpu)))
            .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        Tensor::write_safetensors(&tensors, path).map_err(|source| TrainError::Torch {
            context: format!("writing {}", path.display()),
            source,
        })
    }
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

fn step_seed(seed: u64, step: usize) -> i64 {
    let mut rng = medcap_dataset::rng::SplitMix64::for_item(seed, step as u64);
    (rng.next_u64() >> 1) as i64
}

impl Trainer {
    /// Prepares the run directory and loads the data and the model; with
    /// `resume`, continues from the run's latest checkpoint when it has one.
    pub fn new(config: TrainConfig, device: Device, resume: bool) -> Result<Self, TrainError> {
        config
            .check()
            .map_err(|source| medcap_io::config::ConfigError::Invalid {
                path: PathBuf::new(),
                source,
            })?;
        let run = RunDir::create(config.run.runs_dir.join(&config.run.name))?;
        let latest = run.latest();
        let resume_from = match (resume, latest) {
            (true, Some(dir)) => Some(dir),
            (true, None) => {
                tracing::info!(run = %run.root().display(), "no checkpoint to resume from; starting fresh");
                None
            }
            (false, Some(dir)) => {
                return Err(TrainError::Config {
                    path: run.config_path(),
                    reason: format!(
                        "the run directory already has a checkpoint ({}); resume it or choose another run name",
                        dir.display()
                    ),
                });
            }
            (false, None) => None,
        };
        // Paths as stored in the run directory (relative to it where they lie
        // in the same tree), so a moved or copied run directory still resumes.
        let stored = config
            .stored_in(run.root())
            .map_err(|source| TrainError::Io {
                path: run.root().to_owned(),
                source,
            })?;
        medcap_io::config::pin_run_config(&run.config_path(), &stored, resume_from.is_some())?;
        if resume_from.is_none() {
            match std::fs::remove_file(run.metrics_path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(TrainError::Io {
                        path: run.metrics_path(),
                        source: e,
                    });
                }
                _ => {}
            }
        }

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
        let processor = ImageProcessor::from_dir(&source, model.config().vision_config.image_size)?;
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
                &model,
                config.loss.projection_dim,
                device,
                config.run.seed,
            )?),
        };
        let mut optimizer = Adam::new(
            trainable(&model, heads.as_ref(), config.model.freeze_vision),
            &config.optim,
        );
        let mut state = TrainState::default();
        if let Some(dir) = &resume_from {
            let text =
                std::fs::read_to_string(dir.join(STATE_FILE)).map_err(|source| TrainError::Io {
                    path: dir.join(STATE_FILE),
                    source,
                })?;
            state = serde_json::from_str(&text).map_err(|e| TrainError::Resume {
                path: dir.join(STATE_FILE),
                reason: e.to_string(),
            })?;
            optimizer.load(&dir.join(OPTIMIZER_FILE), state.step)?;
            run.truncate_metrics(state.step)?;
            tracing::info!(step = state.step, from = %dir.display(), "resuming");
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
        })
    }

    /// One warning for the images of `epoch` that could not be read: the
    /// first few named, then a count (never a line per image).
    /// Returns the first skipped image's reason.
    fn report_skipped(&mut self, epoch: usize) -> Option<String> {
        const NAMED: usize = 3;
        let skipped = std::mem::take(&mut self.skipped_in_epoch);
        let first = skipped.first().cloned()?;
        let mut named = skipped[..skipped.len().min(NAMED)].join("; ");
        if skipped.len() > NAMED {
            named += &format!(" and {} more", skipped.len() - NAMED);
        }
        tracing::warn!(
            epoch,
            skipped = skipped.len(),
            "training images could not be read and were skipped: {named}"
        );
        Some(first)
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
            );
            loop {
                let mut group = Vec::with_capacity(self.config.optim.accumulation);
                while group.len() < self.config.optim.accumulation {
                    match prefetch.next_batch() {
                        Some(batch) => group.push(batch),
                        None => break,
                    }
                }
                if group.is_empty() {
                    break;
                }
                let consumed = group.len();
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
                let every = self.config.run.checkpoint_every;
                if every > 0 && step.is_multiple_of(every) {
                    self.save_checkpoint("latest")?;
                }
                if stop.load(Ordering::SeqCst) {
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
            if self.config.run.checkpoint_every == 0 {
                self.save_checkpoint("latest")?;
            }
        }
        self.state.finished = true;
        self.save_checkpoint("latest")?;
        self.write_plot()?;
        Ok(self.summary(outcome))
    }

    fn current_lr(&self, total: usize) -> f64 {
        learning_rate(&self.config.optim, self.state.step.saturating_sub(1), total)
    }

    fn pending_mean(&self) -> f64 {
        let (sum, n) = self.pending_loss;
        if n == 0 { f64::NAN } else { sum / n as f64 }
    }

    fn summary(&self, outcome: Outcome) -> Summary {
        let best = self.run.checkpoint("best");
        Summary {
            outcome,
            steps: self.state.step,
            best_val_loss: self.state.best_val_loss,
            run_dir: self.run.root().to_owned(),
            checkpoint: if best.join(STATE_FILE).is_file() {
                best
            } else {
                self.run.checkpoint("latest")
            },
            skipped_images: self.state.skipped_images,
        }
    }

    /// The decoder inputs and labels of a micro-batch's captions.
    fn targets(&self, batch: &Batch) -> Result<CaptionTargets, TrainError> {
        caption_targets(
            &self.tokenizer,
            &batch.captions,
            self.config.data.prompt.as_deref(),
            self.config.data.max_tokens,
        )
    }

    /// Forward pass of one micro-batch: summed captioning loss (not yet
    /// divided) and the contrastive loss.
    fn batch_losses(
        &self,
        batch: &Batch,
        targets: &CaptionTargets,
        train: bool,
    ) -> Result<(Tensor, Option<Tensor>), TrainError> {
        let pixels = batch.pixel_tensor().to_device(self.device);
        let model = &self.model;
        let image_embeds = if self.config.model.freeze_vision || !train {
            let _guard = tch::no_grad_guard();
            model.encode_images_t(&pixels, false, false)?
        } else {
            model.encode_images_t(&pixels, false, train)?
        };
        let ids = targets.input_ids.to_device(self.device);
        let mask = targets.attention_mask.to_device(self.device);
        let ce = if self.config.loss.kind == LossKind::Contrastive {
            Tensor::zeros([], (Kind::Float, self.device))
        } else {
            let out = model.decode(&image_embeds, &ids, Some(&mask), train);
            caption_loss_sum(
                &out.logits,
                &targets.labels,
                self.config.loss.label_smoothing,
            )
        };
        let contrastive = match &self.heads {
            Some(heads) if batch.len >= 2 => {
                let image = heads.projections.project_image(&image_embeds);
                let text = heads
                    .projections
                    .project_text(&model.unimodal_text_hidden(&ids, &mask, train));
                Some(margin_contrastive_loss(
                    &image,
                    &text,
                    self.config.loss.margin,
                    self.config.loss.hardest_negative,
                ))
            }
            _ => None,
        };
        Ok((ce, contrastive))
    }

    /// The factor of the contrastive loss in the objective.
    fn contrastive_weight(&self) -> f64 {
        match self.config.loss.kind {
            LossKind::Ce => 0.0,
            LossKind::Contrastive => 1.0,
            LossKind::CePlusContrastive => self.config.loss.contrastive_weight,
        }
    }

    /// Combines one micro-batch's losses into its share of the step's objective.
    fn objective(
        &self,
        ce_sum: &Tensor,
        contrastive: Option<&Tensor>,
        step_tokens: i64,
        batches: usize,
    ) -> Tensor {
        let mut loss = ce_sum / (step_tokens.max(1) as f64);
        if let Some(c) = contrastive {
            let weight = self.contrastive_weight();
            loss += c * (weight / batches as f64);
        }
        loss
    }

    fn optimizer_step(&mut self, group: Vec<Batch>, total: usize) -> Result<(), TrainError> {
        tch::manual_seed(step_seed(self.config.run.seed, self.state.step));
        let mut batches = Vec::with_capacity(group.len());
        for batch in group {
            self.state.skipped_images += batch.skipped.len();
            self.skipped_in_epoch.extend(batch.skipped.iter().cloned());
            if batch.len > 0 {
                batches.push(batch);
            }
        }
        if batches.is_empty() {
            return Ok(());
        }
        // Token counts first, so that every micro-batch is divided by the
        // whole step's count: the update equals one big batch's.
        let targets = batches
            .iter()
            .map(|b| self.targets(b))
            .collect::<Result<Vec<_>, _>>()?;
        let step_tokens: i64 = targets.iter().map(|t| t.target_tokens).sum();
        let mut step_loss = 0.0;
        let count = batches.len();
        for (batch, targets) in batches.iter().zip(&targets) {
            let (ce, contrastive) = self.batch_losses(batch, targets, true)?;
            let loss = self.objective(&ce, contrastive.as_ref(), step_tokens, count);
            let value = loss.double_value(&[]);
            if !value.is_finite() {
                self.optimizer.zero_grad();
                return Err(TrainError::NonFinite {
                    step: self.state.step + 1,
                    loss: value,
                    checkpoint: self.run.latest(),
                });
            }
            loss.backward();
            step_loss += value;
            self.pending_images += batch.len;
        }
        if let Some(max) = self.config.grad_clip() {
            let norm = self.optimizer.clip_grad_norm(max);
            if !norm.is_finite() {
                self.optimizer.zero_grad();
                return Err(TrainError::NonFinite {
                    step: self.state.step + 1,
                    loss: norm,
                    checkpoint: self.run.latest(),
                });
            }
        }
        let lr = learning_rate(&self.config.optim, self.state.step, total);
        self.optimizer.update(lr);
        self.optimizer.zero_grad();
        self.state.step += 1;
        self.pending_loss.0 += step_loss;
        self.pending_loss.1 += 1;
        Ok(())
    }

    fn log_row(
        &mut self,
        observer: &dyn Observer,
        val_loss: Option<f64>,
    ) -> Result<(), TrainError> {
        let total = self.total_steps();
        let elapsed = self.pending_since.elapsed().as_secs_f64();
        let per_epoch =
            data::batches_per_epoch(self.train.len(), self.config.optim.micro_batch).max(1);
        let row = MetricsRow {
            step: self.state.step,
            epoch: self.state.epoch as f64 + self.state.batch_in_epoch as f64 / per_epoch as f64,
            train_loss: (self.pending_loss.1 > 0).then(|| self.pending_mean()),
            val_loss,
            lr: self.current_lr(total),
            images_per_second: (self.pending_images > 0 && elapsed > 0.0)
                .then(|| self.pending_images as f64 / elapsed),
        };
        self.run.append_metrics(&row)?;
        observer.logged(&row);
        self.pending_loss = (0.0, 0);
        self.pending_images = 0;
        self.pending_since = Instant::now();
        Ok(())
    }

    /// Mean validation objective per example batch (same objective as training, no dropout).
    pub fn validation_loss(&self) -> Result<Option<f64>, TrainError> {
        if self.val.is_empty() {
            return Ok(None);
        }
        let _guard = tch::no_grad_guard();
        let indices: Vec<usize> = (0..self.val.len()).collect();
        let (mut ce_total, mut tokens, mut contrastive_total, mut batches) =
            (0.0, 0i64, 0.0, 0usize);
        for chunk in indices.chunks(self.config.optim.micro_batch) {
            let batch = data::load_batch(
                &self.val,
                chunk,
                &self.processor,
                Augment::default(),
                self.config.run.seed,
                0,
            );
            if batch.len == 0 {
                continue;
            }
            let targets = self.targets(&batch)?;
            let n = targets.target_tokens;
            let (ce, contrastive) = self.batch_losses(&batch, &targets, false)?;
            ce_total += ce.double_value(&[]);
            tokens += n;
            if let Some(c) = contrastive {
                contrastive_total += c.double_value(&[]);
                batches += 1;
            }
        }
        let mut loss = if self.config.loss.kind == LossKind::Contrastive {
            0.0
        } else {
            ce_total / tokens.max(1) as f64
        };
        if batches > 0 {
            let weight = self.contrastive_weight();
            loss += weight * contrastive_total / batches as f64;
        }
        Ok(Some(loss))
    }

    /// Validates, keeps the best checkpoint, and says whether to stop early.
    fn validate_and_track(&mut self, observer: &dyn Observer) -> Result<bool, TrainError> {
        let Some(loss) = self.validation_loss()? else {
            return Ok(false);
        };
        let best = self.state.best_val_loss.is_none_or(|b| loss < b);
        if best {
            self.state.best_val_loss = Some(loss);
            self.state.evals_without_improvement = 0;
        } else {
            self.state.evals_without_improvement += 1;
        }
        observer.validated(self.state.step, loss, best);
        self.log_row(observer, Some(loss))?;
        if best {
            self.save_checkpoint("best")?;
        }
        Ok(self
            .config
            .run
            .early_stopping_patience
            .is_some_and(|p| self.state.evals_without_improvement >= p))
    }

    fn save_checkpoint(&self, which: &str) -> Result<PathBuf, TrainError> {
        self.run.write_checkpoint(which, |dir| {
            self.model.save(dir)?;
            self.tokenizer.save(dir)?;
            self.processor.save(dir)?;
            if let Some(h) = &self.heads {
                h.save(&dir.join(HEADS_FILE))?;
            }
            self.optimizer.save(&dir.join(OPTIMIZER_FILE))?;
            Ok(medcap_io::write_json_atomic(
                &dir.join(STATE_FILE),
                &self.state,
            )?)
        })
    }

    fn write_plot(&self) -> Result<(), TrainError> {
        let rows = self.run.read_metrics()?;
        let train: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| r.train_loss.map(|l| (r.step as f64, l)))
            .collect();
        let val: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| r.val_loss.map(|l| (r.step as f64, l)))
            .collect();
        let svg = line_plot(
            &format!("{}: loss", self.config.run.name),
            "iteration (optimizer step)",
            "loss",
            &[
                Series {
                    label: "training".into(),
                    colour: "#1f77b4".into(),
                    points: train,
                },
                Series {
                    label: "validation".into(),
                    colour: "#d62728".into(),
                    points: val,
                },
            ],
        );
        Ok(medcap_io::write_atomic(
            &self.run.plot_path(),
            svg.as_bytes(),
        )?)
    }
}
