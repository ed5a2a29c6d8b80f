//! The real agent CLIs from npm (pinned versions), driven by the real `ralph` binary against
//! the scripted model server on 127.0.0.1. These never skip: if a CLI cannot be installed,
//! `clis::install_dir` panics and the test fails.

use std::time::{Duration, Instant};

use ralph_testkit::clis::{self, Cli};
use ralph_testkit::mockllm::{MockServer, HELLO_CONTENT};

use crate::harness::*;

const ALL: [Cli; 5] = [
    Cli::Claude,
    Cli::Codex,
    Cli::Gemini,
    Cli::Opencode,
    Cli::Copilot,
];

/// `ralph run --backend <cli>` in `p` against `url`, with the CLI's isolated environment only
/// (HOME, TMPDIR, XDG, the phone-home switches): nothing of the test machine's leaks in.
fn ralph_run(p: &Project, cli: Cli, url: &str, extra: &[&str]) -> Out {
    let env = clis::setup(cli, &p.aux_path(&format!("home-{}", cli.name())), url);
    let mut cmd = std::process::Command::new(RALPH);
    cmd.current_dir(&p.root)
        .env_clear()
        .envs(env.env.iter().map(|(k, v)| (k, v)))
        .env("RALPH_HOME", p.aux_path("ralph-home"))
        .stdin(std::process::Stdio::null())
        .args(["run", "--json", "--backend", cli.name(), "-m", &env.model])
        .args(extra);
    // Arguments beyond the model (Copilot's update and telemetry switches) go to the agent.
    let agent_args: Vec<&String> = env
        .args
        .iter()
        .skip_while(|a| *a == "-m" || *a == "--model")
        .skip(1)
        .collect();
    if !agent_args.is_empty() {
        cmd.arg("--").args(agent_args);
    }
    Out::from(cmd.output().unwrap())
}

fn project() -> Project {
    let p = Project::new();
    p.write("PROMPT.md", "Create hello.txt, check it, then finish.\n");
    p.write(
        "ralph.toml",
        "[loop]\niteration_timeout = \"3m\"\nmax_iterations = 3\n\n[retry]\nbase_delay = \"0s\"\n",
    );
    p
}

/// What the scenario implies per call: three model requests of the reference usage
/// (1200 input, 80 output, 300 cache read, 100 cache write; only Anthropic can report cache
/// writes), priced by the CLI (Claude, opencode) or by ralph's table.
fn expected(cli: Cli) -> (u64, u64, u64, u64) {
    match cli {
        Cli::Claude => (3600, 240, 900, 300),
        _ => (3600, 240, 900, 0),
    }
}

fn price(cli: Cli) -> (f64, f64, f64, f64) {
    match cli {
        // $ per million: input, output, cache read, cache write.
        Cli::Claude | Cli::Opencode => (3.0, 15.0, 0.3, 3.75),
        Cli::Codex => (5.0, 30.0, 0.5, 5.0),
        Cli::Gemini => (1.25, 10.0, 0.125, 1.25),
        Cli::Copilot => (2.0, 8.0, 0.5, 2.0),
    }
}

fn write_and_finish(cli: Cli) {
    let server = MockServer::start();
    let p = project();
    let started = Instant::now();
    let out = ralph_run(&p, cli, &server.base_url(), &[]);
    assert_eq!(
        out.code,
        0,
        "{}: {}\n{}",
        cli.name(),
        out.stderr,
        out.stdout
    );
    assert_eq!(
        p.read("hello.txt"),
        HELLO_CONTENT,
        "{}: the CLI's own tool wrote it",
        cli.name()
    );
    let events = out.events();
    let it: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "iteration.finished")
        .collect();
    assert_eq!(it.len(), 1, "{}: {}", cli.name(), out.stdout);
    assert_eq!(it[0]["outcome"], "completed");
    let (i, o, cr, cw) = expected(cli);
    let t = &it[0]["tokens"];
    assert_eq!(
        (
            t["input"].as_u64(),
            t["output"].as_u64(),
            t["cache_read"].as_u64(),
            t["cache_write"].as_u64()
        ),
        (Some(i), Some(o), Some(cr), Some(cw)),
        "{}: tokens {t}",
        cli.name()
    );
    let (pi, po, pcr, pcw) = price(cli);
    let cost = (i as f64 * pi + o as f64 * po + cr as f64 * pcr + cw as f64 * pcw) / 1e6;
    let recorded = it[0]["cost_usd"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (recorded - cost).abs() < 1e-9,
        "{}: cost {recorded} != {cost}",
        cli.name()
    );
    let source = match cli {
        Cli::Claude | Cli::Opencode => "reported",
        _ => "computed",
    };
    assert_eq!(it[0]["cost_source"], source, "{}", cli.name());
    // Nothing but the mock was asked.
    assert!(!server.requests().is_empty());
    eprintln!(
        "{}: completed in {:?}, {t}, ${recorded}",
        cli.name(),
        started.elapsed()
    );
}

