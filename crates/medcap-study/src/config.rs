//! The study's settings (`medcap reproduce --config FILE`): where the data
//! and the base model come from, how much of everything to make and train,
//! and how to decode. The defaults are the embedded run that finishes in
//! minutes on two CPU cores; unknown keys are an error.

use std::path::{Path, PathBuf};

use medcap_train::config::{
    DataConfig, LossConfig, LossKind, ModelConfig, OptimConfig, OptimizerKind, Precision,
    RunConfig, Schedule, TrainConfig,
};
use serde::{Deserialize, Serialize};

use medcap_io::config::{ConfigFile, InvalidConfig, resolve};

use crate::error::StudyError;

/// Training settings of one stage (the rest of the recipe is shared).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StageTraining {
    /// Passes over the stage's training set.
    pub epochs: usize,
    /// Stop after this many optimizer steps (optional).
    pub max_steps: Option<usize>,
    /// Peak learning rate.
    pub lr: f64,
    /// Images per forward pass.
    pub micro_batch: usize,
    /// Micro-batches per optimizer step.
    pub accumulation: usize,
    /// Objective.
    pub loss: LossKind,
    /// Weight of the contrastive term in `ce+contrastive`.
    pub contrastive_weight: f64,
    /// Adam (the study) or AdamW.
    pub optimizer: OptimizerKind,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Warm-up steps.
    pub warmup_steps: usize,
    /// Label smoothing.
    pub label_smoothing: f64,
    /// `fp32`, or `bf16` / `fp16` mixed precision (see medcap-train's
    /// `OptimConfig::precision`); the embedded default is fp32.
    pub precision: Precision,
}

impl StageTraining {
    fn fine_tuning() -> Self {
        Self {
            epochs: 8,
            max_steps: None,
            lr: 2e-3,
            micro_batch: 4,
            accumulation: 4,
            loss: LossKind::CePlusContrastive,
            contrastive_weight: 0.1,
            optimizer: OptimizerKind::Adam,
            schedule: Schedule::Cosine,
            warmup_steps: 50,
            label_smoothing: 0.0,
            precision: Precision::F32,
        }
    }
}

/// Where a stage's training reads and writes (the paths of its
/// [`TrainConfig`]).
#[derive(Debug, Clone, Copy)]
pub struct StagePaths<'a> {
    /// The model it starts from.
    pub base: &'a Path,
    /// Its training split.
    pub train: &'a Path,
    /// Its validation split.
    pub val: Option<&'a Path>,
    /// The runs directory (the run is `runs_dir/name`).
    pub runs_dir: &'a Path,
}

impl StageTraining {
    /// The trainer's configuration of this stage: the study's shared recipe
    /// with this stage's settings. The one place a stage becomes a
    /// [`TrainConfig`], so that [`StudyConfig::check`] checks what the
    /// trainer will get.
    pub fn train_config(
        &self,
        name: &str,
        paths: StagePaths<'_>,
        seed: u64,
        workers: usize,
    ) -> TrainConfig {
        TrainConfig {
            data: DataConfig {
                train_csv: paths.train.to_owned(),
                val_csv: paths.val.map(Path::to_owned),
                workers,
                ..Default::default()
            },
            model: ModelConfig {
                base_model: paths.base.to_owned(),
                freeze_vision: false,
            },
            loss: LossConfig {
                kind: self.loss,
                contrastive_weight: self.contrastive_weight,
                label_smoothing: self.label_smoothing,
                ..Default::default()
            },
            optim: OptimConfig {
                optimizer: self.optimizer,
                lr: self.lr,
                schedule: self.schedule,
                warmup_steps: self.warmup_steps,
                micro_batch: self.micro_batch,
                accumulation: self.accumulation,
                epochs: self.epochs,
                max_steps: self.max_steps,
                precision: self.precision,
                ..Default::default()
            },
            run: RunConfig {
                name: name.into(),
                runs_dir: paths.runs_dir.to_owned(),
                seed,
                checkpoint_every: 50,
                ..Default::default()
            },
        }
    }

    /// The trainer's rules, with the key as this file names it
    /// (`fine_tuning.lr` for the trainer's `optim.lr`).
    fn check(&self, stage: &str) -> Result<(), InvalidConfig> {
        let placeholder = Path::new("placeholder");
        let paths = StagePaths {
            base: placeholder,
            train: placeholder,
            val: None,
            runs_dir: placeholder,
        };
        self.train_config(stage, paths, 0, 1).check().map_err(|e| {
            let field = e.key.rsplit('.').next().unwrap_or(&e.key);
            InvalidConfig::new(format!("{stage}.{field}"), e.reason)
        })
    }
}

impl Default for StageTraining {
    fn default() -> Self {
        Self::fine_tuning()
    }
}

