//! What `ralph stories run` prints: one human line per story state change on stderr, every
//! event as JSON on stdout with `--json`, the summary table at the end, and — when stderr is a
//! terminal — one live line under the others (`running 3 · queued 1 · merged 7/12 · $4.10`),
//! redrawn in place as stories move and iterations are paid for.

use std::collections::HashMap;
use std::io::Write as _;
use std::time::Instant;

use ralph_core::{EventBody, EventSink, RunEvent};
use ralph_store::StoryState;
use ralph_stories::{PlanEvent, PlanSink};

/// Clears the terminal line the cursor is on and returns to its start.
const CLEAR_LINE: &str = "\r\x1b[2K";

pub struct PlanRenderer {
    json: bool,
    started: HashMap<String, Instant>,
    /// `Some` when stderr is a terminal: the live line's figures.
    live: Option<Live>,
    /// The live line is on screen (the next line must clear it first).
    drawn: bool,
}

/// The live line's figures, from the events seen.
#[derive(Debug, Default)]
pub struct Live {
    total: usize,
    states: HashMap<String, StoryState>,
    /// Each story's cost as its last `story.state` said, plus what its iterations reported
    /// since.
    cost: HashMap<String, f64>,
    /// Stories some of whose cost is not known: the sum is then a lower bound, and says so.
    unknown: std::collections::HashSet<String>,
    /// Stories merged before this run resumed the plan run (they send no event again), and
    /// what they cost (`None`: unknown).
    merged_before: usize,
    cost_before: Option<f64>,
    finished: bool,
}

impl Live {
    /// Takes one plan event in.
    pub fn plan_event(&mut self, event: &PlanEvent) {
        let p = &event.payload;
        if event.kind == ralph_stories::events::PLAN_STARTED {
            self.total = p["stories"].as_u64().unwrap_or(0) as usize;
            self.merged_before = p["merged"].as_u64().unwrap_or(0) as usize;
            self.cost_before = p["merged_cost_usd"].as_f64();
            if self.merged_before > 0 && self.cost_before.is_none() {
                self.unknown.insert(String::new());
            }
        } else if event.kind == ralph_stories::events::PLAN_FINISHED {
            self.finished = true;
        } else if let Some((id, state)) = event.story_state() {
            self.states.insert(id.to_string(), state);
            match p["cost_usd"].as_f64() {
                Some(c) => {
                    self.cost.insert(id.to_string(), c);
                    self.unknown.remove(id);
                }
                None if p["iterations"].as_u64().unwrap_or(0) > 0 => {
                    self.unknown.insert(id.to_string());
                }
                None => {}
            }
        }
    }

    /// Takes one loop event in; whether the line changed.
    pub fn loop_event(&mut self, event: &RunEvent) -> bool {
        match (&event.story_id, &event.body) {
            (Some(id), EventBody::IterationFinished { cost_usd, .. }) => {
                match cost_usd {
                    Some(c) => *self.cost.entry(id.clone()).or_default() += c,
                    None => {
                        self.unknown.insert(id.clone());
                    }
                }
                true
            }
            _ => false,
        }
    }

    /// The line, `None` before the plan started and after it finished.
    pub fn line(&self) -> Option<String> {
        if self.total == 0 || self.finished {
            return None;
        }
        let count =
            |f: &dyn Fn(StoryState) -> bool| self.states.values().filter(|s| f(**s)).count();
        let running = count(&|s| matches!(s, StoryState::Running | StoryState::Verifying));
        let queued = count(&|s| matches!(s, StoryState::Queued | StoryState::Merging));
        let merged = self.merged_before + count(&|s| s == StoryState::Merged);
        let stuck = count(&|s| {
            matches!(
                s,
                StoryState::Failed
                    | StoryState::Conflicted
                    | StoryState::Blocked
                    | StoryState::NeedsHuman
            )
        });
        let mut parts = vec![
            format!("running {running}"),
            format!("queued {queued}"),
            format!("merged {merged}/{}", self.total),
        ];
        if stuck > 0 {
            parts.push(format!("failed or blocked {stuck}"));
        }
        let known: f64 = self.cost.values().sum::<f64>() + self.cost_before.unwrap_or(0.0);
        let any = !self.cost.is_empty() || self.cost_before.is_some();
        match (known > 0.0, self.unknown.is_empty()) {
            (_, true) if any => parts.push(format!("${known:.2}")),
            (true, false) => parts.push(format!("${known:.2} + unknown")),
            _ => {}
        }
        Some(parts.join(" · "))
    }
}

