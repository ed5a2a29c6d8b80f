//! The user-level cost ledger: one SQLite file per user (`$RALPH_HOME/ledger.db`) that every
//! ralph process on the machine appends to, whatever the project, so daily and monthly budgets
//! can count everything spent.
//!
//! Several ralph processes in different projects write at the same time: the file is in WAL
//! mode with a 5 s busy timeout, every write is one transaction, and the schema migration
//! takes the write lock before it looks at the version. Daily and monthly caps hold across
//! processes through reservations (`reserve.rs`). An entry is keyed by (project, run id,
//! iteration) and written with `INSERT OR REPLACE`, so recording an iteration again (a replay
//! after a crash) never counts it twice. Every commit waits for the disk (`synchronous=FULL`).
//!
//! Times are stored as RFC3339 UTC with milliseconds (`2025-01-31T09:00:00.000Z`), the format
//! the engine writes, so ranges compare as strings and use the index.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeZone, Utc};
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};

use crate::report::{self, CostGroup, CostReport, Source};
use crate::{sql, StoreError, Tokens};

/// Migrations in order; migration `i` brings the ledger from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE entries (
    project TEXT NOT NULL,
    run_id TEXT NOT NULL,
    iteration INTEGER NOT NULL,
    ts TEXT NOT NULL,
    backend TEXT NOT NULL,
    model TEXT,
    cost_usd REAL,
    cost_source TEXT NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cache_read_tokens INTEGER,
    cache_write_tokens INTEGER,
    PRIMARY KEY (project, run_id, iteration)
);
CREATE INDEX entries_ts ON entries(ts);
"#,
    r#"
CREATE TABLE reservations (
    project TEXT NOT NULL,
    run_id TEXT NOT NULL,
    iteration INTEGER NOT NULL,
    ts TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    amount_usd REAL NOT NULL,
    backend TEXT NOT NULL,
    pid INTEGER NOT NULL,
    PRIMARY KEY (project, run_id, iteration)
);
"#,
];

/// A stored cost that counts: entries written before ralph judged the figures may hold any
/// (`-1`, `1e308`), and those count as unknown. Matches `ralph_types::plausible`.
const PLAUSIBLE_COST: &str = "cost_usd BETWEEN 0 AND 1000.0";

/// The file name of the ledger inside `$RALPH_HOME`.
pub const LEDGER_FILE: &str = "ledger.db";

/// Entries whose `iteration` is at least this are agent calls that are not iterations (the
/// notes summary after iteration N is keyed `SIDE_CALL_ITERATION_BASE + N`): reports count
/// their cost and tokens but not as iterations.
pub const SIDE_CALL_ITERATION_BASE: u32 = 2_000_000_000;

/// The spend of an iteration ralph was killed in, recovered from its artifacts on resume, is
/// keyed `RECOVERED_CALL_BASE + 1000 * n + session % 1000` (a side call for reports: the
/// iteration itself runs again and is keyed `n`).
pub const RECOVERED_CALL_BASE: u32 = 3_000_000_000;

/// The ledger key of the spend of iteration `n` recovered by session `session`.
pub fn recovered_call_key(n: u32, session: u32) -> u32 {
    RECOVERED_CALL_BASE
        .saturating_add(n.saturating_mul(1000))
        .saturating_add(session % 1000)
}

/// One finished iteration, anywhere on the machine.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    /// When the iteration finished, RFC3339 (any offset; stored as UTC).
    pub ts: String,
    /// The project's canonical root path.
    pub project: String,
    pub run_id: String,
    pub iteration: u32,
    pub backend: String,
    pub model: Option<String>,
    /// `None`: nobody reported the cost and it could not be computed.
    pub cost_usd: Option<f64>,
    /// reported | computed | unknown
    pub cost_source: String,
    pub tokens: Option<Tokens>,
}

pub struct Ledger {
    conn: Connection,
    path: PathBuf,
}

