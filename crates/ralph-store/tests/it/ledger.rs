//! The user-level cost ledger: replay, concurrent writers, budget windows, unknown costs, and
//! cost reports from the ledger and from a project's database.

use std::path::Path;
use std::sync::{Arc, Barrier};

use chrono::{DateTime, FixedOffset, Local, NaiveDate, TimeZone, Utc};
use ralph_store::ledger::{
    day_start, day_window, local_date_start, month_start, month_window, to_utc_rfc3339,
    SIDE_CALL_ITERATION_BASE,
};
use ralph_store::{CostGroup, Ledger, LedgerEntry, Store, Tokens};

fn entry(project: &str, run: &str, n: u32, ts: &str, cost: Option<f64>) -> LedgerEntry {
    LedgerEntry {
        ts: ts.into(),
        project: project.into(),
        run_id: run.into(),
        iteration: n,
        backend: "claude".into(),
        model: Some("claude-sonnet-4-5".into()),
        cost_usd: cost,
        cost_source: if cost.is_some() {
            "reported"
        } else {
            "unknown"
        }
        .into(),
        tokens: Some(Tokens {
            input: 100,
            output: 10,
            cache_read: 5,
            cache_write: 1,
        }),
    }
}

const FAR_PAST: &str = "1970-01-01T00:00:00Z";
const FAR_FUTURE: &str = "9999-01-01T00:00:00Z";

#[test]
fn open_creates_directories_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep/er/ledger.db");
    {
        let l = Ledger::open(&path).unwrap();
        l.record(&entry("/p", "r1", 1, "2025-01-02T03:04:05.678Z", Some(0.5)))
            .unwrap();
    }
    assert!(path.is_file());
    let l = Ledger::open(&path).unwrap();
    assert_eq!(l.rows(None).unwrap().len(), 1);
    let ro = Ledger::open_read_only(&path).unwrap();
    assert_eq!(ro.spent_between(FAR_PAST, FAR_FUTURE).unwrap(), 0.5);
    assert_eq!(ro.path(), path.as_path());
}

#[test]
fn read_only_open_of_a_missing_ledger_fails_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    assert!(Ledger::open_read_only(&path).is_err());
    assert!(!path.exists());
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    drop(Ledger::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = Ledger::open(&path).err().unwrap();
    assert!(err.to_string().contains("newer ralph"), "{err}");
    assert!(Ledger::open_read_only(&path).is_err());
}

#[test]
fn replaying_an_iteration_never_counts_it_twice() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(&dir.path().join("ledger.db")).unwrap();
    let e = entry("/p", "r1", 1, "2025-01-02T03:04:05.000Z", Some(0.0123));
    l.record(&e).unwrap();
    l.record(&e).unwrap();
    // A replay after a crash may finish later and report a different figure: the last wins.
    let mut replay = e.clone();
    replay.ts = "2025-01-02T03:09:00.000Z".into();
    replay.cost_usd = Some(0.02);
    l.record(&replay).unwrap();
    let rows = l.rows(None).unwrap();
    assert_eq!(rows, vec![replay]);
    assert_eq!(l.spent_between(FAR_PAST, FAR_FUTURE).unwrap(), 0.02);
    // The same iteration number in another run or another project is another entry.
    l.record(&entry("/p", "r2", 1, "2025-01-02T04:00:00Z", Some(0.01)))
        .unwrap();
    l.record(&entry("/q", "r1", 1, "2025-01-02T04:00:00Z", Some(0.01)))
        .unwrap();
    assert_eq!(l.rows(None).unwrap().len(), 3);
    assert!((l.spent_between(FAR_PAST, FAR_FUTURE).unwrap() - 0.04).abs() < 1e-12);
}

