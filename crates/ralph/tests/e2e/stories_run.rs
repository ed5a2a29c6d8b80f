//! `ralph stories run` end to end: real git worktrees, the fake agent as every story's agent,
//! the merge queue landing on the integration branch.

use std::collections::BTreeMap;

use ralph_testkit::{Script, Step};

use crate::harness::*;

/// One `[[story]]` whose agent writes `src/<id>.txt`; its criterion checks the file.
pub(crate) fn story(id: &str, deps: &[&str]) -> String {
    let deps: Vec<String> = deps.iter().map(|d| format!("{d:?}")).collect();
    format!(
        "[[story]]\nid = {id:?}\ntitle = \"Story {id}\"\nlayer = \"service\"\n\
         depends_on = [{}]\naffected_paths = [\"src/{id}.txt\"]\n\
         description = \"Write src/{id}.txt.\"\n\
         [[story.criteria]]\nid = \"AC-1\"\ntext = \"the file exists\"\ncheck = \"auto\"\n\
         run = \"test -f src/{id}.txt\"\n\n",
        deps.join(", ")
    )
}

/// The fake agent of every story: records when it ran, writes its story's file, claims done.
fn story_agent(p: &Project, sleep_ms: u64) -> Script {
    let times = p.aux.join("times");
    std::fs::create_dir_all(&times).unwrap();
    Script::new().default_steps(vec![
        Step::shell(format!(
            "date +%s.%N > {t}/$RALPH_STORY_ID.start; mkdir -p src; \
             echo \"$RALPH_STORY_ID\" > src/$RALPH_STORY_ID.txt",
            t = times.display()
        )),
        Step::sleep_ms(sleep_ms),
        Step::shell(format!(
            "date +%s.%N > {t}/$RALPH_STORY_ID.end",
            t = times.display()
        )),
        Step::print("done. LOOP_COMPLETE"),
        Step::print("LOOP_COMPLETE"),
    ])
}

/// A 12-story plan: a diamond (A → B, C → D), a chain (E → F → G → H) and four
/// independent stories.
fn twelve_story_plan() -> String {
    let mut plan = "version = 1\nname = \"feature\"\n\n".to_string();
    let specs: &[(&str, &[&str])] = &[
        ("A", &[]),
        ("B", &["A"]),
        ("C", &["A"]),
        ("D", &["B", "C"]),
        ("E", &[]),
        ("F", &["E"]),
        ("G", &["F"]),
        ("H", &["G"]),
        ("I", &[]),
        ("J", &[]),
        ("K", &[]),
        ("L", &[]),
    ];
    for (id, deps) in specs {
        plan.push_str(&story(id, deps));
    }
    plan
}

/// Most stories whose [start, end] intervals overlap at one moment.
fn max_concurrency(p: &Project) -> usize {
    let dir = p.aux.join("times");
    let mut spans: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (id, what) = name.split_once('.').unwrap();
        let t: f64 = std::fs::read_to_string(&path)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let span = spans.entry(id.to_string()).or_insert((0.0, 0.0));
        if what == "start" {
            span.0 = t;
        } else {
            span.1 = t;
        }
    }
    spans
        .values()
        .map(|&(s, _)| spans.values().filter(|&&(a, b)| a <= s && s < b).count())
        .max()
        .unwrap_or(0)
}

