//! Everything the agent writes to stdout: lines, raw text, stream-json lines (one write each)
//! and the `print_bytes` flood; a closed pipe ends the agent quietly.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;

use ralph_testkit::script::PrintBytes;
use serde::Serialize;

use crate::{Failure, EXIT_BROKEN_PIPE, EXIT_IOERR};

pub(crate) fn stdout_write(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| stdout_error(&e))
}

pub(crate) fn print_line(text: &str) -> Result<(), Failure> {
    let mut line = Vec::with_capacity(text.len() + 1);
    line.extend_from_slice(text.as_bytes());
    line.push(b'\n');
    stdout_write(&line)
}

/// A reader that went away is not an agent bug: end quietly, like a CLI
/// killed by SIGPIPE (normally SIGPIPE itself kills us before we get here).
pub(crate) fn stdout_error(e: &std::io::Error) -> Failure {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(EXIT_BROKEN_PIPE);
    }
    Failure::io("cannot write to stdout", e)
}

/// One stream-json line, written with a single write so concurrent readers
/// never see half a line.
pub(crate) fn emit(line: &impl Serialize) -> Result<(), Failure> {
    let mut bytes = serde_json::to_vec(line).map_err(|e| Failure {
        code: EXIT_IOERR,
        message: format!("cannot serialise stream-json line: {e}"),
    })?;
    bytes.push(b'\n');
    stdout_write(&bytes)
}

/// Floods stdout. Lines are pre-built into a ~1 MiB buffer that is written
/// straight to the stdout descriptor (bypassing std's line buffering), so
/// throughput is bounded by the pipe, not by us.
pub(crate) fn print_bytes(spec: &PrintBytes) -> Result<(), Failure> {
    if spec.line_len == 0 {
        return Err(Failure::usage("print_bytes: line_len must be at least 1"));
    }
    const CHUNK: usize = 1 << 20;
    let mut line = vec![b'x'; spec.line_len - 1];
    line.push(b'\n');
    // Whole lines only, so every chunk starts at a line boundary.
    let chunk = line.repeat((CHUNK / spec.line_len).max(1));

    let stdout = std::io::stdout();
    let mut locked = stdout.lock();
    locked.flush().map_err(|e| stdout_error(&e))?;
    let mut out = locked
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .map_err(|e| Failure::io("cannot duplicate stdout", &e))?;
    let mut remaining = spec.bytes;
    while remaining > 0 {
        let n = usize::try_from(remaining).map_or(chunk.len(), |r| r.min(chunk.len()));
        out.write_all(&chunk[..n]).map_err(|e| stdout_error(&e))?;
        remaining -= n as u64;
    }
    Ok(())
}
