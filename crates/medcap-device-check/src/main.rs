//! `medcap-device-check`: the binary that `cargo xtask gpu-check --prepare`
//! puts in its bundle and `run.sh` runs on the GPU machine (or, to test the
//! bundle, on the CPU here). One JSON report of:
//!
//! - what libtorch sees (CUDA, devices, cuDNN);
//! - the tiny BLIP fixture's greedy and beam-search token ids on the device
//!   against those transformers computed on the CPU (`data-fixtures/blip`);
//! - BERTScore on the device against bert-score's values
//!   (`data-fixtures/roberta`, within 1e-4);
//! - training steps of the tiny model on the device, fp32 and bf16
//!   autocast, against the same steps on the CPU, and a resumed run
//!   against an uninterrupted one (bit-identical where the device is
//!   deterministic; the report says which it is);
//! - a process group of one on the device (NCCL on a GPU, Gloo on the
//!   CPU), under torchrun when `--torchrun` names it: its collectives,
//!   training through it against training alone, sharded captioning
//!   against captioning alone;
//! - with `--base DIR` (a blip-image-captioning-base-size checkpoint) and
//!   `--reference FILE` (what `gpu_reference.py` measured with transformers
//!   on the same device): fp32 caption ids against transformers', bf16 and
//!   fp16 captions against fp32, captioning throughput at batch 1/8/32
//!   (greedy, beam 3), and training-step time and peak memory per
//!   micro-batch size for fp32, bf16 and a frozen vision encoder.
//!
//! The process exits 1 when a check fails; the report is written either way.
// A tool run by a script: progress on stderr, a step's JSON on stdout.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod checks;
mod group;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use medcap_model::device::{DeviceChoice, runtime_info};
use medcap_model::tch::Device;
use serde_json::{Value, json};

#[derive(Parser)]
#[command(name = "medcap-device-check", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every check and measurement; writes the JSON report.
    Run(RunArgs),
    /// One training-step measurement (a child process of `run`, so that each
    /// configuration's peak memory is its own); prints one JSON object.
    Step(bench::StepArgs),
    /// The process-group check (a child process of `run`, launched by
    /// torchrun when `run` is given one); prints one JSON object.
    Group(group::GroupArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Where to run: cuda, cuda:N or cpu.
    #[arg(long, default_value = "cuda")]
    device: String,
    /// The bundle's fixtures (`blip/`, `roberta/`).
    #[arg(long)]
    fixtures: PathBuf,
    /// A base-size captioning checkpoint for the parity and timing sections.
    #[arg(long)]
    base: Option<PathBuf>,
    /// transformers' results on the same device (gpu_reference.py's JSON).
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Scratch directory for training runs.
    #[arg(long)]
    work: PathBuf,
    /// The report to write.
    #[arg(long)]
    out: PathBuf,
    /// Largest micro-batch to try when looking for the largest that fits.
    #[arg(long, default_value_t = 64)]
    max_micro_batch: usize,
    /// Images per captioning measurement.
    #[arg(long, default_value_t = 32)]
    caption_images: usize,
    /// The torchrun command line that launches the process-group check
    /// (`python3 -m torch.distributed.run`); without it the check makes
    /// its group of one itself.
    #[arg(long)]
    torchrun: Option<String>,
}

/// One check's outcome in the report.
pub(crate) struct Check {
    name: &'static str,
    passed: bool,
    /// Not run (no reference to compare with); counts neither way.
    skipped: bool,
    detail: Value,
}

impl Check {
    pub(crate) fn new(name: &'static str, passed: bool, detail: Value) -> Self {
        Self {
            name,
            passed,
            skipped: false,
            detail,
        }
    }

    pub(crate) fn skipped(name: &'static str, reason: &str) -> Self {
        Self {
            name,
            passed: false,
            skipped: true,
            detail: json!({ "skipped": reason }),
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => run(&args),
        Command::Step(args) => bench::step_command(&args).map(|()| true),
        Command::Group(args) => group::group_command(&args).map(|()| true),
    };
    match outcome {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(1);
        }
    }
}

pub(crate) fn parse_device(text: &str) -> Result<Device> {
    let choice: DeviceChoice = text.parse()?;
    Ok(choice.resolve()?)
}

