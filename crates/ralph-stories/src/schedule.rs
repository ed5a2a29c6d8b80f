//! Which ready stories start next (rule 3), and what a story's end does to the others.
//!
//! Pure bookkeeping: no clock, no process, no I/O. The caller (the plan runner) asks
//! [`Scheduler::next`] when slots are free, calls [`Scheduler::start`] for what it starts and
//! [`Scheduler::finish`] when a story reaches a terminal state, and persists every transition
//! itself. Everything is deterministic: ties are broken by plan order.
//!
//! The scheduler's states are coarser than the store's: `Running` is everything from `running`
//! to `merging` (the story holds a slot or waits in the merge queue: its dependents cannot
//! start), `Done` is `merged`, `Failed` is every terminal state that is not merged (`failed`,
//! `conflicted`, `needs_human`), `Blocked` a story one of whose ancestors is `Failed`.
//!
//! Decisions:
//!
//! - **Priority**: the longest remaining critical path (weighted by the expected durations,
//!   1.0 each by default) first; among equals, the story more stories depend on (directly or
//!   not) first, since finishing it opens more of the plan; then plan order.
//! - **Overlap** (`overlap.rs`): a ready story whose `affected_paths` may overlap a running
//!   story's, or a story chosen earlier in the same [`Scheduler::next`] call, is passed over
//!   when a ready story without overlap exists. When every ready story overlaps, the best one
//!   starts anyway: `affected_paths` is a prediction and the merge queue repairs conflicts, so
//!   an idle slot would cost time for a conflict that may not happen. The price, measured by
//!   `sim.rs` on the 16-story sample plan: 4 % of makespan on average on 4 slots (0.6 %
//!   without `affected_paths`), mostly from a story with a broad pattern (`*.md` may overlap
//!   every directory) waiting while anything else can start, even on the critical path.
//! - **Holding a slot** ([`Scheduler::next_holding`]): a free slot is left empty for a story
//!   that outranks the one it would go to and waits only on merges the caller knows will be
//!   over in moments. Measured on the 16-story sample plan through the real binary: a
//!   critical-path story ready 90 ms after a lower one took the last slot otherwise started
//!   200 ms late, and the makespan ratio went from 1.17 to 1.13.
//! - **`--only`** ([`Scheduler::restrict`]): the named stories and every ancestor of theirs
//!   that is not merged yet run; nothing else starts (a story needs its dependencies merged,
//!   so refusing them would leave the named ones unable to ever start). A failed ancestor is
//!   not run again (that is `ralph stories retry`): the named story is then blocked.
//! - **Resume** ([`Scheduler::resume`]): `Blocked` is derived, never trusted from the input:
//!   a story is blocked iff one of its ancestors is `Failed`, so a story whose failed ancestor
//!   was reset to pending (a retry) is pending again. A `Running` or `Done` story whose
//!   dependencies are not all `Done` contradicts rule 3 and is refused.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::overlap::PathSet;
use crate::{Dag, Plan};

/// A story's scheduling state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started; ready when every dependency is `Done`.
    Pending,
    /// Holds a slot or waits for its merge.
    Running,
    /// Merged.
    Done,
    /// Terminal and not merged: failed, conflicted, needs a human.
    Failed,
    /// An ancestor is `Failed`: it cannot run.
    Blocked,
}

impl State {
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
            State::Blocked => "blocked",
        }
    }
}

/// How a running story ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Merged,
    /// Failed, conflicted or needs a human: its descendants are blocked.
    Failed,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error("the plan has {plan} stories but its graph {dag}")]
    PlanMismatch { plan: usize, dag: usize },
    #[error("{got} expected durations or states for {expected} stories")]
    WrongLength { expected: usize, got: usize },
    #[error("story {story}'s expected duration {value} is not a finite number ≥ 0")]
    BadDuration { story: String, value: f64 },
    #[error("there is no story number {index} (the plan has {len})")]
    NoSuchStory { index: usize, len: usize },
    #[error("story {story} cannot start: {why}")]
    NotReady { story: String, why: String },
    #[error("story {story} is not running (it is {state})", state = state.as_str())]
    NotRunning { story: String, state: State },
    #[error("story {story} is {state} but its dependency {dependency} is {dep_state}", state = state.as_str(), dep_state = dep_state.as_str())]
    Inconsistent {
        story: String,
        state: State,
        dependency: String,
        dep_state: State,
    },
}

