//! The stories mode (STORIES.md): a plan of stories run as a DAG.
//!
//! | what | file |
//! |---|---|
//! | the validated plan (parsed by ralph-cli) | `plan.rs` |
//! | the dependency graph: order, cycles, critical paths | `dag.rs` |
//! | whether two stories' `affected_paths` may touch the same files | `overlap.rs` |
//! | which ready stories start next (rule 3) | `schedule.rs` |

pub mod dag;
pub mod overlap;
pub mod plan;

pub use dag::{Dag, DagError};
pub use overlap::{may_overlap, PathSet};
pub use plan::{Check, Criterion, Layer, Plan, Story};
