//! One optimisation step of the blip-image-captioning-base geometry (micro-batch 4,
//! captioning cross-entropy, AdamW) in medcap-train against the same step in PyTorch
//! (transformers' `BlipForConditionalGeneration`) on the same inputs and threads: steps
//! per second and peak resident memory of each process.
//!
//! Run through `cargo xtask bench train` (it makes the base-size checkpoint with
//! medcap-model's caption benchmark first and installs transformers into .venv).
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use medcap_model::blip::BlipForConditionalGeneration;
use medcap_model::preprocess::{ImageProcessor, RgbImage};
use medcap_model::tokenizer::BlipTokenizer;
use medcap_train::config::{OptimConfig, OptimizerKind};
use medcap_train::loss::caption_loss_sum;
use medcap_train::optim::Adam;
use medcap_train::targets::caption_targets;
use tch::{Device, Tensor};

const STEPS: usize = 3;

fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() {
    let threads = std::env::var("MEDCAP_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    tch::set_num_threads(threads as i32);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join("target/blip-base-bench");
    if !dir.join("model.safetensors").is_file() {
        println!(
            "skipped: {} is missing; `cargo xtask bench train` makes it",
            dir.display()
        );
        return;
    }
    let (model, _) = BlipForConditionalGeneration::from_dir(&dir, Device::Cpu).unwrap();
    let tokenizer = BlipTokenizer::from_dir(&dir, &model.config().text_config).unwrap();
    let processor = ImageProcessor::from_dir(&dir, 384).unwrap();
    let images: Vec<RgbImage> = ["rgb_wide", "grey", "rgba", "rgb_large"]
        .iter()
        .map(|n| RgbImage::open(&root.join(format!("data-fixtures/blip/images/{n}.png"))).unwrap())
        .collect();
    let pixels = processor.pixel_values(&images).unwrap();
    let captions: Vec<String> = [
        "frontal chest radiograph showing a left pleural effusion",
        "portable ap chest x-ray with an enlarged cardiac silhouette",
        "right upper lobe consolidation on a pa chest radiograph",
        "chest x-ray showing a small right apical pneumothorax",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let targets = caption_targets(&tokenizer, &captions, None, 40).unwrap();
    let inputs = dir.join("bench_train_inputs.safetensors");
    Tensor::write_safetensors(
        &[
            ("pixel_values", &pixels),
            ("input_ids", &targets.input_ids),
            ("attention_mask", &targets.attention_mask),
            ("labels", &targets.labels),
        ],
        &inputs,
    )
    .unwrap();

    let mut params: Vec<(String, Tensor)> = model.vars().variables().into_iter().collect();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let mut optimizer = Adam::new(
        params,
        &OptimConfig {
            optimizer: OptimizerKind::Adamw,
            ..Default::default()
        },
    );
    let mut step = || {
        let embeds = model.encode_images_t(&pixels, false, true).unwrap();
        let out = model.decode(
            &embeds,
            &targets.input_ids,
            Some(&targets.attention_mask),
            true,
        );
        let loss =
            caption_loss_sum(&out.logits, &targets.labels, 0.0) / targets.target_tokens as f64;
        loss.backward();
        optimizer.update(1e-5);
        optimizer.zero_grad();
    };
    step();
    let start = Instant::now();
    for _ in 0..STEPS {
        step();
    }
    let ours = STEPS as f64 / start.elapsed().as_secs_f64();
    let our_peak = peak_mib();

    let python = std::env::var("MEDCAP_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/train_step_torch.py");
    let theirs: Option<serde_json::Value> = Command::new(&python)
        .arg(&script)
        .arg(&dir)
        .arg(&inputs)
        .arg(threads.to_string())
        .arg(STEPS.to_string())
        .output()
        .map_err(|e| eprintln!("PyTorch side skipped: cannot run {python}: {e}"))
        .ok()
        .filter(|o| {
            if !o.status.success() {
                eprintln!(
                    "PyTorch side skipped ({python}): {}",
                    String::from_utf8_lossy(&o.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                );
            }
            o.status.success()
        })
        .and_then(|o| serde_json::from_slice(&o.stdout).ok());
    println!(
        "\nBLIP base training step (micro-batch 4, cross-entropy, AdamW), CPU, {threads} threads, libtorch {}",
        medcap_model::device::runtime_info().torch_version
    );
    println!("| | medcap | PyTorch (transformers 4.57.1) | ratio |");
    println!("|---|---:|---:|---:|");
    match theirs {
        Some(t) => {
            let (rate, peak) = (
                t["steps_per_second"].as_f64().unwrap_or(f64::NAN),
                t["peak_mib"].as_f64().unwrap_or(f64::NAN),
            );
            println!("| steps/s | {ours:.4} | {rate:.4} | {:.2}x |", ours / rate);
            println!(
                "| peak memory (MiB) | {our_peak:.0} | {peak:.0} | {:.2}x |",
                our_peak / peak
            );
        }
        None => {
            println!("| steps/s | {ours:.4} | - | - |");
            println!("| peak memory (MiB) | {our_peak:.0} | - | - |");
        }
    }
}
