//! The run configuration (`--config FILE.toml|json`): data, model, loss,
//! optimisation and run settings. Unknown keys are an error, so a typo never
//! silently falls back to a default; the resolved configuration is saved in
//! the run directory before the first step.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use medcap_dataset::paths::PathWriter;

use medcap_io::config::{ConfigFile, InvalidConfig, resolve};
pub use medcap_model::precision::Precision;

use crate::error::TrainError;

/// Which objective to minimise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// Captioning cross-entropy (trains the decoder).
    Ce,
    /// The study's margin contrastive loss on image and text embeddings only.
    Contrastive,
    /// Cross-entropy plus `contrastive_weight` times the contrastive loss.
    #[serde(rename = "ce+contrastive")]
    CePlusContrastive,
}

/// Loss settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LossConfig {
    /// The objective.
    pub kind: LossKind,
    /// Weight of the contrastive term in `ce+contrastive`.
    pub contrastive_weight: f64,
    /// Margin alpha of the hinge (0.2 in the study, after Kiros et al.).
    pub margin: f64,
    /// Only the hardest in-batch negative per row and column (VSE++) instead of the sum.
    pub hardest_negative: bool,
    /// Label smoothing of the cross-entropy (0.1 in the original BLIP recipe).
    pub label_smoothing: f64,
    /// Width of the contrastive projections when the checkpoint has none.
    pub projection_dim: i64,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            kind: LossKind::CePlusContrastive,
            contrastive_weight: 1.0,
            margin: 0.2,
            hardest_negative: false,
            label_smoothing: 0.1,
            projection_dim: 256,
        }
    }
}

/// Adam or AdamW.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam; `weight_decay` is added to the gradient (L2), as torch's Adam.
    Adam,
    /// AdamW; `weight_decay` decays the weights directly, as torch's AdamW.
    Adamw,
}

/// Learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// The same rate throughout (after warm-up, if any).
    Constant,
    /// Linear warm-up, then linear decay to zero at the last step.
    Linear,
    /// Linear warm-up, then cosine decay to zero at the last step.
    Cosine,
}

/// Optimisation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    /// Adam (the study) or AdamW (the original BLIP recipe).
    pub optimizer: OptimizerKind,
    /// Peak learning rate.
    pub lr: f64,
    /// Weight decay (L2 for Adam, decoupled for AdamW).
    pub weight_decay: f64,
    /// Adam's beta1 and beta2.
    pub betas: (f64, f64),
    /// Adam's epsilon.
    pub eps: f64,
    /// Schedule after warm-up.
    pub schedule: Schedule,
    /// Optimizer steps of linear warm-up from zero (transformers' schedule:
    /// the first update runs at rate 0, update `warmup_steps` at `lr`).
    pub warmup_steps: usize,
    /// Clip the global gradient norm to this (default 1.0; `0` disables
    /// clipping, as does `null` in JSON).
    pub grad_clip: Option<f64>,
    /// Images per forward pass (the study: 4).
    pub micro_batch: usize,
    /// Micro-batches per optimizer step (the study: 4, an effective batch of 16).
    pub accumulation: usize,
    /// Passes over the training set.
    pub epochs: usize,
    /// Stop after this many optimizer steps, if fewer than the epochs give.
    pub max_steps: Option<usize>,
    /// `fp32` (default), or mixed precision: `bf16` or `fp16` autocast of
    /// the forward pass (matrix products in half precision, reductions
    /// and the loss in fp32, as `torch.autocast`), with fp32 weights and
    /// Adam moments; `fp16` adds dynamic loss scaling (torch's
    /// `GradScaler`). Checkpoints are fp32 either way.
    pub precision: Precision,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            optimizer: OptimizerKind::Adam,
            lr: 1e-5,
            weight_decay: 0.0,
            betas: (0.9, 0.999),
            eps: 1e-8,
            schedule: Schedule::Constant,
            warmup_steps: 0,
            grad_clip: Some(1.0),
            micro_batch: 4,
            accumulation: 4,
            epochs: 5,
            max_steps: None,
            precision: Precision::F32,
        }
    }
}

