//! What an iteration cost and used, and where that is written: the price (the agent's own
//! figure, else the price table), the run's totals, the iteration record, the machine-wide
//! ledger entry (built in one place for iterations and side calls), budget alerts, and the
//! durable commit.

use ralph_agents::{AgentOutcome, CostSource};
use ralph_store::{IterationRecord, LedgerEntry, Store, StoreError, Tokens, Write};
use ralph_types::plausible::{
    plausible_cost, plausible_tokens, MAX_CALL_COST_USD, MAX_CALL_TOKENS,
};

use super::decision::Facts;
use super::gates::GateOutcome;
use super::guardrails::After;
use super::outcome::Outcome;
use super::prompt::PreparedPrompt;
use super::{Engine, EngineError, Stop};
use crate::budget::Hold;
use crate::events::{EventBody, RunEvent};

/// Context use (percent of the window) from which ralph warns.
const CONTEXT_WARN_PCT: f64 = 80.0;

/// What earlier sessions of a resumed run contribute.
pub(super) struct History {
    max_cost: f64,
    max_tokens: u64,
    cost_unknown: u32,
    /// The run's last committed iteration, when its outcome was `completed`: the work was
    /// done, and only the run's own ending was not written (ralph died in between).
    pub completed_at: Option<u32>,
}

impl History {
    pub fn load(store: &Store, run_id: &str) -> Result<History, StoreError> {
        let mut h = History {
            max_cost: 0.0,
            max_tokens: 0,
            cost_unknown: store.unknown_cost_iterations(run_id)?,
            completed_at: None,
        };
        let iterations = store.iterations(run_id)?;
        h.completed_at = iterations
            .iter()
            .max_by_key(|it| it.n)
            .filter(|it| it.outcome == "completed")
            .map(|it| it.n);
        for it in iterations {
            // A figure recorded before ralph judged them must not become the estimate.
            let cost = it.cost_usd.filter(|c| plausible_cost(*c));
            h.max_cost = h.max_cost.max(cost.unwrap_or(0.0));
            let tokens = it.tokens.filter(plausible_tokens);
            h.max_tokens = h.max_tokens.max(tokens.map_or(0, |t| t.total()));
        }
        Ok(h)
    }
}

/// The run's accounting state.
pub(super) struct Accounting {
    /// The most one committed iteration cost, and used in tokens: the estimate of the next one
    /// for `stop_before_exceeding`.
    pub max_iteration_cost: f64,
    pub max_iteration_tokens: u64,
    /// Committed iterations with no known cost (shown, never passed off as $0).
    pub cost_unknown: u32,
    /// `budget.alert_at` fractions already announced, per scope.
    pub alerted: Vec<(&'static str, f64)>,
    /// Backends already reported as not reporting usage (said once per run).
    pub usage_warned: Vec<&'static str>,
    /// Models already reported as missing from the price table (said once per run).
    pub price_warned: Vec<String>,
    /// The project in the ledger: its canonical root, the same for every loop and call.
    pub project: String,
    /// A ledger write failed while a daily or monthly cap depends on it: stop before the next
    /// iteration.
    pub ledger_failure: Option<Stop>,
    ledger_warned: bool,
    /// This loop's reservation in the plan budget for the iteration in progress.
    pub plan_hold: Option<Hold>,
    /// An iteration without the usage its agent should report was announced (once a run).
    pub missing_usage_warned: bool,
    /// The models an agent ran on although another was asked for, each said once.
    pub models_told: Vec<String>,
}

impl Accounting {
    pub fn new(h: History, project: String) -> Accounting {
        Accounting {
            max_iteration_cost: h.max_cost,
            max_iteration_tokens: h.max_tokens,
            cost_unknown: h.cost_unknown,
            alerted: Vec::new(),
            usage_warned: Vec::new(),
            price_warned: Vec::new(),
            project,
            ledger_failure: None,
            ledger_warned: false,
            plan_hold: None,
            missing_usage_warned: false,
            models_told: Vec::new(),
        }
    }
}

/// The project's key in the ledger (and in `ralph cost --by project`).
pub(super) fn project_key(root: &std::path::Path) -> String {
    std::fs::canonicalize(root)
        .unwrap_or_else(|_| root.to_path_buf())
        .display()
        .to_string()
}

/// Peak context use as a percentage of the window, to one decimal, when both are known.
pub(super) fn context_pct(tokens: Option<u64>, window: Option<u64>) -> Option<f64> {
    match (tokens, window) {
        (Some(t), Some(w)) if w > 0 => Some((t as f64 * 1000.0 / w as f64).round() / 10.0),
        _ => None,
    }
}

/// A finished iteration, ready to be accounted and committed.
#[derive(Clone, Copy)]
pub(super) struct Done<'a> {
    pub n: u32,
    pub prompt: &'a PreparedPrompt,
    pub outcome: &'a Outcome,
    pub gates: &'a [GateOutcome],
    pub after: &'a After,
    pub facts: &'a Facts,
}

