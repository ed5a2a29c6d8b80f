//! The run loop: one iteration = build the prompt, run the agent, read what it did, verify,
//! checkpoint, guard, account, decide. Everything else hangs off the events it emits.
//!
//! This file is the loop; each step lives in its own file, named after it:
//!
//! | step | file |
//! |---|---|
//! | create or resume the run, start and finish it | `lifecycle.rs` |
//! | stop conditions before an iteration (limits, budgets, stop requests) | `limits.rs` |
//! | the prompt, archived | `prompt.rs` |
//! | the agent call: argv/env (shared with `--dry-run`), streaming, the guard | `agent_call.rs` |
//! | what the call's ending means (timeouts, guard trips, interrupts) | `outcome.rs` |
//! | completion gates and iteration gates | `gates.rs` |
//! | checkpoints and the audit log | `checkpoint.rs` |
//! | guardrails after the agent: reverts, protected paths, stuck detection | `guardrails.rs` |
//! | the repository after the agent: `.git` there, its config and refs put back | `git_integrity.rs` |
//! | ralph's own state in `.ralph/`: changes found, restored, the run stopped | `state_guard.rs` |
//! | cost, tokens, the iteration record, the ledger, budget alerts | `accounting.rs` |
//! | what happens next (pure) and the feedback for the next prompt | `decision.rs` |
//! | waits, back-off, shared backend limits, switching agents | `retry.rs` |
//! | the notes summary side call | `summary.rs` |
//!
//! An engine runs on a work root (the project, or a story's worktree) with a run scope (a story
//! id, or none), a cancellation token, and [`Handles`] shared with every other loop of the
//! process: one store writer, the ledger, the plan budget, one limit state per backend.

mod accounting;
mod agent_call;
mod checkpoint;
mod decision;
pub mod enforceable;
mod escalation;
mod gates;
mod git_integrity;
mod guardrails;
mod index_guard;
mod lifecycle;
mod limits;
mod outcome;
mod prompt;
mod recover;
mod refs_watch;
mod reserve;
mod retry;
mod sandboxed;
mod state_guard;
mod state_watch;
mod summary;
mod uncaptured;

use std::path::{Path, PathBuf};
use std::time::Instant;

use ralph_agents::Backend;
use ralph_git::Git;
use ralph_store::{RunRecord, StoreError, Write};

use crate::cancel::Cancel;
use crate::events::{EventBody, EventSink, RunEvent, StopReason};
use crate::settings::Settings;
use crate::shared::Handles;

pub use agent_call::{agent_command, CallKind, CallSpec};
pub use decision::fmt_duration;
pub use state_guard::STATE_GITIGNORE;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("failed to {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the prompt file {path} can no longer be read: {source}")]
    Prompt {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no agent to run")]
    NoAgent,
    #[error("invalid safety rule: {0}")]
    Guard(#[from] crate::guard::GuardError),
    #[error(
        "budget.daily_usd / budget.monthly_usd need the machine-wide ledger, but neither \
         budget.ledger, RALPH_HOME, XDG_DATA_HOME nor HOME says where it goes"
    )]
    NoLedger,
    /// A cost or token cap no agent of the run can be held to (`enforceable.rs`).
    #[error("{0}")]
    UnenforcedCap(String),
}

