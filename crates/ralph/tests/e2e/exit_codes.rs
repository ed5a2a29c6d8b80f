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
    let out = p.run(&["run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.summary().contains("completed"), "{}", out.stderr);
    assert!(out.summary().contains("2 iterations"), "{}", out.summary());
    let its = p.iterations();
    assert_eq!(its.len(), 2);
    assert_eq!(its[1].1, "completed");
}

#[test]
fn exit_2_on_usage_errors_and_nothing_runs() {
    let p = Project::new();
    let out = p.run(&["run", "--max-iterations", "zero"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = p.run(&["run", "-c", "nope.toml"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("nope.toml") && out.stderr.contains("does not exist"),
        "{}",
        out.stderr
    );
    assert!(!p.exists(".ralph"), "a usage error must not create state");
}

#[test]
fn exit_2_when_the_prompt_file_is_missing() {
    let p = Project::new();
    p.configure_text(&complete_on(1), "prompt_file = \"TASK.md\"");
    let out = p.run(&["run"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("prompt file TASK.md does not exist"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    assert!(!p.exists(".ralph"));
}

#[test]
fn exit_3_at_the_iteration_limit() {
    let p = Project::new();
    p.configure_text(&complete_on(99), "max_iterations = 3");
    let out = p.run(&["run"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.summary().contains("iteration limit reached (3 of 3)"),
        "{}",
        out.summary()
    );
    assert_eq!(p.iterations().len(), 3);
}

#[test]
fn exit_4_at_the_runtime_limit_mid_iteration() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![Step::pid_file("agent.pid"), Step::hang()]);
    p.configure_text(&script, "max_runtime = \"1s\"");
    let out = p.run(&["run"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.summary().contains("runtime limit reached (1s)"),
        "{}",
        out.summary()
    );
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
    let out = p.run(&["run", "--json"]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    // $0.0246 spent; a third iteration could reach $0.0369 > $0.03, so it never starts.
    assert_eq!(p.iterations().len(), 2);
    let status = p.status_json();
    let cost = status["cost_usd"].as_f64().unwrap();
    assert!((cost - 0.0246).abs() < 1e-9, "{cost}");
    assert_eq!(status["stop_reason"], "budget");
    assert_eq!(status["exit_code"], 5);
    assert!(
        out.summary().contains("stopped before starting it"),
        "{}",
        out.summary()
    );
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
    assert!(
        out.stderr
            .contains("budget: cost reached 80% of the cap ($0.0246 of $0.0300)"),
        "{}",
        out.stderr
    );
}

#[test]
fn exit_5_after_the_iteration_that_crossed_the_cost_budget_when_not_predicting() {
    let p = Project::new();
    costly(&p, "stop_before_exceeding = false\nalert_at = [1.0]\n");
    let out = p.run(&["run", "--json"]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert_eq!(p.iterations().len(), 3);
    let cost = p.status_json()["cost_usd"].as_f64().unwrap();
    assert!(
        (cost - 0.0369).abs() < 1e-9,
        "at most one iteration past the cap: {cost}"
    );
    assert!(
        out.summary()
            .contains("cost budget reached: $0.0369 of $0.0300"),
        "{}",
        out.summary()
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
    let out = p.run(&["run", "--max-tokens", "1000"]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert_eq!(p.iterations().len(), 1);
    assert!(
        out.summary()
            .contains("token budget: 700 used, and the next iteration may use up to 700"),
        "{}",
        out.summary()
    );
}

#[test]
fn exit_7_after_consecutive_failures() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![Step::stderr("boom"), Step::exit(3)]);
    p.configure_text(&script, "max_consecutive_failures = 3");
    let out = p.run(&["run"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert_eq!(p.iterations().len(), 3);
    assert!(p
        .iterations()
        .iter()
        .all(|i| i.1 == "failed" && i.2.as_deref() == Some("crash")));
    let status = p.status_json();
    assert_eq!(status["last_iteration"]["error_class"], "crash");
    assert_eq!(status["last_iteration"]["iteration"], 3);
    let human = p.run(&["status"]);
    assert!(
        human
            .stdout
            .contains("last       iteration 3 (custom) failed: crash"),
        "{}",
        human.stdout
    );
    assert!(
        out.summary()
            .contains("gave up after 3 consecutive failed iterations"),
        "{}",
        out.summary()
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
    let out = p.run(&["run"]);
    assert_eq!(out.code, 8, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("`definitely-not-an-agent-xyz` was not found on PATH"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("os error"),
        "{}",
        out.stderr
    );
}

#[test]
fn exit_8_when_the_claude_binary_is_missing() {
    let p = Project::new();
    p.write("PROMPT.md", "task\n");
    let out = p
        .ralph()
        .args(["run", "--backend", "claude"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let out = Out::from(out);
    assert_eq!(out.code, 8, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the claude agent is not installed: `claude` was not found on PATH"),
        "{}",
        out.stderr
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
    let out = p.run(&["run"]);
    assert_eq!(out.code, 8, "{}", out.stderr);
    assert!(
        out.summary().contains("failed to authenticate"),
        "{}",
        out.summary()
    );
    assert_eq!(p.iterations()[0].2.as_deref(), Some("auth"));
}

#[test]
fn exit_9_when_stop_is_requested() {
    let p = Project::new();
    // The agent itself asks to stop during iteration 2: no race with the test.
    let script = Script::new()
        .default_steps(vec![Step::print("working")])
        .on_call(2, vec![Step::write(".ralph/STOP", "")]);
    p.configure_text(&script, "");
    let out = p.run(&["run"]);
    assert_eq!(out.code, 9, "{}", out.stderr);
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
    let stop = p.run(&["stop"]);
    assert_eq!(stop.code, 0, "{}", stop.stderr);
    assert!(
        stop.stderr
            .contains("will stop after the current iteration"),
        "{}",
        stop.stderr
    );
    std::fs::write(p.aux_path("go"), "").unwrap();
    let out = wait_child(child, Duration::from_secs(30));
    assert_eq!(out.code, 9, "{}", out.stderr);
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
    let stop = p.run(&["stop", "--now"]);
    assert_eq!(stop.code, 0, "{}", stop.stderr);
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
    let out = p.run(&["run"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("error: failed to open the state database"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint: "), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}
