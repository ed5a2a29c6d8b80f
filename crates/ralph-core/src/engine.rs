//! The run loop: one iteration = build prompt, run agent, read what it did, verify, checkpoint,
//! persist, decide. Everything else hangs off the events it emits.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use ralph_agents::{AgentEvent, AgentOutcome, Backend, CommandContext, CostSource, ErrorClass};
use ralph_git::Git;
use ralph_store::{IterationRecord, RunRecord, RunState, Store, StoreError, Tokens};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::completion::claims_completion;
use crate::events::{EventBody, EventSink, RunEvent, StopReason};
use crate::policy::{self, Next, Situation};
use crate::process::{self, Control, Deadlines, EndReason, SpawnError, Spec};
use crate::redact::StreamRedactor;
use crate::settings::{GateWhen, PromptSource, RetryStrategy, Settings};
use crate::{notes, prompt};

/// Context use (percent of the window) from which ralph warns.
const CONTEXT_WARN_PCT: f64 = 80.0;

/// SIGTERM → SIGKILL grace period for agents and gates.
const KILL_GRACE: Duration = Duration::from_secs(3);
/// Bounds on what a failing gate or error contributes to the next prompt.
const FEEDBACK_TAIL_BYTES: usize = 2048;
const FEEDBACK_TAIL_LINES: usize = 40;

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
}

impl EngineError {
    /// Usage/config problems exit 2; everything else is ralph's own failure (1).
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::Prompt { .. } | EngineError::NoLedger | EngineError::Guard(_) => 2,
            _ => 1,
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

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run: RunRecord,
    pub stop_reason: StopReason,
    pub exit_code: i32,
    pub message: String,
}

/// A guard that tripped on a tool use while the agent ran.
#[derive(Debug, Clone)]
struct GuardTrip {
    tool: String,
    /// The command or the paths.
    what: String,
    blocked: crate::guard::Blocked,
}

/// Result of one gate command.
struct GateOutcome {
    name: String,
    passed: bool,
    when: GateWhen,
    exit_code: Option<i32>,
    timed_out: bool,
    tail: String,
}

/// One agent the run may use: the primary first, then `agent.fallback` in order.
pub struct Agent {
    pub backend: Box<dyn Backend>,
    pub model: Option<String>,
}

