//! Spend that ralph can trust: costs no call can have are recorded as invalid and counted
//! nowhere (issue 9, item 9).

use ralph_testkit::script::{ClaudeResult, Script, Step};

use crate::harness::*;

fn result(cost: f64) -> Vec<Step> {
    vec![Step::claude_result(
        ClaudeResult::success("working")
            .cost_usd(cost)
            .tokens(100, 10),
    )]
}

/// Calls 1 and 2 report `-1` and `1e308`, call 3 a real $0.01; a daily cap and a run cap of $1
/// are checked all along.
fn lying_project() -> Project {
    let p = Project::new();
    let script = Script::new()
        .on_call(1, result(-1.0))
        .on_call(2, result(1e308))
        .default_steps(result(0.01));
    p.configure(
        &script,
        "claude-stream-json",
        "max_iterations = 3",
        "[budget]\nmax_cost_usd = 1.0\ndaily_usd = 1.0\n",
    );
    p
}

#[test]
fn negative_and_absurd_costs_are_invalid_shown_and_never_added() {
    let p = lying_project();
    let out = p.run(&["run"]);
    // Neither cap stopped the run: 1e308 was not added to anything, -1 took nothing off.
    assert_eq!(out.code, 3, "{}", out.stderr);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("[1/3]") && text.contains("cost invalid"),
        "{text}"
    );
    assert!(text.contains("the agent reported a cost of $-1,"), "{text}");
    assert!(
        text.contains("the agent reported a cost of $1e308,"),
        "{text}"
    );
    assert!(!text.contains("00000000000000000000"), "{text}");
    assert!(text.contains("$0.0100 (total $0.0100)"), "{text}");

    let status = p.status_json();
    assert!((status["cost_usd"].as_f64().unwrap() - 0.01).abs() < 1e-9);

    for args in [
        &["cost", "--json"][..],
        &["cost", "--json", "--all-projects"],
    ] {
        let out = p.run(args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            !out.stdout.contains("_usd\":null"),
            "{args:?}: {}",
            out.stdout
        );
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert!(
            (v["total_usd"].as_f64().unwrap() - 0.01).abs() < 1e-9,
            "{v}"
        );
        assert_eq!(v["invalid_cost_iterations"], 2, "{v}");
        assert_eq!(v["unknown_cost_iterations"], 2, "{v}");
        assert_eq!(v["tokens"]["input"], 100, "{v}");
    }
    let table = p.run(&["cost"]);
    assert!(
        table
            .stdout
            .contains("2 agent calls reported a cost or tokens no call can have"),
        "{}",
        table.stdout
    );
    let logs = p.run(&["logs"]);
    assert_eq!(
        logs.stdout.matches("cost invalid").count(),
        2,
        "{}",
        logs.stdout
    );
    assert!(logs.stdout.contains("(invalid)"), "{}", logs.stdout);

    // The same in --json events.
    let out = p.run(&["run", "--fresh", "--json"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let finished: Vec<_> = out
        .events()
        .into_iter()
        .filter(|e| e["event"] == "iteration.finished")
        .collect();
    assert_eq!(finished.len(), 3);
    for e in &finished[..2] {
        assert_eq!(e["cost_source"], "invalid", "{e}");
        assert!(e["cost_usd"].is_null(), "{e}");
        assert_eq!(e["total_cost_usd"], 0.0, "{e}");
    }
    assert_eq!(finished[2]["cost_source"], "reported");
    let warnings = out
        .events()
        .into_iter()
        .filter(|e| e["event"] == "warning")
        .filter(|e| {
            e["message"]
                .as_str()
                .unwrap()
                .contains("recorded as invalid")
        })
        .count();
    assert_eq!(warnings, 2, "{}", out.stdout);
}

fn ledger_total(home: &std::path::Path) -> (f64, i64) {
    let db = rusqlite::Connection::open(home.join("ledger.db")).unwrap();
    db.query_row(
        "SELECT COALESCE(SUM(cost_usd), 0), COUNT(*) FROM entries",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// Four projects at once against one ledger, every iteration $0.01 and slow enough that all
/// four would start their first iteration while none has finished; `budget` is their
/// `[budget]` table. Returns (the ledger's total, iterations the four ran).
fn four_at_once(shared: &std::path::Path, budget: &str) -> (f64, usize) {
    let mut slow = vec![Step::sleep_ms(700)];
    slow.extend(result(0.01));
    let projects: Vec<Project> = (0..4)
        .map(|_| {
            let p = Project::new();
            p.configure(
                &Script::new().default_steps(slow.clone()),
                "claude-stream-json",
                "max_iterations = 10",
                &format!("[budget]\n{budget}\n"),
            );
            p
        })
        .collect();
    let children: Vec<_> = projects
        .iter()
        .map(|p| {
            p.ralph()
                .arg("run")
                .env("RALPH_HOME", shared)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Out> = children
        .into_iter()
        .map(|c| wait_child(c, std::time::Duration::from_secs(60)))
        .collect();
    for out in &outs {
        assert_eq!(out.code, 5, "{}", out.stderr);
        assert!(
            out.summary().contains("daily budget: $0.0"),
            "{}",
            out.summary()
        );
    }
    // Nothing is left reserved once every process ended.
    let db = rusqlite::Connection::open(shared.join("ledger.db")).unwrap();
    let held: i64 = db
        .query_row("SELECT COUNT(*) FROM reservations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(held, 0);
    let ran = projects.iter().map(|p| p.iterations().len()).sum();
    (ledger_total(shared).0, ran)
}

/// `daily_usd = 0.035` after $0.01 was spent today: each process reserves its expected cost
/// ($0.01, what the backend cost lately) in the ledger before it starts; two fit, the others
/// are refused, and the day ends at $0.03, never past the cap (issue 9, item 8).
#[test]
fn a_daily_budget_holds_across_concurrent_processes() {
    let shared = tempfile::tempdir().unwrap();
    let seed = Project::new();
    seed.configure(
        &Script::new().default_steps(result(0.01)),
        "claude-stream-json",
        "max_iterations = 1",
        "",
    );
    let out = Out::from(
        seed.ralph()
            .arg("run")
            .env("RALPH_HOME", shared.path())
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    let (total, ran) = four_at_once(shared.path(), "daily_usd = 0.035");
    assert!(total <= 0.035 + 1e-9, "the cap was passed: ${total}");
    assert!((total - 0.03).abs() < 1e-9, "${total}");
    assert_eq!(ran, 2);
}

/// On a machine that never ran the backend there is no recent cost to reserve:
/// `budget.iteration_estimate_usd` is the estimate then.
#[test]
fn a_configured_estimate_holds_the_cap_before_any_history() {
    let shared = tempfile::tempdir().unwrap();
    let (total, ran) = four_at_once(
        shared.path(),
        "daily_usd = 0.025\niteration_estimate_usd = 0.01",
    );
    assert!(total <= 0.025 + 1e-9, "the cap was passed: ${total}");
    assert!((total - 0.02).abs() < 1e-9, "${total}");
    assert_eq!(ran, 2);
}

fn text_agent(p: &Project, budget: &str) {
    p.configure(
        &Script::new().default_steps(vec![Step::print("working")]),
        "text",
        "max_iterations = 2",
        budget,
    );
}

/// Caps an agent that reports neither cost nor tokens cannot be held to are refused at start,
/// with the cap, the backend and the way out named; `budget.allow_unenforced` accepts them
/// with one warning (issue 9, item 10).
#[test]
fn caps_an_agent_cannot_report_on_are_refused_unless_accepted() {
    let p = Project::new();
    text_agent(&p, "");
    let out = p.run(&["run", "--max-cost", "0.01", "--max-tokens", "100"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    for said in [
        "budget.max_cost_usd (--max-cost) and budget.max_tokens (--max-tokens) cannot be enforced",
        "the custom agent reports neither cost nor tokens",
        "allow_unenforced = true under [budget]",
    ] {
        assert!(out.stderr.contains(said), "{said}: {}", out.stderr);
    }
    assert!(
        !out.stderr.contains("[1/"),
        "an iteration ran: {}",
        out.stderr
    );
    assert!(!p.exists(".ralph"), "refused, yet state was created");

    // The daily cap too, from the config file.
    text_agent(&p, "[budget]\ndaily_usd = 5.0\n");
    let out = p.run(&["run"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("budget.daily_usd cannot be enforced"),
        "{}",
        out.stderr
    );

    // Accepted: the run goes on, and says once what is not enforced.
    text_agent(&p, "[budget]\nallow_unenforced = true\n");
    let out = p.run(&["run", "--max-cost", "0.01", "--max-tokens", "100"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(
        out.stderr
            .matches("running anyway because budget.allow_unenforced = true")
            .count(),
        1,
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("[2/2]"), "{}", out.stderr);
}

/// An agent whose output should carry usage but did not for an iteration is said once while a
/// cap depends on it.
#[test]
fn an_iteration_without_the_usage_its_agent_reports_is_said_once() {
    let p = Project::new();
    let script = Script::new()
        .on_call(1, result(0.001))
        .default_steps(vec![Step::claude_text("no result line this time")]);
    p.configure(&script, "claude-stream-json", "max_iterations = 3", "");
    let out = p.run(&["run", "--max-cost", "1"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let said = "the custom agent reported neither cost nor tokens this time";
    assert_eq!(out.stderr.matches(said).count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("iteration 2: the custom agent reported neither cost nor tokens"),
        "{}",
        out.stderr
    );
    assert!(out
        .stderr
        .contains("budget.max_cost_usd (--max-cost) cannot count it"));
}

/// The first iteration's agent wrote its `result` line, in a session that already moved
/// aside the outputs of `killed` earlier sessions.
fn result_written(p: &Project, killed: usize) -> bool {
    let Ok(runs) = std::fs::read_dir(p.path(".ralph/runs")) else {
        return false;
    };
    runs.filter_map(Result::ok).any(|run| {
        let dir = run.path().join("0001");
        let moved = std::fs::read_dir(&dir).map_or(0, |d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().contains(".killed-"))
                .count()
        });
        moved == killed
            && std::fs::read_to_string(dir.join("output.log"))
                .is_ok_and(|s| s.contains("total_cost_usd"))
    })
}

fn kill_9_after_the_result(p: &Project, killed_before: usize) {
    let child = p.spawn(&["run"]);
    wait_until(
        "the agent's result line in the iteration's output",
        std::time::Duration::from_secs(30),
        || result_written(p, killed_before),
    );
    ralph_testkit::proc::kill(child.id() as i32, libc::SIGKILL).unwrap();
    let out = wait_child(child, std::time::Duration::from_secs(30));
    assert_eq!(out.code, 128 + libc::SIGKILL, "{}", out.stderr);
}

/// ralph is killed (SIGKILL) after the agent reported $0.01 and before ralph accounted it,
/// twice; each resume recovers that spend from the iteration's artifacts, once, into the
/// run's totals, `ralph cost` and the ledger (issue 9, item 19).
#[test]
fn the_spend_of_a_kill_9_iteration_is_recovered_on_resume() {
    let p = Project::new();
    let mut paid_then_hang = result(0.01);
    paid_then_hang.push(Step::hang());
    p.configure(
        &Script::new().default_steps(paid_then_hang),
        "claude-stream-json",
        "max_iterations = 3",
        "",
    );
    kill_9_after_the_result(&p, 0);
    // Killed again in the iteration the resume runs again.
    kill_9_after_the_result(&p, 1);
    p.script(&Script::new().default_steps(vec![Step::claude_result(
        ClaudeResult::success("done\nLOOP_COMPLETE")
            .cost_usd(0.002)
            .tokens(100, 10),
    )]));
    let out = p.run(&["run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The second resume recovered only the second kill; the first was recovered before.
    assert!(
        out.stderr
            .contains("iteration 1 was cut short before ralph could account it"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.matches("was cut short").count(),
        1,
        "{}",
        out.stderr
    );

    let expected = 0.01 + 0.01 + 0.002;
    for args in [
        &["cost", "--json"][..],
        &["cost", "--json", "--all-projects"],
    ] {
        let out = p.run(args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert!(
            (v["total_usd"].as_f64().unwrap() - expected).abs() < 1e-9,
            "{args:?}: {v}"
        );
        assert_eq!(v["iterations"], 1, "{v}");
        assert_eq!(v["side_calls"], 2, "{v}");
        assert_eq!(v["tokens"]["input"], 300, "{v}");
    }
    let status = p.status_json();
    assert!(
        (status["cost_usd"].as_f64().unwrap() - expected).abs() < 1e-9,
        "{status}"
    );
}
