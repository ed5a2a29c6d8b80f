//! What happens after an iteration, decided from plain facts: the outcome recorded, what the
//! next prompt is told, and whether the run goes on, waits, switches agent or stops. Pure
//! functions, unit-tested here; `retry.rs` carries the decision out.

use std::time::Duration;

use ralph_agents::{AgentOutcome, ErrorClass};

use super::gates::GateOutcome;
use super::outcome::Outcome;
use super::{Engine, Stop};
use crate::events::StopReason;
use crate::policy::{self, Next, Situation};
use crate::process::Control;
use crate::prompt;
use crate::settings::Settings;

/// Bounds on what a failing gate contributes to the next prompt.
const FEEDBACK_TAIL_BYTES: usize = 2048;
const FEEDBACK_TAIL_LINES: usize = 40;

/// What an iteration came to, as plain values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Facts {
    /// Claimed, every gate passed, nothing reverted, no guardrail stop.
    pub completed: bool,
    pub claimed: bool,
    /// A guard killed the agent.
    pub blocked: bool,
    /// The iteration's changes were undone (guard trip, file limit).
    pub reverted: bool,
    pub error: Option<ErrorClass>,
    /// `None` outside git: no-change is never assumed.
    pub files_changed: Option<u32>,
}

impl Facts {
    /// The outcome recorded for the iteration (CLI.md: completed, blocked, reverted, failed,
    /// gates_failed, no_change, progressed).
    pub fn outcome_name(&self) -> &'static str {
        if self.completed {
            "completed"
        } else if self.blocked {
            "blocked"
        } else if self.reverted {
            "reverted"
        } else if self.error.is_some() {
            "failed"
        } else if self.claimed {
            "gates_failed"
        } else if self.files_changed == Some(0) {
            "no_change"
        } else {
            "progressed"
        }
    }
}

/// What the loop does next.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Decided {
    Stop(Stop),
    Continue,
    /// Move to the next agent in `agent.fallback`.
    Switch(ErrorClass),
    /// Wait exactly this long (the agent said when its limit lifts, or a retry-after).
    Wait {
        class: ErrorClass,
        delay: Duration,
        stated: bool,
    },
    /// Wait the configured back-off.
    Backoff(ErrorClass),
}

/// The order of precedence after an iteration: a guardrail stop outranks even a completion (the
/// work was reverted), then stuck detection, completion, the runtime limit hit mid-iteration,
/// and finally the failure policy.
pub(super) fn after_iteration(
    facts: &Facts,
    safety: Option<Stop>,
    stuck: Option<Stop>,
    runtime_limit: bool,
    next: Next,
    settings: &Settings,
    completion_gates_ran: bool,
) -> Decided {
    if let Some(stop) = safety.or(stuck) {
        return Decided::Stop(stop);
    }
    if facts.completed {
        return Decided::Stop(Stop::new(
            StopReason::Completed,
            format!(
                "completed: the agent signalled {} and {}",
                settings.completion_marker,
                if completion_gates_ran {
                    "every completion gate passed"
                } else {
                    "no completion gates are configured"
                }
            ),
        ));
    }
    if runtime_limit {
        return Decided::Stop(Stop::new(
            StopReason::MaxRuntime,
            runtime_message(settings.limits.max_runtime),
        ));
    }
    let Some(class) = facts.error else {
        return Decided::Continue;
    };
    match next {
        Next::Continue => Decided::Continue,
        Next::Stop(reason, message) => Decided::Stop(Stop::new(reason, message)),
        Next::Switch => Decided::Switch(class),
        Next::Wait { delay, .. } => Decided::Wait {
            class,
            delay,
            stated: true,
        },
        Next::Backoff => Decided::Backoff(class),
    }
}

/// What the next iteration should hear about this one. `None` when there is nothing to say.
pub(super) fn feedback(
    outcome: &AgentOutcome,
    claimed: bool,
    gates: &[GateOutcome],
    marker: &str,
) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(class) = outcome.error {
        let msg = outcome.error_message.as_deref().unwrap_or("no details");
        parts.push(format!("The previous iteration failed ({class}): {msg}."));
    }
    for g in gates.iter().filter(|g| !g.passed) {
        let how = gate_verdict(g);
        let lead = if claimed {
            format!(
                "You claimed completion, but the gate `{}` {how}, so the task is not done.",
                g.name
            )
        } else {
            format!("The gate `{}` {how}.", g.name)
        };
        let tail = prompt::tail(&g.tail, FEEDBACK_TAIL_BYTES, FEEDBACK_TAIL_LINES);
        parts.push(format!("{lead} Its output ends with:\n```\n{tail}\n```"));
    }
    if claimed && gates.iter().any(|g| !g.passed) {
        parts.push(format!("Fix this before writing {marker} again."));
    }
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

