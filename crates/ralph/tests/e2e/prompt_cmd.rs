//! `ralph prompt log|show|diff|stats`: what ralph sent each iteration, read back from the
//! database and the prompt archive, and ralph's own share of every prompt.

use ralph_testkit::script::{Script, Step};
use serde_json::Value;

use crate::harness::*;

/// A realistic task prompt of about 4 KB (several paragraphs, a list, a code block).
const TASK_4K: &str = include_str!("../fixtures/task_4k.md");

/// The bench's 3-line task prompt.
const TASK_3_LINES: &str = "Add a greeting to hello.txt.\nKeep it short.\nRun the tests.\n";

fn ok(out: &Out) {
    assert_eq!(
        out.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
}

fn json(out: &Out) -> Value {
    ok(out);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

/// The `prompt log` line of iteration `n`.
fn log_line(stdout: &str, n: u32) -> &str {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&n.to_string()))
        .unwrap_or_else(|| panic!("no line for iteration {n}:\n{stdout}"))
}

/// Three iterations; the agent appends to PROMPT.md during iteration 2, so iteration 3 sends a
/// new version of the user's prompt.
fn edited_run() -> Project {
    let p = Project::new();
    let script = Script::new()
        .default_steps(vec![Step::print("working on it")])
        .on_call(
            2,
            vec![
                Step::append("PROMPT.md", "\nAlso do X.\n"),
                Step::print("added a requirement"),
            ],
        );
    p.configure_text(&script, "max_iterations = 3");
    let out = p.run(&["run"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    p
}

#[test]
fn log_numbers_prompt_versions_and_marks_the_edit() {
    let p = edited_run();
    let out = ralph_snapshot!(p, ["prompt", "log"]);
    // The human lines agree with the JSON rows.
    let lines: Vec<&str> = (1..=3).map(|n| log_line(&out.stdout, n)).collect();

    let log = json(&p.run(&["prompt", "log", "--json"]));
    let rows = log.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{log}");
    let versions: Vec<_> = rows.iter().map(|r| r["prompt_version"].as_u64()).collect();
    assert_eq!(versions, [Some(1), Some(1), Some(2)]);
    let edited: Vec<_> = rows.iter().map(|r| r["prompt_edited"].as_bool()).collect();
    assert_eq!(edited, [Some(false), Some(false), Some(true)]);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["iteration"], i as u64 + 1);
        let sha = row["prompt_sha256"].as_str().unwrap();
        assert_eq!(sha.len(), 64);
        assert!(lines[i].contains(&sha[..8]), "{} / {sha}", lines[i]);
        let (total, user, ralph) = (
            row["prompt_bytes"].as_u64().unwrap(),
            row["user_prompt_bytes"].as_u64().unwrap(),
            row["ralph_bytes"].as_u64().unwrap(),
        );
        assert_eq!(ralph, total - user, "{row}");
        assert!(lines[i].contains(&format!(" {total} ")), "{}", lines[i]);
        assert!(lines[i].contains(&format!(" {ralph} ")), "{}", lines[i]);
    }
    assert_eq!(
        rows[0]["user_prompt_bytes"].as_u64(),
        Some("Make the tests pass.".len() as u64)
    );
    assert_eq!(
        rows[2]["user_prompt_bytes"].as_u64(),
        Some("Make the tests pass.\n\nAlso do X.".len() as u64)
    );
    assert_eq!(rows[0]["ralph_bytes"], rows[2]["ralph_bytes"]);
}

