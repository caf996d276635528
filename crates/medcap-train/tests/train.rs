//! Training on the tiny transformers-made checkpoint of `data-fixtures/blip`:
//! the loss goes down, gradient accumulation equals one big batch, an
//! interrupted and resumed run ends bit-identical to an uninterrupted one,
//! a diverging run stops with its last checkpoint intact, and unreadable
//! images are skipped and counted.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use medcap_model::blip::BlipForConditionalGeneration;
use medcap_train::TrainError;
use medcap_train::config::{LossKind, TrainConfig};
use medcap_train::run::MetricsRow;
use medcap_train::trainer::{Observer, Outcome, Trainer};
use tch::Device;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/blip")
}

const CAPTIONS: [&str; 4] = [
    "a chest x-ray with a left pleural effusion",
    "frontal radiograph showing cardiomegaly",
    "right upper lobe consolidation",
    "normal chest radiograph",
];

/// A CSV of `rows` examples over the fixture images, captions cycling.
fn write_csv(dir: &Path, name: &str, rows: usize, extra: &[(&str, &str)]) -> PathBuf {
    let images = ["rgb_wide", "grey", "rgba", "palette", "rgb_large"];
    let mut text = String::from("id,pdf_hash,image_path,caption,raw_caption\n");
    for i in 0..rows {
        let image = fixtures()
            .join("images")
            .join(format!("{}.png", images[i % images.len()]));
        let caption = CAPTIONS[i % CAPTIONS.len()];
        text += &format!("f{i},p{i},{},{caption},{caption}\n", image.display());
    }
    for (image, caption) in extra {
        text += &format!("x,x,{image},{caption},{caption}\n");
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn config(dir: &Path, name: &str, train_rows: usize) -> TrainConfig {
    let mut c = TrainConfig::default();
    c.data.train_csv = write_csv(dir, &format!("{name}-train.csv"), train_rows, &[]);
    c.data.val_csv = Some(write_csv(dir, &format!("{name}-val.csv"), 4, &[]));
    c.data.workers = 1;
    c.model.base_model = fixtures().join("tiny-caption");
    c.run.runs_dir = dir.join("runs");
    c.run.name = name.into();
    c.run.log_every = 1;
    c.optim.lr = 1e-3;
    c.optim.epochs = 1;
    c
}

struct Quiet;
impl Observer for Quiet {}

fn weights(dir: &Path) -> Vec<(String, tch::Tensor)> {
    let (model, _) = BlipForConditionalGeneration::from_dir(dir, Device::Cpu).unwrap();
    let mut v: Vec<_> = model.vars().variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn training_drives_the_loss_down_and_leaves_a_complete_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), "learn", 8);
    c.optim.micro_batch = 4;
    c.optim.accumulation = 1;
    c.optim.epochs = 15;
    c.optim.lr = 1e-2;
    c.loss.kind = LossKind::CePlusContrastive;
    c.loss.contrastive_weight = 0.1;
    let mut trainer = Trainer::new(c, Device::Cpu, false).unwrap();
    let summary = trainer.run(&Quiet, &AtomicBool::new(false)).unwrap();
    assert_eq!(summary.outcome, Outcome::Finished);
    assert_eq!(summary.steps, 30);
    let rows: Vec<MetricsRow> = std::fs::read_to_string(summary.run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let losses: Vec<f64> = rows.iter().filter_map(|r| r.train_loss).collect();
    let first: f64 = losses[..3].iter().sum::<f64>() / 3.0;
    let last: f64 = losses[losses.len() - 3..].iter().sum::<f64>() / 3.0;
    assert!(last < 0.5 * first, "training loss {first:.3} -> {last:.3}");
    let vals: Vec<f64> = rows.iter().filter_map(|r| r.val_loss).collect();
    assert_eq!(vals.len(), 15, "one validation per epoch");
    assert!(vals.last().unwrap() < vals.first().unwrap());
    for file in ["config.json", "metrics.jsonl", "loss.svg"] {
        assert!(summary.run_dir.join(file).is_file(), "{file}");
    }
    for which in ["latest", "best"] {
        let ckpt = summary.run_dir.join("checkpoints").join(which);
        for file in [
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "preprocessor_config.json",
            "optimizer.safetensors",
            "contrastive_heads.safetensors",
            "state.json",
        ] {
            assert!(ckpt.join(file).is_file(), "{which}/{file}");
        }
    }
    // The checkpoint is a regular captioning model directory.
    assert!(BlipForConditionalGeneration::from_dir(&summary.checkpoint, Device::Cpu).is_ok());
}

#[test]
fn four_micro_batches_of_four_update_like_one_batch_of_sixteen() {
    let dir = tempfile::tempdir().unwrap();
    let mut finals = Vec::new();
    for (name, micro, accumulation) in [("accumulated", 4, 4), ("whole", 16, 1)] {
        let mut c = config(dir.path(), name, 16);
        c.data.val_csv = None;
        c.loss.kind = LossKind::Ce;
        c.optim.micro_batch = micro;
        c.optim.accumulation = accumulation;
        c.optim.grad_clip = None;
        c.optim.max_steps = Some(1);
        // Adam's first step is lr * g / (|g| + eps): with a tiny eps it maps
        // float noise on zero gradients (e.g. key biases, which softmax
        // ignores) to full-size steps; a large eps keeps the update linear in g.
        c.optim.eps = 1.0;
        let mut trainer = Trainer::new(c, Device::Cpu, false).unwrap();
        let summary = trainer.run(&Quiet, &AtomicBool::new(false)).unwrap();
        assert_eq!(summary.steps, 1);
        finals.push(weights(&summary.run_dir.join("checkpoints/latest")));
    }
    let before = weights(&fixtures().join("tiny-caption"));
    let mut moved = 0;
    for (((name, a), (_, b)), (_, original)) in finals[0].iter().zip(&finals[1]).zip(&before) {
        let diff = (a - b).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "{name} differs by {diff}");
        if (a - original).abs().max().double_value(&[]) > 1e-5 {
            moved += 1;
        }
    }
    assert!(moved > 10, "the step changed only {moved} tensors");
}

