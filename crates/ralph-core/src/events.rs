//! The events a run emits. Every sink (store, terminal, `--json`) consumes these; none of them
//! lives inside the loop body.

use serde::Serialize;

/// Why a run ended. Each reason has one exit code (`ralph_types::exit_codes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Completed,
    MaxIterations,
    MaxRuntime,
    Budget,
    Safety,
    GaveUp,
    NeedsHuman,
    StopRequested,
    Interrupted,
    Terminated,
    /// ralph itself could not go on (its state could not be written, say): the run stops with
    /// its summary and can be resumed once the cause is fixed.
    InternalError,
}

impl StopReason {
    pub fn exit_code(&self) -> i32 {
        use ralph_types::exit_codes as code;
        match self {
            StopReason::Completed => code::COMPLETED,
            StopReason::MaxIterations => code::MAX_ITERATIONS,
            StopReason::MaxRuntime => code::MAX_RUNTIME,
            StopReason::Budget => code::BUDGET,
            StopReason::Safety => code::SAFETY,
            StopReason::GaveUp => code::GAVE_UP,
            StopReason::NeedsHuman => code::NEEDS_HUMAN,
            StopReason::StopRequested => code::STOP_REQUESTED,
            StopReason::Interrupted => code::INTERRUPTED,
            StopReason::Terminated => code::TERMINATED,
            StopReason::InternalError => code::INTERNAL_ERROR,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            StopReason::Completed => "completed",
            StopReason::MaxIterations => "max_iterations",
            StopReason::MaxRuntime => "max_runtime",
            StopReason::Budget => "budget",
            StopReason::Safety => "safety",
            StopReason::GaveUp => "gave_up",
            StopReason::NeedsHuman => "needs_human",
            StopReason::StopRequested => "stop_requested",
            StopReason::Interrupted => "interrupted",
            StopReason::Terminated => "terminated",
            StopReason::InternalError => "internal_error",
        }
    }

    /// The run state a stop reason leaves behind.
    pub fn state(&self) -> ralph_store::RunState {
        use ralph_store::RunState;
        match self {
            StopReason::Completed => RunState::Completed,
            StopReason::MaxIterations
            | StopReason::MaxRuntime
            | StopReason::Budget
            | StopReason::StopRequested => RunState::Stopped,
            StopReason::Safety
            | StopReason::GaveUp
            | StopReason::NeedsHuman
            | StopReason::InternalError => RunState::Failed,
            StopReason::Interrupted | StopReason::Terminated => RunState::Interrupted,
        }
    }
}

pub use ralph_types::Tokens;

