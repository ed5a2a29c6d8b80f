//! Reservations: how daily and monthly caps hold across ralph processes.
//!
//! Checking the ledger and then spending lets every process that checked at the same moment
//! spend (three projects at `daily_usd = 0.05` ended at $0.0738). Instead, before an iteration
//! starts, [`Ledger::reserve`] runs one `BEGIN IMMEDIATE` transaction — SQLite's write lock, so
//! one process at a time on the whole machine — that expires stale reservations, sums what was
//! spent (settled entries) and what is reserved by iterations in progress, refuses when the
//! iteration's expected cost does not fit under a cap, and otherwise inserts a reservation of
//! that amount. Recording the iteration's entry ([`Ledger::record`]) deletes its reservation in
//! the same statement batch: the estimate is replaced by the actual cost.
//!
//! The expected cost is the larger of the run's own costliest iteration and the costliest of
//! the backend's last [`ESTIMATE_WINDOW`] iterations in the ledger (any project). The
//! guarantee: settled spend in a window is at most the cap plus, for iterations that ran at the
//! same time, what each cost beyond its estimate — nothing when an agent's iterations cost the
//! same or less than the costliest recent one. With no history of the backend at all the
//! estimate is $0 and only the settled-plus-reserved total is checked: the processes that start
//! at that moment (the first wave) all start, but a reservation counts at least at its
//! backend's current estimate, so as soon as one iteration settles, the rest of the first wave
//! counts at that cost and no one else starts past the cap on their account.
//!
//! A reservation whose process died (kill -9, a crash) is expired by the next reservation: its
//! pid is gone (the caller says which pids live) or its lease passed. Processes sharing a
//! ledger must share a pid namespace for the first; the lease bounds the rest.

use rusqlite::{params, Transaction, TransactionBehavior};

use crate::ledger::{utc_bound, Ledger, SIDE_CALL_ITERATION_BASE};
use crate::{sql, StoreError};

/// How many of the backend's most recent ledger entries the estimate looks at.
pub const ESTIMATE_WINDOW: u32 = 20;

/// A cap the ledger enforces: the spend of every project with `from <= ts < to` (RFC3339).
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerCap {
    /// `daily` or `monthly`.
    pub scope: &'static str,
    pub from: String,
    pub to: String,
    pub cap_usd: f64,
}

/// An iteration about to start that asks for its share of the caps.
#[derive(Debug, Clone, PartialEq)]
pub struct ReservationRequest {
    pub project: String,
    pub run_id: String,
    pub iteration: u32,
    pub backend: String,
    /// Now (RFC3339), and when the reservation lapses if never settled.
    pub now: String,
    pub lease_until: String,
    /// The reserving process.
    pub pid: u32,
    /// The run's own costliest iteration so far, or the configured estimate if higher.
    pub own_estimate_usd: f64,
    /// `true`: refuse when the estimate would pass a cap; `false`: only when the cap is reached.
    pub stop_before_exceeding: bool,
    pub caps: Vec<LedgerCap>,
}

/// Why a reservation was refused: the numbers for the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub scope: &'static str,
    pub cap_usd: f64,
    /// Settled spend in the cap's window.
    pub spent_usd: f64,
    /// Reserved by other iterations in progress (any process).
    pub reserved_usd: f64,
    pub estimate_usd: f64,
}

/// What [`Ledger::reserve`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Reservation {
    /// Reserved this much (the estimate) until the iteration's entry is recorded.
    Held {
        amount_usd: f64,
    },
    Refused(Refusal),
}

