//! Per-story figures of a plan run (`ralph stories status --json`, `ralph cost --by story`):
//! summed from the iterations and side calls of the stories' loop runs (runs with the plan
//! run's id and scope = the story id), never from the scheduler's own counts. A cost is `None`
//! when any call in it has an unknown (or implausible, `ralph_types::plausible`) cost: a
//! partial sum is never shown as the cost, and unknown is never shown as 0.

use rusqlite::params;

use crate::report::Source;
use crate::story_records::StoryState;
use crate::{sql, Store, StoreError};

/// One story's line of a plan run's report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoryReportRow {
    #[serde(rename = "id")]
    pub story_id: String,
    pub state: StoryState,
    pub layer: Option<String>,
    pub depends_on: Vec<String>,
    /// Committed iterations of every attempt's loop run.
    pub iterations: u32,
    /// Iterations and side calls of every attempt; `Some(0.0)` when nothing ran yet.
    pub cost_usd: Option<f64>,
    pub branch: Option<String>,
    pub attempts: u32,
    /// Why the story is in its state (a failure's stop reason, what blocks it), if stored.
    pub reason: Option<String>,
    /// The model its last iteration ran on, as the agent reported it.
    pub model: Option<String>,
    /// The tier its loop last moved up to (`[routing]`'s escalation), if it did.
    pub escalated_to: Option<String>,
}

/// Calls (iterations and side calls) of the plan run's loop runs, per run scope, as
/// (scope, calls, iterations, calls of known cost, sum of the known costs).
fn per_scope_sql() -> String {
    let calls = Source::Project {
        side_calls: true,
        scopes: true,
    }
    .calls();
    format!(
        "SELECT r.scope AS scope, COUNT(*) AS calls, COALESCE(SUM(c.is_iteration), 0) AS iters, \
         COUNT(c.cost_usd) AS known, COALESCE(SUM(c.cost_usd), 0) AS cost \
         FROM ({calls}) c JOIN runs r ON r.id = c.run_id WHERE r.plan_run_id = ?1 \
         GROUP BY r.scope"
    )
}

impl Store {
    /// Every story of the plan run, in plan order, with its iterations and cost summed from
    /// its loop runs.
    pub fn story_report(&self, plan_run_id: &str) -> Result<Vec<StoryReportRow>, StoreError> {
        let q = format!(
            "WITH sc AS ({}) SELECT s.story_id, s.state, s.layer, s.depends_on, \
             COALESCE(sc.iters, 0), \
             CASE WHEN sc.calls IS NULL THEN 0.0 WHEN sc.known = sc.calls THEN sc.cost END, \
             s.branch, s.attempts, s.reason, \
             (SELECT i.model FROM iterations i JOIN runs r ON r.id = i.run_id \
              WHERE r.plan_run_id = ?1 AND r.scope = s.story_id \
              ORDER BY i.finished_at DESC, i.n DESC LIMIT 1), \
             (SELECT json_extract(e.payload, '$.tier') FROM events e JOIN runs r ON r.id = e.run_id \
              WHERE r.plan_run_id = ?1 AND r.scope = s.story_id AND e.kind = 'story.escalated' \
              ORDER BY e.id DESC LIMIT 1) \
             FROM stories s LEFT JOIN sc ON sc.scope = s.story_id \
             WHERE s.plan_run_id = ?1 ORDER BY s.rowid",
            per_scope_sql()
        );
        let mut stmt = self.conn.prepare(&q).map_err(sql("report the stories"))?;
        let rows = stmt
            .query_map(params![plan_run_id], |r| {
                let state: String = r.get(1)?;
                let depends_on: String = r.get(3)?;
                Ok(StoryReportRow {
                    story_id: r.get(0)?,
                    state: StoryState::parse(&state).ok_or_else(|| {
                        conversion(1, format!("unknown story state {state:?}").into())
                    })?,
                    layer: r.get(2)?,
                    depends_on: serde_json::from_str(&depends_on)
                        .map_err(|e| conversion(3, Box::new(e)))?,
                    iterations: r.get(4)?,
                    cost_usd: r.get(5)?,
                    branch: r.get(6)?,
                    attempts: r.get(7)?,
                    reason: r.get(8)?,
                    model: r.get(9)?,
                    escalated_to: r.get(10)?,
                })
            })
            .map_err(sql("report the stories"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("report the stories"))
    }

    /// The whole plan run's cost: every run linked to it (stories' loops, and any other agent
    /// run of the plan, e.g. a merge resolver's), `None` when any call's cost is unknown,
    /// `Some(0.0)` when nothing ran.
    pub fn plan_run_cost(&self, plan_run_id: &str) -> Result<Option<f64>, StoreError> {
        let q = format!(
            "SELECT CASE WHEN COALESCE(SUM(known), 0) = COALESCE(SUM(calls), 0) \
             THEN COALESCE(SUM(cost), 0.0) END FROM ({})",
            per_scope_sql()
        );
        self.conn
            .query_row(&q, params![plan_run_id], |r| r.get(0))
            .map_err(sql("sum the plan run's cost"))
    }
}

fn conversion(i: usize, e: Box<dyn std::error::Error + Send + Sync>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e)
}
