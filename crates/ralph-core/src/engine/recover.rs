//! The spend of an iteration ralph did not live to account (kill -9, a crash, an interrupt
//! before the commit) is recovered on resume from its artifacts instead of being dropped.
//!
//! The unfinished iteration `n` (one past the last committed) runs again on resume, and its
//! `output.log` would be overwritten. So before anything runs, the output is moved aside as
//! `output.log.killed-<session>`, parsed with the agent's parser, and what it reported (the
//! agent's `result` line with its cost and tokens) is recorded as a side call of kind
//! `interrupted.<session>` in the run's database and under its own key in the ledger
//! (`ralph_store::ledger::recovered_call_key`). Recording is idempotent: a side call already
//! recorded is skipped, and a crash between the move and the record is caught up on the next
//! resume, which finds the moved file again.

use std::fs;
use std::path::{Path, PathBuf};

use ralph_agents::{AgentOutcome, ExitInfo};
use ralph_store::{SideCall, Write};

use super::agent_call::{context, CallKind, CallSpec};
use super::{io_err, Engine, EngineError};
use crate::events::EventBody;

const OUTPUT: &str = "output.log";
const KILLED: &str = "output.log.killed-";

/// The moved-aside outputs in `dir`, with the session that moved each.
fn killed_outputs(dir: &Path) -> Vec<(u32, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let session = name.strip_prefix(KILLED)?.parse().ok()?;
            Some((session, e.path()))
        })
        .collect();
    out.sort();
    out
}

impl Engine {
    /// On resume: record what the unfinished iteration's agent reported before ralph died.
    pub(super) async fn recover_unaccounted_spend(&mut self) -> Result<(), EngineError> {
        if !self.resumed() {
            return Ok(());
        }
        let n = self.run.iteration + 1;
        let dir = self.iteration_dir(n);
        let out = dir.join(OUTPUT);
        if out.is_file() {
            let to = dir.join(format!("{KILLED}{}", self.run.sessions));
            fs::rename(&out, &to).map_err(io_err("move aside", &out))?;
        }
        for (session, path) in killed_outputs(&dir) {
            self.recover_one(n, session, &path).await?;
        }
        Ok(())
    }

    async fn recover_one(&mut self, n: u32, session: u32, path: &Path) -> Result<(), EngineError> {
        let kind = format!("interrupted.{session}");
        let after = n - 1;
        let (run_id, k) = (self.run.id.clone(), kind.clone());
        let recorded = self
            .handles
            .store
            .read(move |s| s.side_call_recorded(&run_id, after, &k))?;
        if recorded {
            return Ok(());
        }
        let mut outcome = self.parse_artifact(n, path)?;
        let model = outcome
            .model
            .clone()
            .or_else(|| self.agents[self.current].model.clone());
        self.reject_implausible(&mut outcome).await?;
        self.price(&mut outcome, model.clone()).await?;
        self.reject_implausible(&mut outcome).await?;
        if outcome.cost_usd.is_none() && outcome.usage.is_none() {
            // Nothing reported before it died: nothing ralph can count.
            return Ok(());
        }
        self.add_to_totals(outcome.cost_usd, outcome.usage);
        if let Some(plan) = &self.handles.budget {
            plan.add(outcome.cost_usd, outcome.usage);
        }
        self.touch();
        // When the agent wrote it, so the day it counts for is the day it was spent.
        let ts = fs::metadata(path)
            .and_then(|m| m.modified())
            .map(|t| {
                chrono::DateTime::<chrono::Utc>::from(t)
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            })
            .unwrap_or_else(|_| self.now());
        let call = SideCall {
            after_iteration: after,
            kind,
            ts,
            backend: self.run.backend.clone(),
            model,
            cost_usd: outcome.cost_usd,
            cost_source: outcome.cost_source.as_str().to_string(),
            tokens: outcome.usage,
        };
        let entry = self.ledger_entry(
            &call.ts,
            ralph_store::ledger::recovered_call_key(n, session),
            &call.model,
            call.cost_usd,
            &call.cost_source,
            call.tokens,
        );
        self.record_in_ledger(entry).await;
        let spent = match outcome.cost_usd {
            Some(c) => format!("${c:.4}"),
            None => "an unknown cost".to_string(),
        };
        let tokens = outcome.usage.map_or(0, |t| t.total());
        let ev = self.event(EventBody::Warning {
            message: format!(
                "iteration {n} was cut short before ralph could account it (ralph was killed or \
                 interrupted); its agent had reported {spent} and {tokens} tokens: recorded as \
                 spent (in the totals, `ralph cost` and the machine-wide ledger), and iteration \
                 {n} runs again"
            ),
        });
        let write = Write::CommitSideCall {
            run: self.run.clone(),
            call,
            events: vec![ev.to_record()],
        };
        self.handles.store.write(write).await?;
        self.emit(&[ev]);
        Ok(())
    }

    /// What the agent's output in `path` reported, read with the parser of the agent the run
    /// starts with (the one that ran it unless a fallback had taken over).
    fn parse_artifact(&self, n: u32, path: &Path) -> Result<AgentOutcome, EngineError> {
        let text = fs::read(path).map_err(io_err("read", path))?;
        let dir = self.iteration_dir(n);
        let spec = CallSpec::new(&self.run.id, n, CallKind::Iteration, "", &dir);
        let prompt_path = spec.prompt_path();
        let model = self.agents[self.current].model.clone();
        let backend = &self.agents[self.current].backend;
        let mut parser = backend.parser_for(&context(
            &self.settings,
            model.as_deref(),
            &spec,
            &prompt_path,
        ));
        let mut scratch = Vec::new();
        for line in text.split(|b| *b == b'\n') {
            scratch.clear();
            parser.line(line, false, &mut scratch);
        }
        let killed = ExitInfo {
            code: None,
            signal: Some(9),
        };
        Ok(parser.finish(killed, ""))
    }
}
