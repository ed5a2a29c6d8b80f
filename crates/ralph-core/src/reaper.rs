//! No agent process outlives ralph, even when ralph is SIGKILLed: one guardian process per
//! ralph process kills every agent's and gate's process group when ralph goes away.
//!
//! A parent-death signal on the agent alone would not reach the agent's own children, and a
//! supervisor forked per call (this module's earlier design) is a copy of ralph that lives as
//! long as the agent: every page ralph writes meanwhile is copied on write, which made each
//! iteration of eight loops in one process cost several milliseconds more. The guardian is
//! forked once, on first use, and costs each of ralph's pages at most one copy, ever.
//!
//! * ralph and the guardian share a `SOCK_SEQPACKET` socket pair. Every child started with
//!   [`install`] sends its own pid (its process group: children are started with
//!   `process_group(0)`) to the guardian from its pre-exec hook, before it can run any code of
//!   the agent's: registration cannot be missed, whenever ralph dies.
//! * When ralph has killed what was left of a group after its leader exited, it unregisters the
//!   group ([`release`]), so a process group id the system reuses later is never touched.
//! * ralph's end of the socket is close-on-exec: no agent holds it. When ralph dies (and with it
//!   any child still between fork and exec), the guardian reads end-of-file and SIGKILLs every
//!   group still registered, then exits.
//! * The guardian lives in its own process group (a Ctrl-C for ralph does not reach it), ignores
//!   the usual termination signals, holds none of ralph's other file descriptors (EOF on an
//!   agent's pipes depends on the agent alone), and its standard streams are /dev/null.
//!
//! Everything in the guardian and in the pre-exec hook runs after `fork` in a possibly
//! multi-threaded process, so it uses only async-signal-safe system calls: no allocation, no
//! locks, no std I/O.
//!
//! If the guardian cannot be started (no socket pair, no fork), children get a parent-death
//! signal instead: the agent itself still dies with ralph, its descendants may not.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

/// Most process groups the guardian tracks at once (agents and gates running concurrently);
/// a registration past it is dropped, and that group is then only covered by the kill ralph
/// does itself.
const MAX_GROUPS: usize = 4096;

struct Guardian {
    /// ralph's end of the socket pair (close-on-exec).
    socket: OwnedFd,
    pid: libc::pid_t,
}

static GUARDIAN: OnceLock<Option<Guardian>> = OnceLock::new();

fn guardian() -> Option<&'static Guardian> {
    GUARDIAN
        .get_or_init(|| {
            // Orphans of agents become ralph's children, for the final sweep (`orphans.rs`).
            crate::orphans::become_subreaper();
            start().ok()
        })
        .as_ref()
}

/// The guardian's pid, once it runs: never one of the processes a sweep kills.
pub fn guardian_pid() -> Option<libc::pid_t> {
    GUARDIAN.get().and_then(Option::as_ref).map(|g| g.pid)
}

fn start() -> std::io::Result<Guardian> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: socketpair writes two descriptors into the array we own.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // Built before the fork: the guardian may not allocate.
    let mut needle = [0u8; NEEDLE_MAX];
    let text = format!("{}={}:", crate::orphans::MARKER_VAR, std::process::id());
    let len = text.len().min(NEEDLE_MAX);
    needle[..len].copy_from_slice(&text.as_bytes()[..len]);
    // SAFETY: the child only runs `guard`, which makes async-signal-safe calls and never
    // returns.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => unsafe { guard(theirs.as_raw_fd(), &needle[..len]) },
        pid => Ok(Guardian { socket: ours, pid }),
    }
}

