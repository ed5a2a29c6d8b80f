//! Row types of the stories mode (STORIES.md): plan runs, stories, attempts, the merge queue
//! and the gate cache.

use rusqlite::types::Type;
use rusqlite::{params, Row, Transaction};

use crate::records::RunState;
use crate::{sql, StoreError};

/// A story's state (STORIES.md "Story states"); serialised as its name (`needs_human`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoryState {
    Pending,
    Ready,
    Running,
    Verifying,
    Queued,
    Merging,
    Merged,
    Failed,
    Conflicted,
    Blocked,
    NeedsHuman,
}

impl StoryState {
    pub const ALL: [StoryState; 11] = [
        StoryState::Pending,
        StoryState::Ready,
        StoryState::Running,
        StoryState::Verifying,
        StoryState::Queued,
        StoryState::Merging,
        StoryState::Merged,
        StoryState::Failed,
        StoryState::Conflicted,
        StoryState::Blocked,
        StoryState::NeedsHuman,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            StoryState::Pending => "pending",
            StoryState::Ready => "ready",
            StoryState::Running => "running",
            StoryState::Verifying => "verifying",
            StoryState::Queued => "queued",
            StoryState::Merging => "merging",
            StoryState::Merged => "merged",
            StoryState::Failed => "failed",
            StoryState::Conflicted => "conflicted",
            StoryState::Blocked => "blocked",
            StoryState::NeedsHuman => "needs_human",
        }
    }

    /// `None` for a name this ralph does not know.
    pub fn parse(s: &str) -> Option<StoryState> {
        StoryState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}

/// A merge-queue entry's state (STORIES.md rule 5); serialised as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    Waiting,
    Checking,
    Passed,
    Failed,
    Landed,
    Repairing,
}

impl QueueState {
    pub const ALL: [QueueState; 6] = [
        QueueState::Waiting,
        QueueState::Checking,
        QueueState::Passed,
        QueueState::Failed,
        QueueState::Landed,
        QueueState::Repairing,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            QueueState::Waiting => "waiting",
            QueueState::Checking => "checking",
            QueueState::Passed => "passed",
            QueueState::Failed => "failed",
            QueueState::Landed => "landed",
            QueueState::Repairing => "repairing",
        }
    }

    /// `None` for a name this ralph does not know.
    pub fn parse(s: &str) -> Option<QueueState> {
        QueueState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}

/// One `ralph stories run` of a plan, resumed until it finishes.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRunRecord {
    pub id: String,
    /// The plan's `name` (the integration branch is `ralph/<name>` by default).
    pub plan_name: String,
    /// The plan file as given (`-f`).
    pub plan_path: String,
    /// Hash of the plan file's content when the plan run started (resume can tell an edit).
    pub plan_hash: String,
    pub integration_branch: String,
    /// The user's `HEAD` commit the integration branch was created from.
    pub base_commit: String,
    /// The user's branch at the start (`None`: detached HEAD); never moved but by `land`.
    pub user_branch: Option<String>,
    /// `running` while it runs; the plan's ending otherwise.
    pub state: RunState,
    pub started_at: String,
    pub updated_at: String,
    /// Set when the plan run ends in a way that is not resumed; `None` is resumable
    /// ([`crate::Store::latest_unfinished_plan_run`]).
    pub finished_at: Option<String>,
    pub stop_reason: Option<String>,
    /// The run's options (`{"parallel": 4, "only": [...]}`), a JSON object.
    pub options: serde_json::Value,
}

impl PlanRunRecord {
    pub(crate) const COLUMNS: &'static str = "id, plan_name, plan_path, plan_hash, \
        integration_branch, base_commit, user_branch, state, started_at, updated_at, finished_at, \
        stop_reason, options";

    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<PlanRunRecord> {
        Ok(PlanRunRecord {
            id: r.get(0)?,
            plan_name: r.get(1)?,
            plan_path: r.get(2)?,
            plan_hash: r.get(3)?,
            integration_branch: r.get(4)?,
            base_commit: r.get(5)?,
            user_branch: r.get(6)?,
            state: RunState::parse(&r.get::<_, String>(7)?),
            started_at: r.get(8)?,
            updated_at: r.get(9)?,
            finished_at: r.get(10)?,
            stop_reason: r.get(11)?,
            options: json_column(r, 12)?,
        })
    }

    pub(crate) fn upsert(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        tx.prepare_cached(
            "INSERT INTO plan_runs (id, plan_name, plan_path, plan_hash, integration_branch, \
             base_commit, user_branch, state, started_at, updated_at, finished_at, stop_reason, \
             options) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
             ON CONFLICT(id) DO UPDATE SET plan_path = excluded.plan_path, \
             plan_hash = excluded.plan_hash, integration_branch = excluded.integration_branch, \
             base_commit = excluded.base_commit, user_branch = excluded.user_branch, \
             state = excluded.state, updated_at = excluded.updated_at, \
             finished_at = excluded.finished_at, stop_reason = excluded.stop_reason, \
             options = excluded.options",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                self.id,
                self.plan_name,
                self.plan_path,
                self.plan_hash,
                self.integration_branch,
                self.base_commit,
                self.user_branch,
                self.state.as_str(),
                self.started_at,
                self.updated_at,
                self.finished_at,
                self.stop_reason,
                self.options.to_string(),
            ])
        })
        .map(|_| ())
        .map_err(sql("write the plan run"))
    }
}

