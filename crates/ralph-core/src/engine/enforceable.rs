//! A cap that cannot be enforced is never silent: an agent that reports neither cost nor
//! tokens cannot be held to a cost or token cap, so the run is refused at start (exit 2) unless
//! `budget.allow_unenforced` accepts that, with a warning once; and an iteration of an agent
//! that should report usage but did not is said once while a cap depends on it.

use ralph_agents::AgentOutcome;

use super::{Agent, Engine, EngineError};
use crate::events::EventBody;
use crate::settings::Limits;

/// The caps set, as `key (flag)` for messages.
fn caps_set(l: &Limits) -> Vec<&'static str> {
    [
        (l.max_cost_usd.is_some(), "budget.max_cost_usd (--max-cost)"),
        (l.max_tokens.is_some(), "budget.max_tokens (--max-tokens)"),
        (l.daily_usd.is_some(), "budget.daily_usd"),
        (l.monthly_usd.is_some(), "budget.monthly_usd"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect()
}

/// The way out of [`unenforced`], for the refusal.
pub const UNENFORCED_HINT: &str = "use an agent whose output reports usage (claude, codex, \
     gemini, opencode, copilot, or a custom command with such an agent.output), remove the cap, \
     or set allow_unenforced = true under [budget] in ralph.toml to run with only the iteration \
     and time limits";

/// The problem with the caps and the agents, if any cap is set that an agent cannot be held
/// to.
pub fn unenforced(l: &Limits, agents: &[Agent]) -> Option<String> {
    let caps = caps_set(l);
    let blind: Vec<&str> = agents
        .iter()
        .filter(|a| !a.backend.usage_in_output())
        .map(|a| a.backend.name())
        .collect();
    if caps.is_empty() || blind.is_empty() {
        return None;
    }
    let custom = if blind.contains(&"custom") {
        " (a custom command is read by its agent.output parser; text and cursor-stream-json \
         carry no usage)"
    } else {
        ""
    };
    Some(format!(
        "{} cannot be enforced: the {} agent reports neither cost nor tokens{custom}, so ralph \
         could never count what it spends",
        join(&caps),
        join(&blind),
    ))
}

fn join(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Refuse to start with caps no agent of the run can be held to, unless the user accepted that.
pub(super) fn check_at_start(l: &Limits, agents: &[Agent]) -> Result<(), EngineError> {
    match unenforced(l, agents) {
        Some(problem) if !l.allow_unenforced => Err(EngineError::UnenforcedCap(format!(
            "{problem}; {UNENFORCED_HINT}"
        ))),
        _ => Ok(()),
    }
}

impl Engine {
    /// The loud warning of caps accepted unenforced (`budget.allow_unenforced`), once a session.
    pub(super) fn warn_unenforced_caps(&mut self) {
        if let Some(problem) = unenforced(&self.settings.limits, &self.agents) {
            self.warn(format!(
                "{problem}; running anyway because budget.allow_unenforced = true: only the \
                 iteration and time limits stop this run"
            ));
        }
    }

    /// An agent that should report usage reported none for this call while a cost or token cap
    /// counts on it: said once a run.
    pub(super) async fn warn_missing_usage(
        &mut self,
        n: u32,
        outcome: &AgentOutcome,
    ) -> Result<(), EngineError> {
        let usage_expected = self.agents[self.current].backend.usage_in_output();
        let silent = outcome.usage.is_none()
            && outcome.cost_usd.is_none()
            && outcome.cost_source != ralph_agents::CostSource::Invalid;
        let caps = caps_set(&self.settings.limits);
        if !usage_expected || !silent || caps.is_empty() || self.acct.missing_usage_warned {
            return Ok(());
        }
        self.acct.missing_usage_warned = true;
        let backend = self.agents[self.current].backend.name();
        let message = format!(
            "iteration {n}: the {backend} agent reported neither cost nor tokens this time (no \
             usage in its output): the call is recorded as unknown and {} cannot count it; \
             said once",
            join(&caps)
        );
        self.record(EventBody::Warning { message }).await
    }
}
