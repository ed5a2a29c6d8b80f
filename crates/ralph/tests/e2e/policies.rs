//! Failure policies (issue 3): usage limits wait for their reset within the run's limits or
//! switch to a fallback agent; limits without a reset time need a human; rate limits back off.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ralph_testkit::fake_agent_path;
use ralph_testkit::script::{ClaudeResult, Script, Step};

use crate::harness::*;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn usage_limit(text: String) -> Step {
    Step::claude_result(ClaudeResult::error(text).api_error_status(429))
}

fn done() -> Step {
    Step::claude_result(ClaudeResult::success("finished\nLOOP_COMPLETE").cost_usd(0.01))
}

#[test]
fn a_usage_limit_with_a_reset_time_waits_for_it_then_resumes() {
    let p = Project::new();
    let reset = now() + 2;
    let script = Script::new().default_steps(vec![done()]).on_call(
        1,
        vec![
            usage_limit(format!("Claude AI usage limit reached|{reset}")),
            Step::exit(1),
        ],
    );
    p.configure(&script, "claude-stream-json", "", "");
    let started = std::time::Instant::now();
    let out = p.run(&["run", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let its = p.iterations();
    assert_eq!(its[0].2.as_deref(), Some("usage_limit"));
    assert_eq!(its[1].1, "completed");
    let waits: Vec<_> = out
        .events()
        .into_iter()
        .filter(|e| e["event"] == "retry.scheduled")
        .collect();
    assert_eq!(waits.len(), 1, "{}", out.stdout);
    assert_eq!(waits[0]["error_class"], "usage_limit");
    assert!(waits[0]["until"].as_str().is_some(), "{}", waits[0]);
    assert!(waits[0]["delay_s"].as_f64().unwrap() <= 3.0, "{}", waits[0]);
    assert!(
        out.stderr
            .contains("usage_limit: the agent's limit lifts at"),
        "{}",
        out.stderr
    );
    // Waiting for a stated reset is not a failure of the agent.
    assert_eq!(
        p.db()
            .query_row("SELECT consecutive_failures FROM runs", [], |r| r
                .get::<_, u32>(0))
            .unwrap(),
        0
    );
}

#[test]
fn a_reset_after_the_runtime_limit_stops_with_exit_4() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![
        usage_limit(format!("Claude AI usage limit reached|{}", now() + 7200)),
        Step::exit(1),
    ]);
    p.configure(&script, "claude-stream-json", "max_runtime = \"10m\"", "");
    let out = p.run(&["run"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.summary().contains("usage limit lifts in"),
        "{}",
        out.summary()
    );
    assert!(
        out.summary().contains("after the runtime limit"),
        "{}",
        out.summary()
    );
}

#[test]
fn a_usage_limit_without_reset_time_needs_a_human() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![
        usage_limit("You've hit your limit".to_string()),
        Step::exit(1),
    ]);
    p.configure(&script, "claude-stream-json", "", "");
    let out = p.run(&["run"]);
    assert_eq!(out.code, 8, "{}", out.stderr);
    assert!(
        out.summary().contains("agent.fallback"),
        "{}",
        out.summary()
    );
}

#[test]
fn rate_limits_back_off_and_are_recorded() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![done()]).on_call(
        1,
        vec![
            Step::claude_result(
                ClaudeResult::error("API Error: Request rejected (429) · rate limited")
                    .api_error_status(429),
            ),
            Step::exit(1),
        ],
    );
    p.configure(&script, "claude-stream-json", "", "");
    // Replace the zero backoff the harness sets with a small real one.
    let toml = p
        .read("ralph.toml")
        .replace("base_delay = \"0s\"", "base_delay = \"200ms\"");
    p.write("ralph.toml", &toml);
    let out = p.run(&["run", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let waits: Vec<_> = out
        .events()
        .into_iter()
        .filter(|e| e["event"] == "retry.scheduled")
        .collect();
    assert_eq!(waits.len(), 1);
    assert_eq!(waits[0]["error_class"], "rate_limit");
    assert!(
        waits[0].get("until").is_none(),
        "a backoff has no stated end: {}",
        waits[0]
    );
    let delay = waits[0]["delay_s"].as_f64().unwrap();
    assert!((0.15..=0.25).contains(&delay), "{delay}");
    assert!(
        out.stderr.contains("retrying in 0.2s after rate_limit"),
        "{}",
        out.stderr
    );
}

/// An executable named `name` on a PATH directory of its own that replays `fixture` to stdout
/// and exits with `code`, recording its arguments.
fn replay_agent(p: &Project, name: &str, fixture: &str, code: i32) -> String {
    let bin = p.aux_path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let data = p.aux_path(&format!("{name}.out"));
    std::fs::write(&data, fixture).unwrap();
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo '{name} 1.0.0'; exit 0; fi\n\
         printf '%s\\n' \"$@\" > {args}\ncat > /dev/null\ncat {data}\nexit {code}\n",
        args = p.aux_path(&format!("{name}.args")).display(),
        data = data.display(),
    );
    let path = bin.join(name);
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}

