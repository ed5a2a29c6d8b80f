//! Stop conditions evaluated before an iteration starts, in order: a cancellation (signal,
//! `ralph stop --now`), a STOP request, consecutive failures, the run's cost and token caps, the
//! machine's daily and monthly caps, the iteration limit, the runtime limit. Then, for loops that
//! share them, the backend's limit state and the plan budget. The decision itself ([`check`]) is
//! a pure function over plain values.

use super::decision::{control_stop, runtime_message};
use super::retry::stop_file_stop;
use super::{Engine, EngineError, Stop};
use crate::budget::{self, Unit};
use crate::events::StopReason;
use crate::settings::Limits;

/// Spent on this machine (every project, every run) in the current local day and month, as
/// read from the ledger; `Err` when a cap needs the ledger and it cannot be read.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct MachineSpend {
    pub day: Option<f64>,
    pub month: Option<f64>,
    /// Held by other loops of this process for iterations in progress.
    pub held: f64,
}

/// The run's state as far as its limits are concerned.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct LimitFacts {
    /// Committed iterations.
    pub iteration: u32,
    pub consecutive_failures: u32,
    pub cost_usd: f64,
    pub tokens: u64,
    /// The most one committed iteration cost and used: the estimate of the next one.
    pub max_iteration_cost: f64,
    pub max_iteration_tokens: u64,
    pub elapsed_s: f64,
}

/// The first limit that stops the run before its next iteration, if any.
pub(super) fn check(f: &LimitFacts, machine: &MachineSpend, l: &Limits) -> Option<Stop> {
    if f.consecutive_failures >= l.max_consecutive_failures {
        return Some(Stop::new(
            StopReason::GaveUp,
            format!(
                "gave up after {} consecutive failed iterations; see `ralph logs` for the errors, \
                 fix the cause, then `ralph run --fresh`",
                f.consecutive_failures
            ),
        ));
    }
    let before = l.stop_before_exceeding;
    let cost = budget::check(
        f.cost_usd,
        f.max_iteration_cost,
        l.max_cost_usd,
        before,
        Unit::Usd,
    );
    if let Some(hit) = cost {
        return Some(Stop::new(
            StopReason::Budget,
            hit.message("cost budget", "budget.max_cost_usd"),
        ));
    }
    let tokens = budget::check(
        f.tokens as f64,
        f.max_iteration_tokens as f64,
        l.max_tokens.map(|t| t as f64),
        before,
        Unit::Tokens,
    );
    if let Some(hit) = tokens {
        return Some(Stop::new(
            StopReason::Budget,
            hit.message("token budget", "budget.max_tokens"),
        ));
    }
    if let Some(stop) = machine_stop(f, machine, l) {
        return Some(stop);
    }
    if f.iteration >= l.max_iterations {
        return Some(Stop::new(
            StopReason::MaxIterations,
            format!(
                "iteration limit reached ({} of {}) without completion; raise --max-iterations \
                 or refine the prompt",
                f.iteration, l.max_iterations
            ),
        ));
    }
    if f.elapsed_s >= l.max_runtime.as_secs_f64() {
        return Some(Stop::new(
            StopReason::MaxRuntime,
            runtime_message(l.max_runtime),
        ));
    }
    None
}

fn machine_stop(f: &LimitFacts, m: &MachineSpend, l: &Limits) -> Option<Stop> {
    for (what, key, spent, cap) in [
        ("daily", "budget.daily_usd", m.day, l.daily_usd),
        ("monthly", "budget.monthly_usd", m.month, l.monthly_usd),
    ] {
        let (Some(spent), Some(cap)) = (spent, cap) else {
            continue;
        };
        let spent = spent + m.held;
        let next = if l.stop_before_exceeding {
            f.max_iteration_cost
        } else {
            0.0
        };
        if spent >= cap || (f.iteration > 0 && spent + next > cap) {
            return Some(Stop::new(
                StopReason::Budget,
                format!(
                    "{what} budget: ${spent:.4} spent on this machine (all projects){} of \
                     ${cap:.4} ({key}); `ralph run` resumes when the {} begins",
                    if spent >= cap {
                        String::new()
                    } else {
                        format!(", and the next iteration may cost up to ${next:.4}")
                    },
                    if what == "daily" {
                        "next day"
                    } else {
                        "next month"
                    }
                ),
            ));
        }
    }
    None
}

impl Engine {
    /// Everything that may stop the run or hold it back before its next iteration.
    pub(super) async fn before_iteration(&mut self) -> Result<Option<Stop>, EngineError> {
        if let Some(c) = self.cancel.current() {
            return Ok(Some(control_stop(c)));
        }
        if self.handles.stop.requested() {
            return Ok(Some(stop_file_stop()));
        }
        if let Some(stop) = self.acct.ledger_failure.clone() {
            return Ok(Some(stop));
        }
        let machine = match self.machine_spend().await {
            Ok(m) => m,
            Err(stop) => return Ok(Some(stop)),
        };
        let facts = LimitFacts {
            iteration: self.run.iteration,
            consecutive_failures: self.run.consecutive_failures,
            cost_usd: self.run.cost_usd,
            tokens: self.run.tokens.total(),
            max_iteration_cost: self.acct.max_iteration_cost,
            max_iteration_tokens: self.acct.max_iteration_tokens,
            elapsed_s: self.elapsed(),
        };
        if let Some(stop) = check(&facts, &machine, &self.settings.limits) {
            return Ok(Some(stop));
        }
        if let Some(stop) = self.wait_for_backend().await? {
            return Ok(Some(stop));
        }
        // Last of the machine's checks, right before the iteration: the one that holds across
        // processes.
        if let Some(stop) = self.reserve_in_ledger().await {
            return Ok(Some(stop));
        }
        if let Some(plan) = &self.handles.budget {
            match plan.reserve(self.acct.max_iteration_cost, self.acct.max_iteration_tokens) {
                Ok(hold) => self.acct.plan_hold = Some(hold),
                Err(hit) => {
                    let (what, key) = match hit.unit {
                        Unit::Usd => ("plan cost budget", "the plan's budget.max_cost_usd"),
                        Unit::Tokens => ("plan token budget", "the plan's budget.max_tokens"),
                    };
                    return Ok(Some(Stop::new(StopReason::Budget, hit.message(what, key))));
                }
            }
        }
        Ok(None)
    }

