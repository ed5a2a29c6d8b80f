//! Files, lock, checkpoints, status, logs, dry run, init, and the claude backend's command line.

use std::time::Duration;

use ralph_testkit::script::{ClaudeResult, Script, Step};

use crate::harness::*;

#[test]
fn a_second_run_is_refused_with_the_holders_pid() {
    let p = Project::new();
    let script =
        Script::new().default_steps(vec![Step::pid_file(p.aux_path("agent.pid")), Step::hang()]);
    p.configure_text(&script, "");
    let child = p.spawn(&["run"]);
    let ralph_pid = child.id();
    ralph_testkit::proc::wait_for_pid_file(p.aux_path("agent.pid"), Duration::from_secs(30))
        .unwrap();
    let holder = format!(r"\bPID {ralph_pid}\b");
    ralph_snapshot!(p, ["run"], filters = [(holder.as_str(), "PID [RALPH_PID]")]);
    let status = p.status_json();
    assert_eq!(status["state"], "running");
    assert_eq!(status["current_iteration"], 1);
    assert_eq!(status["pid"], ralph_pid);
    ralph_testkit::proc::kill(ralph_pid as i32, libc::SIGINT).unwrap();
    assert_eq!(wait_child(child, Duration::from_secs(30)).code, 130);
}

#[test]
fn state_is_ignored_by_git_and_checkpoints_leave_the_user_alone() {
    let p = Project::git();
    // The user has staged and unstaged work and a stash; none of it may move.
    p.write("staged.txt", "staged\n");
    p.git_cmd(&["add", "staged.txt"]);
    p.write("README.md", "hello\nunstaged edit\n");
    p.write("stashme.txt", "x");
    p.git_cmd(&[
        "stash",
        "push",
        "-u",
        "-q",
        "-m",
        "keep",
        "--",
        "stashme.txt",
    ]);
    let head = p.git_cmd(&["rev-parse", "HEAD"]);
    let branch = p.git_cmd(&["symbolic-ref", "HEAD"]);
    let cached = p.git_cmd(&["diff", "--cached"]);
    let stash = p.git_cmd(&["stash", "list"]);

    let script = Script::new()
        .default_steps(vec![
            Step::write("work.txt", "iteration one\n"),
            Step::print("step"),
        ])
        .on_call(
            2,
            vec![
                Step::write("more.txt", "two\n"),
                Step::append("work.txt", "again\n"),
                Step::print("LOOP_COMPLETE"),
            ],
        );
    // The config lives outside the repository's files under test: remove it from view.
    p.configure_text(&script, "");
    let out = ralph_snapshot!(p, ["run", "--json"]);

    assert_eq!(p.read(".ralph/.gitignore"), "*\n");
    let porcelain = p.git_cmd(&["status", "--porcelain"]);
    assert!(!porcelain.contains(".ralph"), "{porcelain}");
    assert_eq!(p.git_cmd(&["rev-parse", "HEAD"]), head);
    assert_eq!(p.git_cmd(&["symbolic-ref", "HEAD"]), branch);
    assert_eq!(p.git_cmd(&["diff", "--cached"]), cached);
    assert_eq!(p.git_cmd(&["stash", "list"]), stash);

    let run = p.latest_run_id();
    let refs = p.git_cmd(&[
        "for-each-ref",
        "--format=%(refname)",
        &format!("refs/ralph/checkpoints/{run}/"),
    ]);
    let refs: Vec<&str> = refs.lines().collect();
    assert_eq!(
        refs,
        [0, 1, 2]
            .map(|n| format!("refs/ralph/checkpoints/{run}/{n:04}"))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    // The checkpoint of iteration 1 holds the agent's file and the user's unstaged edit.
    let cp1 = format!("refs/ralph/checkpoints/{run}/0001");
    assert_eq!(
        p.git_cmd(&["show", &format!("{cp1}:work.txt")]),
        "iteration one\n"
    );
    assert_eq!(
        p.git_cmd(&["show", &format!("{cp1}:README.md")]),
        "hello\nunstaged edit\n"
    );
    assert_eq!(
        p.git_cmd(&["rev-parse", &format!("{cp1}^")]),
        head,
        "parented on HEAD"
    );
    let tree = p.git_cmd(&["ls-tree", "-r", "--name-only", &cp1]);
    assert!(!tree.contains(".ralph"), "{tree}");

    // Files changed per iteration come from the checkpoint diff.
    let finished: Vec<_> = out
        .events()
        .into_iter()
        .filter(|e| e["event"] == "iteration.finished")
        .collect();
    assert_eq!(finished[0]["files_changed"], 1);
    assert_eq!(finished[1]["files_changed"], 2);
    // Lines added and removed, from the checkpoint diff: work.txt gained a line, more.txt one.
    assert_eq!(
        (
            finished[0]["insertions"].as_u64(),
            finished[0]["deletions"].as_u64()
        ),
        (Some(1), Some(0))
    );
    assert_eq!(
        (
            finished[1]["insertions"].as_u64(),
            finished[1]["deletions"].as_u64()
        ),
        (Some(2), Some(0))
    );
    let cps: Vec<_> = out
        .events()
        .into_iter()
        .filter(|e| e["event"] == "checkpoint.created")
        .collect();
    assert_eq!(cps.len(), 3);
}

#[test]
fn no_change_iterations_are_recognised() {
    let p = Project::git();
    let script = Script::new().default_steps(vec![Step::print("thinking only")]);
    p.configure_text(&script, "max_iterations = 2");
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-q", "-m", "config"]);
    let out = p.run(&["run"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        p.iterations().iter().all(|i| i.1 == "no_change"),
        "{:?}",
        p.iterations()
    );
}

#[test]
fn outside_a_git_repository_ralph_says_so_once_and_runs() {
    let p = Project::new();
    p.configure_text(
        &Script::new().default_steps(vec![Step::print("LOOP_COMPLETE")]),
        "",
    );
    ralph_snapshot!(p, ["run"]);
}

#[test]
fn json_events_follow_the_contract() {
    let p = Project::git();
    let script = Script::new().default_steps(vec![Step::claude_result(
        ClaudeResult::success("done\nLOOP_COMPLETE")
            .cost_usd(0.0123)
            .tokens(1000, 50)
            .cache_tokens(300, 100),
    )]);
    p.configure(&script, "claude-stream-json", "", "");
    // Human output still goes to stderr.
    let out = ralph_snapshot!(p, ["run", "--json"]);
    let events = out.events();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "run.started",
            "checkpoint.created",
            "iteration.started",
            "checkpoint.created",
            "iteration.finished",
            "run.finished"
        ]
    );
    let run = p.latest_run_id();
    for e in &events {
        assert_eq!(e["run_id"], run.as_str());
        assert!(chrono_like(e["ts"].as_str().unwrap()), "{e}");
    }
    let it = &events[4];
    assert_eq!(it["iteration"], 1);
    assert_eq!(it["outcome"], "completed");
    assert_eq!(it["cost_usd"], 0.0123);
    assert_eq!(
        it["tokens"],
        serde_json::json!({"input": 1000, "output": 50, "cache_read": 300, "cache_write": 100})
    );
    assert!(it["duration_s"].as_f64().unwrap() > 0.0);
    assert_eq!(it["files_changed"], 0, "the agent wrote nothing: {it}");
    let fin = &events[5];
    assert_eq!(fin["stop_reason"], "completed");
    assert_eq!(fin["exit_code"], 0);
    assert_eq!(fin["iterations"], 1);
}

