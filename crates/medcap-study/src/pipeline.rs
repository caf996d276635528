//! The reproduction, stage by stage: data, base model, FT-1, FT-2,
//! evaluation, report. Each stage records that it finished in
//! `stages/<name>.json` (with its duration and output), so a rerun after
//! an interruption continues from the first unfinished stage, and inside a
//! training stage from its last checkpoint.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use medcap_dataset::filter::KeywordRule;
use medcap_dataset::image_check::ImageLimits;
use medcap_dataset::paths::{self, PathWriter};
use medcap_dataset::prepare::{NoProgress, PrepareOptions, prepare};
use medcap_dataset::split::SplitPlan;
use medcap_dataset::synth::{SynthConfig, generate};
use medcap_metrics::caption_scores::CaptionScores;
use medcap_metrics::clipscore::{ClipScoreForm, ClipScoreSettings, ClipScoreValue};
use medcap_metrics::stats::Bootstrap;
use medcap_model::bertscore::BertScorer;
use medcap_model::generation::GenerationConfig;
use medcap_model::image_text::{ClipScorer, load_encoder};
use medcap_train::trainer::{Observer, Outcome, Replicas, Trainer};
use serde::{Deserialize, Serialize};
use tch::Device;

use crate::config::{StagePaths, StageTraining, StudyConfig};
use crate::error::{StudyError, io};
use crate::eval::{self, CaptionRow};
use crate::report::{self, ModelResult, ReportData};
use crate::truth::TruthScore;
use crate::{scenes, small_model, truth};

/// The collective that settles a stage's outcome on every rank.
const STAGE_OPERATION: &str = "a stage of the study";

/// The stages, in order.
pub const STAGES: [&str; 6] = ["data", "base", "ft1", "ft2", "eval", "report"];

/// What `stages/<name>.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRecord {
    /// Wall-clock seconds the stage took (the last time it ran).
    pub seconds: f64,
    /// Its main output.
    pub output: PathBuf,
}

/// What a finished study leaves.
#[derive(Debug)]
pub struct StudyOutcome {
    /// `report/` with Table 1, the figures and the HTML page.
    pub report_dir: PathBuf,
    /// Table 1 and the paired tests.
    pub data: ReportData,
}

/// The three models, in Table 1's order: (display name, key).
pub const MODELS: [(&str, &str); 3] = [("BLIP", "base"), ("FT-1", "ft1"), ("FT-2", "ft2")];

/// A reproduction in the directory `out`.
pub struct Study<'a> {
    config: StudyConfig,
    out: PathBuf,
    device: Device,
    observer: &'a dyn Observer,
    stop: &'a AtomicBool,
    replicas: Replicas,
}

/// Who does a stage's work in a data-parallel study.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workers {
    /// Rank 0 alone (data, report); the others wait for its record.
    Leader,
    /// Every rank (training, captioning).
    Every,
}

impl<'a> Study<'a> {
    /// Prepares `out`; `fresh` deletes what an earlier run left there.
    ///
    /// # Errors
    /// The configuration breaks a rule, or differs from the one the stages
    /// already done in `out` were made with; `out` cannot be written.
    pub fn new(
        config: StudyConfig,
        out: &Path,
        device: Device,
        fresh: bool,
        observer: &'a dyn Observer,
        stop: &'a AtomicBool,
    ) -> Result<Self, StudyError> {
        Self::with_replicas(
            config,
            out,
            device,
            fresh,
            observer,
            stop,
            Replicas::single(),
        )
    }

    /// [`Self::new`] as one rank of a data-parallel study (under
    /// `torchrun`): rank 0 prepares the data, writes every record and the
    /// report, every rank trains and captions its share; `out` must be the
    /// same directory for every rank (one machine, or a shared file system).
    ///
    /// # Errors
    /// As [`Self::new`]; a failure on another rank, naming it.
    pub fn with_replicas(
        config: StudyConfig,
        out: &Path,
        device: Device,
        fresh: bool,
        observer: &'a dyn Observer,
        stop: &'a AtomicBool,
        replicas: Replicas,
    ) -> Result<Self, StudyError> {
        medcap_io::config::check(&config)?;
        // Each trained stage's micro-batches are shared among the
        // processes: said before rank 0 prepares anything.
        let trained = [
            (
                "base_training",
                &config.base_training,
                config.base_model.is_none(),
            ),
            ("fine_tuning", &config.fine_tuning, true),
        ];
        for (key, stage, _) in trained.iter().filter(|(_, _, trained)| *trained) {
            if !stage.accumulation.is_multiple_of(replicas.size()) {
                return Err(StudyError::Stage {
                    stage: "start",
                    reason: format!(
                        "{key}.accumulation {} is not divisible by the {} processes; run a \
                         number of processes that divides it, or change it",
                        stage.accumulation,
                        replicas.size()
                    ),
                });
            }
        }
        let prepared = if replicas.leader() {
            Self::prepare_out(&config, out, fresh)
        } else {
            Ok(())
        };
        replicas.settle("preparing the study's directory", prepared)?;
        Ok(Self {
            config,
            out: out.to_owned(),
            device,
            observer,
            stop,
            replicas,
        })
    }

