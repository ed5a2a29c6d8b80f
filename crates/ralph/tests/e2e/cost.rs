//! `ralph cost`: totals that match the iterations to the cent, every grouping, `--since`, the
//! human table, unknown costs, and `--all-projects` from the user-level ledger.

use std::path::PathBuf;

use ralph_testkit::script::{ClaudeResult, Script, Step};

use crate::harness::*;

const MODEL: &str = "claude-sonnet-4-5";

/// Every call reports $0.0123 and 100/10 tokens; the loop never completes.
fn paid_script() -> Script {
    Script::new().default_steps(vec![
        Step::claude_init(MODEL),
        Step::claude_result(
            ClaudeResult::success("still working")
                .cost_usd(0.0123)
                .tokens(100, 10),
        ),
    ])
}

fn paid_project(iterations: u32) -> Project {
    let p = Project::new();
    p.configure(
        &paid_script(),
        "claude-stream-json",
        &format!("max_iterations = {iterations}"),
        "",
    );
    p
}

fn run_ok(p: &Project, args: &[&str]) {
    let out = p.run(args);
    assert_eq!(out.code, 3, "ralph {args:?}: {}", out.stderr);
}

/// `ralph cost ARGS` with extra environment; must exit 0.
fn cost_env(p: &Project, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = p.ralph();
    cmd.arg("cost").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = Out::from(cmd.output().unwrap());
    assert_eq!(out.code, 0, "ralph cost {args:?}: {}", out.stderr);
    out
}

fn cost_json(p: &Project, args: &[&str]) -> serde_json::Value {
    cost_json_env(p, args, &[("TZ", "UTC")])
}

fn cost_json_env(p: &Project, args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = cost_env(p, &all, env);
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("ralph cost {all:?}: {e}: {}", out.stdout))
}

