//! ralph's engine: the run loop, stop conditions, prompt builder, completion and gate
//! evaluation. It never prints and never reads the environment: everything comes in as
//! [`Settings`] and goes out as [`RunEvent`]s.

pub mod completion;
pub mod engine;
pub mod events;
pub mod guard;
pub mod notes;
pub mod policy;
pub mod process;
pub mod prompt;
pub mod reaper;
pub mod redact;
pub mod safety;
pub mod settings;

pub use engine::{fmt_duration, Agent, Engine, EngineError, RunSummary};
pub use events::{EventBody, EventSink, RunEvent, StopReason, Tokens};
pub use process::Control;
pub use settings::*;
