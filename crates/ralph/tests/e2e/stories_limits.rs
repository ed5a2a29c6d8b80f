//! STORIES.md rule 7 through the real binary: per-story and plan budgets, and one usage limit
//! shared by every story on the same backend.

use std::time::{SystemTime, UNIX_EPOCH};

use ralph_testkit::fake_agent_path;
use ralph_testkit::script::{ClaudeResult, Script, Step};

use crate::harness::*;

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn repo() -> Project {
    let p = Project::git();
    p.write(".gitignore", "/.ralph/\n");
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-q", "-m", "ignore"]);
    p
}

fn write_own_file() -> Step {
    Step::shell("mkdir -p src; echo \"$RALPH_STORY_ID\" > src/$RALPH_STORY_ID.txt")
}

/// $0.02 an iteration; done (the completion marker) on the third.
fn three_paid_iterations() -> Script {
    let working = || {
        vec![
            write_own_file(),
            Step::claude_result(ClaudeResult::success("working").cost_usd(0.02)),
        ]
    };
    Script::new()
        .on_call(1, working())
        .on_call(2, working())
        .default_steps(vec![
            write_own_file(),
            Step::claude_result(ClaudeResult::success("done\nLOOP_COMPLETE").cost_usd(0.02)),
        ])
}

fn story(id: &str, extra: &str) -> String {
    format!(
        "[[story]]\nid = \"{id}\"\ntitle = \"{id}\"\ndescription = \"Write src/{id}.txt.\"\n\
         [[story.criteria]]\nid = \"AC\"\ntext = \"its file\"\nrun = \"test -f src/{id}.txt\"\n\
         {extra}\n"
    )
}

#[test]
fn a_story_over_its_own_budget_fails_alone_and_the_others_merge() {
    let p = repo();
    p.configure(
        &three_paid_iterations(),
        "claude-stream-json",
        "max_iterations = 5",
        "",
    );
    let plan = format!(
        "version = 1\nname = \"f\"\n\n{}{}{}",
        story("A", ""),
        story("B", "[story.budget]\nmax_cost_usd = 0.03\n"),
        story("C", "")
    );
    p.write("stories.toml", &plan);
    let out = p.run(&["stories", "run", "--parallel", "3"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(out.stderr.contains("[A] merged"), "{}", out.stderr);
    assert!(out.stderr.contains("[C] merged"), "{}", out.stderr);
    assert!(
        out.stderr.contains("[B] failed") && out.stderr.contains("cost budget"),
        "{}",
        out.stderr
    );
    // B never spent past its own cap; A and C spent what their agents reported.
    let cost = |id: &str| -> f64 {
        p.db()
            .query_row(
                "SELECT SUM(cost_usd) FROM runs WHERE scope = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert!(cost("B") <= 0.03 + 1e-9, "{}", cost("B"));
    assert!((cost("A") - 0.06).abs() < 1e-9, "{}", cost("A"));
}

#[test]
fn a_plan_budget_stops_the_plan_with_exit_5_and_what_merged_stays_merged() {
    let p = repo();
    p.configure(
        &three_paid_iterations(),
        "claude-stream-json",
        "max_iterations = 5",
        "",
    );
    let plan = format!(
        "version = 1\nname = \"f\"\n\n{}{}{}",
        story("A", ""),
        story("B", ""),
        story("C", "")
    );
    p.write("stories.toml", &plan);
    // One story costs $0.06: the second cannot finish under $0.09.
    let out = p.run(&["stories", "run", "--parallel", "1", "--max-cost", "0.09"]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(out.stderr.contains("[A] merged"), "{}", out.stderr);
    assert!(
        out.stderr.contains("the plan run's budget stopped it"),
        "{}",
        out.stderr
    );
    let files = p.git_cmd(&["ls-tree", "-r", "--name-only", "ralph/f", "src/"]);
    assert_eq!(files.trim(), "src/A.txt");
    let spent: f64 = p
        .db()
        .query_row("SELECT SUM(cost_usd) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert!(spent <= 0.09 + 1e-9, "spent {spent}");
}

#[test]
fn a_usage_limit_hit_by_one_story_pauses_the_other_stories_on_that_backend_until_the_reset() {
    // Unsandboxed: B's agent reads ralph's database to see the limit recorded.
    let p = repo().without_sandbox();
    let aux = p.aux.clone();
    let reset = now_s().ceil() as u64 + 3;
    // A hits the limit on its first call; B's first call waits until ralph has recorded A's
    // wait for the reset (its `retry.scheduled` event: the limit is shared before that), then
    // asks for another iteration, which must not start before the reset. (Waiting only for A's
    // agent to have answered raced: under load B's loop could reach its next iteration before
    // A's loop had read that answer.)
    let db = p.root.join(".ralph/ralph.db");
    let recorded = format!(
        "python3 -c \"import sqlite3,sys; c=sqlite3.connect('file:{}?mode=ro', uri=True); \
         sys.exit(0 if c.execute(\\\"SELECT 1 FROM events WHERE kind='retry.scheduled'\\\").fetchone() else 1)\"",
        db.display()
    );
    let a = Script::new()
        .on_call(
            1,
            vec![
                Step::shell(format!("touch {}/limited", aux.display())),
                Step::claude_result(
                    ClaudeResult::error(format!("Claude AI usage limit reached|{reset}"))
                        .api_error_status(429),
                ),
                Step::exit(1),
            ],
        )
        .default_steps(vec![
            write_own_file(),
            Step::claude_result(ClaudeResult::success("done\nLOOP_COMPLETE")),
        ]);
    let b = Script::new()
        .on_call(
            1,
            vec![
                Step::shell(format!(
                    "until [ -e {}/limited ] && {recorded} 2>/dev/null; do sleep 0.02; done",
                    aux.display()
                )),
                Step::claude_result(ClaudeResult::success("one more step needed")),
            ],
        )
        .default_steps(vec![
            Step::shell(format!("date +%s.%N > {}/b2.start", aux.display())),
            write_own_file(),
            Step::claude_result(ClaudeResult::success("done\nLOOP_COMPLETE")),
        ]);
    p.configure(&a, "claude-stream-json", "max_iterations = 4", "");
    let b_script = aux.join("b.json");
    b.write_to(&b_script).unwrap();
    let b_agent = format!(
        "[story.agent]\ncommand = [{:?}, {:?}]\n",
        fake_agent_path().display().to_string(),
        b_script.display().to_string()
    );
    let plan = format!(
        "version = 1\nname = \"f\"\n\n{}{}",
        story("A", ""),
        story("B", &b_agent)
    );
    p.write("stories.toml", &plan);
    let out = p.run(&["stories", "run", "--parallel", "2"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let b2: f64 = std::fs::read_to_string(aux.join("b2.start"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        b2 >= reset as f64 - 0.05,
        "B's next call started at {b2}, before the shared reset at {reset}"
    );
}
