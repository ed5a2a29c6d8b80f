//! Completion rules (CLI.md "Completion").

use ralph_testkit::script::{ClaudeResult, Script, Step};

use crate::harness::*;

#[test]
fn the_marker_inside_prose_does_not_complete() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![
        Step::print("I will print LOOP_COMPLETE when everything is done."),
        Step::print("Not LOOP_COMPLETE yet."),
    ]);
    p.configure_text(&script, "max_iterations = 2");
    ralph_snapshot!(p, ["run"]);
}

#[test]
fn an_echoed_prompt_does_not_complete() {
    // ralph's own instructions name the marker; an agent that echoes its prompt must not end
    // the run.
    let p = Project::new();
    p.write("PROMPT.md", "Say LOOP_COMPLETE only when finished.\n");
    p.configure_text(
        &Script::new().default_steps(vec![Step::echo_prompt()]),
        "max_iterations = 2",
    );
    ralph_snapshot!(p, ["run"]);
    let output = p.artifact(1, "output.log");
    assert!(
        output.contains("LOOP_COMPLETE"),
        "the echo must contain the marker: {output}"
    );
}

#[test]
fn completing_on_the_last_allowed_iteration_is_a_completion() {
    let p = Project::new();
    let script = Script::new()
        .default_steps(vec![Step::print("working")])
        .on_call(3, vec![Step::print("**LOOP_COMPLETE**")]);
    p.configure_text(&script, "max_iterations = 3");
    let out = ralph_snapshot!(p, ["run", "--json"]);
    let last = out.events().into_iter().last().unwrap();
    assert_eq!(last["stop_reason"], "completed");
    assert_eq!(last["iterations"], 3);
}

#[test]
fn promise_tags_and_custom_markers_complete() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![Step::print("Done. <promise>SHIP_IT</promise>")]);
    p.configure_text(&script, "completion_marker = \"SHIP_IT\"");
    ralph_snapshot!(p, ["run"]);
    assert!(p
        .artifact(1, "prompt.md")
        .contains("a line containing only SHIP_IT"));
}

#[test]
fn claude_stream_json_completes_on_the_result_text_only() {
    let p = Project::new();
    // The marker in an intermediate assistant message does not count; the final result does.
    let script = Script::new()
        .default_steps(vec![
            Step::claude_init("claude-sonnet-4-5"),
            Step::claude_text("LOOP_COMPLETE"),
            Step::claude_result(ClaudeResult::success("Still failing tests.").cost_usd(0.01)),
        ])
        .on_call(
            2,
            vec![
                Step::claude_init("claude-sonnet-4-5"),
                Step::claude_result(
                    ClaudeResult::success("All green.\nLOOP_COMPLETE").cost_usd(0.02),
                ),
            ],
        );
    p.configure(&script, "claude-stream-json", "", "");
    ralph_snapshot!(p, ["run"]);
    assert_eq!(p.iterations().len(), 2);
    let cost = p.status_json()["cost_usd"].as_f64().unwrap();
    assert!((cost - 0.03).abs() < 1e-12, "{cost}");
}

