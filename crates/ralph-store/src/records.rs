//! Row types.

use rusqlite::{params, Row, Transaction};

use crate::{sql, StoreError};

pub use ralph_types::Tokens;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    Completed,
    Stopped,
    Failed,
    Interrupted,
}

impl RunState {
    pub fn as_str(&self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Completed => "completed",
            RunState::Stopped => "stopped",
            RunState::Failed => "failed",
            RunState::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> RunState {
        match s {
            "completed" => RunState::Completed,
            "stopped" => RunState::Stopped,
            "failed" => RunState::Failed,
            "interrupted" => RunState::Interrupted,
            _ => RunState::Running,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub id: String,
    pub state: RunState,
    pub stop_reason: Option<String>,
    pub exit_code: Option<i32>,
    pub backend: String,
    pub model: Option<String>,
    /// Committed iterations.
    pub iteration: u32,
    pub max_iterations: u32,
    pub started_at: String,
    pub updated_at: String,
    /// Active time summed over every session of this run.
    pub elapsed_s: f64,
    pub cost_usd: f64,
    pub budget_usd: Option<f64>,
    pub tokens: Tokens,
    pub consecutive_failures: u32,
    /// The iteration in progress, if any.
    pub current_iteration: Option<u32>,
    /// Feedback for the next iteration's prompt (survives a crash so resume keeps it).
    pub feedback: Option<String>,
    /// Tree of the last checkpoint: the baseline for the next iteration's diff.
    pub last_checkpoint: Option<String>,
    /// PID of the ralph process that last ran this run.
    pub pid: Option<u32>,
    /// How many times this run was started or resumed.
    pub sessions: u32,
    /// ralph's running notes on earlier iterations, sent in the prompt's volatile part.
    pub notes: Option<String>,
    /// What the run belongs to: `None` for the single loop (`ralph run`), a story id for a
    /// story's loop in a plan run. Resume looks for an unfinished run of the same scope.
    pub scope: Option<String>,
    /// The plan run a story's loop run belongs to (`None` for the single loop). Set when the
    /// run is first written; a later write with `None` keeps the stored link.
    pub plan_run_id: Option<String>,
}

impl RunRecord {
    /// A run that has not started yet: state running, nothing counted, one session. The engine
    /// fills in the backend, model and limits when it starts.
    pub fn new(id: String, now: &str, scope: Option<String>) -> RunRecord {
        RunRecord {
            id,
            state: RunState::Running,
            stop_reason: None,
            exit_code: None,
            backend: String::new(),
            model: None,
            iteration: 0,
            max_iterations: 0,
            started_at: now.to_string(),
            updated_at: now.to_string(),
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
            scope,
            plan_run_id: None,
        }
    }

    pub(crate) const COLUMNS: &'static str = "id, state, stop_reason, exit_code, backend, model, \
        iteration, max_iterations, started_at, updated_at, elapsed_s, cost_usd, budget_usd, \
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, consecutive_failures, \
        current_iteration, feedback, last_checkpoint, pid, sessions, notes, scope, plan_run_id";

    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<RunRecord> {
        Ok(RunRecord {
            id: r.get(0)?,
            state: RunState::parse(&r.get::<_, String>(1)?),
            stop_reason: r.get(2)?,
            exit_code: r.get(3)?,
            backend: r.get(4)?,
            model: r.get(5)?,
            iteration: r.get(6)?,
            max_iterations: r.get(7)?,
            started_at: r.get(8)?,
            updated_at: r.get(9)?,
            elapsed_s: r.get(10)?,
            cost_usd: r.get(11)?,
            budget_usd: r.get(12)?,
            tokens: Tokens {
                input: r.get::<_, i64>(13)? as u64,
                output: r.get::<_, i64>(14)? as u64,
                cache_read: r.get::<_, i64>(15)? as u64,
                cache_write: r.get::<_, i64>(16)? as u64,
            },
            consecutive_failures: r.get(17)?,
            current_iteration: r.get(18)?,
            feedback: r.get(19)?,
            last_checkpoint: r.get(20)?,
            pid: r.get(21)?,
            sessions: r.get(22)?,
            notes: r.get(23)?,
            scope: r.get(24)?,
            plan_run_id: r.get(25)?,
        })
    }

    pub(crate) fn upsert(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        tx.prepare_cached(
            "INSERT INTO runs (id, state, stop_reason, exit_code, backend, model, iteration, \
             max_iterations, started_at, updated_at, elapsed_s, cost_usd, budget_usd, input_tokens, \
             output_tokens, cache_read_tokens, cache_write_tokens, consecutive_failures, \
             current_iteration, feedback, last_checkpoint, pid, sessions, notes, scope, plan_run_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
             ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26) ON CONFLICT(id) DO UPDATE SET state = excluded.state, \
             stop_reason = excluded.stop_reason, exit_code = excluded.exit_code, \
             backend = excluded.backend, model = excluded.model, iteration = excluded.iteration, \
             max_iterations = excluded.max_iterations, updated_at = excluded.updated_at, \
             elapsed_s = excluded.elapsed_s, cost_usd = excluded.cost_usd, \
             budget_usd = excluded.budget_usd, input_tokens = excluded.input_tokens, \
             output_tokens = excluded.output_tokens, cache_read_tokens = excluded.cache_read_tokens, \
             cache_write_tokens = excluded.cache_write_tokens, \
             consecutive_failures = excluded.consecutive_failures, \
             current_iteration = excluded.current_iteration, feedback = excluded.feedback, \
             last_checkpoint = excluded.last_checkpoint, pid = excluded.pid, \
             sessions = excluded.sessions, notes = excluded.notes, \
             plan_run_id = COALESCE(excluded.plan_run_id, runs.plan_run_id)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                self.id,
                self.state.as_str(),
                self.stop_reason,
                self.exit_code,
                self.backend,
                self.model,
                self.iteration,
                self.max_iterations,
                self.started_at,
                self.updated_at,
                self.elapsed_s,
                self.cost_usd,
                self.budget_usd,
                self.tokens.input as i64,
                self.tokens.output as i64,
                self.tokens.cache_read as i64,
                self.tokens.cache_write as i64,
                self.consecutive_failures,
                self.current_iteration,
                self.feedback,
                self.last_checkpoint,
                self.pid,
                self.sessions,
                self.notes,
                self.scope,
                self.plan_run_id,
            ])
        })
        .map(|_| ())
        .map_err(sql("write the run"))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IterationRecord {
    pub run_id: String,
    pub n: u32,
    pub started_at: String,
    pub finished_at: String,
    pub duration_s: f64,
    pub backend: String,
    pub model: Option<String>,
    /// completed | progressed | no_change | gates_failed | failed
    pub outcome: String,
    pub error_class: Option<String>,
    pub error_message: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub cost_usd: Option<f64>,
    /// reported | computed | unknown
    pub cost_source: String,
    pub tokens: Option<Tokens>,
    pub files_changed: Option<u32>,
    pub insertions: Option<u64>,
    pub deletions: Option<u64>,
    pub checkpoint: Option<String>,
    pub completion_claimed: bool,
    pub gates_passed: Option<bool>,
    pub output_lines: u64,
    pub unknown_lines: u64,
    /// SHA-256 (hex) of the user's prompt text this iteration: a change marks a new version.
    pub prompt_sha256: Option<String>,
    /// Bytes of the whole prompt sent, and of the user's part of it (the rest is ralph's).
    pub prompt_bytes: Option<u64>,
    pub user_prompt_bytes: Option<u64>,
    /// Peak tokens in the agent's context during the iteration, and the model's window.
    pub context_tokens: Option<u64>,
    pub context_window: Option<u64>,
}

impl IterationRecord {
    pub(crate) const COLUMNS: &'static str = "run_id, n, started_at, finished_at, duration_s, \
        backend, model, outcome, error_class, error_message, exit_code, signal, cost_usd, \
        cost_source, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, \
        files_changed, insertions, deletions, checkpoint, completion_claimed, gates_passed, \
        output_lines, unknown_lines, prompt_sha256, prompt_bytes, user_prompt_bytes, \
        context_tokens, context_window";

    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<IterationRecord> {
        let input: Option<i64> = r.get(14)?;
        let tokens = match input {
            Some(input) => Some(Tokens {
                input: input as u64,
                output: r.get::<_, Option<i64>>(15)?.unwrap_or(0) as u64,
                cache_read: r.get::<_, Option<i64>>(16)?.unwrap_or(0) as u64,
                cache_write: r.get::<_, Option<i64>>(17)?.unwrap_or(0) as u64,
            }),
            None => None,
        };
        Ok(IterationRecord {
            run_id: r.get(0)?,
            n: r.get(1)?,
            started_at: r.get(2)?,
            finished_at: r.get(3)?,
            duration_s: r.get(4)?,
            backend: r.get(5)?,
            model: r.get(6)?,
            outcome: r.get(7)?,
            error_class: r.get(8)?,
            error_message: r.get(9)?,
            exit_code: r.get(10)?,
            signal: r.get(11)?,
            cost_usd: r.get(12)?,
            cost_source: r.get(13)?,
            tokens,
            files_changed: r.get(18)?,
            insertions: r.get::<_, Option<i64>>(19)?.map(|v| v as u64),
            deletions: r.get::<_, Option<i64>>(20)?.map(|v| v as u64),
            checkpoint: r.get(21)?,
            completion_claimed: r.get(22)?,
            gates_passed: r.get(23)?,
            output_lines: r.get::<_, i64>(24)? as u64,
            unknown_lines: r.get::<_, i64>(25)? as u64,
            prompt_sha256: r.get(26)?,
            prompt_bytes: r.get::<_, Option<i64>>(27)?.map(|v| v as u64),
            user_prompt_bytes: r.get::<_, Option<i64>>(28)?.map(|v| v as u64),
            context_tokens: r.get::<_, Option<i64>>(29)?.map(|v| v as u64),
            context_window: r.get::<_, Option<i64>>(30)?.map(|v| v as u64),
        })
    }