impl Engine {
    /// Cost from the price table when the agent reported tokens but no cost. A model missing
    /// from the table leaves the cost unknown, and ralph says so once per model.
    pub(super) async fn price(
        &mut self,
        outcome: &mut AgentOutcome,
        model: Option<String>,
    ) -> Result<(), EngineError> {
        if outcome.cost_usd.is_some() {
            return Ok(());
        }
        let Some(usage) = outcome.usage else {
            return Ok(());
        };
        if let Some(cost) = model
            .as_deref()
            .and_then(|m| self.settings.pricing.cost(m, &usage))
        {
            outcome.cost_usd = Some(cost);
            outcome.cost_source = CostSource::Computed;
            return Ok(());
        }
        let key = model.clone().unwrap_or_default();
        if self.acct.price_warned.contains(&key) {
            return Ok(());
        }
        let message = match &model {
            Some(m) => format!(
                "no price known for the model {m}: its cost is recorded as unknown; add \
                 [pricing.\"{m}\"] with input and output (USD per million tokens) to ralph.toml"
            ),
            None => "the agent did not say which model it used, so its tokens cannot be priced; \
                     set agent.model (-m)"
                .to_string(),
        };
        self.acct.price_warned.push(key);
        self.record(EventBody::Warning { message }).await
    }

    /// Reject usage no call can have (`ralph_types::plausible`): the call's cost and tokens
    /// become invalid, counted nowhere, and ralph says so for every call it happens to.
    pub(super) async fn reject_implausible(
        &mut self,
        outcome: &mut AgentOutcome,
    ) -> Result<(), EngineError> {
        let Some(bad) = ralph_agents::reject_implausible_usage(outcome) else {
            return Ok(());
        };
        let message = format!(
            "the agent reported {bad}, which no agent call can cost or use (ralph accepts \
             ${MAX_CALL_COST_USD} and {MAX_CALL_TOKENS} tokens at most a call, never a negative \
             or non-finite figure): recorded as invalid and left out of the totals, the \
             machine-wide ledger and every budget"
        );
        self.record(EventBody::Warning { message }).await
    }

    /// Add a call's cost and tokens to the run's totals (and the plan budget, through
    /// `hold`); a cost nobody knows is counted as unknown, never as $0.
    pub(super) fn add_to_totals(&mut self, cost: Option<f64>, tokens: Option<Tokens>) {
        if let Some(t) = tokens {
            self.run.tokens += t;
        }
        match cost.filter(|c| c.is_finite() && *c >= 0.0) {
            Some(c) => self.run.cost_usd += c,
            None => self.acct.cost_unknown += 1,
        }
    }

