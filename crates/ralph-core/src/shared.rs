//! What every loop of a process shares (ARCHITECTURE.md "Stories"): one store writer, the
//! machine-wide ledger, the plan budget, one limit state per backend, the stop request, and the
//! injected clock and ids. Each engine gets a clone of [`Handles`]; cloning shares.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use ralph_agents::ErrorClass;
use ralph_store::{AuditLog, Shared, Store, Writer};

use crate::budget::PlanBudget;
use crate::clock::Deps;

/// Handles shared by every loop of the process.
#[derive(Clone, Debug)]
pub struct Handles {
    /// The one writer of the state database and the ledger (see `ralph_store::Writer`).
    pub store: Writer,
    /// Where the machine-wide ledger is (`None`: no `budget.ledger`, `RALPH_HOME`,
    /// `XDG_DATA_HOME` or `HOME` says); the writer opens it on first use.
    pub ledger: Option<PathBuf>,
    pub audit: AuditHandle,
    /// Caps over every loop together (a plan run); `None` for the single loop, whose own caps
    /// are all there is.
    pub budget: Option<PlanBudget>,
    pub limits: BackendLimits,
    pub stop: StopLatch,
    pub deps: Deps,
    /// The artifact directories of every run this process has started: ralph writes them while
    /// another loop's agent runs, so that loop's state check does not watch them.
    pub active_artifacts: Arc<Mutex<Vec<PathBuf>>>,
    /// Refs ralph itself wrote (checkpoints), in order: another loop's ref guard, comparing the
    /// refs before and after its agent ran, takes these as ralph's, not the agent's.
    pub own_refs: OwnRefs,
}

/// An append-only log of the refs ralph wrote, shared by the loops of one process.
#[derive(Clone, Debug, Default)]
pub struct OwnRefs(Arc<Mutex<Vec<(String, String)>>>);

impl OwnRefs {
    pub fn record(&self, name: &str, oid: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.to_string(), oid.to_string()));
    }

    /// How many writes so far: a mark for [`OwnRefs::since`].
    pub fn mark(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The writes after `mark`.
    pub fn since(&self, mark: usize) -> Vec<(String, String)> {
        let log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        log.get(mark..).map(<[_]>::to_vec).unwrap_or_default()
    }
}

impl Handles {
    /// Handles for one process: `store` is the project's database, `state_dir` its `.ralph/`.
    /// A STOP file left from an earlier run is removed here, once, not by each loop (a loop
    /// starting late must not swallow a request meant for all of them).
    pub fn new(store: Store, ledger: Option<PathBuf>, state_dir: &Path, deps: Deps) -> Handles {
        Handles {
            store: Writer::start(store, ledger.clone()),
            ledger,
            audit: AuditHandle::at(state_dir.join(ralph_store::audit::AUDIT_FILE)),
            budget: None,
            limits: BackendLimits::default(),
            stop: StopLatch::new(state_dir),
            deps,
            active_artifacts: Arc::default(),
            own_refs: OwnRefs::default(),
        }
    }

    /// A run of this process writes `dir` (never forgotten: a run that ended during another
    /// loop's iteration wrote there during it).
    pub fn register_artifacts(&self, dir: &Path) {
        let mut dirs = self
            .active_artifacts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !dirs.iter().any(|d| d == dir) {
            dirs.push(dir.to_path_buf());
        }
    }

    pub fn artifact_dirs(&self) -> Vec<PathBuf> {
        self.active_artifacts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A file every loop of the process writes through one handle, opened on first use: start-up
/// latency is part of ralph's budget (≤ 5 ms to the first spawn), and the audit log is not needed
/// before the first agent is running.
pub struct Lazy<T> {
    path: Option<PathBuf>,
    open: fn(&Path) -> Result<T, String>,
    opened: Arc<OnceLock<Result<Shared<T>, String>>>,
}

impl<T> Clone for Lazy<T> {
    fn clone(&self) -> Self {
        Lazy {
            path: self.path.clone(),
            open: self.open,
            opened: Arc::clone(&self.opened),
        }
    }
}

impl<T> std::fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lazy").field("path", &self.path).finish()
    }
}

impl<T> Lazy<T> {
    /// Where it is; `None` when no location is known.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The open file: `Ok(None)` without a location, `Err` (the reason, the same every time)
    /// when it cannot be opened. A failed open is not retried: every loop gets the same answer.
    pub fn get(&self) -> Result<Option<&Shared<T>>, String> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let opened = self
            .opened
            .get_or_init(|| (self.open)(path).map(Shared::new));
        match opened {
            Ok(l) => Ok(Some(l)),
            Err(e) => Err(e.clone()),
        }
    }
}