#[test]
fn unknown_costs_are_counted_apart_not_as_zero() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(&dir.path().join("ledger.db")).unwrap();
    l.record(&entry("/p", "r", 1, "2025-01-02T10:00:00Z", Some(1.25)))
        .unwrap();
    l.record(&entry("/p", "r", 2, "2025-01-02T11:00:00Z", None))
        .unwrap();
    let mut nan = entry("/p", "r", 3, "2025-01-02T12:00:00Z", Some(f64::NAN));
    nan.tokens = None;
    l.record(&nan).unwrap();
    let day = ("2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z");
    assert_eq!(l.spent_between(day.0, day.1).unwrap(), 1.25);
    assert_eq!(l.unknown_between(day.0, day.1).unwrap(), 2);
    assert_eq!(l.unknown_between("2025-01-02T11:30:00Z", day.1).unwrap(), 1);
    let rows = l.rows(Some("2025-01-02T11:00:00Z")).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].cost_usd, None);
    assert_eq!(rows[1].cost_usd, None);
    assert_eq!(rows[1].tokens, None);
    let report = l.cost_report(CostGroup::Run, None).unwrap();
    assert_eq!(report.total.iterations, 3);
    assert_eq!(report.total.unknown_cost_iterations, 2);
    assert_eq!(report.total.cost_usd, 1.25);
}

#[test]
fn windows_are_half_open_and_compare_instants_whatever_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(&dir.path().join("ledger.db")).unwrap();
    // 23:30 in New York on Jan 1 is 04:30 UTC on Jan 2.
    l.record(&entry("/p", "r", 1, "2025-01-01T23:30:00-05:00", Some(1.0)))
        .unwrap();
    l.record(&entry("/p", "r", 2, "2025-01-02T05:00:00Z", Some(2.0)))
        .unwrap();
    assert_eq!(
        l.spent_between("2025-01-02T00:00:00Z", "2025-01-02T05:00:00Z")
            .unwrap(),
        1.0
    );
    assert_eq!(
        l.spent_between("2025-01-02T05:00:00Z", "2025-01-02T05:00:00.001Z")
            .unwrap(),
        2.0
    );
    assert_eq!(
        l.spent_between("2025-01-01T00:00:00-05:00", "2025-01-02T00:00:00-05:00")
            .unwrap(),
        1.0
    );
    assert_eq!(
        l.spent_between("2025-01-02T00:00:00-05:00", "2025-01-03T00:00:00-05:00")
            .unwrap(),
        2.0
    );
}

