//! Notes on earlier iterations: bounded, carried in the prompt, summarised by the agent when
//! they grow, and the summary call accounted like an iteration.

use crate::harness::*;

/// A custom agent in sh: it prints Claude stream-json, costs $0.001 an iteration and $0.002 a
/// summary, and answers the summary request with a short summary.
const AGENT: &str = r#"#!/bin/sh
prompt=$(cat)
printf '%s' "$prompt" > "prompt-seen-$RALPH_CALL-$RALPH_ITERATION.txt"
if [ "$RALPH_CALL" = summary ]; then
  text='- the tests gate failed every time with exit 1; writing more files did not help'
  cost=0.002
else
  text='I tried again.'
  cost=0.001
fi
printf '{"type":"result","subtype":"success","is_error":false,"result":"%s","total_cost_usd":%s,"usage":{"input_tokens":100,"output_tokens":10}}\n' "$text" "$cost"
"#;

#[test]
fn notes_grow_are_summarised_by_the_agent_and_the_summary_is_paid_for() {
    let p = Project::new();
    std::fs::write(p.aux_path("agent.sh"), AGENT).unwrap();
    p.write("PROMPT.md", "Make the tests pass.\n");
    p.write(
        "ralph.toml",
        &format!(
            "[agent]\nbackend = \"custom\"\ncommand = [\"sh\", {:?}]\noutput = \"claude-stream-json\"\n\n\
             [loop]\nmax_iterations = 9\n\n[retry]\nbase_delay = \"0s\"\n\n\
             [context]\nnotes_max_tokens = 100\n\n\
             [[gates]]\nname = \"tests\"\nrun = \"echo 'assertion failed: left == right'; exit 1\"\nwhen = \"iteration\"\n",
            path_str(&p.aux_path("agent.sh"))
        ),
    );
    let out = p.run(&["run", "--json"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let events = out.events();
    let summaries: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "notes.summarised")
        .collect();
    assert!(!summaries.is_empty(), "{}", out.stdout);
    let first = summaries[0];
    assert_eq!(first["accepted"], true, "{first}");
    assert!(
        first["tokens_after"].as_u64() < first["tokens_before"].as_u64(),
        "{first}"
    );
    assert_eq!(first["cost_usd"], 0.002);
    let k = first["iteration"].as_u64().unwrap();

    // Every note of a failed iteration was in the next prompt until the summary replaced them.
    let before = p.read(&format!("prompt-seen-iteration-{k}.txt"));
    assert!(
        before.contains(
            "## Notes from earlier iterations\n- iteration 1: gate `tests` failed with exit code 1"
        ),
        "{before}"
    );
    let after = p.read(&format!("prompt-seen-iteration-{}.txt", k + 1));
    assert!(
        after.contains("- summary of earlier iterations:\n- the tests gate failed every time"),
        "{after}"
    );
    assert!(!after.contains("- iteration 1:"), "{after}");
    let summary_prompt = p.read(&format!("prompt-seen-summary-{k}.txt"));
    assert!(
        summary_prompt.starts_with("Summarise these notes"),
        "{summary_prompt}"
    );
    assert!(
        !summary_prompt.contains("Loop rules"),
        "a summary call is not an iteration: {summary_prompt}"
    );

    // Accounted like an iteration: the run's cost includes every summary, also after resume.
    let status = p.status_json();
    let expected = 9.0 * 0.001 + summaries.len() as f64 * 0.002;
    let cost = status["cost_usd"].as_f64().unwrap();
    assert!((cost - expected).abs() < 1e-9, "{cost} != {expected}");
    assert_eq!(status["tokens"]["input"], 100 * (9 + summaries.len()));
    let side: i64 = p
        .db()
        .query_row(
            "SELECT COUNT(*) FROM side_calls WHERE kind = 'summary'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(side as usize, summaries.len());
    assert!(
        out.stderr.contains("notes summarised by the agent"),
        "{}",
        out.stderr
    );
}

#[test]
fn healthy_iterations_add_no_notes_to_the_prompt() {
    let p = Project::new();
    let script = ralph_testkit::Script::new().default_steps(vec![
        ralph_testkit::Step::write("f.txt", "x"),
        ralph_testkit::Step::print("did a step"),
    ]);
    p.configure_text(&script, "max_iterations = 3");
    assert_eq!(p.run(&["run"]).code, 3);
    let third = p.artifact(3, "prompt.md");
    assert!(!third.contains("## Notes"), "{third}");
    assert!(!third.contains("## Feedback"), "{third}");
}
