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