/// Event payloads. Serialised with an `"event"` tag; `RunEvent::to_json` adds `run_id` and `ts`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event")]
#[expect(
    clippy::large_enum_variant,
    reason = "a few events per iteration, built once and moved into the sink: boxing \
              `iteration.finished` would cost every match a deref for no measurable gain"
)]
pub enum EventBody {
    #[serde(rename = "run.started")]
    RunStarted {
        backend: String,
        model: Option<String>,
        max_iterations: u32,
        /// Iterations already committed (non-zero when resuming).
        iteration: u32,
        resumed: bool,
        checkpoints: bool,
        /// The OS sandbox enforced on the agent (`workspace`, `strict, network allowlist`,
        /// `off`), and what of `[sandbox]` the kernel could not enforce.
        sandbox: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sandbox_gaps: Vec<String>,
    },
    #[serde(rename = "iteration.started")]
    IterationStarted { iteration: u32, backend: String },
    #[serde(rename = "iteration.finished")]
    IterationFinished {
        iteration: u32,
        max_iterations: u32,
        backend: String,
        outcome: String,
        duration_s: f64,
        cost_usd: Option<f64>,
        cost_source: String,
        tokens: Option<Tokens>,
        files_changed: Option<u32>,
        /// Lines added and removed, from the checkpoint diff.
        insertions: Option<u64>,
        deletions: Option<u64>,
        error_class: Option<String>,
        error_message: Option<String>,
        total_cost_usd: f64,
        total_tokens: Tokens,
        /// Peak context use as a percentage of the model's window, when both are known.
        context_pct: Option<f64>,
        /// Untracked files too large for checkpoints (`git.max_untracked_mb`) that this
        /// iteration deleted or changed: no rollback can bring them back.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unrestorable: Vec<String>,
        /// The OS sandbox the agent ran in.
        sandbox: String,
    },
    /// The sandbox refused something: a connection (from the proxy, exact) or a write the
    /// agent reported failing (from its output).
    #[serde(rename = "sandbox.denied")]
    SandboxDenied {
        iteration: u32,
        /// `agent`, or `gate:<name>`.
        call: String,
        /// `network` or `file`.
        kind: String,
        /// The host, or the path (empty when the agent's message named none).
        what: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
        reason: String,
    },
    /// The notes on earlier iterations grew past `context.notes_max_tokens` and were
    /// summarised by the agent (`accepted`: the summary was shorter and replaced them; else the
    /// oldest notes were dropped).
    #[serde(rename = "notes.summarised")]
    NotesSummarised {
        iteration: u32,
        accepted: bool,
        tokens_before: u64,
        tokens_after: u64,
        cost_usd: Option<f64>,
    },
    /// Spend reached a `budget.alert_at` fraction of a cap.
    #[serde(rename = "budget.alert")]
    BudgetAlert {
        /// `run_cost` or `run_tokens` (later: `daily`, `monthly`).
        scope: String,
        fraction: f64,
        spent: f64,
        cap: f64,
    },
    #[serde(rename = "gate.finished")]
    GateFinished {
        iteration: u32,
        name: String,
        passed: bool,
        exit_code: Option<i32>,
        timed_out: bool,
        duration_s: f64,
    },
    #[serde(rename = "checkpoint.created")]
    CheckpointCreated {
        iteration: u32,
        r#ref: String,
        commit: String,
    },
    /// ralph committed a story's worktree on its branch (STORIES.md rule 2).
    #[serde(rename = "story.committed")]
    StoryCommitted { iteration: u32, commit: String },
    #[serde(rename = "retry.scheduled")]
    RetryScheduled {
        iteration: u32,
        delay_s: f64,
        error_class: String,
        /// RFC 3339: when the agent said its limit lifts (absent for a plain backoff).
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<String>,
    },
    /// The run moved to the next agent in `agent.fallback`.
    #[serde(rename = "agent.switched")]
    AgentSwitched {
        iteration: u32,
        from: String,
        to: String,
        model: Option<String>,
        reason: String,
    },
    /// A story's loop moved up a model tier (`[routing]`): the same failure repeated.
    #[serde(rename = "story.escalated")]
    Escalated {
        iteration: u32,
        /// `backend:model` before and after.
        from: String,
        to: String,
        tier: String,
        reason: String,
    },
    #[serde(rename = "warning")]
    Warning { message: String },
    #[serde(rename = "run.finished")]
    RunFinished {
        stop_reason: StopReason,
        exit_code: i32,
        /// One line: why, with a hint where there is something to do.
        message: String,
        iterations: u32,
        elapsed_s: f64,
        cost_usd: f64,
        /// Iterations whose cost is not in `cost_usd` because the agent did not report it.
        cost_unknown_iterations: u32,
        tokens: Tokens,
    },
}