impl Ledger {
    /// Where the ledger lives: `$RALPH_HOME/ledger.db`, else `$XDG_DATA_HOME/ralph/ledger.db`,
    /// else `~/.local/share/ralph/ledger.db`. The caller passes the environment's values (an
    /// empty value counts as unset; a relative `XDG_DATA_HOME` is ignored, as the XDG spec
    /// says). `None` when none is set. A relative `RALPH_HOME` is used as given: make it
    /// absolute first, or each project gets its own ledger.
    pub fn default_path(
        ralph_home: Option<&Path>,
        xdg_data_home: Option<&Path>,
        home: Option<&Path>,
    ) -> Option<PathBuf> {
        fn set(p: Option<&Path>) -> Option<&Path> {
            p.filter(|p| !p.as_os_str().is_empty())
        }
        if let Some(dir) = set(ralph_home) {
            return Some(dir.join(LEDGER_FILE));
        }
        if let Some(dir) = set(xdg_data_home).filter(|p| p.is_absolute()) {
            return Some(dir.join("ralph").join(LEDGER_FILE));
        }
        set(home).map(|h| {
            h.join(".local")
                .join("share")
                .join("ralph")
                .join(LEDGER_FILE)
        })
    }

    /// Open the ledger for writing, creating its directory and file and migrating if needed.
    pub fn open(path: &Path) -> Result<Ledger, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                open_err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                    Some(format!("cannot create {}: {e}", parent.display())),
                ))
            })?;
        }
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(sql("set the busy timeout"))?;
        set_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql("set synchronous"))?;
        migrate(&mut conn)?;
        Ok(Ledger {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Open an existing ledger for reading (reports); works while other processes write.
    pub fn open_read_only(path: &Path) -> Result<Ledger, StoreError> {
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
        check_version(&conn)?;
        Ok(Ledger {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Record several entries in one transaction (one fsync), as [`Ledger::record`] does each.
    pub fn record_all(&self, entries: &[&LedgerEntry]) -> Result<(), StoreError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(sql("begin a ledger transaction"))?;
        for e in entries {
            self.record(e)?;
        }
        tx.commit().map_err(sql("commit the ledger"))
    }

    /// Record a finished iteration, durably. Recording the same (project, run id, iteration)
    /// again replaces the entry: it is never counted twice.
    pub fn record(&self, entry: &LedgerEntry) -> Result<(), StoreError> {
        let ts = utc_bound(&entry.ts, "record a ledger entry")?;
        let t = entry.tokens;
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO entries (project, run_id, iteration, ts, backend, model, \
                 cost_usd, cost_source, input_tokens, output_tokens, cache_read_tokens, \
                 cache_write_tokens) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    entry.project,
                    entry.run_id,
                    entry.iteration,
                    ts,
                    entry.backend,
                    entry.model,
                    // NaN would be stored as NULL anyway; say so explicitly.
                    entry.cost_usd.filter(|c| c.is_finite()),
                    entry.cost_source,
                    t.map(|t| t.input as i64),
                    t.map(|t| t.output as i64),
                    t.map(|t| t.cache_read as i64),
                    t.map(|t| t.cache_write as i64),
                ])
            })
            .map_err(sql("record a ledger entry"))?;
        // The actual cost replaces the estimate reserved for it (`reserve.rs`).
        self.conn
            .prepare_cached(
                "DELETE FROM reservations WHERE project = ?1 AND run_id = ?2 AND iteration = ?3",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![entry.project, entry.run_id, entry.iteration])
            })
            .map(|_| ())
            .map_err(sql("settle a ledger reservation"))
    }

    /// Sum of the known costs of entries with `from <= ts < to` (RFC3339 bounds, any offset).
    /// Entries of unknown cost add nothing: see [`Ledger::unknown_between`].
    pub fn spent_between(&self, from: &str, to: &str) -> Result<f64, StoreError> {
        let from = utc_bound(from, "read the ledger")?;
        let to = utc_bound(to, "read the ledger")?;
        self.conn
            .query_row(
                &format!(
                    "SELECT COALESCE(SUM(cost_usd), 0) FROM entries WHERE ts >= ?1 AND ts < ?2 \
                     AND {PLAUSIBLE_COST}"
                ),
                params![from, to],
                |r| r.get(0),
            )
            .map_err(sql("sum the ledger"))
    }

    /// Entries of unknown cost with `from <= ts < to`.
    pub fn unknown_between(&self, from: &str, to: &str) -> Result<u32, StoreError> {
        let from = utc_bound(from, "read the ledger")?;
        let to = utc_bound(to, "read the ledger")?;
        self.conn
            .query_row(
                &format!(
                    "SELECT COUNT(*) FROM entries WHERE ts >= ?1 AND ts < ?2 \
                     AND (cost_usd IS NULL OR NOT {PLAUSIBLE_COST})"
                ),
                params![from, to],
                |r| r.get(0),
            )
            .map_err(sql("count ledger entries of unknown cost"))
    }

    /// Entries with `ts >= since` (all without), oldest first.
    pub fn rows(&self, since: Option<&str>) -> Result<Vec<LedgerEntry>, StoreError> {
        let since = match since {
            Some(s) => utc_bound(s, "read the ledger")?,
            None => String::new(),
        };
        let mut stmt = self
            .conn
            .prepare(
                "SELECT ts, project, run_id, iteration, backend, model, cost_usd, cost_source, \
                 input_tokens, output_tokens, cache_read_tokens, cache_write_tokens FROM entries \
                 WHERE ts >= ?1 ORDER BY ts, project, run_id, iteration",
            )
            .map_err(sql("read the ledger"))?;
        let rows = stmt
            .query_map([since], |r| {
                let input: Option<i64> = r.get(8)?;
                let tokens = match input {
                    Some(input) => Some(Tokens {
                        input: input as u64,
                        output: r.get::<_, Option<i64>>(9)?.unwrap_or(0) as u64,
                        cache_read: r.get::<_, Option<i64>>(10)?.unwrap_or(0) as u64,
                        cache_write: r.get::<_, Option<i64>>(11)?.unwrap_or(0) as u64,
                    }),
                    None => None,
                };
                Ok(LedgerEntry {
                    ts: r.get(0)?,
                    project: r.get(1)?,
                    run_id: r.get(2)?,
                    iteration: r.get(3)?,
                    backend: r.get(4)?,
                    model: r.get(5)?,
                    cost_usd: r.get(6)?,
                    cost_source: r.get(7)?,
                    tokens,
                })
            })
            .map_err(sql("read the ledger"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("read the ledger"))
    }

    /// Costs grouped by `by` for entries with `ts >= since` (RFC3339; all without). `Day` groups
    /// by the local date of the process's time zone; `Run` rows carry their project.
    pub fn cost_report(
        &self,
        by: CostGroup,
        since: Option<&str>,
    ) -> Result<CostReport, StoreError> {
        let since = match since {
            Some(s) => Some(utc_bound(s, "read the ledger")?),
            None => None,
        };
        report::cost_report(&self.conn, Source::Ledger, by, since.as_deref())
    }
}