#[test]
fn day_and_month_windows_across_utc_offset_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(&dir.path().join("ledger.db")).unwrap();
    // Around 2025-03-01 00:00 in Tokyo (UTC+9), i.e. 2025-02-28 15:00 UTC.
    l.record(&entry("/p", "r", 1, "2025-02-28T14:59:59.999Z", Some(1.0)))
        .unwrap(); // Feb 28, 23:59:59.999 in Tokyo
    l.record(&entry("/p", "r", 2, "2025-02-28T15:00:00.000Z", Some(2.0)))
        .unwrap(); // Mar 1, 00:00 in Tokyo
    l.record(&entry("/p", "r", 3, "2025-03-01T10:00:00Z", Some(4.0)))
        .unwrap(); // Mar 1, 19:00 in Tokyo
    l.record(&entry("/p", "r", 4, "2025-03-01T16:00:00Z", None))
        .unwrap(); // Mar 2, 01:00 in Tokyo

    let tokyo = FixedOffset::east_opt(9 * 3600).unwrap();
    let now = tokyo.with_ymd_and_hms(2025, 3, 1, 20, 0, 0).unwrap();
    let (from, to) = day_window(&now);
    assert_eq!(from, "2025-02-28T15:00:00.000Z");
    assert_eq!(from, day_start(&now));
    assert_eq!(to, "2025-03-01T15:00:00.000Z");
    assert_eq!(l.spent_between(&from, &to).unwrap(), 6.0);
    assert_eq!(l.unknown_between(&from, &to).unwrap(), 0);
    let (from, to) = month_window(&now);
    assert_eq!(from, month_start(&now));
    assert_eq!(from, "2025-02-28T15:00:00.000Z");
    assert_eq!(to, "2025-03-31T15:00:00.000Z");
    assert_eq!(l.spent_between(&from, &to).unwrap(), 6.0);
    assert_eq!(l.unknown_between(&from, &to).unwrap(), 1);

    // The same instants seen from UTC: all on Feb 28 / Mar 1, and the month boundary differs.
    let utc = FixedOffset::east_opt(0).unwrap();
    let now = utc.with_ymd_and_hms(2025, 2, 28, 20, 0, 0).unwrap();
    let (from, to) = day_window(&now);
    assert_eq!(l.spent_between(&from, &to).unwrap(), 3.0);
    let (from, to) = month_window(&now);
    assert_eq!(
        (from.as_str(), to.as_str()),
        ("2025-02-01T00:00:00.000Z", "2025-03-01T00:00:00.000Z")
    );
    assert_eq!(l.spent_between(&from, &to).unwrap(), 3.0);

    // West of UTC: 2025-02-28 20:00 in New York is Mar 1, 01:00 UTC; its day started at 05:00 UTC.
    let ny = FixedOffset::west_opt(5 * 3600).unwrap();
    let now = ny.with_ymd_and_hms(2025, 2, 28, 20, 0, 0).unwrap();
    assert_eq!(day_start(&now), "2025-02-28T05:00:00.000Z");
    assert_eq!(month_start(&now), "2025-02-01T05:00:00.000Z");
    assert_eq!(month_window(&now).1, "2025-03-01T05:00:00.000Z");
    let (from, to) = day_window(&now);
    assert_eq!(l.spent_between(&from, &to).unwrap(), 3.0);
    let next = ny.with_ymd_and_hms(2025, 3, 1, 20, 0, 0).unwrap();
    let (from, to) = day_window(&next);
    assert_eq!(l.spent_between(&from, &to).unwrap(), 4.0);
    assert_eq!(l.unknown_between(&from, &to).unwrap(), 1);
}

#[test]
fn year_end_and_leap_day_windows() {
    let plus14 = FixedOffset::east_opt(14 * 3600).unwrap();
    let now = plus14.with_ymd_and_hms(2024, 12, 31, 23, 59, 59).unwrap();
    assert_eq!(
        month_window(&now),
        (
            "2024-11-30T10:00:00.000Z".to_string(),
            "2024-12-31T10:00:00.000Z".to_string()
        )
    );
    let utc = FixedOffset::east_opt(0).unwrap();
    let now = utc.with_ymd_and_hms(2024, 2, 29, 12, 0, 0).unwrap();
    assert_eq!(day_window(&now).1, "2024-03-01T00:00:00.000Z");
    assert_eq!(month_window(&now).1, "2024-03-01T00:00:00.000Z");
}

#[test]
fn windows_with_the_machine_time_zone_contain_now() {
    let now = Local::now();
    let stamp = to_utc_rfc3339(&now.to_rfc3339()).unwrap();
    let (from, to) = day_window(&now);
    assert!(from <= stamp && stamp < to, "{from} {stamp} {to}");
    let (from, to) = month_window(&now);
    assert!(from <= stamp && stamp < to, "{from} {stamp} {to}");
    // Exactly 24 hours apart unless the day has a DST change.
    let hours = (DateTime::parse_from_rfc3339(&day_window(&now).1).unwrap()
        - DateTime::parse_from_rfc3339(&day_window(&now).0).unwrap())
    .num_hours();
    assert!((23..=25).contains(&hours), "{hours}");
}

#[test]
fn local_date_start_in_a_fixed_zone() {
    let date = NaiveDate::from_ymd_opt(2025, 6, 15).unwrap();
    assert_eq!(
        local_date_start(&FixedOffset::east_opt(5 * 3600 + 1800).unwrap(), date),
        "2025-06-14T18:30:00.000Z"
    );
    assert_eq!(local_date_start(&Utc, date), "2025-06-15T00:00:00.000Z");
}