impl Ledger {
    /// Reserve the expected cost of `req`'s iteration, or refuse it, atomically across every
    /// process using this ledger. `alive(pid)` says whether a reserving process still runs.
    pub fn reserve(
        &self,
        req: &ReservationRequest,
        alive: &dyn Fn(u32) -> bool,
    ) -> Result<Reservation, StoreError> {
        let now = utc_bound(&req.now, "reserve in the ledger")?;
        let lease = utc_bound(&req.lease_until, "reserve in the ledger")?;
        let tx = Transaction::new_unchecked(self.conn(), TransactionBehavior::Immediate)
            .map_err(sql("begin a ledger reservation"))?;
        expire(&tx, &now, alive)?;
        // This iteration's own earlier reservation (a replay after a crash) is replaced.
        tx.execute(
            "DELETE FROM reservations WHERE project = ?1 AND run_id = ?2 AND iteration = ?3",
            params![req.project, req.run_id, req.iteration],
        )
        .map_err(sql("replace a ledger reservation"))?;
        let estimate = req.own_estimate_usd.max(recent_max(&tx, &req.backend)?);
        for cap in &req.caps {
            let from = utc_bound(&cap.from, "reserve in the ledger")?;
            let to = utc_bound(&cap.to, "reserve in the ledger")?;
            let spent = self.spent_between(&from, &to)?;
            let reserved = reserved_between(&tx, &from, &to)?;
            let total = spent + reserved;
            let next = if req.stop_before_exceeding {
                estimate
            } else {
                0.0
            };
            // A hair of tolerance: five $0.01 iterations fit a $0.05 cap whatever the float sum.
            if total >= cap.cap_usd || total + next > cap.cap_usd + 1e-9 {
                // Nothing to keep: the expiries are redone by the next reservation.
                drop(tx);
                return Ok(Reservation::Refused(Refusal {
                    scope: cap.scope,
                    cap_usd: cap.cap_usd,
                    spent_usd: spent,
                    reserved_usd: reserved,
                    estimate_usd: estimate,
                }));
            }
        }
        tx.execute(
            "INSERT INTO reservations (project, run_id, iteration, ts, expires_at, amount_usd, \
             backend, pid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                req.project,
                req.run_id,
                req.iteration,
                now,
                lease,
                estimate,
                req.backend,
                req.pid
            ],
        )
        .map_err(sql("insert a ledger reservation"))?;
        tx.commit().map_err(sql("commit a ledger reservation"))?;
        Ok(Reservation::Held {
            amount_usd: estimate,
        })
    }

    /// Give back every reservation of a run (it ended; an iteration that did not finish spent
    /// nothing ralph can count).
    pub fn release_run(&self, project: &str, run_id: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "DELETE FROM reservations WHERE project = ?1 AND run_id = ?2",
                params![project, run_id],
            )
            .map(|_| ())
            .map_err(sql("release ledger reservations"))
    }

    /// Iterations in progress on the machine: (project, run id, iteration, amount).
    pub fn reservations(&self) -> Result<Vec<(String, String, u32, f64)>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT project, run_id, iteration, amount_usd FROM reservations \
                 ORDER BY ts, project, run_id, iteration",
            )
            .map_err(sql("read the ledger reservations"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map_err(sql("read the ledger reservations"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("read the ledger reservations"))
    }
}

/// Delete the reservations whose lease passed or whose process is gone.
fn expire(tx: &Transaction<'_>, now: &str, alive: &dyn Fn(u32) -> bool) -> Result<(), StoreError> {
    tx.execute("DELETE FROM reservations WHERE expires_at <= ?1", [now])
        .map_err(sql("expire ledger reservations"))?;
    let pids: Vec<u32> = {
        let mut stmt = tx
            .prepare("SELECT DISTINCT pid FROM reservations")
            .map_err(sql("read the ledger reservations"))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(sql("read the ledger reservations"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("read the ledger reservations"))?
    };
    for pid in pids.into_iter().filter(|p| !alive(*p)) {
        tx.execute("DELETE FROM reservations WHERE pid = ?1", [pid])
            .map_err(sql("expire ledger reservations"))?;
    }
    Ok(())
}

/// What the reservations with `from <= ts < to` hold: each at least its backend's estimate now,
/// so the first wave (reserved at $0, before any history) counts as soon as one of them settles.
fn reserved_between(tx: &Transaction<'_>, from: &str, to: &str) -> Result<f64, StoreError> {
    let rows: Vec<(String, f64)> = {
        let mut stmt = tx
            .prepare("SELECT backend, amount_usd FROM reservations WHERE ts >= ?1 AND ts < ?2")
            .map_err(sql("read the ledger reservations"))?;
        let rows = stmt
            .query_map(params![from, to], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql("read the ledger reservations"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("read the ledger reservations"))?
    };
    let mut estimates: std::collections::HashMap<String, f64> = Default::default();
    let mut total = 0.0;
    for (backend, amount) in rows {
        let estimate = match estimates.get(&backend) {
            Some(e) => *e,
            None => {
                let e = recent_max(tx, &backend)?;
                estimates.insert(backend, e);
                e
            }
        };
        total += amount.max(estimate);
    }
    Ok(total)
}

/// The costliest of the backend's last [`ESTIMATE_WINDOW`] iterations (believable costs only).
fn recent_max(tx: &Transaction<'_>, backend: &str) -> Result<f64, StoreError> {
    tx.query_row(
        "SELECT COALESCE(MAX(cost_usd), 0) FROM (SELECT cost_usd FROM entries \
         WHERE backend = ?1 AND iteration < ?2 AND cost_usd BETWEEN 0 AND 1000.0 \
         ORDER BY ts DESC LIMIT ?3)",
        params![backend, SIDE_CALL_ITERATION_BASE, ESTIMATE_WINDOW],
        |r| r.get(0),
    )
    .map_err(sql("estimate the next iteration's cost"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LedgerEntry, Tokens};

    const DAY: (&str, &str) = ("2025-03-01T00:00:00Z", "2025-03-02T00:00:00Z");

    fn request(run: &str, n: u32, cap: f64) -> ReservationRequest {
        ReservationRequest {
            project: format!("/p/{run}"),
            run_id: run.into(),
            iteration: n,
            backend: "claude".into(),
            now: "2025-03-01T10:00:00Z".into(),
            lease_until: "2025-03-01T11:00:00Z".into(),
            pid: 7,
            own_estimate_usd: 0.0,
            stop_before_exceeding: true,
            caps: vec![LedgerCap {
                scope: "daily",
                from: DAY.0.into(),
                to: DAY.1.into(),
                cap_usd: cap,
            }],
        }
    }

    fn entry(req: &ReservationRequest, cost: f64) -> LedgerEntry {
        LedgerEntry {
            ts: "2025-03-01T10:00:01Z".into(),
            project: req.project.clone(),
            run_id: req.run_id.clone(),
            iteration: req.iteration,
            backend: req.backend.clone(),
            model: None,
            cost_usd: Some(cost),
            cost_source: "reported".into(),
            tokens: Some(Tokens::default()),
        }
    }

    fn alive(_: u32) -> bool {
        true
    }

    #[test]
    fn reservations_count_until_settled_by_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("ledger.db")).unwrap();
        // History: the backend's iterations cost $0.02.
        let seed = request("seed", 1, 1.0);
        l.record(&entry(&seed, 0.02)).unwrap();
        let a = request("a", 1, 0.05);
        assert_eq!(
            l.reserve(&a, &alive).unwrap(),
            Reservation::Held { amount_usd: 0.02 }
        );
        // $0.02 spent + $0.02 reserved + $0.02 expected > $0.05.
        let b = request("b", 1, 0.05);
        let Reservation::Refused(r) = l.reserve(&b, &alive).unwrap() else {
            panic!("reserved past the cap");
        };
        assert_eq!(
            (r.spent_usd, r.reserved_usd, r.estimate_usd),
            (0.02, 0.02, 0.02)
        );
        // Settled cheaper than expected: room again.
        l.record(&entry(&a, 0.005)).unwrap();
        assert!(l.reservations().unwrap().is_empty());
        assert!(matches!(
            l.reserve(&b, &alive).unwrap(),
            Reservation::Held { .. }
        ));
        // A dead process's reservation is expired by the next one; so is a lapsed lease.
        let c = request("c", 1, 1.0);
        l.reserve(&c, &|_| false).unwrap();
        assert_eq!(
            l.reservations().unwrap().len(),
            1,
            "b's dead pid was not expired"
        );
        let mut later = request("d", 1, 1.0);
        later.now = "2025-03-01T11:00:00Z".into();
        later.lease_until = "2025-03-01T12:00:00Z".into();
        l.reserve(&later, &alive).unwrap();
        let left: Vec<_> = l.reservations().unwrap().into_iter().map(|r| r.1).collect();
        assert_eq!(left, vec!["d".to_string()]);
        l.release_run(&later.project, "d").unwrap();
        assert!(l.reservations().unwrap().is_empty());
    }

    #[test]
    fn the_first_wave_counts_at_the_estimate_once_there_is_one() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("ledger.db")).unwrap();
        // No history: both start, reserving $0.
        let (a, b) = (request("a", 1, 0.05), request("b", 1, 0.05));
        assert_eq!(
            l.reserve(&a, &alive).unwrap(),
            Reservation::Held { amount_usd: 0.0 }
        );
        assert!(matches!(
            l.reserve(&b, &alive).unwrap(),
            Reservation::Held { .. }
        ));
        // a settles at $0.02: b's iteration now counts at $0.02 too.
        l.record(&entry(&a, 0.02)).unwrap();
        let c = request("c", 1, 0.05);
        let Reservation::Refused(r) = l.reserve(&c, &alive).unwrap() else {
            panic!("$0.02 + $0.02 held by b + $0.02 expected fits no $0.05 cap");
        };
        assert_eq!((r.spent_usd, r.reserved_usd), (0.02, 0.02));
    }

    /// Threads, each with its own connection (as processes have), race to spend a $0.05 cap
    /// at $0.01 an iteration: the settled total never passes it.
    #[test]
    fn contending_writers_never_pass_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let l = Ledger::open(&path).unwrap();
        l.record(&entry(&request("seed", 1, 1.0), 0.01)).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let l = Ledger::open(&path).unwrap();
                    let mut spent = 0;
                    for n in 1..=10 {
                        let req = request(&format!("t{t}"), n, 0.05);
                        match l.reserve(&req, &alive).unwrap() {
                            Reservation::Held { .. } => {
                                std::thread::sleep(std::time::Duration::from_millis(5));
                                l.record(&entry(&req, 0.01)).unwrap();
                                spent += 1;
                            }
                            Reservation::Refused(_) => break,
                        }
                    }
                    spent
                })
            })
            .collect();
        let iterations: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(
            iterations, 4,
            "the $0.04 left holds exactly four $0.01 iterations"
        );
        let spent = l.spent_between(DAY.0, DAY.1).unwrap();
        assert!(spent <= 0.05 + 1e-9, "{spent}");
    }

    #[test]
    fn a_ledger_of_the_first_schema_is_migrated_and_keeps_its_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(crate::ledger::MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO entries (project, run_id, iteration, ts, backend, cost_usd, \
                 cost_source) VALUES ('/p', 'r', 1, '2025-03-01T09:00:00.000Z', 'claude', 0.5, \
                 'reported')",
                [],
            )
            .unwrap();
        }
        let l = Ledger::open(&path).unwrap();
        assert_eq!(l.spent_between(DAY.0, DAY.1).unwrap(), 0.5);
        assert!(matches!(
            l.reserve(&request("a", 1, 1.0), &alive).unwrap(),
            Reservation::Held { amount_usd } if amount_usd == 0.5
        ));
    }
}