/// One story of a plan run: the scheduler's view of it (the loop's own state is its run).
#[derive(Debug, Clone, PartialEq)]
pub struct StoryRecord {
    pub plan_run_id: String,
    pub story_id: String,
    pub state: StoryState,
    /// The plan's `layer` (data, service, ...).
    pub layer: Option<String>,
    pub depends_on: Vec<String>,
    /// The story branch, once it exists.
    pub branch: Option<String>,
    /// The worktree's path, while it exists.
    pub worktree: Option<String>,
    /// The integration tip the current attempt forked from.
    pub base_commit: Option<String>,
    /// The story branch's tip as last committed by ralph.
    pub head_commit: Option<String>,
    /// The integration commit that landed it.
    pub merged_commit: Option<String>,
    pub attempts: u32,
    /// The scheduler's running counts; reports sum the loop runs' iterations instead
    /// ([`crate::Store::story_report`]).
    pub iterations: u32,
    /// `None` when unknown (never 0 for unknown).
    pub cost_usd: Option<f64>,
    /// Why it is failed, conflicted, blocked or needs a human.
    pub reason: Option<String>,
    pub updated_at: String,
}

impl StoryRecord {
    /// A story not started yet: `pending`, nothing counted, cost known to be 0.
    pub fn new(
        plan_run_id: &str,
        story_id: &str,
        layer: Option<String>,
        depends_on: Vec<String>,
        now: &str,
    ) -> StoryRecord {
        StoryRecord {
            plan_run_id: plan_run_id.to_string(),
            story_id: story_id.to_string(),
            state: StoryState::Pending,
            layer,
            depends_on,
            branch: None,
            worktree: None,
            base_commit: None,
            head_commit: None,
            merged_commit: None,
            attempts: 0,
            iterations: 0,
            cost_usd: Some(0.0),
            reason: None,
            updated_at: now.to_string(),
        }
    }

    pub(crate) const COLUMNS: &'static str = "plan_run_id, story_id, state, layer, depends_on, \
        branch, worktree, base_commit, head_commit, merged_commit, attempts, iterations, cost_usd, \
        reason, updated_at";

    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<StoryRecord> {
        let state: String = r.get(2)?;
        Ok(StoryRecord {
            plan_run_id: r.get(0)?,
            story_id: r.get(1)?,
            state: StoryState::parse(&state).ok_or_else(|| unknown(2, "story state", &state))?,
            layer: r.get(3)?,
            depends_on: json_column(r, 4)?,
            branch: r.get(5)?,
            worktree: r.get(6)?,
            base_commit: r.get(7)?,
            head_commit: r.get(8)?,
            merged_commit: r.get(9)?,
            attempts: r.get(10)?,
            iterations: r.get(11)?,
            cost_usd: r.get(12)?,
            reason: r.get(13)?,
            updated_at: r.get(14)?,
        })
    }

    pub(crate) fn upsert(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let depends_on = serde_json::to_string(&self.depends_on)?;
        tx.prepare_cached(
            // An update in place keeps the row's rowid: stories list in the order they were
            // first written (the plan's).
            "INSERT INTO stories (plan_run_id, story_id, state, layer, depends_on, branch, \
             worktree, base_commit, head_commit, merged_commit, attempts, iterations, cost_usd, \
             reason, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
             ?14, ?15) ON CONFLICT(plan_run_id, story_id) DO UPDATE SET state = excluded.state, \
             layer = excluded.layer, depends_on = excluded.depends_on, branch = excluded.branch, \
             worktree = excluded.worktree, base_commit = excluded.base_commit, \
             head_commit = excluded.head_commit, merged_commit = excluded.merged_commit, \
             attempts = excluded.attempts, iterations = excluded.iterations, \
             cost_usd = excluded.cost_usd, reason = excluded.reason, \
             updated_at = excluded.updated_at",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                self.plan_run_id,
                self.story_id,
                self.state.as_str(),
                self.layer,
                depends_on,
                self.branch,
                self.worktree,
                self.base_commit,
                self.head_commit,
                self.merged_commit,
                self.attempts,
                self.iterations,
                self.cost_usd,
                self.reason,
                self.updated_at,
            ])
        })
        .map(|_| ())
        .map_err(sql("write the story"))
    }
}

/// One attempt at a story: one loop run (`runs.id`, scope = the story id).
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub plan_run_id: String,
    pub story_id: String,
    /// 1 for the first attempt; `ralph stories retry` makes the next.
    pub n: u32,
    /// The loop run of this attempt.
    pub run_id: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// How the attempt ended (the story state it led to, or the loop's stop reason).
    pub outcome: Option<String>,
    /// The integration tip the attempt's worktree forked from.
    pub base_commit: Option<String>,
}

