//! What a call's ending means, whatever the agent said: a guard trip, a timeout, an idle kill or
//! the runtime limit is an error of ralph's naming; an interrupt ends the run; a claim of
//! completion only counts from a call without an error. A pure function of the call.

use ralph_agents::{AgentOutcome, ErrorClass};

use super::agent_call::{Call, GuardTrip};
use super::decision::{control_stop, fmt_duration};
use super::Stop;
use crate::completion::claims_completion;
use crate::process::{EndReason, Finished};
use crate::settings::Limits;

/// A classified call.
pub(super) struct Outcome {
    pub agent: AgentOutcome,
    pub finished: Finished,
    pub trip: Option<GuardTrip>,
    /// The final answer ends with the marker, and the call had no error.
    pub claimed: bool,
    /// The run's runtime limit ended the call.
    pub runtime_limit: bool,
    /// A signal or `ralph stop --now` ended the call: the iteration is not committed.
    pub interrupted: Option<Stop>,
}

pub(super) fn classify(call: Call, limits: &Limits, marker: &str) -> Outcome {
    let Call {
        finished,
        mut agent,
        trip,
    } = call;
    if let Some(t) = &trip {
        set_error(
            &mut agent,
            ErrorClass::PermissionDenied,
            format!(
                "ralph blocked the agent's {} `{}`: {}; the agent was stopped and this \
                 iteration's changes reverted",
                t.tool, t.what, t.blocked
            ),
        );
    }
    let mut interrupted = None;
    match finished.reason {
        EndReason::Guard | EndReason::Exited => {}
        EndReason::Control(c) => interrupted = Some(control_stop(c)),
        EndReason::Timeout => set_error(
            &mut agent,
            ErrorClass::Timeout,
            format!(
                "killed after the iteration timeout ({})",
                fmt_duration(limits.iteration_timeout)
            ),
        ),
        EndReason::Idle => set_error(
            &mut agent,
            ErrorClass::Idle,
            format!(
                "killed after {} without output (idle timeout)",
                fmt_duration(limits.idle_timeout)
            ),
        ),
        EndReason::RuntimeLimit => set_error(
            &mut agent,
            ErrorClass::Timeout,
            "killed at the run's runtime limit".to_string(),
        ),
    }
    let claimed = agent.error.is_none() && claims_completion(&agent.final_text, marker);
    Outcome {
        runtime_limit: finished.reason == EndReason::RuntimeLimit,
        agent,
        finished,
        trip,
        claimed,
        interrupted,
    }
}

fn set_error(outcome: &mut AgentOutcome, class: ErrorClass, message: String) {
    outcome.error = Some(class);
    outcome.error_message = Some(message);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ralph_agents::ExitInfo;

    use super::*;
    use crate::process::Control;

    fn call(reason: EndReason, text: &str) -> Call {
        Call {
            finished: Finished {
                exit: ExitInfo::default(),
                reason,
                tail: String::new(),
                duration: Duration::from_millis(5),
                bytes: 0,
                denied: Vec::new(),
            },
            agent: AgentOutcome {
                final_text: text.to_string(),
                ..AgentOutcome::default()
            },
            trip: None,
        }
    }

    #[test]
    fn a_claim_counts_only_from_a_clean_ending() {
        let limits = Limits::default();
        let done = classify(
            call(EndReason::Exited, "done\nLOOP_COMPLETE"),
            &limits,
            "LOOP_COMPLETE",
        );
        assert!(done.claimed && done.agent.error.is_none() && done.interrupted.is_none());
        let late = classify(
            call(EndReason::Timeout, "LOOP_COMPLETE"),
            &limits,
            "LOOP_COMPLETE",
        );
        assert!(!late.claimed);
        assert_eq!(late.agent.error, Some(ErrorClass::Timeout));
        assert_eq!(
            late.agent.error_message.as_deref(),
            Some("killed after the iteration timeout (30m)")
        );
        let idle = classify(call(EndReason::Idle, ""), &limits, "LOOP_COMPLETE");
        assert_eq!(idle.agent.error, Some(ErrorClass::Idle));
        let limit = classify(call(EndReason::RuntimeLimit, ""), &limits, "LOOP_COMPLETE");
        assert!(limit.runtime_limit);
    }

    #[test]
    fn interrupts_and_guard_trips_are_named() {
        let limits = Limits::default();
        let stop = classify(
            call(EndReason::Control(Control::Terminate), "LOOP_COMPLETE"),
            &limits,
            "LOOP_COMPLETE",
        );
        assert_eq!(
            stop.interrupted.map(|s| s.reason),
            Some(crate::events::StopReason::Terminated)
        );
        let mut tripped = call(EndReason::Guard, "LOOP_COMPLETE");
        tripped.trip = Some(GuardTrip {
            tool: "Bash".into(),
            what: "git reset --hard".into(),
            blocked: crate::guard::Blocked {
                rule: "git-reset-hard".into(),
                reason: "discards uncommitted work".into(),
            },
        });
        let o = classify(tripped, &limits, "LOOP_COMPLETE");
        assert!(!o.claimed, "a blocked iteration never completes");
        assert_eq!(o.agent.error, Some(ErrorClass::PermissionDenied));
        assert!(o
            .agent
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("`git reset --hard`")));
    }
}
