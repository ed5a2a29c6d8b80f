//! Budgets: the pure decision "may the next iteration start?" over plain numbers, and the
//! plan-wide budget that many loops share.
//!
//! A run checks its own caps ([`check`]) before each iteration; it is the only writer of its
//! own totals, so check-then-act is exact there. Loops that share a cap (every story of a plan)
//! cannot check and then act: eight loops that each see room for one more iteration would all
//! start. They take a reservation instead ([`PlanBudget::reserve`]): the check and the hold are
//! one step under one lock, the hold counts as spent for every other loop until the iteration
//! is accounted ([`Hold::settle`]) or abandoned (dropped).

use std::sync::{Arc, Mutex};

use ralph_types::Tokens;

/// Which cap, for the stop message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Usd,
    Tokens,
}

/// A cap that stops the next iteration.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub unit: Unit,
    /// Spent so far (plus what other loops hold, for a shared budget).
    pub spent: f64,
    pub cap: f64,
    /// `Some(estimate)`: the cap is not reached yet, but the next iteration may cost this much
    /// and would pass it (`budget.stop_before_exceeding`).
    pub would_pass: Option<f64>,
}

impl Hit {
    /// "cost budget reached: $0.0300 of $0.0300 (budget.max_cost_usd)" and its variants. `what`
    /// names the scope ("cost budget", "plan cost budget"), `key` the setting.
    pub fn message(&self, what: &str, key: &str) -> String {
        let amount = |v: f64| match self.unit {
            Unit::Usd => format!("${v:.4}"),
            Unit::Tokens => format!("{}", v as u64),
        };
        let (spent, cap) = (amount(self.spent), amount(self.cap));
        match (self.would_pass, self.unit) {
            (None, Unit::Usd) => format!("{what} reached: {spent} of {cap} ({key})"),
            (None, Unit::Tokens) => format!("{what} reached: {spent} of {cap} tokens ({key})"),
            (Some(next), Unit::Usd) => format!(
                "{what}: {spent} spent, and the next iteration may cost up to {} (the most \
                 expensive so far), which would pass {cap} ({key}); stopped before starting it",
                amount(next)
            ),
            (Some(next), Unit::Tokens) => format!(
                "{what}: {spent} used, and the next iteration may use up to {} (the most so \
                 far), which would pass {cap} ({key}); stopped before starting it",
                amount(next)
            ),
        }
    }
}

/// May another iteration start against `cap`? `spent` includes what others hold; `estimate` is
/// the most one iteration has cost so far (0 before the first: nothing to predict from).
pub fn check(
    spent: f64,
    estimate: f64,
    cap: Option<f64>,
    stop_before: bool,
    unit: Unit,
) -> Option<Hit> {
    let cap = cap?;
    if spent >= cap {
        return Some(Hit {
            unit,
            spent,
            cap,
            would_pass: None,
        });
    }
    if stop_before && estimate > 0.0 && spent + estimate > cap {
        return Some(Hit {
            unit,
            spent,
            cap,
            would_pass: Some(estimate),
        });
    }
    None
}

/// Caps shared by every loop of a plan run (`budget.*` of ralph.toml, `stories run --max-cost`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanCaps {
    pub max_cost_usd: Option<f64>,
    pub max_tokens: Option<u64>,
    pub stop_before_exceeding: bool,
}

#[derive(Debug, Default)]
struct State {
    caps: PlanCaps,
    spent_usd: f64,
    spent_tokens: u64,
    held_usd: f64,
    held_tokens: u64,
    /// Holds taken before anything was known about an iteration's cost (the first wave of
    /// loops). They count at the estimate as soon as there is one: a loop starting its second
    /// iteration must not ignore seven first iterations still running.
    held_unknown: u32,
    /// A reservation was refused: some loop stopped at this budget, so the plan run is
    /// stopping (a loop's `Budget` stop after this is the plan's, not its own story's).
    refused: bool,
    /// The most one iteration of any loop cost: every loop's estimate of its next one.
    max_usd: f64,
    max_tokens: u64,
}