/// The next prompt's feedback: a guardrail's reason first, then what went wrong, then the
/// stuck detector's request to step back.
pub(super) fn compose_feedback(
    guard: Option<String>,
    failure: Option<String>,
    recovery: Option<String>,
) -> Option<String> {
    let parts: Vec<String> = [guard, failure, recovery].into_iter().flatten().collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

/// "timed out", "failed with exit code 1", "was killed".
pub(super) fn gate_verdict(g: &GateOutcome) -> String {
    if g.timed_out {
        "timed out".to_string()
    } else {
        match g.exit_code {
            Some(c) => format!("failed with exit code {c}"),
            None => "was killed".to_string(),
        }
    }
}

pub(super) fn control_stop(c: Control) -> Stop {
    match c {
        Control::Interrupt | Control::Kill => Stop::new(
            StopReason::Interrupted,
            "interrupted; the unfinished iteration was not recorded and `ralph run` resumes",
        ),
        Control::Terminate => Stop::new(
            StopReason::Terminated,
            "terminated by SIGTERM; `ralph run` resumes this run",
        ),
        Control::Hangup => Stop::new(
            StopReason::Terminated,
            "terminated by SIGHUP (the terminal went away); `ralph run` resumes this run",
        ),
        Control::StopNow => Stop::new(
            StopReason::StopRequested,
            "stopped on request (ralph stop --now); `ralph run` resumes this run",
        ),
    }
}

pub(super) fn runtime_message(limit: Duration) -> String {
    format!(
        "runtime limit reached ({}); raise --max-runtime or loop.max_runtime to allow more",
        fmt_duration(limit)
    )
}

/// `1h30m`, `45s`, `2m5s`.
pub fn fmt_duration(d: Duration) -> String {
    let total = d.as_secs();
    if total == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    let mut out = String::new();
    for (v, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if v > 0 {
            out.push_str(&format!("{v}{unit}"));
        }
    }
    out
}

impl Engine {
    /// The failure policy's answer for a failed, not completed iteration.
    pub(super) fn policy(&self, outcome: &Outcome, completed: bool) -> Next {
        match outcome.agent.error {
            Some(class) if !completed => {
                let left = self.settings.limits.max_runtime.as_secs_f64() - self.elapsed();
                policy::decide(&Situation {
                    class,
                    retry_after: outcome.agent.retry_after,
                    now_unix: self.handles.deps.clock.now().timestamp(),
                    runtime_left: Duration::from_secs_f64(left.max(0.0)),
                    has_fallback: self.current + 1 < self.agents.len(),
                    backend: &self.run.backend,
                    message: outcome
                        .agent
                        .error_message
                        .as_deref()
                        .unwrap_or(class.as_str()),
                })
            }
            _ => Next::Continue,
        }
    }

    /// Consecutive failures: reset by a clean iteration; not counted for a planned wait or a
    /// switch to a fallback agent.
    pub(super) fn count_failure(&mut self, outcome: &Outcome, next: &Next) {
        match outcome.agent.error {
            Some(_) if next.counts_as_failure() => self.run.consecutive_failures += 1,
            Some(_) => {}
            None => self.run.consecutive_failures = 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::GateWhen;

    fn gate(name: &str, passed: bool, when: GateWhen) -> GateOutcome {
        GateOutcome {
            name: name.into(),
            passed,
            when,
            exit_code: (!passed).then_some(1),
            timed_out: false,
            tail: "boom".into(),
        }
    }

    #[test]
    fn outcome_names_follow_precedence() {
        let f = |completed, blocked, reverted, error, claimed, files| Facts {
            completed,
            claimed,
            blocked,
            reverted,
            error,
            files_changed: files,
        };
        assert_eq!(
            f(true, false, false, None, true, Some(1)).outcome_name(),
            "completed"
        );
        assert_eq!(
            f(
                false,
                true,
                true,
                Some(ErrorClass::PermissionDenied),
                false,
                Some(1)
            )
            .outcome_name(),
            "blocked"
        );
        assert_eq!(
            f(false, false, true, None, true, Some(250)).outcome_name(),
            "reverted"
        );
        assert_eq!(
            f(false, false, false, Some(ErrorClass::Crash), false, Some(0)).outcome_name(),
            "failed"
        );
        assert_eq!(
            f(false, false, false, None, true, Some(2)).outcome_name(),
            "gates_failed"
        );
        assert_eq!(
            f(false, false, false, None, false, Some(0)).outcome_name(),
            "no_change"
        );
        assert_eq!(
            f(false, false, false, None, false, None).outcome_name(),
            "progressed"
        );
    }

    #[test]
    fn a_reverted_claim_is_not_a_completion() {
        let settings = crate::settings::test_settings();
        let facts = Facts {
            completed: false,
            claimed: true,
            reverted: true,
            files_changed: Some(250),
            ..Facts::default()
        };
        assert_eq!(facts.outcome_name(), "reverted");
        let d = after_iteration(&facts, None, None, false, Next::Continue, &settings, false);
        assert_eq!(d, Decided::Continue);
        let safety = Stop::new(StopReason::Safety, "stopped by a safety guard");
        let done = Facts {
            completed: true,
            ..facts
        };
        let d = after_iteration(
            &done,
            Some(safety.clone()),
            None,
            false,
            Next::Continue,
            &settings,
            false,
        );
        assert_eq!(
            d,
            Decided::Stop(safety),
            "a guardrail stop outranks a completion"
        );
    }

    #[test]
    fn the_failure_policy_decides_only_failures() {
        let settings = crate::settings::test_settings();
        let failed = Facts {
            error: Some(ErrorClass::RateLimit),
            ..Facts::default()
        };
        let wait = Next::Wait {
            delay: Duration::from_secs(7),
            reset: false,
        };
        assert_eq!(
            after_iteration(&failed, None, None, false, wait.clone(), &settings, false),
            Decided::Wait {
                class: ErrorClass::RateLimit,
                delay: Duration::from_secs(7),
                stated: true
            }
        );
        assert_eq!(
            after_iteration(&Facts::default(), None, None, false, wait, &settings, false),
            Decided::Continue
        );
        assert!(matches!(
            after_iteration(&failed, None, None, true, Next::Backoff, &settings, false),
            Decided::Stop(Stop {
                reason: StopReason::MaxRuntime,
                ..
            })
        ));
        assert_eq!(
            after_iteration(&failed, None, None, false, Next::Backoff, &settings, false),
            Decided::Backoff(ErrorClass::RateLimit)
        );
    }

    #[test]
    fn feedback_names_the_failing_gates_and_the_error() {
        let agent = AgentOutcome {
            error: Some(ErrorClass::Crash),
            error_message: Some("exit 3".into()),
            ..AgentOutcome::default()
        };
        let gates = [
            gate("lint", true, GateWhen::Iteration),
            gate("tests", false, GateWhen::Complete),
        ];
        let text = feedback(&agent, true, &gates, "DONE").unwrap();
        assert!(
            text.starts_with("The previous iteration failed (crash): exit 3."),
            "{text}"
        );
        assert!(text.contains(
            "You claimed completion, but the gate `tests` failed with exit code 1, so the task \
             is not done. Its output ends with:\n```\nboom\n```"
        ));
        assert!(text.ends_with("Fix this before writing DONE again."));
        assert!(!text.contains("lint"), "passing gates are not mentioned");
        assert_eq!(
            feedback(&AgentOutcome::default(), false, &gates[..1], "DONE"),
            None
        );
        // An iteration gate that fails on a claim also blocks the completion, and says so.
        let lint = [gate("lint", false, GateWhen::Iteration)];
        let text = feedback(&AgentOutcome::default(), true, &lint, "DONE").unwrap();
        assert!(
            text.starts_with("You claimed completion, but the gate `lint`"),
            "{text}"
        );
    }

    #[test]
    fn composed_feedback_keeps_its_order() {
        assert_eq!(compose_feedback(None, None, None), None);
        assert_eq!(
            compose_feedback(Some("g".into()), Some("f".into()), Some("r".into())).as_deref(),
            Some("g\n\nf\n\nr")
        );
        assert_eq!(
            compose_feedback(None, None, Some("r".into())).as_deref(),
            Some("r")
        );
    }

    #[test]
    fn durations_and_stops_read_well() {
        assert_eq!(fmt_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(fmt_duration(Duration::from_secs(125)), "2m5s");
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(
            control_stop(Control::StopNow).reason,
            StopReason::StopRequested
        );
        assert_eq!(control_stop(Control::Kill).reason, StopReason::Interrupted);
        assert!(runtime_message(Duration::from_secs(60)).contains("(1m)"));
    }
}