fn write_many(path: &Path, project: &str, n: u32, barrier: Option<&Barrier>) {
    if let Some(b) = barrier {
        b.wait();
    }
    // Each writer opens the ledger itself, at the same moment as the others: creation and
    // migration race too.
    let l = Ledger::open(path).unwrap();
    for i in 1..=n {
        let ts = format!("2025-01-02T03:{:02}:{:02}.000Z", i / 60, i % 60);
        l.record(&entry(project, "run", i, &ts, Some(0.01)))
            .unwrap();
    }
}

#[test]
fn concurrent_writers_in_threads_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home/ledger.db");
    let writers = 4;
    let per_writer = 100;
    let barrier = Arc::new(Barrier::new(writers));
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let path = path.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                write_many(&path, &format!("/project-{w}"), per_writer, Some(&barrier))
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let l = Ledger::open_read_only(&path).unwrap();
    assert_eq!(l.rows(None).unwrap().len(), writers * per_writer as usize);
    let spent = l.spent_between(FAR_PAST, FAR_FUTURE).unwrap();
    assert!((spent - 4.0).abs() < 1e-9, "{spent}");
    let by_project = l.cost_report(CostGroup::Project, None).unwrap();
    assert_eq!(by_project.rows.len(), writers);
    assert!(by_project.rows.iter().all(|r| r.iterations == per_writer));
}

const CHILD_ENV: &str = "RALPH_LEDGER_TEST_CHILD";

/// Runs only as a child of `concurrent_writers_in_processes_lose_nothing`.
#[test]
fn child_writer() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (path, project) = spec.split_once('|').unwrap();
    write_many(Path::new(path), project, 200, None);
}

#[test]
fn concurrent_writers_in_processes_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..3)
        .map(|w| {
            std::process::Command::new(&exe)
                .args(["--exact", "ledger::child_writer", "--test-threads", "1"])
                .env(CHILD_ENV, format!("{}|/proc-{w}", path.display()))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // This process writes too, with a connection opened while the children start.
    write_many(&path, "/parent", 200, None);
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let l = Ledger::open_read_only(&path).unwrap();
    let report = l.cost_report(CostGroup::Project, None).unwrap();
    assert_eq!(report.rows.len(), 4, "{report:?}");
    assert!(report.rows.iter().all(|r| r.iterations == 200));
    assert_eq!(report.total.iterations, 800);
    assert!((report.total.cost_usd - 8.0).abs() < 1e-9);
}

#[test]
fn ledger_report_groups_and_orders() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(&dir.path().join("ledger.db")).unwrap();
    let mut e = entry("/a", "r1", 1, "2025-01-02T10:00:00Z", Some(0.0123));
    l.record(&e).unwrap();
    e.iteration = 2;
    e.ts = "2025-01-02T10:05:00Z".into();
    l.record(&e).unwrap();
    let mut other = entry("/b", "r1", 1, "2025-01-03T10:00:00Z", Some(0.5));
    other.backend = "codex".into();
    other.model = None;
    l.record(&other).unwrap();

    let runs = l.cost_report(CostGroup::Run, None).unwrap();
    let keys: Vec<_> = runs
        .rows
        .iter()
        .map(|r| (r.project.as_deref(), r.key.as_str(), r.iterations))
        .collect();
    assert_eq!(keys, vec![(Some("/a"), "r1", 2), (Some("/b"), "r1", 1)]);
    assert!((runs.rows[0].cost_usd - 0.0246).abs() < 1e-12);
    assert_eq!(runs.rows[0].tokens.input, 200);
    assert_eq!(runs.rows[0].first_ts, "2025-01-02T10:00:00.000Z");
    assert_eq!(runs.rows[0].last_ts, "2025-01-02T10:05:00.000Z");

    let models = l.cost_report(CostGroup::Model, None).unwrap();
    let keys: Vec<_> = models.rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, vec!["unknown", "claude-sonnet-4-5"]);
    let backends = l.cost_report(CostGroup::Backend, None).unwrap();
    let keys: Vec<_> = backends.rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, vec!["codex", "claude"]);

    let since = l
        .cost_report(CostGroup::Project, Some("2025-01-03T00:00:00+00:00"))
        .unwrap();
    assert_eq!(since.rows.len(), 1);
    assert_eq!(since.rows[0].key, "/b");
    assert_eq!(since.total.cost_usd, 0.5);

    let days = l.cost_report(CostGroup::Day, None).unwrap();
    let local_day = |ts: &str| {
        DateTime::parse_from_rfc3339(ts)
            .unwrap()
            .with_timezone(&Local)
            .date_naive()
            .to_string()
    };
    let mut expected = vec![
        local_day("2025-01-02T10:00:00Z"),
        local_day("2025-01-03T10:00:00Z"),
    ];
    expected.dedup();
    let keys: Vec<_> = days.rows.iter().map(|r| r.key.clone()).collect();
    assert_eq!(keys, expected);
    assert_eq!(days.total.iterations, 3);
}