impl EventBody {
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::RunStarted { .. } => "run.started",
            EventBody::IterationStarted { .. } => "iteration.started",
            EventBody::IterationFinished { .. } => "iteration.finished",
            EventBody::GateFinished { .. } => "gate.finished",
            EventBody::CheckpointCreated { .. } => "checkpoint.created",
            EventBody::StoryCommitted { .. } => "story.committed",
            EventBody::RetryScheduled { .. } => "retry.scheduled",
            EventBody::AgentSwitched { .. } => "agent.switched",
            EventBody::Escalated { .. } => "story.escalated",
            EventBody::Warning { .. } => "warning",
            EventBody::BudgetAlert { .. } => "budget.alert",
            EventBody::NotesSummarised { .. } => "notes.summarised",
            EventBody::RunFinished { .. } => "run.finished",
            EventBody::SandboxDenied { .. } => "sandbox.denied",
        }
    }

    pub fn iteration(&self) -> Option<u32> {
        match self {
            EventBody::IterationStarted { iteration, .. }
            | EventBody::IterationFinished { iteration, .. }
            | EventBody::GateFinished { iteration, .. }
            | EventBody::CheckpointCreated { iteration, .. }
            | EventBody::StoryCommitted { iteration, .. }
            | EventBody::RetryScheduled { iteration, .. }
            | EventBody::AgentSwitched { iteration, .. }
            | EventBody::Escalated { iteration, .. }
            | EventBody::NotesSummarised { iteration, .. }
            | EventBody::SandboxDenied { iteration, .. } => Some(*iteration),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    pub run_id: String,
    /// The story whose loop emitted it (STORIES.md "Output"); `None` for the single loop.
    pub story_id: Option<String>,
    /// RFC 3339, UTC.
    pub ts: String,
    pub body: EventBody,
}

impl RunEvent {
    /// The `--json` line: the body's fields plus `run_id` and `ts`, `event` first.
    pub fn to_json(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        out.insert("event".into(), self.body.kind().into());
        out.insert("run_id".into(), self.run_id.clone().into());
        if let Some(story) = &self.story_id {
            out.insert("story_id".into(), story.clone().into());
        }
        out.insert("ts".into(), self.ts.clone().into());
        if let Ok(serde_json::Value::Object(body)) = serde_json::to_value(&self.body) {
            for (k, v) in body {
                if k != "event" {
                    out.insert(k, v);
                }
            }
        }
        serde_json::Value::Object(out)
    }

    pub fn to_record(&self) -> ralph_store::EventRecord {
        ralph_store::EventRecord {
            run_id: self.run_id.clone(),
            iteration: self.body.iteration(),
            ts: self.ts.clone(),
            kind: self.body.kind().to_string(),
            payload: self.to_json().to_string(),
        }
    }
}

/// Receives every event after it is durable. Implemented by the CLI's renderers. `Send`, so an
/// engine can run on any thread; many loops share one sink through `Arc<Mutex<S>>`.
pub trait EventSink: Send {
    fn event(&mut self, event: &RunEvent);

    /// Called about once a second while the loop waits before retrying (for a countdown). Not
    /// an event: nothing is recorded.
    fn waiting(&mut self, _remaining: std::time::Duration, _reason: &str) {}
}

impl<S: EventSink> EventSink for std::sync::Arc<std::sync::Mutex<S>> {
    fn event(&mut self, event: &RunEvent) {
        self.lock().unwrap_or_else(|e| e.into_inner()).event(event);
    }

    fn waiting(&mut self, remaining: std::time::Duration, reason: &str) {
        self.lock()
            .unwrap_or_else(|e| e.into_inner())
            .waiting(remaining, reason);
    }
}

/// A sink that drops everything (tests, benchmarks).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl EventSink for NullSink {
    fn event(&mut self, _event: &RunEvent) {}
}

/// A sink that keeps every event (tests).
#[derive(Debug, Default, Clone)]
pub struct CollectSink(pub std::sync::Arc<std::sync::Mutex<Vec<RunEvent>>>);

impl CollectSink {
    pub fn events(&self) -> Vec<RunEvent> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl EventSink for CollectSink {
    fn event(&mut self, event: &RunEvent) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stop_reason_has_a_documented_exit_code() {
        use StopReason::*;
        for r in [
            Completed,
            MaxIterations,
            MaxRuntime,
            Budget,
            Safety,
            GaveUp,
            NeedsHuman,
            StopRequested,
            Interrupted,
            Terminated,
            InternalError,
        ] {
            let row = ralph_types::exit_codes::describe(r.exit_code());
            assert!(row.is_some(), "{r:?}");
            assert_eq!(row.map(|e| e.name), Some(r.as_str()), "{r:?}");
        }
    }
}
