//! Cost reports (`ralph cost`): iterations, and agent calls that are not iterations (side
//! calls, e.g. summarising the notes), grouped by day, model, run, backend or project, summed
//! in SQL (SQLite sums floats with compensated summation, so a total matches the
//! per-iteration values), from a project's database or from the user-level ledger.

use rusqlite::Connection;

use ralph_types::plausible::{MAX_CALL_COST_USD, MAX_CALL_TOKENS};

use crate::{sql, Store, StoreError, Tokens};

/// What rows of a cost report are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostGroup {
    /// The local date (`YYYY-MM-DD`, the process's time zone) an iteration finished on.
    Day,
    /// The model; `unknown` where none was recorded.
    Model,
    /// The run id.
    Run,
    Backend,
    /// The project root (ledger); a project's own database has one row with an empty key.
    Project,
    /// The story whose loop made the call (the run's scope), over every plan run; calls of
    /// the single loop, and every call read from the ledger (which has no scopes), are under
    /// [`NO_STORY`]. One plan run's stories: [`Store::story_report`].
    Story,
}

impl CostGroup {
    pub fn as_str(&self) -> &'static str {
        match self {
            CostGroup::Day => "day",
            CostGroup::Model => "model",
            CostGroup::Run => "run",
            CostGroup::Backend => "backend",
            CostGroup::Project => "project",
            CostGroup::Story => "story",
        }
    }
}

/// The key of the rows of calls that are no story's (`CostGroup::Story`).
pub const NO_STORY: &str = "-";

/// The key of the rows of iterations whose model is not known.
pub const UNKNOWN_MODEL: &str = "unknown";

/// One group of iterations (or the total of a report).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CostRow {
    pub key: String,
    /// The project of a `Run` row read from the ledger (run ids are per project).
    pub project: Option<String>,
    /// Sum of the known costs, of iterations and side calls.
    pub cost_usd: f64,
    pub iterations: u32,
    /// Agent calls that are not iterations (summarising the notes): in the cost and tokens,
    /// not in `iterations`.
    pub side_calls: u32,
    /// Calls (iterations or side calls) whose cost nobody reported or could compute: not in
    /// `cost_usd`.
    pub unknown_cost_iterations: u32,
    /// Calls whose agent reported a figure no call can have (`ralph_types::plausible`):
    /// counted in `unknown_cost_iterations` too, never in `cost_usd` or `tokens`.
    pub invalid_cost_iterations: u32,
    /// Sum of the known token counts.
    pub tokens: Tokens,
    /// When the first and the last iteration of the group finished (RFC3339 UTC).
    pub first_ts: String,
    pub last_ts: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CostReport {
    pub by: CostGroup,
    /// Days and runs oldest first; models, backends and projects costliest first.
    pub rows: Vec<CostRow>,
    /// Every row together; `key` is `total`.
    pub total: CostRow,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    /// A project's `iterations` table, plus its `side_calls` table when it has one (schema v3),
    /// with the runs' scopes when they have one (schema v4).
    Project { side_calls: bool, scopes: bool },
    /// The ledger's `entries` table.
    Ledger,
}

impl Source {
    /// Every agent call as (ts, project, run_id, backend, model, cost_usd, the four token
    /// columns, is_iteration, scope).
    pub(crate) fn calls(self) -> String {
        // Rows written before ralph judged the figures may hold any: they are read as invalid
        // (unknown cost, no tokens), like the rows written since.
        let cost_ok = format!("cost_usd BETWEEN 0 AND {MAX_CALL_COST_USD:.1}");
        let tokens_ok = ["input", "output", "cache_read", "cache_write"]
            .map(|k| format!("{k}_tokens BETWEEN 0 AND {MAX_CALL_TOKENS}"))
            .join(" AND ");
        let invalid = format!(
            "(cost_source = 'invalid' OR (cost_usd IS NOT NULL AND NOT ({cost_ok})) \
             OR (input_tokens IS NOT NULL AND NOT ({tokens_ok})))"
        );
        let tokens = ["input", "output", "cache_read", "cache_write"]
            .map(|k| format!("CASE WHEN NOT {invalid} THEN {k}_tokens END AS {k}_tokens"))
            .join(", ");
        let cols = format!(
            "backend, model, CASE WHEN NOT {invalid} THEN cost_usd END AS cost_usd, {tokens}, \
             {invalid} AS invalid"
        );
        let cols = cols.as_str();
        match self {
            Source::Project { side_calls, scopes } => {
                let scope = |table: &str| {
                    if scopes {
                        format!("(SELECT scope FROM runs WHERE runs.id = {table}.run_id)")
                    } else {
                        "NULL".to_string()
                    }
                };
                let mut q = format!(
                    "SELECT finished_at AS ts, '' AS project, run_id, {COLS}, 1 AS is_iteration, \
                     {SCOPE} AS scope FROM iterations",
                    COLS = cols,
                    SCOPE = scope("iterations")
                );
                if side_calls {
                    q.push_str(&format!(
                        " UNION ALL SELECT ts, '', run_id, {cols}, 0, {} FROM side_calls",
                        scope("side_calls")
                    ));
                }
                q
            }
            Source::Ledger => format!(
                "SELECT ts, project, run_id, {cols}, iteration < {} AS is_iteration, \
                 NULL AS scope FROM entries",
                crate::ledger::SIDE_CALL_ITERATION_BASE
            ),
        }
    }
}