#[test]
fn show_prints_the_archived_prompt_verbatim_and_diff_compares_two() {
    let p = edited_run();
    let run = p.latest_run_id();

    let out = p.run(&["prompt", "show", "2"]);
    ok(&out);
    assert_eq!(out.stdout, p.artifact(2, "prompt.md"));
    assert_eq!(
        out.stdout,
        p.read(&format!(".ralph/runs/{run}/0002/prompt.md"))
    );
    // --run is global: before or after the subcommand.
    let explicit = p.run(&["prompt", "--run", &run, "show", "1"]);
    ok(&explicit);
    assert_eq!(explicit.stdout, p.artifact(1, "prompt.md"));
    let after = p.run(&["prompt", "show", "1", "--run", &run]);
    assert_eq!(after.stdout, explicit.stdout);
    let shown = json(&p.run(&["prompt", "show", "3", "--json"]));
    assert_eq!(shown["iteration"], 3);
    assert_eq!(shown["prompt"].as_str(), Some(&*p.artifact(3, "prompt.md")));

    // ralph's fixed instructions did not change between 1 and 3: they are context, not
    // changes.
    ralph_snapshot!(p, ["prompt", "diff", "1", "3"]);
    // The prompt is the same between 1 and 2 except for the iteration line.
    ralph_snapshot!(p, ["prompt", "diff", "1", "2"]);
    // Identical prompts: no diff, still exit 0 (like `git diff` without --exit-code).
    ralph_snapshot!(p, ["prompt", "diff", "2", "2"]);
    let same = json(&p.run(&["prompt", "diff", "2", "2", "--json"]));
    assert_eq!(same["identical"], true);
    assert_eq!(same["diff"], "");
    let differ = json(&p.run(&["prompt", "diff", "1", "3", "--json"]));
    assert_eq!(differ["identical"], false);
    assert!(differ["diff"].as_str().unwrap().contains("+Also do X."));
}

#[test]
fn stats_measure_ralphs_overhead_and_the_stable_prefix() {
    let p = edited_run();
    let stats = json(&p.run(&["prompt", "stats", "--json"]));
    assert_eq!(stats["tokenizer"], "o200k_base");
    let its = stats["iterations"].as_array().unwrap();
    assert_eq!(its.len(), 3, "{stats}");
    for it in its {
        assert_eq!(it["archived"], true, "{it}");
        assert_eq!(it["feedback"], false, "{it}");
        let bytes = it["ralph_bytes"].as_u64().unwrap();
        let tokens = it["ralph_tokens"].as_u64().unwrap();
        assert!(bytes <= 600, "ralph added {bytes} bytes: {it}");
        assert!(tokens <= 150, "ralph added {tokens} tokens: {it}");
        assert!(tokens > 0 && tokens < bytes, "{it}");
    }
    assert!(its[0]["prefix_share"].is_null());
    // Unchanged PROMPT.md: everything up to the iteration number is reused.
    assert!(its[1]["prefix_share"].as_f64().unwrap() >= 0.95, "{stats}");
    // Editing the user's prompt near its start invalidates almost everything after the edit.
    assert!(its[2]["prefix_share"].as_f64().unwrap() < 0.1, "{stats}");
    assert_eq!(stats["min_prefix_share"]["iteration"], 3);
    let total = &stats["total"];
    let sum = |key: &str| its.iter().map(|i| i[key].as_u64().unwrap()).sum::<u64>();
    for key in [
        "prompt_bytes",
        "ralph_bytes",
        "prompt_tokens",
        "ralph_tokens",
    ] {
        assert_eq!(total[key].as_u64(), Some(sum(key)), "{key}: {stats}");
    }
    // Bytes agree with what the loop recorded.
    let log = json(&p.run(&["prompt", "log", "--json"]));
    for (s, l) in its.iter().zip(log.as_array().unwrap()) {
        assert_eq!(s["prompt_bytes"], l["prompt_bytes"]);
        assert_eq!(s["ralph_bytes"], l["ralph_bytes"]);
    }

    ralph_snapshot!(p, ["prompt", "stats"]);
}