    /// Account for the iteration and commit it: totals, the iteration record and its events in
    /// one durable transaction, the ledger entry, budget alerts. Then show the events.
    pub(super) async fn commit_iteration(
        &mut self,
        done: Done<'_>,
        mut events: Vec<RunEvent>,
    ) -> Result<(), EngineError> {
        let (n, agent) = (done.n, &done.outcome.agent);
        let usage = agent.usage;
        self.add_to_totals(agent.cost_usd, usage);
        self.run.iteration = n;
        self.run.current_iteration = None;
        if let Some(m) = &agent.model {
            self.run.model = Some(m.clone());
        }
        self.touch();
        let record = self.iteration_record(&done);
        let context_pct = context_pct(record.context_tokens, record.context_window);
        events.push(
            self.event(EventBody::IterationFinished {
                iteration: n,
                max_iterations: self.settings.limits.max_iterations,
                backend: self.run.backend.clone(),
                outcome: record.outcome.clone(),
                duration_s: record.duration_s,
                cost_usd: agent.cost_usd,
                cost_source: match (agent.cost_usd, agent.cost_source) {
                    (Some(_), s) | (None, s @ CostSource::Invalid) => s,
                    (None, _) => CostSource::Unknown,
                }
                .as_str()
                .to_string(),
                tokens: usage,
                files_changed: record.files_changed,
                insertions: record.insertions,
                deletions: record.deletions,
                error_class: record.error_class.clone(),
                error_message: record.error_message.clone(),
                total_cost_usd: self.run.cost_usd,
                total_tokens: self.run.tokens,
                context_pct,
                unrestorable: done.after.unrestorable.clone(),
                sandbox: self.settings.sandbox.agents.label(),
            }),
        );
        if let (Some(pct), Some(window)) = (context_pct, record.context_window) {
            if pct >= CONTEXT_WARN_PCT {
                events.push(self.event(EventBody::Warning {
                    message: format!(
                        "iteration {n} filled {pct:.0}% of the model's {window}-token context \
                         window; keep the prompt and the agent's reading smaller, or the agent \
                         will start forgetting"
                    ),
                }));
            }
        }
        // Before the alerts, so today's and this month's totals include this iteration. Safe
        // before the commit: entries are keyed by (project, run, iteration), so the replay of an
        // iteration a crash cut short overwrites its entry instead of counting it twice.
        let entry = self.ledger_entry(
            &record.finished_at,
            n,
            &record.model,
            agent.cost_usd,
            &record.cost_source,
            usage,
        );
        self.record_in_ledger(entry).await;
        self.acct.max_iteration_cost = self
            .acct
            .max_iteration_cost
            .max(agent.cost_usd.unwrap_or(0.0));
        self.acct.max_iteration_tokens = self
            .acct
            .max_iteration_tokens
            .max(usage.map_or(0, |u| u.total()));
        let spend = self.ledger_spend_for_caps().await;
        for (scope, fraction, spent, cap) in self.new_alerts(spend.unwrap_or(Ok((0.0, 0.0)))) {
            events.push(self.event(EventBody::BudgetAlert {
                scope: scope.to_string(),
                fraction,
                spent,
                cap,
            }));
        }
        let write = Write::CommitIteration {
            run: self.run.clone(),
            iteration: Box::new(record),
            events: events.iter().map(RunEvent::to_record).collect(),
        };
        self.handles.store.write(write).await?;
        if let Some(hold) = self.acct.plan_hold.take() {
            hold.settle(agent.cost_usd, usage);
        }
        self.emit(&events);
        Ok(())
    }

    fn iteration_record(&self, d: &Done<'_>) -> IterationRecord {
        let agent = &d.outcome.agent;
        let usage = agent.usage;
        let model = agent
            .model
            .clone()
            .or_else(|| self.agents[self.current].model.clone());
        // The fullest the context got, against the model's window (the agent's own figure,
        // else the price table's).
        let context_tokens = agent.context_tokens.or_else(|| usage.map(|u| u.context()));
        let context_window = agent.context_window.or_else(|| {
            model
                .as_deref()
                .and_then(|m| self.settings.pricing.get(m))
                .and_then(|p| p.context_window)
        });
        let diff = d.after.diff.as_ref();
        IterationRecord {
            run_id: self.run.id.clone(),
            n: d.n,
            started_at: d.prompt.started_at.clone(),
            finished_at: self.now(),
            duration_s: d.outcome.finished.duration.as_secs_f64(),
            backend: self.run.backend.clone(),
            model,
            outcome: d.facts.outcome_name().to_string(),
            error_class: agent.error.map(|e| e.as_str().to_string()),
            error_message: agent.error_message.clone(),
            exit_code: d.outcome.finished.exit.code,
            signal: d.outcome.finished.exit.signal,
            cost_usd: agent.cost_usd,
            cost_source: agent.cost_source.as_str().to_string(),
            tokens: usage,
            files_changed: diff.map(|d| d.files_changed),
            insertions: diff.map(|d| d.insertions),
            deletions: diff.map(|d| d.deletions),
            checkpoint: d.after.checkpoint_ref.clone(),
            completion_claimed: d.outcome.claimed,
            gates_passed: (!d.gates.is_empty()).then(|| d.gates.iter().all(|g| g.passed)),
            output_lines: agent.lines,
            unknown_lines: agent.unknown_lines + agent.malformed_lines,
            prompt_sha256: Some(d.prompt.user_sha256.clone()),
            prompt_bytes: Some(d.prompt.text.len() as u64),
            user_prompt_bytes: Some(d.prompt.user_bytes),
            context_tokens,
            context_window,
        }
    }

