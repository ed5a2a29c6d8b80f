//! Process control for agents and gates. Each child runs in its own process group, with a
//! parent-death signal on Linux; timeouts, idle timeouts and stop requests kill the whole group
//! (SIGTERM, grace period, SIGKILL). "Child exited" and "pipes closed" are separate events: a
//! grandchild may hold a pipe open after the child exits, so the group is killed then too.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ralph_agents::ExitInfo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::time::Instant as TokioInstant;

/// Requests from outside the loop (signals, `ralph stop --now`), delivered through a
/// [`crate::cancel::Cancel`] token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// First Ctrl-C: stop the agent group gracefully, persist, exit 130.
    Interrupt,
    /// SIGTERM: like Interrupt, exit 143.
    Terminate,
    /// SIGHUP (the terminal went away): like SIGTERM, exit 143, and named as what it was.
    Hangup,
    /// `ralph stop --now`: kill the agent, exit 9.
    StopNow,
    /// Second Ctrl-C: kill everything now.
    Kill,
}

/// Longest line handed to a parser; the rest of a longer line is still written to the artifact
/// but not held in memory.
pub const MAX_LINE: usize = 1024 * 1024;
const READ_CHUNK: usize = 128 * 1024;
const ERR_CHUNK: usize = 16 * 1024;

/// Read buffers kept between calls: a fresh 128 KiB buffer per call is zeroed, faulted in page by
/// page and unmapped again each time, a measurable part of an iteration's cost when eight loops
/// share a process.
static POOL: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// A buffer from [`POOL`], given back when dropped.
struct Pooled(Vec<u8>);

impl Pooled {
    fn take(len: usize) -> Pooled {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        let buf = match pool.iter().position(|b| b.len() == len) {
            Some(i) => pool.swap_remove(i),
            None => vec![0u8; len],
        };
        Pooled(buf)
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: as many as calls ever ran at once, and never more than a few dozen.
        if pool.len() < 64 {
            pool.push(std::mem::take(&mut self.0));
        }
    }
}

impl std::ops::Deref for Pooled {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}
/// Bytes of stderr (or gate output) kept in memory for classification and feedback.
pub const TAIL_BYTES: usize = 8 * 1024;
/// After the child exits, how long to keep reading pipes held open by leftover processes.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct Spec<'a> {
    pub program: &'a str,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: &'a Path,
    pub stdin: Option<&'a [u8]>,
    /// Send stderr into the stdout pipe (gates: one interleaved log).
    pub merge_stderr: bool,
    /// Bytes of stdout (and of stderr) kept in the artifacts; the rest is cut with a note.
    /// Reading goes on, so the process never blocks on a full pipe.
    pub max_output_bytes: Option<u64>,
    /// Register the program's process group with the guardian (see [`crate::reaper`]) so it and
    /// its descendants die with ralph even when ralph is SIGKILLed. Without it only the direct
    /// child gets a parent-death signal.
    pub supervised: bool,
    /// The OS sandbox to start it in (installed last, after the guardian's hook); taken by
    /// [`run`].
    pub sandbox: Option<ralph_sandbox::Prepared>,
}

#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// Hard deadline (iteration timeout or the run's remaining time, whichever is first).
    pub deadline: Instant,
    /// Whether hitting `deadline` means the run's runtime limit (rather than the call's own).
    pub deadline_is_runtime: bool,
    /// Kill when no output arrives for this long.
    pub idle: Option<Duration>,
    /// SIGTERM → SIGKILL grace period.
    pub grace: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The process exited on its own.
    Exited,
    Timeout,
    RuntimeLimit,
    Idle,
    Control(Control),
    /// A line tripped a guard; the group was killed at once.
    Guard,
}

#[derive(Debug)]
pub struct Finished {
    pub exit: ExitInfo,
    pub reason: EndReason,
    /// Last bytes of stderr (or of the merged output).
    pub tail: String,
    pub duration: Duration,
    pub bytes: u64,
    /// Connections the sandbox's proxy refused.
    pub denied: Vec<ralph_sandbox::Denied>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("`{program}` was not found")]
    NotFound { program: String },
    #[error("`{program}` is not executable: {source}")]
    NotExecutable {
        program: String,
        source: std::io::Error,
    },
    #[error("failed to start `{program}`: {source}")]
    Other {
        program: String,
        source: std::io::Error,
    },
    #[error("failed to write the output artifact: {0}")]
    Artifact(std::io::Error),
    /// The sandbox could not be set up; nothing ran outside it.
    #[error("{0}")]
    Sandbox(ralph_sandbox::SandboxError),
}

/// Where output goes: the artifact file and, line by line, a consumer.
pub trait LineSink {
    /// One line of output. Returning `true` asks to kill the process group at once (a guard
    /// tripped on what the agent is about to do).
    fn line(&mut self, line: &[u8], truncated: bool) -> bool;
}