/// Where the data comes from and how it is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Training CSV written by `medcap prepare` (`image_path`, `caption` columns).
    pub train_csv: PathBuf,
    /// Validation CSV (validation loss, best checkpoint, early stopping).
    pub val_csv: Option<PathBuf>,
    /// Use at most this many training rows (in file order).
    pub limit_train: Option<usize>,
    /// Use at most this many validation rows.
    pub limit_val: Option<usize>,
    /// Longest caption in tokens, `[DEC]` and `[SEP]` included (BLIP used 40).
    pub max_tokens: usize,
    /// Text before every caption, masked out of the loss (BLIP: "a picture of").
    pub prompt: Option<String>,
    /// Random resized crops (scale 0.5 to 1, as BLIP's recipe) for training images.
    pub random_crop: bool,
    /// Horizontal flips; off by default because they swap left and right.
    pub horizontal_flip: bool,
    /// Threads that decode images ahead of the training step.
    pub workers: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            train_csv: PathBuf::new(),
            val_csv: None,
            limit_train: None,
            limit_val: None,
            max_tokens: 40,
            prompt: None,
            random_crop: false,
            horizontal_flip: false,
            workers: 2,
        }
    }
}

/// Which model to start from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// A captioning checkpoint directory (config, weights, tokenizer, preprocessor).
    pub base_model: PathBuf,
    /// Keep the vision encoder fixed.
    pub freeze_vision: bool,
}

/// Bookkeeping of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Run name: the directory `<runs_dir>/<name>`.
    pub name: String,
    /// Parent directory of run directories.
    pub runs_dir: PathBuf,
    /// Seed of data order, augmentation, fresh weights and dropout.
    pub seed: u64,
    /// Validate (and keep the best checkpoint) every this many optimizer steps
    /// (0: at the end of each epoch only).
    pub eval_every: usize,
    /// Write the latest checkpoint every this many optimizer steps (0: each epoch).
    pub checkpoint_every: usize,
    /// Stop after this many validations without improvement (none when absent).
    pub early_stopping_patience: Option<usize>,
    /// Log a line every this many optimizer steps.
    pub log_every: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            name: "run".into(),
            runs_dir: PathBuf::from("runs"),
            seed: 2023,
            eval_every: 0,
            checkpoint_every: 0,
            early_stopping_patience: None,
            log_every: 10,
        }
    }
}

/// Everything a training run needs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Data.
    pub data: DataConfig,
    /// Model.
    pub model: ModelConfig,
    /// Loss.
    pub loss: LossConfig,
    /// Optimisation.
    pub optim: OptimConfig,
    /// Run bookkeeping.
    pub run: RunConfig,
}

impl TrainConfig {
    /// Reads a `.toml` or `.json` file through medcap-io's configuration
    /// loader: relative paths in it are resolved against the file's
    /// directory, unknown keys and broken rules are errors naming the file.
    ///
    /// ```
    /// use medcap_train::config::TrainConfig;
    ///
    /// let config = TrainConfig::from_toml_str(r#"
    ///     [data]
    ///     train_csv = "prepared/ft1.csv"
    ///     [optim]
    ///     micro_batch = 4
    ///     accumulation = 4
    /// "#)?;
    /// assert_eq!(config.optim.micro_batch * config.optim.accumulation, 16);
    /// assert!(TrainConfig::from_toml_str("[optim]\nlearning_rate = 1.0").is_err());
    /// # Ok::<(), medcap_train::TrainError>(())
    /// ```
    ///
    /// # Errors
    /// [`TrainError::ConfigFile`] when the file cannot be read or parsed or
    /// breaks a rule of [`TrainConfig::check`].
    pub fn from_file(path: &Path) -> Result<Self, TrainError> {
        Ok(medcap_io::config::load(path)?)
    }

    /// Parses TOML text (paths are left as written; nothing is checked).
    ///
    /// # Errors
    /// [`TrainError::ConfigFile`] with the parser's message.
    pub fn from_toml_str(text: &str) -> Result<Self, TrainError> {
        Ok(medcap_io::config::parse(
            text,
            medcap_io::config::Format::Toml,
            Path::new("<text>"),
        )?)
    }

    /// The gradient-norm bound, if clipping is on.
    pub fn grad_clip(&self) -> Option<f64> {
        self.optim.grad_clip.filter(|&c| c > 0.0)
    }