    /// The ledger entry of a call: an iteration (`key` = its number) or a side call (`key` =
    /// `SIDE_CALL_ITERATION_BASE + n`), with the one project key.
    pub(super) fn ledger_entry(
        &self,
        ts: &str,
        key: u32,
        model: &Option<String>,
        cost_usd: Option<f64>,
        cost_source: &str,
        tokens: Option<Tokens>,
    ) -> LedgerEntry {
        LedgerEntry {
            ts: ts.to_string(),
            project: self.acct.project.clone(),
            run_id: self.run.id.clone(),
            iteration: key,
            backend: self.run.backend.clone(),
            model: model.clone(),
            cost_usd,
            cost_source: cost_source.to_string(),
            tokens,
        }
    }

    /// Write an entry to the machine-wide ledger. When a daily or monthly cap depends on it, a
    /// failure stops the run before its next iteration (the iteration itself is still
    /// committed); otherwise it is a warning, said once.
    pub(super) async fn record_in_ledger(&mut self, entry: LedgerEntry) {
        if self.handles.ledger.is_none() {
            return;
        }
        let Err(e) = self.handles.store.write(Write::Ledger(entry)).await else {
            return;
        };
        let e = e.to_string();
        let l = &self.settings.limits;
        if l.daily_usd.is_some() || l.monthly_usd.is_some() {
            self.acct.ledger_failure = Some(self.ledger_stop(&e));
        } else if !self.acct.ledger_warned {
            self.acct.ledger_warned = true;
            self.warn(format!(
                "the machine-wide cost ledger could not be written: {e}"
            ));
        }
    }

    /// Every (scope, fraction) of `budget.alert_at` the spend has reached; `machine` is the
    /// ledger's spend today and this month (unreadable, it raises no alert: the limits check
    /// stops the run instead).
    pub(super) fn due_alerts(
        &self,
        machine: Result<(f64, f64), String>,
    ) -> Vec<(&'static str, f64)> {
        self.alert_levels(machine.unwrap_or((0.0, 0.0)))
            .into_iter()
            .flat_map(|(scope, spent, cap)| {
                self.settings
                    .limits
                    .alert_at
                    .iter()
                    .filter(move |f| spent >= cap * **f)
                    .map(move |f| (scope, *f))
            })
            .collect()
    }

    /// (scope, spent, cap) for every scope with a cap.
    fn alert_levels(&self, (day, month): (f64, f64)) -> Vec<(&'static str, f64, f64)> {
        let l = &self.settings.limits;
        [
            ("run_cost", self.run.cost_usd, l.max_cost_usd),
            (
                "run_tokens",
                self.run.tokens.total() as f64,
                l.max_tokens.map(|t| t as f64),
            ),
            ("daily", day, l.daily_usd),
            ("monthly", month, l.monthly_usd),
        ]
        .into_iter()
        .filter_map(|(scope, spent, cap)| cap.filter(|c| *c > 0.0).map(|c| (scope, spent, c)))
        .collect()
    }

    /// Alerts due now that were not announced yet: (scope, fraction, spent, cap).
    fn new_alerts(
        &mut self,
        machine: Result<(f64, f64), String>,
    ) -> Vec<(&'static str, f64, f64, f64)> {
        let levels = self.alert_levels(machine.clone().unwrap_or((0.0, 0.0)));
        let mut out = Vec::new();
        for (scope, fraction) in self.due_alerts(machine) {
            if self.acct.alerted.contains(&(scope, fraction)) {
                continue;
            }
            self.acct.alerted.push((scope, fraction));
            if let Some((_, spent, cap)) = levels.iter().find(|(s, ..)| *s == scope) {
                out.push((scope, fraction, *spent, *cap));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_percentages() {
        assert_eq!(context_pct(Some(160_000), Some(200_000)), Some(80.0));
        assert_eq!(context_pct(Some(1), Some(3)), Some(33.3));
        assert_eq!(context_pct(Some(1), Some(0)), None);
        assert_eq!(context_pct(None, Some(10)), None);
    }
}