impl PlanRenderer {
    /// `tty`: stderr is a terminal (the live line is drawn).
    pub fn new(json: bool, tty: bool) -> PlanRenderer {
        PlanRenderer {
            json,
            started: Default::default(),
            live: tty.then(Live::default),
            drawn: false,
        }
    }

    /// Writes `line` (if any) to stderr above the live line, then redraws the live line.
    fn say(&mut self, line: Option<String>) {
        let mut err = std::io::stderr().lock();
        if self.drawn {
            let _ = write!(err, "{CLEAR_LINE}");
            self.drawn = false;
        }
        if let Some(line) = line {
            let _ = writeln!(err, "{line}");
        }
        if let Some(live) = self.live.as_ref().and_then(Live::line) {
            let _ = write!(err, "{live}");
            self.drawn = true;
        }
        let _ = err.flush();
    }
}

impl EventSink for PlanRenderer {
    fn event(&mut self, event: &RunEvent) {
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", event.to_json());
            let _ = out.flush();
        }
        // A loop's warnings are said, with the story they are about: a story's loop has no
        // terminal of its own.
        if let (Some(id), EventBody::Warning { message }) = (&event.story_id, &event.body) {
            if let Some(live) = &mut self.live {
                live.loop_event(event);
            }
            self.say(Some(format!("[{id}] warning: {message}")));
            return;
        }
        if let (
            Some(id),
            EventBody::Escalated {
                from,
                to,
                tier,
                reason,
                ..
            },
        ) = (&event.story_id, &event.body)
        {
            self.say(Some(format!(
                "[{id}] escalated from {from} to tier {tier} ({to}): {reason}"
            )));
            return;
        }
        if self.live.as_mut().is_some_and(|l| l.loop_event(event)) {
            self.say(None);
        }
    }
}

impl PlanSink for PlanRenderer {
    fn plan_event(&mut self, event: &PlanEvent) {
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", event.to_json());
            let _ = out.flush();
        }
        if let Some(live) = &mut self.live {
            live.plan_event(event);
        }
        let line = self.human_line(event);
        if line.is_some() || self.live.is_some() {
            self.say(line);
        }
    }
}

impl PlanRenderer {
    fn human_line(&mut self, event: &PlanEvent) -> Option<String> {
        let p = &event.payload;
        if event.kind == ralph_stories::events::PLAN_STARTED {
            return Some(format!(
                "ralph: plan {} ({} stories, {} at once) onto {}{}",
                p["plan"].as_str().unwrap_or(""),
                p["stories"],
                p["parallel"],
                p["integration_branch"].as_str().unwrap_or(""),
                if p["resumed"].as_bool() == Some(true) {
                    ", resumed"
                } else {
                    ""
                }
            ));
        }
        if event.kind == ralph_stories::events::PLAN_FINISHED {
            return Some(format!("ralph: {}", p["message"].as_str().unwrap_or("")));
        }
        let (id, state) = event.story_state()?;
        let id = id.to_string();
        if state == StoryState::Running {
            self.started.insert(id.clone(), Instant::now());
            return Some(format!("[{id}] running"));
        }
        let mut parts = vec![state.as_str().replace('_', " ")];
        if matches!(
            state,
            StoryState::Merged | StoryState::Failed | StoryState::Queued
        ) {
            parts.push(format!("{} iterations", p["iterations"]));
            if let Some(c) = p["cost_usd"].as_f64() {
                parts.push(format!("${c:.2}"));
            }
            if let Some(t) = self.started.get(&id) {
                parts.push(ralph_core::fmt_duration(t.elapsed()));
            }
        }
        if let Some(r) = p["reason"].as_str() {
            parts.push(r.to_string());
        }
        Some(format!("[{id}] {}", parts.join(" · ")))
    }
}