#[test]
fn claude_edits_completes_and_reports_exact_usage() {
    write_and_finish(Cli::Claude);
}

#[test]
fn codex_edits_completes_and_reports_exact_usage() {
    write_and_finish(Cli::Codex);
}

#[test]
fn gemini_edits_completes_and_reports_exact_usage() {
    write_and_finish(Cli::Gemini);
}

#[test]
fn opencode_edits_completes_and_reports_exact_usage() {
    write_and_finish(Cli::Opencode);
}

#[test]
fn copilot_edits_completes_and_reports_exact_usage() {
    write_and_finish(Cli::Copilot);
}

/// An error scenario for every CLI: the class ralph records and the policy it applies.
fn error_case(scenario: &str, expect_class: &[&str], expect_exit: i32) {
    let server = MockServer::start();
    for cli in ALL {
        let p = project();
        p.write(
            "ralph.toml",
            // opencode never exits on a 5xx: ralph's idle timeout ends it.
            "[loop]\niteration_timeout = \"2m\"\nidle_timeout = \"15s\"\nmax_iterations = 2\n\
             max_consecutive_failures = 2\n\n[retry]\nbase_delay = \"0s\"\n",
        );
        let started = Instant::now();
        let out = ralph_run(&p, cli, &server.scenario_url(scenario), &[]);
        let its = p.iterations();
        let class = its.first().and_then(|i| i.2.clone()).unwrap_or_default();
        assert!(
            expect_class.contains(&class.as_str()),
            "{} {scenario}: class {class:?} not in {expect_class:?}\n{}",
            cli.name(),
            out.stderr
        );
        assert_eq!(
            out.code,
            expect_exit,
            "{} {scenario}: {}",
            cli.name(),
            out.stderr
        );
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "{} {scenario}: too slow",
            cli.name()
        );
    }
}

#[test]
fn rate_limits_are_classified_and_retried_then_give_up() {
    // Two failed iterations in a row open the circuit (exit 7): retried, not stopped at once.
    error_case("rate_limit", &["rate_limit"], 7);
}

#[test]
fn auth_errors_need_a_human() {
    error_case("auth_error", &["auth"], 8);
}

#[test]
fn server_errors_are_retried_then_give_up() {
    // Codex words a 500 as "We're currently experiencing high demand": overloaded.
    error_case("server_error", &["server", "overloaded", "idle"], 7);
}

#[test]
fn overload_is_retried_then_gives_up() {
    error_case("overloaded", &["overloaded", "server", "idle"], 7);
}

#[test]
fn quota_errors_need_a_human_or_a_fallback() {
    error_case("quota", &["quota", "usage_limit", "rate_limit"], 8);
}

/// Usage limits as each CLI reports them: classified, and handled within the run's limits.
#[test]
fn usage_limits_are_classified_per_cli_and_handled_within_the_limits() {
    let server = MockServer::start();
    // (cli, classes ralph may honestly record, exits the policy allows)
    let cases: [(Cli, &[&str], &[i32]); 5] = [
        // "You will regain access on <next month> at 00:00 UTC": after the runtime limit.
        (Cli::Claude, &["usage_limit"], &[4]),
        // "try again at 12:16 PM": waited for only if it falls inside the runtime limit.
        (Cli::Codex, &["usage_limit"], &[4]),
        // A daily QuotaFailure: no reset time, so a human (or a fallback) is needed.
        (Cli::Gemini, &["quota", "usage_limit"], &[8]),
        // opencode retries the 429 itself for about 90 s; the runtime limit ends it first.
        (Cli::Opencode, &["usage_limit", "timeout"], &[4, 8]),
        // Copilot calls it a rate limit and retries for about a minute.
        (
            Cli::Copilot,
            &["rate_limit", "usage_limit", "timeout"],
            &[4, 7],
        ),
    ];
    for (cli, classes, exits) in cases {
        let p = project();
        p.write(
            "ralph.toml",
            "[loop]\nmax_runtime = \"40s\"\nmax_iterations = 3\nmax_consecutive_failures = 2\n\n\
             [retry]\nbase_delay = \"0s\"\n",
        );
        let out = ralph_run(&p, cli, &server.scenario_url("usage_limit"), &[]);
        let its = p.iterations();
        let class = its.first().and_then(|i| i.2.clone()).unwrap_or_default();
        assert!(
            classes.contains(&class.as_str()),
            "{}: class {class:?}\n{}",
            cli.name(),
            out.stderr
        );
        assert!(
            exits.contains(&out.code),
            "{}: exit {}\n{}",
            cli.name(),
            out.code,
            out.stderr
        );
    }
}

