//! Malformed configs through the real binary: exit 2, a message naming file, line, column and
//! key with a hint, nothing created, no panic. Messages are snapshot-tested (the snapshots
//! show the config beside the message).

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
    for (name, toml) in CASES {
        let p = Project::new();
        p.write("ralph.toml", toml);
        p.write("PROMPT.md", "task\n");
        ralph_snapshot!(
            name = format!("config_{name}"),
            p,
            ["run"],
            context = format!("----- ralph.toml -----\n{toml}"),
        );
        assert!(!p.exists(".ralph"), "{name}: nothing may be created");
    }
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
    for args in [
        vec!["run", "--max-runtime", "forever"],
        vec!["run", "--max-cost=-1"],
        vec!["run", "--max-iterations", "0"],
        vec!["run", "--backend", "nope"],
        vec!["run", "--completion-marker", " X "],
    ] {
        ralph_snapshot!(p, args);
    }
    assert!(!p.exists(".ralph"));
    // Every documented backend is runnable; a missing one is named, with how to install it.
    ralph_snapshot!(
        p,
        p.ralph()
            .args(["run", "--backend", "codex"])
            .env("PATH", "/nonexistent")
    );
}

/// Issue 9, item 20: negative and out-of-range flag values got clap's "unexpected argument
/// '-1' found" (as if a flag) or only the type's range; each now says what is wrong and what to
/// give, exit 2, and nothing is created.
#[test]
fn negative_and_out_of_range_flag_values_are_value_errors_with_a_hint() {
    let p = Project::new();
    p.write("PROMPT.md", "task\n");
    for (args, says) in [
        (
            &["--max-iterations", "-1"][..],
            "out of range; give a whole number from 1",
        ),
        (&["--max-iterations", "99999999999"][..], "out of range"),
        (&["--max-tokens", "-3"][..], "out of range"),
        (&["--checkpoint-every", "-2"][..], "from 0"),
        (&["--max-cost", "-5"][..], "not a positive amount"),
        (&["--max-runtime", "-1s"][..], "is negative"),
        (&["--iteration-timeout", "-5m"][..], "is negative"),
    ] {
        let mut full = vec!["run"];
        full.extend_from_slice(args);
        let out = p.run(&full);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(args[0]), "{args:?}: {}", out.stderr);
        assert!(!p.exists(".ralph"), "{args:?} created state");
    }
}

/// Issue 9, item 20: `prompt_via = "file"` without `{prompt_file}` silently appended the path
/// as a last argument.
#[test]
fn prompt_via_file_without_its_placeholder_is_a_located_error() {
    let p = Project::new();
    p.write("PROMPT.md", "task\n");
    p.write(
        "ralph.toml",
        "[agent]\nbackend = \"custom\"\ncommand = [\"./my-agent\", \"--go\"]\nprompt_via = \"file\"\n",
    );
    let out = p.run(&["run"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("ralph.toml:4"), "{}", out.stderr);
    assert!(out.stderr.contains("{prompt_file}"), "{}", out.stderr);
    assert!(!p.exists(".ralph"));
    // With the placeholder it is accepted.
    p.write(
        "ralph.toml",
        "[agent]\nbackend = \"custom\"\ncommand = [\"true\", \"{prompt_file}\"]\nprompt_via = \"file\"\n",
    );
    let ok = p.run(&["run", "--dry-run"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
}

/// `ralph.toml` and the prompt file are read bounded and only when regular: a link to
/// `/dev/zero` errors at once (it grew ralph to 4.2 GB), a FIFO does not block, a huge prompt is
/// refused; each exits 2 with what, where and what to do.
#[test]
fn config_and_prompt_reads_are_bounded_and_regular_files_only() {
    use std::time::Duration;
    let run = |p: &Project, args: &[&str]| {
        let child = p
            .ralph()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        wait_child(child, Duration::from_secs(20))
    };
    let p = Project::new();
    std::os::unix::fs::symlink("/dev/zero", p.path("ralph.toml")).unwrap();
    let out = run(&p, &["run", "--dry-run"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("ralph.toml") && out.stderr.contains("character device"),
        "{}",
        out.stderr
    );

    let script = ralph_testkit::script::Script::new();
    for (name, make) in [("zero", 0), ("fifo", 1), ("huge", 2)] {
        let p = Project::new();
        p.configure_text(&script, "max_iterations = 1");
        let prompt = p.path("PROMPT.md");
        std::fs::remove_file(&prompt).unwrap();
        let want = match make {
            0 => {
                std::os::unix::fs::symlink("/dev/zero", &prompt).unwrap();
                "character device"
            }
            1 => {
                let c = std::ffi::CString::new(prompt.to_str().unwrap()).unwrap();
                // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
                assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
                "named pipe"
            }
            _ => {
                std::fs::write(&prompt, vec![b'a'; 10 * 1024 * 1024 + 1]).unwrap();
                "larger than 10 MiB"
            }
        };
        for args in [&["run", "--dry-run"][..], &["run"]] {
            let out = run(&p, args);
            assert_eq!(out.code, 2, "{name} {args:?}: {}", out.stderr);
            assert!(
                out.stderr.contains("PROMPT.md") && out.stderr.contains(want),
                "{name}: {}",
                out.stderr
            );
            assert!(out.stderr.contains("regular text file"), "{}", out.stderr);
        }
    }
}