    /// The machine's spend for the daily and monthly caps. Without a cap the ledger is not
    /// read. With one, a ledger that cannot be read stops the run: a cap that silently stops
    /// being enforced is worse than a stop (fail closed).
    pub(super) async fn machine_spend(&mut self) -> Result<MachineSpend, Stop> {
        let Some(spend) = self.ledger_spend_for_caps().await else {
            return Ok(MachineSpend::default());
        };
        let (day, month) = spend.map_err(|e| self.ledger_stop(&e))?;
        let l = &self.settings.limits;
        Ok(MachineSpend {
            day: l.daily_usd.and(Some(day)),
            month: l.monthly_usd.and(Some(month)),
            held: self.handles.budget.as_ref().map_or(0.0, |b| b.held_usd()),
        })
    }

    /// Today's and this month's spend in the ledger (local time), when a daily or monthly cap
    /// needs it (`None`: no such cap, the ledger is not read).
    pub(super) async fn ledger_spend_for_caps(&mut self) -> Option<Result<(f64, f64), String>> {
        let l = &self.settings.limits;
        if l.daily_usd.is_none() && l.monthly_usd.is_none() {
            return None;
        }
        let now = self.handles.deps.clock.now().with_timezone(&chrono::Local);
        let (d0, d1) = ralph_store::ledger::day_window(&now);
        let (m0, m1) = ralph_store::ledger::month_window(&now);
        let read = self
            .handles
            .store
            .read_ledger(move |ledger| {
                Ok((
                    ledger.spent_between(&d0, &d1)?,
                    ledger.spent_between(&m0, &m1)?,
                ))
            })
            .await;
        Some(match read {
            Ok(Some(spend)) => Ok(spend),
            Ok(None) => Err("no location for it is known".to_string()),
            Err(e) => Err(e),
        })
    }

    /// The stop when a daily or monthly cap cannot be enforced.
    pub(super) fn ledger_stop(&self, error: &str) -> Stop {
        let at = self
            .handles
            .ledger
            .as_deref()
            .map_or_else(|| "(no location)".to_string(), |p| p.display().to_string());
        Stop::new(
            StopReason::NeedsHuman,
            format!(
                "the machine-wide cost ledger {at} cannot be used ({error}), so budget.daily_usd \
                 / budget.monthly_usd cannot be enforced; repair it or move it aside (ralph \
                 starts a new one), then `ralph run` resumes"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits() -> Limits {
        Limits {
            max_iterations: 10,
            max_runtime: Duration::from_secs(60),
            max_cost_usd: Some(0.03),
            max_tokens: Some(1000),
            max_consecutive_failures: 3,
            ..Limits::default()
        }
    }

    fn reason(f: &LimitFacts, m: &MachineSpend, l: &Limits) -> Option<StopReason> {
        check(f, m, l).map(|s| s.reason)
    }

    #[test]
    fn limits_in_order() {
        let l = limits();
        let m = MachineSpend::default();
        let fresh = LimitFacts::default();
        assert_eq!(reason(&fresh, &m, &l), None);
        let failing = LimitFacts {
            consecutive_failures: 3,
            cost_usd: 1.0,
            ..fresh.clone()
        };
        assert_eq!(
            reason(&failing, &m, &l),
            Some(StopReason::GaveUp),
            "failures come first"
        );
        let spent = LimitFacts {
            iteration: 2,
            cost_usd: 0.0246,
            max_iteration_cost: 0.0123,
            ..fresh.clone()
        };
        let stop = check(&spent, &m, &l).unwrap();
        assert_eq!(stop.reason, StopReason::Budget);
        assert!(
            stop.message.contains("may cost up to $0.0123"),
            "{}",
            stop.message
        );
        let tokens = LimitFacts {
            iteration: 1,
            tokens: 1000,
            ..fresh.clone()
        };
        assert!(check(&tokens, &m, &l)
            .unwrap()
            .message
            .starts_with("token budget reached"));
        let done = LimitFacts {
            iteration: 10,
            ..fresh.clone()
        };
        assert_eq!(reason(&done, &m, &l), Some(StopReason::MaxIterations));
        let late = LimitFacts {
            elapsed_s: 60.0,
            ..fresh
        };
        assert_eq!(reason(&late, &m, &l), Some(StopReason::MaxRuntime));
    }

    #[test]
    fn machine_caps_count_what_other_loops_hold() {
        let l = Limits {
            daily_usd: Some(1.0),
            max_cost_usd: None,
            ..limits()
        };
        let f = LimitFacts {
            iteration: 1,
            max_iteration_cost: 0.1,
            ..LimitFacts::default()
        };
        let room = MachineSpend {
            day: Some(0.5),
            month: None,
            held: 0.0,
        };
        assert_eq!(reason(&f, &room, &l), None);
        let crowded = MachineSpend { held: 0.45, ..room };
        let stop = check(&f, &crowded, &l).unwrap();
        assert_eq!(stop.reason, StopReason::Budget);
        assert!(
            stop.message.starts_with("daily budget: $0.9500 spent"),
            "{}",
            stop.message
        );
    }
}