#[test]
fn a_twelve_story_plan_merges_every_story_four_at_once_and_never_touches_the_users_branch() {
    let p = Project::git();
    p.write(".gitignore", "/.ralph/\n");
    p.write("stash-me.txt", "v1\n");
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-q", "-m", "user work"]);
    // The user's uncommitted change and a stash: both must be exactly as they were.
    p.write("stash-me.txt", "v2\n");
    p.git_cmd(&["stash", "-q"]);
    p.write("stash-me.txt", "v3 uncommitted\n");
    let user_head = p.git_cmd(&["rev-parse", "HEAD"]);
    let stash = p.git_cmd(&["stash", "list"]);
    let script = story_agent(&p, 400);
    p.configure(&script, "text", "max_iterations = 3", "");
    p.write("stories.toml", &twelve_story_plan());

    let out = p.run(&["stories", "run", "--parallel", "4"]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    // Every story's file is on the integration branch, and every story commit is in its history.
    let files = p.git_cmd(&["ls-tree", "-r", "--name-only", "ralph/feature", "src/"]);
    for id in "ABCDEFGHIJKL".chars() {
        assert!(
            files.contains(&format!("src/{id}.txt")),
            "{id} missing: {files}"
        );
        let commits = p.git_cmd(&[
            "log",
            "--format=%H",
            &format!("--grep=Ralph-Story: {id}$"),
            "ralph/feature",
        ]);
        assert!(
            !commits.trim().is_empty(),
            "no commit of {id} on ralph/feature"
        );
    }
    for id in "ABCDEFGHIJKL".chars() {
        let branch = format!("ralph/feature--{id}");
        let tip = p.git_cmd(&["rev-parse", &branch]);
        let merged = std::process::Command::new("git")
            .args(["merge-base", "--is-ancestor", tip.trim(), "ralph/feature"])
            .current_dir(&p.root)
            .status()
            .unwrap();
        assert!(merged.success(), "{branch} not merged");
    }
    // The user's branch, stash, index and working tree are untouched.
    assert_eq!(p.git_cmd(&["rev-parse", "HEAD"]), user_head);
    assert_eq!(
        p.git_cmd(&["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/main"
    );
    assert_eq!(p.git_cmd(&["stash", "list"]), stash);
    assert_eq!(p.read("stash-me.txt"), "v3 uncommitted\n");
    assert_eq!(p.git_cmd(&["diff", "--cached", "--name-only"]), "");
    assert!(
        !p.exists("src"),
        "a story wrote into the user's working tree"
    );
    // Four at once, never more.
    assert_eq!(max_concurrency(&p), 4);
    for id in ["A", "D", "H", "L"] {
        assert!(
            out.stderr.contains(&format!("[{id}] merged")),
            "{}",
            out.stderr
        );
    }
    // Merged worktrees are gone; the git state is sound.
    let worktrees = p.git_cmd(&["worktree", "list", "--porcelain"]);
    assert!(!worktrees.contains(".ralph/worktrees/A\n"), "{worktrees}");
    p.git_cmd(&["fsck", "--strict", "--no-progress"]);
}

#[test]
fn a_story_that_fails_blocks_its_dependents_and_the_others_merge() {
    let p = Project::git();
    p.write(".gitignore", "/.ralph/\n");
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-q", "-m", "ignore"]);
    let script = story_agent(&p, 0);
    p.configure(&script, "text", "max_iterations = 2", "");
    // B's criterion can never pass: it fails after its iterations; C (after B) is blocked.
    let plan = format!(
        "version = 1\nname = \"f\"\n\n{}{}{}",
        story("A", &[]),
        story("B", &[]).replace("test -f src/B.txt", "test -f src/never.txt"),
        story("C", &["B"])
    );
    p.write("stories.toml", &plan);
    let out = p.run(&["stories", "run", "--parallel", "2"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(out.stderr.contains("[A] merged"), "{}", out.stderr);
    assert!(out.stderr.contains("[B] failed"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("[C] blocked · depends on B, which is failed"),
        "{}",
        out.stderr
    );
    // B's work is kept on its branch and in its worktree.
    let b = p.git_cmd(&["log", "--format=%B", "-1", "ralph/f--B"]);
    assert!(b.contains("Ralph-Story: B"), "{b}");
    assert!(p.exists(".ralph/worktrees/B/src/B.txt"));
}

/// Regression: a story iteration's checkpoint was committed on whatever HEAD was when its
/// thread ran, so now and then on the story commit made at the same time; an unmerged story's
/// worktree then looked kept by a ralph ref, and `stories clean` removed it. Every checkpoint
/// of a story's iteration goes on the commit before that iteration's story commit.
#[test]
fn a_storys_checkpoint_is_on_the_commit_before_its_story_commit_never_on_it() {
    let p = repo();
    p.configure(&story_agent(&p, 0), "text", "max_iterations = 2", "");
    let ids = ["A", "B", "C", "D", "E", "F"];
    let mut plan = "version = 1\nname = \"f\"\n\n".to_string();
    for id in ids {
        plan.push_str(&story(id, &[]));
    }
    p.write("stories.toml", &plan);
    let out = p.run(&["stories", "run", "--parallel", "3"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let refs = p.git_cmd(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/ralph/checkpoints/",
    ]);
    let mut checked = 0;
    for r in refs.lines().filter(|r| !r.ends_with("/0000")) {
        let parent = p.git_cmd(&["rev-parse", &format!("{r}^")]);
        let subject = p.git_cmd(&["log", "-1", "--format=%s", parent.trim()]);
        assert!(
            !subject.starts_with("ralph: "),
            "{r} is on a story commit ({subject})"
        );
        checked += 1;
    }
    assert_eq!(checked, ids.len(), "{refs}");
}

/// A repository with `.ralph/` ignored, committed.
pub(crate) fn repo() -> Project {
    let p = Project::git();
    p.write(".gitignore", "/.ralph/\n");
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-q", "-m", "ignore"]);
    p
}

#[test]
fn a_criterion_that_passes_in_its_worktree_but_fails_merged_with_a_sibling_never_lands() {
    let p = repo();
    // X's agent waits until Y has landed, so X's worktree (forked before) lacks Y's file while
    // the candidate has it.
    let script = Script::new().default_steps(vec![
        Step::shell(
            "mkdir -p src; echo \"$RALPH_STORY_ID\" > src/$RALPH_STORY_ID.txt; \
             if [ \"$RALPH_STORY_ID\" = X ]; then \
               until git cat-file -e ralph/f:src/Y.txt 2>/dev/null; do sleep 0.02; done; \
             fi",
        ),
        Step::print("LOOP_COMPLETE"),
    ]);
    p.configure(&script, "text", "max_iterations = 1", "");
    let x = story("X", &[]).replace(
        "run = \"test -f src/X.txt\"",
        "run = \"test -f src/X.txt && test ! -f src/Y.txt\"",
    );
    p.write(
        "stories.toml",
        &format!("version = 1\nname = \"f\"\n\n{}{x}", story("Y", &[])),
    );
    let out = p.run(&["stories", "run", "--parallel", "2"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(out.stderr.contains("[Y] merged"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("[X] conflicted · X/AC-1 failed on the merged result"),
        "{}",
        out.stderr
    );
    // X never landed; its work is kept on its branch.
    let files = p.git_cmd(&["ls-tree", "-r", "--name-only", "ralph/f"]);
    assert!(
        files.contains("src/Y.txt") && !files.contains("src/X.txt"),
        "{files}"
    );
    let x = p.git_cmd(&["ls-tree", "-r", "--name-only", "ralph/f--X"]);
    assert!(x.contains("src/X.txt"), "{x}");
}

#[test]
fn a_post_story_gate_already_red_on_the_base_is_reported_as_broken_on_base() {
    let p = repo();
    p.write("broken.txt", "the base is red\n");
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-q", "-m", "red base"]);
    let script = story_agent(&p, 0);
    let gates =
        "[[gates]]\nname = \"lint\"\nrun = \"test ! -f broken.txt\"\nwhen = \"post-story\"\n";
    p.configure(&script, "text", "max_iterations = 1", gates);
    p.write(
        "stories.toml",
        &format!("version = 1\nname = \"f\"\n\n{}", story("A", &[])),
    );
    let out = p.run(&["stories", "run"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(
        out.stderr.contains("[A] failed")
            && out
                .stderr
                .contains("post-story gate lint is broken on base"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_pre_merge_gate_runs_on_the_candidate_and_a_red_one_keeps_the_story_out() {
    let p = repo();
    let script = story_agent(&p, 0);
    // Green in A's worktree (no gate there); red on any candidate holding src/A.txt.
    let gates =
        "[[gates]]\nname = \"guard\"\nrun = \"test ! -f src/A.txt\"\nwhen = \"pre-merge\"\n";
    p.configure(&script, "text", "max_iterations = 1", gates);
    p.write(
        "stories.toml",
        &format!(
            "version = 1\nname = \"f\"\n\n{}{}",
            story("A", &[]),
            story("B", &[])
        ),
    );
    let out = p.run(&["stories", "run", "--parallel", "1"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("[A] conflicted · guard failed on the merged result"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("[B] merged"), "{}", out.stderr);
    let files = p.git_cmd(&["ls-tree", "-r", "--name-only", "ralph/f"]);
    assert!(!files.contains("src/A.txt"), "{files}");
}

/// Stories A and B rewrite the same line of `shared.txt`; B waits until A has landed, so its
/// candidate conflicts. The resolver (any other story id) runs `resolver`.
fn conflicting_pair(p: &Project, resolver: &str) {
    p.write("shared.txt", "line1\n");
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-q", "-m", "shared"]);
    let script = Script::new().default_steps(vec![
        Step::shell(format!(
            "case \"$RALPH_STORY_ID\" in \
               A) echo A-line > shared.txt ;; \
               B) echo B-line > shared.txt; \
                  until git show ralph/f:shared.txt 2>/dev/null | grep -qx A-line; do sleep 0.02; done ;; \
               *) {resolver} ;; \
             esac"
        )),
        Step::print("LOOP_COMPLETE"),
    ]);
    p.configure(&script, "text", "max_iterations = 2", "");
    let side = |id: &str| {
        format!(
            "[[story]]\nid = \"{id}\"\ntitle = \"{id} line\"\ndescription = \"Put {id}-line in shared.txt.\"\n\
             [[story.criteria]]\nid = \"AC-1\"\ntext = \"shared.txt has {id}-line\"\n\
             run = \"grep -qx {id}-line shared.txt\"\n\n"
        )
    };
    p.write(
        "stories.toml",
        &format!("version = 1\nname = \"f\"\n\n{}{}", side("A"), side("B")),
    );
}

#[test]
fn a_conflict_is_repaired_by_the_resolver_keeping_both_stories_and_both_criteria_pass() {
    let p = repo();
    conflicting_pair(&p, "printf 'A-line\\nB-line\\n' > shared.txt");
    let out = p.run(&["stories", "run", "--parallel", "2"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("[B] merged") && out.stderr.contains("repaired by the resolver"),
        "{}",
        out.stderr
    );
    let merged = p.git_cmd(&["show", "ralph/f:shared.txt"]);
    assert_eq!(merged, "A-line\nB-line\n");
    // One merge commit with both sides as parents; no conflict markers ever landed.
    let tip_parents = p.git_cmd(&["log", "-1", "--format=%P", "ralph/f"]);
    assert_eq!(tip_parents.split_whitespace().count(), 2, "{tip_parents}");
    let b_tip = p.git_cmd(&["rev-parse", "ralph/f--B"]);
    assert!(tip_parents.contains(b_tip.trim()));
    let all = p.git_cmd(&["log", "-p", "ralph/f"]);
    assert!(!all.contains("<<<<<<<"), "conflict markers in the history");
}

#[test]
fn a_resolver_that_drops_one_side_is_caught_by_that_storys_criterion_and_the_story_is_kept() {
    let p = repo();
    conflicting_pair(&p, "echo B-line > shared.txt");
    let out = p.run(&["stories", "run", "--parallel", "2"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(out.stderr.contains("[A] merged"), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "[B] conflicted · conflicts with the integration branch in shared.txt; the resolver \
             could not repair it: iteration limit reached"
        ),
        "{}",
        out.stderr
    );
    // A's work stands; B's branch is kept with its commit.
    assert_eq!(p.git_cmd(&["show", "ralph/f:shared.txt"]), "A-line\n");
    assert_eq!(p.git_cmd(&["show", "ralph/f--B:shared.txt"]), "B-line\n");
}

/// Six independent stories behind a slow pre-merge gate that counts its runs; `bad` names a
/// story whose file turns the gate red.
fn batched(p: &Project, bad: Option<&str>) -> Out {
    let runs = p.aux.join("gate-runs");
    let script = story_agent(p, 0);
    let gates = format!(
        "[[gates]]\nname = \"slow\"\nrun = \"echo x >> {}; sleep 0.4; test ! -f src/{}.txt\"\n\
         when = \"pre-merge\"\n",
        runs.display(),
        bad.unwrap_or("none")
    );
    p.configure(&script, "text", "max_iterations = 1", &gates);
    let mut plan = "version = 1\nname = \"f\"\n\n".to_string();
    for id in ["A", "B", "C", "D", "E", "F"] {
        plan.push_str(&story(id, &[]));
    }
    p.write("stories.toml", &plan);
    p.run(&["stories", "run", "--parallel", "6"])
}

fn gate_runs(p: &Project) -> usize {
    std::fs::read_to_string(p.aux.join("gate-runs"))
        .unwrap_or_default()
        .lines()
        .count()
}

#[test]
fn stories_waiting_behind_a_slow_gate_are_checked_together_fewer_gate_runs_than_stories() {
    let p = repo();
    let out = batched(&p, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let files = p.git_cmd(&["ls-tree", "-r", "--name-only", "ralph/f", "src/"]);
    assert_eq!(files.lines().count(), 6, "{files}");
    let runs = gate_runs(&p);
    assert!(runs < 6, "{runs} gate runs for 6 stories: no batching");
    eprintln!("gate runs per merged story: {:.2}", runs as f64 / 6.0);
}

#[test]
fn a_red_batch_is_bisected_the_good_stories_land_and_only_the_bad_one_is_kept_out() {
    let p = repo();
    let out = batched(&p, Some("E"));
    assert_eq!(out.code, 7, "{}", out.stderr);
    let files = p.git_cmd(&["ls-tree", "-r", "--name-only", "ralph/f", "src/"]);
    for id in ["A", "B", "C", "D", "F"] {
        assert!(
            files.contains(&format!("src/{id}.txt")),
            "{id}: {files}\n{}",
            out.stderr
        );
    }
    assert!(!files.contains("src/E.txt"), "{files}");
    assert!(
        out.stderr.contains("[E] conflicted · slow failed"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_plan_run_that_cannot_start_as_asked_is_refused_with_a_hint_and_writes_nothing() {
    let p = repo();
    let script = story_agent(&p, 0);
    p.configure(&script, "text", "max_iterations = 1", "");
    p.write(
        "stories.toml",
        &format!("version = 1\nname = \"f\"\n\n{}", story("A", &[])),
    );
    let out = p.run(&["stories", "run", "--only", "ZZ"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--only ZZ: the plan has no story ZZ") && out.stderr.contains("hint:"),
        "{}",
        out.stderr
    );
    let out = p.run(&["stories", "run", "--into", "main"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the integration branch main is the branch you are on")
            && out.stderr.contains("hint: ralph never moves your branch"),
        "{}",
        out.stderr
    );
    // Neither made a branch or a plan run.
    assert_eq!(p.git_cmd(&["branch", "--list", "ralph/*"]), "");
    let runs: i64 = p
        .db()
        .query_row("SELECT COUNT(*) FROM plan_runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs, 0);
}

/// The command guard of a story's loop knows the repository's aliases like the single loop's
/// (the worker reads them while the worktree is switched): B, on the worktree A left, runs
/// `git nuke` and is stopped as the `reset --hard` it is.
#[test]
fn an_alias_in_the_repository_config_is_expanded_by_a_storys_guard() {
    use ralph_testkit::script::ClaudeResult;
    let p = repo();
    p.git_cmd(&["config", "alias.nuke", "reset --hard"]);
    let nuke = p.aux.join("nuke.json");
    Script::new()
        .default_steps(vec![
            Step::claude_tool_use("Bash", serde_json::json!({ "command": "git nuke" })),
            Step::hang(),
        ])
        .write_to(&nuke)
        .unwrap();
    let script = Script::new().default_steps(vec![
        Step::shell("mkdir -p src; echo \"$RALPH_STORY_ID\" > src/$RALPH_STORY_ID.txt"),
        Step::claude_result(ClaudeResult::success("done\nLOOP_COMPLETE")),
    ]);
    p.configure(
        &script,
        "claude-stream-json",
        "max_iterations = 2\niteration_timeout = \"20s\"",
        "",
    );
    let b = format!(
        "{}[story.agent]\ncommand = [{:?}, {:?}]\n",
        story("B", &["A"]),
        ralph_testkit::fake_agent_path().display().to_string(),
        nuke.display().to_string()
    );
    p.write(
        "stories.toml",
        &format!("version = 1\nname = \"f\"\n\n{}{b}", story("A", &[])),
    );
    let out = p.run(&["stories", "run"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(out.stderr.contains("[A] merged"), "{}", out.stderr);
    assert!(
        out.stderr.contains("[B] failed") && out.stderr.contains("git-reset-hard"),
        "{}",
        out.stderr
    );
}

/// A protected path a story's agent changed is put back, and the story branch never holds
/// it. Regression: the story commit took the checkpoint's tree (the index had adopted it)
/// although the guardrail had put the path back since, so the protected change landed on
/// the story branch.
#[test]
fn a_protected_path_a_storys_agent_changed_is_reverted_and_never_on_its_branch() {
    // Without the sandbox, which would refuse the write in the first place.
    let p = repo().without_sandbox();
    let script = Script::new().default_steps(vec![
        Step::shell("mkdir -p src; echo A > src/A.txt; echo '# agent' > ralph.toml"),
        Step::print("done. LOOP_COMPLETE"),
    ]);
    p.configure(&script, "text", "max_iterations = 2", "");
    p.write(
        "stories.toml",
        &format!("version = 1\nname = \"f\"\n\n{}", story("A", &[])),
    );
    let out = p.run(&["stories", "run"]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("[A] merged"), "{}", out.stderr);
    assert!(out.stderr.contains("ralph.toml"), "{}", out.stderr);
    let files = p.git_cmd(&["ls-tree", "-r", "--name-only", "ralph/f--A"]);
    assert!(!files.lines().any(|f| f == "ralph.toml"), "{files}");
    let worktree = p.root.join(".ralph/worktrees/A/ralph.toml");
    assert!(!worktree.exists(), "the protected file was not put back");
}
