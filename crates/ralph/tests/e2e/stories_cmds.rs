//! The commands around a plan run, through the real binary: `ralph stories status`, `retry`,
//! `land`, `clean`, and `ralph cost --by story`.

use ralph_testkit::script::{ClaudeResult, Script, Step};

use crate::harness::*;

fn repo() -> Project {
    let p = Project::git();
    p.write(".gitignore", "/.ralph/\n");
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-q", "-m", "ignore"]);
    p
}

/// A story whose agent writes `src/<id>.txt`; its criterion checks that file and `extra`.
fn story(id: &str, deps: &[&str], extra_check: &str) -> String {
    let deps: Vec<String> = deps.iter().map(|d| format!("{d:?}")).collect();
    format!(
        "[[story]]\nid = {id:?}\ntitle = \"Story {id}\"\nlayer = \"service\"\n\
         depends_on = [{}]\ndescription = \"Write src/{id}.txt.\"\n\
         [[story.criteria]]\nid = \"AC-1\"\ntext = \"the file exists\"\ncheck = \"auto\"\n\
         run = \"test -f src/{id}.txt{extra_check}\"\n\n",
        deps.join(", ")
    )
}

/// $0.02 an iteration, done on the first: a story's cost is known exactly.
fn paid_agent() -> Script {
    Script::new().default_steps(vec![
        Step::shell("mkdir -p src; echo \"$RALPH_STORY_ID\" > src/$RALPH_STORY_ID.txt"),
        Step::claude_result(ClaudeResult::success("done\nLOOP_COMPLETE").cost_usd(0.02)),
    ])
}

fn json(out: &Out) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

fn story_json<'a>(v: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    v["stories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no story {id} in {v}"))
}

/// A blocks nobody; B can pass only once the test allows it (a file outside the repository);
/// C depends on B.
fn plan_with_a_gated_story(p: &Project) -> String {
    let allow = p.aux.join("allow-B");
    format!(
        "version = 1\nname = \"f\"\n\n{}{}{}",
        story("A", &[], ""),
        story("B", &[], &format!(" && test -f {}", allow.display())),
        story("C", &["B"], "")
    )
}