/// The scheduling state of one plan run.
#[derive(Debug)]
pub struct Scheduler {
    dag: Dag,
    paths: Vec<PathSet>,
    critical: Vec<f64>,
    /// Every story, best first.
    by_priority: Vec<usize>,
    state: Vec<State>,
    /// In scope (`--only`); every story without a restriction.
    wanted: Vec<bool>,
    /// Dependencies not `Done`.
    unmerged: Vec<usize>,
    /// In the order they started.
    running: Vec<usize>,
    /// Overlap answers by pair `(low, high)`, computed when first asked: only pairs of ready
    /// and running stories are, far fewer than n² on a large plan.
    overlaps: RefCell<HashMap<(usize, usize), bool>>,
}

impl Scheduler {
    /// A fresh run: every story pending. `durations`: expected durations in plan order (any
    /// unit), 1.0 each when `None`.
    pub fn new(plan: &Plan, dag: &Dag, durations: Option<&[f64]>) -> Result<Self, ScheduleError> {
        Self::resume(plan, dag, durations, &vec![State::Pending; dag.len()])
    }

    /// A resumed run: `states` in plan order, as the store has them (see the module's rules).
    /// Every story is in scope: call [`Scheduler::restrict`] again for `--only`. A retry is a
    /// resume with the retried story stored `Pending`: its descendants are pending again.
    pub fn resume(
        plan: &Plan,
        dag: &Dag,
        durations: Option<&[f64]>,
        states: &[State],
    ) -> Result<Self, ScheduleError> {
        let n = dag.len();
        if plan.stories.len() != n {
            return Err(ScheduleError::PlanMismatch {
                plan: plan.stories.len(),
                dag: n,
            });
        }
        if states.len() != n {
            return Err(ScheduleError::WrongLength {
                expected: n,
                got: states.len(),
            });
        }
        let critical = dag.critical_paths(weights(dag, durations)?);
        let state = derive_states(dag, states)?;
        let descendants: Vec<usize> = (0..n).map(|i| dag.descendants(i).len()).collect();
        let mut by_priority: Vec<usize> = (0..n).collect();
        by_priority.sort_by(|&a, &b| {
            critical[b]
                .total_cmp(&critical[a])
                .then(descendants[b].cmp(&descendants[a]))
                .then(a.cmp(&b))
        });
        let unmerged = (0..n)
            .map(|i| {
                dag.deps(i)
                    .iter()
                    .filter(|&&d| state[d] != State::Done)
                    .count()
            })
            .collect();
        let running = (0..n).filter(|&i| state[i] == State::Running).collect();
        Ok(Scheduler {
            dag: dag.clone(),
            paths: plan
                .stories
                .iter()
                .map(|s| PathSet::parse(&s.affected_paths))
                .collect(),
            critical,
            by_priority,
            state,
            wanted: vec![true; n],
            unmerged,
            running,
            overlaps: RefCell::new(HashMap::new()),
        })
    }

