//! No process outlives its call or ralph, not even one that left the call's process group
//! (`setsid bash -c 'sleep 300' &`, a daemonising dev server, `nohup … &` with `setsid`).
//!
//! Killing the process group misses those, so every supervised call also carries a marker in
//! its environment, `RALPH_SUPERVISED=<ralph pid>:<call>`, which every descendant inherits
//! whatever group or session it moves to. When the call ends, [`sweep_call`] kills every
//! process whose environment holds the call's marker; when ralph ends, [`sweep_all`] kills every
//! process of any of its calls, and every orphan that was reparented to ralph (ralph is a child
//! subreaper, see [`become_subreaper`], so a descendant that cleared its environment is still
//! found: its parent died, and it became ralph's child).
//!
//! Only processes started after the call's leader are looked at (their pids are larger, unless
//! the kernel's pid counter wrapped, which is checked), so the scan reads a few `/proc` entries,
//! not the whole machine's. Killed processes that are ralph's own children are reaped here;
//! nothing else is ever waited for (ralph's other children belong to tokio or std).
//!
//! When ralph is SIGKILLed, the guardian (`reaper.rs`) kills the marked processes too. Not
//! covered: a process that both cleared its environment and outlives a SIGKILL of ralph. The
//! OS sandbox closes that gap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The environment variable carrying the marker.
pub const MARKER_VAR: &str = "RALPH_SUPERVISED";

/// Rounds of scan-and-kill: a process that forks while it is being killed leaves a child the
/// next round finds.
const ROUNDS: usize = 4;

/// How long a killed child of ralph is waited for before it is left as a zombie.
const REAP_WAIT: Duration = Duration::from_millis(200);

static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

/// ralph becomes the parent of every orphaned descendant (instead of init), so [`sweep_all`]
/// finds them. Idempotent; a failure (not Linux) only weakens the final sweep.
pub fn become_subreaper() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with integer arguments; no memory is involved.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// A new call's marker value.
pub fn new_marker() -> String {
    format!(
        "{}:{}",
        std::process::id(),
        NEXT_CALL.fetch_add(1, Ordering::Relaxed)
    )
}

/// Kill every process that carries `marker` (the call's descendants, wherever they moved),
/// looking only at processes started after `leader`. Returns how many were killed.
pub fn sweep_call(marker: &str, leader: u32) -> usize {
    let needle = format!("{MARKER_VAR}={marker}\0");
    sweep(i32::try_from(leader).unwrap_or(0), |p| {
        environ_has(p.pid, needle.as_bytes())
    })
}

/// Kill every process of any call of this ralph, and every orphan reparented to it. For the end
/// of ralph, when nothing of ralph's own is running any more.
pub fn sweep_all() -> usize {
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    let prefix = format!("{MARKER_VAR}={me}:");
    sweep(0, |p| {
        p.ppid == me || environ_contains(p.pid, prefix.as_bytes())
    })
}

#[derive(Debug, Clone, Copy)]
struct Proc {
    pid: i32,
    ppid: i32,
}

fn sweep(min_pid: i32, mut doomed: impl FnMut(&Proc) -> bool) -> usize {
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    let guardian = crate::reaper::guardian_pid();
    let mut killed = 0;
    let mut children = Vec::new();
    for _ in 0..ROUNDS {
        let victims: Vec<Proc> = scan(min_pid)
            .into_iter()
            .filter(|p| p.pid != me && Some(p.pid) != guardian && p.pid > 1)
            .filter(|p| doomed(p))
            .collect();
        if victims.is_empty() {
            break;
        }
        for v in &victims {
            // SAFETY: kill(2) on a positive pid; no memory involved.
            unsafe {
                libc::kill(v.pid, libc::SIGKILL);
            }
            if v.ppid == me {
                children.push(v.pid);
            }
        }
        killed += victims.len();
    }
    reap(&children);
    killed
}

/// Wait for killed children of ralph (briefly: a process stuck in the kernel stays a zombie).
fn reap(children: &[i32]) {
    let deadline = Instant::now() + REAP_WAIT;
    let mut left: Vec<i32> = children.to_vec();
    while !left.is_empty() {
        left.retain(|&pid| {
            let mut status = 0;
            // SAFETY: waitpid on a specific child pid with a status out-parameter we own.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            r == 0
        });
        if left.is_empty() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Processes with a pid of at least `min_pid` (all of them if the pid counter wrapped since).
fn scan(min_pid: i32) -> Vec<Proc> {
    let last = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    let min_pid = match last {
        Some(last) if last >= min_pid => min_pid,
        _ => 0,
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid >= min_pid)
        .filter_map(|pid| {
            let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
            parse_stat(pid, &stat)
        })
        .collect()
}

/// `pid (comm) S ppid …`: the command may hold spaces and parentheses, so parse after the last
/// `)`. Zombies are skipped (nothing to kill; their parent reaps them).
fn parse_stat(pid: i32, stat: &[u8]) -> Option<Proc> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    let ppid = fields.next()?.parse().ok()?;
    Some(Proc { pid, ppid })
}

fn environ(pid: i32) -> Option<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/environ")).ok()
}

/// The environment holds exactly `entry` (`NAME=value\0`).
fn environ_has(pid: i32, entry: &[u8]) -> bool {
    environ(pid).is_some_and(|env| {
        env.starts_with(entry) || memchr::memmem::find(&env, &[b"\0", entry].concat()).is_some()
    })
}

/// Some entry of the environment starts with `prefix` (`NAME=start`).
fn environ_contains(pid: i32, prefix: &[u8]) -> bool {
    environ(pid).is_some_and(|env| env.split(|&b| b == 0).any(|e| e.starts_with(prefix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_parsed_after_the_last_parenthesis() {
        let p = parse_stat(42, b"42 (a) b) (c) S 7 42 42 0 -1").unwrap();
        assert_eq!((p.pid, p.ppid), (42, 7));
        assert!(parse_stat(43, b"43 (zombie) Z 1 43").is_none());
        assert!(parse_stat(44, b"garbage").is_none());
    }

    #[test]
    fn markers_are_unique_per_call() {
        assert_ne!(new_marker(), new_marker());
    }
}
