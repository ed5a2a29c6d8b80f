//! `ralph checkpoints` and `ralph rollback`: listing a run's checkpoints, dry runs, restoring a
//! checkpoint's tree exactly without touching the user's git state, undoing a rollback, and
//! refusing while a run is active.

use std::process::Command;
use std::time::Duration;

use ralph_testkit::script::{Script, Step};

use crate::harness::*;

/// Everything of the user's git state a rollback must leave alone.
#[derive(Debug, PartialEq, Eq)]
struct UserState {
    head: String,
    branch: String,
    index: Vec<u8>,
    staged: String,
    stash: String,
    user_refs: String,
    ignored: String,
}

fn user_state(p: &Project) -> UserState {
    UserState {
        head: p.git_cmd(&["rev-parse", "HEAD"]),
        branch: p.git_cmd(&["symbolic-ref", "HEAD"]),
        index: std::fs::read(p.path(".git/index")).unwrap(),
        staged: p.git_cmd(&["ls-files", "-s"]),
        stash: p.git_cmd(&["stash", "list", "--format=%H %gs"]),
        user_refs: p.git_cmd(&[
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/heads",
            "refs/tags",
            "refs/stash",
        ]),
        ignored: p.read("debug.log"),
    }
}

/// The tree of the working tree as it is now (tracked and untracked-not-ignored files), built
/// in a throw-away index outside the project: what a checkpoint taken now would record.
fn worktree_tree(p: &Project) -> String {
    let index = p.aux_path("probe-index");
    let _ = std::fs::remove_file(&index);
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(&p.root)
            .env("HOME", &p.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_INDEX_FILE", &index)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    git(&["add", "-A"]);
    git(&["write-tree"])
}

fn tree_of(p: &Project, rev: &str) -> String {
    p.git_cmd(&["rev-parse", &format!("{rev}^{{tree}}")])
        .trim()
        .to_owned()
}

fn listing(p: &Project, tree: &str) -> String {
    p.git_cmd(&["ls-tree", "-r", tree])
}

fn ralph_refs(p: &Project) -> String {
    p.git_cmd(&["for-each-ref", "--format=%(refname)", "refs/ralph/"])
}

/// The command after "undo: ", split into ralph's arguments.
fn undo_args(out: &Out) -> Vec<String> {
    let line = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("undo: "))
        .unwrap_or_else(|| panic!("no undo line in:\n{}", out.stdout));
    let mut words = line.split_whitespace().map(str::to_owned);
    assert_eq!(words.next().as_deref(), Some("ralph"), "{line}");
    words.collect()
}