impl EngineError {
    /// Usage/config problems exit 2; everything else is ralph's own failure (1).
    pub fn exit_code(&self) -> i32 {
        use ralph_types::exit_codes::{INTERNAL_ERROR, USAGE};
        match self {
            EngineError::Prompt { .. }
            | EngineError::NoLedger
            | EngineError::UnenforcedCap(_)
            | EngineError::Guard(_) => USAGE,
            _ => INTERNAL_ERROR,
        }
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EngineError {
    let path = path.to_path_buf();
    move |source| EngineError::Io {
        action,
        path,
        source,
    }
}

/// How an error that stops the run mid-way is told: a prompt file that went away needs the user
/// (and the run resumes once it is back); anything else is ralph's own failure, resumable too.
fn stop_for_error(e: &EngineError) -> Stop {
    match e {
        EngineError::Prompt { path, source } => Stop::new(
            StopReason::NeedsHuman,
            format!(
                "the prompt file {} can no longer be read ({source}); put it back, then `ralph \
                 run` resumes",
                path.display()
            ),
        ),
        e => Stop::new(
            StopReason::InternalError,
            format!("ralph could not go on: {e}; fix the cause, then `ralph run` resumes"),
        ),
    }
}

/// Why the run ends, and the one line that says so.
#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    pub reason: StopReason,
    pub message: String,
}

impl Stop {
    pub fn new(reason: StopReason, message: impl Into<String>) -> Stop {
        Stop {
            reason,
            message: message.into(),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run: RunRecord,
    pub stop_reason: StopReason,
    pub exit_code: i32,
    pub message: String,
    /// A story's loop whose last iteration ralph committed: that commit, the story branch's
    /// tip (`None`: ask git).
    pub story_head: Option<String>,
}

/// One agent the run may use: the primary first, then `agent.fallback` in order.
pub struct Agent {
    pub backend: Box<dyn Backend>,
    pub model: Option<String>,
}

/// Where a loop runs and whose run it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunScope {
    /// Where the agent and the gates run and what checkpoints capture: the project root, or a
    /// story's worktree.
    pub work_root: PathBuf,
    /// `None` for the single loop; the story id for a story's loop.
    pub story: Option<String>,
    /// Where the run's iteration directories (`NNNN/`) go; `None`: `.ralph/runs/<run-id>/`.
    pub artifacts: Option<PathBuf>,
    /// The plan run a story's loop belongs to (story ids repeat across plan runs). With it,
    /// ralph commits the worktree after every iteration on the story branch, with a
    /// `Ralph-Story: <id>` trailer (STORIES.md rule 2).
    pub plan_run: Option<String>,
    /// The work tree is the clean checkout of this commit (a story's worktree just made):
    /// the run's first checkpoint is that commit's tree, without reading every file.
    pub clean_at: Option<CleanCheckout>,
    /// The repository's git aliases as `Git::aliases` gives them, when the caller read them
    /// already (a story's worker reads them while its worktree is checked out, off the path to
    /// the agent); `None`: the engine reads them.
    pub git_aliases: Option<Vec<(String, String)>>,
}

/// A commit checked out with nothing changed since, and its tree when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanCheckout {
    pub commit: String,
    pub tree: Option<String>,
}

impl RunScope {
    /// The single loop, in the project itself.
    pub fn project(root: &Path) -> RunScope {
        RunScope {
            work_root: root.to_path_buf(),
            story: None,
            artifacts: None,
            plan_run: None,
            clean_at: None,
            git_aliases: None,
        }
    }
}

/// What one loop runs: its settings, agents, scope and repository.
pub struct Loop {
    pub settings: Settings,
    pub agents: Vec<Agent>,
    pub scope: RunScope,
    /// The repository of `scope.work_root` (`None`: not one). Checkpoints are taken when
    /// `settings.checkpoint_every > 0`; `.git`'s config and hooks are watched either way.
    pub git: Option<Git>,
    /// The model tiers to move up through when the same failure repeats (`[routing]`).
    pub escalation: Option<Escalation>,
}

pub use escalation::{Escalation, Tier};

/// One run of the loop. Built by [`Engine::new`], consumed by [`Engine::run`].
pub struct Engine {
    settings: Settings,
    scope: RunScope,
    /// A story's loop resumed after a crash in the middle of this iteration (its changes are
    /// set aside before it runs again: `lifecycle.rs`).
    interrupted: Option<u32>,
    /// A resumed run whose last committed iteration completed it: ralph died before writing
    /// the run's end, and the run ends now as completed instead of running again.
    completed_before: Option<u32>,
    agents: Vec<Agent>,
    /// Index into `agents` of the agent in use.
    current: usize,
    /// The tiers left to move up to, and the failure being repeated.
    escalation: Option<Escalation>,
    plateau: escalation::Plateau,
    git: Option<Git>,
    handles: Handles,
    cancel: Cancel,
    sink: Box<dyn EventSink>,
    run: RunRecord,
    /// `.ralph/` of the project (shared by every loop of the project).
    state_dir: PathBuf,
    /// This run's iteration directories.
    artifacts: PathBuf,
    /// When this session started, for elapsed time (previous sessions are in `elapsed_before`).
    session_start: Instant,
    elapsed_before: f64,
    rng: u64,
    acct: accounting::Accounting,
    guards: guardrails::GuardState,
    audit: checkpoint::Audit,
    state_watch: state_guard::StateWatch,
    /// A clean checkout's first checkpoint being written while the agent starts (see
    /// `checkpoint.rs`), settled when the agent's call returns.
    pending_checkpoint: Option<checkpoint::Pending>,
}

impl Engine {
    pub fn run_id(&self) -> &str {
        &self.run.id
    }

