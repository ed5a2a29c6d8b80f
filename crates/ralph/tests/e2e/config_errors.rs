//! Malformed configs through the real binary: exit 2, a message naming file, line, column and
//! key with a hint, nothing created, no panic. Messages are snapshot-tested.

use crate::harness::*;

const CASES: &[(&str, &str)] = &[
    ("syntax_error", "[loop\nmax_iterations = 3\n"),
    ("unterminated_string", "[agent]\nmodel = \"claude\n"),
    (
        "duplicate_key",
        "[loop]\nmax_iterations = 3\nmax_iterations = 4\n",
    ),
    ("unknown_section", "[lopo]\nmax_iterations = 3\n"),
    ("unknown_key_typo", "[loop]\nmax_iteration = 3\n"),
    ("unknown_top_level_key", "backend = \"claude\"\n"),
    ("string_for_integer", "[loop]\nmax_iterations = \"ten\"\n"),
    ("float_for_integer", "[loop]\nmax_iterations = 2.5\n"),
    ("zero_iterations", "[loop]\nmax_iterations = 0\n"),
    ("negative_iterations", "[loop]\nmax_iterations = -1\n"),
    ("duration_without_unit", "[loop]\nmax_runtime = \"10\"\n"),
    (
        "duration_in_words",
        "[loop]\niteration_timeout = \"5 minutes\"\n",
    ),
    ("integer_duration", "[loop]\nidle_timeout = 600\n"),
    ("zero_timeout", "[loop]\niteration_timeout = \"0s\"\n"),
    ("unknown_backend", "[agent]\nbackend = \"claud\"\n"),
    ("custom_without_command", "[agent]\nbackend = \"custom\"\n"),
    (
        "empty_command",
        "[agent]\nbackend = \"custom\"\ncommand = []\n",
    ),
    (
        "bad_prompt_via",
        "[agent]\nbackend = \"custom\"\ncommand = [\"x\"]\nprompt_via = \"pipe\"\n",
    ),
    (
        "bad_output_format",
        "[agent]\nbackend = \"custom\"\ncommand = [\"x\"]\noutput = \"json\"\n",
    ),
    (
        "allowlist_without_tools",
        "[agent]\npermissions = \"allowlist\"\n",
    ),
    ("negative_cost", "[budget]\nmax_cost_usd = -5\n"),
    ("zero_daily_budget", "[budget]\ndaily_usd = 0\n"),
    ("alerts_out_of_order", "[budget]\nalert_at = [0.8, 0.5]\n"),
    (
        "zero_max_files_changed",
        "[safety]\nmax_files_changed = 0\n",
    ),
    (
        "bad_blocked_command_regex",
        "[safety]\nblocked_commands = [\"re:(unclosed\"]\n",
    ),
    ("bad_retry_strategy", "[retry]\nstrategy = \"fibonacci\"\n"),
    (
        "max_delay_below_base",
        "[retry]\nbase_delay = \"10s\"\nmax_delay = \"1s\"\n",
    ),
    ("gate_without_run", "[[gates]]\nname = \"tests\"\n"),
    (
        "gate_name_with_slash",
        "[[gates]]\nname = \"../x\"\nrun = \"true\"\n",
    ),
    (
        "duplicate_gate_names",
        "[[gates]]\nname = \"t\"\nrun = \"true\"\n\n[[gates]]\nname = \"t\"\nrun = \"false\"\n",
    ),
    (
        "bad_gate_when",
        "[[gates]]\nname = \"t\"\nrun = \"true\"\nwhen = \"always\"\n",
    ),
    ("gates_as_table", "[gates]\nname = \"t\"\n"),
    (
        "marker_with_newline",
        "[loop]\ncompletion_marker = \"DONE\\nNOW\"\n",
    ),
    ("array_for_model", "[agent]\nmodel = [\"a\"]\n"),
];

#[test]
fn malformed_configs_exit_2_with_located_messages() {
    let mut failures = Vec::new();
    for (name, toml) in CASES {
        let p = Project::new();
        p.write("ralph.toml", toml);
        p.write("PROMPT.md", "task\n");
        let out = p.run(&["run"]);
        if out.code != 2 {
            failures.push(format!(
                "{name}: exit {} (stderr: {})",
                out.code, out.stderr
            ));
            continue;
        }
        assert!(out.stdout.is_empty(), "{name}: {}", out.stdout);
        assert!(
            !out.stderr.contains("panicked") && !out.stderr.contains("RUST_BACKTRACE"),
            "{name}: {}",
            out.stderr
        );
        assert!(
            out.stderr.starts_with("error: ralph.toml"),
            "{name}: the message names the file: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("hint: "),
            "{name}: a hint: {}",
            out.stderr
        );
        assert!(!p.exists(".ralph"), "{name}: nothing may be created");
        insta::assert_snapshot!(
            format!("config_{name}"),
            format!("$ cat ralph.toml\n{toml}$ ralph run\n{}", out.stderr)
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_message_has_a_line_and_column() {
    for (name, toml) in CASES {
        let p = Project::new();
        p.write("ralph.toml", toml);
        p.write("PROMPT.md", "task\n");
        let out = p.run(&["run"]);
        let first = out.stderr.lines().next().unwrap_or("");
        let loc = first.trim_start_matches("error: ralph.toml:");
        let mut parts = loc.splitn(3, ':');
        let line = parts.next().and_then(|s| s.parse::<usize>().ok());
        let col = parts.next().and_then(|s| s.parse::<usize>().ok());
        assert!(
            line.is_some() && col.is_some(),
            "{name}: no line:column in {first:?}"
        );
    }
}

#[test]
fn flags_are_validated_too() {
    let p = Project::new();
    p.write("PROMPT.md", "task\n");
    for (args, needle) in [
        (vec!["run", "--max-runtime", "forever"], "--max-runtime"),
        (vec!["run", "--max-cost=-1"], "--max-cost"),
        (vec!["run", "--max-iterations", "0"], "--max-iterations"),
        (vec!["run", "--backend", "nope"], "unknown backend"),
        (
            vec!["run", "--completion-marker", " X "],
            "--completion-marker",
        ),
    ] {
        let out = p.run(&args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
    assert!(!p.exists(".ralph"));
    // Every documented backend is runnable; a missing one is named, with how to install it.
    let out = Out::from(
        p.ralph()
            .args(["run", "--backend", "codex"])
            .env("PATH", "/nonexistent")
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 8, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the codex agent is not installed: `codex` was not found on PATH"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("npm install -g @openai/codex"),
        "{}",
        out.stderr
    );
}