fn chrono_like(ts: &str) -> bool {
    ts.len() >= 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T'
}

#[test]
fn status_logs_and_artifacts() {
    let p = Project::new();
    let script = Script::new()
        .default_steps(vec![Step::claude_result(
            ClaudeResult::success("step").cost_usd(0.5).tokens(10, 2),
        )])
        .on_call(
            2,
            vec![Step::claude_result(
                ClaudeResult::success("LOOP_COMPLETE")
                    .cost_usd(0.25)
                    .tokens(10, 2),
            )],
        );
    p.configure(
        &script,
        "claude-stream-json",
        "",
        "[budget]\nmax_cost_usd = 10.0\n",
    );
    ralph_snapshot!(p, ["status"]);
    let none = p.status_json();
    assert_eq!(none["state"], "none");
    ralph_snapshot!(p, ["run"]);

    let s = p.status_json();
    for key in [
        "version",
        "run_id",
        "state",
        "stop_reason",
        "exit_code",
        "backend",
        "model",
        "iteration",
        "max_iterations",
        "started_at",
        "updated_at",
        "elapsed_s",
        "cost_usd",
        "budget_usd",
        "tokens",
    ] {
        assert!(s.get(key).is_some(), "status --json lacks {key}: {s}");
    }
    assert_eq!(s["version"], 1);
    assert_eq!(s["state"], "completed");
    assert_eq!(s["budget_usd"], 10.0);
    assert_eq!(s["max_iterations"], 100);
    ralph_snapshot!(p, ["status"]);
    ralph_snapshot!(p, ["logs"]);
    ralph_snapshot!(p, ["logs", "--iteration", "1"]);
    let json = p.run(&["logs", "--json"]);
    let kinds: Vec<String> = json
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("run.started"));
    assert_eq!(kinds.last().map(String::as_str), Some("run.finished"));
    ralph_snapshot!(p, ["logs", "--iteration", "9"]);
}

