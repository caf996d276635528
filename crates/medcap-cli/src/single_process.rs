//! Commands that run as one process refuse to run as several: under
//! `torchrun` every process would do the whole work and write the same
//! outputs. `train`, `caption`, `itm` and `reproduce` are the commands that
//! share their work among the processes.

use anyhow::{Result, bail};

/// An error when the environment says this process is one of several
/// (`WORLD_SIZE` above 1, as `torchrun` or a scheduler sets it).
///
/// # Errors
/// `command` under a launcher with more than one process.
pub fn require(command: &str) -> Result<()> {
    let size = std::env::var("WORLD_SIZE").ok();
    if let Some(size) = size.as_deref().and_then(|s| s.trim().parse::<u64>().ok())
        && size > 1
    {
        bail!(
            "medcap {command} runs as one process, but WORLD_SIZE={size} says this is one of \
             {size}: every process would do the same work and write the same outputs. Run it \
             without torchrun (medcap train, caption, itm and reproduce are the commands that run \
             as several processes)"
        );
    }
    Ok(())
}