/// The guardian's whole life.
///
/// # Safety
/// Runs in a freshly forked child of a possibly multi-threaded process: async-signal-safe calls
/// only.
unsafe fn guard(socket: RawFd, needle: &[u8]) -> ! {
    // Its own group: signals for ralph's group (a terminal's Ctrl-C) are not for it.
    libc::setpgid(0, 0);
    for sig in [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGPIPE,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ] {
        libc::signal(sig, libc::SIG_IGN);
    }
    libc::prctl(
        libc::PR_SET_NAME,
        c"ralph-guardian".as_ptr() as libc::c_ulong,
        0,
        0,
        0,
    );
    // Keep only the socket (as fd 3) and /dev/null as the standard streams.
    if socket != 3 {
        libc::dup2(socket, 3);
    }
    if libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) != 0 {
        for fd in 4..4096 {
            libc::close(fd);
        }
    }
    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
    if null >= 0 {
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        if null > 3 {
            libc::close(null);
        }
    }
    let mut groups = [0 as libc::pid_t; MAX_GROUPS];
    let mut buf = [0u8; 4];
    loop {
        let n = libc::recv(3, buf.as_mut_ptr().cast(), buf.len(), 0);
        if n == 0 {
            break;
        }
        if n < 0 {
            if *libc::__errno_location() == libc::EINTR {
                continue;
            }
            break;
        }
        if n as usize != buf.len() {
            continue;
        }
        let pid = libc::pid_t::from_ne_bytes(buf);
        if pid > 1 {
            if let Some(slot) = groups.iter_mut().find(|g| **g == 0) {
                *slot = pid;
            }
        } else if pid < -1 {
            if let Some(slot) = groups.iter_mut().find(|g| **g == -pid) {
                *slot = 0;
            }
        }
    }
    // ralph is gone: nothing it started may outlive it.
    for g in groups.iter().filter(|g| **g > 1) {
        libc::kill(-*g, libc::SIGKILL);
    }
    // Nor what left those groups but carries one of ralph's call markers (`orphans.rs`);
    // a few rounds, for a process forking meanwhile.
    for _ in 0..4 {
        if kill_marked(needle) == 0 {
            break;
        }
    }
    libc::_exit(0);
}

/// Longest marker prefix the guardian looks for (`RALPH_SUPERVISED=<pid>:`).
const NEEDLE_MAX: usize = 48;

/// SIGKILL every process whose environment has an entry starting with `needle`; returns how
/// many. Raw system calls and stack buffers only (see [`guard`]).
///
/// # Safety
/// Async-signal-safe: for the guardian after ralph died.
unsafe fn kill_marked(needle: &[u8]) -> usize {
    let dir = libc::open(
        c"/proc".as_ptr(),
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
    );
    if dir < 0 {
        return 0;
    }
    let me = libc::getpid();
    let mut killed = 0;
    let mut buf = [0u8; 8192];
    loop {
        let n = libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len());
        if n <= 0 {
            break;
        }
        let mut off = 0usize;
        while off + 19 < n as usize {
            // linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name.
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            if reclen == 0 {
                break;
            }
            let name = &buf[off + 19..(off + reclen).min(n as usize)];
            off += reclen;
            let Some(pid) = parse_pid(name) else { continue };
            if pid != me && pid > 1 && environ_has_prefix(pid, needle) {
                libc::kill(pid, libc::SIGKILL);
                killed += 1;
            }
        }
    }
    libc::close(dir);
    killed
}

/// The leading decimal digits of a NUL-terminated directory name, if it is all digits.
fn parse_pid(name: &[u8]) -> Option<libc::pid_t> {
    let mut pid: libc::pid_t = 0;
    let mut digits = 0;
    for &b in name {
        if b == 0 {
            break;
        }
        if !b.is_ascii_digit() {
            return None;
        }
        pid = pid
            .checked_mul(10)?
            .checked_add(libc::pid_t::from(b - b'0'))?;
        digits += 1;
    }
    (digits > 0).then_some(pid)
}