/// The study configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StudyConfig {
    /// A MedICaT release (real data); absent: the embedded synthetic release.
    pub medicat: Option<PathBuf>,
    /// A captioning checkpoint to fine-tune (e.g. blip-image-captioning-base);
    /// absent: a small BLIP trained here on synthetic general-domain scenes.
    pub base_model: Option<PathBuf>,
    /// Synthetic figures to generate (embedded data only).
    pub synthetic_figures: usize,
    /// Test figures (the study: 300).
    pub test: usize,
    /// Validation figures.
    pub val: usize,
    /// FT-1 training figures (the study: 1,800).
    pub ft1: usize,
    /// Figures FT-2 adds (the study: 1,000, for 2,800).
    pub ft2_extra: usize,
    /// General-domain scenes for the small base model.
    pub scenes: usize,
    /// Image side of the small base model (pixels).
    pub image_size: i64,
    /// Patch side of the small model's vision tower (pixels; the Hub BLIPs: 16).
    pub patch_size: i64,
    /// Width of the small model's vision and text layers.
    pub width: i64,
    /// Layers of each of the small model's towers.
    pub layers: usize,
    /// Training of the small base model (general captioning, cross-entropy).
    pub base_training: StageTraining,
    /// FT-1 and FT-2 fine-tuning (identical apart from the data).
    pub fine_tuning: StageTraining,
    /// Decoding for all three models: most new tokens.
    pub max_new_tokens: usize,
    /// Decoding for all three models: beams (1 = greedy). Default 3, the
    /// setting of BLIP's own caption evaluation (`configs/caption_coco.yaml`
    /// of salesforce/BLIP); the study does not say how it decoded.
    pub num_beams: usize,
    /// Images per captioning batch.
    pub caption_batch: usize,
    /// BERTScore encoder directory, BERT or RoBERTa (default: the MiniLM that
    /// setup installs). The study: roberta-large.
    pub bertscore_model: Option<PathBuf>,
    /// bert-score's name of that model (e.g. `roberta-large`), for its
    /// default layer; default: the directory's name.
    pub bertscore_model_type: Option<String>,
    /// BERTScore layer (default: bert-score's for the model, 5 for the
    /// MiniLM; the study: 17 of roberta-large).
    pub bertscore_layer: Option<usize>,
    /// An image–text encoder (Hugging Face CLIP, open_clip such as
    /// BiomedCLIP, or a BLIP retrieval checkpoint) for a reference-free
    /// column: CLIPScore and RefCLIPScore of every caption against its
    /// figure (Hessel's form). Off by default: the embedded models have no
    /// encoder independent of the captioners.
    pub clip_model: Option<PathBuf>,
    /// Test figures shown in the HTML report.
    pub report_sample: usize,
    /// Bootstrap resamples for confidence intervals and paired tests.
    pub bootstrap: usize,
    /// Seed of everything random.
    pub seed: u64,
    /// Threads that decode training images.
    pub workers: usize,
}

impl Default for StudyConfig {
    fn default() -> Self {
        Self {
            medicat: None,
            base_model: None,
            synthetic_figures: 5_000,
            test: 300,
            val: 200,
            ft1: 1_800,
            ft2_extra: 1_000,
            scenes: 3_000,
            image_size: 96,
            patch_size: 16,
            width: 128,
            layers: 2,
            base_training: StageTraining {
                epochs: 9,
                lr: 2e-3,
                micro_batch: 16,
                accumulation: 1,
                loss: LossKind::Ce,
                warmup_steps: 100,
                ..StageTraining::fine_tuning()
            },
            fine_tuning: StageTraining::fine_tuning(),
            max_new_tokens: 40,
            // Greedy decoding picks a caption's first word before it has
            // weighed the rest: with most captions of findings beginning
            // "a ...", it began every caption so, and wrote "a left apical
            // pneumothorax" for the normal figures (FT-2 0.587 findings
            // micro-F1 against the truth with sides on the default seed;
            // 0.642 with 3 beams, and 0.699 / 0.647 on seeds 2024 / 2025).
            num_beams: 3,
            caption_batch: 32,
            bertscore_model: None,
            bertscore_model_type: None,
            bertscore_layer: None,
            clip_model: None,
            report_sample: 60,
            bootstrap: 1_000,
            seed: 2023,
            workers: 2,
        }
    }
}

impl StudyConfig {
    /// A configuration small enough for a test: a few hundred figures, a
    /// tiny model, a few steps per stage.
    pub fn reduced() -> Self {
        let tiny = |lr, micro, loss, steps| StageTraining {
            epochs: 0,
            max_steps: Some(steps),
            lr,
            micro_batch: micro,
            accumulation: 1,
            loss,
            warmup_steps: 0,
            schedule: Schedule::Constant,
            label_smoothing: 0.0,
            ..StageTraining::fine_tuning()
        };
        Self {
            synthetic_figures: 260,
            test: 40,
            val: 10,
            ft1: 60,
            ft2_extra: 30,
            scenes: 120,
            image_size: 32,
            width: 32,
            layers: 1,
            base_training: tiny(5e-3, 16, LossKind::Ce, 40),
            fine_tuning: tiny(5e-3, 8, LossKind::CePlusContrastive, 100),
            max_new_tokens: 16,
            caption_batch: 20,
            report_sample: 12,
            bootstrap: 200,
            ..Self::default()
        }
    }

