//! The supervisor between ralph and each agent or gate, so that no agent process outlives
//! ralph, even when ralph is SIGKILLed (a parent-death signal on the agent alone would not
//! reach the agent's own children).
//!
//! It costs one extra `fork`, no extra `exec`: [`install`] adds a pre-exec hook that runs in
//! the child std forked for the agent, and forks once more there. The grandchild returns from
//! the hook and execs the agent as usual (std reports exec failures to the parent as always).
//! The middle process never returns: it becomes the supervisor, which
//!
//! * is a child subreaper, so descendants orphaned while the agent runs are reaped here;
//! * gets SIGUSR2 when ralph dies and then SIGKILLs its whole process group (ralph created the
//!   group for it: the agent and every descendant that stayed in it);
//! * shrugs off SIGTERM/SIGINT/SIGHUP/SIGQUIT (ralph sends them to the group; the agent decides
//!   what they mean) and outlives the agent to pass its status through unchanged: the same exit
//!   code, or death by the same signal.
//!
//! Everything here runs between fork and exec of a possibly multi-threaded parent, so it uses
//! only async-signal-safe system calls: no allocation, no locks, no std I/O.

extern "C" fn kill_group(_: libc::c_int) {
    // SAFETY: kill(2) is async-signal-safe; 0 is our own process group.
    unsafe {
        libc::kill(0, libc::SIGKILL);
    }
}

extern "C" fn shrug(_: libc::c_int) {}

/// Set a handler without SA_RESTART, so a signal interrupts `waitpid` and the loop re-checks.
///
/// # Safety
/// Async-signal-safe; call only in the supervisor.
unsafe fn handle(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    let mut action: libc::sigaction = std::mem::zeroed();
    action.sa_sigaction = handler as *const () as libc::sighandler_t;
    libc::sigemptyset(&mut action.sa_mask);
    libc::sigaction(sig, &action, std::ptr::null_mut());
}

/// Make `cmd` run under a supervisor. `cmd` must also be given `process_group(0)`.
pub fn install(cmd: &mut tokio::process::Command) {
    let ralph = std::process::id() as libc::pid_t;
    // SAFETY: the hook only makes async-signal-safe system calls (see the module docs).
    unsafe {
        cmd.pre_exec(move || {
            supervise(ralph);
            Ok(())
        });
    }
}

/// Returns only in the agent-to-be; the supervisor ends inside with `_exit`.
///
/// # Safety
/// Must run between fork and exec; async-signal-safe calls only.
unsafe fn supervise(ralph: libc::pid_t) {
    libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    handle(libc::SIGUSR2, kill_group);
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR2);
    if libc::getppid() != ralph {
        // ralph died before the parent-death signal was armed.
        libc::kill(0, libc::SIGKILL);
    }
    // Handlers, unlike SIG_IGN, are reset by exec: the agent starts with default dispositions.
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
        handle(sig, shrug);
    }
    let agent = libc::fork();
    if agent == 0 {
        // The agent-to-be: no parent-death signal is inherited across fork; exec resets the
        // handlers above. Return to std, which execs the program.
        return;
    }
    if agent < 0 {
        libc::_exit(127);
    }
    // The supervisor holds no pipes: EOF on the agent's output must depend on the agent's group
    // alone, and std's exec-error pipe must close so ralph's spawn() returns.
    if libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) != 0 {
        for fd in 0..1024 {
            libc::close(fd);
        }
    }
    let mut status: libc::c_int = 0;
    loop {
        let pid = libc::waitpid(-1, &mut status, 0);
        if pid == agent {
            break;
        }
        if pid < 0 && *libc::__errno_location() != libc::EINTR {
            libc::_exit(1);
        }
    }
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &action, std::ptr::null_mut());
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::kill(libc::getpid(), sig);
        libc::_exit(128 + sig);
    }
    libc::_exit(libc::WEXITSTATUS(status));
}