#[test]
fn dry_run_prints_the_prompt_and_command_and_runs_nothing() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![Step::write("touched.txt", "x")]);
    p.configure_text(&script, "");
    ralph_snapshot!(p, ["run", "--dry-run", "--", "--extra", "arg with space"]);
    assert!(!p.exists("touched.txt"));
    assert!(!p.exists(".ralph"));
}

#[test]
fn init_then_run_works_with_the_claude_backend() {
    let p = Project::new();
    ralph_snapshot!(p, ["init"]);
    assert!(p.read("ralph.toml").contains("backend = \"claude\""));
    assert!(!p.read("PROMPT.md").contains("LOOP_COMPLETE"));
    ralph_snapshot!(p, ["init"]);
    // The fake claude records its arguments beside the project.
    let toml = p.read("ralph.toml").replacen(
        "\n[sandbox]\n",
        &format!("\n[sandbox]\n{}", p.sandbox_keys()),
        1,
    );
    p.write("ralph.toml", &toml);

    let script = Script::new()
        .default_steps(vec![
            Step::claude_init("claude-sonnet-4-5"),
            Step::claude_result(ClaudeResult::success("working").cost_usd(0.01)),
        ])
        .on_call(
            2,
            vec![Step::claude_result(
                ClaudeResult::success("done\nLOOP_COMPLETE")
                    .cost_usd(0.02)
                    .model("claude-sonnet-4-5"),
            )],
        );
    let path = fake_claude(&p, &script);
    ralph_snapshot!(
        p,
        p.ralph()
            .args(["run", "--model", "claude-sonnet-4-5"])
            .env("PATH", &path)
    );
    assert_eq!(p.iterations().len(), 2);
    let args = std::fs::read_to_string(p.aux_path("claude-args.txt")).unwrap();
    let argv: Vec<&str> = args.lines().collect();
    assert_eq!(
        &argv[..7],
        [
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--dangerously-skip-permissions",
            "--model",
            "claude-sonnet-4-5"
        ]
    );
    // Then the deny list (defense in depth; ralph enforces blocked commands itself).
    assert_eq!(argv[7], "--disallowedTools");
    assert!(
        argv[8].contains("Bash(git reset --hard)") && argv[8].contains("Bash(rm -rf / *)"),
        "{}",
        argv[8]
    );
    assert_eq!(argv.len(), 10, "{argv:?}");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert_eq!(
        argv.last().copied(),
        Some(if root { "IS_SANDBOX=1" } else { "IS_SANDBOX=" })
    );
    let s = p.status_json();
    assert_eq!(s["backend"], "claude");
    assert_eq!(s["model"], "claude-sonnet-4-5");

    let doctor = Out::from(p.ralph().arg("doctor").env("PATH", &path).output().unwrap());
    assert_eq!(doctor.code, 0, "{}{}", doctor.stdout, doctor.stderr);
    assert!(
        doctor.stdout.contains("claude    2.1.197 (Claude Code)"),
        "{}",
        doctor.stdout
    );
    assert!(
        doctor.stdout.contains("selected   claude (ready)"),
        "{}",
        doctor.stdout
    );
}