pub struct Engine<'a> {
    settings: Settings,
    agents: Vec<Agent>,
    /// Index into `agents` of the agent in use.
    current: usize,
    /// Backends already reported as not reporting usage (said once per run).
    usage_warned: Vec<&'static str>,
    /// Models already reported as missing from the price table (said once per run).
    price_warned: Vec<String>,
    /// The most one committed iteration of this run cost, and used in tokens: the estimate of
    /// the next one for `stop_before_exceeding`.
    max_iteration_cost: f64,
    max_iteration_tokens: u64,
    /// `budget.alert_at` fractions already announced, per scope.
    alerted: Vec<(&'static str, f64)>,
    /// The machine-wide ledger: every iteration's cost, across projects.
    ledger: Option<ralph_store::Ledger>,
    /// Where the ledger is, until the first iteration needs it (opened at start only when a
    /// daily or monthly cap must be checked before the first iteration).
    ledger_pending: Option<PathBuf>,
    /// Blocked commands and protected paths, checked on every tool use as it streams.
    guard: crate::guard::Guard,
    /// `.ralph/audit.jsonl`: the hash-chained record of security-relevant events.
    /// Opened on first use, after the first agent is already running: start-up latency is
    /// part of ralph's budget (≤ 5 ms to the first spawn), and nothing before that needs it
    /// unless a checkpoint must carry its head.
    audit: Option<ralph_store::AuditLog>,
    /// The run.started record, written first when the log is opened.
    audit_started: Option<serde_json::Value>,
    stuck: crate::safety::Stuck,
    /// The working tree's state before the next iteration (`None`: take a snapshot first).
    pre_tree: Option<String>,
    /// Iterations in a row whose changes exceeded `max_files_changed` and were reverted.
    over_limit: u32,
    store: Store,
    git: Option<Git>,
    control: UnboundedReceiver<Control>,
    sink: &'a mut dyn EventSink,
    run: RunRecord,
    /// When this session started, for elapsed time (previous sessions are in `run.elapsed_s`).
    session_start: Instant,
    elapsed_before: f64,
    state_dir: PathBuf,
    rng: u64,
    /// Committed iterations of this run with no known cost (shown, never passed off as $0).
    cost_unknown: u32,
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A run id that sorts by start time and is unique enough for one project.
fn new_run_id() -> String {
    let now = Utc::now();
    let nanos = now.timestamp_subsec_nanos() as u64;
    let mix = (nanos ^ ((std::process::id() as u64) << 20)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{}-{:04x}", now.format("%Y%m%d-%H%M%S"), (mix >> 48) as u16)
}

impl<'a> Engine<'a> {
    /// Prepare a run: resume the unfinished one unless `settings.fresh`, else create one.
    pub fn new(
        settings: Settings,
        agents: Vec<Agent>,
        store: Store,
        git: Option<Git>,
        control: UnboundedReceiver<Control>,
        sink: &'a mut dyn EventSink,
    ) -> Result<Engine<'a>, EngineError> {
        let state_dir = settings.root.join(".ralph");
        let now = now_rfc3339();
        let resumable = if settings.fresh {
            None
        } else {
            store.resumable_run()?
        };
        let run = match resumable {
            Some(mut run) => {
                // The run row is derived from committed iterations; recompute it so a crash
                // between writes can never leave totals that disagree with the iterations.
                store.rebuild_run_totals(&mut run)?;
                run.state = RunState::Running;
                run.stop_reason = None;
                run.exit_code = None;
                run.sessions += 1;
                run
            }
            None => RunRecord {
                id: new_run_id(),
                state: RunState::Running,
                stop_reason: None,
                exit_code: None,
                backend: String::new(),
                model: None,
                iteration: 0,
                max_iterations: 0,
                started_at: now.clone(),
                updated_at: now.clone(),
                elapsed_s: 0.0,
                cost_usd: 0.0,
                budget_usd: None,
                tokens: Tokens::default(),
                consecutive_failures: 0,
                current_iteration: None,
                feedback: None,
                last_checkpoint: None,
                pid: None,
                sessions: 1,
                notes: None,
            },
        };
        let seed = Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64 | 1;
        let cost_unknown = store.unknown_cost_iterations(&run.id)?;
        let guard = crate::guard::Guard::new(
            &settings.safety.blocked_commands,
            &settings.safety.protected_paths,
        )?;
        let mut engine = Engine {
            elapsed_before: run.elapsed_s,
            settings,
            agents,
            current: 0,
            usage_warned: Vec::new(),
            price_warned: Vec::new(),
            max_iteration_cost: 0.0,
            max_iteration_tokens: 0,
            alerted: Vec::new(),
            ledger: None,
            guard,
            audit: None,
            audit_started: None,
            ledger_pending: None,
            stuck: crate::safety::Stuck::default(),
            pre_tree: None,
            over_limit: 0,
            store,
            git,
            control,
            sink,
            run,
            session_start: Instant::now(),
            state_dir,
            rng: seed,
            cost_unknown,
        };
        if engine.agents.is_empty() {
            return Err(EngineError::NoAgent);
        }
        if let Some(path) = engine.settings.ledger.clone() {
            if engine.needs_ledger() {
                // Without it a daily or monthly cap cannot be enforced: refuse to pretend.
                engine.ledger = Some(ralph_store::Ledger::open(&path)?);
            } else {
                engine.ledger_pending = Some(path);
            }
        } else if engine.needs_ledger() {
            return Err(EngineError::NoLedger);
        }
        for it in engine.store.iterations(&engine.run.id)? {
            engine.max_iteration_cost = engine.max_iteration_cost.max(it.cost_usd.unwrap_or(0.0));
            let tokens = it.tokens.map_or(0, |t| t.total());
            engine.max_iteration_tokens = engine.max_iteration_tokens.max(tokens);
        }
        // A resumed run does not announce again what it announced before.
        let alerted = engine.due_alerts();
        engine.alerted = alerted;
        engine.run.backend = engine.agents[0].backend.name().to_string();
        engine.run.model = engine.agents[0].model.clone();
        engine.run.max_iterations = engine.settings.limits.max_iterations;
        engine.run.budget_usd = engine.settings.limits.max_cost_usd;
        engine.run.pid = Some(std::process::id());
        engine.run.current_iteration = None;
        engine.run.updated_at = now;
        Ok(engine)
    }

    pub fn run_id(&self) -> &str {
        &self.run.id
    }

    pub fn resumed(&self) -> bool {
        self.run.sessions > 1
    }

    fn elapsed(&self) -> f64 {
        self.elapsed_before + self.session_start.elapsed().as_secs_f64()
    }

    fn event(&self, body: EventBody) -> RunEvent {
        RunEvent {
            run_id: self.run.id.clone(),
            ts: now_rfc3339(),
            body,
        }
    }

    fn emit(&mut self, events: &[RunEvent]) {
        for e in events {
            self.sink.event(e);
        }
    }

    fn touch(&mut self) {
        self.run.elapsed_s = self.elapsed();
        self.run.updated_at = now_rfc3339();
    }

    /// Run to the end.
    pub async fn run(mut self) -> Result<RunSummary, EngineError> {
        let resumed = self.resumed();
        // A STOP file is a request to the run that was going when it was written.
        let stop_file = self.state_dir.join("STOP");
        let _ = fs::remove_file(&stop_file);

        self.touch();
        let started = self.event(EventBody::RunStarted {
            backend: self.run.backend.clone(),
            model: self.run.model.clone(),
            max_iterations: self.run.max_iterations,
            iteration: self.run.iteration,
            resumed,
            checkpoints: self.git.is_some() && self.settings.checkpoint_every > 0,
        });
        self.store
            .save_run(&self.run, &[started.to_record()], false)?;
        self.audit_started = Some(serde_json::json!({
            "backend": self.run.backend, "resumed": resumed, "iteration": self.run.iteration,
            "protected_paths": self.settings.safety.protected_paths,
        }));
        self.emit(&[started]);

        if self.git.is_some()
            && self.settings.checkpoint_every > 0
            && self.run.last_checkpoint.is_none()
        {
            // Iteration 0: the state before the agent touched anything.
            if let Some(ev) = self.checkpoint(self.run.iteration) {
                self.store.save_run(&self.run, &[ev.to_record()], false)?;
                self.emit(&[ev]);
                // Just taken: it is the state the first iteration starts from.
                self.pre_tree = self.run.last_checkpoint.clone();
            }
        }

        loop {
            if let Some((reason, message)) = self.check_limits(&stop_file) {
                return self.finish(reason, message);
            }
            match self.iteration().await? {
                Some((reason, message)) => return self.finish(reason, message),
                None => continue,
            }
        }
    }

    /// Stop conditions evaluated before an iteration starts.
    fn check_limits(&mut self, stop_file: &Path) -> Option<(StopReason, String)> {
        let limits = self.settings.limits.clone();
        if let Ok(c) = self.control.try_recv() {
            return Some(control_stop(c));
        }
        if stop_file.exists() {
            let _ = fs::remove_file(stop_file);
            return Some((
                StopReason::StopRequested,
                "stopped on request (.ralph/STOP); `ralph run` resumes this run".into(),
            ));
        }
        if self.run.consecutive_failures >= limits.max_consecutive_failures {
            return Some((
                StopReason::GaveUp,
                format!(
                    "gave up after {} consecutive failed iterations; see `ralph logs` for the errors, \
                     fix the cause, then `ralph run --fresh`",
                    self.run.consecutive_failures
                ),
            ));
        }
        if let Some(cap) = limits.max_cost_usd {
            let next = self.run.cost_usd + self.max_iteration_cost;
            if limits.stop_before_exceeding
                && self.run.iteration > 0
                && next > cap
                && self.run.cost_usd < cap
            {
                return Some((
                    StopReason::Budget,
                    format!(
                        "cost budget: ${:.4} spent, and the next iteration may cost up to ${:.4} \
                         (the most expensive so far), which would pass ${cap:.4} \
                         (budget.max_cost_usd); stopped before starting it",
                        self.run.cost_usd, self.max_iteration_cost
                    ),
                ));
            }
            if self.run.cost_usd >= cap {
                return Some((
                    StopReason::Budget,
                    format!(
                        "cost budget reached: ${:.4} of ${cap:.4} (budget.max_cost_usd)",
                        self.run.cost_usd
                    ),
                ));
            }
        }
        if let Some(cap) = limits.max_tokens {
            let used = self.run.tokens.total();
            let next = used + self.max_iteration_tokens;
            if limits.stop_before_exceeding && self.run.iteration > 0 && next > cap && used < cap {
                return Some((
                    StopReason::Budget,
                    format!(
                        "token budget: {used} used, and the next iteration may use up to {} (the \
                         most so far), which would pass {cap} (budget.max_tokens); stopped \
                         before starting it",
                        self.max_iteration_tokens
                    ),
                ));
            }
            if used >= cap {
                return Some((
                    StopReason::Budget,
                    format!("token budget reached: {used} of {cap} tokens (budget.max_tokens)"),
                ));
            }
        }
        if let Some(stop) = self.machine_budget_stop() {
            return Some(stop);
        }
        if self.run.iteration >= limits.max_iterations {
            return Some((
                StopReason::MaxIterations,
                format!(
                    "iteration limit reached ({} of {}) without completion; raise --max-iterations \
                     or refine the prompt",
                    self.run.iteration, limits.max_iterations
                ),
            ));
        }
        if self.elapsed() >= limits.max_runtime.as_secs_f64() {
            return Some((StopReason::MaxRuntime, runtime_message(limits.max_runtime)));
        }
        None
    }

    fn read_prompt(&self) -> Result<String, EngineError> {
        match &self.settings.prompt {
            PromptSource::Text(t) => Ok(t.clone()),
            PromptSource::File(p) => fs::read_to_string(p).map_err(|source| EngineError::Prompt {
                path: p.clone(),
                source,
            }),
        }
    }

    /// One iteration. `Some` ends the run.
    async fn iteration(&mut self) -> Result<Option<(StopReason, String)>, EngineError> {
        let n = self.run.iteration + 1;
        let started_at = now_rfc3339();
        let user_prompt = self.read_prompt()?;
        let notes = notes::for_prompt(
            self.run.notes.as_deref(),
            n.saturating_sub(1),
            self.run.feedback.is_some(),
        );
        let full_prompt = prompt::build(
            &user_prompt,
            &self.settings.completion_marker,
            n,
            self.settings.limits.max_iterations,
            notes.as_deref(),
            self.run.feedback.as_deref(),
        );
        let user_part = user_prompt.trim_end();
        let prompt_sha256 = sha256_hex(user_part.as_bytes());
        let user_prompt_bytes = user_part.len() as u64;
        let dir = self
            .state_dir
            .join("runs")
            .join(&self.run.id)
            .join(format!("{n:04}"));
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let prompt_path = dir.join("prompt.md");
        fs::write(&prompt_path, &full_prompt).map_err(io_err("write", &prompt_path))?;

        self.run.current_iteration = Some(n);
        self.touch();
        let ev = self.event(EventBody::IterationStarted {
            iteration: n,
            backend: self.run.backend.clone(),
        });
        self.store.iteration_started(&self.run, &[ev.to_record()])?;
        self.emit(&[ev]);

        let model = self.agents[self.current].model.clone();
        // The state to go back to if a guard trips: the last checkpoint when it was taken
        // right after the previous iteration, else a snapshot now.
        if let (Some(git), None) = (&self.git, &self.pre_tree) {
            self.pre_tree = git.snapshot_tree(&self.state_dir).ok();
        }
        let git_meta = crate::safety::GitMeta::capture(&self.settings.root);
        let (finished, mut outcome, trip) = match self
            .call_agent(&full_prompt, &dir, model, n, "iteration")
            .await?
        {
            Ok(done) => done,
            Err(message) => {
                self.run.current_iteration = None;
                return Ok(Some((StopReason::NeedsHuman, message)));
            }
        };

        if let Some(t) = &trip {
            set_error(
                &mut outcome,
                ErrorClass::PermissionDenied,
                format!(
                    "ralph blocked the agent's {} `{}`: {}; the agent was stopped and this \
                     iteration's changes reverted",
                    t.tool, t.what, t.blocked
                ),
            );
        }
        match finished.reason {
            EndReason::Guard => {}
            EndReason::Control(c) => {
                // The interrupted iteration is not committed: resume runs it again.
                self.run.current_iteration = None;
                return Ok(Some(control_stop(c)));
            }
            EndReason::Timeout => set_error(
                &mut outcome,
                ErrorClass::Timeout,
                format!(
                    "killed after the iteration timeout ({})",
                    fmt_duration(self.settings.limits.iteration_timeout)
                ),
            ),
            EndReason::Idle => set_error(
                &mut outcome,
                ErrorClass::Idle,
                format!(
                    "killed after {} without output (idle timeout)",
                    fmt_duration(self.settings.limits.idle_timeout)
                ),
            ),
            EndReason::RuntimeLimit => set_error(
                &mut outcome,
                ErrorClass::Timeout,
                "killed at the run's runtime limit".to_string(),
            ),
            EndReason::Exited => {}
        }

        let claimed = outcome.error.is_none()
            && claims_completion(&outcome.final_text, &self.settings.completion_marker);
        let mut gates = Vec::new();
        let mut events = Vec::new();
        if finished.reason != EndReason::RuntimeLimit && trip.is_none() {
            let to_run: Vec<_> = self
                .settings
                .gates
                .iter()
                .filter(|g| {
                    g.when == GateWhen::Iteration || (claimed && g.when == GateWhen::Complete)
                })
                .cloned()
                .collect();
            for gate in to_run {
                let path = dir.join(format!("gate-{}.log", gate.name));
                let mut log = StreamRedactor::new(
                    self.settings.redactor.clone(),
                    File::create(&path).map_err(io_err("create", &path))?,
                );
                let deadlines = self.deadlines(gate.timeout, false);
                let args = vec!["-c".to_string(), gate.run.clone()];
                let env = vec![
                    ("RALPH_RUN_ID".to_string(), self.run.id.clone()),
                    ("RALPH_ITERATION".to_string(), n.to_string()),
                ];
                let gspec = Spec {
                    program: "sh",
                    args: &args,
                    env: &env,
                    cwd: &self.settings.root,
                    stdin: None,
                    merge_stderr: true,
                    max_output_bytes: Some(self.settings.safety.max_output_bytes),
                    supervised: true,
                };
                let mut nop = |_: &[u8], _: bool| false;
                let res = process::run(
                    &gspec,
                    deadlines,
                    &mut log,
                    None,
                    &mut nop,
                    &mut self.control,
                )
                .await
                .and_then(|res| {
                    log.finish().map_err(SpawnError::Artifact)?;
                    Ok(res)
                })
                .map_err(|e| EngineError::Io {
                    action: "run gate",
                    path: path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?;
                if let EndReason::Control(c) = res.reason {
                    self.run.current_iteration = None;
                    return Ok(Some(control_stop(c)));
                }
                let timed_out = matches!(res.reason, EndReason::Timeout | EndReason::RuntimeLimit);
                let passed = res.reason == EndReason::Exited && res.exit.code == Some(0);
                self.audit_record(
                    ralph_store::audit::kinds::GATE_FINISHED,
                    serde_json::json!({
                        "iteration": n, "name": gate.name, "passed": passed,
                        "exit_code": res.exit.code, "timed_out": timed_out,
                    }),
                );
                events.push(self.event(EventBody::GateFinished {
                    iteration: n,
                    name: gate.name.clone(),
                    passed,
                    exit_code: res.exit.code,
                    timed_out,
                    duration_s: res.duration.as_secs_f64(),
                }));
                gates.push(GateOutcome {
                    name: gate.name.clone(),
                    passed,
                    when: gate.when,
                    exit_code: res.exit.code,
                    timed_out,
                    tail: self.settings.redactor.redact(&res.tail).into_owned(),
                });
            }
        }
        let completion_gates_ok = gates
            .iter()
            .filter(|g| g.when == GateWhen::Complete)
            .all(|g| g.passed);
        let completed = claimed && completion_gates_ok;

        // Checkpoint after the agent (and gates) are done: it also records what a guard is
        // about to revert. Then the guardrails that compare the tree with its state before.
        let mut checkpoint_ref = None;
        let every = self.settings.checkpoint_every;
        let pre = self.pre_tree.clone();
        let mut post: Option<String> = None;
        if self.git.is_some()
            && every > 0
            && (n.is_multiple_of(every) || completed || trip.is_some())
        {
            if let Some(ev) = self.checkpoint(n) {
                if let EventBody::CheckpointCreated { r#ref, .. } = &ev.body {
                    checkpoint_ref = Some(r#ref.clone());
                }
                events.push(ev);
                post = self.run.last_checkpoint.clone();
            }
        }
        let mut diff = None;
        if let (Some(git), Some(pre)) = (&self.git, &pre) {
            if post.is_none() {
                post = git.snapshot_tree(&self.state_dir).ok();
            }
            if let Some(post) = &post {
                diff = git.diff_stat(pre, post).ok();
            }
        }
        let guarded = self.guard_iteration(
            n,
            trip.as_ref(),
            pre.as_deref(),
            post.as_deref(),
            diff.as_ref(),
            git_meta.as_ref(),
        );
        let (safety_stop, reverted, extra_feedback) = guarded;
        // The next iteration starts from what is on disk now.
        self.pre_tree = if reverted { pre.clone() } else { post.clone() };
        if reverted && self.run.last_checkpoint.is_some() {
            self.run.last_checkpoint = pre.clone();
        }

        let outcome_name = if completed {
            "completed"
        } else if trip.is_some() {
            "blocked"
        } else if reverted {
            "reverted"
        } else if outcome.error.is_some() {
            "failed"
        } else if claimed {
            "gates_failed"
        } else if diff.as_ref().map(|d: &ralph_git::DiffStat| d.files_changed) == Some(0) {
            "no_change"
        } else {
            "progressed"
        };

        let next = match outcome.error {
            Some(class) if !completed => {
                let runtime_left = self.settings.limits.max_runtime.as_secs_f64() - self.elapsed();
                policy::decide(&Situation {
                    class,
                    retry_after: outcome.retry_after,
                    now_unix: Utc::now().timestamp(),
                    runtime_left: Duration::from_secs_f64(runtime_left.max(0.0)),
                    has_fallback: self.current + 1 < self.agents.len(),
                    backend: &self.run.backend,
                    message: outcome.error_message.as_deref().unwrap_or(class.as_str()),
                })
            }
            _ => Next::Continue,
        };
        match outcome.error {
            Some(_) if next.counts_as_failure() => self.run.consecutive_failures += 1,
            Some(_) => {}
            None => self.run.consecutive_failures = 0,
        }
        self.run.feedback = feedback(&outcome, claimed, &gates, &self.settings.completion_marker);
        let mut stuck_stop = None;
        if !completed && safety_stop.is_none() {
            let err = outcome
                .error
                .map(|c| (c.as_str(), outcome.error_message.as_deref().unwrap_or("")));
            let limit = self.settings.safety.no_progress_iterations;
            match self
                .stuck
                .observe(diff.as_ref().map(|d| d.files_changed), err, limit)
            {
                crate::safety::StuckVerdict::Fine => {}
                crate::safety::StuckVerdict::Recover => {
                    let recover = crate::safety::recovery_feedback(limit);
                    self.run.feedback = Some(match self.run.feedback.take() {
                        Some(f) => format!("{f}\n\n{recover}"),
                        None => recover,
                    });
                    events.push(self.event(EventBody::Warning {
                        message: format!(
                            "no progress in {limit} iterations: the next one is asked to analyse \
                             the failures and change approach"
                        ),
                    }));
                }
                crate::safety::StuckVerdict::GiveUp => {
                    stuck_stop = Some((
                        StopReason::GaveUp,
                        format!(
                            "gave up: still no progress after a recovery iteration ({limit} \
                             iterations without a file change or with the same error); see \
                             `ralph logs` and rethink the task"
                        ),
                    ));
                }
            }
        }
        if let Some(extra) = extra_feedback {
            self.run.feedback = Some(match self.run.feedback.take() {
                Some(f) => format!("{extra}\n\n{f}"),
                None => extra,
            });
        }
        let failed_gates: Vec<(String, String)> = gates
            .iter()
            .filter(|g| !g.passed)
            .map(|g| (g.name.clone(), gate_verdict(g)))
            .collect();
        let error = outcome
            .error
            .map(|c| (c.as_str(), outcome.error_message.as_deref().unwrap_or("")));
        if let Some(note) = notes::note_for(n, outcome_name, error, &failed_gates) {
            self.run.notes = Some(notes::append(self.run.notes.as_deref(), &note));
        }
        let usage = outcome.usage;
        if let Some(u) = usage {
            self.run.tokens += u;
        }
        match outcome.cost_usd.filter(|c| c.is_finite() && *c >= 0.0) {
            Some(c) => self.run.cost_usd += c,
            None => self.cost_unknown += 1,
        }
        self.run.iteration = n;
        self.run.current_iteration = None;
        if let Some(m) = &outcome.model {
            self.run.model = Some(m.clone());
        }
        self.touch();

        let tokens = usage;
        // The fullest the context got, against the model's window (the agent's own figure,
        // else the price table's).
        let model_name = outcome
            .model
            .clone()
            .or_else(|| self.agents[self.current].model.clone());
        let context_tokens = outcome
            .context_tokens
            .or_else(|| usage.map(|u| u.input + u.cache_read + u.cache_write));
        let context_window = outcome.context_window.or_else(|| {
            model_name
                .as_deref()
                .and_then(|m| self.settings.pricing.get(m))
                .and_then(|p| p.context_window)
        });
        let context_pct = match (context_tokens, context_window) {
            (Some(t), Some(w)) if w > 0 => Some((t as f64 * 1000.0 / w as f64).round() / 10.0),
            _ => None,
        };
        let record = IterationRecord {
            run_id: self.run.id.clone(),
            n,
            started_at,
            finished_at: now_rfc3339(),
            duration_s: finished.duration.as_secs_f64(),
            backend: self.run.backend.clone(),
            model: outcome
                .model
                .clone()
                .or_else(|| self.agents[self.current].model.clone()),
            outcome: outcome_name.to_string(),
            error_class: outcome.error.map(|e| e.as_str().to_string()),
            error_message: outcome.error_message.clone(),
            exit_code: finished.exit.code,
            signal: finished.exit.signal,
            cost_usd: outcome.cost_usd,
            cost_source: outcome.cost_source.as_str().to_string(),
            tokens,
            files_changed: diff.as_ref().map(|d| d.files_changed),
            insertions: diff.as_ref().map(|d| d.insertions),
            deletions: diff.as_ref().map(|d| d.deletions),
            checkpoint: checkpoint_ref,
            completion_claimed: claimed,
            gates_passed: if gates.is_empty() {
                None
            } else {
                Some(gates.iter().all(|g| g.passed))
            },
            output_lines: outcome.lines,
            unknown_lines: outcome.unknown_lines + outcome.malformed_lines,
            prompt_sha256: Some(prompt_sha256),
            prompt_bytes: Some(full_prompt.len() as u64),
            user_prompt_bytes: Some(user_prompt_bytes),
            context_tokens,
            context_window,
        };
        let finished_ev = self.event(EventBody::IterationFinished {
            iteration: n,
            max_iterations: self.settings.limits.max_iterations,
            backend: self.run.backend.clone(),
            outcome: outcome_name.to_string(),
            duration_s: record.duration_s,
            cost_usd: outcome.cost_usd,
            cost_source: if outcome.cost_usd.is_some() {
                outcome.cost_source.as_str().to_string()
            } else {
                CostSource::Unknown.as_str().to_string()
            },
            tokens: usage,
            files_changed: record.files_changed,
            insertions: record.insertions,
            deletions: record.deletions,
            error_class: record.error_class.clone(),
            error_message: record.error_message.clone(),
            total_cost_usd: self.run.cost_usd,
            total_tokens: self.run.tokens,
            context_pct,
        });
        // Gate and checkpoint events happened before the iteration finished.
        events.push(finished_ev);
        if let (Some(pct), Some(window)) = (context_pct, context_window) {
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
        self.record_in_ledger(&record)?;
        self.max_iteration_cost = self.max_iteration_cost.max(outcome.cost_usd.unwrap_or(0.0));
        self.max_iteration_tokens = self
            .max_iteration_tokens
            .max(usage.map_or(0, |u| u.total()));
        for (scope, fraction, spent, cap) in self.new_alerts() {
            events.push(self.event(EventBody::BudgetAlert {
                scope: scope.to_string(),
                fraction,
                spent,
                cap,
            }));
        }
        let records: Vec<_> = events.iter().map(RunEvent::to_record).collect();
        self.store.commit_iteration(&self.run, &record, &records)?;
        self.emit(&events);
        if !completed
            && self.run.notes.as_deref().map_or(0, notes::estimate_tokens)
                > self.settings.notes_max_tokens
        {
            if let Some(stop) = self.summarise_notes(n).await? {
                return Ok(Some(stop));
            }
        }

        // A guardrail stop outranks even a completion: the work was reverted.
        if let Some(stop) = safety_stop.or(stuck_stop) {
            return Ok(Some(stop));
        }
        if completed {
            return Ok(Some((
                StopReason::Completed,
                format!(
                    "completed: the agent signalled {} and {}",
                    self.settings.completion_marker,
                    if gates.iter().any(|g| g.when == GateWhen::Complete) {
                        "every completion gate passed"
                    } else {
                        "no completion gates are configured"
                    }
                ),
            )));
        }
        if finished.reason == EndReason::RuntimeLimit {
            return Ok(Some((
                StopReason::MaxRuntime,
                runtime_message(self.settings.limits.max_runtime),
            )));
        }
        let Some(class) = outcome.error else {
            return Ok(None);
        };
        match next {
            Next::Continue => Ok(None),
            Next::Stop(reason, message) => Ok(Some((reason, message))),
            Next::Switch => {
                self.switch_agent(n, class)?;
                Ok(None)
            }
            Next::Wait { delay, .. } => self.wait(n, class, delay, true).await,
            Next::Backoff => {
                if self.run.consecutive_failures < self.settings.limits.max_consecutive_failures
                    && self.run.iteration < self.settings.limits.max_iterations
                {
                    let delay = self.retry_delay(self.run.consecutive_failures);
                    self.wait(n, class, delay, false).await
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// One agent call: build the command for `prompt` (archived in `dir`), run it under the
    /// iteration's limits with output streamed to `dir`, parse and price the result.
    /// `Ok(Err(message))`: the agent could not be started (needs a human).
    async fn call_agent(
        &mut self,
        prompt: &str,
        dir: &Path,
        model: Option<String>,
        n: u32,
        call: &str,
    ) -> Result<Result<(process::Finished, AgentOutcome, Option<GuardTrip>), String>, EngineError>
    {
        let prompt_path = dir.join("prompt.md");
        let ctx = CommandContext {
            prompt,
            prompt_path: &prompt_path,
            model: model.as_deref(),
            extra_args: &self.settings.agent.args,
            is_root: unsafe_geteuid() == 0,
            scratch_dir: dir,
        };
        let backend = &self.agents[self.current].backend;
        let mut spec = backend.command(&ctx);
        // Defense in depth: agents that take a deny list are told; the streaming check below is
        // what enforces it.
        spec.args
            .extend(backend.deny_args(&crate::guard::default_deny_rules()));
        let mut parser = backend.parser_for(&ctx);
        let reports_usage = backend.reports_usage();
        let backend_name = backend.name();
        spec.env.push(("RALPH_RUN_ID".into(), self.run.id.clone()));
        spec.env.push(("RALPH_ITERATION".into(), n.to_string()));
        // "iteration", or "summary" for the notes summary: lets a custom agent tell them apart.
        spec.env.push(("RALPH_CALL".into(), call.to_string()));
        spec.env.push((
            "RALPH_PROMPT_FILE".into(),
            prompt_path.display().to_string(),
        ));
        spec.env.push((
            "RALPH_WORKSPACE".into(),
            self.settings.root.display().to_string(),
        ));

        let out_path = dir.join("output.log");
        let err_path = dir.join("stderr.log");
        // Secrets never reach the disk: the artifacts are written through the redactor.
        let redactor = self.settings.redactor.clone();
        let mut out = StreamRedactor::new(
            redactor.clone(),
            File::create(&out_path).map_err(io_err("create", &out_path))?,
        );
        let mut err = StreamRedactor::new(
            redactor.clone(),
            File::create(&err_path).map_err(io_err("create", &err_path))?,
        );
        let mut scratch = Vec::new();
        let guard = &self.guard;
        let root = self.settings.root.clone();
        let mut trip: Option<GuardTrip> = None;
        let mut sink = |line: &[u8], truncated: bool| {
            scratch.clear();
            parser.line(line, truncated, &mut scratch);
            for ev in &scratch {
                if let (AgentEvent::ToolUse { name, input }, None) = (ev, &trip) {
                    if let Some(blocked) = guard.check_tool_use(name, input, &root) {
                        let what = crate::guard::command_of(name, input)
                            .unwrap_or_else(|| crate::guard::paths_of(name, input).join(", "));
                        let what = redactor.redact(&what).into_owned();
                        trip = Some(GuardTrip {
                            tool: name.clone(),
                            what,
                            blocked,
                        });
                        return true;
                    }
                }
            }
            false
        };
        let deadlines = self.deadlines(self.settings.limits.iteration_timeout, true);
        let pspec = Spec {
            program: &spec.program,
            args: &spec.args,
            env: &spec.env,
            cwd: &self.settings.root,
            stdin: spec.stdin.as_deref(),
            merge_stderr: false,
            max_output_bytes: Some(self.settings.safety.max_output_bytes),
            supervised: true,
        };
        let finished = process::run(
            &pspec,
            deadlines,
            &mut out,
            Some(&mut err),
            &mut sink,
            &mut self.control,
        )
        .await;
        let finished = match finished {
            Ok(f) => f,
            Err(e @ (SpawnError::NotFound { .. } | SpawnError::NotExecutable { .. })) => {
                return Ok(Err(format!(
                    "cannot start the {} agent: {e}; install it or point agent.command at it \
                     (`ralph doctor` shows what is installed)",
                    self.run.backend
                )));
            }
            Err(SpawnError::Artifact(source)) => {
                return Err(EngineError::Io {
                    action: "write",
                    path: out_path,
                    source,
                })
            }
            Err(SpawnError::Other { program, source }) => {
                return Err(EngineError::Io {
                    action: "start",
                    path: PathBuf::from(program),
                    source,
                })
            }
        };
        let flushed = out.finish().and(err.finish());
        flushed.map_err(|source| EngineError::Io {
            action: "write",
            path: out_path.clone(),
            source,
        })?;
        let mut outcome = parser.finish(finished.exit, &finished.tail);
        // What the agent said travels on into the database, events, prompts and the terminal.
        outcome.final_text = redactor.redact(&outcome.final_text).into_owned();
        outcome.error_message = outcome
            .error_message
            .map(|m| redactor.redact(&m).into_owned());
        if !reports_usage && !self.usage_warned.contains(&backend_name) {
            self.usage_warned.push(backend_name);
            let ev = self.event(EventBody::Warning {
                message: format!(
                    "the {backend_name} agent does not report token usage: its tokens and cost \
                     are recorded as unknown; iteration and time limits still apply"
                ),
            });
            self.store.append_events(&[ev.to_record()])?;
            self.emit(&[ev]);
        }
        self.price(&mut outcome)?;
        Ok(Ok((finished, outcome, trip)))
    }

    /// Ask the agent (a separate call, `context.summary_model` if set) to summarise the notes,
    /// and keep the summary only if it is shorter. The call is accounted like an iteration:
    /// cost and tokens count toward the run's totals, budgets and the ledger.
    async fn summarise_notes(
        &mut self,
        n: u32,
    ) -> Result<Option<(StopReason, String)>, EngineError> {
        let Some(before) = self.run.notes.clone() else {
            return Ok(None);
        };
        let dir = self
            .state_dir
            .join("runs")
            .join(&self.run.id)
            .join(format!("{n:04}"))
            .join("summary");
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let prompt = notes::summary_prompt(&before, self.settings.notes_max_tokens);
        let prompt_path = dir.join("prompt.md");
        fs::write(&prompt_path, &prompt).map_err(io_err("write", &prompt_path))?;
        let model = self
            .settings
            .summary_model
            .clone()
            .or_else(|| self.agents[self.current].model.clone());
        let (finished, outcome, _) = match self
            .call_agent(&prompt, &dir, model.clone(), n, "summary")
            .await?
        {
            Ok(done) => done,
            Err(message) => return Ok(Some((StopReason::NeedsHuman, message))),
        };
        if let EndReason::Control(c) = finished.reason {
            return Ok(Some(control_stop(c)));
        }
        let summary = if outcome.error.is_none() {
            notes::accept_summary(&before, &outcome.final_text)
        } else {
            None
        };
        let accepted = summary.is_some();
        let after = match summary {
            Some(s) => s,
            // Keep the notes bounded whatever the agent did: drop the oldest lines.
            None => {
                let mut lines: Vec<&str> = before.lines().collect();
                while lines.len() > 1
                    && notes::estimate_tokens(&lines.join("\n")) > self.settings.notes_max_tokens
                {
                    lines.remove(0);
                }
                lines.join("\n")
            }
        };
        if let Some(u) = outcome.usage {
            self.run.tokens += u;
        }
        match outcome.cost_usd.filter(|c| c.is_finite() && *c >= 0.0) {
            Some(c) => self.run.cost_usd += c,
            None => self.cost_unknown += 1,
        }
        self.run.notes = Some(after.clone());
        self.touch();
        let tokens = outcome.usage;
        let call = ralph_store::SideCall {
            after_iteration: n,
            kind: "summary".to_string(),
            ts: now_rfc3339(),
            backend: self.run.backend.clone(),
            model: outcome.model.clone().or(model),
            cost_usd: outcome.cost_usd,
            cost_source: outcome.cost_source.as_str().to_string(),
            tokens,
        };
        let ev = self.event(EventBody::NotesSummarised {
            iteration: n,
            accepted,
            tokens_before: notes::estimate_tokens(&before),
            tokens_after: notes::estimate_tokens(&after),
            cost_usd: outcome.cost_usd,
        });
        self.store
            .commit_side_call(&self.run, &call, &[ev.to_record()])?;
        if let Some(ledger) = &self.ledger {
            // Its own key in the ledger, next to the iteration it followed.
            let entry = ralph_store::LedgerEntry {
                ts: call.ts.clone(),
                project: self.settings.root.display().to_string(),
                run_id: self.run.id.clone(),
                iteration: ralph_store::ledger::SIDE_CALL_ITERATION_BASE + n,
                backend: call.backend.clone(),
                model: call.model.clone(),
                cost_usd: call.cost_usd,
                cost_source: call.cost_source.clone(),
                tokens,
            };
            let _ = ledger.record(&entry);
        }
        self.emit(&[ev]);
        Ok(None)
    }

    /// Cost from the price table when the agent reported tokens but no cost. A model missing
    /// from the table leaves the cost unknown, and ralph says so once per model.
    fn price(&mut self, outcome: &mut AgentOutcome) -> Result<(), EngineError> {
        if outcome.cost_usd.is_some() {
            return Ok(());
        }
        let Some(usage) = outcome.usage else {
            return Ok(());
        };
        let model = outcome
            .model
            .clone()
            .or_else(|| self.agents[self.current].model.clone());
        let key = model.clone().unwrap_or_default();
        match model
            .as_deref()
            .and_then(|m| self.settings.pricing.cost(m, &usage))
        {
            Some(cost) => {
                outcome.cost_usd = Some(cost);
                outcome.cost_source = CostSource::Computed;
            }
            None if !self.price_warned.contains(&key) => {
                let message = match &model {
                    Some(m) => format!(
                        "no price known for the model {m}: its cost is recorded as unknown; add \
                         [pricing.\"{m}\"] with input and output (USD per million tokens) to \
                         ralph.toml"
                    ),
                    None => "the agent did not say which model it used, so its tokens cannot \
                             be priced; set agent.model (-m)"
                        .to_string(),
                };
                self.price_warned.push(key);
                let ev = self.event(EventBody::Warning { message });
                self.store.append_events(&[ev.to_record()])?;
                self.emit(&[ev]);
            }
            None => {}
        }
        Ok(())
    }

    fn needs_ledger(&self) -> bool {
        self.settings.limits.daily_usd.is_some() || self.settings.limits.monthly_usd.is_some()
    }

    /// Spent on this machine in the current local day and month (all projects, all runs).
    fn machine_spend(&self) -> (Option<f64>, Option<f64>) {
        let Some(ledger) = &self.ledger else {
            return (None, None);
        };
        let now = chrono::Local::now();
        let (d0, d1) = ralph_store::ledger::day_window(&now);
        let (m0, m1) = ralph_store::ledger::month_window(&now);
        (
            ledger.spent_between(&d0, &d1).ok(),
            ledger.spent_between(&m0, &m1).ok(),
        )
    }

    fn machine_budget_stop(&self) -> Option<(StopReason, String)> {
        let l = &self.settings.limits;
        let (day, month) = self.machine_spend();
        for (what, key, spent, cap) in [
            ("daily", "budget.daily_usd", day, l.daily_usd),
            ("monthly", "budget.monthly_usd", month, l.monthly_usd),
        ] {
            let (Some(spent), Some(cap)) = (spent, cap) else {
                continue;
            };
            let next = if l.stop_before_exceeding {
                self.max_iteration_cost
            } else {
                0.0
            };
            if spent >= cap || (self.run.iteration > 0 && spent + next > cap) {
                return Some((
                    StopReason::Budget,
                    format!(
                        "{what} budget: ${spent:.4} spent on this machine (all projects){} of \
                         ${cap:.4} ({key}); `ralph run` resumes when the {} begins",
                        if spent >= cap {
                            String::new()
                        } else {
                            format!(", and the next iteration may cost up to ${next:.4}")
                        },
                        if what == "daily" {
                            "next day"
                        } else {
                            "next month"
                        }
                    ),
                ));
            }
        }
        None
    }

    fn record_in_ledger(&mut self, it: &IterationRecord) -> Result<(), EngineError> {
        if let Some(path) = self.ledger_pending.take() {
            self.ledger = ralph_store::Ledger::open(&path).ok();
        }
        let Some(ledger) = &self.ledger else {
            return Ok(());
        };
        let project = fs::canonicalize(&self.settings.root)
            .unwrap_or_else(|_| self.settings.root.clone())
            .display()
            .to_string();
        let entry = ralph_store::LedgerEntry {
            ts: it.finished_at.clone(),
            project,
            run_id: it.run_id.clone(),
            iteration: it.n,
            backend: it.backend.clone(),
            model: it.model.clone(),
            cost_usd: it.cost_usd,
            cost_source: it.cost_source.clone(),
            tokens: it.tokens,
        };
        match ledger.record(&entry) {
            Ok(()) => Ok(()),
            Err(e) if self.needs_ledger() => Err(EngineError::Store(e)),
            Err(e) => {
                let ev = self.event(EventBody::Warning {
                    message: format!("the machine-wide cost ledger could not be written: {e}"),
                });
                self.store.append_events(&[ev.to_record()])?;
                self.emit(&[ev]);
                Ok(())
            }
        }
    }

    /// Every (scope, fraction) of `budget.alert_at` the spend has reached.
    fn due_alerts(&self) -> Vec<(&'static str, f64)> {
        let l = &self.settings.limits;
        let mut due = Vec::new();
        let (day, month) = self.machine_spend();
        let scopes = [
            ("run_cost", self.run.cost_usd, l.max_cost_usd),
            (
                "run_tokens",
                self.run.tokens.total() as f64,
                l.max_tokens.map(|t| t as f64),
            ),
            ("daily", day.unwrap_or(0.0), l.daily_usd),
            ("monthly", month.unwrap_or(0.0), l.monthly_usd),
        ];
        for (scope, spent, cap) in scopes {
            if let Some(cap) = cap.filter(|c| *c > 0.0) {
                for f in &l.alert_at {
                    if spent >= cap * f {
                        due.push((scope, *f));
                    }
                }
            }
        }
        due
    }

    /// Alerts due now that were not announced yet: (scope, fraction, spent, cap).
    fn new_alerts(&mut self) -> Vec<(&'static str, f64, f64, f64)> {
        let l = &self.settings.limits;
        let mut out = Vec::new();
        for (scope, fraction) in self.due_alerts() {
            if self.alerted.contains(&(scope, fraction)) {
                continue;
            }
            self.alerted.push((scope, fraction));
            let (day, month) = self.machine_spend();
            let (spent, cap) = match scope {
                "run_cost" => (self.run.cost_usd, l.max_cost_usd.unwrap_or(0.0)),
                "daily" => (day.unwrap_or(0.0), l.daily_usd.unwrap_or(0.0)),
                "monthly" => (month.unwrap_or(0.0), l.monthly_usd.unwrap_or(0.0)),
                _ => (
                    self.run.tokens.total() as f64,
                    l.max_tokens.unwrap_or(0) as f64,
                ),
            };
            out.push((scope, fraction, spent, cap));
        }
        out
    }

    /// Move to the next agent in `agent.fallback` for the rest of this session.
    fn switch_agent(&mut self, n: u32, class: ErrorClass) -> Result<(), EngineError> {
        let from = self.run.backend.clone();
        self.current += 1;
        let agent = &self.agents[self.current];
        self.run.backend = agent.backend.name().to_string();
        self.run.model = agent.model.clone();
        let ev = self.event(EventBody::AgentSwitched {
            iteration: n,
            from,
            to: self.run.backend.clone(),
            model: self.run.model.clone(),
            reason: class.as_str().to_string(),
        });
        self.store.save_run(&self.run, &[ev.to_record()], false)?;
        self.emit(&[ev]);
        Ok(())
    }

    /// Wait before the next attempt. `exact`: the agent said when its limit lifts (shown with
    /// the time it ends); otherwise a backoff. The run's limits still apply: stop requests end
    /// the wait, and it never runs past the runtime limit.
    async fn wait(
        &mut self,
        n: u32,
        class: ErrorClass,
        delay: Duration,
        exact: bool,
    ) -> Result<Option<(StopReason, String)>, EngineError> {
        let remaining = self.settings.limits.max_runtime.as_secs_f64() - self.elapsed();
        let delay = delay.min(Duration::from_secs_f64(remaining.max(0.0)));
        if delay.is_zero() {
            return Ok(None);
        }
        let until = Utc::now()
            + chrono::Duration::from_std(delay).unwrap_or_else(|_| chrono::Duration::zero());
        let ev = self.event(EventBody::RetryScheduled {
            iteration: n,
            delay_s: delay.as_secs_f64(),
            error_class: class.as_str().to_string(),
            until: exact.then(|| until.to_rfc3339_opts(SecondsFormat::Secs, true)),
        });
        self.store.append_events(&[ev.to_record()])?;
        self.emit(&[ev]);
        let end = tokio::time::Instant::now() + delay;
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.sink.waiting(left, class.as_str());
            // Wake once a second so the terminal can show a countdown.
            let tick = left.min(Duration::from_secs(1));
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                c = self.control.recv() => {
                    if let Some(c) = c {
                        return Ok(Some(control_stop(c)));
                    }
                }
            }
        }
    }

    fn retry_delay(&mut self, failures: u32) -> Duration {
        let r = &self.settings.retry;
        let base = r.base_delay.as_secs_f64();
        let raw = match r.strategy {
            RetryStrategy::Immediate => 0.0,
            RetryStrategy::Linear => base * failures as f64,
            RetryStrategy::Exponential => {
                let exp = 2f64.powi(failures.saturating_sub(1).min(30) as i32);
                // ±20% jitter so parallel runs hitting one rate limit do not retry in lockstep.
                self.rng ^= self.rng << 13;
                self.rng ^= self.rng >> 7;
                self.rng ^= self.rng << 17;
                let jitter = 0.8 + 0.4 * ((self.rng >> 11) as f64 / (1u64 << 53) as f64);
                base * exp * jitter
            }
        };
        Duration::from_secs_f64(raw.min(r.max_delay.as_secs_f64()).max(0.0))
    }

    fn deadlines(&self, own_timeout: Duration, idle: bool) -> Deadlines {
        let now = Instant::now();
        let remaining = self.settings.limits.max_runtime.as_secs_f64() - self.elapsed();
        let remaining = Duration::from_secs_f64(remaining.max(0.0));
        let runtime_first = remaining < own_timeout;
        Deadlines {
            deadline: now
                + if runtime_first {
                    remaining
                } else {
                    own_timeout
                },
            deadline_is_runtime: runtime_first,
            idle: if idle {
                Some(self.settings.limits.idle_timeout)
            } else {
                None
            },
            grace: KILL_GRACE,
        }
    }

    /// Take a checkpoint for iteration `n`; returns its event and the diff against the previous
    /// checkpoint. A failure is a warning, never a reason to stop the user's run.
    fn checkpoint(&mut self, n: u32) -> Option<RunEvent> {
        self.git.as_ref()?;
        self.open_audit();
        let git = self.git.as_ref()?;
        let refname = format!("refs/ralph/checkpoints/{}/{n:04}", self.run.id);
        // The audit chain's head goes into the commit: an anchor outside the log, so removing
        // its last records is detectable (`ralph audit verify`).
        let mut msg = format!("ralph checkpoint: run {} iteration {n}", self.run.id);
        if let Some(head) = self.audit.as_ref().and_then(|a| a.head()) {
            msg.push_str("\n\n");
            msg.push_str(&ralph_store::audit::anchor_line(head));
        }
        let options = ralph_git::CheckpointOptions {
            max_untracked_bytes: Some(self.settings.max_untracked_bytes),
        };
        match git.checkpoint_with(&refname, &msg, &self.state_dir, &options) {
            Ok(cp) => {
                self.run.last_checkpoint = Some(cp.tree.clone());
                let data = serde_json::json!({
                    "iteration": n, "ref": cp.refname, "commit": cp.commit,
                    "skipped_large": cp.skipped_large,
                });
                self.audit_record(ralph_store::audit::kinds::CHECKPOINT, data);
                Some(self.event(EventBody::CheckpointCreated {
                    iteration: n,
                    r#ref: cp.refname,
                    commit: cp.commit,
                }))
            }
            Err(e) => {
                let ev = self.event(EventBody::Warning {
                    message: format!("checkpoint failed: {e}"),
                });
                let _ = self.store.append_events(&[ev.to_record()]);
                self.emit(&[ev]);
                None
            }
        }
    }

    /// Open the audit log if not yet open, and write the run.started record first.
    fn open_audit(&mut self) {
        if self.audit.is_some() {
            return;
        }
        let path = self.state_dir.join(ralph_store::audit::AUDIT_FILE);
        match ralph_store::AuditLog::open(&path) {
            Ok(mut log) => {
                if let Some(data) = self.audit_started.take() {
                    let _ = log.append(ralph_store::audit::kinds::RUN_STARTED, &self.run.id, data);
                }
                self.audit = Some(log);
            }
            Err(e) => {
                // Said once per session: retrying every record would repeat it.
                self.audit_started = None;
                let ev = self.event(EventBody::Warning {
                    message: format!("the audit log could not be opened ({e}); running without it"),
                });
                let _ = self.store.append_events(&[ev.to_record()]);
                self.emit(&[ev]);
            }
        }
    }

    /// Append to the audit log. A failure is said loudly but does not stop the user's run.
    fn audit_record(&mut self, kind: &str, data: serde_json::Value) {
        // Guard records quote what the agent ran, which may hold a secret.
        let text = data.to_string();
        let data = match self.settings.redactor.redact(&text) {
            std::borrow::Cow::Borrowed(_) => data,
            // Never fall back to the unredacted value.
            std::borrow::Cow::Owned(clean) => serde_json::from_str(&clean)
                .unwrap_or_else(|_| serde_json::json!({ "redacted": clean })),
        };
        self.open_audit();
        let Some(audit) = self.audit.as_mut() else {
            return;
        };
        if let Err(e) = audit.append(kind, &self.run.id, data) {
            let ev = self.event(EventBody::Warning {
                message: format!("the audit log could not be written: {e}"),
            });
            let _ = self.store.append_events(&[ev.to_record()]);
            self.emit(&[ev]);
        }
    }

    /// The guardrails after an iteration: a tripped guard reverts everything the iteration
    /// did; a change to a protected path is put back; more files changed than
    /// `max_files_changed` are reverted (twice in a row stops); `.git` config and hooks are
    /// put back. Returns (stop, reverted, feedback for the next prompt).
    fn guard_iteration(
        &mut self,
        n: u32,
        trip: Option<&GuardTrip>,
        pre: Option<&str>,
        post: Option<&str>,
        diff: Option<&ralph_git::DiffStat>,
        git_meta: Option<&crate::safety::GitMeta>,
    ) -> (Option<(StopReason, String)>, bool, Option<String>) {
        let mut stop = None;
        let mut reverted = false;
        let mut feedback = None;
        let restore =
            |this: &Self, paths: Option<&[String]>| -> Result<ralph_git::RestoreReport, String> {
                match (&this.git, pre, post) {
                    (Some(git), Some(pre), Some(post)) => git
                        .restore_from(post, pre, &this.state_dir, paths)
                        .map_err(|e| e.to_string()),
                    _ => Err("no checkpoint to restore from (not a git repository?)".to_string()),
                }
            };
        if let Some(t) = trip {
            let restored = restore(self, None);
            reverted = restored.is_ok();
            let how = match &restored {
                Ok(r) => format!("{} files restored", r.written.len() + r.deleted.len()),
                Err(e) => format!("could not restore: {e}"),
            };
            self.audit_record(
                ralph_store::audit::kinds::COMMAND_BLOCKED,
                serde_json::json!({
                    "iteration": n, "tool": t.tool, "what": t.what,
                    "rule": t.blocked.rule, "reason": t.blocked.reason, "restored": how,
                }),
            );
            stop = Some((
                StopReason::Safety,
                format!(
                    "stopped by a safety guard: the agent tried `{}` ({}); it was killed and the \
                     iteration reverted ({how})",
                    t.what, t.blocked
                ),
            ));
        } else if let Some(d) = diff {
            let protected: Vec<String> = d
                .paths
                .iter()
                .filter(|p| self.guard.paths.matches(p).is_some())
                .cloned()
                .collect();
            if !protected.is_empty() {
                let restored = restore(self, Some(&protected));
                self.audit_record(
                    ralph_store::audit::kinds::GUARD_TRIPPED,
                    serde_json::json!({
                        "iteration": n, "guard": "protected_paths", "paths": protected,
                        "restored": restored.is_ok(),
                    }),
                );
                stop = Some((
                    StopReason::Safety,
                    format!(
                        "stopped by a safety guard: the agent changed protected path{} {} \
                         (safety.protected_paths); {}",
                        if protected.len() == 1 { "" } else { "s" },
                        protected.join(", "),
                        match restored {
                            Ok(_) => "restored from the checkpoint".to_string(),
                            Err(e) => format!("restoring failed: {e}"),
                        }
                    ),
                ));
            } else if d.files_changed > self.settings.safety.max_files_changed {
                let max = self.settings.safety.max_files_changed;
                let restored = restore(self, None);
                reverted = restored.is_ok();
                self.over_limit += 1;
                self.audit_record(
                    ralph_store::audit::kinds::GUARD_TRIPPED,
                    serde_json::json!({
                        "iteration": n, "guard": "max_files_changed",
                        "files_changed": d.files_changed, "max": max, "reverted": reverted,
                    }),
                );
                feedback = Some(format!(
                    "Your changes in iteration {n} touched {} files, more than the {max} allowed \
                     (safety.max_files_changed), so ralph reverted them. Make a smaller, focused \
                     change.",
                    d.files_changed
                ));
                if self.over_limit >= 2 {
                    stop = Some((
                        StopReason::Safety,
                        format!(
                            "stopped by a safety guard: two iterations in a row changed more than \
                             {max} files (safety.max_files_changed); both were reverted"
                        ),
                    ));
                }
            } else {
                self.over_limit = 0;
            }
        }
        if let Some(meta) = git_meta {
            let changed = meta.changed(&self.settings.root);
            if !changed.is_empty() {
                let restored = meta.restore();
                self.audit_record(
                    ralph_store::audit::kinds::GUARD_TRIPPED,
                    serde_json::json!({
                        "iteration": n, "guard": "protected_paths", "paths": changed,
                        "restored": restored.is_ok(),
                    }),
                );
                if stop.is_none() {
                    stop = Some((
                        StopReason::Safety,
                        format!(
                            "stopped by a safety guard: the agent changed {} (protected: .git/**); \
                             {}",
                            changed.join(", "),
                            if restored.is_ok() { "restored" } else { "restoring failed" }
                        ),
                    ));
                }
            }
        }
        (stop, reverted, feedback)
    }

    fn finish(mut self, reason: StopReason, message: String) -> Result<RunSummary, EngineError> {
        let message = self.settings.redactor.redact(&message).into_owned();
        self.touch();
        self.audit_record(
            ralph_store::audit::kinds::RUN_FINISHED,
            serde_json::json!({
                "stop_reason": reason.as_str(), "exit_code": reason.exit_code(),
                "iterations": self.run.iteration, "message": message,
            }),
        );
        self.run.state = reason.state();
        self.run.stop_reason = Some(reason.as_str().to_string());
        self.run.exit_code = Some(reason.exit_code());
        self.run.current_iteration = None;
        let ev = self.event(EventBody::RunFinished {
            stop_reason: reason,
            exit_code: reason.exit_code(),
            message: message.clone(),
            iterations: self.run.iteration,
            elapsed_s: self.run.elapsed_s,
            cost_usd: self.run.cost_usd,
            cost_unknown_iterations: self.cost_unknown,
            tokens: self.run.tokens,
        });
        self.store.save_run(&self.run, &[ev.to_record()], true)?;
        self.emit(&[ev]);
        Ok(RunSummary {
            run: self.run,
            stop_reason: reason,
            exit_code: reason.exit_code(),
            message,
        })
    }
}

fn unsafe_geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn control_stop(c: Control) -> (StopReason, String) {
    match c {
        Control::Interrupt | Control::Kill => (
            StopReason::Interrupted,
            "interrupted; the unfinished iteration was not recorded and `ralph run` resumes".into(),
        ),
        Control::Terminate => (
            StopReason::Terminated,
            "terminated by SIGTERM; `ralph run` resumes this run".into(),
        ),
        Control::StopNow => (
            StopReason::StopRequested,
            "stopped on request (ralph stop --now); `ralph run` resumes this run".into(),
        ),
    }
}

fn runtime_message(limit: Duration) -> String {
    format!(
        "runtime limit reached ({}); raise --max-runtime or loop.max_runtime to allow more",
        fmt_duration(limit)
    )
}

fn set_error(outcome: &mut AgentOutcome, class: ErrorClass, message: String) {
    outcome.error = Some(class);
    outcome.error_message = Some(message);
}

/// `1h30m`, `45s`, `2m5s`.
pub fn fmt_duration(d: Duration) -> String {
    let total = d.as_secs();
    if total == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// What the next iteration should hear about this one. `None` when there is nothing to say.
fn feedback(
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
        let lead = if claimed && g.when == GateWhen::Complete {
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
    if claimed
        && gates
            .iter()
            .any(|g| !g.passed && g.when == GateWhen::Complete)
    {
        parts.push(format!("Fix this before writing {marker} again."));
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("\n\n"))
    }
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// "timed out", "failed with exit code 1", "was killed".
fn gate_verdict(g: &GateOutcome) -> String {
    if g.timed_out {
        "timed out".to_string()
    } else {
        match g.exit_code {
            Some(c) => format!("failed with exit code {c}"),
            None => "was killed".to_string(),
        }
    }
}
