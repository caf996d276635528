//! The process-group check: a group of one process on the device (NCCL on
//! a GPU, Gloo on the CPU), as `torchrun --nproc-per-node 1` makes it. Its
//! collectives give back what they were given, a few data-parallel
//! training steps through it equal the same steps without a group, and
//! captioning sharded over it equals captioning alone. `run` starts it as
//! a child process (`group`), under torchrun when `run.sh` passes one, so
//! that the group's rendezvous and shutdown are those of a real launch.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use medcap_model::distributed::{ProcessGroup, World};
use medcap_model::generation::GenerationConfig;
use medcap_model::pipeline::Captioner;
use medcap_model::tch::{Device, Kind, Tensor};
use medcap_train::trainer::{Replicas, Trainer};
use serde_json::{Value, json};

use crate::Check;
use crate::checks::{Quiet, losses, max_weight_diff, tiny_config, weights};

/// Options of the `group` child.
#[derive(clap::Args)]
pub struct GroupArgs {
    /// cuda, cuda:N or cpu.
    #[arg(long)]
    device: String,
    /// The bundle's `fixtures/blip`.
    #[arg(long)]
    blip: PathBuf,
    /// Scratch directory for the training runs.
    #[arg(long)]
    work: PathBuf,
}

/// Runs the `group` child, under `torchrun` (a command line such as
/// `python3 -m torch.distributed.run`) when given, and reads its report.
pub fn check(blip: &Path, work: &Path, device_text: &str, torchrun: Option<&str>) -> Result<Check> {
    let exe = std::env::current_exe().context("cannot find this program")?;
    let mut cmd = match torchrun {
        Some(line) => {
            let mut words = line.split_whitespace();
            let program = words.next().context("--torchrun is empty")?;
            let mut cmd = Command::new(program);
            cmd.args(words)
                .args(["--standalone", "--nproc-per-node", "1", "--no-python"])
                .arg(&exe);
            cmd
        }
        None => Command::new(&exe),
    };
    cmd.args(["group", "--device", device_text])
        .arg("--blip")
        .arg(blip)
        .arg("--work")
        .arg(work);
    let child = cmd
        .output()
        .context("cannot start the process-group check")?;
    let stdout = String::from_utf8_lossy(&child.stdout);
    let Some(line) = stdout.lines().rev().find(|l| l.starts_with('{')) else {
        bail!(
            "the process-group check printed no report ({}): {}",
            child.status,
            String::from_utf8_lossy(&child.stderr)
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .join(" | ")
        );
    };
    let mut detail: Value = serde_json::from_str(line).context("the group report is not JSON")?;
    let passed = child.status.success() && detail["passed"] == true;
    detail["launcher"] = json!(torchrun.unwrap_or("none"));
    Ok(Check::new(
        "process_group_of_one_equals_no_group",
        passed,
        detail,
    ))
}

/// The child: joins a group of one and prints one JSON line.
pub fn group_command(args: &GroupArgs) -> Result<()> {
    let device = crate::parse_device(&args.device)?;
    std::fs::create_dir_all(&args.work)
        .with_context(|| format!("cannot create {}", args.work.display()))?;
    let report = measure(args, device)?;
    println!("{report}");
    Ok(())
}

