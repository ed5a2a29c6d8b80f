//! One writer per project: an OS file lock on `.ralph/lock`, holding the owner's PID. The OS
//! releases the lock when the process dies, however it dies, so a crash never leaves a stale
//! lock behind.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use ralph_types::exit_codes;

use crate::error::CliError;

pub struct RunLock {
    _file: File,
}

/// Who holds the lock, if anyone.
pub fn holder(state_dir: &Path) -> Option<u32> {
    let path = state_dir.join("lock");
    let mut file = OpenOptions::new().read(true).write(true).open(&path).ok()?;
    match file.try_lock() {
        Ok(()) => {
            let _ = file.unlock();
            None
        }
        Err(_) => {
            let mut s = String::new();
            file.read_to_string(&mut s).ok()?;
            s.trim().parse().ok()
        }
    }
}

/// The lock is held but the ralph that took it is gone (`kill -9`): what still holds it is a
/// child it forked that has not reached its `exec` (which closes the descriptor) or been
/// killed by ralph's guardian yet, a matter of milliseconds. Wait for that, a few seconds at
/// most, instead of refusing to resume a crashed run.
fn after_dead_holder(file: &mut File) -> bool {
    let mut s = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_string(&mut s);
    let Ok(pid) = s.trim().parse::<u32>() else {
        return false;
    };
    if ralph_core::process::process_alive(pid) {
        return false;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if file.try_lock().is_ok() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

pub fn acquire(state_dir: &Path) -> Result<RunLock, CliError> {
    let path = state_dir.join("lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| {
            CliError::new(
                exit_codes::INTERNAL_ERROR,
                format!("failed to open {}: {e}", path.display()),
                None,
            )
        })?;
    if file.try_lock().is_err() && !after_dead_holder(&mut file) {
        let mut s = String::new();
        let _ = file.seek(SeekFrom::Start(0));
        let _ = file.read_to_string(&mut s);
        let who = match s.trim().parse::<u32>() {
            Ok(pid) => format!("ralph (PID {pid})"),
            Err(_) => "another ralph process".to_string(),
        };
        return Err(CliError::usage(
            format!("{who} is already running in this project"),
            Some("wait for it, or stop it with `ralph stop` (or `ralph stop --now`)".to_string()),
        ));
    }
    // Locked: record our PID for `ralph stop --now` and for the message above.
    let _ = file.set_len(0);
    let _ = file.seek(SeekFrom::Start(0));
    let _ = write!(file, "{}", std::process::id());
    let _ = file.flush();
    Ok(RunLock { _file: file })
}