    /// A copy whose paths are in the form stored in a file in `dir` (the
    /// run directory's `config.json`), by medcap-dataset's path rule: paths
    /// inside the directory that holds `runs_dir` (the project or the
    /// study's output) are relative to `dir`, so a moved run still resumes.
    ///
    /// # Errors
    /// When the working directory cannot be read.
    pub fn stored_in(&self, dir: &Path) -> std::io::Result<Self> {
        let mut writer = PathWriter::new(dir)?;
        if let Some(tree) = self.run.runs_dir.parent() {
            writer = writer.within(tree)?;
        }
        let store = |p: &PathBuf| -> std::io::Result<PathBuf> {
            if p.as_os_str().is_empty() {
                Ok(PathBuf::new())
            } else {
                writer.store(p).map(PathBuf::from)
            }
        };
        let mut out = self.clone();
        out.data.train_csv = store(&self.data.train_csv)?;
        out.data.val_csv = self.data.val_csv.as_ref().map(store).transpose()?;
        out.model.base_model = store(&self.model.base_model)?;
        out.run.runs_dir = store(&self.run.runs_dir)?;
        Ok(out)
    }

    /// Rules the trainer relies on.
    ///
    /// # Errors
    /// The first rule broken, with its key.
    pub fn check(&self) -> Result<(), InvalidConfig> {
        let bad = |key: &str, reason: String| Err(InvalidConfig::new(key, reason));
        let o = &self.optim;
        if o.micro_batch == 0 || o.accumulation == 0 {
            return bad(
                "optim.micro_batch",
                "and optim.accumulation must be at least 1".into(),
            );
        }
        if o.epochs == 0 && o.max_steps.is_none() {
            return bad("optim.epochs", "must be at least 1".into());
        }
        if !(o.lr > 0.0 && o.lr.is_finite()) {
            return bad("optim.lr", format!("{} is not a positive number", o.lr));
        }
        if o.grad_clip.is_some_and(|c| !(c >= 0.0 && c.is_finite())) {
            return bad(
                "optim.grad_clip",
                format!(
                    "{:?} must be a positive norm, or 0 for no clipping",
                    o.grad_clip
                ),
            );
        }
        if !(o.weight_decay >= 0.0 && o.weight_decay.is_finite()) {
            return bad(
                "optim.weight_decay",
                format!("{} is not a number >= 0", o.weight_decay),
            );
        }
        if !(o.eps > 0.0 && o.eps.is_finite()) {
            return bad("optim.eps", format!("{} is not a positive number", o.eps));
        }
        if !(0.0..1.0).contains(&o.betas.0) || !(0.0..1.0).contains(&o.betas.1) {
            return bad("optim.betas", "must lie in [0, 1)".into());
        }
        if self.loss.kind != LossKind::Ce && o.micro_batch < 2 {
            return bad(
                "optim.micro_batch",
                "must be at least 2 for the contrastive loss (in-batch negatives)".into(),
            );
        }
        let l = &self.loss;
        for (key, value) in [
            ("loss.contrastive_weight", l.contrastive_weight),
            ("loss.margin", l.margin),
        ] {
            if !(value >= 0.0 && value.is_finite()) {
                return bad(key, format!("{value} is not a number >= 0"));
            }
        }
        if l.projection_dim < 1 {
            return bad(
                "loss.projection_dim",
                format!("{} must be at least 1", l.projection_dim),
            );
        }
        if !(0.0..1.0).contains(&self.loss.label_smoothing) {
            return bad("loss.label_smoothing", "must lie in [0, 1)".into());
        }
        if self.data.max_tokens < 3 {
            return bad("data.max_tokens", "must be at least 3".into());
        }
        if self.data.train_csv.as_os_str().is_empty() {
            return bad("data.train_csv", "is required".into());
        }
        if self.model.base_model.as_os_str().is_empty() {
            return bad("model.base_model", "is required".into());
        }
        let name = &self.run.name;
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return bad(
                "run.name",
                format!("`{name}` must be a plain directory name"),
            );
        }
        Ok(())
    }
}

impl ConfigFile for TrainConfig {
    /// Makes relative paths relative to `base`.
    fn resolve_paths(&mut self, base: &Path) {
        resolve(&mut self.data.train_csv, base);
        if let Some(v) = &mut self.data.val_csv {
            resolve(v, base);
        }
        resolve(&mut self.model.base_model, base);
        resolve(&mut self.run.runs_dir, base);
    }

