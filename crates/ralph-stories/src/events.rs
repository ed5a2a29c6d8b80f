//! What a plan run tells its watcher: `plan.started`, one `story.state` per transition (the
//! same payload that is recorded with the transition), `plan.finished`; plus the loops' own
//! events, tagged with their story id, through the same sink.

use std::sync::{Arc, Mutex};

use ralph_core::{EventSink, RunEvent};
use ralph_store::StoryState;

/// One plan-level event; `payload` is what `--json` prints (with `event` and `ts`).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanEvent {
    pub kind: &'static str,
    pub ts: String,
    pub payload: serde_json::Value,
}

pub const PLAN_STARTED: &str = "plan.started";
pub const STORY_STATE: &str = ralph_store::STORY_STATE_EVENT;
pub const PLAN_FINISHED: &str = "plan.finished";

impl PlanEvent {
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "event": self.kind, "ts": self.ts });
        if let (Some(out), Some(p)) = (v.as_object_mut(), self.payload.as_object()) {
            for (k, val) in p {
                out.insert(k.clone(), val.clone());
            }
        }
        v
    }

    /// The story and its new state of a `story.state` event.
    pub fn story_state(&self) -> Option<(&str, StoryState)> {
        if self.kind != STORY_STATE {
            return None;
        }
        let id = self.payload.get("story_id")?.as_str()?;
        let state = StoryState::parse(self.payload.get("state")?.as_str()?)?;
        Some((id, state))
    }
}

/// Receives plan events and every loop's events.
pub trait PlanSink: EventSink {
    fn plan_event(&mut self, event: &PlanEvent);
}

/// One sink shared by the coordinator and every worker.
pub type SharedSink = Arc<Mutex<dyn PlanSink>>;

/// A worker's view of the shared sink.
pub struct LoopSink(pub SharedSink);

impl EventSink for LoopSink {
    fn event(&mut self, event: &RunEvent) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .event(event);
    }

    fn waiting(&mut self, remaining: std::time::Duration, reason: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .waiting(remaining, reason);
    }
}
