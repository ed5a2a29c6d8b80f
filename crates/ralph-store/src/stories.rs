//! The stories mode's state (STORIES.md): reads of plan runs, stories, attempts, the merge
//! queue and the gate cache, and how their writes ([`crate::Write`]) are applied.
//!
//! Every story state change is one transaction together with its `story.state` event: a write
//! that changes a stored story's state without an event naming that story is refused, so the
//! journal cannot miss a transition.

use rusqlite::{params, OptionalExtension, Transaction};

use crate::records::{EventRecord, RunRecord};
use crate::story_records::{
    AttemptRecord, GateResult, PlanRunRecord, QueueEntry, QueueState, StoryRecord, StoryState,
};
use crate::{sql, Store, StoreError};

/// The kind of the event every story state change carries; its payload is a JSON object with
/// the story's id under `story_id`.
pub const STORY_STATE_EVENT: &str = "story.state";

impl Store {
    /// Whether the database has the stories mode's tables (v5): one of an older ralph opened
    /// read-only (`ralph stories status` next to an old database) has no plan runs.
    fn has_stories(&self) -> bool {
        self.version >= crate::schema::STORIES_VERSION
    }

    pub fn plan_run(&self, id: &str) -> Result<Option<PlanRunRecord>, StoreError> {
        if !self.has_stories() {
            return Ok(None);
        }
        let q = format!(
            "SELECT {} FROM plan_runs WHERE id = ?1",
            PlanRunRecord::COLUMNS
        );
        self.conn
            .query_row(&q, [id], PlanRunRecord::from_row)
            .optional()
            .map_err(sql("read a plan run"))
    }

    /// The newest plan run of `plan_name` with no `finished_at`: what `ralph stories run`
    /// resumes.
    pub fn latest_unfinished_plan_run(
        &self,
        plan_name: &str,
    ) -> Result<Option<PlanRunRecord>, StoreError> {
        if !self.has_stories() {
            return Ok(None);
        }
        let q = format!(
            "SELECT {} FROM plan_runs WHERE plan_name = ?1 AND finished_at IS NULL \
             ORDER BY rowid DESC LIMIT 1",
            PlanRunRecord::COLUMNS
        );
        self.conn
            .query_row(&q, [plan_name], PlanRunRecord::from_row)
            .optional()
            .map_err(sql("look up an unfinished plan run"))
    }

    /// The newest plan run, of `plan_name` or of any plan, finished or not (`stories status`).
    pub fn latest_plan_run(
        &self,
        plan_name: Option<&str>,
    ) -> Result<Option<PlanRunRecord>, StoreError> {
        if !self.has_stories() {
            return Ok(None);
        }
        let q = format!(
            "SELECT {} FROM plan_runs WHERE ?1 IS NULL OR plan_name = ?1 \
             ORDER BY rowid DESC LIMIT 1",
            PlanRunRecord::COLUMNS
        );
        self.conn
            .query_row(&q, [plan_name], PlanRunRecord::from_row)
            .optional()
            .map_err(sql("read the latest plan run"))
    }

