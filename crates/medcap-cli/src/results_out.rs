//! Standard output for a command's results: buffered, and a failed write
//! says that standard output is what failed ("cannot write the results to
//! standard output: No space left on device"), where the bare operating
//! system error would name nothing. The error keeps its kind, so a reader
//! that went away (`| head`) is still a broken pipe to [`crate::logging`].

use std::io::{self, BufWriter, StdoutLock, Write};

/// Buffered standard output whose errors name it.
pub struct ResultsOut {
    inner: BufWriter<StdoutLock<'static>>,
}

/// Standard output, locked for the command's results.
pub fn results_out() -> ResultsOut {
    ResultsOut {
        inner: BufWriter::with_capacity(1 << 16, io::stdout().lock()),
    }
}

/// The failed write, named. Its cause is in its message, not a source, so
/// the error chain prints it once.
#[derive(Debug)]
struct StdoutFailed(io::Error);

impl std::fmt::Display for StdoutFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write the results to standard output: {}", self.0)
    }
}

impl std::error::Error for StdoutFailed {}

fn named(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), StdoutFailed(e))
}

impl Write for ResultsOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).map_err(named)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf).map_err(named)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().map_err(named)
    }
}