/// `since`: a bound already normalised to RFC3339 UTC with milliseconds.
pub(crate) fn cost_report(
    conn: &Connection,
    source: Source,
    by: CostGroup,
    since: Option<&str>,
) -> Result<CostReport, StoreError> {
    let (key, group, order) = match by {
        CostGroup::Day => ("date(ts, 'localtime')".to_string(), "k", "k"),
        CostGroup::Model => (
            format!("COALESCE(model, '{UNKNOWN_MODEL}')"),
            "k",
            "cost DESC, k",
        ),
        CostGroup::Run => ("run_id".to_string(), "p, k", "first_ts, p, k"),
        CostGroup::Backend => ("backend".to_string(), "k", "cost DESC, k"),
        CostGroup::Project => ("project".to_string(), "k", "cost DESC, k"),
        CostGroup::Story => (format!("COALESCE(scope, '{NO_STORY}')"), "k", "k"),
    };
    let columns = "COALESCE(SUM(is_iteration), 0), COUNT(*) - COALESCE(SUM(is_iteration), 0), \
         COALESCE(SUM(cost_usd), 0) AS cost, COUNT(*) - COUNT(cost_usd), \
         COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), \
         COALESCE(SUM(cache_read_tokens), 0), COALESCE(SUM(cache_write_tokens), 0), \
         COALESCE(MIN(ts), '') AS first_ts, COALESCE(MAX(ts), ''), COALESCE(SUM(invalid), 0)";
    let calls = source.calls();
    let since = since.unwrap_or("");
    let row_sql = format!(
        "SELECT {key} AS k, project AS p, {columns} FROM ({calls}) WHERE ts >= ?1 \
         GROUP BY {group} ORDER BY {order}"
    );
    let mut stmt = conn.prepare(&row_sql).map_err(sql("group costs"))?;
    let rows = stmt
        .query_map([since], |r| {
            let project: String = r.get(1)?;
            let mut row = totals(r, 2)?;
            row.key = r.get::<_, Option<String>>(0)?.unwrap_or_default();
            row.project = (matches!(by, CostGroup::Run) && !project.is_empty()).then_some(project);
            Ok(row)
        })
        .map_err(sql("group costs"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql("group costs"))?;
    let total_sql = format!("SELECT {columns} FROM ({calls}) WHERE ts >= ?1");
    let mut total = conn
        .query_row(&total_sql, [since], |r| totals(r, 0))
        .map_err(sql("sum costs"))?;
    total.key = "total".to_string();
    Ok(CostReport { by, rows, total })
}

fn totals(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<CostRow> {
    let count = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(at + i)?.max(0) as u64) };
    Ok(CostRow {
        key: String::new(),
        project: None,
        iterations: count(0)? as u32,
        side_calls: count(1)? as u32,
        cost_usd: r.get(at + 2)?,
        unknown_cost_iterations: count(3)? as u32,
        tokens: Tokens {
            input: count(4)?,
            output: count(5)?,
            cache_read: count(6)?,
            cache_write: count(7)?,
        },
        first_ts: r.get(at + 8)?,
        last_ts: r.get(at + 9)?,
        invalid_cost_iterations: count(10)? as u32,
    })
}

impl Store {
    /// Costs of this project's committed iterations, grouped by `by`, for iterations that
    /// finished at or after `since` (RFC3339, any offset; all without). `Day` groups by the
    /// local date of the process's time zone.
    pub fn cost_report(
        &self,
        by: CostGroup,
        since: Option<&str>,
    ) -> Result<CostReport, StoreError> {
        let since = match since {
            Some(s) => Some(crate::ledger::utc_bound(s, "read the iterations")?),
            None => None,
        };
        // A database of an older ralph, opened read-only, keeps its older schema.
        let side_calls = self.has_schema(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'side_calls'",
        )?;
        let scopes =
            self.has_schema("SELECT COUNT(*) FROM pragma_table_info('runs') WHERE name = 'scope'")?;
        cost_report(
            &self.conn,
            Source::Project { side_calls, scopes },
            by,
            since.as_deref(),
        )
    }

    /// Whether `count_sql` (a `SELECT COUNT(*)` of the schema) counts anything.
    fn has_schema(&self, count_sql: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row(count_sql, [], |r| r.get::<_, i64>(0))
            .map(|n| n > 0)
            .map_err(sql("read the schema"))
    }
}
