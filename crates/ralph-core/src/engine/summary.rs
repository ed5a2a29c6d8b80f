//! Notes on earlier iterations (failed, blocked and no-change ones), carried in the prompt's
//! volatile part; past `context.notes_max_tokens` the agent is asked, in a separate call, to
//! summarise them. The call is accounted like an iteration: cost and tokens count toward the
//! run's totals, its budgets and the ledger.

use std::fs;

use super::agent_call::{CallKind, CallSpec};
use super::decision::{gate_verdict, Facts};
use super::gates::GateOutcome;
use super::outcome::Outcome;
use super::{io_err, Engine, EngineError, Stop};
use crate::events::EventBody;
use crate::notes;
use crate::process::EndReason;

impl Engine {
    /// Add this iteration's note, if it deserves one (healthy iterations add nothing).
    pub(super) fn record_note(
        &mut self,
        n: u32,
        facts: &Facts,
        outcome: &Outcome,
        gates: &[GateOutcome],
    ) {
        let failed_gates: Vec<(String, String)> = gates
            .iter()
            .filter(|g| !g.passed)
            .map(|g| (g.name.clone(), gate_verdict(g)))
            .collect();
        let error = outcome.agent.error.map(|c| {
            (
                c.as_str(),
                outcome.agent.error_message.as_deref().unwrap_or(""),
            )
        });
        if let Some(note) = notes::note_for(n, facts.outcome_name(), error, &failed_gates) {
            self.run.notes = Some(notes::append(self.run.notes.as_deref(), &note));
        }
    }

    /// Summarise the notes when they outgrew `context.notes_max_tokens`.
    pub(super) async fn summarise_notes_if_due(
        &mut self,
        n: u32,
    ) -> Result<Option<Stop>, EngineError> {
        let size = self.run.notes.as_deref().map_or(0, notes::estimate_tokens);
        if size <= self.settings.notes_max_tokens {
            return Ok(None);
        }
        self.summarise_notes(n).await
    }

    /// Ask the agent (`context.summary_model` if set) to summarise the notes, and keep the
    /// summary only if it is shorter; otherwise drop the oldest notes.
    async fn summarise_notes(&mut self, n: u32) -> Result<Option<Stop>, EngineError> {
        let Some(before) = self.run.notes.clone() else {
            return Ok(None);
        };
        let dir = self.iteration_dir(n).join("summary");
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let prompt = notes::summary_prompt(&before, self.settings.notes_max_tokens);
        let prompt_path = dir.join("prompt.md");
        fs::write(&prompt_path, &prompt).map_err(io_err("write", &prompt_path))?;
        let model = self
            .settings
            .summary_model
            .clone()
            .or_else(|| self.agents[self.current].model.clone());
        let run_id = self.run.id.clone();
        let spec = CallSpec::new(&run_id, n, CallKind::Summary, &prompt, &dir);
        let call = match self.call_agent(&spec, model.clone()).await? {
            Ok(call) => call,
            Err(stop) => return Ok(Some(stop)),
        };
        if let EndReason::Control(c) = call.finished.reason {
            return Ok(Some(super::decision::control_stop(c)));
        }
        let outcome = call.agent;
        let summary = if outcome.error.is_none() {
            notes::accept_summary(&before, &outcome.final_text)
        } else {
            None
        };
        let accepted = summary.is_some();
        let after = summary.unwrap_or_else(|| self.drop_oldest_notes(&before));
        self.add_to_totals(outcome.cost_usd, outcome.usage);
        if let Some(plan) = &self.handles.budget {
            plan.add(outcome.cost_usd, outcome.usage);
        }
        self.run.notes = Some(after.clone());
        self.touch();
        let call = ralph_store::SideCall {
            after_iteration: n,
            kind: CallKind::Summary.as_str().to_string(),
            ts: self.now(),
            backend: self.run.backend.clone(),
            model: outcome.model.clone().or(model),
            cost_usd: outcome.cost_usd,
            cost_source: outcome.cost_source.as_str().to_string(),
            tokens: outcome.usage,
        };
        let ev = self.event(EventBody::NotesSummarised {
            iteration: n,
            accepted,
            tokens_before: notes::estimate_tokens(&before),
            tokens_after: notes::estimate_tokens(&after),
            cost_usd: outcome.cost_usd,
        });
        // Its own key in the ledger, next to the iteration it followed.
        let entry = self.ledger_entry(
            &call.ts,
            ralph_store::ledger::SIDE_CALL_ITERATION_BASE + n,
            &call.model,
            call.cost_usd,
            &call.cost_source,
            call.tokens,
        );
        self.record_in_ledger(entry).await;
        let write = ralph_store::Write::CommitSideCall {
            run: self.run.clone(),
            call,
            events: vec![ev.to_record()],
        };
        self.handles.store.write(write).await?;
        self.emit(&[ev]);
        Ok(None)
    }

    /// Keep the notes bounded whatever the agent did: the newest lines that fit.
    fn drop_oldest_notes(&self, notes_text: &str) -> String {
        let mut lines: Vec<&str> = notes_text.lines().collect();
        while lines.len() > 1
            && notes::estimate_tokens(&lines.join("\n")) > self.settings.notes_max_tokens
        {
            lines.remove(0);
        }
        lines.join("\n")
    }
}