/// Raises the stop flag after a given step, as Ctrl-C would.
struct StopAt(usize, AtomicBool);
impl Observer for StopAt {
    fn step(&self, step: usize, _: f64, _: f64) {
        if step == self.0 {
            self.1.store(true, Ordering::SeqCst);
        }
    }
}

#[test]
fn an_interrupted_run_resumes_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let base = |name: &str| {
        let mut c = config(dir.path(), name, 12);
        c.data.random_crop = true;
        c.optim.micro_batch = 2;
        c.optim.accumulation = 2;
        c.optim.epochs = 2; // 3 steps per epoch
        c.loss.kind = LossKind::CePlusContrastive;
        c
    };
    let mut straight = Trainer::new(base("straight"), Device::Cpu, false).unwrap();
    let s = straight.run(&Quiet, &AtomicBool::new(false)).unwrap();
    assert_eq!(s.steps, 6);

    let mut four = base("four");
    four.optim.max_steps = Some(4);
    let f = Trainer::new(four, Device::Cpu, false)
        .unwrap()
        .run(&Quiet, &AtomicBool::new(false))
        .unwrap();
    let c = base("interrupted");
    let stopper = StopAt(4, AtomicBool::new(false));
    let mut first = Trainer::new(c.clone(), Device::Cpu, false).unwrap();
    let cut = first.run(&stopper, &stopper.1).unwrap();
    assert_eq!((cut.outcome, cut.steps), (Outcome::Interrupted, 4));
    drop(first);
    {
        let a = weights(&f.run_dir.join("checkpoints/latest"));
        let b = weights(&cut.run_dir.join("checkpoints/latest"));
        for ((name, x), (_, y)) in a.iter().zip(&b) {
            assert!(x.equal(y), "{name} differs at step 4 already");
        }
    }
    // Starting again without resume refuses to overwrite the run.
    assert!(matches!(
        Trainer::new(c.clone(), Device::Cpu, false),
        Err(TrainError::Config { .. })
    ));
    let mut second = Trainer::new(c, Device::Cpu, true).unwrap();
    let done = second.run(&Quiet, &AtomicBool::new(false)).unwrap();
    assert_eq!((done.outcome, done.steps), (Outcome::Finished, 6));

    let a = weights(&s.run_dir.join("checkpoints/latest"));
    let b = weights(&done.run_dir.join("checkpoints/latest"));
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x.equal(y), "{name} differs after resume");
    }
}