#[test]
fn a_usage_limit_switches_to_the_fallback_agent_and_prices_its_tokens() {
    let p = Project::new();
    p.write("PROMPT.md", "task\n");
    // Claude (the fake agent behind a `claude` on PATH) hits its usage limit with no reset.
    let claude_script = p.aux_path("claude.json");
    Script::new()
        .default_steps(vec![
            usage_limit("You've hit your limit".to_string()),
            Step::exit(1),
        ])
        .write_to(&claude_script)
        .unwrap();
    let path = replay_agent(&p, "codex", CODEX_SUCCESS, 0);
    let bin = p.aux_path("bin");
    std::fs::write(
        bin.join("claude"),
        format!(
            "#!/bin/sh\nFAKE_AGENT_SCRIPT={} exec {} \"$@\"\n",
            claude_script.display(),
            fake_agent_path().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("claude"), std::fs::Permissions::from_mode(0o755)).unwrap();
    p.write(
        "ralph.toml",
        &format!(
            "[agent]\nbackend = \"claude\"\nfallback = [\"codex:gpt-5.5\"]\n{}",
            p.sandbox_section()
        ),
    );
    let out = Out::from(
        p.ralph()
            .args(["run", "--json"])
            .env("PATH", &path)
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let events = out.events();
    let switched: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "agent.switched")
        .collect();
    assert_eq!(switched.len(), 1, "{}", out.stdout);
    assert_eq!(switched[0]["from"], "claude");
    assert_eq!(switched[0]["to"], "codex");
    assert_eq!(switched[0]["model"], "gpt-5.5");
    assert_eq!(switched[0]["reason"], "usage_limit");
    assert!(
        out.stderr
            .contains("switching to the fallback agent codex (gpt-5.5)"),
        "{}",
        out.stderr
    );
    let finished: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "iteration.finished")
        .collect();
    assert_eq!(finished[1]["backend"], "codex");
    assert_eq!(finished[1]["outcome"], "completed");
    // Codex reports tokens only; ralph prices them (cached tokens are not charged as input).
    assert_eq!(finished[1]["cost_source"], "computed");
    assert_eq!(finished[1]["tokens"]["cache_read"], 900);
    assert_eq!(finished[1]["tokens"]["input"], 3600);
    // gpt-5.5 at $5 / $30 / $0.50 per million input / output / cache-read tokens.
    let expected = (3600.0 * 5.0 + 240.0 * 30.0 + 900.0 * 0.5) / 1e6;
    let cost = finished[1]["cost_usd"].as_f64().unwrap();
    assert!((cost - expected).abs() < 1e-12, "{cost} != {expected}");
    let args = std::fs::read_to_string(p.aux_path("codex.args")).unwrap();
    assert!(args.lines().any(|l| l == "gpt-5.5"), "{args}");
}

/// A successful Codex `exec --json` run (transcripts/codex-json.jsonl, final message on its own
/// line so it completes).
const CODEX_SUCCESS: &str = r#"{"type":"thread.started","thread_id":"01a1fd77-527b-7450-8d50-8b6f2e97febc"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"Step 1: calling apply_patch."}}
{"type":"item.completed","item":{"id":"item_4","type":"agent_message","text":"I created hello.txt and verified it.\nLOOP_COMPLETE"}}
{"type":"turn.completed","usage":{"input_tokens":4500,"cached_input_tokens":900,"cache_write_input_tokens":0,"output_tokens":240,"reasoning_output_tokens":0}}
"#;

/// Regression: `ralph stop` (the STOP file) was only looked at between iterations, so a run
/// waiting hours for a usage-limit reset could not be stopped gracefully.
#[test]
fn ralph_stop_ends_a_wait_for_a_usage_limit_reset() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![
        Step::stderr("Claude AI usage limit reached. Try again in 2 hours."),
        Step::exit(1),
    ]);
    p.configure(&script, "text", "max_runtime = \"5h\"", "");
    let child = p.spawn(&["run"]);
    wait_until("the wait for the reset", Duration::from_secs(20), || {
        p.path(".ralph/ralph.db").exists()
            && p.db()
                .query_row(
                    "SELECT COUNT(*) FROM events WHERE kind = 'retry.scheduled'",
                    [],
                    |r| r.get::<_, u32>(0),
                )
                .unwrap_or(0)
                > 0
    });
    let asked = std::time::Instant::now();
    assert_eq!(p.run(&["stop"]).code, 0);
    let out = wait_child(child, Duration::from_secs(10));
    assert_eq!(out.code, 9, "{}", out.stderr);
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    assert!(
        out.summary().contains("stopped on request"),
        "{}",
        out.summary()
    );
}
