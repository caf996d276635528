//! Ctrl-C for long runs (training, the study), and SIGTERM and SIGHUP the
//! same way (a scheduler preempting a job, torchrun stopping its workers, a
//! closed terminal): the first one sets a stop flag that the run polls
//! between steps (it then writes a checkpoint and returns; under torchrun
//! every rank stops at the same step), a second one exits at once with
//! status 130, as a shell expects of an interrupted command.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

/// Installs the process's handler of Ctrl-C (SIGINT), SIGTERM and SIGHUP
/// and returns the flag it sets; `message` is printed on the first signal
/// (what happens now, how to continue).
///
/// # Errors
/// When a handler is already installed.
pub fn stop_flag_on_ctrl_c(message: &'static str) -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            // A second Ctrl-C means "now".
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: {message} (interrupt again to abort)");
    })
    .context("cannot install the handler of Ctrl-C and SIGTERM")?;
    Ok(stop)
}