#[test]
fn allowlist_permissions_replace_skip_permissions() {
    let p = Project::new();
    p.write("PROMPT.md", "task\n");
    p.write(
        "ralph.toml",
        &format!(
            "[agent]\nbackend = \"claude\"\npermissions = \"allowlist\"\nallowed_tools = [\"Read\", \"Edit\", \"Bash(git diff *)\"]\n{}",
            p.sandbox_section()
        ),
    );
    let script = Script::new().default_steps(vec![Step::claude_result(ClaudeResult::success(
        "LOOP_COMPLETE",
    ))]);
    let path = fake_claude(&p, &script);
    let out = Out::from(p.ralph().arg("run").env("PATH", &path).output().unwrap());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let args = std::fs::read_to_string(p.aux_path("claude-args.txt")).unwrap();
    assert!(
        args.contains("--allowedTools\nRead Edit Bash(git diff *)\n"),
        "{args}"
    );
    assert!(!args.contains("--dangerously-skip-permissions"), "{args}");
    assert!(
        args.contains("IS_SANDBOX=\n"),
        "no sandbox override without skip-permissions: {args}"
    );
}

#[test]
fn doctor_reports_a_missing_agent_and_completions_print() {
    let p = Project::new();
    p.write("PROMPT.md", "task\n");
    p.write("ralph.toml", "[agent]\nbackend = \"claude\"\n");
    let doctor = Out::from(
        p.ralph()
            .arg("doctor")
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap(),
    );
    assert_eq!(doctor.code, 8, "{}", doctor.stdout);
    assert!(
        doctor
            .stdout
            .contains("claude    not installed (`claude` not found)"),
        "{}",
        doctor.stdout
    );
    assert!(
        doctor.stdout.contains("selected   claude (NOT INSTALLED)"),
        "{}",
        doctor.stdout
    );
    let comp = p.run(&["completions", "bash"]);
    assert_eq!(comp.code, 0);
    assert!(
        comp.stdout.contains("_ralph()"),
        "{}",
        &comp.stdout[..200.min(comp.stdout.len())]
    );
}

#[test]
fn an_unreported_cost_is_never_shown_as_zero() {
    let p = Project::new();
    // Iteration 1 reports its cost; iteration 2 is a text line with no usage at all.
    let script = Script::new()
        .default_steps(vec![Step::claude_result(
            ClaudeResult::success("step").cost_usd(0.25).tokens(10, 1),
        )])
        .on_call(2, vec![Step::print("no result line"), Step::exit(1)]);
    p.configure(&script, "claude-stream-json", "max_iterations = 2", "");
    let out = ralph_snapshot!(p, ["run", "--json"]);
    let last = out.events().into_iter().last().unwrap();
    assert_eq!(last["cost_unknown_iterations"], 1);

    let q = Project::new();
    q.configure_text(
        &Script::new().default_steps(vec![Step::print("text only")]),
        "max_iterations = 1",
    );
    // Not a snapshot: its first line says "up to 1 iterations" (reported to the lead).
    let out = q.run(&["run"]);
    assert!(
        out.summary().ends_with("cost unknown · tokens unknown"),
        "{}",
        out.summary()
    );
}

