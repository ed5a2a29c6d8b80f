//! The daily and monthly caps across processes: before an iteration starts, its expected cost
//! is reserved in the machine-wide ledger in one transaction that also checks the caps (see
//! `ralph_store::reserve`); the iteration's ledger entry settles it, the end of the run gives
//! back what an unfinished iteration held.

use std::time::Duration;

use ralph_store::{LedgerCap, Refusal, Reservation, ReservationRequest};

use super::{Engine, Stop};
use crate::events::StopReason;

/// Past this (on top of twice the iteration timeout) a reservation that was never settled
/// lapses even if its process still runs.
const LEASE_MARGIN: Duration = Duration::from_secs(10 * 60);

impl Engine {
    /// Reserve the next iteration's share of the daily and monthly caps, or the stop that
    /// refuses it. Without such a cap nothing is reserved.
    pub(super) async fn reserve_in_ledger(&mut self) -> Option<Stop> {
        let l = &self.settings.limits;
        if l.daily_usd.is_none() && l.monthly_usd.is_none() {
            return None;
        }
        let now = self.handles.deps.clock.now();
        let local = now.with_timezone(&chrono::Local);
        let mut caps = Vec::new();
        if let Some(cap) = l.daily_usd {
            let (from, to) = ralph_store::ledger::day_window(&local);
            caps.push(LedgerCap {
                scope: "daily",
                from,
                to,
                cap_usd: cap,
            });
        }
        if let Some(cap) = l.monthly_usd {
            let (from, to) = ralph_store::ledger::month_window(&local);
            caps.push(LedgerCap {
                scope: "monthly",
                from,
                to,
                cap_usd: cap,
            });
        }
        let lease = chrono::TimeDelta::from_std(l.iteration_timeout * 2 + LEASE_MARGIN)
            .unwrap_or(chrono::TimeDelta::MAX);
        let req = ReservationRequest {
            project: self.acct.project.clone(),
            run_id: self.run.id.clone(),
            iteration: self.run.iteration + 1,
            backend: self.run.backend.clone(),
            now: now.to_rfc3339(),
            lease_until: now.checked_add_signed(lease).unwrap_or(now).to_rfc3339(),
            pid: std::process::id(),
            own_estimate_usd: self.acct.max_iteration_cost.max(l.iteration_estimate_usd),
            stop_before_exceeding: l.stop_before_exceeding,
            caps,
        };
        let answer = self
            .handles
            .store
            .read_ledger(move |ledger| ledger.reserve(&req, &crate::process::process_alive))
            .await;
        match answer {
            Ok(Some(Reservation::Held { .. })) => None,
            Ok(Some(Reservation::Refused(r))) => Some(refused(&r)),
            Ok(None) => Some(self.ledger_stop("no location for it is known")),
            Err(e) => Some(self.ledger_stop(&e)),
        }
    }

    /// Give back what this run still holds in the ledger (an iteration that did not finish).
    pub(super) async fn release_ledger_reservations(&mut self) {
        let l = &self.settings.limits;
        if l.daily_usd.is_none() && l.monthly_usd.is_none() {
            return;
        }
        let (project, run_id) = (self.acct.project.clone(), self.run.id.clone());
        // A failure leaves a reservation that expires with this process: nothing to stop for.
        let _ = self
            .handles
            .store
            .read_ledger(move |ledger| ledger.release_run(&project, &run_id))
            .await;
    }
}

fn refused(r: &Refusal) -> Stop {
    let (key, when) = match r.scope {
        "monthly" => ("budget.monthly_usd", "next month"),
        _ => ("budget.daily_usd", "next day"),
    };
    let reserved = if r.reserved_usd > 0.0 {
        format!(
            " and ${:.4} reserved by iterations running now",
            r.reserved_usd
        )
    } else {
        String::new()
    };
    let total = r.spent_usd + r.reserved_usd;
    let next = if total >= r.cap_usd {
        String::new()
    } else {
        format!(
            ", and the next iteration may cost up to ${:.4}",
            r.estimate_usd
        )
    };
    Stop::new(
        StopReason::Budget,
        format!(
            "{} budget: ${:.4} spent{reserved} on this machine (all projects){next} of ${:.4} \
             ({key}); `ralph run` resumes when the {when} begins",
            r.scope, r.spent_usd, r.cap_usd
        ),
    )
}