    pub fn resumed(&self) -> bool {
        self.run.sessions > 1
    }

    /// Run to the end: limits first, then an iteration, until one of them says stop. Every
    /// ending, a failure of ralph's own included, is finished the same way: recorded, announced
    /// (`run.finished`, the summary line), with its exit code.
    pub async fn run(mut self) -> Result<RunSummary, EngineError> {
        let stop = match self.drive().await {
            Ok(stop) => stop,
            Err(e) => stop_for_error(&e),
        };
        self.finish(stop).await
    }

    async fn drive(&mut self) -> Result<Stop, EngineError> {
        self.start().await?;
        if let Some(n) = self.completed_before.take() {
            return Ok(Stop::new(
                StopReason::Completed,
                format!(
                    "completed: iteration {n} had finished the work before ralph stopped (the \
                     agent signalled {} and the completion gates passed)",
                    self.settings.completion_marker
                ),
            ));
        }
        loop {
            if let Some(stop) = self.before_iteration().await? {
                return Ok(stop);
            }
            if let Some(stop) = self.iteration().await? {
                return Ok(stop);
            }
        }
    }

    /// One iteration. `Some` ends the run.
    async fn iteration(&mut self) -> Result<Option<Stop>, EngineError> {
        let n = self.run.iteration + 1;
        let prompt = self.prepare_prompt(n)?;
        self.mark_started(n);
        let before = self.snapshot_before();
        let state = self.mark_state(n).await?;

        let model = self.agents[self.current].model.clone();
        let run_id = self.run.id.clone();
        let spec = CallSpec::new(&run_id, n, CallKind::Iteration, &prompt.text, &prompt.dir);
        let called = self.call_agent(&spec, model).await;
        // Before anything looks at the refs or the run's checkpoints again.
        self.settle_checkpoint().await?;
        let call = match called? {
            Ok(call) => call,
            Err(not_started) => return Ok(Some(self.abandon(not_started))),
        };
        let marker = &self.settings.completion_marker;
        let outcome = outcome::classify(call, &self.settings.limits, marker);
        if let Some(stop) = outcome.interrupted.clone() {
            let stop = self.check_state(n, &state).await?.unwrap_or(stop);
            return Ok(Some(self.abandon(stop)));
        }
        let gates = match self.run_gates(n, &prompt.dir, &outcome).await? {
            Ok(gates) => gates,
            Err(stop) => {
                let stop = self.check_state(n, &state).await?.unwrap_or(stop);
                return Ok(Some(self.abandon(stop)));
            }
        };
        // Before ralph's own git and audit writes of this iteration.
        let tampered = self.check_state(n, &state).await?;
        // A claim with every gate green; a revert or a guardrail stop still cancels it.
        let candidate = outcome.claimed && gates.all_passed();
        let mut after = self.after_agent(n, &before, &outcome, candidate);
        if let Some(t) = tampered {
            after.stop = Some(match after.stop.take() {
                Some(s) => Stop::new(StopReason::Safety, format!("{}; {}", s.message, t.message)),
                None => t,
            });
        }
        let facts = decision::Facts {
            completed: candidate && !after.reverted && after.stop.is_none(),
            claimed: outcome.claimed,
            // A guard killed the agent, or a guardrail stopped the run over what it did.
            blocked: outcome.trip.is_some() || (after.stop.is_some() && !after.reverted),
            reverted: after.reverted,
            error: outcome.agent.error,
            files_changed: after.diff.as_ref().map(|d| d.files_changed),
        };

        let next = self.policy(&outcome, facts.completed);
        self.count_failure(&outcome, &next);
        let progress = self.observe_progress(&facts, &outcome, after.stop.is_some());
        let marker = &self.settings.completion_marker;
        let failure = decision::feedback(&outcome.agent, outcome.claimed, &gates.outcomes, marker);
        self.run.feedback =
            decision::compose_feedback(after.feedback.clone(), failure, progress.recovery);
        self.record_note(n, &facts, &outcome, &gates.outcomes);
        if !facts.completed {
            self.escalate_if_plateaued(n, &gates.outcomes).await?;
        }

        let mut events = gates.events.clone();
        events.extend(after.events.iter().cloned());
        events.extend(progress.events);
        let done = accounting::Done {
            n,
            prompt: &prompt,
            outcome: &outcome,
            gates: &gates.outcomes,
            after: &after,
            facts: &facts,
        };
        self.commit_iteration(done, events).await?;

        if !facts.completed {
            if let Some(stop) = self.summarise_notes_if_due(n).await? {
                return Ok(Some(stop));
            }
        }
        let decided = decision::after_iteration(
            &facts,
            after.stop,
            progress.stop,
            outcome.runtime_limit,
            next,
            &self.settings,
            gates.any_completion_gate(),
        );
        self.carry_out(n, decided).await
    }