/// The table printed when the plan run ends.
pub fn summary_table(outcome: &ralph_stories::PlanOutcome) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "{:<16} {:<12} {:>5} {:>8}  branch",
        "story", "state", "iter", "cost"
    );
    for s in &outcome.stories {
        let cost = s
            .cost_usd
            .map(|c| format!("${c:.2}"))
            .unwrap_or_else(|| "?".into());
        let _ = writeln!(
            err,
            "{:<16} {:<12} {:>5} {:>8}  {}{}",
            s.story_id,
            s.state.as_str(),
            s.iterations,
            cost,
            s.branch.as_deref().unwrap_or("-"),
            s.reason
                .as_deref()
                .filter(|_| s.state != StoryState::Merged)
                .map(|r| format!("  {r}"))
                .unwrap_or_default()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(id: &str, state: &str, cost: Option<f64>) -> PlanEvent {
        PlanEvent {
            kind: ralph_stories::events::STORY_STATE,
            ts: String::new(),
            payload: serde_json::json!({"story_id": id, "state": state, "cost_usd": cost}),
        }
    }

    #[test]
    fn the_live_line_counts_states_and_sums_costs() {
        let mut live = Live::default();
        assert_eq!(live.line(), None, "nothing before the plan starts");
        live.plan_event(&PlanEvent {
            kind: ralph_stories::events::PLAN_STARTED,
            ts: String::new(),
            payload: serde_json::json!({"stories": 4}),
        });
        assert_eq!(live.line().unwrap(), "running 0 · queued 0 · merged 0/4");
        live.plan_event(&state("A", "running", None));
        live.plan_event(&state("B", "running", None));
        live.plan_event(&state("C", "merged", Some(1.5)));
        live.plan_event(&state("D", "blocked", None));
        live.plan_event(&state("B", "queued", Some(0.25)));
        assert_eq!(
            live.line().unwrap(),
            "running 1 · queued 1 · merged 1/4 · failed or blocked 1 · $1.75"
        );
        // A's agent reports no cost: the sum is no longer the whole cost, and says so.
        live.loop_event(&RunEvent {
            run_id: "r".into(),
            story_id: Some("A".into()),
            ts: String::new(),
            body: EventBody::IterationFinished {
                iteration: 1,
                max_iterations: 2,
                backend: "custom".into(),
                outcome: "continue".into(),
                duration_s: 1.0,
                cost_usd: None,
                cost_source: "unknown".into(),
                tokens: None,
                files_changed: None,
                insertions: None,
                deletions: None,
                error_class: None,
                error_message: None,
                total_cost_usd: 0.0,
                total_tokens: Default::default(),
                context_pct: None,
                unrestorable: Vec::new(),
                sandbox: "off".into(),
            },
        });
        assert!(
            live.line().unwrap().ends_with("$1.75 + unknown"),
            "{:?}",
            live.line()
        );
        live.plan_event(&PlanEvent {
            kind: ralph_stories::events::PLAN_FINISHED,
            ts: String::new(),
            payload: serde_json::json!({}),
        });
        assert_eq!(live.line(), None, "gone once the plan ends");
    }

    #[test]
    fn a_resumed_plan_run_counts_what_merged_before() {
        let mut live = Live::default();
        live.plan_event(&PlanEvent {
            kind: ralph_stories::events::PLAN_STARTED,
            ts: String::new(),
            payload: serde_json::json!({"stories": 3, "merged": 2, "merged_cost_usd": 0.5}),
        });
        live.plan_event(&state("C", "running", Some(0.0)));
        assert_eq!(
            live.line().unwrap(),
            "running 1 · queued 0 · merged 2/3 · $0.50"
        );
    }
}