#[test]
fn a_diverging_run_stops_with_its_last_checkpoint_intact() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), "diverge", 8);
    c.data.val_csv = None;
    c.optim.lr = 1e30;
    c.optim.grad_clip = None;
    c.optim.micro_batch = 2;
    c.optim.accumulation = 1;
    c.optim.epochs = 3;
    c.run.checkpoint_every = 1;
    let mut trainer = Trainer::new(c, Device::Cpu, false).unwrap();
    let err = trainer.run(&Quiet, &AtomicBool::new(false)).unwrap_err();
    let TrainError::NonFinite {
        step, checkpoint, ..
    } = &err
    else {
        panic!("expected a non-finite loss, got {err}");
    };
    let checkpoint = checkpoint.clone().unwrap();
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(checkpoint.join("state.json")).unwrap())
            .unwrap();
    assert_eq!(state["step"].as_u64().unwrap() as usize, step - 1);
    assert!(BlipForConditionalGeneration::from_dir(&checkpoint, Device::Cpu).is_ok());
    assert!(err.to_string().contains("last good checkpoint"), "{err}");
}

#[test]
fn unreadable_images_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.png");
    std::fs::write(&broken, b"not a png").unwrap();
    let missing = dir.path().join("missing.png");
    let mut c = config(dir.path(), "skips", 0);
    c.data.train_csv = write_csv(
        dir.path(),
        "skips-train.csv",
        6,
        &[
            (broken.to_str().unwrap(), "broken"),
            (missing.to_str().unwrap(), "missing"),
        ],
    );
    c.optim.micro_batch = 4;
    c.optim.accumulation = 1;
    let mut trainer = Trainer::new(c, Device::Cpu, false).unwrap();
    let summary = trainer.run(&Quiet, &AtomicBool::new(false)).unwrap();
    assert_eq!(summary.skipped_images, 2);
    assert_eq!(summary.outcome, Outcome::Finished);
}

#[test]
fn a_training_set_without_a_readable_image_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.png");
    let mut c = config(dir.path(), "nothing", 0);
    c.data.val_csv = None;
    c.data.train_csv = write_csv(
        dir.path(),
        "nothing-train.csv",
        0,
        &[
            (missing.to_str().unwrap(), "a"),
            (missing.to_str().unwrap(), "b"),
        ],
    );
    c.optim.micro_batch = 2;
    c.optim.accumulation = 1;
    let mut trainer = Trainer::new(c, Device::Cpu, false).unwrap();
    let err = trainer.run(&Quiet, &AtomicBool::new(false)).unwrap_err();
    assert!(
        matches!(err, TrainError::NoData { skipped: 2, .. }),
        "{err}"
    );
}

#[test]
fn a_run_interrupted_at_an_epoch_boundary_resumes_too() {
    let dir = tempfile::tempdir().unwrap();
    let base = |name: &str| {
        let mut c = config(dir.path(), name, 12);
        c.optim.micro_batch = 2;
        c.optim.accumulation = 2;
        c.optim.epochs = 2; // 3 steps per epoch: step 3 ends the first
        c
    };
    let straight = Trainer::new(base("whole"), Device::Cpu, false)
        .unwrap()
        .run(&Quiet, &AtomicBool::new(false))
        .unwrap();
    let c = base("boundary");
    let stopper = StopAt(3, AtomicBool::new(false));
    let cut = Trainer::new(c.clone(), Device::Cpu, false)
        .unwrap()
        .run(&stopper, &stopper.1)
        .unwrap();
    assert_eq!((cut.outcome, cut.steps), (Outcome::Interrupted, 3));
    let done = Trainer::new(c, Device::Cpu, true)
        .unwrap()
        .run(&Quiet, &AtomicBool::new(false))
        .unwrap();
    assert_eq!((done.outcome, done.steps), (Outcome::Finished, 6));
    let a = weights(&straight.run_dir.join("checkpoints/latest"));
    let b = weights(&done.run_dir.join("checkpoints/latest"));
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(
            x.equal(y),
            "{name} differs after resuming at the epoch boundary"
        );
    }
}

fn train_losses(run_dir: &Path) -> Vec<f64> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<MetricsRow>(l).unwrap())
        .filter_map(|r| r.train_loss)
        .collect()
}

