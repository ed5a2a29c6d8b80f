//! What to do after a failed iteration: a pure function of the error class, the agent's own
//! "try again" hint, the time left and whether a fallback agent is configured. The engine
//! carries the decision out.

use std::time::Duration;

use ralph_agents::{ErrorClass, RetryAfter};

use crate::events::StopReason;

#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Go on with the next iteration at once.
    Continue,
    /// Retry after the configured backoff (`[retry]`).
    Backoff,
    /// Retry after exactly this long: the agent said when its limit lifts. `reset`: a usage
    /// limit or quota resetting (a planned wait); otherwise a rate limit's retry-after.
    Wait { delay: Duration, reset: bool },
    /// Switch to the next agent in `agent.fallback` and go on.
    Switch,
    /// End the run.
    Stop(StopReason, String),
}

impl Next {
    /// Whether this failure counts toward `max_consecutive_failures`. Waiting for a known reset
    /// or moving to a fallback is the plan working, not the agent failing again and again.
    pub fn counts_as_failure(&self) -> bool {
        match self {
            Next::Wait { reset, .. } => !reset,
            Next::Switch => false,
            Next::Continue | Next::Backoff | Next::Stop(..) => true,
        }
    }
}

/// Seconds until `ra`, never negative.
pub fn seconds_until(ra: RetryAfter, now_unix: i64) -> u64 {
    match ra {
        RetryAfter::At(t) => (t - now_unix).max(0) as u64,
        RetryAfter::In(s) => s,
    }
}

pub struct Situation<'a> {
    pub class: ErrorClass,
    pub retry_after: Option<RetryAfter>,
    pub now_unix: i64,
    /// Time left before the run's runtime limit.
    pub runtime_left: Duration,
    pub has_fallback: bool,
    pub backend: &'a str,
    pub message: &'a str,
}

pub fn decide(s: &Situation<'_>) -> Next {
    let wait = s
        .retry_after
        .map(|ra| Duration::from_secs(seconds_until(ra, s.now_unix)));
    match s.class {
        ErrorClass::Auth => Next::Stop(
            StopReason::NeedsHuman,
            format!(
                "the {} agent failed to authenticate ({}); log in or set its API key, then `ralph \
                 run` resumes",
                s.backend, s.message
            ),
        ),
        ErrorClass::UsageLimit | ErrorClass::Quota if s.has_fallback => Next::Switch,
        // Out of credit: no wait refills it, whatever retry-after the API sent.
        ErrorClass::Quota => Next::Stop(
            StopReason::NeedsHuman,
            format!(
                "the {} agent is out of quota or credit ({}); add credit or configure \
                 agent.fallback, then `ralph run` resumes",
                s.backend, s.message
            ),
        ),
        ErrorClass::UsageLimit => match wait {
            Some(w) if w <= s.runtime_left => Next::Wait {
                delay: w,
                reset: true,
            },
            Some(w) => Next::Stop(
                StopReason::MaxRuntime,
                format!(
                    "the {} agent's {} lifts in {}, after the runtime limit; `ralph run \
                     --max-runtime …` resumes later",
                    s.backend,
                    limit_name(s.class),
                    crate::engine::fmt_duration(w)
                ),
            ),
            None => Next::Stop(
                StopReason::NeedsHuman,
                format!(
                    "the {} agent hit its {} with no reset time given ({}); configure \
                     agent.fallback, or `ralph run` resumes once it is lifted",
                    s.backend,
                    limit_name(s.class),
                    s.message
                ),
            ),
        },
        ErrorClass::RateLimit => match wait {
            Some(w) if w <= s.runtime_left => Next::Wait {
                delay: w,
                reset: false,
            },
            _ => Next::Backoff,
        },
        c if c.is_transient() => Next::Backoff,
        _ => Next::Continue,
    }
}

fn limit_name(_class: ErrorClass) -> &'static str {
    "usage limit"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sit(class: ErrorClass, ra: Option<RetryAfter>, fallback: bool) -> Situation<'static> {
        Situation {
            class,
            retry_after: ra,
            now_unix: 1_000_000,
            runtime_left: Duration::from_secs(3600),
            has_fallback: fallback,
            backend: "claude",
            message: "limit",
        }
    }

    #[test]
    fn usage_limit_waits_for_the_reset_within_the_runtime() {
        let n = decide(&sit(
            ErrorClass::UsageLimit,
            Some(RetryAfter::At(1_000_600)),
            false,
        ));
        assert_eq!(
            n,
            Next::Wait {
                delay: Duration::from_secs(600),
                reset: true
            }
        );
        assert!(!n.counts_as_failure());
    }

    #[test]
    fn usage_limit_past_the_runtime_stops_with_the_runtime_reason() {
        let n = decide(&sit(
            ErrorClass::UsageLimit,
            Some(RetryAfter::In(7200)),
            false,
        ));
        assert!(
            matches!(n, Next::Stop(StopReason::MaxRuntime, ref m) if m.contains("2h")),
            "{n:?}"
        );
    }

    #[test]
    fn usage_limit_without_reset_needs_a_human_unless_there_is_a_fallback() {
        assert!(matches!(
            decide(&sit(ErrorClass::UsageLimit, None, false)),
            Next::Stop(StopReason::NeedsHuman, _)
        ));
        assert_eq!(
            decide(&sit(ErrorClass::UsageLimit, None, true)),
            Next::Switch
        );
        assert_eq!(
            decide(&sit(ErrorClass::Quota, Some(RetryAfter::In(5)), true)),
            Next::Switch
        );
        assert!(matches!(
            decide(&sit(ErrorClass::Quota, None, false)),
            Next::Stop(StopReason::NeedsHuman, _)
        ));
    }

    #[test]
    fn rate_limits_honour_retry_after_else_back_off() {
        let n = decide(&sit(ErrorClass::RateLimit, Some(RetryAfter::In(30)), false));
        assert_eq!(
            n,
            Next::Wait {
                delay: Duration::from_secs(30),
                reset: false
            }
        );
        // Repeated rate limits are repeated failures: they open the circuit.
        assert!(n.counts_as_failure());
        assert_eq!(
            decide(&sit(ErrorClass::RateLimit, None, false)),
            Next::Backoff
        );
        assert_eq!(
            decide(&sit(ErrorClass::Overloaded, None, false)),
            Next::Backoff
        );
        assert_eq!(decide(&sit(ErrorClass::Crash, None, false)), Next::Backoff);
    }

    #[test]
    fn a_quota_never_waits_even_with_a_retry_after() {
        let n = decide(&sit(ErrorClass::Quota, Some(RetryAfter::In(1)), false));
        assert!(
            matches!(n, Next::Stop(StopReason::NeedsHuman, ref m) if m.contains("out of quota")),
            "{n:?}"
        );
    }

    #[test]
    fn auth_stops_and_others_continue() {
        assert!(matches!(
            decide(&sit(ErrorClass::Auth, None, true)),
            Next::Stop(StopReason::NeedsHuman, _)
        ));
        assert_eq!(
            decide(&sit(ErrorClass::PermissionDenied, None, false)),
            Next::Continue
        );
        assert_eq!(
            decide(&sit(ErrorClass::MaxTurns, None, false)),
            Next::Continue
        );
        assert_eq!(
            decide(&sit(ErrorClass::ContextOverflow, None, false)),
            Next::Continue
        );
        assert_eq!(seconds_until(RetryAfter::At(5), 10), 0);
    }
}