impl<F: FnMut(&[u8], bool) -> bool> LineSink for F {
    fn line(&mut self, line: &[u8], truncated: bool) -> bool {
        self(line, truncated)
    }
}

/// Splits a byte stream into lines with bounded memory.
struct Splitter {
    buf: Vec<u8>,
    truncated: bool,
}

impl Splitter {
    fn new() -> Self {
        Splitter {
            buf: Vec::new(),
            truncated: false,
        }
    }

    /// Returns whether any line asked to stop.
    fn feed(&mut self, mut data: &[u8], sink: &mut dyn LineSink) -> bool {
        let mut stop = false;
        while let Some(pos) = memchr::memchr(b'\n', data) {
            self.push(&data[..pos]);
            let line = strip_cr(&self.buf);
            stop |= sink.line(line, self.truncated);
            self.buf.clear();
            self.truncated = false;
            data = &data[pos + 1..];
        }
        self.push(data);
        stop
    }

    fn push(&mut self, data: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.buf.len());
        if data.len() > room {
            self.buf.extend_from_slice(&data[..room]);
            self.truncated = true;
        } else {
            self.buf.extend_from_slice(data);
        }
    }

    fn finish(&mut self, sink: &mut dyn LineSink) {
        if !self.buf.is_empty() {
            let _ = sink.line(strip_cr(&self.buf), self.truncated);
            self.buf.clear();
        }
        // Release a buffer grown by one huge line.
        self.buf = Vec::new();
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A ring of the last `TAIL_BYTES` bytes.
struct Tail {
    buf: Vec<u8>,
}

impl Tail {
    fn new() -> Self {
        Tail { buf: Vec::new() }
    }

    fn push(&mut self, data: &[u8]) {
        if data.len() >= TAIL_BYTES {
            self.buf.clear();
            self.buf.extend_from_slice(&data[data.len() - TAIL_BYTES..]);
        } else {
            let overflow = (self.buf.len() + data.len()).saturating_sub(TAIL_BYTES);
            self.buf.drain(..overflow);
            self.buf.extend_from_slice(data);
        }
    }

    fn into_string(self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}

/// Write `data` unless `cap` bytes were written already; the first write past the cap is cut
/// and followed by a note, so the artifact says output was lost rather than silently ending.
fn capped_write(
    out: &mut dyn Write,
    data: &[u8],
    written: &mut u64,
    cap: Option<u64>,
) -> Result<(), SpawnError> {
    let Some(cap) = cap else {
        *written += data.len() as u64;
        return out.write_all(data).map_err(SpawnError::Artifact);
    };
    if *written > cap {
        return Ok(());
    }
    let room = (cap - *written) as usize;
    if data.len() <= room {
        *written += data.len() as u64;
        return out.write_all(data).map_err(SpawnError::Artifact);
    }
    out.write_all(&data[..room]).map_err(SpawnError::Artifact)?;
    *written = cap + 1;
    let note = format!(
        "\n[ralph: output cut here: more than {} MiB in one iteration (safety.max_output_mb)]\n",
        cap / (1024 * 1024)
    );
    out.write_all(note.as_bytes()).map_err(SpawnError::Artifact)
}

/// Send `signal` to the process group `pgid`. Never to our own group: pgid is always a child we
/// started with `process_group(0)`, and 0/1 are refused outright.
pub fn signal_group(pgid: u32, signal: i32) {
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe {
        libc::kill(-(pgid as i32), signal);
    }
}

/// Whether the process `pid` still exists (it may belong to another user: `EPERM` is alive).
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks that the process exists; nothing is sent.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A started child, its merged output pipe, and (supervised) the marker its descendants carry.
type Spawned = (
    Child,
    Option<tokio::net::unix::pipe::Receiver>,
    Option<String>,
);

fn spawn(spec: &mut Spec<'_>) -> Result<Spawned, SpawnError> {
    let mut cmd = Command::new(spec.program);
    let marker = spec.supervised.then(crate::orphans::new_marker);
    cmd.args(spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .envs(marker.iter().map(|m| (crate::orphans::MARKER_VAR, m)))
        .current_dir(spec.cwd)
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .process_group(0)
        .kill_on_drop(false);
    let mut merged = None;
    if spec.merge_stderr {
        let (reader, writer) = std::io::pipe().map_err(|source| SpawnError::Other {
            program: spec.program.into(),
            source,
        })?;
        let writer2 = writer.try_clone().map_err(|source| SpawnError::Other {
            program: spec.program.into(),
            source,
        })?;
        cmd.stdout(writer).stderr(writer2);
        let owned: std::os::fd::OwnedFd = reader.into();
        merged = Some(
            tokio::net::unix::pipe::Receiver::from_owned_fd(owned).map_err(|source| {
                SpawnError::Other {
                    program: spec.program.into(),
                    source,
                }
            })?,
        );
    } else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    if spec.supervised {
        crate::reaper::install(&mut cmd);
    } else {
        crate::reaper::set_parent_death_signal(&mut cmd);
    }
    if let Some(sandbox) = spec.sandbox.as_mut() {
        cmd.envs(sandbox.env().iter().map(|(k, v)| (k, v)));
        sandbox.install(&mut cmd);
    }
    let child = cmd.spawn();
    if child.is_err() {
        // Only after a failure: on success the socket holds the namespace's ports instead.
        if let Some(failure) = spec.sandbox.as_ref().and_then(|s| s.failure()) {
            return Err(SpawnError::Sandbox(failure));
        }
    }
    let child = child.map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => SpawnError::NotFound {
            program: spec.program.into(),
        },
        std::io::ErrorKind::PermissionDenied => SpawnError::NotExecutable {
            program: spec.program.into(),
            source,
        },
        _ => SpawnError::Other {
            program: spec.program.into(),
            source,
        },
    })?;
    // The merged pipe's write ends now live only in the child (the Command is dropped here), so
    // EOF arrives when the child's group closes them.
    drop(cmd);
    Ok((child, merged, marker))
}

async fn read_opt<R: AsyncRead + Unpin>(
    r: &mut Option<R>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match r {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Run a process to the end under `deadlines`, streaming stdout into `out` (and `sink` line by
/// line) and stderr into `err`. Returns when the process has exited and its pipes are closed
/// (or abandoned after the group was killed).
pub async fn run(
    spec: &mut Spec<'_>,
    deadlines: Deadlines,
    out: &mut (dyn Write + Send),
    mut err: Option<&mut (dyn Write + Send)>,
    sink: &mut (dyn LineSink + Send),
    cancel: &crate::cancel::Cancel,
) -> Result<Finished, SpawnError> {
    let started = Instant::now();
    let (mut child, merged, marker) = spawn(spec)?;
    let pgid = child.id().unwrap_or(0);
    let mut sandbox = match spec.sandbox.take().map(ralph_sandbox::Prepared::start) {
        None => None,
        Some(Ok(active)) => Some(active),
        Some(Err(e)) => {
            // The agent is in its namespace without the proxy it was promised: end it.
            signal_group(pgid, libc::SIGKILL);
            let _ = child.wait().await;
            return Err(SpawnError::Sandbox(e));
        }
    };

    if let (Some(data), Some(mut stdin)) = (spec.stdin, child.stdin.take()) {
        let data = data.to_vec();
        // A separate task: an agent that never reads stdin must not block the loop. EPIPE is
        // expected from such agents and ignored.
        tokio::spawn(async move {
            let _ = stdin.write_all(&data).await;
            let _ = stdin.shutdown().await;
        });
    }

    let mut stdout: Option<Box<dyn AsyncRead + Unpin + Send>> = match merged {
        Some(rx) => Some(Box::new(rx)),
        None => child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn AsyncRead + Unpin + Send>),
    };
    let mut stderr = child.stderr.take();

    let mut splitter = Splitter::new();
    let mut tail = Tail::new();
    let mut obuf = Pooled::take(READ_CHUNK);
    let mut ebuf = Pooled::take(ERR_CHUNK);
    let mut bytes: u64 = 0;
    let mut out_written: u64 = 0;
    let mut err_written: u64 = 0;
    let mut exit: Option<ExitInfo> = None;
    let mut reason = EndReason::Exited;
    let mut killing = false;

    let to_tokio = |i: Instant| TokioInstant::from_std(i);
    let far = || TokioInstant::now() + Duration::from_secs(365 * 24 * 3600);
    let mut idle_at = deadlines.idle.map(|d| TokioInstant::now() + d);
    let hard_at = to_tokio(deadlines.deadline);
    // After SIGTERM: when to SIGKILL. After exit or SIGKILL: when to stop waiting for pipes.
    let mut kill_at: Option<TokioInstant> = None;
    let mut abandon_at: Option<TokioInstant> = None;
    // From generation 0: a request made before the process started stops it at once.
    let mut seen_control = 0u64;

    loop {
        if exit.is_some() && stdout.is_none() && stderr.is_none() {
            break;
        }
        tokio::select! {
            r = read_opt(&mut stdout, &mut obuf) => match r {
                Ok(0) | Err(_) => { splitter.finish(sink); stdout = None; }
                Ok(n) => {
                    bytes += n as u64;
                    capped_write(out, &obuf[..n], &mut out_written, spec.max_output_bytes)?;
                    if spec.merge_stderr { tail.push(&obuf[..n]); }
                    if splitter.feed(&obuf[..n], sink) && exit.is_none() && reason != EndReason::Guard {
                        reason = EndReason::Guard;
                        killing = true;
                        signal_group(pgid, libc::SIGKILL);
                        kill_at = None;
                    }
                    if let (Some(d), false) = (deadlines.idle, killing) { idle_at = Some(TokioInstant::now() + d); }
                }
            },
            r = read_opt(&mut stderr, &mut ebuf) => match r {
                Ok(0) | Err(_) => { stderr = None; }
                Ok(n) => {
                    if let Some(f) = err.as_deref_mut() { capped_write(f, &ebuf[..n], &mut err_written, spec.max_output_bytes)?; }
                    tail.push(&ebuf[..n]);
                    if let (Some(d), false) = (deadlines.idle, killing) { idle_at = Some(TokioInstant::now() + d); }
                }
            },
            status = child.wait(), if exit.is_none() => {
                exit = Some(match status {
                    Ok(st) => {
                        use std::os::unix::process::ExitStatusExt;
                        ExitInfo { code: st.code(), signal: st.signal() }
                    }
                    Err(_) => ExitInfo::default(),
                });
                // Whatever is left in the group is an orphan of this call: end it, and only
                // wait a little for pipes it may hold. Then the group is over: the guardian
                // need not (and must not, once the id is reused) kill it later.
                signal_group(pgid, libc::SIGKILL);
                // And whatever left the group (setsid) but still carries the call's marker.
                if let Some(m) = &marker {
                    crate::orphans::sweep_call(m, pgid);
                }
                if spec.supervised {
                    crate::reaper::release(pgid);
                }
                abandon_at = Some(TokioInstant::now() + DRAIN_AFTER_EXIT);
            },
            _ = tokio::time::sleep_until(idle_at.unwrap_or_else(far)), if idle_at.is_some() && !killing && exit.is_none() => {
                reason = EndReason::Idle;
                killing = true;
                signal_group(pgid, libc::SIGTERM);
                kill_at = Some(TokioInstant::now() + deadlines.grace);
            },
            _ = tokio::time::sleep_until(hard_at), if !killing && exit.is_none() => {
                reason = if deadlines.deadline_is_runtime { EndReason::RuntimeLimit } else { EndReason::Timeout };
                killing = true;
                signal_group(pgid, libc::SIGTERM);
                kill_at = Some(TokioInstant::now() + deadlines.grace);
            },
            _ = tokio::time::sleep_until(kill_at.unwrap_or_else(far)), if kill_at.is_some() && exit.is_none() => {
                signal_group(pgid, libc::SIGKILL);
                kill_at = None;
            },
            _ = tokio::time::sleep_until(abandon_at.unwrap_or_else(far)), if abandon_at.is_some() => {
                // A process outside the group (it called setsid) still holds a pipe: stop
                // reading rather than hang. Its output is lost; nothing else is.
                splitter.finish(sink);
                stdout = None;
                stderr = None;
            },
            c = cancel.changed(&mut seen_control) => match c {
                Control::Kill => {
                    reason = EndReason::Control(Control::Kill);
                    killing = true;
                    signal_group(pgid, libc::SIGKILL);
                    kill_at = None;
                }
                c => {
                    if !killing && exit.is_none() {
                        reason = EndReason::Control(c);
                        killing = true;
                        signal_group(pgid, libc::SIGTERM);
                        kill_at = Some(TokioInstant::now() + deadlines.grace);
                    } else if exit.is_none() {
                        // A second request while stopping: escalate.
                        reason = EndReason::Control(c);
                    }
                }
            },
        }
    }
    let exit = exit.unwrap_or_default();
    let tail = tail.into_string();
    Ok(Finished {
        exit,
        reason,
        tail,
        duration: started.elapsed(),
        bytes,
        denied: sandbox
            .as_mut()
            .map(|s| s.take_denied())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitter_bounds_lines() {
        let mut lines: Vec<(usize, bool)> = Vec::new();
        let mut sink = |l: &[u8], t: bool| {
            lines.push((l.len(), t));
            false
        };
        let mut s = Splitter::new();
        s.feed(b"ab\r\ncd\nef", &mut sink);
        let huge = vec![b'x'; MAX_LINE + 10];
        s.feed(&huge, &mut sink);
        s.feed(b"\nlast", &mut sink);
        s.finish(&mut sink);
        assert_eq!(
            lines,
            vec![(2, false), (2, false), (MAX_LINE, true), (4, false)]
        );
    }

    #[test]
    fn tail_keeps_last_bytes() {
        let mut t = Tail::new();
        for _ in 0..1000 {
            t.push(b"0123456789");
        }
        t.push(b"END");
        let s = t.into_string();
        assert_eq!(s.len(), TAIL_BYTES);
        assert!(s.ends_with("789END"));
    }
}
