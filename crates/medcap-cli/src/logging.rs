//! How medcap's binaries and examples talk on stderr: `tracing` events
//! filtered by `MEDCAP_LOG` (default `info`), coloured only on a terminal,
//! and the one `error:` line that ends a failed command.

use std::process::ExitCode;

/// Installs the `tracing` subscriber: `MEDCAP_LOG` (an `EnvFilter`, default
/// `info`) on stderr, without module targets, coloured only on a terminal.
pub fn init() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MEDCAP_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        // Colour codes only on a terminal: CI logs and files stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The exit of a command: success, or its error on stderr and a failure
/// code. Output cut short because its reader went away (`medcap caption
/// ... | head`: a broken pipe) is not a failure of the command.
pub fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether an I/O error in `err`'s chain is a broken pipe; the csv crate's
/// writer errors carry theirs inside, not as a source.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    let broken = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(broken)
            || e.downcast_ref::<csv::Error>()
                .is_some_and(|e| matches!(e.kind(), csv::ErrorKind::Io(io) if broken(io)))
    })
}
