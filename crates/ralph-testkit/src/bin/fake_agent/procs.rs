//! Signals and processes: ignoring SIGTERM, hanging, and the grandchild sleeper (this binary
//! re-executed with a hidden flag) that tests use to check process-group cleanup.

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ralph_testkit::script::SpawnGrandchild;

use crate::files::write_pid_file;
use crate::{exit, report, Failure, EXIT_TIMEOUT, EXIT_USAGE};

/// Hidden first argument that turns the process into a grandchild sleeper.
pub(crate) const GRANDCHILD_FLAG: &str = "--grandchild";

pub(crate) fn set_sigterm_ignored(ignored: bool) {
    let disposition = if ignored {
        libc::SIG_IGN
    } else {
        libc::SIG_DFL
    };
    // SAFETY: changing a signal disposition to SIG_IGN/SIG_DFL; no handler
    // code runs.
    unsafe {
        libc::signal(libc::SIGTERM, disposition);
    }
}

pub(crate) fn hang() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Re-executes this binary in grandchild mode, in our process group (no
/// setsid: the point is to test that ralph kills the whole group), and waits
/// only until it has written its pid file. The child is never waited for.
pub(crate) fn spawn_grandchild(spec: &SpawnGrandchild) -> Result<(), Failure> {
    let exe =
        std::env::current_exe().map_err(|e| Failure::io("cannot locate own executable", &e))?;
    let pid_file = std::env::current_dir()
        .map(|cwd| cwd.join(&spec.pid_file))
        .unwrap_or_else(|_| spec.pid_file.clone());
    // A file left by an earlier call would end the wait below too early.
    let _ = std::fs::remove_file(&pid_file);
    // Output printed so far must come before anything the grandchild does.
    let _ = std::io::stdout().flush();

    let mut cmd = Command::new(exe);
    cmd.arg(GRANDCHILD_FLAG)
        .arg(&pid_file)
        .arg(if spec.ignore_sigterm { "1" } else { "0" })
        .stdin(Stdio::null());
    if !spec.hold_stdout {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::io("cannot spawn grandchild", &e))?;

    let deadline = Instant::now() + Duration::from_secs(10);
    while !pid_file.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Failure::io(
                "grandchild died before writing its pid file",
                &std::io::Error::other(status.to_string()),
            ));
        }
        if Instant::now() >= deadline {
            return Err(Failure {
                code: EXIT_TIMEOUT,
                message: format!("grandchild did not write {}", pid_file.display()),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Dropping a Child neither kills nor waits for it.
    drop(child);
    Ok(())
}

/// `fake-agent --grandchild PID_FILE IGNORE_TERM(0|1)`: set up SIGTERM,
/// *then* publish the pid (so once the file exists the disposition holds),
/// then sleep forever.
pub(crate) fn grandchild_main(args: &[OsString]) -> ! {
    let (Some(pid_file), Some(ignore)) = (args.first(), args.get(1)) else {
        report("usage: fake-agent --grandchild PID_FILE 0|1");
        exit(EXIT_USAGE);
    };
    // Set explicitly both ways: SIG_IGN survives exec, so a grandchild of an
    // agent that ran `ignore_sigterm` would otherwise inherit it.
    set_sigterm_ignored(ignore == "1");
    if let Err(f) = write_pid_file(Path::new(pid_file), std::process::id()) {
        report(&f.message);
        exit(f.code);
    }
    hang()
}
