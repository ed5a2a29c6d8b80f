//! Process helpers for tests that inspect the fake agent's processes
//! (pid files written by `pid_file` / `spawn_grandchild` steps).
//!
//! The processes these look at are usually not children of the test (a
//! grandchild is reparented once the agent exits), so `waitpid` is not an
//! option; liveness is checked with `kill(pid, 0)` plus `/proc` to tell
//! zombies apart.

use std::path::Path;
use std::time::{Duration, Instant};

/// How often the `wait_*` helpers poll: short, because they gate tests.
const POLL: Duration = Duration::from_millis(2);

/// The pid in a pid file, if it exists and holds a number. Pid files are
/// written atomically (tmp + rename), so a partial read is not possible.
pub fn read_pid_file(path: impl AsRef<Path>) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Waits until the pid file exists and parses, up to `timeout`.
pub fn wait_for_pid_file(path: impl AsRef<Path>, timeout: Duration) -> Option<i32> {
    let path = path.as_ref();
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(pid) = read_pid_file(path) {
            return Some(pid);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// True if `pid` exists and is not a zombie (a dead process whose parent has
/// not reaped it yet counts as dead).
pub fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence/permission.
    let exists = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !exists {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name,
        // which may itself contain spaces or parentheses.
        Ok(stat) => match stat.rfind(')') {
            Some(i) => !matches!(stat[i + 1..].trim_start().chars().next(), Some('Z' | 'X')),
            None => true,
        },
        // Either it vanished in between, or there is no /proc at all and
        // kill() is all we have.
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

/// Waits until `pid` is gone (or a zombie), up to `timeout`.
pub fn wait_for_exit(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !process_alive(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// Sends `signal` to `pid`.
pub fn kill(pid: i32, signal: i32) -> std::io::Result<()> {
    if pid <= 0 {
        // kill(0 or negative) would signal whole process groups, which is
        // never what a test cleaning up one pid wants.
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("refusing to signal pid {pid}"),
        ));
    }
    // SAFETY: plain syscall on a positive pid.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Process group of `pid`.
pub fn process_group(pid: i32) -> Option<i32> {
    // SAFETY: plain syscall.
    let pgid = unsafe { libc::getpgid(pid) };
    (pgid >= 0).then_some(pgid)
}

/// SIGKILLs a pid when dropped, so a failing test does not leak the sleeping
/// processes it spawned.
#[derive(Debug)]
pub struct KillOnDrop(pub i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // Already dead is fine.
        let _ = kill(self.0, libc::SIGKILL);
    }
}
