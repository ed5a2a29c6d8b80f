//! ralph's durable state in `.ralph/ralph.db`: runs, iterations and events.
//!
//! SQLite in WAL mode. The commit that records a finished iteration runs with
//! `synchronous=FULL`, so a crash at any moment leaves the database at the last committed
//! iteration; markers that are cheap to lose (an iteration started) use `NORMAL`. The run row is
//! a materialised view of its iterations; `Store::rebuild_run_totals` recomputes it.

pub mod audit;
pub mod ledger;
mod records;
mod report;
pub mod reserve;
mod schema;
mod shared;
mod stories;
mod story_records;
mod story_report;
pub mod tamper;
mod writer;

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

pub use audit::{AuditError, AuditLog, VerifyReport};
pub use ledger::{Ledger, LedgerEntry};
pub use records::{EventRecord, IterationRecord, RunRecord, RunState, SideCall, Tokens};
pub use report::{CostGroup, CostReport, CostRow, NO_STORY};
pub use reserve::{LedgerCap, Refusal, Reservation, ReservationRequest};
pub use schema::{migration_sql, SCHEMA_VERSION};
pub use shared::{Shared, SharedAudit};
pub use stories::STORY_STATE_EVENT;
pub use story_records::{
    AttemptRecord, GateResult, PlanRunRecord, QueueEntry, QueueState, StoryRecord, StoryState,
};
pub use story_report::StoryReportRow;
pub use writer::{Write, Writer};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to open the state database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("the state database was written by a newer ralph (schema {found}, this ralph knows {known}); upgrade ralph")]
    TooNew { found: i64, known: i64 },
    #[error("failed to {action}: {source}")]
    Sql {
        action: &'static str,
        source: rusqlite::Error,
    },
    #[error("failed to encode an event: {0}")]
    Json(#[from] serde_json::Error),
    #[error("failed to {action} {path}: {source}")]
    Restore {
        action: &'static str,
        path: String,
        source: std::io::Error,
    },
    /// A write through the process's writer thread could not be committed.
    #[error("failed to commit: {0}")]
    Writer(String),
    /// A write that would break the state's rules (a story state change without its event, a
    /// landing that does not merge exactly its entry's stories); nothing of it is written.
    #[error("refused to write: {0}")]
    Invalid(String),
}

fn sql(action: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sql { action, source }
}

pub struct Store {
    conn: Connection,
    /// The files of a database opened for writing, watched between iterations (`tamper.rs`).
    files: Option<tamper::DbFiles>,
    /// The schema version of the database: [`SCHEMA_VERSION`] once opened for writing (which
    /// migrates); an older one's, opened read-only, is read as that version's columns allow.
    version: i64,
}