#[test]
fn a_permission_denial_never_counts_as_completion() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![Step::claude_result(
        ClaudeResult::success("I could not write the file.\nLOOP_COMPLETE").permission_denial(
            "Write",
            "toolu_1",
            serde_json::json!({"file_path": "/x"}),
        ),
    )]);
    p.configure(&script, "claude-stream-json", "max_iterations = 1", "");
    // Not a snapshot: the run's first line says "up to 1 iterations" (reported to the lead).
    let out = p.run(&["run"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(p.iterations()[0].2.as_deref(), Some("permission_denied"));
    assert!(out.stderr.contains("permission_denied"), "{}", out.stderr);
}

#[test]
fn a_failing_gate_blocks_completion_and_its_output_is_fed_back() {
    let p = Project::new();
    // Call 1 claims completion without doing the work; the gate says why; call 2 does it.
    let script = Script::new()
        .default_steps(vec![Step::print("LOOP_COMPLETE")])
        .on_call(
            2,
            vec![
                Step::write("fixed.txt", "yes"),
                Step::print("LOOP_COMPLETE"),
            ],
        );
    p.configure(
        &script,
        "text",
        "",
        "[[gates]]\nname = \"tests\"\nrun = \"test -f fixed.txt || { echo GATE_SAYS_fixed.txt_is_missing; exit 1; }\"\n",
    );
    let out = ralph_snapshot!(p, ["run", "--json"]);
    let its = p.iterations();
    assert_eq!(its.len(), 2);
    assert_eq!(its[0].1, "gates_failed");
    assert_eq!(its[1].1, "completed");
    let prompt2 = p.artifact(2, "prompt.md");
    assert!(
        prompt2.contains("GATE_SAYS_fixed.txt_is_missing"),
        "{prompt2}"
    );
    assert!(
        prompt2.contains("the gate `tests` failed with exit code 1"),
        "{prompt2}"
    );
    assert!(p.artifact(1, "gate-tests.log").contains("GATE_SAYS"));
    let gates: Vec<_> = out
        .events()
        .into_iter()
        .filter(|e| e["event"] == "gate.finished")
        .collect();
    assert_eq!(gates.len(), 2);
    assert_eq!(gates[0]["passed"], false);
    assert_eq!(gates[1]["passed"], true);
}

#[test]
fn gate_output_in_feedback_is_bounded() {
    let p = Project::new();
    let script = Script::new()
        .default_steps(vec![Step::print("LOOP_COMPLETE")])
        .on_call(2, vec![Step::print("giving up")]);
    p.configure(
        &script,
        "text",
        "max_iterations = 2",
        "[[gates]]\nname = \"noisy\"\nrun = \"seq 1 200000; exit 1\"\n",
    );
    ralph_snapshot!(p, ["run"]);
    let prompt2 = p.artifact(2, "prompt.md");
    assert!(
        prompt2.len() < 4096,
        "feedback must be bounded, got {} bytes",
        prompt2.len()
    );
    assert!(prompt2.contains("200000"), "the tail is kept");
    assert!(
        p.artifact(1, "gate-noisy.log").len() > 1_000_000,
        "the full log is on disk"
    );
}

#[test]
fn iteration_gates_run_every_iteration_and_a_gate_timeout_is_reported() {
    let p = Project::new();
    let script = Script::new()
        .default_steps(vec![Step::print("step")])
        .on_call(2, vec![Step::print("LOOP_COMPLETE")]);
    p.configure(
        &script,
        "text",
        "",
        "[[gates]]\nname = \"lint\"\nrun = \"true\"\nwhen = \"iteration\"\n\n\
         [[gates]]\nname = \"slow\"\nrun = \"sleep 30\"\ntimeout = \"300ms\"\n",
    );
    let out = ralph_snapshot!(p, ["run", "--max-iterations", "2", "--json"]);
    let gates: Vec<_> = out
        .events()
        .into_iter()
        .filter(|e| e["event"] == "gate.finished")
        .collect();
    let names: Vec<_> = gates
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["lint", "lint", "slow"]);
    assert_eq!(gates[2]["timed_out"], true);
}

/// Regression: any line of the answer that was the marker completed the run, even with the
/// agent taking it back on the next line.
#[test]
fn a_marker_followed_by_more_text_does_not_complete() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![
        Step::print("LOOP_COMPLETE"),
        Step::print("Actually, one test still fails; not done yet."),
    ]);
    p.configure_text(&script, "max_iterations = 2");
    let out = p.run(&["run"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(p.iterations().iter().all(|i| i.1 != "completed"));
}

/// Regression: a prompt holding the bare marker line was only warned about, so an agent that
/// echoed its prompt ended the run. It is refused before anything runs or is created.
#[test]
fn a_prompt_with_the_bare_marker_line_is_refused_at_start() {
    let p = Project::new();
    p.configure_text(&Script::new().default_steps(vec![Step::echo_prompt()]), "");
    p.write(
        "PROMPT.md",
        "Fix the bug.\nWhen done, print:\nLOOP_COMPLETE\n",
    );
    let out = p.run(&["run"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("on a line of its own"),
        "{}",
        out.stderr
    );
    assert!(!p.exists(".ralph"), "nothing was created");
}