    pub fn len(&self) -> usize {
        self.state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    pub fn state(&self, i: usize) -> State {
        self.state[i]
    }

    pub fn states(&self) -> &[State] {
        &self.state
    }

    /// `i`'s remaining critical path: its expected duration plus the longest chain after it.
    pub fn priority(&self, i: usize) -> f64 {
        self.critical[i]
    }

    /// Whether `i` is in scope (see [`Scheduler::restrict`]).
    pub fn in_scope(&self, i: usize) -> bool {
        self.wanted[i]
    }

    /// The running stories, in the order they started.
    pub fn running(&self) -> &[usize] {
        &self.running
    }

    /// The stories that could start now (in scope, pending, every dependency merged), in plan
    /// order.
    pub fn ready(&self) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.is_ready(i)).collect()
    }

    fn is_ready(&self, i: usize) -> bool {
        self.wanted[i] && self.state[i] == State::Pending && self.unmerged[i] == 0
    }

    /// Which ready stories to start now with `free_slots` free, best first: at most
    /// `free_slots`, and fewer only when fewer are ready. Does not start them.
    pub fn next(&self, free_slots: usize) -> Vec<usize> {
        let mut candidates: Vec<usize> = self
            .by_priority
            .iter()
            .copied()
            .filter(|&i| self.is_ready(i))
            .collect();
        let mut busy = self.running.clone();
        let mut chosen = Vec::new();
        while chosen.len() < free_slots && !candidates.is_empty() {
            let pos = candidates
                .iter()
                .position(|&c| !busy.iter().any(|&b| self.overlap(c, b)))
                .unwrap_or(0);
            let c = candidates.remove(pos);
            chosen.push(c);
            busy.push(c);
        }
        chosen
    }

    /// As [`Scheduler::next`], but a slot is held for a story that is about to be ready:
    /// every dependency not merged yet waits in a merge that will be over in moments
    /// (`merging_quickly`: it left its slot and its merge runs no check), and it outranks the
    /// story the slot would go to. Without the hold, a story on the critical path that becomes
    /// ready a few tens of milliseconds after a lower one took the slot waits a whole story's
    /// time. Returns the stories to start and how many slots are held.
    pub fn next_holding(
        &self,
        free_slots: usize,
        merging_quickly: impl Fn(usize) -> bool,
    ) -> (Vec<usize>, usize) {
        let mut chosen = self.next(free_slots);
        let awaited = self.by_priority.iter().copied().filter(|&i| {
            self.wanted[i]
                && self.state[i] == State::Pending
                && self.unmerged[i] > 0
                && self.dag.deps(i).iter().all(|&d| {
                    self.state[d] == State::Done
                        || (self.state[d] == State::Running && merging_quickly(d))
                })
        });
        let mut held = 0;
        for a in awaited.take(free_slots) {
            // A free slot nothing was chosen for is held at no cost.
            if chosen.len() + held < free_slots {
                held += 1;
                continue;
            }
            let worst = chosen
                .iter()
                .enumerate()
                .min_by(|x, y| self.critical[*x.1].total_cmp(&self.critical[*y.1]))
                .map(|(pos, &c)| (pos, c));
            match worst {
                Some((pos, c)) if self.critical[c] < self.critical[a] => {
                    chosen.remove(pos);
                    held += 1;
                }
                _ => break,
            }
        }
        (chosen, held)
    }

    fn overlap(&self, a: usize, b: usize) -> bool {
        *self
            .overlaps
            .borrow_mut()
            .entry((a.min(b), a.max(b)))
            .or_insert_with(|| self.paths[a].may_overlap(&self.paths[b]))
    }

    /// `i` starts (it must be ready).
    pub fn start(&mut self, i: usize) -> Result<(), ScheduleError> {
        self.check(i)?;
        if !self.is_ready(i) {
            let why = if self.state[i] != State::Pending {
                format!("it is {}", self.state[i].as_str())
            } else if !self.wanted[i] {
                "it is outside the stories asked for".to_string()
            } else {
                let waiting: Vec<&str> = self
                    .dag
                    .deps(i)
                    .iter()
                    .filter(|&&d| self.state[d] != State::Done)
                    .map(|&d| self.dag.id(d))
                    .collect();
                format!("waits for {}", waiting.join(", "))
            };
            return Err(ScheduleError::NotReady {
                story: self.dag.id(i).to_string(),
                why,
            });
        }
        self.state[i] = State::Running;
        self.running.push(i);
        Ok(())
    }

    /// Running story `i` ended. Returns the stories this blocked (pending descendants of a
    /// failed story), in plan order; empty on a merge.
    pub fn finish(&mut self, i: usize, outcome: Outcome) -> Result<Vec<usize>, ScheduleError> {
        self.check(i)?;
        if self.state[i] != State::Running {
            return Err(ScheduleError::NotRunning {
                story: self.dag.id(i).to_string(),
                state: self.state[i],
            });
        }
        self.running.retain(|&r| r != i);
        match outcome {
            Outcome::Merged => {
                self.state[i] = State::Done;
                for &d in self.dag.dependents(i) {
                    self.unmerged[d] -= 1;
                }
                Ok(Vec::new())
            }
            Outcome::Failed => {
                self.state[i] = State::Failed;
                let mut blocked = Vec::new();
                for d in self.dag.descendants(i) {
                    // Descendants cannot be running or done (their ancestor was not merged);
                    // already failed or blocked ones stay as they are.
                    if self.state[d] == State::Pending {
                        self.state[d] = State::Blocked;
                        blocked.push(d);
                    }
                }
                Ok(blocked)
            }
        }
    }

    /// `--only`: from now on only `only` and their ancestors not merged yet start. Replaces
    /// an earlier restriction; running stories outside it run to their end.
    pub fn restrict(&mut self, only: &[usize]) -> Result<(), ScheduleError> {
        for &i in only {
            self.check(i)?;
        }
        self.wanted = vec![false; self.len()];
        for &i in only {
            self.wanted[i] = true;
            for a in self.dag.ancestors(i) {
                if self.state[a] != State::Done {
                    self.wanted[a] = true;
                }
            }
        }
        Ok(())
    }

    /// Nothing runs and nothing in scope can start any more.
    pub fn is_finished(&self) -> bool {
        // A pending story in scope has its unmerged ancestors in scope too, none failed (it
        // would be blocked): one of them, or itself, is ready. So this is also "no progress
        // possible".
        self.running.is_empty()
            && !(0..self.len()).any(|i| self.wanted[i] && self.state[i] == State::Pending)
    }

    fn check(&self, i: usize) -> Result<(), ScheduleError> {
        if i < self.len() {
            Ok(())
        } else {
            Err(ScheduleError::NoSuchStory {
                index: i,
                len: self.len(),
            })
        }
    }
}