/// (name, dtype, shape) of every tensor of a safetensors file, sorted.
fn layout(path: &Path) -> Vec<(String, tch::Kind, Vec<i64>)> {
    let mut v: Vec<_> = tch::Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t.kind(), t.size()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn bf16_and_fp16_mixed_precision_track_fp32_and_save_fp32_checkpoints() {
    use medcap_train::config::Precision;
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for precision in [Precision::F32, Precision::Bf16, Precision::F16] {
        let mut c = config(dir.path(), precision.name(), 8);
        c.optim.precision = precision;
        c.optim.micro_batch = 4;
        c.optim.accumulation = 1;
        c.optim.epochs = 6;
        c.optim.lr = 1e-2;
        c.loss.kind = LossKind::CePlusContrastive;
        c.loss.contrastive_weight = 0.1;
        let summary = Trainer::new(c, Device::Cpu, false)
            .unwrap()
            .run(&Quiet, &AtomicBool::new(false))
            .unwrap();
        assert_eq!((summary.outcome, summary.steps), (Outcome::Finished, 12));
        runs.push((precision, summary));
    }
    let fp32 = train_losses(&runs[0].1.run_dir);
    for (precision, summary) in &runs[1..] {
        let losses = train_losses(&summary.run_dir);
        // The first step starts from the same weights on the same batch:
        // only rounding separates the losses; autocast did round.
        let relative = (losses[0] - fp32[0]).abs() / fp32[0];
        assert!(
            relative > 0.0,
            "{precision}: the loss equals fp32's, autocast is off"
        );
        assert!(
            relative < 0.02,
            "{precision}: first loss {} vs fp32 {}",
            losses[0],
            fp32[0]
        );
        // And it learns. fp16 skips the updates whose scaled gradients
        // overflowed (torch's initial scale of 2^16 is too large for this
        // model's first steps, as GradScaler's documentation warns), so it
        // is held to a looser bound.
        let state = state_of(&summary.run_dir);
        let (first, last) = (losses[0], losses[losses.len() - 1]);
        let bound = if *precision == Precision::F16 {
            0.75
        } else {
            0.6
        };
        assert!(
            last < bound * first,
            "{precision}: loss {first:.3} -> {last:.3}; {state}"
        );
        if *precision == Precision::Bf16 {
            let end = fp32[fp32.len() - 1];
            assert!(
                (last - end).abs() < 0.25 * end,
                "bf16: final loss {last:.3} vs fp32 {end:.3}"
            );
        }
        // Checkpoints keep transformers' layout in fp32: the keys, dtypes
        // and shapes of the fixture that transformers' save_pretrained wrote.
        for which in ["latest", "best"] {
            let saved = summary
                .run_dir
                .join("checkpoints")
                .join(which)
                .join("model.safetensors");
            assert_eq!(
                layout(&saved),
                layout(&fixtures().join("tiny-caption/model.safetensors")),
                "{precision} {which}"
            );
        }
        assert!(BlipForConditionalGeneration::from_dir(&summary.checkpoint, Device::Cpu).is_ok());
    }
    // fp16's loss scale started at torch's 2^16 and halved once per
    // skipped step (growth needs 2000 clean steps); bf16 has none.
    let state = state_of(&runs[2].1.run_dir);
    let skipped = state["overflow_steps"].as_u64().unwrap();
    assert!(skipped < 12, "every fp16 step overflowed: {state}");
    assert_eq!(
        state["loss_scale"]["scale"].as_f64().unwrap() * 2f64.powi(skipped as i32),
        65536.0,
        "{state}"
    );
    let state = state_of(&runs[1].1.run_dir);
    assert!(
        state.get("loss_scale").is_none(),
        "bf16 needs no loss scale: {state}"
    );
    assert_eq!(state["overflow_steps"], 0, "{state}");
}

fn state_of(run_dir: &Path) -> serde_json::Value {
    let path = run_dir.join("checkpoints/latest/state.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// An fp16 step whose scaled gradients overflow is skipped, not applied
/// and not fatal: the weights stay, the scale halves, the run goes on, and
/// a resumed run counts Adam's updates without the skipped step.
#[test]
fn an_fp16_overflow_skips_the_update_and_halves_the_scale() {
    use medcap_train::config::Precision;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), "overflow", 4);
    c.data.val_csv = None;
    c.optim.precision = Precision::F16;
    c.optim.micro_batch = 4;
    c.optim.accumulation = 1;
    c.loss.kind = LossKind::Ce;
    c.optim.epochs = 2; // one step per epoch
    let stopper = StopAt(1, AtomicBool::new(false));
    let first = Trainer::new(c.clone(), Device::Cpu, false)
        .unwrap()
        .run(&stopper, &stopper.1)
        .unwrap();
    assert_eq!((first.outcome, first.steps), (Outcome::Interrupted, 1));
    let latest = first.run_dir.join("checkpoints/latest");
    let before = weights(&latest);
    // A scale far past fp16's range (65504): the backward pass overflows.
    let state_path = latest.join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    let overflowed_before = state["overflow_steps"].as_u64().unwrap();
    state["loss_scale"]["scale"] = 2f64.powi(100).into();
    std::fs::write(&state_path, state.to_string()).unwrap();
    let second = Trainer::new(c, Device::Cpu, true)
        .unwrap()
        .run(&Quiet, &AtomicBool::new(false))
        .unwrap();
    assert_eq!((second.outcome, second.steps), (Outcome::Finished, 2));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    assert_eq!(
        state["overflow_steps"].as_u64().unwrap(),
        overflowed_before + 1,
        "{state}"
    );
    assert_eq!(
        state["loss_scale"]["scale"].as_f64(),
        Some(2f64.powi(99)),
        "{state}"
    );
    for ((name, x), (_, y)) in before.iter().zip(&weights(&latest)) {
        assert!(x.equal(y), "{name} changed in a skipped step");
    }
}

/// The golden rates of `data-fixtures/schedules/gen.py`: transformers'
/// schedule functions driven as a training loop drives them.
fn schedule_cases() -> Vec<serde_json::Value> {
    let path = fixtures().join("../schedules/golden.json");
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    golden["cases"].as_array().unwrap().clone()
}

fn schedule_config(case: &serde_json::Value) -> medcap_train::config::OptimConfig {
    use medcap_train::config::Schedule;
    medcap_train::config::OptimConfig {
        lr: case["lr"].as_f64().unwrap(),
        warmup_steps: case["warmup_steps"].as_u64().unwrap() as usize,
        schedule: match case["schedule"].as_str().unwrap() {
            "constant" => Schedule::Constant,
            "linear" => Schedule::Linear,
            "cosine" => Schedule::Cosine,
            other => panic!("{other}"),
        },
        ..Default::default()
    }
}

#[test]
fn every_schedule_gives_transformers_rate_at_every_update() {
    let cases = schedule_cases();
    assert_eq!(cases.len(), 48);
    for case in &cases {
        let optim = schedule_config(case);
        let total = case["total"].as_u64().unwrap() as usize;
        for (k, want) in case["rates"].as_array().unwrap().iter().enumerate() {
            let want = want.as_f64().unwrap();
            let got = medcap_train::optim::learning_rate(&optim, k, total);
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1e-3),
                "{} warm-up {} of {total}: update {k} runs at {got}, transformers {want}",
                case["schedule"],
                optim.warmup_steps
            );
        }
    }
}