fn run(args: &RunArgs) -> Result<bool> {
    let info = runtime_info();
    let runtime = json!({
        "torch": info.torch_version,
        "cuda_available": info.cuda_available,
        "cuda_devices": info.cuda_devices,
        "cudnn_available": info.cudnn_available,
        "cpu_threads": info.cpu_threads,
    });
    eprintln!(
        "libtorch {}: CUDA {} ({} devices)",
        info.torch_version, info.cuda_available, info.cuda_devices
    );
    let device = parse_device(&args.device).with_context(|| format!("device {}", args.device))?;
    std::fs::create_dir_all(&args.work)
        .with_context(|| format!("cannot create {}", args.work.display()))?;
    let mut checks = Vec::new();
    if matches!(device, Device::Cuda(_)) {
        checks.push(Check::new(
            "cuda_visible",
            info.cuda_available && info.cuda_devices > 0,
            runtime.clone(),
        ));
    }
    let blip = args.fixtures.join("blip");
    let sections: [(&str, &dyn Fn() -> Result<Check>); 5] = [
        ("tiny generation", &|| {
            checks::tiny_generation(&blip, device)
        }),
        ("bertscore", &|| {
            checks::bertscore(&args.fixtures.join("roberta"), device)
        }),
        ("training loss", &|| {
            checks::training_loss(&blip, &args.work, device)
        }),
        ("resume", &|| checks::resume(&blip, &args.work, device)),
        ("process group", &|| {
            group::check(&blip, &args.work, &args.device, args.torchrun.as_deref())
        }),
    ];
    for (name, section) in sections {
        eprintln!("== {name}");
        checks.push(section().unwrap_or_else(|e| failed(name, &e)));
    }
    let mut measurements = json!({});
    if let Some(base) = &args.base {
        let reference = match &args.reference {
            Some(path) => Some(read_json(path)?),
            None => None,
        };
        eprintln!("== base-size parity and precision");
        checks.extend(
            bench::base_checks(base, &blip, reference.as_ref(), device)
                .unwrap_or_else(|e| vec![failed("base parity", &e)]),
        );
        eprintln!("== captioning throughput");
        measurements["captioning"] = bench::captioning(base, &blip, device, args.caption_images)
            .unwrap_or_else(|e| json!({"error": format!("{e:#}")}));
        eprintln!("== training steps and memory");
        measurements["training"] = bench::training(base, &blip, &args.device, args.max_micro_batch)
            .unwrap_or_else(|e| json!({"error": format!("{e:#}")}));
        // A measurement that did not run is a failure, not an empty table:
        // an error in a section, or a configuration whose smallest
        // micro-batch (4) already failed.
        let training_rows = measurements["training"].as_array();
        let smallest_failed: Vec<&Value> = training_rows
            .into_iter()
            .flatten()
            .filter(|r| r["micro_batch"] == 4 && r.get("failed").is_some())
            .collect();
        let ran = measurements["captioning"].is_array()
            && training_rows.is_some()
            && smallest_failed.is_empty();
        checks.push(Check::new(
            "measurements_ran",
            ran,
            json!({
                "captioning_error": measurements["captioning"].get("error"),
                "training_error": measurements["training"].get("error"),
                "failed_at_micro_batch_4": smallest_failed,
            }),
        ));
        if let Some(r) = reference {
            measurements["transformers"] = r;
        }
    }
    let passed = checks.iter().all(|c| c.passed || c.skipped);
    let report = json!({
        "device": args.device,
        "runtime": runtime,
        "passed": passed,
        "checks": checks
            .iter()
            .map(|c| {
                json!({"name": c.name, "passed": c.passed, "skipped": c.skipped, "detail": c.detail})
            })
            .collect::<Vec<_>>(),
        "measurements": measurements,
    });
    write_atomically(&args.out, &serde_json::to_string_pretty(&report)?)?;
    for c in &checks {
        let verdict = match (c.skipped, c.passed) {
            (true, _) => "skipped",
            (false, true) => "pass",
            (false, false) => "FAIL",
        };
        eprintln!("{verdict} {}", c.name);
    }
    eprintln!("report: {}", args.out.display());
    Ok(passed)
}

fn failed(name: &'static str, err: &anyhow::Error) -> Check {
    Check::new(name, false, json!({"error": format!("{err:#}")}))
}

pub(crate) fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("json.partial");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}