fn weights(dag: &Dag, durations: Option<&[f64]>) -> Result<impl Fn(usize) -> f64, ScheduleError> {
    let n = dag.len();
    let w = match durations {
        None => vec![1.0; n],
        Some(d) if d.len() != n => {
            return Err(ScheduleError::WrongLength {
                expected: n,
                got: d.len(),
            })
        }
        Some(d) => {
            if let Some(i) = (0..n).find(|&i| !(d[i].is_finite() && d[i] >= 0.0)) {
                return Err(ScheduleError::BadDuration {
                    story: dag.id(i).to_string(),
                    value: d[i],
                });
            }
            d.to_vec()
        }
    };
    Ok(move |i: usize| w[i])
}

/// The input's states checked against rule 3, `Blocked` recomputed from `Failed`.
fn derive_states(dag: &Dag, states: &[State]) -> Result<Vec<State>, ScheduleError> {
    let mut out = states.to_vec();
    for &i in dag.order() {
        // Dependencies come first in `order`: their states are final here.
        let started = matches!(states[i], State::Running | State::Done);
        if let Some(&d) = dag
            .deps(i)
            .iter()
            .find(|&&d| started && out[d] != State::Done)
        {
            return Err(ScheduleError::Inconsistent {
                story: dag.id(i).to_string(),
                state: states[i],
                dependency: dag.id(d).to_string(),
                dep_state: out[d],
            });
        }
        if matches!(states[i], State::Pending | State::Blocked) {
            let blocked = dag
                .deps(i)
                .iter()
                .any(|&d| matches!(out[d], State::Failed | State::Blocked));
            out[i] = if blocked {
                State::Blocked
            } else {
                State::Pending
            };
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