#[test]
fn a_run_logs_the_rate_each_update_ran_at() {
    // Linear warm-up over 3 updates, 8 updates: transformers gives 0,
    // 3.33e-4, 6.67e-4, 1e-3, 8e-4, 6e-4, 4e-4, 2e-4.
    let case = schedule_cases()
        .into_iter()
        .find(|c| c["schedule"] == "linear" && c["warmup_steps"] == 3 && c["total"] == 8)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), "warmup", 8);
    c.loss.kind = LossKind::Ce;
    c.optim = medcap_train::config::OptimConfig {
        micro_batch: 1,
        accumulation: 1,
        epochs: 1,
        ..schedule_config(&case)
    };
    let mut trainer = Trainer::new(c, Device::Cpu, false).unwrap();
    let summary = trainer.run(&Quiet, &AtomicBool::new(false)).unwrap();
    assert_eq!(summary.steps, 8);
    let logged: Vec<(usize, f64)> = std::fs::read_to_string(summary.run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<MetricsRow>(l).unwrap())
        .filter(|r| r.train_loss.is_some())
        .map(|r| (r.step, r.lr))
        .collect();
    let want = case["rates"].as_array().unwrap();
    assert_eq!(logged.len(), 8, "{logged:?}");
    for (step, lr) in logged {
        let w = want[step - 1].as_f64().unwrap();
        assert!(
            (lr - w).abs() < 1e-12,
            "update {step}: {lr} logged, {w} wanted"
        );
    }
}