/// Iterations inserted with plain SQL (only the columns a cost report reads), so this test
/// does not depend on every field of `IterationRecord`.
fn project_db(dir: &Path, iterations: &[(&str, u32, &str, Option<f64>, &str)]) -> Store {
    let path = dir.join("ralph.db");
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
    for (run, n, finished, cost, model) in iterations {
        conn.execute(
            "INSERT INTO iterations (run_id, n, started_at, finished_at, duration_s, backend, \
             model, outcome, cost_usd, cost_source, input_tokens, output_tokens, \
             cache_read_tokens, cache_write_tokens, completion_claimed) VALUES \
             (?1, ?2, ?3, ?3, 1.0, 'claude', ?4, 'progressed', ?5, ?6, 1000, 100, 10, 1, 0)",
            rusqlite::params![
                run,
                n,
                finished,
                model,
                cost,
                if cost.is_some() {
                    "reported"
                } else {
                    "unknown"
                }
            ],
        )
        .unwrap();
    }
    Store::open_read_only(&path).unwrap()
}

#[test]
fn project_report_sums_match_the_iterations_to_the_cent() {
    let dir = tempfile::tempdir().unwrap();
    let mut its = Vec::new();
    let stamps: Vec<String> = (0..30)
        .map(|i| format!("2025-01-02T10:{i:02}:00.000Z"))
        .collect();
    for (i, ts) in stamps.iter().enumerate() {
        let run = if i < 10 { "run-a" } else { "run-b" };
        its.push((run, i as u32 + 1, ts.as_str(), Some(0.0123), "m1"));
    }
    its.push(("run-b", 31, "2025-01-02T11:00:00.000Z", None, "m2"));
    let store = project_db(dir.path(), &its);

    let report = store.cost_report(CostGroup::Run, None).unwrap();
    let keys: Vec<_> = report.rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, vec!["run-a", "run-b"]);
    assert!(report.rows.iter().all(|r| r.project.is_none()));
    assert_eq!(format!("{:.4}", report.rows[0].cost_usd), "0.1230");
    assert_eq!(format!("{:.4}", report.rows[1].cost_usd), "0.2460");
    assert_eq!(format!("{:.4}", report.total.cost_usd), "0.3690");
    assert!((report.total.cost_usd - 0.369).abs() < 1e-12);
    assert_eq!(report.total.iterations, 31);
    assert_eq!(report.rows[1].unknown_cost_iterations, 1);
    assert_eq!(report.total.unknown_cost_iterations, 1);
    assert_eq!(report.total.tokens.input, 31_000);
    assert_eq!(report.total.tokens.cache_write, 31);

    let models = store.cost_report(CostGroup::Model, None).unwrap();
    let keys: Vec<_> = models
        .rows
        .iter()
        .map(|r| (r.key.as_str(), r.iterations, r.unknown_cost_iterations))
        .collect();
    assert_eq!(keys, vec![("m1", 30, 0), ("m2", 1, 1)]);

    let one = store.cost_report(CostGroup::Project, None).unwrap();
    assert_eq!(one.rows.len(), 1);
    assert_eq!(one.rows[0].key, "");

    let since = store
        .cost_report(CostGroup::Run, Some("2025-01-02T12:20:00+02:00"))
        .unwrap();
    assert_eq!(since.total.iterations, 11);
    assert_eq!(since.rows.len(), 1);
    assert!(store.cost_report(CostGroup::Run, Some("junk")).is_err());
}