#[test]
fn status_shows_the_dag_and_retry_runs_a_failed_story_and_its_blocked_dependents_again() {
    let p = repo();
    p.configure(
        &paid_agent(),
        "claude-stream-json",
        "max_iterations = 2",
        "",
    );
    p.write("stories.toml", &plan_with_a_gated_story(&p));
    let out = p.run(&["stories", "run", "--parallel", "2"]);
    assert_eq!(out.code, 7, "{}", out.stderr);

    let status = p.run(&["stories", "status", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let v = json(&status);
    assert_eq!(v["plan"], "f");
    assert_eq!(v["integration_branch"], "ralph/f");
    // No ralph holds the lock: the failed plan run is reported as it ended, not as running.
    assert_ne!(v["state"], "running", "{v}");
    let a = story_json(&v, "A");
    assert_eq!(a["state"], "merged");
    assert_eq!(a["iterations"], 1);
    assert_eq!(a["cost_usd"], 0.02);
    assert_eq!(a["branch"], "ralph/f--A");
    assert_eq!(a["layer"], "service");
    assert_eq!(a["attempts"], 1);
    let b = story_json(&v, "B");
    assert_eq!(b["state"], "failed");
    // The hint names where a story's limit is set, not `ralph run`'s flag.
    let reason = b["reason"].as_str().unwrap();
    assert!(
        reason.contains("raise max_iterations (the story's"),
        "{reason}"
    );
    assert!(!reason.contains("--max-iterations"), "{reason}");
    assert_eq!(b["iterations"], 2);
    assert!((b["cost_usd"].as_f64().unwrap() - 0.04).abs() < 1e-9, "{b}");
    let c = story_json(&v, "C");
    assert_eq!(c["state"], "blocked");
    assert_eq!(c["depends_on"], serde_json::json!(["B"]));
    assert_eq!(c["cost_usd"], 0.0, "nothing ran: a known zero");
    assert_eq!(v["counts"]["merged"], 1);
    assert!((v["cost_usd"].as_f64().unwrap() - 0.06).abs() < 1e-9, "{v}");

    let text = p.run(&["stories", "status"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains("1/3 merged into ralph/f"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("ralph stories retry B"),
        "{}",
        text.stdout
    );

    // Bad requests change nothing.
    let nope = p.run(&["stories", "retry", "NOPE"]);
    assert_eq!(nope.code, 2, "{}", nope.stderr);
    assert!(
        nope.stderr.contains("its stories: A, B, C"),
        "{}",
        nope.stderr
    );
    let merged = p.run(&["stories", "retry", "A"]);
    assert_eq!(merged.code, 2, "{}", merged.stderr);
    assert!(
        merged.stderr.contains("already merged"),
        "{}",
        merged.stderr
    );

    // Retrying the blocked C retries the failed B it waits on.
    let retry = p.run(&["stories", "retry", "C"]);
    assert_eq!(retry.code, 0, "{}", retry.stderr);
    assert!(
        retry.stderr.contains("[B] failed → pending"),
        "{}",
        retry.stderr
    );
    assert!(
        retry.stderr.contains("[C] blocked → pending"),
        "{}",
        retry.stderr
    );
    let v = json(&p.run(&["stories", "status", "--json"]));
    assert_eq!(story_json(&v, "B")["state"], "pending");
    assert_eq!(story_json(&v, "C")["state"], "pending");

    std::fs::write(p.aux.join("allow-B"), "").unwrap();
    let out = p.run(&["stories", "run", "--parallel", "2"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("resumed"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("[A] running"),
        "A merged before: {}",
        out.stderr
    );
    let v = json(&p.run(&["stories", "status", "--json"]));
    assert_eq!(v["state"], "completed", "{v}");
    let b = story_json(&v, "B");
    assert_eq!(b["state"], "merged");
    assert_eq!(b["attempts"], 2);
    // Both attempts' iterations and costs: 2 + 1.
    assert_eq!(b["iterations"], 3);
    assert!((b["cost_usd"].as_f64().unwrap() - 0.06).abs() < 1e-9, "{b}");
    assert_eq!(story_json(&v, "C")["state"], "merged");

    // `ralph cost --by story`: the same figures, one row per story.
    let cost = p.run(&["cost", "--by", "story", "--json"]);
    assert_eq!(cost.code, 0, "{}", cost.stderr);
    let rows = json(&cost)["rows"].as_array().unwrap().clone();
    let row = |k: &str| {
        rows.iter()
            .find(|r| r["key"] == k)
            .unwrap_or_else(|| panic!("no row {k}: {rows:?}"))
            .clone()
    };
    assert!((row("A")["cost_usd"].as_f64().unwrap() - 0.02).abs() < 1e-9);
    assert!((row("B")["cost_usd"].as_f64().unwrap() - 0.06).abs() < 1e-9);
    assert_eq!(row("B")["iterations"], 3);

    let over = p.run(&["stories", "retry", "B"]);
    assert_eq!(over.code, 2, "{}", over.stderr);
    assert!(over.stderr.contains("is over"), "{}", over.stderr);
}

#[test]
fn status_without_a_plan_run_says_so() {
    let p = repo();
    let out = p.run(&["stories", "status", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(json(&out)["state"], "none");
    let out = p.run(&["stories", "status"]);
    assert!(out.stderr.contains("no plan run"), "{}", out.stderr);
    let out = p.run(&["stories", "land"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

fn merged_two_story_plan() -> Project {
    let p = repo();
    p.configure(
        &paid_agent(),
        "claude-stream-json",
        "max_iterations = 2",
        "",
    );
    p.write(
        "stories.toml",
        &format!(
            "version = 1\nname = \"f\"\n\n{}{}",
            story("A", &[], ""),
            story("B", &["A"], "")
        ),
    );
    let out = p.run(&["stories", "run", "--parallel", "2"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    p
}

#[test]
fn land_fast_forwards_the_users_branch_and_its_files_and_keeps_uncommitted_work() {
    let p = merged_two_story_plan();
    p.write("README.md", "the user's uncommitted edit\n");
    let tip = p.git_cmd(&["rev-parse", "ralph/f"]);
    assert!(
        !p.exists("src/A.txt"),
        "the plan run never wrote the user's tree"
    );
    let out = p.run(&["stories", "land"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("main fast-forwarded"), "{}", out.stderr);
    assert_eq!(p.git_cmd(&["rev-parse", "main"]), tip);
    assert_eq!(
        p.git_cmd(&["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/main"
    );
    assert!(p.exists("src/A.txt") && p.exists("src/B.txt"));
    assert_eq!(p.read("README.md"), "the user's uncommitted edit\n");
    let again = p.run(&["stories", "land"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains("nothing to land"), "{}", again.stderr);
}

#[test]
fn land_refuses_when_the_users_branch_moved_and_changes_nothing() {
    let p = merged_two_story_plan();
    p.write("mine.txt", "a commit of the user's\n");
    p.git_cmd(&["add", "mine.txt"]);
    p.git_cmd(&["commit", "-q", "-m", "mine"]);
    let main = p.git_cmd(&["rev-parse", "main"]);
    let out = p.run(&["stories", "land"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("main moved since the plan started (1 commit not in ralph/f)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("git merge ralph/f"), "{}", out.stderr);
    assert_eq!(p.git_cmd(&["rev-parse", "main"]), main);
    // A branch checked out nowhere moves by compare-and-swap.
    p.git_cmd(&["branch", "elsewhere", "main~1"]);
    let out = p.run(&["stories", "land", "--onto", "elsewhere"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        p.git_cmd(&["rev-parse", "elsewhere"]),
        p.git_cmd(&["rev-parse", "ralph/f"])
    );
}

#[test]
fn clean_removes_only_worktrees_free_of_work() {
    let p = repo();
    p.configure(
        &paid_agent(),
        "claude-stream-json",
        "max_iterations = 1",
        "",
    );
    p.write("stories.toml", &plan_with_a_gated_story(&p));
    let out = p.run(&["stories", "run", "--parallel", "2"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    let before = p.git_cmd(&["worktree", "list", "--porcelain"]);
    assert!(before.contains(".ralph/worktrees/B"), "{before}");
    // B failed: its branch holds unmerged work, and an untracked file waits in its worktree.
    std::fs::write(p.root.join(".ralph/worktrees/B/notes.txt"), "keep me").unwrap();

    let dry = p.run(&["stories", "clean", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stderr.contains("would remove"), "{}", dry.stderr);
    assert_eq!(p.git_cmd(&["worktree", "list", "--porcelain"]), before);

    let out = p.run(&["stories", "clean"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("kept .ralph/worktrees/B: 1 uncommitted change"),
        "{}",
        out.stderr
    );
    let after = p.git_cmd(&["worktree", "list", "--porcelain"]);
    let ours: Vec<&str> = after
        .lines()
        .filter(|l| l.starts_with("worktree ") && l.contains(".ralph/worktrees"))
        .collect();
    assert_eq!(ours.len(), 1, "only B's stays: {after}");
    assert_eq!(p.read(".ralph/worktrees/B/notes.txt"), "keep me");

    // Without the untracked file B is clean, but its branch is not merged: still kept.
    std::fs::remove_file(p.root.join(".ralph/worktrees/B/notes.txt")).unwrap();
    let out = p.run(&["stories", "clean"]);
    assert!(
        out.stderr.contains("ralph/f--B has work not merged"),
        "{}",
        out.stderr
    );
    assert!(p.exists(".ralph/worktrees/B/src/B.txt"));
    // Every branch is still there.
    for b in ["ralph/f", "ralph/f--A", "ralph/f--B"] {
        assert!(
            !p.git_cmd(&["rev-parse", "--verify", "-q", b]).is_empty(),
            "{b}"
        );
    }
}

/// On a terminal (util-linux `script` gives ralph a pty) a live line sits under the story
/// lines, redrawn in place; piped, stderr has none of it.
#[test]
fn a_live_summary_line_is_drawn_on_a_terminal_and_only_there() {
    let p = repo();
    p.configure(
        &paid_agent(),
        "claude-stream-json",
        "max_iterations = 2",
        "",
    );
    p.write(
        "stories.toml",
        &format!(
            "version = 1\nname = \"f\"\n\n{}{}{}",
            story("A", &[], ""),
            story("B", &[], ""),
            story("C", &["A"], "")
        ),
    );
    let out = std::process::Command::new("script")
        .args([
            "-q",
            "-e",
            "-c",
            &format!("{RALPH} stories run --parallel 2"),
            "/dev/null",
        ])
        .current_dir(&p.root)
        .env("HOME", &p.home)
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("running 2 · queued 0 · merged 0/3"),
        "{shown:?}"
    );
    assert!(shown.contains("merged 2/3"), "{shown:?}");
    assert!(
        shown.contains("\r\u{1b}[2K[A] merged"),
        "redrawn in place: {shown:?}"
    );
    assert!(shown.contains("· $0.0"), "with the cost: {shown:?}");
    // The last thing on screen is the summary, not a stale live line.
    assert!(shown.trim_end().ends_with("ralph/f--C"), "{shown:?}");

    let p2 = repo();
    p2.configure(
        &paid_agent(),
        "claude-stream-json",
        "max_iterations = 2",
        "",
    );
    p2.write(
        "stories.toml",
        &format!("version = 1\nname = \"f\"\n\n{}", story("A", &[], "")),
    );
    let piped = p2.run(&["stories", "run"]);
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    assert!(!piped.stderr.contains("\u{1b}"), "{:?}", piped.stderr);
    assert!(!piped.stderr.contains("queued 0"), "{:?}", piped.stderr);
}
