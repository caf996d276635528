//! Captioning throughput of medcap-model against transformers' `generate`
//! on the same images, settings and thread count, for the
//! blip-image-captioning-base geometry (247M parameters, fresh random
//! weights: speed does not depend on their values, and every caption is
//! forced to 20 new tokens so that both sides do the same work).
//!
//! Run through `cargo xtask bench caption`, which installs the reference
//! Python packages; the transformers side runs when `MEDCAP_BENCH_PYTHON`
//! has them. `MEDCAP_BENCH_DEVICE=cuda` benchmarks on a GPU,
//! `MEDCAP_BENCH_THREADS` sets the CPU threads (default: all cores).
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use medcap_model::blip::{BlipConfig, BlipForConditionalGeneration};
use medcap_model::device::DeviceChoice;
use medcap_model::generation::GenerationConfig;
use medcap_model::preprocess::{ImageProcessor, RgbImage};
use medcap_model::tch::{self, Tensor};

const IMAGES: usize = 8;
const NEW_TOKENS: usize = 20;
const REPEATS: usize = 2;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/blip")
}

fn base_config() -> BlipConfig {
    let mut config = BlipConfig::default();
    // blip-image-captioning-base: 12 text heads (the class default is 8).
    config.text_config.num_attention_heads = 12;
    config
}

/// A base-size checkpoint directory with the fixture tokenizer, made once.
fn checkpoint(dir: &Path) -> BlipForConditionalGeneration {
    let device = tch::Device::Cpu;
    if !dir.join("model.safetensors").is_file() {
        tch::manual_seed(7);
        let model = BlipForConditionalGeneration::new(base_config(), device);
        model.save(dir).unwrap();
        for file in [
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
        ] {
            std::fs::copy(fixtures().join("tiny-caption").join(file), dir.join(file)).unwrap();
        }
        ImageProcessor::from_dir(Path::new("/nonexistent"), 384)
            .unwrap()
            .save(dir)
            .unwrap();
    }
    BlipForConditionalGeneration::from_dir(dir, device)
        .unwrap()
        .0
}

fn pixel_values(dir: &Path) -> Tensor {
    let processor = ImageProcessor::from_dir(dir, 384).unwrap();
    let names = ["rgb_wide", "grey", "rgba", "palette", "rgb_large"];
    let images: Vec<RgbImage> = (0..IMAGES)
        .map(|i| {
            RgbImage::open(
                &fixtures()
                    .join("images")
                    .join(format!("{}.png", names[i % names.len()])),
            )
            .unwrap()
        })
        .collect();
    processor.pixel_values(&images).unwrap()
}

fn main() {
    let threads = std::env::var("MEDCAP_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    tch::set_num_threads(threads as i32);
    let device = std::env::var("MEDCAP_BENCH_DEVICE")
        .unwrap_or_else(|_| "cpu".into())
        .parse::<DeviceChoice>()
        .unwrap()
        .resolve()
        .unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/blip-base-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let mut model = checkpoint(&dir);
    if device != tch::Device::Cpu {
        model = BlipForConditionalGeneration::from_dir(&dir, device)
            .unwrap()
            .0;
    }
    let pixels = pixel_values(&dir);
    let pixels_file = dir.join("bench_pixels.safetensors");
    Tensor::write_safetensors(&[("pixel_values", &pixels)], &pixels_file).unwrap();

    let settings = [
        ("greedy, batch 1", 1, 1),
        ("greedy, batch 8", 8, 1),
        ("beam 3, batch 8", 8, 3),
    ];
    let mut ours = Vec::new();
    for (name, batch, beams) in settings {
        let config = GenerationConfig {
            max_new_tokens: NEW_TOKENS,
            min_new_tokens: NEW_TOKENS,
            num_beams: beams,
            ..Default::default()
        };
        let mut best = f64::INFINITY;
        for _ in 0..REPEATS {
            let start = Instant::now();
            for first in (0..IMAGES).step_by(batch) {
                let chunk = pixels.narrow(0, first as i64, batch.min(IMAGES - first) as i64);
                let embeds = {
                    let _g = tch::no_grad_guard();
                    model.encode_images(&chunk, false).unwrap()
                };
                let out = model.generate(&embeds, &[30522], &config).unwrap();
                assert!(out.iter().all(|s| s.len() == 1 + NEW_TOKENS));
            }
            best = best.min(start.elapsed().as_secs_f64());
        }
        ours.push((name, IMAGES as f64 / best));
    }

    let python = std::env::var("MEDCAP_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/caption_transformers.py");
    let reference: Option<serde_json::Value> = if device == tch::Device::Cpu
        || std::env::var("MEDCAP_BENCH_DEVICE").is_ok_and(|d| d == "cpu")
    {
        Command::new(&python)
            .arg(&script)
            .arg(&dir)
            .arg(&pixels_file)
            .arg(threads.to_string())
            .arg(REPEATS.to_string())
            .output()
            .ok()
            .filter(|o| {
                if !o.status.success() {
                    eprintln!(
                        "transformers side skipped ({python}): {}",
                        String::from_utf8_lossy(&o.stderr)
                            .lines()
                            .last()
                            .unwrap_or("")
                    );
                }
                o.status.success()
            })
            .and_then(|o| serde_json::from_slice(&o.stdout).ok())
    } else {
        None
    };

    println!(
        "\nBLIP base captioning, {IMAGES} images, {NEW_TOKENS} new tokens each, device {device:?}, {threads} threads (libtorch {})",
        medcap_model::device::runtime_info().torch_version
    );
    println!("| setting | medcap (images/s) | transformers 4.57.1 (images/s) | ratio |");
    println!("|---|---:|---:|---:|");
    for (name, rate) in ours {
        match reference.as_ref().and_then(|r| r[name].as_f64()) {
            Some(theirs) => println!(
                "| {name} | {rate:.3} | {theirs:.3} | {:.2}x |",
                rate / theirs
            ),
            None => println!("| {name} | {rate:.3} | - | - |"),
        }
    }
}