#[test]
fn logs_follow_streams_a_live_run_until_it_finishes() {
    let p = Project::new();
    let script = Script::new()
        .default_steps(vec![Step::print("step")])
        .on_call(
            2,
            vec![
                Step::write(p.aux_path("in-2"), ""),
                Step::wait_for_file(p.aux_path("go"), 30_000),
                Step::print("LOOP_COMPLETE"),
            ],
        );
    p.configure_text(&script, "");
    let run = p.spawn(&["run"]);
    wait_until("iteration 2", Duration::from_secs(30), || {
        p.aux_path("in-2").exists()
    });
    let follow = p.spawn(&["logs", "--follow"]);
    std::fs::write(p.aux_path("go"), "").unwrap();
    assert_eq!(wait_child(run, Duration::from_secs(30)).code, 0);
    ralph_snapshot!(
        p,
        (
            "ralph logs --follow",
            wait_child(follow, Duration::from_secs(30))
        )
    );
}

/// Issue 9, item 15: `ralph status` showed `$0.0000` for a run whose agent reports no cost, and
/// `status --json` a `cost_usd` of 0.
#[test]
fn status_says_an_unknown_cost_is_unknown() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![Step::print("LOOP_COMPLETE")]);
    p.configure_text(&script, "");
    assert_eq!(p.run(&["run"]).code, 0);
    let human = p.run(&["status"]);
    assert!(!human.stdout.contains("$0.0000"), "{}", human.stdout);
    assert!(
        human.stdout.contains("cost       unknown"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("tokens     unknown"),
        "{}",
        human.stdout
    );
    let json = p.status_json();
    assert!(json["cost_usd"].is_null(), "{json}");
    assert_eq!(json["cost_unknown_iterations"], 1, "{json}");
}

/// Issue 9, item 15: `ralph doctor` with `backend = "custom"` listed every other backend as
/// "`./my-agent` not found".
#[test]
fn doctor_with_a_custom_agent_probes_every_other_backend_as_itself() {
    let p = Project::new();
    p.write("PROMPT.md", "task\n");
    p.write(
        "ralph.toml",
        "[agent]\nbackend = \"custom\"\ncommand = [\"./my-agent\"]\n",
    );
    let doctor = Out::from(
        p.ralph()
            .arg("doctor")
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap(),
    );
    let lines: Vec<&str> = doctor
        .stdout
        .lines()
        .filter(|l| l.contains("my-agent"))
        .collect();
    assert!(
        lines.iter().all(|l| l.trim_start().starts_with("custom")
            || l.starts_with("selected")
            || l.starts_with("config")),
        "{}",
        doctor.stdout
    );
    assert!(
        doctor
            .stdout
            .contains("claude    not installed (`claude` not found)"),
        "{}",
        doctor.stdout
    );
}

/// `ralph doctor`'s sandbox section, and the fail-closed path through the Landlock test hook:
/// with `required = true` a kernel without Landlock is a refusal (exit 8), as `ralph run`'s.
#[test]
fn doctor_reports_the_sandbox_and_refuses_what_the_kernel_cannot_enforce() {
    let p = Project::new();
    p.write("PROMPT.md", "task\n");
    p.write(
        "ralph.toml",
        "[agent]\nbackend = \"custom\"\ncommand = [\"/bin/true\"]\n\n[sandbox]\nrequired = true\n",
    );
    let doctor = |abi: &str| {
        Out::from(
            p.ralph()
                .arg("doctor")
                .env("RALPH_TEST_SANDBOX_LANDLOCK_ABI", abi)
                .output()
                .unwrap(),
        )
    };
    let ok = doctor("7");
    assert_eq!(ok.code, 0, "{}", ok.stdout);
    for line in [
        "  landlock  ABI 7 (2 or later needed: ok)",
        "  agents    mode workspace, network on",
        "  gates     mode workspace, network on",
    ] {
        assert!(ok.stdout.contains(line), "{line:?} in {}", ok.stdout);
    }
    let refused = doctor("0");
    assert_eq!(refused.code, 8, "{}", refused.stdout);
    assert!(
        refused
            .stdout
            .contains("  agents    REFUSED: [sandbox] mode = \"workspace\" cannot be enforced"),
        "{}",
        refused.stdout
    );
    assert!(refused.stdout.contains("fix: "), "{}", refused.stdout);
    let bad = doctor("seven");
    assert_eq!(bad.code, 2, "{}", bad.stdout);
    assert!(
        bad.stdout.contains("RALPH_TEST_SANDBOX_LANDLOCK_ABI=seven"),
        "{}",
        bad.stdout
    );
}