fn set_wal(conn: &Connection) -> Result<(), StoreError> {
    // Switching a new file to WAL needs a moment of exclusive access; when several processes
    // create the ledger at once the switch can report busy without waiting, so try again.
    let mut attempt = 0;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Ok(()) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && attempt < 50 =>
            {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(sql("enable WAL")(e)),
        }
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    if check_version(conn)? == known {
        return Ok(());
    }
    // IMMEDIATE: take the write lock before reading the version, so two processes creating the
    // ledger at once do not both run the same migration.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql("begin a ledger migration"))?;
    let version = check_version(&tx)?;
    for migration in MIGRATIONS.iter().skip(version as usize) {
        tx.execute_batch(migration)
            .map_err(sql("migrate the cost ledger"))?;
    }
    tx.pragma_update(None, "user_version", known)
        .map_err(sql("record the ledger schema version"))?;
    tx.commit().map_err(sql("commit a ledger migration"))
}

fn check_version(conn: &Connection) -> Result<i64, StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql("read the ledger schema version"))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::TooNew {
            found: version,
            known,
        });
    }
    Ok(version)
}

/// An RFC3339 time (any offset) as stored: UTC with milliseconds and `Z`.
pub fn to_utc_rfc3339(rfc3339: &str) -> Option<String> {
    DateTime::parse_from_rfc3339(rfc3339.trim())
        .ok()
        .map(|t| fmt_utc(&t.with_timezone(&Utc)))
}

