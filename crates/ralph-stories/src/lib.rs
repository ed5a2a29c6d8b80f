//! The stories mode (STORIES.md): a plan of stories run as a DAG.
//!
//! | what | file |
//! |---|---|
//! | the validated plan (parsed by ralph-cli) | `plan.rs` |
//! | the dependency graph: order, cycles, critical paths | `dag.rs` |
//! | whether two stories' `affected_paths` may touch the same files | `overlap.rs` |
//! | which ready stories start next (rule 3), what a failure blocks, `--only`, resume | `schedule.rs` |
//! | the scheduler against a simulated clock: makespan against the lower bound | `sim.rs` |
//! | made-up plans from a seed, for tests and benchmarks | `sample.rs` |

pub mod dag;
pub mod overlap;
pub mod plan;
pub mod sample;
pub mod schedule;
pub mod sim;

pub use dag::{Dag, DagError};
pub use overlap::{may_overlap, PathSet};
pub use plan::{Check, Criterion, Layer, Plan, Story};
pub use schedule::{Outcome, ScheduleError, Scheduler, State};
pub use sim::{simulate, simulate_with, SimResult};
