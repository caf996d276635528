//! How medcap's binaries and examples talk on stderr: `tracing` events
//! filtered by `MEDCAP_LOG` (default `info`), coloured only on a terminal,
//! and the one `error:` line that ends a failed command.

use std::process::ExitCode;

/// Installs the `tracing` subscriber: `MEDCAP_LOG` (an `EnvFilter`, default
/// `info`) on stderr, without module targets, coloured only on a terminal.
pub fn init() {
    init_with_default("info");
}

/// [`init`] with another default filter than `info` (ranks other than 0 of
/// a data-parallel run default to `warn`: rank 0 tells the story).
pub fn init_with_default(default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MEDCAP_LOG").unwrap_or_else(|_| EnvFilter::new(default));
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
    exit_as(None, result)
}

/// [`exit`] for rank `rank` of a data-parallel run: the error line says
/// which rank failed (unless its message already begins with it).
pub fn exit_as(rank: Option<usize>, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let text = message(&err);
            match rank {
                Some(r) if !text.starts_with(&format!("rank {r}:")) => {
                    eprintln!("error: rank {r}: {text}");
                }
                _ => eprintln!("error: {text}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, joined by `: `. Library errors often say
/// their cause themselves (`config x.toml: No such file or directory`) and
/// also return it as their `source`; a cause its parent already ended with
/// (after a `: `) is not said twice.
fn message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    let mut parent = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if !parent.ends_with(&format!(": {part}")) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        parent = part;
    }
    text
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_the_message_already_gives_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        #[derive(Debug, thiserror::Error)]
        #[error("config x.toml: {source}")]
        struct Read {
            source: std::io::Error,
        }
        let err = anyhow::Error::new(Read { source: io }).context("cannot start");
        assert_eq!(
            message(&err),
            "cannot start: config x.toml: No such file or directory"
        );
        // A context that happens to end with the cause's text keeps it.
        let path = anyhow::anyhow!("missing").context("cannot prepare the data set at missing");
        assert_eq!(
            message(&path),
            "cannot prepare the data set at missing: missing"
        );
    }
}