/// Run `ralph args…` in the project on a real terminal (util-linux `script` gives it a pty).
fn on_a_terminal(p: &Project, args: &str) -> Vec<u8> {
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &format!("{RALPH} {args}"), "/dev/null"])
        .current_dir(&p.root)
        .env("HOME", &p.home)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Issue 9, item 16: `ralph logs` wrote the agent's escape sequences to the terminal, where they
/// act (clear the screen, set the clipboard, rewrite lines); `--raw` keeps them.
#[test]
fn escape_sequences_in_agent_output_are_shown_not_obeyed_on_a_terminal() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![
        Step::print("before\u{1b}[2J\u{1b}]52;c;aGk=\u{7}after\rover"),
        Step::print("LOOP_COMPLETE"),
    ]);
    p.configure_text(&script, "");
    assert_eq!(p.run(&["run"]).code, 0);
    let shown = on_a_terminal(&p, "logs --iteration 1");
    let text = String::from_utf8_lossy(&shown);
    assert!(!shown.contains(&0x1b), "{text:?}");
    assert!(!shown.contains(&0x07), "{text:?}");
    assert!(
        text.contains("before^[[2J^[]52;c;aGk=^Gafter^Mover"),
        "{text:?}"
    );
    let raw = on_a_terminal(&p, "logs --iteration 1 --raw");
    assert!(raw.contains(&0x1b), "{:?}", String::from_utf8_lossy(&raw));
    // Not a terminal: the artifact's bytes, exactly.
    let piped = p.run(&["logs", "--iteration", "1"]);
    assert!(piped.stdout.contains("\u{1b}[2J"), "{:?}", piped.stdout);
}

/// Issue 9, item 20: the guide showed gate lines under the iteration line; they come before it
/// (gates run before the iteration is recorded). The guide now says so; this keeps it true.
#[test]
fn gate_lines_come_before_their_iteration_line_as_the_guide_shows() {
    let p = Project::new();
    let script = Script::new()
        .on_call(1, vec![Step::print("working")])
        .on_call(2, vec![Step::print("LOOP_COMPLETE")]);
    p.configure_text(&script, "max_iterations = 3");
    p.write(
        "ralph.toml",
        &format!(
            "{}\n[[gates]]\nname = \"tests\"\nrun = \"test -f .ralph/runs/*/0002/prompt.md\"\nwhen = \"iteration\"\n",
            p.read("ralph.toml")
        ),
    );
    let out = p.run(&["run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    let first = lines.iter().position(|l| l.starts_with("[1/3]")).unwrap();
    assert!(
        lines[first - 1].starts_with("  gate tests: failed (exit 1)"),
        "{}",
        out.stderr
    );
    let second = lines.iter().position(|l| l.starts_with("[2/3]")).unwrap();
    assert!(
        lines[second - 1].starts_with("  gate tests: passed"),
        "{}",
        out.stderr
    );
    let guide =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/guide.md"))
            .unwrap();
    assert!(
        guide.contains("  gate tests: failed (exit 101) in 12.0s\n[3/100] claude"),
        "docs/guide.md no longer shows the gate line before its iteration line"
    );
}