fn keys(v: &serde_json::Value) -> Vec<String> {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect()
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// (run id, sum of known costs, iterations) of every run, oldest first, straight from SQLite.
fn db_runs(p: &Project) -> Vec<(String, f64, u32)> {
    let db = p.db();
    let mut stmt = db
        .prepare(
            "SELECT run_id, COALESCE(SUM(cost_usd), 0), COUNT(*) FROM iterations \
             GROUP BY run_id ORDER BY MIN(finished_at)",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn db_string(p: &Project, sql: &str) -> String {
    p.db().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn db_i64(p: &Project, sql: &str) -> i64 {
    p.db().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn json_totals_match_the_iterations_to_the_cent() {
    let p = paid_project(3);
    run_ok(&p, &["run"]);
    let v = cost_json(&p, &[]);
    assert_eq!(v["version"], 1);
    assert_eq!(v["by"], "run");
    let runs = db_runs(&p);
    assert_eq!(runs.len(), 1);
    let (run_id, db_sum, n) = &runs[0];
    assert_eq!(*n, 3);
    let total = f(&v["total_usd"]);
    assert_eq!(format!("{total:.2}"), format!("{db_sum:.2}"));
    assert_eq!(format!("{total:.4}"), "0.0369");
    assert!((total - db_sum).abs() < 1e-9, "{total} vs {db_sum}");
    assert_eq!(keys(&v), vec![run_id.clone()]);
    let row = &v["rows"][0];
    assert!((f(&row["cost_usd"]) - 0.0369).abs() < 1e-9, "{row}");
    assert_eq!(row["iterations"], 3);
    assert_eq!(row["unknown_cost_iterations"], 0);
    assert_eq!(row["tokens"]["input"], 300);
    assert_eq!(row["tokens"]["output"], 30);
    assert_eq!(row["tokens"]["cache_read"], 0);
    assert_eq!(row["tokens"]["cache_write"], 0);
    assert_eq!(v["unknown_cost_iterations"], 0);
    // The status of the run agrees.
    let status = p.status_json();
    assert!((f(&status["cost_usd"]) - total).abs() < 1e-9);
}

#[test]
fn many_iterations_still_add_up_to_the_cent() {
    let p = paid_project(25);
    run_ok(&p, &["run"]);
    let v = cost_json(&p, &["--by", "day"]);
    let db_sum = db_runs(&p)[0].1;
    let total = f(&v["total_usd"]);
    assert_eq!(format!("{total:.4}"), "0.3075");
    assert_eq!(format!("{total:.2}"), format!("{db_sum:.2}"));
    let rows_sum: f64 = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| f(&r["cost_usd"]))
        .sum();
    assert!((rows_sum - total).abs() < 1e-9);
}

#[test]
fn grouping_by_run_model_backend_and_day() {
    let p = paid_project(2);
    run_ok(&p, &["run"]);
    run_ok(&p, &["run", "--fresh"]);
    let runs = db_runs(&p);
    assert_eq!(runs.len(), 2);

    let by_run = cost_json(&p, &["--by", "run"]);
    assert_eq!(
        keys(&by_run),
        runs.iter().map(|r| r.0.clone()).collect::<Vec<_>>()
    );
    for (row, (_, sum, n)) in by_run["rows"].as_array().unwrap().iter().zip(&runs) {
        assert_eq!(row["iterations"], *n);
        assert!((f(&row["cost_usd"]) - sum).abs() < 1e-9);
    }
    assert!((f(&by_run["total_usd"]) - 0.0492).abs() < 1e-9);

    let by_model = cost_json(&p, &["--by", "model"]);
    assert_eq!(by_model["by"], "model");
    let model = db_string(
        &p,
        "SELECT COALESCE(model, 'unknown') FROM iterations LIMIT 1",
    );
    assert_eq!(keys(&by_model), vec![model]);
    assert_eq!(by_model["rows"][0]["iterations"], 4);

    let by_backend = cost_json(&p, &["--by", "backend"]);
    let backend = db_string(&p, "SELECT backend FROM iterations LIMIT 1");
    assert_eq!(keys(&by_backend), vec![backend]);
    assert!((f(&by_backend["rows"][0]["cost_usd"]) - 0.0492).abs() < 1e-9);

    // Days are local dates: check in UTC and at UTC+14, where the date differs from UTC's for
    // ten hours a day.
    let mut expected_utc = vec![
        db_string(&p, "SELECT date(MIN(finished_at)) FROM iterations"),
        db_string(&p, "SELECT date(MAX(finished_at)) FROM iterations"),
    ];
    expected_utc.dedup();
    assert_eq!(keys(&cost_json(&p, &["--by", "day"])), expected_utc);
    let mut expected_east = vec![
        db_string(
            &p,
            "SELECT date(MIN(finished_at), '+14 hours') FROM iterations",
        ),
        db_string(
            &p,
            "SELECT date(MAX(finished_at), '+14 hours') FROM iterations",
        ),
    ];
    expected_east.dedup();
    let by_day = cost_json_env(&p, &["--by", "day"], &[("TZ", "UTC-14")]);
    assert_eq!(by_day["by"], "day");
    assert_eq!(keys(&by_day), expected_east);
    assert!((f(&by_day["total_usd"]) - 0.0492).abs() < 1e-9);

    let by_project = cost_json(&p, &["--by", "project"]);
    let root = std::fs::canonicalize(&p.root).unwrap();
    assert_eq!(keys(&by_project), vec![path_str(&root)]);
}

#[test]
fn since_filters_by_local_date_or_exact_time() {
    let p = paid_project(2);
    run_ok(&p, &["run"]);
    run_ok(&p, &["run", "--fresh"]);
    let runs = db_runs(&p);
    let second = &runs[1].0;
    // The second run started after the first one's iterations finished.
    let boundary = db_string(
        &p,
        &format!("SELECT MIN(started_at) FROM iterations WHERE run_id = '{second}'"),
    );
    let v = cost_json(&p, &["--since", &boundary]);
    assert_eq!(keys(&v), vec![second.clone()]);
    assert_eq!(v["rows"][0]["iterations"], 2);
    assert!((f(&v["total_usd"]) - 0.0246).abs() < 1e-9);

    // A local date means from its midnight: everything today, nothing tomorrow.
    let first_day = db_string(&p, "SELECT date(MIN(finished_at)) FROM iterations");
    let v = cost_json(&p, &["--since", &first_day]);
    assert_eq!(v["iterations"], 4);
    let tomorrow = db_string(
        &p,
        "SELECT date(MAX(finished_at), '+1 day') FROM iterations",
    );
    let v = cost_json(&p, &["--since", &tomorrow]);
    assert_eq!(v["rows"].as_array().unwrap().len(), 0);
    assert_eq!(v["total_usd"], 0.0);
    assert_eq!(v["iterations"], 0);
    // The same date is another instant at UTC+14: its midnight is 14 hours earlier.
    let v = cost_json_env(&p, &["--since", &tomorrow], &[("TZ", "UTC-14")]);
    let in_window = db_i64(
        &p,
        &format!(
            "SELECT COUNT(*) FROM iterations WHERE finished_at >= \
             strftime('%Y-%m-%dT%H:%M:%fZ', '{tomorrow}', '-14 hours')"
        ),
    );
    assert_eq!(v["iterations"], in_window);

    ralph_snapshot!(
        p,
        p.ralph()
            .args(["cost", "--since", &tomorrow])
            .env("TZ", "UTC"),
        filters = [(tomorrow.as_str(), "[TOMORROW]")]
    );

    ralph_snapshot!(p, ["cost", "--since", "last tuesday"]);
    ralph_snapshot!(p, ["cost", "--by", "week"]);
}

#[test]
fn human_table_has_aligned_rows_and_a_total() {
    let p = paid_project(3);
    run_ok(&p, &["run"]);
    run_ok(&p, &["run", "--fresh", "--max-iterations", "1"]);
    let runs = db_runs(&p);
    // The run ids are filtered out of the snapshot: check their order here.
    let out = ralph_snapshot!(p, ["cost"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[1].starts_with(&runs[0].0), "{}", out.stdout);
    assert!(lines[2].starts_with(&runs[1].0), "{}", out.stdout);
    // Right-aligned numbers: every line is as wide as the header (the snapshot's run ids are
    // shorter than the real ones).
    let width = lines[0].len();
    assert!(lines.iter().all(|l| l.len() == width), "{}", out.stdout);

    ralph_snapshot!(p, ["cost", "--by", "model"]);
}

#[test]
fn unknown_costs_are_never_shown_as_zero() {
    let p = Project::new();
    // A text agent reports no cost.
    p.configure_text(
        &Script::new().default_steps(vec![Step::print("working")]),
        "max_iterations = 2",
    );
    run_ok(&p, &["run"]);
    let v = cost_json(&p, &[]);
    assert_eq!(v["iterations"], 2);
    assert_eq!(v["unknown_cost_iterations"], 2);
    assert_eq!(v["rows"][0]["unknown_cost_iterations"], 2);
    // Not a snapshot: the table's tokens column shows these iterations' unknown tokens as 0
    // (reported to the lead).
    let out = cost_env(&p, &[], &[]);
    let total = out.stdout.lines().find(|l| l.starts_with("total")).unwrap();
    assert!(total.contains("cost unknown"), "{}", out.stdout);
    assert!(!total.contains("$0.0000"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("2 iterations of unknown cost (no cost reported"),
        "{}",
        out.stdout
    );

    // Known and unknown together: the known sum plus a count of the rest.
    p.configure(
        &paid_script(),
        "claude-stream-json",
        "max_iterations = 1",
        "",
    );
    run_ok(&p, &["run", "--fresh"]);
    let v = cost_json(&p, &[]);
    assert_eq!(v["iterations"], 3);
    assert_eq!(v["unknown_cost_iterations"], 2);
    assert!((f(&v["total_usd"]) - 0.0123).abs() < 1e-9);
    let out = cost_env(&p, &[], &[]);
    let total = out.stdout.lines().find(|l| l.starts_with("total")).unwrap();
    assert!(total.contains("$0.0123 + 2 unknown"), "{}", out.stdout);
}

#[test]
fn no_runs_is_a_clear_message_not_an_error() {
    let p = Project::new();
    ralph_snapshot!(p, ["cost"]);
    let v = cost_json(&p, &[]);
    assert_eq!(v["version"], 1);
    assert_eq!(v["total_usd"], 0.0);
    assert_eq!(v["rows"].as_array().unwrap().len(), 0);
    assert!(!p.exists(".ralph"), "ralph cost must not create state");

    // No ledger on this machine yet either (nothing ran with this RALPH_HOME).
    ralph_snapshot!(p, ["cost", "--all-projects"]);
    let v = cost_json(&p, &["--all-projects", "--by", "project"]);
    assert_eq!(v["rows"].as_array().unwrap().len(), 0);
    assert!(!p.home.join("ralph-home").join("ledger.db").exists());
}

fn ralph_home(p: &Project) -> PathBuf {
    p.home.join("ralph-home")
}

/// Needs the engine to record every iteration in `$RALPH_HOME/ledger.db`.
#[test]
fn all_projects_reads_the_user_level_ledger() {
    let a = paid_project(2);
    let b = paid_project(3);
    run_ok(&a, &["run"]);
    // Project b runs on the same machine: same RALPH_HOME as a.
    let home = path_str(&ralph_home(&a));
    let out = Out::from(
        b.ralph()
            .env("RALPH_HOME", &home)
            .arg("run")
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        ralph_home(&a).join("ledger.db").is_file(),
        "the engine did not write $RALPH_HOME/ledger.db"
    );

    let by_project = cost_json(&a, &["--all-projects", "--by", "project"]);
    assert_eq!(by_project["scope"], "all_projects");
    let root_a = path_str(&std::fs::canonicalize(&a.root).unwrap());
    let root_b = path_str(&std::fs::canonicalize(&b.root).unwrap());
    // Costliest first.
    assert_eq!(keys(&by_project), vec![root_b.clone(), root_a.clone()]);
    let total = f(&by_project["total_usd"]);
    let db_sum = db_runs(&a)[0].1 + db_runs(&b)[0].1;
    assert_eq!(format!("{total:.2}"), format!("{db_sum:.2}"));
    assert!((total - 0.0615).abs() < 1e-9, "{total}");
    assert_eq!(by_project["iterations"], 5);

    // Runs carry their project; project b's own report sees only b.
    let by_run = cost_json(&a, &["--all-projects"]);
    let rows = by_run["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["key"], db_runs(&a)[0].0.as_str());
    assert_eq!(rows[0]["project"], root_a.as_str());
    assert_eq!(rows[1]["key"], db_runs(&b)[0].0.as_str());
    assert_eq!(rows[1]["project"], root_b.as_str());
    let only_b = cost_json(&b, &[]);
    assert!((f(&only_b["total_usd"]) - 0.0369).abs() < 1e-9);

    // Human table of all projects.
    let b_root = regex::escape(&root_b);
    ralph_snapshot!(
        a,
        ["cost", "--all-projects"],
        filters = [(b_root.as_str(), "[ROOT_B]")]
    );
}

/// A custom agent in sh printing Claude stream-json: $0.001 an iteration, $0.002 a notes
/// summary (the same agent as the notes tests).
const SUMMARISING_AGENT: &str = r#"#!/bin/sh
cat > /dev/null
if [ "$RALPH_CALL" = summary ]; then
  text='- the tests gate failed every time with exit 1'
  cost=0.002
else
  text='I tried again.'
  cost=0.001
fi
printf '{"type":"result","subtype":"success","is_error":false,"result":"%s","total_cost_usd":%s,"usage":{"input_tokens":100,"output_tokens":10}}\n' "$text" "$cost"
"#;

#[test]
fn notes_summaries_are_in_the_cost_like_in_the_run_totals() {
    let p = Project::new();
    std::fs::write(p.aux_path("agent.sh"), SUMMARISING_AGENT).unwrap();
    p.write("PROMPT.md", "Make the tests pass.\n");
    p.write(
        "ralph.toml",
        &format!(
            "[agent]\nbackend = \"custom\"\ncommand = [\"sh\", {:?}]\noutput = \"claude-stream-json\"\n\n\
             [loop]\nmax_iterations = 9\n\n[retry]\nbase_delay = \"0s\"\n\n\
             [context]\nnotes_max_tokens = 100\n\n\
             [[gates]]\nname = \"tests\"\nrun = \"exit 1\"\nwhen = \"iteration\"\n",
            path_str(&p.aux_path("agent.sh"))
        ),
    );
    run_ok(&p, &["run"]);
    let summaries = db_i64(&p, "SELECT COUNT(*) FROM side_calls");
    assert!(summaries > 0, "the notes were never summarised");
    let status = p.status_json();
    let v = cost_json(&p, &[]);
    assert!(
        (f(&v["total_usd"]) - f(&status["cost_usd"])).abs() < 1e-9,
        "{v} vs {status}"
    );
    assert_eq!(v["iterations"], 9);
    assert_eq!(v["side_calls"], summaries);
    assert_eq!(v["tokens"]["input"], status["tokens"]["input"]);
    let expected = 9.0 * 0.001 + summaries as f64 * 0.002;
    assert!((f(&v["total_usd"]) - expected).abs() < 1e-9);

    let all = cost_json(&p, &["--all-projects"]);
    assert!((f(&all["total_usd"]) - expected).abs() < 1e-9, "{all}");
    assert_eq!(all["iterations"], 9);
    assert_eq!(all["side_calls"], summaries);

    ralph_snapshot!(p, ["cost"]);
}

/// `ralph run` and `ralph cost --all-projects` find the ledger in the same place: where
/// `budget.ledger` says (ralph.toml, or `-c`), and with an empty `RALPH_HOME` (unset, as XDG
/// says of empty variables) in `$XDG_DATA_HOME/ralph`.
#[test]
fn run_and_cost_agree_on_where_the_ledger_is() {
    let p = Project::new();
    p.configure(
        &paid_script(),
        "claude-stream-json",
        "max_iterations = 2",
        "[budget]\nledger = \"costs/ledger.db\"\n",
    );
    run_ok(&p, &["run"]);
    assert!(p.exists("costs/ledger.db"), "budget.ledger was not used");
    assert!(!ralph_home(&p).join("ledger.db").exists());
    let v = cost_json(&p, &["--all-projects"]);
    assert_eq!(v["iterations"], 2, "{v}");
    assert!((f(&v["total_usd"]) - 0.0246).abs() < 1e-9, "{v}");
    // The same config named with -c from elsewhere finds the same ledger.
    std::fs::rename(p.path("ralph.toml"), p.path("other.toml")).unwrap();
    let v = cost_json(&p, &["--all-projects", "-c", "other.toml"]);
    assert_eq!(v["iterations"], 2, "{v}");
    std::fs::rename(p.path("other.toml"), p.path("ralph.toml")).unwrap();

    let q = paid_project(1);
    let out = Out::from(q.ralph().env("RALPH_HOME", "").arg("run").output().unwrap());
    assert_eq!(out.code, 3, "{}", out.stderr);
    let xdg = q.home.join(".local/share/ralph/ledger.db");
    assert!(xdg.is_file(), "an empty RALPH_HOME must count as unset");
    assert!(!q.exists("ledger.db"));
    let v = cost_json_env(&q, &["--all-projects"], &[("RALPH_HOME", "")]);
    assert_eq!(v["iterations"], 1, "{v}");
}