    pub(crate) fn insert(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let t = self.tokens;
        // INSERT OR REPLACE: a resumed run may re-run the iteration a crash interrupted; the
        // replay replaces nothing committed because only committed iterations have rows.
        tx.prepare_cached(
            "INSERT OR REPLACE INTO iterations (run_id, n, started_at, finished_at, duration_s, \
             backend, model, outcome, error_class, error_message, exit_code, signal, cost_usd, \
             cost_source, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, \
             files_changed, insertions, deletions, checkpoint, completion_claimed, gates_passed, \
             output_lines, unknown_lines, prompt_sha256, prompt_bytes, user_prompt_bytes, \
             context_tokens, context_window) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
             ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, \
             ?28, ?29, ?30, ?31)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                self.run_id,
                self.n,
                self.started_at,
                self.finished_at,
                self.duration_s,
                self.backend,
                self.model,
                self.outcome,
                self.error_class,
                self.error_message,
                self.exit_code,
                self.signal,
                self.cost_usd,
                self.cost_source,
                t.map(|t| t.input as i64),
                t.map(|t| t.output as i64),
                t.map(|t| t.cache_read as i64),
                t.map(|t| t.cache_write as i64),
                self.files_changed,
                self.insertions.map(|v| v as i64),
                self.deletions.map(|v| v as i64),
                self.checkpoint,
                self.completion_claimed,
                self.gates_passed,
                self.output_lines as i64,
                self.unknown_lines as i64,
                self.prompt_sha256,
                self.prompt_bytes.map(|v| v as i64),
                self.user_prompt_bytes.map(|v| v as i64),
                self.context_tokens.map(|v| v as i64),
                self.context_window.map(|v| v as i64),
            ])
        })
        .map(|_| ())
        .map_err(sql("write the iteration"))
    }
}

/// One journal entry. `payload` is the event's JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub run_id: String,
    pub iteration: Option<u32>,
    pub ts: String,
    pub kind: String,
    pub payload: String,
}

/// An agent call that is not an iteration (kind `summary`: summarising the notes), accounted
/// like one.
#[derive(Debug, Clone, PartialEq)]
pub struct SideCall {
    pub after_iteration: u32,
    pub kind: String,
    pub ts: String,
    pub backend: String,
    pub model: Option<String>,
    pub cost_usd: Option<f64>,
    pub cost_source: String,
    pub tokens: Option<Tokens>,
}
