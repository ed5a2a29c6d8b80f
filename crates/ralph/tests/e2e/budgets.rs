//! Machine-wide budgets: the daily and monthly caps count every run of every project that
//! shares one ledger.

use ralph_testkit::script::{ClaudeResult, Script, Step};

use crate::harness::*;

fn paying(p: &Project, cost: f64, loop_extra: &str, budget: &str) {
    let script = Script::new().default_steps(vec![Step::claude_result(
        ClaudeResult::success("working")
            .cost_usd(cost)
            .tokens(100, 10),
    )]);
    p.configure(&script, "claude-stream-json", loop_extra, budget);
}

#[test]
fn a_daily_budget_counts_every_project_on_the_machine() {
    let shared = tempfile::tempdir().unwrap();
    let a = Project::new();
    paying(&a, 0.01, "max_iterations = 3", "");
    let out = Out::from(
        a.ralph()
            .arg("run")
            .env("RALPH_HOME", shared.path())
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(shared.path().join("ledger.db").exists());

    // Project B may spend $0.045 a day on this machine; A already spent $0.03 of it.
    let b = Project::new();
    paying(&b, 0.01, "", "[budget]\ndaily_usd = 0.045\n");
    let out = Out::from(
        b.ralph()
            .args(["run", "--json"])
            .env("RALPH_HOME", shared.path())
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 5, "{}", out.stderr);
    // $0.04 after one iteration; one more could reach $0.05.
    assert_eq!(b.iterations().len(), 1);
    assert!(
        out.summary()
            .contains("daily budget: $0.0400 spent on this machine (all projects)"),
        "{}",
        out.summary()
    );
    let alerts: Vec<_> = out
        .events()
        .into_iter()
        .filter(|e| e["event"] == "budget.alert")
        .collect();
    // 67% was reached before B started (not announced again); 89% after its iteration.
    assert_eq!(alerts.len(), 1, "{}", out.stdout);
    assert_eq!(alerts[0]["scope"], "daily");
    assert_eq!(alerts[0]["fraction"], 0.8);

    // The next run in either project stops before starting an iteration.
    let out = Out::from(
        a.ralph()
            .args(["run", "--fresh"])
            .env("RALPH_HOME", shared.path())
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 3, "A has no daily cap of its own: {}", out.stderr);
    let shared_home = regex::escape(&path_str(shared.path()));
    ralph_snapshot!(
        b,
        b.ralph()
            .args(["run", "--fresh"])
            .env("RALPH_HOME", shared.path()),
        filters = [(shared_home.as_str(), "[SHARED_RALPH_HOME]")]
    );
}

#[test]
fn the_ledger_holds_one_entry_per_iteration() {
    let shared = tempfile::tempdir().unwrap();
    let p = Project::new();
    paying(&p, 0.02, "max_iterations = 2", "");
    let out = Out::from(
        p.ralph()
            .arg("run")
            .env("RALPH_HOME", shared.path())
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    let ledger = rusqlite::Connection::open(shared.path().join("ledger.db")).unwrap();
    let (n, sum): (i64, f64) = ledger
        .query_row("SELECT COUNT(*), SUM(cost_usd) FROM entries", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(n, 2);
    assert!((sum - 0.04).abs() < 1e-12, "{sum}");
}

#[test]
fn daily_caps_without_a_ledger_location_are_refused() {
    let p = Project::new();
    paying(&p, 0.01, "", "[budget]\ndaily_usd = 1.0\n");
    ralph_snapshot!(
        p,
        p.ralph()
            .arg("run")
            .env_remove("RALPH_HOME")
            .env_remove("XDG_DATA_HOME")
            .env_remove("HOME")
    );
}

/// Regression: a ledger that could be opened but not read left `machine_spend` at "unknown",
/// which silently switched the daily and monthly caps off.
#[test]
fn an_unreadable_ledger_stops_the_run_instead_of_ignoring_the_daily_cap() {
    let home = tempfile::tempdir().unwrap();
    let p = Project::new();
    paying(&p, 0.01, "max_iterations = 1", "");
    let first = Out::from(
        p.ralph()
            .arg("run")
            .env("RALPH_HOME", home.path())
            .output()
            .unwrap(),
    );
    assert_eq!(first.code, 3, "{}", first.stderr);
    // Damage the ledger: still a database of the current schema version, but its entries
    // table is gone, so every sum fails.
    let ledger = rusqlite::Connection::open(home.path().join("ledger.db")).unwrap();
    ledger.execute_batch("DROP TABLE entries").unwrap();
    drop(ledger);

    paying(
        &p,
        0.01,
        "max_iterations = 5",
        "[budget]\ndaily_usd = 1.0\n",
    );
    let out = Out::from(
        p.ralph()
            .args(["run", "--fresh"])
            .env("RALPH_HOME", home.path())
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 8, "{}", out.stderr);
    assert!(
        out.summary().contains("cannot be used") && out.summary().contains("budget.daily_usd"),
        "{}",
        out.summary()
    );
    assert!(
        p.iterations().is_empty(),
        "nothing ran against a cap that cannot be checked"
    );
}
