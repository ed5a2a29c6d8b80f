//! A plan run's ending: its exit code (STORIES.md "Exit codes"), persisted with
//! `plan.finished`, and told.

use ralph_store::{RunState, StoryRecord, StoryState, Write};
use ralph_types::exit_codes;

use super::{PlanOutcome, Run};
use crate::events::{PlanEvent, PLAN_FINISHED};
use crate::transitions::record;

impl Run {
    /// The plan run's ending: its exit code, persisted, told.
    pub(super) async fn finish(mut self, resumed: bool) -> Result<PlanOutcome, String> {
        let in_scope: Vec<&StoryRecord> = (0..self.stories.len())
            .filter(|&i| self.sched.in_scope(i))
            .map(|i| &self.stories[i])
            .collect();
        let count = |f: &dyn Fn(StoryState) -> bool| in_scope.iter().filter(|s| f(s.state)).count();
        let merged = count(&|s| s == StoryState::Merged);
        let failed = count(&|s| {
            matches!(
                s,
                StoryState::Failed | StoryState::Conflicted | StoryState::Blocked
            )
        });
        let human = count(&|s| s == StoryState::NeedsHuman);
        let stop = self.stop.clone().or_else(|| {
            self.cancel.current().map(|_| {
                (
                    exit_codes::INTERRUPTED,
                    "stopped; `ralph stories run` resumes".to_string(),
                )
            })
        });
        let stop = stop.or_else(|| {
            self.handles.stop.requested().then(|| {
                (
                    exit_codes::STOP_REQUESTED,
                    "stopped on request; `ralph stories run` resumes".to_string(),
                )
            })
        });
        let total = in_scope.len();
        let (code, message, state) = match stop {
            Some((code, message)) => (code, message, RunState::Stopped),
            None if merged == total => (
                exit_codes::COMPLETED,
                format!(
                    "every story merged into {}",
                    self.plan_run.integration_branch
                ),
                RunState::Completed,
            ),
            None if failed > 0 => (
                exit_codes::GAVE_UP,
                format!(
                    "{merged} of {total} stories merged; {failed} failed, conflicted or blocked"
                ),
                RunState::Failed,
            ),
            None if human > 0 => (
                exit_codes::NEEDS_HUMAN,
                format!("{merged} of {total} stories merged; {human} need a human"),
                RunState::Failed,
            ),
            None => (
                exit_codes::INTERNAL_ERROR,
                format!("{merged} of {total} stories merged; the rest could not start"),
                RunState::Failed,
            ),
        };
        let now = self.now();
        self.plan_run.state = state;
        self.plan_run.updated_at = now.clone();
        self.plan_run.stop_reason = Some(message.clone());
        // Only a plan run with every story merged is over; any other can be resumed (after
        // `ralph stories retry`, say).
        if code == exit_codes::COMPLETED {
            self.plan_run.finished_at = Some(now.clone());
        }
        let ev = PlanEvent {
            kind: PLAN_FINISHED,
            ts: now,
            payload: serde_json::json!({
                "run_id": self.plan_run.id, "exit_code": code, "message": message,
                "merged": merged, "stories": total,
            }),
        };
        let write = Write::SavePlanRun {
            plan_run: self.plan_run.clone(),
            stories: Vec::new(),
            events: vec![record(&self.plan_run.id, &ev)],
        };
        self.handles
            .store
            .write(write)
            .await
            .map_err(|e| e.to_string())?;
        self.tell(ev);
        Ok(PlanOutcome {
            plan_run: self.plan_run,
            stories: self.stories,
            exit_code: code,
            message,
            resumed,
        })
    }
}