/// A git project with user state (a staged file, a stash, an ignored file) and a finished
/// 3-iteration run whose iterations add, modify and delete files.
fn project_with_a_run() -> Project {
    let p = Project::git();
    p.write(".gitignore", "*.log\n");
    p.git_cmd(&["add", ".gitignore"]);
    p.git_cmd(&["commit", "-q", "-m", "ignore logs"]);
    p.write("stashme.txt", "in the stash\n");
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
    p.write("staged.txt", "staged by the user\n");
    p.git_cmd(&["add", "staged.txt"]);
    p.write("debug.log", "ignored, the user's\n");

    let script = Script::new()
        .on_call(
            1,
            vec![
                Step::write("a.txt", "one\n"),
                Step::write("dir/b.txt", "b\n"),
                Step::print("step 1"),
            ],
        )
        .on_call(
            2,
            vec![
                Step::append("a.txt", "two\n"),
                Step::delete("dir/b.txt"),
                Step::write("c with space.txt", "c\n"),
                Step::print("step 2"),
            ],
        )
        .on_call(
            3,
            vec![
                Step::write("deep/er/e.txt", "e\n"),
                Step::delete("README.md"),
                Step::append("a.txt", "three\n"),
                Step::print("LOOP_COMPLETE"),
            ],
        );
    p.configure_text(&script, "max_iterations = 3");
    let out = p.run(&["run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    p
}

#[test]
fn checkpoints_are_listed_and_rollbacks_restore_exactly_and_can_be_undone() {
    let p = project_with_a_run();
    let run = p.latest_run_id();
    let cp = |n: u32| format!("refs/ralph/checkpoints/{run}/{n:04}");

    // The list: iterations 0..=3 with their changes against the previous checkpoint.
    ralph_snapshot!(p, ["checkpoints"]);
    let json = p.run(&["checkpoints", "--json"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["run_id"], run.as_str());
    let cps = v["checkpoints"].as_array().unwrap();
    let names: Vec<&str> = cps.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["0000", "0001", "0002", "0003"]);
    for (n, c) in cps.iter().enumerate() {
        assert_eq!(c["iteration"], n);
        assert_eq!(c["ref"], cp(n as u32).as_str());
        assert_eq!(
            c["commit"],
            p.git_cmd(&["rev-parse", &cp(n as u32)]).trim(),
            "{c}"
        );
    }
    // Iteration 1 added a.txt and dir/b.txt; 2 changed a.txt, deleted b, added c; 3 added e,
    // deleted README.md and changed a.txt.
    let files: Vec<&serde_json::Value> = cps.iter().map(|c| &c["files_changed"]).collect();
    assert_eq!(
        files,
        [&serde_json::Value::Null, &2.into(), &3.into(), &3.into()]
    );

    let user = user_state(&p);
    let before = worktree_tree(&p);
    assert_eq!(before, tree_of(&p, &cp(3)), "nothing changed since the run");
    let refs = ralph_refs(&p);

    // Dry run: the files it would change, and no change at all.
    ralph_snapshot!(p, ["rollback", "1", "--dry-run"]);
    assert_eq!(worktree_tree(&p), before);
    assert_eq!(ralph_refs(&p), refs);
    assert_eq!(user_state(&p), user);

    // Unknown iterations are refused with the available ones.
    ralph_snapshot!(p, ["rollback", "9"]);
    assert_eq!(worktree_tree(&p), before);

    // The rollback: iteration 1's tree exactly, the user's git state untouched.
    let out = ralph_snapshot!(p, ["rollback", "1"]);
    assert_eq!(listing(&p, &worktree_tree(&p)), listing(&p, &cp(1)));
    assert_eq!(worktree_tree(&p), tree_of(&p, &cp(1)));
    assert_eq!(user_state(&p), user);
    assert_eq!(p.read("a.txt"), "one\n");
    assert_eq!(p.read("dir/b.txt"), "b\n");
    assert!(!p.exists("c with space.txt"));
    assert!(!p.exists("deep"), "emptied directories are removed");
    let undo = undo_args(&out);
    assert_eq!(undo.len(), 2, "{undo:?}");
    assert_eq!(undo[0], "rollback");
    assert!(undo[1].starts_with("rollback-"), "{undo:?}");
    let saved = format!("refs/ralph/checkpoints/{run}/{}", undo[1]);
    assert!(
        out.stdout
            .contains(&format!("the previous state is saved as {saved}")),
        "{}",
        out.stdout
    );
    assert_eq!(tree_of(&p, &saved), before);
    assert_eq!(
        p.git_cmd(&["log", "-1", "--format=%s", &saved]).trim(),
        "ralph checkpoint: before rollback to iteration 1"
    );

    // The rollback checkpoint is listed.
    let list = p.run(&["checkpoints", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let last = v["checkpoints"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["name"], undo[1].as_str());
    assert_eq!(last["kind"], "rollback");
    assert_eq!(last["iteration"], serde_json::Value::Null);
    ralph_snapshot!(p, ["checkpoints"]);

    // Rolling back the rollback restores the state before it exactly.
    let args: Vec<&str> = undo.iter().map(String::as_str).collect();
    let back = ralph_snapshot!(p, args);
    assert_eq!(worktree_tree(&p), before);
    assert_eq!(listing(&p, &before), listing(&p, &cp(3)));
    assert_eq!(user_state(&p), user);
    assert!(p.exists("deep/er/e.txt") && !p.exists("README.md"));
    assert!(back.stdout.contains(&undo[1]), "{}", back.stdout);
    // ...and is itself undoable.
    let undo_again = undo_args(&back);
    assert_ne!(undo_again, undo);

    // Iteration 0: the state before the run.
    let zero = p.run(&["rollback", "0", "--json"]);
    assert_eq!(zero.code, 0, "{}", zero.stderr);
    assert_eq!(worktree_tree(&p), tree_of(&p, &cp(0)));
    assert_eq!(p.read("README.md"), "hello\n");
    assert!(!p.exists("a.txt") && !p.exists("dir") && !p.exists("deep"));
    assert_eq!(user_state(&p), user);
    let v: serde_json::Value = serde_json::from_str(&zero.stdout).unwrap();
    assert_eq!(v["run_id"], run.as_str());
    assert_eq!(v["dry_run"], false);
    assert_eq!(v["target"]["iteration"], 0);
    assert_eq!(v["target"]["ref"], cp(0).as_str());
    let mut deleted: Vec<&str> = v["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    deleted.sort();
    assert_eq!(deleted, ["a.txt", "c with space.txt", "deep/er/e.txt"]);
    assert_eq!(v["written"], serde_json::json!(["README.md"]));
    let saved0 = v["saved"]["ref"].as_str().unwrap();
    assert_eq!(tree_of(&p, saved0), before);
    assert_eq!(
        v["undo"],
        format!("ralph rollback {}", saved0.rsplit('/').next().unwrap()).as_str()
    );

    // Already there: nothing to do, nothing saved.
    let refs = ralph_refs(&p);
    ralph_snapshot!(p, ["rollback", "0"]);
    assert_eq!(ralph_refs(&p), refs);
}

#[test]
fn rollback_is_refused_while_a_run_is_active() {
    let p = Project::git();
    let script = Script::new().default_steps(vec![
        Step::write("work.txt", "agent at work\n"),
        Step::pid_file(p.aux_path("agent.pid")),
        Step::hang(),
    ]);
    p.configure_text(&script, "");
    let child = p.spawn(&["run"]);
    let ralph_pid = child.id();
    ralph_testkit::proc::wait_for_pid_file(p.aux_path("agent.pid"), Duration::from_secs(30))
        .unwrap();
    let before = worktree_tree(&p);
    let refs = ralph_refs(&p);

    let holder = format!(r"\bPID {ralph_pid}\b");
    for args in [&["rollback", "0"][..], &["rollback", "0", "--dry-run"]] {
        ralph_snapshot!(p, args, filters = [(holder.as_str(), "PID [RALPH_PID]")]);
    }
    assert_eq!(worktree_tree(&p), before);
    assert_eq!(ralph_refs(&p), refs);
    assert_eq!(p.read("work.txt"), "agent at work\n");

    ralph_testkit::proc::kill(ralph_pid as i32, libc::SIGINT).unwrap();
    assert_eq!(wait_child(child, Duration::from_secs(30)).code, 130);
}

#[test]
fn outside_a_repository_or_without_checkpoints_the_commands_say_so() {
    let p = Project::new();
    for args in [&["rollback", "1"][..], &["checkpoints"]] {
        ralph_snapshot!(p, args);
    }
    let g = Project::git();
    ralph_snapshot!(g, ["checkpoints"]);
    ralph_snapshot!(g, ["rollback", "1"]);
    ralph_snapshot!(g, ["checkpoints", "--run", "nope"]);
}
