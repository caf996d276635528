//! Ctrl-C for long runs (training, the study), and SIGTERM and SIGHUP the
//! same way (a scheduler preempting a job, torchrun stopping its workers, a
//! closed terminal): the first one sets a stop flag that the run polls
//! between steps (it then writes a checkpoint and returns; under torchrun
//! every rank stops at the same step), a second one, 5 s or more after the
//! first, exits at once with status 130, as a shell expects of an
//! interrupted command (sooner, it is the same request delivered twice, as
//! a scheduler and torchrun both deliver it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

/// A second signal within this time of the first is the same request.
const SAME_REQUEST: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the process's handler of Ctrl-C (SIGINT), SIGTERM and SIGHUP
/// and returns the flag it sets; `message` is printed on the first signal
/// (what happens now, how to continue).
///
/// # Errors
/// When a handler is already installed.
pub fn stop_flag_on_ctrl_c(message: &'static str) -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let first = std::sync::OnceLock::new();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            // A second signal means "now", unless it is the same request
            // delivered twice: a scheduler signals every process of a job,
            // and torchrun forwards its own signal to its workers again.
            let since: &std::time::Instant = first.get_or_init(std::time::Instant::now);
            if since.elapsed() >= SAME_REQUEST {
                std::process::exit(130);
            }
            return;
        }
        let _ = first.set(std::time::Instant::now());
        eprintln!(
            "\ninterrupt: {message} (interrupt again, after {} s, to abort)",
            SAME_REQUEST.as_secs()
        );
    })
    .context("cannot install the handler of Ctrl-C and SIGTERM")?;
    Ok(stop)
}