    /// Every integration branch any plan run used (`ralph stories clean`: a story's work
    /// merged into one of them is kept without its worktree).
    pub fn integration_branches(&self) -> Result<Vec<String>, StoreError> {
        if !self.has_stories() {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT integration_branch FROM plan_runs ORDER BY 1")
            .map_err(sql("list integration branches"))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(sql("list integration branches"))?;
        rows.collect::<Result<Vec<String>, _>>()
            .map_err(sql("list integration branches"))
    }

    /// Every story of a plan run, in the order they were first written.
    pub fn stories(&self, plan_run_id: &str) -> Result<Vec<StoryRecord>, StoreError> {
        let q = format!(
            "SELECT {} FROM stories WHERE plan_run_id = ?1 ORDER BY rowid",
            StoryRecord::COLUMNS
        );
        let mut stmt = self.conn.prepare(&q).map_err(sql("list stories"))?;
        let rows = stmt
            .query_map([plan_run_id], StoryRecord::from_row)
            .map_err(sql("list stories"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("list stories"))
    }

    pub fn story(
        &self,
        plan_run_id: &str,
        story_id: &str,
    ) -> Result<Option<StoryRecord>, StoreError> {
        let q = format!(
            "SELECT {} FROM stories WHERE plan_run_id = ?1 AND story_id = ?2",
            StoryRecord::COLUMNS
        );
        self.conn
            .query_row(&q, [plan_run_id, story_id], StoryRecord::from_row)
            .optional()
            .map_err(sql("read a story"))
    }

    /// A story's attempts, first first.
    pub fn attempts(
        &self,
        plan_run_id: &str,
        story_id: &str,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let q = format!(
            "SELECT {} FROM story_attempts WHERE plan_run_id = ?1 AND story_id = ?2 ORDER BY n",
            AttemptRecord::COLUMNS
        );
        let mut stmt = self.conn.prepare(&q).map_err(sql("list attempts"))?;
        let rows = stmt
            .query_map([plan_run_id, story_id], AttemptRecord::from_row)
            .map_err(sql("list attempts"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("list attempts"))
    }

    /// The plan run's merge queue, every entry (landed ones too), by `seq`.
    pub fn merge_queue(&self, plan_run_id: &str) -> Result<Vec<QueueEntry>, StoreError> {
        let q = format!(
            "SELECT {} FROM merge_queue WHERE plan_run_id = ?1 ORDER BY seq",
            QueueEntry::COLUMNS
        );
        let mut stmt = self.conn.prepare(&q).map_err(sql("read the merge queue"))?;
        let rows = stmt
            .query_map([plan_run_id], QueueEntry::from_row)
            .map_err(sql("read the merge queue"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("read the merge queue"))
    }

    /// The cached result of `gate` with command hash `command_hash` on `tree`, if any.
    pub fn gate_result(
        &self,
        tree: &str,
        gate: &str,
        command_hash: &str,
    ) -> Result<Option<GateResult>, StoreError> {
        if !self.has_stories() {
            return Ok(None);
        }
        let q = format!(
            "SELECT {} FROM gate_cache WHERE tree = ?1 AND gate = ?2 AND command_hash = ?3",
            GateResult::COLUMNS
        );
        self.conn
            .query_row(&q, [tree, gate, command_hash], GateResult::from_row)
            .optional()
            .map_err(sql("read the gate cache"))
    }

    /// The most recent loop run of a story in a plan run, whatever its state: a story found
    /// `running` after a crash whose run had already completed goes to the queue, not to its
    /// agent again.
    pub fn latest_story_run(
        &self,
        plan_run_id: &str,
        story_id: &str,
    ) -> Result<Option<RunRecord>, StoreError> {
        if !self.has_stories() {
            return Ok(None);
        }
        let q = format!(
            "SELECT {} FROM runs WHERE plan_run_id = ?1 AND scope = ?2 ORDER BY rowid DESC LIMIT 1",
            RunRecord::COLUMNS
        );
        self.conn
            .query_row(&q, params![plan_run_id, story_id], RunRecord::from_row)
            .optional()
            .map_err(sql("look up a story's latest run"))
    }

    /// The most recent unfinished loop run of a story in a plan run (the same states as
    /// [`Store::resumable_run`]): story ids repeat across plan runs, so the scope alone is
    /// not enough.
    pub fn resumable_story_run(
        &self,
        plan_run_id: &str,
        story_id: &str,
    ) -> Result<Option<RunRecord>, StoreError> {
        if !self.has_stories() {
            return Ok(None);
        }
        let q = format!(
            "SELECT {} FROM runs WHERE plan_run_id = ?1 AND scope = ?2 AND \
             (state IN ('running', 'interrupted') \
             OR (state = 'stopped' AND stop_reason = 'stop_requested') \
             OR (state = 'failed' AND stop_reason IN ('needs_human', 'internal_error'))) \
             ORDER BY rowid DESC LIMIT 1",
            RunRecord::COLUMNS
        );
        self.conn
            .query_row(&q, params![plan_run_id, story_id], RunRecord::from_row)
            .optional()
            .map_err(sql("look up a story's unfinished run"))
    }
}

/// Write `story`, refusing a state change without its event (module doc).
pub(crate) fn save_story(
    tx: &Transaction<'_>,
    story: &StoryRecord,
    events: &[EventRecord],
) -> Result<(), StoreError> {
    let old: Option<String> = tx
        .query_row(
            "SELECT state FROM stories WHERE plan_run_id = ?1 AND story_id = ?2",
            [&story.plan_run_id, &story.story_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("read a story's state"))?;
    if let Some(old) = old {
        if old != story.state.as_str() && !has_state_event(events, &story.story_id) {
            return Err(StoreError::Invalid(format!(
                "story {} went from {old} to {} without a {STORY_STATE_EVENT} event",
                story.story_id,
                story.state.as_str()
            )));
        }
    }
    story.upsert(tx)
}

fn has_state_event(events: &[EventRecord], story_id: &str) -> bool {
    events.iter().any(|e| {
        e.kind == STORY_STATE_EVENT
            && serde_json::from_str::<serde_json::Value>(&e.payload)
                .ok()
                .and_then(|p| {
                    p.get("story_id")
                        .and_then(|s| s.as_str())
                        .map(|s| s == story_id)
                })
                .unwrap_or(false)
    })
}

pub(crate) fn save_plan_run(
    tx: &Transaction<'_>,
    plan_run: &PlanRunRecord,
    stories: &[StoryRecord],
    events: &[EventRecord],
) -> Result<(), StoreError> {
    plan_run.upsert(tx)?;
    for story in stories {
        if story.plan_run_id != plan_run.id {
            return Err(StoreError::Invalid(format!(
                "story {} belongs to plan run {}, not {}",
                story.story_id, story.plan_run_id, plan_run.id
            )));
        }
        save_story(tx, story, events)?;
    }
    crate::insert_events(tx, events)
}

pub(crate) fn save_attempt(
    tx: &Transaction<'_>,
    attempt: &AttemptRecord,
    story: Option<&StoryRecord>,
    events: &[EventRecord],
) -> Result<(), StoreError> {
    if let Some(story) = story {
        if (story.plan_run_id.as_str(), story.story_id.as_str())
            != (attempt.plan_run_id.as_str(), attempt.story_id.as_str())
        {
            return Err(StoreError::Invalid(format!(
                "attempt {} of story {} saved with story {}",
                attempt.n, attempt.story_id, story.story_id
            )));
        }
        // The story first: the attempt's foreign key needs its row.
        save_story(tx, story, events)?;
    }
    attempt.upsert(tx)?;
    crate::insert_events(tx, events)
}

pub(crate) fn save_queue_entry(
    tx: &Transaction<'_>,
    entry: &QueueEntry,
    stories: &[StoryRecord],
    events: &[EventRecord],
) -> Result<(), StoreError> {
    entry.upsert(tx)?;
    for story in stories {
        save_story(tx, story, events)?;
    }
    crate::insert_events(tx, events)
}

/// The entry landed and every story of it merged, or nothing.
pub(crate) fn land(
    tx: &Transaction<'_>,
    entry: &QueueEntry,
    stories: &[StoryRecord],
    events: &[EventRecord],
) -> Result<(), StoreError> {
    if entry.state != QueueState::Landed {
        return Err(StoreError::Invalid(format!(
            "queue entry {} landed in state {}",
            entry.seq,
            entry.state.as_str()
        )));
    }
    let mut ids: Vec<&str> = stories.iter().map(|s| s.story_id.as_str()).collect();
    let mut expected: Vec<&str> = entry.story_ids.iter().map(String::as_str).collect();
    ids.sort_unstable();
    expected.sort_unstable();
    if ids != expected {
        return Err(StoreError::Invalid(format!(
            "queue entry {} holds {expected:?} but landed {ids:?}",
            entry.seq
        )));
    }
    if let Some(s) = stories
        .iter()
        .find(|s| s.state != StoryState::Merged || s.plan_run_id != entry.plan_run_id)
    {
        return Err(StoreError::Invalid(format!(
            "story {} landed as {} (plan run {})",
            s.story_id,
            s.state.as_str(),
            s.plan_run_id
        )));
    }
    save_queue_entry(tx, entry, stories, events)
}
