//! Crash points for the kill-anywhere tests: `MEDCAP_CRASH_AT=NAME[:N]`
//! makes the process abort (no unwinding, no cleanup, as a power cut or
//! `kill -9`) the N-th time (default the first) it passes the point NAME.
//! With `MEDCAP_CRASH_RANK=R` too, only rank R of a data-parallel run
//! aborts, and only in the first attempt (`TORCHELASTIC_RESTART_COUNT`
//! unset or 0), so that a group restarted by torchrun runs through.
//! Without the variable a point costs one cached lookup. The points sit
//! where an interruption is most harmful: between the renames of a
//! directory swap, before an atomic write's rename, after a stage's work
//! and before its completion record.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The environment variable naming the crash point.
pub const CRASH_AT_ENV: &str = "MEDCAP_CRASH_AT";
/// The environment variable naming the one rank that crashes.
pub const CRASH_RANK_ENV: &str = "MEDCAP_CRASH_RANK";

/// Whether this process may crash: no rank named, or this is the named
/// rank's first attempt.
fn this_process_crashes() -> bool {
    let Ok(wanted) = std::env::var(CRASH_RANK_ENV) else {
        return true;
    };
    let var = |key: &str| std::env::var(key).ok();
    let first_attempt = var("TORCHELASTIC_RESTART_COUNT").is_none_or(|c| c.trim() == "0");
    first_attempt && var("RANK").is_some_and(|r| r.trim() == wanted.trim())
}

fn target() -> Option<&'static (String, usize)> {
    static TARGET: OnceLock<Option<(String, usize)>> = OnceLock::new();
    TARGET
        .get_or_init(|| {
            let spec = std::env::var(CRASH_AT_ENV).ok()?;
            if !this_process_crashes() {
                return None;
            }
            match spec.rsplit_once(':') {
                Some((name, n)) if n.parse::<usize>().is_ok() => {
                    Some((name.to_owned(), n.parse().unwrap_or(1)))
                }
                _ => Some((spec, 1)),
            }
        })
        .as_ref()
}

/// Aborts the process here if `MEDCAP_CRASH_AT` names `name` and this is
/// the requested passage.
pub fn point(name: &str) {
    static PASSED: AtomicUsize = AtomicUsize::new(0);
    if let Some((wanted, n)) = target()
        && wanted == name
        && PASSED.fetch_add(1, Ordering::SeqCst) + 1 == *n
    {
        eprintln!("{CRASH_AT_ENV}: aborting at {name} (passage {n})");
        std::process::abort();
    }
}
