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