fn fmt_utc(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn utc_bound(rfc3339: &str, action: &'static str) -> Result<String, StoreError> {
    DateTime::parse_from_rfc3339(rfc3339.trim())
        .map(|t| fmt_utc(&t.with_timezone(&Utc)))
        .map_err(|e| StoreError::Sql {
            action,
            source: rusqlite::Error::ToSqlConversionFailure(
                format!("{rfc3339:?} is not an RFC3339 time: {e}").into(),
            ),
        })
}

/// The first instant of `date` in `tz`, as stored (RFC3339 UTC). Where midnight does not
/// exist (a DST jump at midnight) the day starts at the first minute that does; where it
/// happens twice, at the first.
pub fn local_date_start<Tz: TimeZone>(tz: &Tz, date: NaiveDate) -> String {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    let start = (0..=24 * 60)
        .map(|m| midnight + chrono::TimeDelta::minutes(m))
        .find_map(|local| tz.from_local_datetime(&local).earliest())
        .map(|t| t.with_timezone(&Utc))
        // No valid local time in a whole day cannot happen with real zones; fall back to UTC.
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight));
    fmt_utc(&start)
}

/// Start of the local day `now` is in, as RFC3339 UTC. Pure: pass `Local::now()` in
/// production and a fixed zone in tests.
pub fn day_start<Tz: TimeZone>(now: &DateTime<Tz>) -> String {
    local_date_start(&now.timezone(), now.date_naive())
}

/// Start of the local month `now` is in, as RFC3339 UTC.
pub fn month_start<Tz: TimeZone>(now: &DateTime<Tz>) -> String {
    let today = now.date_naive();
    let first = today.with_day(1).unwrap_or(today);
    local_date_start(&now.timezone(), first)
}

/// `[start, end)` of the local day `now` is in, as RFC3339 UTC: the bounds for
/// [`Ledger::spent_between`] when checking a daily budget.
pub fn day_window<Tz: TimeZone>(now: &DateTime<Tz>) -> (String, String) {
    let today = now.date_naive();
    let tomorrow = today.succ_opt().unwrap_or(today);
    let tz = now.timezone();
    (
        local_date_start(&tz, today),
        local_date_start(&tz, tomorrow),
    )
}

/// `[start, end)` of the local month `now` is in, as RFC3339 UTC.
pub fn month_window<Tz: TimeZone>(now: &DateTime<Tz>) -> (String, String) {
    let today = now.date_naive();
    let first = today.with_day(1).unwrap_or(today);
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    }
    .unwrap_or(first);
    let tz = now.timezone();
    (local_date_start(&tz, first), local_date_start(&tz, next))
}

#[cfg(test)]
mod tests {

    use super::*;
    use chrono::FixedOffset;

    fn entry(run: &str, n: u32, ts: &str, cost: Option<f64>) -> LedgerEntry {
        LedgerEntry {
            ts: ts.into(),
            project: "/p".into(),
            run_id: run.into(),
            iteration: n,
            backend: "claude".into(),
            model: Some("m".into()),
            cost_usd: cost,
            cost_source: if cost.is_some() {
                "reported"
            } else {
                "unknown"
            }
            .into(),
            tokens: Some(Tokens {
                input: 10,
                output: 1,
                cache_read: 0,
                cache_write: 0,
            }),
        }
    }

