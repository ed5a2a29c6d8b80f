//! Story state changes as the database takes them: each one a write with its `story.state`
//! event in the same transaction (ralph-store refuses a state change without one), and the
//! same payload handed to the sink once it is durable.

use ralph_store::{EventRecord, StoryRecord, StoryState};

use crate::events::{PlanEvent, STORY_STATE};

/// The story with its new state, and the event that says so.
pub fn transition(
    story: &StoryRecord,
    state: StoryState,
    reason: Option<String>,
    now: &str,
) -> (StoryRecord, PlanEvent) {
    let mut next = story.clone();
    next.state = state;
    next.reason = reason.clone();
    next.updated_at = now.to_string();
    let payload = serde_json::json!({
        "plan_run_id": story.plan_run_id,
        "story_id": story.story_id,
        "state": state.as_str(),
        "from": story.state.as_str(),
        "reason": reason,
        "iterations": next.iterations,
        "cost_usd": next.cost_usd,
        "attempts": next.attempts,
        "branch": next.branch,
    });
    let event = PlanEvent {
        kind: STORY_STATE,
        ts: now.to_string(),
        payload,
    };
    (next, event)
}

/// A plan event as a row of the events table (its run id is the plan run's).
pub fn record(plan_run_id: &str, event: &PlanEvent) -> EventRecord {
    EventRecord {
        run_id: plan_run_id.to_string(),
        iteration: None,
        ts: event.ts.clone(),
        kind: event.kind.to_string(),
        payload: event.to_json().to_string(),
    }
}

/// Whether a story in `state` will not run again in this plan run without `stories retry`.
pub fn is_terminal(state: StoryState) -> bool {
    matches!(
        state,
        StoryState::Merged
            | StoryState::Failed
            | StoryState::Conflicted
            | StoryState::Blocked
            | StoryState::NeedsHuman
    )
}
