//! `cargo xtask bench dist`: what data parallelism costs and gives on this
//! machine. The same training run (fixture images, a BLIP checkpoint,
//! micro-batches of 4, 2 a step) by one process with 2 threads and by 2
//! processes with 1 thread each under the project's torchrun; from each
//! run's `metrics.jsonl`: images per second, and for the 2-process run the
//! bytes all-reduced and the seconds spent in all-reduces per optimizer
//! step. Writes `target/bench-dist/report.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The checkpoints measured: (label, directory).
pub fn models(root: &Path, base: bool) -> Vec<(String, PathBuf)> {
    let mut models = vec![(
        "tiny (data-fixtures/blip/tiny-caption)".to_owned(),
        root.join("data-fixtures/blip/tiny-caption"),
    )];
    if base {
        models.push((
            "BLIP-base size (random, 247M parameters)".to_owned(),
            root.join("target/blip-base-parity"),
        ));
    }
    models
}

/// One run's figures.
struct Figures {
    images_per_second: f64,
    bytes_per_step: Option<f64>,
    communication_per_step: Option<f64>,
    seconds_per_step: f64,
}

fn write_run(dir: &Path, root: &Path, model: &Path, steps: usize) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let images = root.join("data-fixtures/blip/images");
    let names = ["rgb_wide", "grey", "rgba", "palette", "rgb_large"];
    let mut csv = String::from("id,image_path,caption\n");
    for i in 0..64 {
        let image = images.join(format!("{}.png", names[i % names.len()]));
        writeln!(
            csv,
            "f{i},{},a chest radiograph with a small left pleural effusion {i}",
            image.display()
        )?;
    }
    std::fs::write(dir.join("train.csv"), csv)?;
    let _ = std::fs::remove_dir_all(dir.join("runs"));
    std::fs::write(
        dir.join("train.toml"),
        format!(
            "[data]\ntrain_csv = \"train.csv\"\nworkers = 1\n\
             [model]\nbase_model = {:?}\n[loss]\nkind = \"ce+contrastive\"\n\
             [optim]\nmicro_batch = 4\naccumulation = 2\nepochs = 1000\nmax_steps = {steps}\n\
             lr = 0.0001\n\
             [run]\nname = \"bench\"\nruns_dir = \"runs\"\nseed = 1\neval_every = 0\n\
             checkpoint_every = 0\nlog_every = 1\n",
            model.display().to_string()
        ),
    )?;
    Ok(())
}

fn figures(dir: &Path) -> Result<Figures> {
    let path = dir.join("runs/bench/metrics.jsonl");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not JSON lines", path.display()))?;
    // The first step warms up (allocations, the first all-reduce's
    // connections): left out.
    let steady: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["train_loss"].is_number())
        .skip(1)
        .collect();
    if steady.is_empty() {
        bail!("{}: too few steps to measure", path.display());
    }
    let n = steady.len() as f64;
    let mean = |key: &str| -> Option<f64> {
        let values: Vec<f64> = steady.iter().filter_map(|r| r[key].as_f64()).collect();
        (values.len() == steady.len()).then(|| values.iter().sum::<f64>() / n)
    };
    let images_per_second = mean("images_per_second").context("no images_per_second")?;
    Ok(Figures {
        images_per_second,
        bytes_per_step: mean("all_reduced_bytes"),
        communication_per_step: mean("communication_seconds"),
        // micro_batch 4 × accumulation 2 images a step.
        seconds_per_step: 8.0 / images_per_second,
    })
}

/// Runs both layouts on every model and writes the report.
pub fn run(
    root: &Path,
    medcap: &Path,
    env: &dyn Fn(&mut Command),
    models: &[(String, PathBuf)],
) -> Result<()> {
    let torchrun = root.join(".venv/bin/torchrun");
    if !torchrun.is_file() {
        bail!(
            "no torchrun at {} (cargo xtask setup installs it)",
            torchrun.display()
        );
    }
    let out = root.join("target/bench-dist");
    let mut report = String::from(
        "# Data-parallel training on this machine (`cargo xtask bench dist`)\n\n\
         Per optimizer step (8 images: micro-batches of 4, 2 a step), steady state (first \
         step left out). `1 × 2`: one process, 2 threads; `2 × 1`: two processes under \
         torchrun, 1 thread each, gradients summed by Gloo over loopback.\n\n\
         | model | layout | s/step | images/s | all-reduced MB/step | in all-reduce s/step |\n\
         |---|---|---|---|---|---|\n",
    );
    for (label, model) in models {
        if !model.join("model.safetensors").is_file() {
            bail!("{} has no model.safetensors", model.display());
        }
        let steps = if label.starts_with("tiny") { 40 } else { 4 };
        for (layout, processes) in [("1 × 2", 1), ("2 × 1", 2)] {
            let dir = out.join(format!(
                "{}-{processes}",
                if label.starts_with("tiny") {
                    "tiny"
                } else {
                    "base"
                }
            ));
            write_run(&dir, root, model, steps)?;
            let mut cmd = if processes == 1 {
                let mut cmd = Command::new(medcap);
                cmd.env("OMP_NUM_THREADS", "2");
                cmd
            } else {
                let mut cmd = Command::new(&torchrun);
                cmd.args(["--standalone", "--nproc-per-node", "2", "--no-python"])
                    .arg(medcap)
                    .env("OMP_NUM_THREADS", "1");
                cmd
            };
            cmd.args(["train", "--config", "train.toml", "--device", "cpu"])
                .current_dir(&dir)
                .env("MEDCAP_LOG", "warn");
            env(&mut cmd);
            let status = cmd
                .status()
                .with_context(|| format!("cannot run {}", medcap.display()))?;
            if !status.success() {
                bail!("the {layout} run on {label} failed ({status})");
            }
            let f = figures(&dir)?;
            let mb = f
                .bytes_per_step
                .map_or("–".to_owned(), |b| format!("{:.1}", b / 1e6));
            let comm = f.communication_per_step.map_or("–".to_owned(), |s| {
                format!("{s:.3} ({:.0}%)", 100.0 * s / f.seconds_per_step)
            });
            writeln!(
                report,
                "| {label} | {layout} | {:.3} | {:.1} | {mb} | {comm} |",
                f.seconds_per_step, f.images_per_second
            )?;
        }
    }
    std::fs::create_dir_all(&out)?;
    let path = out.join("report.md");
    std::fs::write(&path, &report).with_context(|| format!("cannot write {}", path.display()))?;
    println!("{report}\nreport: {}", path.display());
    Ok(())
}