    fn event(&self, body: EventBody) -> RunEvent {
        RunEvent {
            run_id: self.run.id.clone(),
            story_id: self.scope.story.clone(),
            ts: self.now(),
            body,
        }
    }

    fn emit(&mut self, events: &[RunEvent]) {
        for e in events {
            self.sink.event(e);
        }
    }

    /// Record `body` as an event outside an iteration's commit, then show it. A store that
    /// cannot take it is an error: events are the run's journal.
    async fn record(&mut self, body: EventBody) -> Result<(), EngineError> {
        let ev = self.event(body);
        let events = vec![ev.to_record()];
        self.handles
            .store
            .write(Write::AppendEvents { events })
            .await?;
        self.emit(&[ev]);
        Ok(())
    }

    /// A warning that must not stop the run: recorded in order with everything else, without
    /// waiting, and shown.
    fn warn(&mut self, message: String) {
        let ev = self.event(EventBody::Warning { message });
        let events = vec![ev.to_record()];
        self.handles.store.post(Write::AppendEvents { events });
        self.emit(&[ev]);
    }

    /// Save the run row (and `events`) and wait for it.
    async fn save_run(&mut self, events: &[RunEvent], durable: bool) -> Result<(), EngineError> {
        let write = Write::SaveRun {
            run: self.run.clone(),
            events: events.iter().map(RunEvent::to_record).collect(),
            durable,
        };
        Ok(self.handles.store.write(write).await?)
    }

    fn now(&self) -> String {
        self.handles.deps.clock.rfc3339()
    }

    fn elapsed(&self) -> f64 {
        self.elapsed_before + self.session_start.elapsed().as_secs_f64()
    }

    fn touch(&mut self) {
        self.run.elapsed_s = self.elapsed();
        self.run.updated_at = self.now();
    }

    /// The interrupted or unstartable iteration is not committed: resume runs it again.
    fn abandon(&mut self, stop: Stop) -> Stop {
        self.run.current_iteration = None;
        stop
    }

    /// The directory of iteration `n`'s artifacts.
    fn iteration_dir(&self, n: u32) -> PathBuf {
        self.artifacts.join(format!("{n:04}"))
    }
}
