//! The stories mode (STORIES.md): a plan of stories run as a DAG of loops in worktrees, each
//! landing on the integration branch only through the merge queue.
//!
//! | what | file |
//! |---|---|
//! | the validated plan (parsed by ralph-cli) | `plan.rs` |
//! | the dependency graph: order, cycles, critical paths | `dag.rs` |
//! | branch, worktree, candidate ref and artifact names | `names.rs` |
//! | starting or resuming a plan run, `--only`'s scope | `open.rs` |
//! | the plan run's loop: scheduling, workers' endings, the queue, stop conditions | `coordinator.rs` |
//! | one story's attempt: the loop engine in its worktree (the worker contract) | `worker.rs` |
//! | the story prompt | `prompt.rs` |
//! | the merge queue's step: candidate, checks, compare-and-swap | `queue.rs` |
//! | checks outside a loop (pre-merge gates, criteria) and their cache by tree | `checks.rs` |
//! | state changes with their events | `transitions.rs` |
//! | plan events and the sink shared with the loops | `events.rs` |

pub mod checks;
pub mod coordinator;
pub mod dag;
pub mod events;
pub mod names;
mod open;
pub mod plan;
pub mod prompt;
pub mod queue;
pub mod transitions;
pub mod worker;

pub use coordinator::{run_plan, PlanInput, PlanOutcome, PlanRunOptions};
pub use dag::{Dag, DagError};
pub use events::{LoopSink, PlanEvent, PlanSink, SharedSink};
pub use plan::{Check, Criterion, Layer, Plan, Story};
pub use worker::{LoopMaker, WorkerInput, WorkerOutput};

/// Which of the `ready` stories start now, at most `free`: longest remaining critical path
/// first (rule 3), plan order among equals.
pub(crate) fn schedule_order(
    _plan: &Plan,
    critical: &[f64],
    ready: &[usize],
    _running: &[usize],
    free: usize,
) -> Vec<usize> {
    let mut r = ready.to_vec();
    r.sort_by(|&a, &b| critical[b].total_cmp(&critical[a]).then(a.cmp(&b)));
    r.truncate(free);
    r
}
