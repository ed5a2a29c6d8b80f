//! The stories mode (STORIES.md): a plan of stories run as a DAG of loops in worktrees, each
//! landing on the integration branch only through the merge queue.
//!
//! | what | file |
//! |---|---|
//! | the validated plan (parsed by ralph-cli) | `plan.rs` |
//! | the dependency graph: order, cycles, critical paths | `dag.rs` |
//! | whether two stories' `affected_paths` may touch the same files | `overlap.rs` |
//! | which ready stories start next (rule 3), what a failure blocks, `--only`, resume | `schedule.rs` |
//! | the scheduler against a simulated clock: makespan against the lower bound | `sim.rs` |
//! | made-up plans from a seed, for tests and benchmarks | `sample.rs` |
//! | branch, worktree, candidate ref and artifact names | `names.rs` |
//! | starting or resuming a plan run | `open.rs` |
//! | the plan run's loop: workers' endings, the queue, stop conditions | `coordinator.rs` |
//! | one story's attempt: the loop engine in its worktree (the worker contract) | `worker.rs` |
//! | the story prompt | `prompt.rs` |
//! | architecture templates: layers, their order, default edges between their stories | `template.rs` |
//! | the merge queue's step: candidate, checks, compare-and-swap | `queue.rs` |
//! | the one repair of a conflicted or red candidate by a resolver agent | `repair.rs` |
//! | checks outside a loop (pre-merge gates, criteria) and their cache by tree | `checks.rs` |
//! | state changes with their events | `transitions.rs` |
//! | plan events and the sink shared with the loops | `events.rs` |
//!
//! The plan model, the DAG, overlap, the scheduler and the simulator are pure (no git, no
//! processes, no clock); the rest drives ralph-core's engine, ralph-git and ralph-store.

pub mod checks;
mod claim;
pub mod coordinator;
pub mod dag;
pub mod events;
pub mod names;
mod open;
pub mod overlap;
pub mod plan;
mod prebuild;
pub mod prompt;
pub mod queue;
mod repair;
pub mod sample;
pub mod schedule;
pub mod sim;
pub mod template;
pub mod transitions;
pub mod worker;

pub use coordinator::{run_plan, PlanError, PlanInput, PlanOutcome, PlanRunOptions};
pub use dag::{Dag, DagError};
pub use events::{LoopSink, PlanEvent, PlanSink, SharedSink};
pub use overlap::{may_overlap, PathSet};
pub use plan::{Check, Criterion, Layer, Plan, Story};
pub use schedule::{Outcome, ScheduleError, Scheduler, State};
pub use sim::{simulate, simulate_with, SimResult};
pub use template::{Template, TemplateLayer};
pub use worker::{LoopMaker, WorkerInput, WorkerOutput};
