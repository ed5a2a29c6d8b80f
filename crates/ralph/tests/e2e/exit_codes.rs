//! Every exit code of CLI.md that this version can produce, through the real binary.

use std::time::Duration;

use ralph_testkit::script::{ClaudeResult, Script, Step};

use crate::harness::*;

fn complete_on(call: u32) -> Script {
    Script::new()
        .default_steps(vec![Step::print("working on it")])
        .on_call(
            call,
            vec![Step::print("All done."), Step::print("LOOP_COMPLETE")],
        )
}

#[test]
fn exit_0_on_completion() {
    let p = Project::new();
    p.configure_text(&complete_on(2), "max_iterations = 5");
    ralph_snapshot!(p, ["run"]);
    let its = p.iterations();
    assert_eq!(its.len(), 2);
    assert_eq!(its[1].1, "completed");
}

#[test]
fn exit_2_on_usage_errors_and_nothing_runs() {
    let p = Project::new();
    ralph_snapshot!(p, ["run", "--max-iterations", "zero"]);
    ralph_snapshot!(p, ["run", "-c", "nope.toml"]);
    assert!(!p.exists(".ralph"), "a usage error must not create state");
}

#[test]
fn exit_2_when_the_prompt_file_is_missing() {
    let p = Project::new();
    p.configure_text(&complete_on(1), "prompt_file = \"TASK.md\"");
    ralph_snapshot!(p, ["run"]);
    assert!(!p.exists(".ralph"));
}

#[test]
fn exit_3_at_the_iteration_limit() {
    let p = Project::new();
    p.configure_text(&complete_on(99), "max_iterations = 3");
    ralph_snapshot!(p, ["run"]);
    assert_eq!(p.iterations().len(), 3);
}

#[test]
fn exit_4_at_the_runtime_limit_mid_iteration() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![Step::pid_file("agent.pid"), Step::hang()]);
    p.configure_text(&script, "max_runtime = \"1s\"");
    ralph_snapshot!(p, ["run"]);
    let pid = ralph_testkit::proc::read_pid_file(p.path("agent.pid")).unwrap();
    assert!(
        !pid_alive(pid),
        "the agent must not outlive the runtime limit"
    );
}

/// The scenario: $0.0123 per iteration against a $0.03 cap.
fn costly(p: &Project, budget: &str) {
    let script = Script::new().default_steps(vec![Step::claude_result(
        ClaudeResult::success("still working")
            .cost_usd(0.0123)
            .tokens(1000, 100),
    )]);
    p.configure(
        &script,
        "claude-stream-json",
        "max_iterations = 50",
        &format!("[budget]\nmax_cost_usd = 0.03\n{budget}"),
    );
}

#[test]
fn exit_5_before_an_iteration_that_would_pass_the_cost_budget() {
    let p = Project::new();
    costly(&p, "");
    let out = ralph_snapshot!(p, ["run", "--json"]);
    // $0.0246 spent; a third iteration could reach $0.0369 > $0.03, so it never starts.
    assert_eq!(p.iterations().len(), 2);
    let status = p.status_json();
    let cost = status["cost_usd"].as_f64().unwrap();
    assert!((cost - 0.0246).abs() < 1e-9, "{cost}");
    assert_eq!(status["stop_reason"], "budget");
    assert_eq!(status["exit_code"], 5);
    let events = out.events();
    let last = events.last().unwrap();
    assert_eq!(last["event"], "run.finished");
    assert_eq!(last["stop_reason"], "budget");
    // 41% after one iteration, 82% after two: the 50% and 80% alerts, once each.
    let alerts: Vec<f64> = events
        .iter()
        .filter(|e| e["event"] == "budget.alert")
        .map(|e| e["fraction"].as_f64().unwrap())
        .collect();
    assert_eq!(alerts, [0.5, 0.8]);
}

#[test]
fn exit_5_after_the_iteration_that_crossed_the_cost_budget_when_not_predicting() {
    let p = Project::new();
    costly(&p, "stop_before_exceeding = false\nalert_at = [1.0]\n");
    let out = ralph_snapshot!(p, ["run", "--json"]);
    assert_eq!(p.iterations().len(), 3);
    let cost = p.status_json()["cost_usd"].as_f64().unwrap();
    assert!(
        (cost - 0.0369).abs() < 1e-9,
        "at most one iteration past the cap: {cost}"
    );
    let alerts = out
        .events()
        .into_iter()
        .filter(|e| e["event"] == "budget.alert")
        .count();
    assert_eq!(alerts, 1);
}

#[test]
fn exit_5_when_the_token_budget_is_reached() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![Step::claude_result(
        ClaudeResult::success("still working")
            .cost_usd(0.001)
            .tokens(600, 100),
    )]);
    p.configure(&script, "claude-stream-json", "", "");
    ralph_snapshot!(p, ["run", "--max-tokens", "1000"]);
    assert_eq!(p.iterations().len(), 1);
}

#[test]
fn exit_7_after_consecutive_failures() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![Step::stderr("boom"), Step::exit(3)]);
    p.configure_text(&script, "max_consecutive_failures = 3");
    ralph_snapshot!(p, ["run"]);
    assert_eq!(p.iterations().len(), 3);
    assert!(p
        .iterations()
        .iter()
        .all(|i| i.1 == "failed" && i.2.as_deref() == Some("crash")));
    let status = p.status_json();
    assert_eq!(status["last_iteration"]["error_class"], "crash");
    assert_eq!(status["last_iteration"]["iteration"], 3);
    // Not a snapshot: `ralph status` shows this run's unknown cost as "$0.0000" and its
    // unknown tokens as 0 (reported to the lead; the run's own summary says "cost unknown").
    let human = p.run(&["status"]);
    assert!(
        human
            .stdout
            .contains("last       iteration 3 (custom) failed: crash"),
        "{}",
        human.stdout
    );
}