    fn check(&self) -> Result<(), InvalidConfig> {
        TrainConfig::check(self)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A value for a key of the file: numbers of every sign and size, the
    /// IEEE specials, other types.
    fn value() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        // Mostly usable numbers, so that most files get past the other
        // keys' rules to the one under test.
        prop_oneof![
            12 => "0\\.[0-9]{0,2}[1-9]",
            1 => Just("nan".to_owned()),
            1 => Just("inf".to_owned()),
            1 => Just("-inf".to_owned()),
            1 => Just("1e400".to_owned()),
            1 => Just("\"x\"".to_owned()),
            1 => "-[0-9]{1,3}(\\.[0-9])?",
            1 => "[0-9]{1,3}",
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, rng_seed: proptest::test_runner::RngSeed::Fixed(0x6d65_6463_6170), ..proptest::prelude::ProptestConfig::default() })]

        /// Any values for the numeric keys: refused with the key named, or
        /// a configuration whose numbers the trainer can use (finite, and
        /// in range), never one that would give a NaN loss or a panic.
        #[test]
        fn a_checked_configuration_holds_only_usable_numbers(
            floats in proptest::collection::vec(value(), 7),
            counts in proptest::collection::vec(proptest::prop_oneof![6 => 1usize..5, 1 => 0usize..1], 4),
            projection_dim in -3i64..300,
        ) {
            let float_keys = [
                ("optim", "lr"), ("optim", "weight_decay"), ("optim", "eps"), ("optim", "grad_clip"),
                ("loss", "contrastive_weight"), ("loss", "margin"), ("loss", "label_smoothing"),
            ];
            let count_keys = [("optim", "micro_batch"), ("optim", "accumulation"), ("optim", "epochs"), ("data", "max_tokens")];
            let lines = |section: &str| -> String {
                let floats = float_keys.iter().zip(&floats).map(|(key, v)| (key, v.clone()));
                let counts = count_keys.iter().zip(&counts).map(|(key, v)| (key, v.to_string()));
                floats
                    .chain(counts)
                    .filter(|((s, _), _)| *s == section)
                    .map(|((_, k), v)| format!("{k} = {v}\n"))
                    .collect()
            };
            let text = format!(
                "[data]\ntrain_csv = \"t.csv\"\n{}[model]\nbase_model = \"m\"\n[optim]\n{}[loss]\nprojection_dim = {projection_dim}\n{}",
                lines("data"),
                lines("optim"),
                lines("loss"),
            );
            let keys: Vec<String> = float_keys.iter().chain(&count_keys).map(|(s, k)| format!("{s}.{k}")).chain(["loss.projection_dim".to_owned()]).collect();
            let Ok(config) = TrainConfig::from_toml_str(&text) else { return Ok(()); };
            match config.check() {
                Err(e) => proptest::prop_assert!(keys.contains(&e.key), "{}", e),
                Ok(()) => {
                    let (o, l) = (&config.optim, &config.loss);
                    for v in [o.lr, o.weight_decay, o.eps, l.contrastive_weight, l.margin, l.label_smoothing] {
                        proptest::prop_assert!(v.is_finite() && v >= 0.0, "{}", text);
                    }
                    proptest::prop_assert!(o.lr > 0.0 && o.eps > 0.0 && l.projection_dim >= 1);
                    proptest::prop_assert!(config.grad_clip().is_none_or(|c| c.is_finite() && c > 0.0));
                    proptest::prop_assert!(o.micro_batch >= 1 && o.accumulation >= 1 && config.data.max_tokens >= 3);
                }
            }
        }
    }

    #[test]
    fn a_config_without_grad_clip_clips_at_one_and_zero_disables_clipping() {
        let default = TrainConfig::from_toml_str("[data]\ntrain_csv = \"x.csv\"\n").unwrap();
        assert_eq!(default.grad_clip(), Some(1.0));
        let off = TrainConfig::from_toml_str("[optim]\ngrad_clip = 0\n").unwrap();
        assert_eq!(off.grad_clip(), None);
        let json: TrainConfig = serde_json::from_str(r#"{"optim": {"grad_clip": null}}"#).unwrap();
        assert_eq!(json.grad_clip(), None);
        let mut bad = TrainConfig::from_toml_str("[optim]\ngrad_clip = -1.0\n").unwrap();
        bad.data.train_csv = "x.csv".into();
        bad.model.base_model = "m".into();
        assert_eq!(bad.check().unwrap_err().key, "optim.grad_clip");
    }
}