impl Store {
    /// Open (creating and migrating if needed) the database for writing.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Self::configure(&conn)?;
        schema::migrate(&conn)?;
        Ok(Store {
            conn,
            files: Some(tamper::DbFiles::capture(path, 0)),
            version: SCHEMA_VERSION,
        })
    }

    /// Open an existing database for reading (`status`, `logs`); works while a run writes.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(sql("set the busy timeout"))?;
        let version = schema::check_version(&conn)?;
        Ok(Store {
            conn,
            files: None,
            version,
        })
    }

    fn configure(conn: &Connection) -> Result<(), StoreError> {
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(sql("set the busy timeout"))?;
        // WAL: readers (`ralph status`) never block the writer; FULL is set per commit below.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql("enable WAL"))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql("set synchronous"))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql("enable foreign keys"))?;
        // Only `Store::mark_files` checkpoints, between iterations: while an agent runs, the
        // main file stays as it was, so a change to it is somebody else's.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(sql("turn off automatic checkpoints"))?;
        Ok(())
    }

    /// The columns of a run row as this database has them: before v5 runs have no plan run.
    fn run_columns(&self) -> std::borrow::Cow<'static, str> {
        if self.version >= schema::STORIES_VERSION {
            RunRecord::COLUMNS.into()
        } else {
            RunRecord::COLUMNS
                .replace(", plan_run_id", ", NULL AS plan_run_id")
                .into()
        }
    }

    /// The most recent run of `scope` (`None`: the single loop; a story id) that did not
    /// finish and may be resumed.
    pub fn resumable_run(&self, scope: Option<&str>) -> Result<Option<RunRecord>, StoreError> {
        let sql_text = format!(
            "SELECT {} FROM runs WHERE scope IS ?1 AND (state IN ('running', 'interrupted') \
             OR (state = 'stopped' AND stop_reason = 'stop_requested') \
             OR (state = 'failed' AND stop_reason IN ('needs_human', 'internal_error'))) \
             ORDER BY rowid DESC LIMIT 1",
            self.run_columns()
        );
        self.conn
            .query_row(&sql_text, [scope], RunRecord::from_row)
            .optional()
            .map_err(sql("look up an unfinished run"))
    }

    /// The most recent run of the single loop (`ralph run`), finished or not.
    pub fn latest_run(&self) -> Result<Option<RunRecord>, StoreError> {
        self.latest_run_in(None)
    }

    /// The most recent run of `scope`, finished or not.
    pub fn latest_run_in(&self, scope: Option<&str>) -> Result<Option<RunRecord>, StoreError> {
        let sql_text = format!(
            "SELECT {} FROM runs WHERE scope IS ?1 ORDER BY rowid DESC LIMIT 1",
            self.run_columns()
        );
        self.conn
            .query_row(&sql_text, [scope], RunRecord::from_row)
            .optional()
            .map_err(sql("read the latest run"))
    }

    pub fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        let sql_text = format!("SELECT {} FROM runs WHERE id = ?1", self.run_columns());
        self.conn
            .query_row(&sql_text, [id], RunRecord::from_row)
            .optional()
            .map_err(sql("read a run"))
    }

    /// Runs of the single loop, newest first.
    pub fn runs(&self, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
        let sql_text = format!(
            "SELECT {} FROM runs WHERE scope IS NULL ORDER BY rowid DESC LIMIT ?1",
            self.run_columns()
        );
        let mut stmt = self.conn.prepare(&sql_text).map_err(sql("list runs"))?;
        let rows = stmt
            .query_map([limit], RunRecord::from_row)
            .map_err(sql("list runs"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("list runs"))
    }

    /// Insert a new run or rewrite an existing run's row, plus events. `durable` waits for the
    /// disk (a finished run); without it the write may be lost in a power cut, which is fine for
    /// a run's start: resume recreates what matters from committed iterations.
    pub fn save_run(
        &mut self,
        run: &RunRecord,
        events: &[EventRecord],
        durable: bool,
    ) -> Result<(), StoreError> {
        self.write(durable, "commit the run", |tx| {
            upsert_run(tx, run)?;
            insert_events(tx, events)
        })
    }

    /// Record that an iteration started. Cheap (no fsync): losing it in a crash only means the
    /// iteration is not shown as in progress, and it is re-run on resume either way.
    pub fn iteration_started(
        &mut self,
        run: &RunRecord,
        events: &[EventRecord],
    ) -> Result<(), StoreError> {
        self.write(false, "record the iteration start", |tx| {
            upsert_run(tx, run)?;
            insert_events(tx, events)
        })
    }

    /// The durable commit point of an iteration: its row, the run's new totals and its events
    /// in one transaction with `synchronous=FULL`.
    pub fn commit_iteration(
        &mut self,
        run: &RunRecord,
        iteration: &IterationRecord,
        events: &[EventRecord],
    ) -> Result<(), StoreError> {
        self.write(true, "commit the iteration", |tx| {
            iteration.insert(tx)?;
            upsert_run(tx, run)?;
            insert_events(tx, events)
        })
    }

    /// Events that are not part of an iteration commit (e.g. a retry being scheduled).
    pub fn append_events(&mut self, events: &[EventRecord]) -> Result<(), StoreError> {
        self.write(false, "append events", |tx| insert_events(tx, events))
    }

    pub fn iterations(&self, run_id: &str) -> Result<Vec<IterationRecord>, StoreError> {
        let sql_text = format!(
            "SELECT {} FROM iterations WHERE run_id = ?1 ORDER BY n",
            IterationRecord::COLUMNS
        );
        let mut stmt = self
            .conn
            .prepare(&sql_text)
            .map_err(sql("list iterations"))?;
        let rows = stmt
            .query_map([run_id], IterationRecord::from_row)
            .map_err(sql("list iterations"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("list iterations"))
    }

    /// Events of a run with an id greater than `after` (for `logs --follow`), oldest first.
    pub fn events(&self, run_id: &str, after: i64) -> Result<Vec<(i64, EventRecord)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, run_id, iteration, ts, kind, payload FROM events \
                 WHERE run_id = ?1 AND id > ?2 ORDER BY id",
            )
            .map_err(sql("read events"))?;
        let rows = stmt
            .query_map(params![run_id, after], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    EventRecord {
                        run_id: row.get(1)?,
                        iteration: row.get(2)?,
                        ts: row.get(3)?,
                        kind: row.get(4)?,
                        payload: row.get(5)?,
                    },
                ))
            })
            .map_err(sql("read events"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("read events"))
    }

    /// The latest event of `kind` in a run, and how many there are (status reads the sandbox
    /// from `run.started` and counts `sandbox.denied`).
    pub fn last_event(
        &self,
        run_id: &str,
        kind: &str,
    ) -> Result<(Option<EventRecord>, u64), StoreError> {
        let count: u64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM events WHERE run_id = ?1 AND kind = ?2",
                params![run_id, kind],
                |r| r.get(0),
            )
            .map_err(sql("count events"))?;
        if count == 0 {
            return Ok((None, 0));
        }
        let last = self
            .conn
            .query_row(
                "SELECT run_id, iteration, ts, kind, payload FROM events \
                 WHERE run_id = ?1 AND kind = ?2 ORDER BY id DESC LIMIT 1",
                params![run_id, kind],
                |row| {
                    Ok(EventRecord {
                        run_id: row.get(0)?,
                        iteration: row.get(1)?,
                        ts: row.get(2)?,
                        kind: row.get(3)?,
                        payload: row.get(4)?,
                    })
                },
            )
            .map_err(sql("read an event"))?;
        Ok((Some(last), count))
    }

    /// Record an agent call that is not an iteration (e.g. summarising notes) and the run's
    /// new totals, durably. Idempotent per (run, after_iteration, kind).
    pub fn commit_side_call(
        &mut self,
        run: &RunRecord,
        call: &SideCall,
        events: &[EventRecord],
    ) -> Result<(), StoreError> {
        self.write(true, "commit a side call", |tx| {
            insert_side_call(tx, &run.id, call)?;
            upsert_run(tx, run)?;
            insert_events(tx, events)
        })
    }

    /// Recompute a run's totals from its committed iterations and side calls (the run row is
    /// derived state).
    pub fn rebuild_run_totals(&self, run: &mut RunRecord) -> Result<(), StoreError> {
        let (count, cost, input, output, cache_read, cache_write): (u32, f64, i64, i64, i64, i64) =
            self.conn
                .query_row(
                    "SELECT COUNT(*), COALESCE(SUM(cost_usd), 0), COALESCE(SUM(input_tokens), 0), \
                     COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cache_read_tokens), 0), \
                     COALESCE(SUM(cache_write_tokens), 0) FROM iterations WHERE run_id = ?1",
                    [&run.id],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    },
                )
                .map_err(sql("sum iterations"))?;
        let (side_cost, s_in, s_out, s_cr, s_cw): (f64, i64, i64, i64, i64) = self
            .conn
            .query_row(
                "SELECT COALESCE(SUM(cost_usd), 0), COALESCE(SUM(input_tokens), 0), \
                 COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cache_read_tokens), 0), \
                 COALESCE(SUM(cache_write_tokens), 0) FROM side_calls WHERE run_id = ?1",
                [&run.id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .map_err(sql("sum side calls"))?;
        run.iteration = count;
        run.cost_usd = cost + side_cost;
        run.tokens = Tokens {
            input: (input + s_in) as u64,
            output: (output + s_out) as u64,
            cache_read: (cache_read + s_cr) as u64,
            cache_write: (cache_write + s_cw) as u64,
        };
        Ok(())
    }

    /// Committed iterations of a run whose cost nobody reported or could compute.
    pub fn unknown_cost_iterations(&self, run_id: &str) -> Result<u32, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM iterations WHERE run_id = ?1 AND cost_usd IS NULL",
                [run_id],
                |r| r.get(0),
            )
            .map_err(sql("count iterations of unknown cost"))
    }

    /// Whether a side call of `kind` after iteration `after` of the run is recorded.
    pub fn side_call_recorded(
        &self,
        run_id: &str,
        after: u32,
        kind: &str,
    ) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM side_calls WHERE run_id = ?1 AND after_iteration = ?2 \
                 AND kind = ?3",
                params![run_id, after, kind],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(sql("read the side calls"))
    }

    /// `PRAGMA integrity_check` result: "ok" when healthy.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(sql("check integrity"))
    }

    /// Every write goes through here: one transaction, committed with `synchronous=FULL` when
    /// `durable` (waits for the disk) and `NORMAL` otherwise. `action` names the write in errors.
    fn write(
        &mut self,
        durable: bool,
        action: &'static str,
        body: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.conn
            .pragma_update(None, "synchronous", if durable { "FULL" } else { "NORMAL" })
            .map_err(sql("set synchronous"))?;
        let tx = self
            .conn
            .transaction()
            .map_err(sql("begin a transaction"))?;
        body(&tx)?;
        tx.commit().map_err(sql(action))
    }
}