#[test]
fn an_empty_project_database_reports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = project_db(dir.path(), &[]);
    let report = store.cost_report(CostGroup::Day, None).unwrap();
    assert!(report.rows.is_empty());
    assert_eq!(report.total.iterations, 0);
    assert_eq!(report.total.cost_usd, 0.0);
    assert_eq!(report.total.key, "total");
}

#[test]
fn side_calls_are_paid_for_but_not_counted_as_iterations() {
    let dir = tempfile::tempdir().unwrap();
    // Project database: 2 iterations at $0.001 and a notes summary at $0.002 after iteration 1.
    let store = project_db(
        dir.path(),
        &[
            ("run", 1, "2025-01-02T10:00:00.000Z", Some(0.001), "m1"),
            ("run", 2, "2025-01-02T10:02:00.000Z", Some(0.001), "m1"),
        ],
    );
    let conn = rusqlite::Connection::open(dir.path().join("ralph.db")).unwrap();
    conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
    conn.execute(
        "INSERT INTO side_calls (run_id, after_iteration, kind, ts, backend, model, cost_usd, \
         cost_source, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens) \
         VALUES ('run', 1, 'summary', '2025-01-02T10:01:00.000Z', 'claude', 'cheap', 0.002, \
         'reported', 50, 5, 0, 0)",
        [],
    )
    .unwrap();
    let report = store.cost_report(CostGroup::Run, None).unwrap();
    assert_eq!(report.rows.len(), 1);
    let row = &report.rows[0];
    assert_eq!((row.iterations, row.side_calls), (2, 1));
    assert!((row.cost_usd - 0.004).abs() < 1e-12, "{row:?}");
    assert_eq!(row.tokens.input, 2050);
    let models = store.cost_report(CostGroup::Model, None).unwrap();
    let keys: Vec<_> = models
        .rows
        .iter()
        .map(|r| (r.key.as_str(), r.iterations, r.side_calls))
        .collect();
    assert_eq!(keys, vec![("cheap", 0, 1), ("m1", 2, 0)]);
    let since = store
        .cost_report(CostGroup::Run, Some("2025-01-02T10:01:30Z"))
        .unwrap();
    assert_eq!((since.total.iterations, since.total.side_calls), (1, 0));

    // The ledger keys the same summary past every real iteration number.
    let l = Ledger::open(&dir.path().join("ledger.db")).unwrap();
    l.record(&entry("/p", "run", 1, "2025-01-02T10:00:00Z", Some(0.001)))
        .unwrap();
    l.record(&entry(
        "/p",
        "run",
        SIDE_CALL_ITERATION_BASE + 1,
        "2025-01-02T10:01:00Z",
        None,
    ))
    .unwrap();
    let report = l.cost_report(CostGroup::Project, None).unwrap();
    let t = &report.total;
    assert_eq!(
        (t.iterations, t.side_calls, t.unknown_cost_iterations),
        (1, 1, 1)
    );
    assert_eq!(t.cost_usd, 0.001);
}
