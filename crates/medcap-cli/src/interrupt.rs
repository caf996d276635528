//! Ctrl-C for long runs (training, the study): the first one sets a stop
//! flag that the run polls between steps (it then writes a checkpoint and
//! returns), a second one exits at once with status 130, as a shell expects
//! of an interrupted command.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

/// Installs the process's Ctrl-C handler and returns the flag it sets;
/// `message` is printed on the first Ctrl-C (what happens now, how to
/// continue).
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
        eprintln!("\ninterrupt: {message} (Ctrl-C again to abort)");
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(stop)
}
