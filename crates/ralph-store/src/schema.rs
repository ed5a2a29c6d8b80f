//! Schema and migrations. The version lives in `PRAGMA user_version`; every on-disk format
//! carries a version number so a newer ralph can migrate and an older one can refuse.

use rusqlite::Connection;

use crate::{sql, StoreError};

/// Migrations in order; migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    stop_reason TEXT,
    exit_code INTEGER,
    backend TEXT NOT NULL,
    model TEXT,
    iteration INTEGER NOT NULL DEFAULT 0,
    max_iterations INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    elapsed_s REAL NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    budget_usd REAL,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    current_iteration INTEGER,
    feedback TEXT,
    last_checkpoint TEXT,
    pid INTEGER,
    sessions INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE iterations (
    run_id TEXT NOT NULL REFERENCES runs(id),
    n INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    duration_s REAL NOT NULL,
    backend TEXT NOT NULL,
    model TEXT,
    outcome TEXT NOT NULL,
    error_class TEXT,
    error_message TEXT,
    exit_code INTEGER,
    signal INTEGER,
    cost_usd REAL,
    cost_source TEXT NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cache_read_tokens INTEGER,
    cache_write_tokens INTEGER,
    files_changed INTEGER,
    insertions INTEGER,
    deletions INTEGER,
    checkpoint TEXT,
    completion_claimed INTEGER NOT NULL,
    gates_passed INTEGER,
    output_lines INTEGER NOT NULL DEFAULT 0,
    unknown_lines INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, n)
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    iteration INTEGER,
    ts TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX events_run ON events(run_id, id);
"#,
    // v2: what each prompt was made of (prompt evolution, ralph's own overhead) and how full
    // the agent's context window got.
    r#"
ALTER TABLE iterations ADD COLUMN prompt_sha256 TEXT;
ALTER TABLE iterations ADD COLUMN prompt_bytes INTEGER;
ALTER TABLE iterations ADD COLUMN user_prompt_bytes INTEGER;
ALTER TABLE iterations ADD COLUMN context_tokens INTEGER;
ALTER TABLE iterations ADD COLUMN context_window INTEGER;
ALTER TABLE runs ADD COLUMN notes TEXT;
"#,
    // v3: agent calls that are not iterations (summarising the notes), accounted like them.
    r#"
CREATE TABLE side_calls (
    run_id TEXT NOT NULL REFERENCES runs(id),
    after_iteration INTEGER NOT NULL,
    kind TEXT NOT NULL,
    ts TEXT NOT NULL,
    backend TEXT NOT NULL,
    model TEXT,
    cost_usd REAL,
    cost_source TEXT NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cache_read_tokens INTEGER,
    cache_write_tokens INTEGER,
    PRIMARY KEY (run_id, after_iteration, kind)
);
"#,
    // v4: runs belong to a scope (NULL: the single loop; a story id: that story's loop), so
    // many loops can share one database and each resumes its own run.
    r#"
ALTER TABLE runs ADD COLUMN scope TEXT;
CREATE INDEX runs_scope ON runs(scope);
"#,
];

pub(crate) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version = check_version(conn)?;
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn
            .unchecked_transaction()
            .map_err(sql("begin a migration"))?;
        tx.execute_batch(migration)
            .map_err(sql("migrate the state database"))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(sql("record the schema version"))?;
        tx.commit().map_err(sql("commit a migration"))?;
    }
    Ok(())
}

pub(crate) fn check_version(conn: &Connection) -> Result<i64, StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql("read the schema version"))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::TooNew {
            found: version,
            known,
        });
    }
    Ok(version)
}
