//! `ralph __reap <ralph-pid> -- PROGRAM ARGS...`: a tiny supervisor between ralph and each agent
//! or gate. ralph's graceful paths kill the agent's process group themselves; this covers the
//! one path they cannot: ralph being SIGKILLed. The supervisor gets a parent-death signal and
//! then SIGKILLs its whole process group (the agent, its children and grandchildren), so no
//! agent process outlives ralph. It is also a child subreaper, so orphaned descendants are
//! reaped here rather than by init while the agent runs.
//!
//! It passes the agent's exit status through unchanged (code, or death by the same signal).

use std::ffi::OsString;

/// The hidden first argument that selects this mode.
pub const REAP_ARG: &str = "__reap";
/// Printed on stderr when the program cannot be started; the engine maps it to "not found".
pub const EXEC_FAILED: &str = "ralph-reap: cannot start";
/// Exit codes for a program that cannot be started (as POSIX shells use them).
pub const EXIT_NOT_FOUND: i32 = 127;
pub const EXIT_NOT_EXECUTABLE: i32 = 126;

/// The signals the supervisor shrugs off itself (ralph sends them to the whole group; the agent
/// decides what they mean, and the supervisor outlives it to report its status). A no-op
/// handler rather than SIG_IGN: handlers reset to the default on exec, so the agent starts with
/// default dispositions and the spawn needs no pre-exec hook (which would force fork over
/// posix_spawn).
const PASS_THROUGH: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT];

extern "C" fn ignore(_: libc::c_int) {}

extern "C" fn on_parent_death(_: libc::c_int) {
    // SAFETY: kill(2) is async-signal-safe; 0 means our own process group, which ralph created
    // for this supervisor and which contains only the agent and its descendants.
    unsafe {
        libc::kill(0, libc::SIGKILL);
    }
}

/// Run the supervisor; returns the exit code to exit with (or does not return).
pub fn main(args: &[OsString]) -> i32 {
    let (parent, program, rest) = match args {
        [parent, sep, program, rest @ ..] if sep == "--" => (parent, program, rest),
        _ => {
            eprintln!("ralph-reap: usage: ralph {REAP_ARG} <parent-pid> -- PROGRAM [ARGS...]");
            return 2;
        }
    };
    let parent: libc::pid_t = parent.to_str().and_then(|s| s.parse().ok()).unwrap_or(-1);
    // SAFETY: plain syscalls on our own process; the handler only calls kill(2).
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
        libc::signal(
            libc::SIGUSR2,
            on_parent_death as *const () as libc::sighandler_t,
        );
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR2);
        // ralph may have died before the line above took effect.
        if libc::getppid() != parent {
            libc::kill(0, libc::SIGKILL);
        }
        for s in PASS_THROUGH {
            libc::signal(s, ignore as *const () as libc::sighandler_t);
        }
    }
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{EXEC_FAILED} `{}`: {e}", program.to_string_lossy());
            return match e.kind() {
                std::io::ErrorKind::PermissionDenied => EXIT_NOT_EXECUTABLE,
                _ => EXIT_NOT_FOUND,
            };
        }
    };
    let agent = child.id() as libc::pid_t;
    // Reap everything that ends up here until the agent itself exits.
    let status = loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid with a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == agent {
            break status;
        }
        if pid < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // No children left (should not happen before the agent is reaped).
            return 1;
        }
    };
    if libc::WIFEXITED(status) {
        return libc::WEXITSTATUS(status);
    }
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        // Die the same way, so ralph sees the agent's own signal.
        // SAFETY: resetting a disposition and raising a signal on ourselves.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(sig);
        }
        return 128 + sig;
    }
    1
}