    #[test]
    fn default_path_order() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            Ledger::default_path(Some(&p("/r")), Some(&p("/x")), Some(&p("/h"))),
            Some(p("/r/ledger.db"))
        );
        assert_eq!(
            Ledger::default_path(Some(&p("")), Some(&p("/x")), Some(&p("/h"))),
            Some(p("/x/ralph/ledger.db"))
        );
        assert_eq!(
            Ledger::default_path(None, Some(&p("rel")), Some(&p("/h"))),
            Some(p("/h/.local/share/ralph/ledger.db"))
        );
        assert_eq!(
            Ledger::default_path(None, None, Some(&p("/h"))),
            Some(p("/h/.local/share/ralph/ledger.db"))
        );
        assert_eq!(Ledger::default_path(None, None, None), None);
    }

    #[test]
    fn timestamps_are_normalised_to_utc_millis() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("a/b/ledger.db")).unwrap();
        l.record(&entry("r", 1, "2025-03-01T01:30:00+02:00", Some(1.0)))
            .unwrap();
        assert_eq!(l.rows(None).unwrap()[0].ts, "2025-02-28T23:30:00.000Z");
        assert!(l.record(&entry("r", 2, "yesterday", Some(1.0))).is_err());
        assert!(l.spent_between("nope", "2025-01-01T00:00:00Z").is_err());
    }

    #[test]
    fn implausible_costs_written_before_they_were_judged_count_as_unknown() {
        assert_eq!(
            PLAUSIBLE_COST,
            format!(
                "cost_usd BETWEEN 0 AND {:.1}",
                ralph_types::plausible::MAX_CALL_COST_USD
            )
        );
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("ledger.db")).unwrap();
        let ts = "2025-03-01T10:00:00Z";
        for (n, cost) in [(1, 0.25), (2, -1.0), (3, 1e308), (4, f64::INFINITY)] {
            l.record(&entry("r", n, ts, Some(cost))).unwrap();
        }
        let (from, to) = ("2025-03-01T00:00:00Z", "2025-03-02T00:00:00Z");
        assert_eq!(l.spent_between(from, to).unwrap(), 0.25);
        assert_eq!(l.unknown_between(from, to).unwrap(), 3);
        let report = l.cost_report(CostGroup::Run, None).unwrap();
        assert_eq!(report.total.cost_usd, 0.25);
        // Infinity was never stored (NULL: unknown, its tokens kept); -1 and 1e308 were.
        assert_eq!(report.total.invalid_cost_iterations, 2);
        assert_eq!(report.total.unknown_cost_iterations, 3);
        assert_eq!(report.total.tokens.input, 20);
    }

    #[test]
    fn local_day_and_month_starts() {
        let tokyo = FixedOffset::east_opt(9 * 3600).unwrap();
        let now = tokyo.with_ymd_and_hms(2025, 3, 1, 5, 0, 0).unwrap();
        assert_eq!(day_start(&now), "2025-02-28T15:00:00.000Z");
        assert_eq!(month_start(&now), "2025-02-28T15:00:00.000Z");
        assert_eq!(
            month_window(&now),
            (
                "2025-02-28T15:00:00.000Z".to_string(),
                "2025-03-31T15:00:00.000Z".to_string()
            )
        );
        let ny = FixedOffset::west_opt(5 * 3600).unwrap();
        let now = ny.with_ymd_and_hms(2024, 12, 31, 23, 0, 0).unwrap();
        assert_eq!(
            day_window(&now),
            (
                "2024-12-31T05:00:00.000Z".to_string(),
                "2025-01-01T05:00:00.000Z".to_string()
            )
        );
        assert_eq!(month_window(&now).1, "2025-01-01T05:00:00.000Z".to_string());
    }
}