/// The project's audit log, `.ralph/audit.jsonl`.
pub type AuditHandle = Lazy<AuditLog>;

impl AuditHandle {
    pub fn at(path: PathBuf) -> AuditHandle {
        Lazy {
            path: Some(path),
            open: |p| AuditLog::open(p).map_err(|e| e.to_string()),
            opened: Arc::new(OnceLock::new()),
        }
    }
}

/// A backend that must not be called before `until`, because one loop was told so (a usage
/// limit's reset, a rate limit's retry-after or back-off).
#[derive(Debug, Clone, PartialEq)]
pub struct Pause {
    pub until: tokio::time::Instant,
    /// The same instant on the wall clock, for messages and events.
    pub until_wall: DateTime<Utc>,
    pub class: ErrorClass,
    /// Whether the agent said when the limit lifts (else a back-off).
    pub stated: bool,
    /// The run (loop) that hit the limit.
    pub by_run: String,
}

/// One limit state per backend, shared by every loop: a usage limit or rate limit seen by one
/// loop makes the others on that backend wait for the same reset instead of each discovering it.
#[derive(Debug, Clone, Default)]
pub struct BackendLimits {
    inner: Arc<Mutex<HashMap<String, Pause>>>,
}

impl BackendLimits {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pause>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record that `backend` is limited until `pause.until` (a later pause wins).
    pub fn pause(&self, backend: &str, pause: Pause) {
        let mut map = self.map();
        match map.get(backend) {
            Some(old) if old.until >= pause.until => {}
            _ => {
                map.insert(backend.to_string(), pause);
            }
        }
    }

    /// The pause in force for `backend` at `now`, if any.
    pub fn paused(&self, backend: &str, now: tokio::time::Instant) -> Option<Pause> {
        let mut map = self.map();
        match map.get(backend) {
            Some(p) if p.until > now => Some(p.clone()),
            Some(_) => {
                map.remove(backend);
                None
            }
            None => None,
        }
    }
}

/// `.ralph/STOP` (what `ralph stop` writes): a request to stop every loop after its current
/// iteration. The first loop to see the file removes it and latches the request for all.
#[derive(Debug, Clone)]
pub struct StopLatch {
    path: PathBuf,
    seen: Arc<AtomicBool>,
}

impl StopLatch {
    /// Removes a STOP file left from an earlier run: it was a request to that run.
    pub fn new(state_dir: &Path) -> StopLatch {
        let path = state_dir.join("STOP");
        let _ = std::fs::remove_file(&path);
        StopLatch {
            path,
            seen: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether a stop was requested (the file exists now, or did once).
    pub fn requested(&self) -> bool {
        if self.seen.load(Ordering::SeqCst) {
            return true;
        }
        if self.path.exists() {
            let _ = std::fs::remove_file(&self.path);
            self.seen.store(true, Ordering::SeqCst);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_latch_is_seen_by_every_clone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("STOP"), "").unwrap();
        let latch = StopLatch::new(dir.path());
        assert!(
            !dir.path().join("STOP").exists(),
            "a stale request is cleared"
        );
        let other = latch.clone();
        assert!(!latch.requested());
        std::fs::write(dir.path().join("STOP"), "").unwrap();
        assert!(other.requested());
        assert!(!dir.path().join("STOP").exists());
        assert!(latch.requested(), "latched for every loop");
    }

    #[tokio::test(start_paused = true)]
    async fn backend_pauses_are_shared_and_expire() {
        let limits = BackendLimits::default();
        let now = tokio::time::Instant::now();
        let pause = |secs: u64| Pause {
            until: now + std::time::Duration::from_secs(secs),
            until_wall: Utc::now(),
            class: ErrorClass::UsageLimit,
            stated: true,
            by_run: "r1".into(),
        };
        limits.pause("claude", pause(60));
        limits.pause("claude", pause(30));
        let seen = limits.clone().paused("claude", now).unwrap();
        assert_eq!(
            seen.until,
            now + std::time::Duration::from_secs(60),
            "the later wins"
        );
        assert!(limits.paused("codex", now).is_none());
        tokio::time::advance(std::time::Duration::from_secs(61)).await;
        assert!(limits
            .paused("claude", tokio::time::Instant::now())
            .is_none());
    }
}
