//! ralph's engine: the run loop, stop conditions, prompt builder, completion and gate
//! evaluation. It never prints and never reads the environment: everything comes in as
//! [`Settings`] and goes out as [`RunEvent`]s. Many engines can run in one process, each on its
//! own work root, sharing the [`Handles`] (store, ledger, budgets, backend limits).

pub mod bounded;
pub mod budget;
pub mod cancel;
pub mod clock;
pub mod completion;
pub mod engine;
pub mod events;
pub mod guard;
pub mod notes;
pub mod orphans;
pub mod policy;
pub mod process;
pub mod prompt;
pub mod reaper;
pub mod redact;
pub mod safety;
pub mod sandbox;
pub mod settings;
pub mod shared;

pub use budget::{PlanBudget, PlanCaps};
pub use cancel::Cancel;
pub use clock::{Clock, Deps, ManualClock, RunIds, SequentialIds, SystemClock, TimeIds};
pub use engine::{
    agent_command, fmt_duration, Agent, CallKind, CallSpec, CleanCheckout, Engine, EngineError,
    Escalation, Loop, RunScope, RunSummary, Stop, Tier, STATE_GITIGNORE,
};
pub use events::{CollectSink, EventBody, EventSink, NullSink, RunEvent, StopReason, Tokens};
pub use process::Control;
pub use settings::*;
pub use shared::{AuditHandle, BackendLimits, Handles, OwnRefs, Pause, StopLatch};
