//! Escalation on evidence (stories mode's `[routing]`): when an iteration's gates fail the
//! same way for `plateau_iterations` iterations in a row, the loop moves to the next model
//! tier, once per plateau, never on a timer. The signature of a failure is the set of failing
//! gates (a story's criteria are its gates) with their exit codes; an iteration whose gates
//! did not run (no completion claimed) neither counts nor breaks the run of same failures; one
//! whose gates all passed, or a different failure, starts it over.

use super::gates::GateOutcome;
use super::{Agent, Engine, EngineError};
use crate::events::EventBody;

/// A model tier the loop may move up to: its name and its agents (the first in use, the rest
/// its fallbacks on a usage limit).
pub struct Tier {
    pub name: String,
    pub agents: Vec<Agent>,
}

/// The tiers above the loop's own, in the order it moves up through them.
pub struct Escalation {
    /// Same failures in a row before a move; 0 never moves.
    pub plateau_iterations: u32,
    pub tiers: Vec<Tier>,
}

/// The failure being repeated, and how many iterations in a row it was.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Plateau {
    signature: Option<String>,
    count: u32,
}

/// `AC-1:1,tests:101`: the failing gates and how each failed, in a stable order.
pub(super) fn signature(gates: &[GateOutcome]) -> Option<String> {
    if gates.is_empty() {
        return None;
    }
    let mut failing: Vec<String> = gates
        .iter()
        .filter(|g| !g.passed)
        .map(|g| match (g.timed_out, g.exit_code) {
            (true, _) => format!("{}:timeout", g.name),
            (false, Some(c)) => format!("{}:{c}", g.name),
            (false, None) => format!("{}:signal", g.name),
        })
        .collect();
    failing.sort();
    Some(failing.join(","))
}

impl Plateau {
    /// Iteration's gates seen; `true` when the same failure has now lasted `limit` iterations.
    pub(super) fn observe(&mut self, sig: Option<String>, limit: u32) -> bool {
        let Some(sig) = sig else {
            return false;
        };
        if sig.is_empty() {
            *self = Plateau::default();
            return false;
        }
        if self.signature.as_deref() == Some(sig.as_str()) {
            self.count += 1;
        } else {
            *self = Plateau {
                signature: Some(sig),
                count: 1,
            };
        }
        limit > 0 && self.count >= limit
    }

    pub(super) fn what(&self) -> &str {
        self.signature.as_deref().unwrap_or("")
    }
}

impl Engine {
    /// After iteration `n`'s gates: move to the next tier when the same failure lasted
    /// `plateau_iterations` iterations, recorded with its reason (`story.escalated`).
    pub(super) async fn escalate_if_plateaued(
        &mut self,
        n: u32,
        gates: &[GateOutcome],
    ) -> Result<(), EngineError> {
        let Some(esc) = self.escalation.as_mut() else {
            return Ok(());
        };
        if esc.tiers.is_empty()
            || !self
                .plateau
                .observe(signature(gates), esc.plateau_iterations)
        {
            return Ok(());
        }
        let tier = esc.tiers.remove(0);
        let reason = format!(
            "the same failing checks ({}) for {} iterations",
            self.plateau.what(),
            esc.plateau_iterations
        );
        let from = self.agent_label();
        self.agents = tier.agents;
        self.current = 0;
        self.run.backend = self.agents[0].backend.name().to_string();
        self.run.model = self.agents[0].model.clone();
        self.plateau = Plateau::default();
        let ev = self.event(EventBody::Escalated {
            iteration: n,
            from,
            to: self.agent_label(),
            tier: tier.name,
            reason,
        });
        self.save_run(std::slice::from_ref(&ev), false).await?;
        self.emit(&[ev]);
        Ok(())
    }

    /// The model the agent's stream says it ran on, against the one asked for: a different
    /// one is said once per model (an alias the stream names in full, `sonnet` for
    /// `claude-sonnet-4-5-20250929`, is not different). What is recorded is what ran.
    pub(super) async fn tell_model_used(
        &mut self,
        n: u32,
        reported: Option<&str>,
    ) -> Result<(), EngineError> {
        let asked = self.agents[self.current].model.clone();
        let (Some(asked), Some(ran)) = (asked, reported) else {
            return Ok(());
        };
        if ran.contains(asked.as_str()) || self.acct.models_told.iter().any(|m| m == ran) {
            return Ok(());
        }
        self.acct.models_told.push(ran.to_string());
        let message = format!(
            "iteration {n}: model {asked} was asked for, the agent reports it ran {ran}: \
             recorded as {ran}"
        );
        self.record(EventBody::Warning { message }).await
    }

    /// `backend:model` of the agent in use (`backend` alone without a model).
    fn agent_label(&self) -> String {
        let a = &self.agents[self.current];
        match &a.model {
            Some(m) => format!("{}:{m}", a.backend.name()),
            None => a.backend.name().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::GateWhen;

    fn gate(name: &str, passed: bool, code: i32) -> GateOutcome {
        GateOutcome {
            name: name.into(),
            passed,
            when: GateWhen::Complete,
            exit_code: Some(code),
            timed_out: false,
            tail: String::new(),
        }
    }

    #[test]
    fn the_same_failure_for_the_limit_escalates_and_only_then() {
        let mut p = Plateau::default();
        let fail = || signature(&[gate("AC-1", false, 1), gate("AC-2", true, 0)]);
        assert!(!p.observe(fail(), 3));
        // An iteration without gates neither counts nor breaks the run.
        assert!(!p.observe(None, 3));
        assert!(!p.observe(fail(), 3));
        assert!(p.observe(fail(), 3));
    }

    #[test]
    fn a_different_failure_or_a_green_one_starts_over() {
        let mut p = Plateau::default();
        assert!(!p.observe(signature(&[gate("AC-1", false, 1)]), 2));
        assert!(!p.observe(signature(&[gate("AC-1", false, 2)]), 2));
        assert!(!p.observe(signature(&[gate("AC-1", true, 0)]), 2));
        assert!(!p.observe(signature(&[gate("AC-1", false, 2)]), 2));
        assert!(p.observe(signature(&[gate("AC-1", false, 2)]), 2));
        assert!(!Plateau::default().observe(signature(&[gate("AC-1", false, 2)]), 0));
    }
}
