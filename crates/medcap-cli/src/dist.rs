//! Running under `torchrun` (or any launcher that sets `WORLD_SIZE`,
//! `RANK`, `MASTER_ADDR` and `MASTER_PORT`): joining the process group,
//! each rank's device, and the options the commands that run
//! data-parallel share. Without `WORLD_SIZE` (or with 1) none of it does
//! anything: one process, as always.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use medcap_model::device::DeviceChoice;
use medcap_model::distributed::{self, DEFAULT_TIMEOUT, ProcessGroup, World};
use medcap_model::tch::{self, Device};

/// Progress of ranks other than 0: nothing (rank 0 shows it).
pub struct Quiet;

impl medcap_train::trainer::Observer for Quiet {}

/// Options of a command that can run as several processes.
#[derive(Debug, Clone, Args)]
pub struct DistArgs {
    /// Under torchrun: how long a rank waits for the others at the start
    /// and at each exchange before it stops with an error naming the
    /// operation (a lost peer, a rank that never came).
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub dist_timeout: u64,
}

/// This process's device, and its group when the environment says it is
/// one of several: Gloo, and NCCL too when the device is a GPU and this
/// build has NCCL (see [`device`] for which GPU).
///
/// # Errors
/// The launcher's variables are wrong, the device is not one here, or the
/// group cannot be joined (no store at `MASTER_ADDR:MASTER_PORT`, a rank
/// missing, no NCCL in this build) within the timeout.
pub fn join(args: &DistArgs, device_text: &str) -> Result<(Option<ProcessGroup>, Device)> {
    let Some(world) = World::from_env()? else {
        return Ok((None, device(device_text, None)?));
    };
    let device = device(device_text, Some(&world))?;
    let (rank, size) = (world.rank, world.size);
    // Without NCCL in this build, GPUs still train together over Gloo,
    // through host memory.
    let group_device = match (device, distributed::nccl_built()) {
        (Device::Cuda(_), Err(why)) => {
            if rank == 0 {
                tracing::warn!(
                    "this medcap has no NCCL ({why}): the processes exchange gradients over \
                     Gloo, through host memory"
                );
            }
            Device::Cpu
        }
        _ => device,
    };
    let group = ProcessGroup::join_on(world, Duration::from_secs(args.dist_timeout), group_device)
        .context("cannot join the group of processes")?;
    tracing::info!(rank, processes = size, ?device, "joined the process group");
    Ok((Some(group), device))
}

/// Stops unless every rank was started with the same `options` (their
/// `Debug` text, hashed): ranks that caption different inputs, or the same
/// in other batches, would exchange the wrong results.
///
/// # Errors
/// A rank's options differ from rank 0's (naming it), or the group fails.
pub fn same_options(group: &ProcessGroup, options: &impl std::fmt::Debug) -> Result<()> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    format!("{options:?}").hash(&mut hasher);
    Ok(group.check_same("command line", hasher.finish())?)
}

/// The device of `choice` for this process: in a group, `auto` and a bare
/// `cuda` mean this rank's GPU on its machine (`cuda:LOCAL_RANK`) when
/// CUDA is present; an explicit `cuda:N` or `cpu` is taken as given.
///
/// # Errors
/// The text is not a device, or the CUDA device does not exist.
fn device(text: &str, world: Option<&World>) -> Result<Device> {
    let choice = text.parse::<DeviceChoice>()?;
    let bare = matches!(text.trim().to_ascii_lowercase().as_str(), "cuda" | "gpu");
    let choice = match (world, choice) {
        (Some(world), DeviceChoice::Auto) if tch::Cuda::is_available() => {
            DeviceChoice::Cuda(world.local_rank)
        }
        (Some(world), DeviceChoice::Cuda(_)) if bare => DeviceChoice::Cuda(world.local_rank),
        (_, choice) => choice,
    };
    Ok(choice.resolve()?)
}

/// Rank and size from the environment, for what runs before the group is
/// joined (logging); `None` alone or when the variables are unusable (the
/// join reports those).
pub fn rank_from_env() -> Option<(usize, usize)> {
    World::from_env()
        .ok()
        .flatten()
        .map(|world| (world.rank, world.size))
}