/// The numbers the bench prints, for a realistic task prompt and a 3-line one.
#[test]
fn stats_for_a_4kb_and_a_3_line_task_prompt() {
    for (name, task) in [("4 KB", TASK_4K), ("3 lines", TASK_3_LINES)] {
        let p = Project::new();
        p.write("PROMPT.md", task);
        p.configure_text(
            &Script::new().default_steps(vec![Step::print("did a step")]),
            "max_iterations = 3",
        );
        let out = p.run(&["run"]);
        assert_eq!(out.code, 3, "{name}: {}", out.stderr);
        let stats = json(&p.run(&["prompt", "stats", "--json"]));
        let its = stats["iterations"].as_array().unwrap();
        assert_eq!(its.len(), 3, "{name}: {stats}");
        let user = task.trim_end().len() as u64;
        for it in its {
            assert_eq!(it["feedback"], false, "{name}: {it}");
            let bytes = it["ralph_bytes"].as_u64().unwrap();
            assert_eq!(
                it["prompt_bytes"].as_u64(),
                Some(user + bytes),
                "{name}: {it}"
            );
            assert!(bytes <= 600, "{name}: ralph added {bytes} bytes");
            let tokens = it["ralph_tokens"].as_u64().unwrap();
            assert!(tokens <= 150, "{name}: ralph added {tokens} tokens");
        }
        for it in &its[1..] {
            let share = it["prefix_share"].as_f64().unwrap();
            assert!(share >= 0.95, "{name}: prefix share {share}: {it}");
        }
        let min = stats["min_prefix_share"]["share"].as_f64().unwrap();
        assert!(min >= 0.95, "{name}: {stats}");
        if name == "4 KB" {
            assert!(user >= 3500, "the realistic prompt is {user} bytes");
            assert!(min >= 0.99, "{name}: {stats}");
        }
    }
}

#[test]
fn feedback_is_flagged_and_counted_as_ralphs() {
    let p = Project::new();
    p.configure(
        &Script::new().default_steps(vec![Step::print("did a step")]),
        "text",
        "max_iterations = 2",
        "[[gates]]\nname = \"tests\"\nrun = \"echo 'test add::works failed: expected 3, got 4'; exit 1\"\nwhen = \"iteration\"\n",
    );
    let out = p.run(&["run"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let stats = json(&p.run(&["prompt", "stats", "--json"]));
    let its = stats["iterations"].as_array().unwrap();
    assert_eq!(its[0]["feedback"], false, "{stats}");
    assert_eq!(its[1]["feedback"], true, "{stats}");
    assert!(
        its[1]["ralph_bytes"].as_u64() > its[0]["ralph_bytes"].as_u64(),
        "{stats}"
    );
    assert!(
        p.artifact(2, "prompt.md").contains("expected 3, got 4"),
        "the feedback is in ralph's part"
    );
    ralph_snapshot!(p, ["prompt", "stats"]);
}

#[test]
fn errors_name_what_is_missing_and_exit_2() {
    // No database yet.
    let p = Project::new();
    for args in [
        &["prompt", "log"][..],
        &["prompt", "show", "1"],
        &["prompt", "diff", "1", "2"],
        &["prompt", "stats", "--json"],
    ] {
        ralph_snapshot!(p, args);
    }
    assert!(!p.exists(".ralph"), "reading must not create state");

    let p = edited_run();
    ralph_snapshot!(
        p,
        ["prompt", "log", "--run", "20990101-000000-beef"],
        filters = [("20990101-000000-beef", "[UNKNOWN_RUN_ID]")]
    );

    for args in [
        &["prompt", "show", "9"][..],
        &["prompt", "show", "0"],
        &["prompt", "diff", "1", "9"],
        &["prompt", "diff", "9", "1", "--json"],
    ] {
        ralph_snapshot!(p, args);
    }

    // A subcommand is required; an iteration must be a number.
    ralph_snapshot!(p, ["prompt"]);
    ralph_snapshot!(p, ["prompt", "show", "two"]);
}

/// Issue 9, item 20: the README's figure for what ralph adds to a prompt is the one ralph adds
/// with the default settings (the prompt benchmark's first case), not an older one.
#[test]
fn the_readme_states_the_prompt_overhead_ralph_really_adds() {
    let p = Project::new();
    let task = "Add a greeting to hello.txt.\nKeep it short.\nRun the tests.\n";
    p.configure_text(&Script::new(), "");
    p.write("PROMPT.md", task);
    let out = p.run(&["run", "--dry-run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let header = out
        .stdout
        .lines()
        .find(|l| l.starts_with("--- prompt for iteration 1 ("))
        .unwrap();
    let total: usize = header
        .trim_start_matches("--- prompt for iteration 1 (")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // As the benchmark counts it: the task as it appears in the prompt (trailing newline trimmed).
    let added = total - task.trim_end().len();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    assert!(
        readme.contains(&format!("ralph adds {added} bytes")),
        "README.md should say \"ralph adds {added} bytes\""
    );
}