    fn prepare_out(config: &StudyConfig, out: &Path, fresh: bool) -> Result<(), StudyError> {
        if fresh {
            for part in [
                "data", "scenes", "models", "runs", "eval", "report", "stages",
            ] {
                let p = out.join(part);
                if p.exists() {
                    std::fs::remove_dir_all(&p).map_err(io(&p))?;
                }
            }
        }
        std::fs::create_dir_all(out.join("stages")).map_err(io(out))?;
        let stored = stored_config(config, out, out)?;
        // A stage already done was made with the configuration recorded
        // then; continuing under another one would mix two runs.
        let started = out
            .join("stages")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some());
        medcap_io::config::pin_run_config(&out.join("study-config.json"), &stored, started)?;
        Ok(())
    }

    fn marker(&self, stage: &str) -> PathBuf {
        self.out.join("stages").join(format!("{stage}.json"))
    }

    /// The record of a finished stage, its output resolved (the record
    /// stores it relative to `stages/`, so a moved output directory still
    /// finds its stages done).
    pub fn finished(&self, stage: &str) -> Option<StageRecord> {
        let text = std::fs::read_to_string(self.marker(stage)).ok()?;
        let mut record: StageRecord = serde_json::from_str(&text).ok()?;
        record.output = paths::resolve(&record.output, &self.out.join("stages"));
        Some(record)
    }

    /// Runs stage `name` unless its record says it is done; in a
    /// data-parallel study rank 0 decides, `workers` do the work, and the
    /// others take the output from rank 0's record.
    fn stage(
        &self,
        name: &'static str,
        workers: Workers,
        run: impl FnOnce() -> Result<PathBuf, StudyError>,
    ) -> Result<PathBuf, StudyError> {
        let done = self.finished(name);
        if self.replicas.leader_says(done.is_some())? {
            let done = done.ok_or_else(|| self.not_shared(name))?;
            tracing::info!(stage = name, output = %done.output.display(), "already done");
            return Ok(done.output);
        }
        let outcome = if workers == Workers::Every || self.replicas.leader() {
            self.run_stage(name, run)
        } else {
            Ok(PathBuf::new())
        };
        let output = self.replicas.settle(STAGE_OPERATION, outcome)?;
        if self.replicas.size() == 1 {
            return Ok(output);
        }
        // Every rank takes the output as the record gives it, so that the
        // next stage's settings are the same text on every rank.
        Ok(self
            .finished(name)
            .ok_or_else(|| self.not_shared(name))?
            .output)
    }

    /// Rank 0 recorded a stage that this rank cannot read.
    fn not_shared(&self, stage: &'static str) -> StudyError {
        StudyError::Stage {
            stage,
            reason: format!(
                "rank {} does not see rank 0's record {}: every rank must have the same output \
                 directory (one machine, or a shared file system)",
                self.replicas.rank(),
                self.marker(stage).display()
            ),
        }
    }

    fn run_stage(
        &self,
        name: &'static str,
        run: impl FnOnce() -> Result<PathBuf, StudyError>,
    ) -> Result<PathBuf, StudyError> {
        tracing::info!(stage = name, "starting");
        let started = Instant::now();
        let output = run()?;
        // Work done, completion not yet recorded: a rerun must redo it.
        medcap_io::crash::point(&format!("stage-{name}"));
        let stages = self.out.join("stages");
        let writer = PathWriter::new(&stages)
            .and_then(|w| w.within(&self.out))
            .map_err(io(&stages))?;
        if !self.replicas.leader() {
            return Ok(output);
        }
        let record = StageRecord {
            seconds: started.elapsed().as_secs_f64(),
            output: writer.store(&output).map_err(io(&output))?.into(),
        };
        tracing::info!(
            stage = name,
            seconds = format!("{:.1}", record.seconds),
            "done"
        );
        medcap_io::write_json_atomic(&self.marker(name), &record)?;
        Ok(output)
    }

    /// The data stage: the prepared splits' directory.
    pub fn data_stage(&self) -> Result<PathBuf, StudyError> {
        self.stage("data", Workers::Leader, || self.data())
    }

    /// The base-model stage: the general-purpose captioner's directory.
    /// `prepared`: the data stage's output, whose training and validation
    /// captions join the scenes' in the small model's vocabulary.
    pub fn base_stage(&self, prepared: &Path) -> Result<PathBuf, StudyError> {
        self.stage("base", Workers::Every, || self.base_model(prepared))
    }

    /// FT-1 (`"ft1"`, on `ft1.csv`) or FT-2 (`"ft2"`, on `ft2.csv`): the
    /// fine-tuned model's directory.
    pub fn fine_tune_stage(
        &self,
        which: &'static str,
        base: &Path,
        prepared: &Path,
    ) -> Result<PathBuf, StudyError> {
        if which != "ft1" && which != "ft2" {
            return Err(StudyError::Stage {
                stage: which,
                reason: "no such fine-tuning stage (ft1 or ft2)".into(),
            });
        }
        let train = prepared.join(format!("{which}.csv"));
        self.stage(which, Workers::Every, || {
            self.fine_tune(which, base, &train, prepared)
        })
    }

    /// Runs every unfinished stage.
    pub fn run(&self) -> Result<StudyOutcome, StudyError> {
        let prepared = self.data_stage()?;
        let base = self.base_stage(&prepared)?;
        let ft1 = self.fine_tune_stage("ft1", &base, &prepared)?;
        let ft2 = self.fine_tune_stage("ft2", &base, &prepared)?;
        let models = [base, ft1, ft2];
        let eval_dir = self.stage("eval", Workers::Every, || self.evaluate(&prepared, &models))?;
        let report_dir = self.stage("report", Workers::Leader, || self.report(&eval_dir))?;
        let data: ReportData = {
            let models = self.load_results(&eval_dir)?;
            report::analyse(&models, self.bootstrap())
        };
        Ok(StudyOutcome { report_dir, data })
    }

    fn bootstrap(&self) -> Bootstrap {
        Bootstrap {
            resamples: self.config.bootstrap,
            seed: self.config.seed,
        }
    }

    fn data(&self) -> Result<PathBuf, StudyError> {
        let c = &self.config;
        let release = match &c.medicat {
            Some(dir) => dir.clone(),
            None => {
                let dir = self.out.join("data/synthetic");
                generate(
                    &dir,
                    &SynthConfig {
                        figures: c.synthetic_figures,
                        seed: c.seed,
                        ..Default::default()
                    },
                )?;
                dir
            }
        };
        let prepared = self.out.join("data/prepared");
        let options = PrepareOptions {
            selector: Box::new(KeywordRule::new(&["chest"], &[])?),
            plan: SplitPlan {
                test: c.test,
                val: c.val,
                ft1: c.ft1,
                ft2_extra: c.ft2_extra,
            },
            seed: c.seed,
            strict: false,
            check_images: true,
            limits: ImageLimits::default(),
            path_tree: Some(self.out.clone()),
            // The study's data is MedICaT's format (the release or the synthetic one).
            format: Some(medcap_dataset::formats::ReleaseFormat::Medicat),
            ..PrepareOptions::default()
        };
        prepare(&release, &prepared, &options, &NoProgress)?;
        for split in ["test.csv", "ft1.csv", "ft2.csv"] {
            let rows = eval::read_split(&prepared.join(split))?;
            if rows.is_empty() {
                return Err(StudyError::Stage {
                    stage: "data",
                    reason: format!(
                        "{split} is empty: the release has too few chest figures for the requested splits"
                    ),
                });
            }
        }
        Ok(prepared)
    }

    fn base_model(&self, prepared: &Path) -> Result<PathBuf, StudyError> {
        let c = &self.config;
        if let Some(dir) = &c.base_model {
            return Ok(dir.clone());
        }
        let scenes_dir = self.out.join("scenes");
        let (train, val) = (scenes_dir.join("train.csv"), scenes_dir.join("val.csv"));
        let init = self.out.join("models/base-init");
        // Rank 0 draws the scenes and makes the initial model; every rank
        // then trains it.
        let made = if self.replicas.leader() {
            self.base_init(prepared, &scenes_dir, &init)
        } else {
            Ok(())
        };
        self.replicas.settle("making the base model", made)?;
        self.train("base", &init, &train, Some(&val), &c.base_training)
    }

    /// The scenes the base model learns from and its initial weights.
    fn base_init(&self, prepared: &Path, scenes_dir: &Path, init: &Path) -> Result<(), StudyError> {
        let c = &self.config;
        let (train, val) = scenes::write_scenes(
            scenes_dir,
            c.scenes,
            (c.scenes / 10).max(2),
            c.image_size as usize,
            c.seed,
        )?;
        // BLIP's word pieces are bert-base-uncased's, which the MiniLM that
        // setup installs carries (whatever model BERTScore uses).
        let tokenizer = medcap_metrics::bertscore::default_model_dir()
            .map_err(medcap_metrics::bertscore::ModelChoiceError::from)?;
        // The vocabulary: what the base and the fine-tuned models are trained
        // on (scenes, FT-2's training figures, which include FT-1's, and the
        // validation figures); test captions are left out, so that nothing of
        // the test set reaches the models.
        let mut captions = Vec::new();
        for csv in [&train, &val] {
            captions.extend(eval::read_split(csv)?.into_iter().map(|row| row.caption));
        }
        for split in ["ft2.csv", "val.csv"] {
            captions.extend(
                eval::read_split(&prepared.join(split))?
                    .into_iter()
                    .map(|row| row.caption),
            );
        }
        small_model::create(
            init,
            small_model::SmallShape {
                image_size: c.image_size,
                patch_size: c.patch_size,
                width: c.width,
                layers: c.layers,
            },
            &tokenizer,
            captions.iter().map(String::as_str),
            c.seed,
        )?;
        Ok(())
    }

    fn fine_tune(
        &self,
        name: &'static str,
        base: &Path,
        train: &Path,
        prepared: &Path,
    ) -> Result<PathBuf, StudyError> {
        self.train(
            name,
            base,
            train,
            Some(&prepared.join("val.csv")),
            &self.config.fine_tuning,
        )
    }

    fn train(
        &self,
        name: &'static str,
        base: &Path,
        train: &Path,
        val: Option<&Path>,
        stage: &StageTraining,
    ) -> Result<PathBuf, StudyError> {
        let runs_dir = self.out.join("runs");
        let paths = StagePaths {
            base,
            train,
            val,
            runs_dir: &runs_dir,
        };
        let config = stage.train_config(name, paths, self.config.seed, self.config.workers);
        let mut trainer = Trainer::with_replicas(config, self.device, true, self.replicas.clone())?;
        let summary = trainer.run(self.observer, self.stop)?;
        if summary.outcome == Outcome::Interrupted {
            return Err(StudyError::Interrupted(name));
        }
        if summary.skipped_images > 0 {
            tracing::warn!(
                stage = name,
                skipped = summary.skipped_images,
                "training images skipped"
            );
        }
        Ok(summary.checkpoint)
    }

    fn decoding(&self) -> GenerationConfig {
        GenerationConfig {
            max_new_tokens: self.config.max_new_tokens,
            num_beams: self.config.num_beams,
            ..Default::default()
        }
    }

    fn evaluate(&self, prepared: &Path, models: &[PathBuf; 3]) -> Result<PathBuf, StudyError> {
        let test = eval::read_split(&prepared.join("test.csv"))?;
        let eval_dir = self.out.join("eval");
        // Every rank captions its share of the test figures; rank 0 has
        // them all, and scores and writes them.
        let mut captions = Vec::with_capacity(MODELS.len());
        for model_dir in models {
            captions.push(eval::caption_split(
                model_dir,
                &test,
                &self.decoding(),
                self.config.caption_batch,
                self.device,
                self.replicas.group(),
            )?);
        }
        if !self.replicas.leader() {
            return Ok(eval_dir);
        }
        // One encoder for the three models' captions, found as `medcap
        // score` finds it.
        let (scorer, _) = BertScorer::choose(
            self.config.bertscore_model.as_deref(),
            self.config.bertscore_model_type.as_deref(),
            self.config.bertscore_layer,
            self.device,
        )?;
        // The reference-free column, with an encoder of its own.
        let clip = match self.config.clip_model.as_deref() {
            Some(dir) => {
                if self
                    .config
                    .base_model
                    .as_deref()
                    .is_some_and(|b| same_dir(b, dir))
                {
                    tracing::warn!(
                        "clip_model is the base captioning model: its captions are judged by \
                         their own model (circular)"
                    );
                }
                let encoder = load_encoder(dir, self.device)?;
                let scorer = ClipScorer::new(
                    encoder,
                    ClipScoreSettings::defaults(ClipScoreForm::Hessel),
                    self.config.caption_batch,
                );
                let record = serde_json::json!({
                    "signature": scorer.signature(),
                    "trained_on_pmc": scorer.label().trained_on_pmc,
                });
                std::fs::create_dir_all(&eval_dir).map_err(io(&eval_dir))?;
                medcap_io::write_json_atomic(&eval_dir.join(CLIP_FILE), &record)?;
                Some(scorer)
            }
            None => None,
        };
        // On the embedded synthetic data the figures' true findings are known.
        let truth = match &self.config.medicat {
            None => Some(truth::read_truth(
                &self
                    .out
                    .join("data/synthetic/release")
                    .join(medcap_dataset::synth::TRUTH_FILE),
            )?),
            Some(_) => None,
        };
        for ((_, key), rows) in MODELS.iter().zip(captions) {
            let dir = eval_dir.join(key);
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            let scored = eval::score_rows(&rows, &scorer)?;
            let truth_scores = match (&truth, &scored.findings) {
                (Some(t), Some(f)) => Some(eval::truth_scores(&rows, &f.hypotheses, t)),
                _ => None,
            };
            let scores = scored.per_caption;
            let clip_values: Vec<Option<ClipScoreValue>> = match &clip {
                Some(scorer) => {
                    let paths: Vec<&Path> = rows.iter().map(|r| Path::new(&r.image_path)).collect();
                    let captions: Vec<&str> = rows.iter().map(|r| r.caption.as_str()).collect();
                    let references: Vec<Vec<&str>> =
                        rows.iter().map(|r| vec![r.reference.as_str()]).collect();
                    scorer
                        .score(&paths, &captions, &references)?
                        .into_iter()
                        .map(Result::ok)
                        .collect()
                }
                None => vec![None; rows.len()],
            };
            let writer = PathWriter::new(&dir)
                .and_then(|w| w.within(&self.out))
                .map_err(io(&dir))?;
            let mut lines = String::new();
            for (i, (row, score)) in rows.iter().zip(&scores).enumerate() {
                let stored = CaptionRow {
                    image_path: writer.store(Path::new(&row.image_path)).map_err(io(&dir))?,
                    ..row.clone()
                };
                let line = EvalLine {
                    row: stored,
                    scores: *score,
                    truth: truth_scores.as_ref().and_then(|t| t[i].clone()),
                    clip: clip_values.get(i).copied().flatten(),
                };
                lines += &serde_json::to_string(&line)
                    .map_err(|e| io(&dir.join("captions.jsonl"))(e.into()))?;
                lines.push('\n');
            }
            medcap_io::write_atomic(&dir.join("captions.jsonl"), lines.as_bytes())?;
        }
        Ok(eval_dir)
    }

    fn load_results(&self, eval_dir: &Path) -> Result<Vec<ModelResult>, StudyError> {
        MODELS
            .iter()
            .map(|(name, key)| {
                let path = eval_dir.join(key).join("captions.jsonl");
                let text = std::fs::read_to_string(&path).map_err(io(&path))?;
                let mut rows = Vec::new();
                let mut scores = Vec::new();
                let mut truth = Vec::new();
                let mut clip = Vec::new();
                for line in text.lines() {
                    let line: EvalLine =
                        serde_json::from_str(line).map_err(|e| StudyError::Stage {
                            stage: "report",
                            reason: format!("{}: {e}", path.display()),
                        })?;
                    let mut row = line.row;
                    row.image_path = paths::resolve(&row.image_path, paths::parent_dir(&path))
                        .display()
                        .to_string();
                    rows.push(row);
                    scores.push(line.scores);
                    truth.push(line.truth);
                    clip.push(line.clip);
                }
                // Every row has it (synthetic data) or the column is absent.
                let truth: Option<Vec<TruthScore>> = truth.into_iter().collect();
                Ok(ModelResult {
                    name: (*name).into(),
                    rows,
                    scores,
                    truth: truth.filter(|t| !t.is_empty()),
                    clip: eval_dir.join(CLIP_FILE).is_file().then_some(clip),
                })
            })
            .collect()
    }

    fn report(&self, eval_dir: &Path) -> Result<PathBuf, StudyError> {
        let models = self.load_results(eval_dir)?;
        let dir = self.out.join("report");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        for (run, figure) in [
            ("ft1", "figure3_ft1_loss.svg"),
            ("ft2", "figure4_ft2_loss.svg"),
        ] {
            let from = self.out.join("runs").join(run).join("loss.svg");
            if from.is_file() {
                medcap_io::copy_atomic(&from, &dir.join(figure))?;
            }
        }
        let decoding = format!(
            "{} with at most {} new tokens, the same for all three models",
            if self.config.num_beams > 1 {
                format!("beam search ({} beams)", self.config.num_beams)
            } else {
                "greedy search".into()
            },
            self.config.max_new_tokens
        );
        let clip_file = eval_dir.join(CLIP_FILE);
        let clip_encoder = if clip_file.is_file() {
            let text = std::fs::read_to_string(&clip_file).map_err(io(&clip_file))?;
            let record: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| StudyError::Stage {
                    stage: "report",
                    reason: format!("{}: {e}", clip_file.display()),
                })?;
            let mut note = format!(
                "CLIP-S and RefCLIP-S: {}",
                record["signature"]
                    .as_str()
                    .unwrap_or("an unrecorded encoder")
            );
            if record["trained_on_pmc"].as_bool() == Some(true) {
                note += " (an encoder trained on PubMed Central figures: optimistic on \
                         ROCO, PMC-OA and MedICaT test figures)";
            }
            Some(note)
        } else {
            None
        };
        report::write_report(
            &dir,
            &models,
            self.bootstrap(),
            self.config.report_sample,
            &decoding,
            clip_encoder.as_deref(),
            &self.provenance()?,
        )?;
        Ok(dir)
    }

    /// What `report/provenance.json` records; its paths relative to `report/`.
    fn provenance(&self) -> Result<serde_json::Value, StudyError> {
        let stored = stored_config(&self.config, &self.out.join("report"), &self.out)?;
        let stages: serde_json::Map<String, serde_json::Value> = STAGES
            .iter()
            .filter_map(|s| {
                self.finished(s)
                    .map(|r| ((*s).to_owned(), serde_json::json!(r.seconds)))
            })
            .collect();
        let prepared = self.out.join("data/prepared");
        let mut hash = Fnv64::default();
        for split in ["test.csv", "val.csv", "ft1.csv", "ft2.csv"] {
            let path = prepared.join(split);
            hash.update(&std::fs::read(&path).map_err(io(&path))?);
        }
        // Recorded at build time (build.rs): the working directory may be
        // any other repository.
        let commit = Some(env!("MEDCAP_GIT_COMMIT")).filter(|c| !c.is_empty());
        Ok(serde_json::json!({
            "medcap_version": env!("CARGO_PKG_VERSION"),
            "git_commit": commit,
            "libtorch": medcap_model::device::runtime_info().torch_version,
            "device": format!("{:?}", self.device),
            "data": match &stored.medicat { Some(d) => d.display().to_string(), None => "embedded synthetic MedICaT-format release".into() },
            "splits_fnv1a64": format!("{:016x}", hash.0),
            "seed": self.config.seed,
            "config": stored,
            "stage_seconds": stages,
        }))
    }
}