impl AttemptRecord {
    pub(crate) const COLUMNS: &'static str =
        "plan_run_id, story_id, n, run_id, started_at, finished_at, outcome, base_commit";

    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<AttemptRecord> {
        Ok(AttemptRecord {
            plan_run_id: r.get(0)?,
            story_id: r.get(1)?,
            n: r.get(2)?,
            run_id: r.get(3)?,
            started_at: r.get(4)?,
            finished_at: r.get(5)?,
            outcome: r.get(6)?,
            base_commit: r.get(7)?,
        })
    }

    pub(crate) fn upsert(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO story_attempts (plan_run_id, story_id, n, run_id, started_at, \
             finished_at, outcome, base_commit) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                self.plan_run_id,
                self.story_id,
                self.n,
                self.run_id,
                self.started_at,
                self.finished_at,
                self.outcome,
                self.base_commit,
            ])
        })
        .map(|_| ())
        .map_err(sql("write the attempt"))
    }
}

/// One entry of a plan run's persisted merge queue: a candidate of one story or a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    pub plan_run_id: String,
    /// Position in the queue, chosen by the scheduler (increasing).
    pub seq: u32,
    pub story_ids: Vec<String>,
    pub state: QueueState,
    /// The scratch ref the candidate is built on (`refs/ralph/candidates/...`).
    pub candidate_ref: Option<String>,
    pub candidate_commit: Option<String>,
    /// The integration tip the candidate was built on: the expected old value of the
    /// integration branch's update.
    pub built_on: Option<String>,
    /// What the check found (the failing gate, the conflicting paths, ...).
    pub detail: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl QueueEntry {
    pub(crate) const COLUMNS: &'static str = "plan_run_id, seq, story_ids, state, candidate_ref, \
        candidate_commit, built_on, detail, created_at, updated_at";

    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<QueueEntry> {
        let state: String = r.get(3)?;
        Ok(QueueEntry {
            plan_run_id: r.get(0)?,
            seq: r.get(1)?,
            story_ids: json_column(r, 2)?,
            state: QueueState::parse(&state).ok_or_else(|| unknown(3, "queue state", &state))?,
            candidate_ref: r.get(4)?,
            candidate_commit: r.get(5)?,
            built_on: r.get(6)?,
            detail: r.get(7)?,
            created_at: r.get(8)?,
            updated_at: r.get(9)?,
        })
    }

    pub(crate) fn upsert(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let story_ids = serde_json::to_string(&self.story_ids)?;
        tx.prepare_cached(
            "INSERT INTO merge_queue (plan_run_id, seq, story_ids, state, candidate_ref, \
             candidate_commit, built_on, detail, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, \
             ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT(plan_run_id, seq) DO UPDATE SET \
             story_ids = excluded.story_ids, state = excluded.state, \
             candidate_ref = excluded.candidate_ref, candidate_commit = excluded.candidate_commit, \
             built_on = excluded.built_on, detail = excluded.detail, \
             updated_at = excluded.updated_at",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                self.plan_run_id,
                self.seq,
                story_ids,
                self.state.as_str(),
                self.candidate_ref,
                self.candidate_commit,
                self.built_on,
                self.detail,
                self.created_at,
                self.updated_at,
            ])
        })
        .map(|_| ())
        .map_err(sql("write the queue entry"))
    }
}

/// A gate's result on a tree: the same (tree, gate, command) is never checked twice.
#[derive(Debug, Clone, PartialEq)]
pub struct GateResult {
    /// The git tree hash checked.
    pub tree: String,
    /// The gate's name in ralph.toml.
    pub gate: String,
    /// Hash of what the gate runs (command, environment that matters): a changed gate is a
    /// cache miss.
    pub command_hash: String,
    pub passed: bool,
    pub exit_code: Option<i32>,
    pub duration_s: f64,
    /// The end of its output, for the report of a failure.
    pub output_tail: Option<String>,
    pub created_at: String,
}

impl GateResult {
    pub(crate) const COLUMNS: &'static str =
        "tree, gate, command_hash, passed, exit_code, duration_s, output_tail, created_at";

    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<GateResult> {
        Ok(GateResult {
            tree: r.get(0)?,
            gate: r.get(1)?,
            command_hash: r.get(2)?,
            passed: r.get(3)?,
            exit_code: r.get(4)?,
            duration_s: r.get(5)?,
            output_tail: r.get(6)?,
            created_at: r.get(7)?,
        })
    }

    pub(crate) fn upsert(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO gate_cache (tree, gate, command_hash, passed, exit_code, \
             duration_s, output_tail, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                self.tree,
                self.gate,
                self.command_hash,
                self.passed,
                self.exit_code,
                self.duration_s,
                self.output_tail,
                self.created_at,
            ])
        })
        .map(|_| ())
        .map_err(sql("write the gate result"))
    }
}

/// A JSON text column read as `T`.
fn json_column<T: serde::de::DeserializeOwned>(r: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e)))
}

fn unknown(i: usize, what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        i,
        Type::Text,
        format!("unknown {what} {value:?}").into(),
    )
}
