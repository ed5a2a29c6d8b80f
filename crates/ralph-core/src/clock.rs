//! What the engine must not take from the machine on its own, so tests can fix it: the wall
//! clock (timestamps, ledger day and month windows), run ids, and the seed of the retry jitter
//! (ARCHITECTURE.md "Testing"). Timeouts and waits use tokio's monotonic time, which tests
//! control with a paused runtime.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};

/// The wall clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// RFC 3339 with milliseconds, UTC: how every timestamp ralph records is written.
    fn rfc3339(&self) -> String {
        self.now().to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told (or by `step_ms` on every reading): deterministic
/// timestamps for tests.
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicI64,
    step_ms: i64,
}

impl ManualClock {
    /// Starts at `start`; every reading advances it by `step_ms` milliseconds (0: frozen).
    pub fn new(start: DateTime<Utc>, step_ms: i64) -> ManualClock {
        ManualClock {
            millis: AtomicI64::new(start.timestamp_millis()),
            step_ms,
        }
    }

    pub fn advance(&self, ms: i64) {
        self.millis.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        let ms = self.millis.fetch_add(self.step_ms, Ordering::SeqCst);
        DateTime::from_timestamp_millis(ms).unwrap_or_default()
    }
}

/// Where run ids come from.
pub trait RunIds: Send + Sync {
    fn next_id(&self, now: DateTime<Utc>) -> String;
}

/// `20261202-054012-ab12`: sorts by start time; the suffix mixes the time's nanoseconds with the
/// process id and a per-process counter, so two runs started in the same instant (several loops
/// of one plan) still differ.
#[derive(Debug, Default)]
pub struct TimeIds {
    counter: std::sync::atomic::AtomicU64,
}

impl RunIds for TimeIds {
    fn next_id(&self, now: DateTime<Utc>) -> String {
        let nanos = now.timestamp_subsec_nanos() as u64;
        let count = self.counter.fetch_add(1, Ordering::Relaxed);
        let mix = (nanos ^ ((std::process::id() as u64) << 20) ^ (count << 40))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        format!("{}-{:04x}", now.format("%Y%m%d-%H%M%S"), (mix >> 48) as u16)
    }
}

/// `run-1`, `run-2`, …: for tests.
#[derive(Debug, Default)]
pub struct SequentialIds {
    counter: std::sync::atomic::AtomicU64,
}

impl RunIds for SequentialIds {
    fn next_id(&self, _now: DateTime<Utc>) -> String {
        format!("run-{}", self.counter.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// The engine's injected dependencies.
#[derive(Clone)]
pub struct Deps {
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn RunIds>,
    /// Seed of the retry jitter (xorshift; 0 is replaced by 1).
    pub seed: u64,
}

impl Deps {
    /// The real clock, time-based ids, and a seed from the clock.
    pub fn system() -> Deps {
        let seed = Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64 | 1;
        Deps {
            clock: Arc::new(SystemClock),
            ids: Arc::new(TimeIds::default()),
            seed,
        }
    }
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").field("seed", &self.seed).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_steps_and_ids_are_distinct() {
        let start = DateTime::from_timestamp(1_764_650_000, 0).unwrap_or_default();
        let clock = ManualClock::new(start, 5);
        assert_eq!(clock.now(), start);
        assert_eq!(clock.rfc3339(), "2025-12-02T04:33:20.005Z");
        clock.advance(1000);
        assert_eq!(
            clock.now().timestamp_millis(),
            start.timestamp_millis() + 1010
        );
        let ids = TimeIds::default();
        let a = ids.next_id(start);
        let b = ids.next_id(start);
        assert_ne!(a, b, "the same instant still gives two ids");
        assert!(a.starts_with("20251202-043320-"), "{a}");
        let seq = SequentialIds::default();
        assert_eq!(seq.next_id(start), "run-1");
        assert_eq!(seq.next_id(start), "run-2");
    }
}