/// `config` with its paths in the form stored in a file in `dir`, by
/// medcap-dataset's path rule (relative where they lie in the output `out`
/// or were given relative).
fn stored_config(config: &StudyConfig, dir: &Path, out: &Path) -> Result<StudyConfig, StudyError> {
    let writer = PathWriter::new(dir)
        .and_then(|w| w.within(out))
        .map_err(io(dir))?;
    let store = |path: Option<&Path>| {
        writer
            .store_opt(path)
            .map(|p| p.map(PathBuf::from))
            .map_err(io(dir))
    };
    Ok(StudyConfig {
        medicat: store(config.medicat.as_deref())?,
        base_model: store(config.base_model.as_deref())?,
        bertscore_model: store(config.bertscore_model.as_deref())?,
        clip_model: store(config.clip_model.as_deref())?,
        ..config.clone()
    })
}

/// One line of `eval/<model>/captions.jsonl`: the caption, its scores and,
/// on synthetic data, its findings against the figure's truth.
#[derive(Debug, Serialize, Deserialize)]
struct EvalLine {
    row: CaptionRow,
    scores: CaptionScores,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    truth: Option<TruthScore>,
    /// CLIPScore against the figure, with `clip_model` (none where the
    /// image could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    clip: Option<ClipScoreValue>,
}

/// `eval/clipscore.json`: how the CLIPScore column was computed, for the report.
const CLIP_FILE: &str = "clipscore.json";

/// Whether two paths name the same directory.
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// FNV-1a, 64 bits: a dependency-free fingerprint of the split files.
struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