    /// Reads TOML or JSON (by extension) through medcap-io's configuration
    /// loader; relative paths are relative to the file.
    ///
    /// # Errors
    /// [`StudyError::Config`] naming the file: unreadable, not valid TOML
    /// or JSON, an unknown key, or a rule of [`StudyConfig::check`] broken.
    pub fn from_file(path: &Path) -> Result<Self, StudyError> {
        Ok(medcap_io::config::load(path)?)
    }

    /// Consistency rules.
    ///
    /// # Errors
    /// The first rule broken, with its key.
    pub fn check(&self) -> Result<(), InvalidConfig> {
        if self.test < 2 {
            return Err(InvalidConfig::new("test", "must be at least 2"));
        }
        if self.ft1 == 0 {
            return Err(InvalidConfig::new("ft1", "must be at least 1"));
        }
        for (key, value, least) in [
            ("image_size", self.image_size, 1),
            ("patch_size", self.patch_size, 1),
            ("width", self.width, 4),
            ("layers", self.layers as i64, 1),
        ] {
            if value < least {
                return Err(InvalidConfig::new(
                    key,
                    format!("{value} must be at least {least}"),
                ));
            }
        }
        self.base_training.check("base_training")?;
        self.fine_tuning.check("fine_tuning")?;
        if self.base_model.is_none()
            && (self.patch_size <= 0
                || self.image_size % self.patch_size != 0
                || self.width % 4 != 0)
        {
            return Err(InvalidConfig::new(
                "image_size",
                format!(
                    "({}) must be a multiple of patch_size ({}) and width ({}) of 4",
                    self.image_size, self.patch_size, self.width
                ),
            ));
        }
        for (key, value) in [
            ("max_new_tokens", self.max_new_tokens),
            ("num_beams", self.num_beams),
            ("caption_batch", self.caption_batch),
        ] {
            if value == 0 {
                return Err(InvalidConfig::new(key, "must be at least 1"));
            }
        }
        Ok(())
    }
}

impl ConfigFile for StudyConfig {
    fn resolve_paths(&mut self, base: &Path) {
        for p in [
            &mut self.medicat,
            &mut self.base_model,
            &mut self.bertscore_model,
        ]
        .into_iter()
        .flatten()
        {
            resolve(p, base);
        }
    }

    fn check(&self) -> Result<(), InvalidConfig> {
        StudyConfig::check(self)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use medcap_io::config::{Format, parse};

    fn check(text: &str) -> Result<(), InvalidConfig> {
        let config: StudyConfig = parse(text, Format::Toml, Path::new("study.toml")).unwrap();
        config.check()
    }

    #[test]
    fn the_defaults_and_the_reduced_run_pass() {
        StudyConfig::default().check().unwrap();
        StudyConfig::reduced().check().unwrap();
    }

    /// A stage's values are held to the trainer's rules when the file is
    /// read, not when the stage starts minutes later, under the key the
    /// file uses.
    #[test]
    fn a_stage_breaking_a_trainer_rule_is_refused_with_its_key() {
        for (text, key) in [
            ("[fine_tuning]\nlr = -1.0\n", "fine_tuning.lr"),
            ("[fine_tuning]\nlr = nan\n", "fine_tuning.lr"),
            (
                "[base_training]\ncontrastive_weight = inf\n",
                "base_training.contrastive_weight",
            ),
            (
                "[base_training]\nlabel_smoothing = 1.0\n",
                "base_training.label_smoothing",
            ),
            (
                "[fine_tuning]\nmicro_batch = 0\n",
                "fine_tuning.micro_batch",
            ),
            (
                "[fine_tuning]\nmicro_batch = 1\n",
                "fine_tuning.micro_batch",
            ),
            ("[fine_tuning]\nepochs = 0\n", "fine_tuning.epochs"),
        ] {
            assert_eq!(check(text).unwrap_err().key, key, "{text}");
        }
        check("[fine_tuning]\nepochs = 0\nmax_steps = 10\n").unwrap();
    }

    /// Sizes that would make an empty or negative model are refused.
    #[test]
    fn model_sizes_below_one_are_refused() {
        for (text, key) in [
            ("image_size = 0\n", "image_size"),
            ("patch_size = 0\n", "patch_size"),
            ("width = -4\n", "width"),
            ("width = 0\n", "width"),
            ("layers = 0\n", "layers"),
        ] {
            assert_eq!(check(text).unwrap_err().key, key, "{text}");
        }
    }
}