/// Claude hits its usage limit; ralph switches to the fallback agent, Codex, which does the
/// work: two real CLIs in one run.
#[test]
fn a_usage_limit_falls_back_to_another_real_agent() {
    let server = MockServer::start();
    let p = project();
    p.write(
        "ralph.toml",
        "[agent]\nfallback = [\"codex:gpt-5.5\"]\n\n[loop]\nmax_iterations = 3\n\n\
         [retry]\nbase_delay = \"0s\"\n",
    );
    let home = p.aux_path("home-both");
    let claude = clis::setup(Cli::Claude, &home, &server.scenario_url("usage_limit"));
    let codex = clis::setup(Cli::Codex, &home, &server.base_url());
    let mut env = claude.env.clone();
    for (k, v) in &codex.env {
        if !env.iter().any(|(ek, _)| ek == k) {
            env.push((k.clone(), v.clone()));
        }
    }
    let out = Out::from(
        std::process::Command::new(RALPH)
            .current_dir(&p.root)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("RALPH_HOME", p.aux_path("ralph-home"))
            .stdin(std::process::Stdio::null())
            .args(["run", "--json", "--backend", "claude", "-m", &claude.model])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stderr, out.stdout);
    let events = out.events();
    let switched: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "agent.switched")
        .collect();
    assert_eq!(switched.len(), 1, "{}", out.stdout);
    assert_eq!(switched[0]["from"], "claude");
    assert_eq!(switched[0]["to"], "codex");
    assert_eq!(switched[0]["reason"], "usage_limit");
    assert_eq!(p.read("hello.txt"), HELLO_CONTENT, "Codex did the work");
}

/// The CLIs that run agents headless with every permission, inside the strictest sandbox a
/// user would put them in for real work: writes to the project only (required: a kernel that
/// cannot enforce it stops the run), the network only to the model server. Each must still do
/// its job, and nothing it needed may show up as a denial.
fn works_inside_the_sandbox(cli: Cli) {
    let server = MockServer::start();
    let p = project();
    let toml = p.read("ralph.toml");
    p.write(
        "ralph.toml",
        &format!(
            "{toml}\n[sandbox]\nmode = \"workspace\"\nrequired = true\nnetwork = \"allowlist\"\n"
        ),
    );
    let out = ralph_run(&p, cli, &server.base_url(), &[]);
    assert_eq!(
        out.code,
        0,
        "{}: {}\n{}",
        cli.name(),
        out.stderr,
        out.stdout
    );
    assert_eq!(p.read("hello.txt"), HELLO_CONTENT, "{}", cli.name());
    let events = out.events();
    let started: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "run.started")
        .collect();
    assert_eq!(started.len(), 1, "{}", out.stdout);
    assert_eq!(
        started[0]["sandbox"],
        "workspace, network allowlist",
        "{}: {}",
        cli.name(),
        started[0]
    );
    let denied: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "sandbox.denied")
        .collect();
    assert!(denied.is_empty(), "{}: {denied:?}", cli.name());
    // The model server was reached through the sandbox's forwarded listener.
    assert!(!server.requests().is_empty(), "{}", cli.name());
}

#[test]
fn claude_works_inside_a_required_allowlist_sandbox() {
    works_inside_the_sandbox(Cli::Claude);
}

#[test]
fn codex_works_inside_a_required_allowlist_sandbox() {
    works_inside_the_sandbox(Cli::Codex);
}

#[test]
fn gemini_works_inside_a_required_allowlist_sandbox() {
    works_inside_the_sandbox(Cli::Gemini);
}