#[test]
fn a_success_resets_the_failure_counter() {
    let p = Project::new();
    let script = Script::new()
        .default_steps(vec![Step::exit(1)])
        .on_call(2, vec![Step::print("ok")])
        .on_call(4, vec![Step::print("ok")])
        .on_call(6, vec![Step::print("LOOP_COMPLETE")]);
    p.configure_text(&script, "max_consecutive_failures = 2");
    let out = p.run(&["run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(p.iterations().len(), 6);
}

#[test]
fn exit_8_when_the_agent_binary_is_missing() {
    let p = Project::new();
    p.write(
        "ralph.toml",
        "[agent]\nbackend = \"custom\"\ncommand = [\"definitely-not-an-agent-xyz\"]\n",
    );
    p.write("PROMPT.md", "task\n");
    ralph_snapshot!(p, ["run"]);
}

#[test]
fn exit_8_when_the_claude_binary_is_missing() {
    let p = Project::new();
    p.write("PROMPT.md", "task\n");
    ralph_snapshot!(
        p,
        p.ralph()
            .args(["run", "--backend", "claude"])
            .env("PATH", "/nonexistent")
    );
}

#[test]
fn exit_8_when_authentication_fails() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![
        Step::claude_result(
            ClaudeResult::error("Invalid API key · Fix external API key").api_error_status(401),
        ),
        Step::exit(1),
    ]);
    p.configure(&script, "claude-stream-json", "", "");
    ralph_snapshot!(p, ["run"]);
    assert_eq!(p.iterations()[0].2.as_deref(), Some("auth"));
}

#[test]
fn exit_9_when_stop_is_requested() {
    // The agent writes .ralph/STOP, which the sandbox keeps read-only to agents.
    let p = Project::new().without_sandbox();
    // The agent itself asks to stop during iteration 2: no race with the test.
    let script = Script::new()
        .default_steps(vec![Step::print("working")])
        .on_call(2, vec![Step::write(".ralph/STOP", "")]);
    p.configure_text(&script, "");
    ralph_snapshot!(p, ["run"]);
    assert_eq!(
        p.iterations().len(),
        2,
        "the current iteration finishes first"
    );
    assert!(!p.exists(".ralph/STOP"), "the STOP file is consumed");
    assert_eq!(p.status_json()["stop_reason"], "stop_requested");
}

#[test]
fn ralph_stop_command_stops_after_the_iteration() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![
        Step::write(p.aux_path("running"), ""),
        Step::wait_for_file(p.aux_path("go"), 30_000),
        Step::print("did a step"),
    ]);
    p.configure_text(&script, "");
    let child = p.spawn(&["run"]);
    wait_until("the agent to start", Duration::from_secs(20), || {
        p.aux_path("running").exists()
    });
    ralph_snapshot!(p, ["stop"]);
    std::fs::write(p.aux_path("go"), "").unwrap();
    ralph_snapshot!(p, ("ralph run", wait_child(child, Duration::from_secs(30))));
    assert_eq!(p.iterations().len(), 1);
}

#[test]
fn ralph_stop_now_kills_the_agent() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![Step::pid_file("agent.pid"), Step::hang()]);
    p.configure_text(&script, "");
    let child = p.spawn(&["run"]);
    let pid = ralph_testkit::proc::wait_for_pid_file(p.path("agent.pid"), Duration::from_secs(20))
        .unwrap();
    ralph_snapshot!(p, ["stop", "--now"]);
    // Not a snapshot: the summary says "$0.0000 · 0 tokens" for the killed, unrecorded
    // iteration, whose cost is unknown (reported to the lead).
    let out = wait_child(child, Duration::from_secs(30));
    assert_eq!(out.code, 9, "{}", out.stderr);
    assert!(!pid_alive(pid));
    assert_eq!(
        p.iterations().len(),
        0,
        "the killed iteration is not recorded"
    );
}

#[test]
fn exit_1_when_the_state_database_is_unusable() {
    let p = Project::new();
    p.configure_text(&complete_on(1), "");
    std::fs::create_dir_all(p.path(".ralph/ralph.db")).unwrap();
    ralph_snapshot!(p, ["run"]);
}

/// Regression: the prompt file vanishing mid-run ended ralph with exit 2 ("nothing ran") after
/// iterations had run, and without the summary line.
#[test]
fn a_prompt_file_that_vanishes_mid_run_stops_with_the_summary_and_resumes() {
    let p = Project::new();
    let script = Script::new()
        .default_steps(vec![Step::print("working")])
        .on_call(2, vec![Step::delete("PROMPT.md"), Step::print("oops")]);
    p.configure_text(&script, "max_iterations = 5");
    let out = p.run(&["run"]);
    assert_eq!(out.code, 8, "{}", out.stderr);
    assert!(
        out.summary().contains("prompt file") && out.summary().contains("2 iterations"),
        "{}",
        out.summary()
    );
    assert_eq!(p.iterations().len(), 2);
    // Put it back: the run resumes where it stopped.
    p.write("PROMPT.md", "Make the tests pass.\n");
    let again = p.run(&["run"]);
    assert_eq!(again.code, 3, "{}", again.stderr);
    assert_eq!(p.iterations().len(), 5);
}
