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
    // v5: the stories mode (STORIES.md): plan runs, their stories and attempts, the merge
    // queue, and gate results by tree. A story's loop run is an ordinary run with scope = the
    // story id and `plan_run_id` naming its plan run (story ids repeat across plan runs).
    // `story_attempts.run_id` has no foreign key: the scheduler may record an attempt before
    // the loop's first (posted) run row is committed.
    r#"
ALTER TABLE runs ADD COLUMN plan_run_id TEXT;
CREATE INDEX runs_plan ON runs(plan_run_id, scope);
CREATE TABLE plan_runs (
    id TEXT PRIMARY KEY,
    plan_name TEXT NOT NULL,
    plan_path TEXT NOT NULL,
    plan_hash TEXT NOT NULL,
    integration_branch TEXT NOT NULL,
    base_commit TEXT NOT NULL,
    user_branch TEXT,
    state TEXT NOT NULL,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT,
    stop_reason TEXT,
    options TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX plan_runs_name ON plan_runs(plan_name, finished_at);
CREATE TABLE stories (
    plan_run_id TEXT NOT NULL REFERENCES plan_runs(id),
    story_id TEXT NOT NULL,
    state TEXT NOT NULL,
    layer TEXT,
    depends_on TEXT NOT NULL DEFAULT '[]',
    branch TEXT,
    worktree TEXT,
    base_commit TEXT,
    head_commit TEXT,
    merged_commit TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    iterations INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL,
    reason TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (plan_run_id, story_id)
);
CREATE TABLE story_attempts (
    plan_run_id TEXT NOT NULL,
    story_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT,
    base_commit TEXT,
    PRIMARY KEY (plan_run_id, story_id, n),
    FOREIGN KEY (plan_run_id, story_id) REFERENCES stories(plan_run_id, story_id)
);
CREATE INDEX story_attempts_run ON story_attempts(run_id);
CREATE TABLE merge_queue (
    plan_run_id TEXT NOT NULL REFERENCES plan_runs(id),
    seq INTEGER NOT NULL,
    story_ids TEXT NOT NULL,
    state TEXT NOT NULL,
    candidate_ref TEXT,
    candidate_commit TEXT,
    built_on TEXT,
    detail TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (plan_run_id, seq)
);
CREATE TABLE gate_cache (
    tree TEXT NOT NULL,
    gate TEXT NOT NULL,
    command_hash TEXT NOT NULL,
    passed INTEGER NOT NULL,
    exit_code INTEGER,
    duration_s REAL NOT NULL,
    output_tail TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tree, gate, command_hash)
);
"#,
];

/// The version that added the stories mode's tables and `runs.plan_run_id`.
pub(crate) const STORIES_VERSION: i64 = 5;

/// The schema version this ralph writes (tests build databases at older versions).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The SQL of migration `i` (from version `i` to `i + 1`), for tests that build a database at
/// an older version and migrate it.
#[doc(hidden)]
pub fn migration_sql(i: usize) -> Option<&'static str> {
    MIGRATIONS.get(i).copied()
}

pub(crate) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version = check_version(conn)?;
    if version as usize >= MIGRATIONS.len() {
        return Ok(());
    }
    // Every pending migration in one transaction: a new database is made with one commit
    // (one fsync of the journal) instead of one per migration, and a crash still leaves it
    // at a version it fully has.
    let tx = conn
        .unchecked_transaction()
        .map_err(sql("begin a migration"))?;
    for migration in MIGRATIONS.iter().skip(version as usize) {
        tx.execute_batch(migration)
            .map_err(sql("migrate the state database"))?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)
        .map_err(sql("record the schema version"))?;
    tx.commit().map_err(sql("commit a migration"))?;
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