/// Issue 11: a 3-story plan (C after A and B) run by the real Claude Code CLI against the
/// scripted model server. Each story's file is written by Claude's own Bash tool in the story's
/// worktree, every story merges, and each story's cost is exactly what Claude reported for
/// its calls — the same in the events, `ralph stories status` and `ralph cost --by story`.
#[test]
fn claude_runs_a_three_story_plan_and_each_story_costs_what_claude_reported() {
    let reference = ralph_testkit::mockllm::Usage::reference();
    let scenario = ralph_testkit::mockllm::Scenario::new(vec![
        ralph_testkit::mockllm::Step::shell(
            "mkdir -p src && echo \"written by claude for $RALPH_STORY_ID\" > src/$RALPH_STORY_ID.txt",
        )
        .with_usage(reference),
        ralph_testkit::mockllm::Step::text("The story's file is written.\nLOOP_COMPLETE")
            .with_usage(reference),
    ]);
    let server = MockServer::start_with(std::collections::HashMap::from([(
        "story".to_string(),
        scenario,
    )]));
    let p = Project::git();
    p.write(".gitignore", "/.ralph/\n");
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-q", "-m", "ignore"]);
    let env = clis::setup(
        Cli::Claude,
        &p.aux_path("home-claude"),
        &server.scenario_url("story"),
    );
    p.write(
        "ralph.toml",
        &format!(
            "[agent]\nbackend = \"claude\"\nmodel = {:?}\n\n[loop]\niteration_timeout = \"3m\"\n\
             max_iterations = 2\n\n[retry]\nbase_delay = \"0s\"\n",
            env.model
        ),
    );
    let story = |id: &str, deps: &str| {
        format!(
            "[[story]]\nid = \"{id}\"\ntitle = \"Story {id}\"\ndepends_on = [{deps}]\n\
             description = \"Write src/{id}.txt saying who wrote it.\"\n\
             [[story.criteria]]\nid = \"AC\"\ntext = \"the file says Claude wrote it\"\n\
             run = \"grep -q 'written by claude for {id}' src/{id}.txt\"\n\n"
        )
    };
    p.write(
        "stories.toml",
        &format!(
            "version = 1\nname = \"real\"\n\n{}{}{}",
            story("A", ""),
            story("B", ""),
            story("C", "\"A\", \"B\"")
        ),
    );
    let ralph = |args: &[&str]| {
        Out::from(
            std::process::Command::new(RALPH)
                .current_dir(&p.root)
                .env_clear()
                .envs(env.env.iter().map(|(k, v)| (k, v)))
                .env("RALPH_HOME", p.aux_path("ralph-home"))
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@t")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@t")
                .stdin(std::process::Stdio::null())
                .args(args)
                .output()
                .unwrap(),
        )
    };
    let out = ralph(&["stories", "run", "--parallel", "2", "--json"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stderr, out.stdout);
    for id in ["A", "B", "C"] {
        let file = p.git_cmd(&["show", &format!("ralph/real:src/{id}.txt")]);
        assert_eq!(file.trim(), format!("written by claude for {id}"));
    }
    // What Claude reported, per story, from the loops' own events.
    let mut reported = std::collections::BTreeMap::<String, f64>::new();
    for e in out.events() {
        if e["event"] == "iteration.finished" {
            assert_eq!(e["cost_source"], "reported", "{e}");
            *reported
                .entry(e["story_id"].as_str().unwrap().to_string())
                .or_default() += e["cost_usd"].as_f64().unwrap();
        }
    }
    // Two model calls of the reference usage at Claude's prices, per story.
    let (i, o, cr, cw) = (1200.0, 80.0, 300.0, 100.0);
    let per_story = 2.0 * (i * 3.0 + o * 15.0 + cr * 0.3 + cw * 3.75) / 1e6;
    let status: serde_json::Value =
        serde_json::from_str(&ralph(&["stories", "status", "--json"]).stdout).unwrap();
    let cost: serde_json::Value =
        serde_json::from_str(&ralph(&["cost", "--by", "story", "--json"]).stdout).unwrap();
    for id in ["A", "B", "C"] {
        assert!(
            (reported[id] - per_story).abs() < 1e-9,
            "{id}: {reported:?}"
        );
        let s = status["stories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap();
        assert_eq!(s["state"], "merged");
        assert!(
            (s["cost_usd"].as_f64().unwrap() - reported[id]).abs() < 1e-9,
            "{s}"
        );
        let row = cost["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == id)
            .unwrap();
        assert!(
            (row["cost_usd"].as_f64().unwrap() - reported[id]).abs() < 1e-9,
            "{row}"
        );
    }
    assert!((status["cost_usd"].as_f64().unwrap() - 3.0 * per_story).abs() < 1e-9);
}