impl State {
    fn held(&self) -> (f64, u64) {
        (
            self.held_usd + self.held_unknown as f64 * self.max_usd,
            self.held_tokens + self.held_unknown as u64 * self.max_tokens,
        )
    }
}

/// The budget of a whole plan run, shared by its loops. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct PlanBudget {
    inner: Arc<Mutex<State>>,
}

/// One loop's reservation for its next iteration.
#[derive(Debug)]
#[must_use = "a hold is released when dropped; settle it with what the iteration cost"]
pub struct Hold {
    budget: PlanBudget,
    usd: f64,
    tokens: u64,
    /// Taken with no estimate (see `State::held_unknown`).
    unknown: bool,
    settled: bool,
}

impl PlanBudget {
    /// A budget with `caps`, of which `spent_usd`/`spent_tokens` were already used (a resumed
    /// plan run).
    pub fn new(caps: PlanCaps, spent_usd: f64, spent_tokens: u64) -> PlanBudget {
        PlanBudget {
            inner: Arc::new(Mutex::new(State {
                caps,
                spent_usd,
                spent_tokens,
                ..State::default()
            })),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Check and reserve in one step: `Err` if the next iteration may not start. The estimate
    /// is the most expensive iteration of any loop so far (also known from a resumed loop's own
    /// history: `own_max_usd`, `own_max_tokens`).
    pub fn reserve(&self, own_max_usd: f64, own_max_tokens: u64) -> Result<Hold, Hit> {
        let mut st = self.state();
        let est_usd = st.max_usd.max(own_max_usd);
        let est_tokens = st.max_tokens.max(own_max_tokens);
        let stop_before = st.caps.stop_before_exceeding;
        let (held_usd, held_tokens) = st.held();
        if let Some(hit) = check(
            st.spent_usd + held_usd,
            est_usd,
            st.caps.max_cost_usd,
            stop_before,
            Unit::Usd,
        ) {
            st.refused = true;
            return Err(hit);
        }
        if let Some(hit) = check(
            (st.spent_tokens + held_tokens) as f64,
            est_tokens as f64,
            st.caps.max_tokens.map(|t| t as f64),
            stop_before,
            Unit::Tokens,
        ) {
            st.refused = true;
            return Err(hit);
        }
        let unknown = est_usd == 0.0 && est_tokens == 0;
        if unknown {
            st.held_unknown += 1;
        } else {
            st.held_usd += est_usd;
            st.held_tokens += est_tokens;
        }
        Ok(Hold {
            budget: self.clone(),
            usd: est_usd,
            tokens: est_tokens,
            unknown,
            settled: false,
        })
    }

    /// Whether a loop was refused an iteration by this budget.
    pub fn refused(&self) -> bool {
        self.state().refused
    }

    /// Spent by every loop so far (settled iterations and side calls).
    pub fn spent(&self) -> (f64, u64) {
        let st = self.state();
        (st.spent_usd, st.spent_tokens)
    }

    /// What loops hold for iterations in progress.
    pub fn held_usd(&self) -> f64 {
        self.state().held().0
    }

    pub fn caps(&self) -> PlanCaps {
        self.state().caps.clone()
    }

    /// Spending outside an iteration hold (a side call such as a notes summary).
    pub fn add(&self, usd: Option<f64>, tokens: Option<Tokens>) {
        let mut st = self.state();
        st.spent_usd += usd.unwrap_or(0.0);
        st.spent_tokens += tokens.map_or(0, |t| t.total());
    }

    fn release(&self, hold: &Hold, spent: Option<(f64, u64)>) {
        let mut st = self.state();
        if hold.unknown {
            st.held_unknown = st.held_unknown.saturating_sub(1);
        } else {
            st.held_usd = (st.held_usd - hold.usd).max(0.0);
            st.held_tokens = st.held_tokens.saturating_sub(hold.tokens);
        }
        if let Some((usd, tokens)) = spent {
            st.spent_usd += usd;
            st.spent_tokens += tokens;
            st.max_usd = st.max_usd.max(usd);
            st.max_tokens = st.max_tokens.max(tokens);
        }
    }
}

impl Hold {
    /// The iteration is accounted: what it cost replaces the reservation.
    pub fn settle(mut self, usd: Option<f64>, tokens: Option<Tokens>) {
        self.settled = true;
        let spent = (usd.unwrap_or(0.0), tokens.map_or(0, |t| t.total()));
        self.budget.release(&self, Some(spent));
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        // An iteration that was not accounted (interrupted, not committed) gives its
        // reservation back; resume runs it again and accounts it then.
        if !self.settled {
            self.budget.release(self, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_reaches_and_predicts() {
        assert_eq!(check(1.0, 5.0, None, true, Unit::Usd), None);
        let reached = check(0.03, 0.01, Some(0.03), true, Unit::Usd);
        assert_eq!(reached.as_ref().map(|h| h.would_pass), Some(None));
        let next = check(0.0246, 0.0123, Some(0.03), true, Unit::Usd);
        assert_eq!(next.as_ref().and_then(|h| h.would_pass), Some(0.0123));
        // Not predicted when told not to, or when there is nothing to predict from.
        assert_eq!(check(0.0246, 0.0123, Some(0.03), false, Unit::Usd), None);
        assert_eq!(check(0.0246, 0.0, Some(0.03), true, Unit::Usd), None);
        let hit = next.unwrap();
        assert_eq!(
            hit.message("cost budget", "budget.max_cost_usd"),
            "cost budget: $0.0246 spent, and the next iteration may cost up to $0.0123 (the most \
             expensive so far), which would pass $0.0300 (budget.max_cost_usd); stopped before \
             starting it"
        );
        let tokens = check(120.0, 10.0, Some(100.0), true, Unit::Tokens);
        assert_eq!(
            tokens.map(|h| h.message("token budget", "budget.max_tokens")),
            Some("token budget reached: 120 of 100 tokens (budget.max_tokens)".to_string())
        );
    }

    #[test]
    fn holds_count_for_everyone_until_settled_or_dropped() {
        let caps = PlanCaps {
            max_cost_usd: Some(0.26),
            max_tokens: None,
            stop_before_exceeding: true,
        };
        let b = PlanBudget::new(caps, 0.0, 0);
        // No estimate yet: everyone may start.
        let first: Vec<Hold> = (0..3).map(|_| b.reserve(0.0, 0).unwrap()).collect();
        for h in first {
            h.settle(Some(0.05), None);
        }
        assert_eq!(b.spent().0, 0.15000000000000002);
        // Now each start holds $0.05: only two more fit under $0.26.
        let a = b.reserve(0.0, 0);
        let c = b.reserve(0.0, 0);
        let d = b.reserve(0.0, 0);
        assert!(a.is_ok() && c.is_ok());
        let hit = d.err().unwrap();
        assert_eq!(hit.would_pass, Some(0.05));
        assert!((b.held_usd() - 0.1).abs() < 1e-9);
        // An abandoned iteration gives its hold back.
        drop(a);
        assert!((b.held_usd() - 0.05).abs() < 1e-9);
        assert!(b.reserve(0.0, 0).is_ok());
    }

    #[test]
    fn first_wave_holds_count_once_an_estimate_exists() {
        let caps = PlanCaps {
            max_cost_usd: Some(0.105),
            max_tokens: None,
            stop_before_exceeding: true,
        };
        let b = PlanBudget::new(caps, 0.0, 0);
        // Eight loops start with nothing known.
        let mut wave: Vec<Hold> = (0..8).map(|_| b.reserve(0.0, 0).unwrap()).collect();
        assert_eq!(b.held_usd(), 0.0);
        // The first finishes at $0.01: the seven still running now count $0.07.
        wave.pop().unwrap().settle(Some(0.01), None);
        assert!((b.held_usd() - 0.07).abs() < 1e-9, "{}", b.held_usd());
        // $0.01 spent + $0.07 held + $0.01 next: two more may start, not nine.
        let more: Vec<_> = (0..3).map(|_| b.reserve(0.0, 0)).collect();
        assert_eq!(more.iter().filter(|r| r.is_ok()).count(), 2);
    }
}