/// Whether an entry of `/proc/<pid>/environ` starts with `needle`, read in chunks into a stack
/// buffer (an entry may straddle two reads).
///
/// # Safety
/// Async-signal-safe.
unsafe fn environ_has_prefix(pid: libc::pid_t, needle: &[u8]) -> bool {
    let mut path = [0u8; 32];
    let prefix = b"/proc/";
    path[..prefix.len()].copy_from_slice(prefix);
    let mut at = prefix.len();
    let mut digits = [0u8; 12];
    let mut nd = 0;
    let mut v = pid;
    while v > 0 && nd < digits.len() {
        digits[nd] = b'0' + (v % 10) as u8;
        v /= 10;
        nd += 1;
    }
    for i in (0..nd).rev() {
        path[at] = digits[i];
        at += 1;
    }
    let tail = b"/environ\0";
    path[at..at + tail.len()].copy_from_slice(tail);
    let fd = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return false;
    }
    // `matched`: bytes of `needle` matched so far at the start of the current entry;
    // `usize::MAX`: the current entry already failed to match.
    let mut matched = 0usize;
    let mut found = false;
    let mut chunk = [0u8; 4096];
    'read: loop {
        let n = libc::read(fd, chunk.as_mut_ptr().cast(), chunk.len());
        if n <= 0 {
            break;
        }
        for &b in &chunk[..n as usize] {
            if b == 0 {
                matched = 0;
                continue;
            }
            if matched == usize::MAX {
                continue;
            }
            if b == needle[matched] {
                matched += 1;
                if matched == needle.len() {
                    found = true;
                    break 'read;
                }
            } else {
                matched = usize::MAX;
            }
        }
    }
    libc::close(fd);
    found
}

/// Make `cmd` die with ralph, its whole process group included. `cmd` must also be given
/// `process_group(0)`.
pub fn install(cmd: &mut tokio::process::Command) {
    let Some(g) = guardian() else {
        set_parent_death_signal(cmd);
        return;
    };
    let socket = g.socket.as_raw_fd();
    // SAFETY: the hook only makes async-signal-safe system calls (getpid, send).
    unsafe {
        cmd.pre_exec(move || {
            let me = libc::getpid().to_ne_bytes();
            // MSG_NOSIGNAL: a guardian that died must not kill the agent with SIGPIPE.
            libc::send(socket, me.as_ptr().cast(), me.len(), libc::MSG_NOSIGNAL);
            Ok(())
        });
    }
}

/// The group `pgid` is over (its leader exited and ralph killed the rest): stop guarding it.
pub fn release(pgid: u32) {
    let Some(g) = GUARDIAN.get().and_then(Option::as_ref) else {
        return;
    };
    let Ok(pid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    let msg = (-pid).to_ne_bytes();
    // SAFETY: a send of a 4-byte buffer we own on a socket we own.
    unsafe {
        libc::send(
            g.socket.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            libc::MSG_NOSIGNAL,
        );
    }
}

/// Die with ralph (direct child only): what is left without a guardian.
pub fn set_parent_death_signal(cmd: &mut tokio::process::Command) {
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork and exec.
    unsafe {
        let parent = libc::getpid();
        cmd.pre_exec(move || {
            #[cfg(target_os = "linux")]
            {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != parent {
                    libc::_exit(137);
                }
            }
            let _ = parent;
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_are_read_from_directory_names() {
        assert_eq!(parse_pid(b"1234\0junk"), Some(1234));
        assert_eq!(parse_pid(b"self\0"), None);
        assert_eq!(parse_pid(b"\0"), None);
        assert_eq!(parse_pid(b"99999999999999\0"), None);
    }

    #[test]
    fn an_environment_entry_is_matched_by_its_start_only() {
        let me = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
        // SAFETY: reads our own /proc entry.
        unsafe {
            assert!(environ_has_prefix(me, b"PATH="));
            assert!(!environ_has_prefix(me, b"ATH=/"));
            assert!(!environ_has_prefix(me, b"RALPH_NO_SUCH_VARIABLE_EVER="));
        }
    }
}