fn upsert_run(tx: &rusqlite::Transaction<'_>, run: &RunRecord) -> Result<(), StoreError> {
    run.upsert(tx)
}

fn insert_side_call(
    tx: &rusqlite::Transaction<'_>,
    run_id: &str,
    call: &SideCall,
) -> Result<(), StoreError> {
    let t = call.tokens;
    tx.execute(
        "INSERT OR REPLACE INTO side_calls (run_id, after_iteration, kind, ts, backend, model, \
         cost_usd, cost_source, input_tokens, output_tokens, cache_read_tokens, \
         cache_write_tokens) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            run_id,
            call.after_iteration,
            call.kind,
            call.ts,
            call.backend,
            call.model,
            call.cost_usd,
            call.cost_source,
            t.map(|t| t.input as i64),
            t.map(|t| t.output as i64),
            t.map(|t| t.cache_read as i64),
            t.map(|t| t.cache_write as i64),
        ],
    )
    .map(|_| ())
    .map_err(sql("write a side call"))
}

fn insert_events(tx: &rusqlite::Transaction<'_>, events: &[EventRecord]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO events (run_id, iteration, ts, kind, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(sql("prepare the event insert"))?;
    for e in events {
        stmt.execute(params![e.run_id, e.iteration, e.ts, e.kind, e.payload])
            .map_err(sql("insert an event"))?;
    }
    Ok(())
}