fn measure(args: &GroupArgs, device: Device) -> Result<Value> {
    let group = Rc::new(ProcessGroup::join_on(
        world_of_one()?,
        Duration::from_secs(120),
        device,
    )?);
    let backend = if device == Device::Cpu {
        "gloo"
    } else {
        "nccl"
    };

    // Collectives: a group of one gives back what it was given.
    let values = Tensor::arange(1000, (Kind::Float, device));
    let mut summed = values.copy();
    group.all_reduce_sum(&mut summed)?;
    let mut sent = values.copy();
    group.broadcast(&mut sent, 0)?;
    let gathered = group.all_gather_bytes(b"medcap")?;
    group.barrier()?;
    let collectives = (&summed - &values).abs().max().double_value(&[]) == 0.0
        && (&sent - &values).abs().max().double_value(&[]) == 0.0
        && gathered == [b"medcap".to_vec()];

    // Training: the same steps through the group and without one.
    let run = |name: &str, replicas: Replicas| -> Result<(Vec<f64>, PathBuf)> {
        let mut c = tiny_config(&args.blip, &args.work, name, 12)?;
        c.optim.micro_batch = 2;
        c.optim.accumulation = 2;
        c.optim.max_steps = Some(3);
        let summary = Trainer::with_replicas(c, device, false, replicas)?
            .run(&Quiet, &AtomicBool::new(false))?;
        Ok((losses(&summary.run_dir)?, summary.run_dir))
    };
    let (alone, alone_dir) = run("group-alone", Replicas::single())?;
    let (grouped, grouped_dir) = run("group-of-one", Replicas::through(Rc::clone(&group)))?;
    let loss_diff = alone
        .iter()
        .zip(&grouped)
        .map(|(a, b)| (a - b).abs() / a.abs().max(1e-12))
        .fold(0.0, f64::max);
    let weight_diff = max_weight_diff(
        &weights(&alone_dir.join("checkpoints/latest"))?,
        &weights(&grouped_dir.join("checkpoints/latest"))?,
    );
    // CUDA's reductions may differ run to run in the last bits.
    let tolerance = if device == Device::Cpu { 0.0 } else { 1e-4 };
    // The gradients really went through the group's collectives.
    let exchanged: u64 = std::fs::read_to_string(grouped_dir.join("metrics.jsonl"))?
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|row| row["all_reduced_bytes"].as_u64())
        .sum();
    let training = exchanged > 0
        && alone.len() == 3
        && grouped.len() == 3
        && loss_diff <= tolerance
        && weight_diff <= tolerance;

    // Captioning: sharded over the group against alone, ids and text.
    let captioner = Captioner::from_dir(&args.blip.join("tiny-caption"), device)?;
    let images: Vec<PathBuf> = ["rgb_wide", "grey", "rgba", "palette", "rgb_large"]
        .iter()
        .map(|n| args.blip.join("images").join(format!("{n}.png")))
        .collect();
    let config = GenerationConfig::default();
    let texts = |sharded: bool| -> Result<Vec<String>> {
        let mut out = Vec::new();
        let each = |_: &[PathBuf], batch: Vec<Result<_, _>>| -> Result<()> {
            for caption in batch {
                let caption: medcap_model::pipeline::Caption = caption?;
                out.push(format!("{:?} {}", caption.token_ids, caption.text));
            }
            Ok(())
        };
        if sharded {
            captioner.caption_files_sharded(&group, &images, None, &config, 2, each)?;
        } else {
            captioner.caption_files(&images, None, &config, 2, each)?;
        }
        Ok(out)
    };
    let plain = texts(false)?;
    let sharded = texts(true)?;
    let captioning = plain.len() == images.len() && plain == sharded;

    Ok(json!({
        "passed": collectives && training && captioning,
        "backend": backend,
        "collectives_ok": collectives,
        "training": {
            "losses_alone": alone,
            "losses_through_group": grouped,
            "max_relative_loss_diff": loss_diff,
            "max_abs_weight_diff": weight_diff,
            "all_reduced_bytes": exchanged,
            "tolerance": tolerance,
        },
        "captioning_equal": captioning,
        "captions": sharded,
    }))
}

/// This process as a group of one: from torchrun's variables when it
/// launched us (its agent serves the store), else a store of our own on a
/// free loopback port. [`World::from_env`] reads a world of one as no
/// group at all, which is what medcap's commands want but not this check.
fn world_of_one() -> Result<World> {
    let var = |key: &str| std::env::var(key).ok();
    if let (Some(addr), Some(port)) = (var("MASTER_ADDR"), var("MASTER_PORT")) {
        if var("WORLD_SIZE").as_deref() != Some("1") {
            bail!("the process-group check runs as one process (--nproc-per-node 1)");
        }
        return Ok(World {
            rank: 0,
            size: 1,
            local_rank: 0,
            master_addr: addr,
            master_port: port.parse().context("MASTER_PORT is not a port")?,
            agent_store: var("TORCHELASTIC_USE_AGENT_STORE").as_deref() == Some("True"),
            restart_count: 0,
        });
    }
    Ok(World::alone_on_loopback()?)
}
