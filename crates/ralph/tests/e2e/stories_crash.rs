//! STORIES.md rule 8: `kill -9` of ralph at many moments of a plan run, each followed by
//! `ralph stories run`, ends with every story merged exactly once, git sound, no work lost and
//! no agent left running.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use ralph_testkit::{Script, Step};

use crate::harness::*;

/// A seeded xorshift: the kill moments differ per round and repeat per seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn six_story_plan() -> String {
    let mut plan = "version = 1\nname = \"crash\"\n\n".to_string();
    for (id, deps) in [
        ("S1", ""),
        ("S2", "\"S1\""),
        ("S3", "\"S1\""),
        ("S4", "\"S2\", \"S3\""),
        ("S5", ""),
        ("S6", "\"S5\""),
    ] {
        plan.push_str(&format!(
            "[[story]]\nid = \"{id}\"\ntitle = \"{id}\"\ndepends_on = [{deps}]\n\
             description = \"Write src/{id}.txt.\"\n[[story.criteria]]\nid = \"AC\"\n\
             text = \"its file\"\nrun = \"test -f src/{id}.txt\"\n\n"
        ));
    }
    plan
}

/// Every pid the agents wrote is gone (the guardian kills them with ralph).
fn no_agent_left(pids: &std::path::Path) {
    let text = std::fs::read_to_string(pids).unwrap_or_default();
    for pid in text
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        wait_until(
            &format!("agent {pid} to be gone"),
            Duration::from_secs(10),
            || !pid_alive(pid),
        );
    }
}

/// Start `ralph stories run --json`, read `events` event lines (each a moment: a state change,
/// an iteration, a checkpoint), then SIGKILL it. `None`: it ended on its own first.
fn run_and_kill(p: &Project, events: u64) -> Option<()> {
    let mut child = p.spawn(&["stories", "run", "--parallel", "3", "--json"]);
    let pid = child.id() as i32;
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    for _ in 0..events {
        match lines.next() {
            Some(Ok(_)) => {}
            _ => {
                let out = wait_child(child, Duration::from_secs(60));
                assert!(
                    out.code == 0 || out.code == 7,
                    "exit {}: {}",
                    out.code,
                    out.stderr
                );
                return None;
            }
        }
    }
    ralph_testkit::proc::kill(pid, libc::SIGKILL).unwrap();
    let _ = child.wait();
    Some(())
}

#[test]
fn kill_dash_nine_at_thirty_moments_then_resume_merges_every_story_exactly_once() {
    let p = Project::git();
    p.write(".gitignore", "/.ralph/\n");
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-q", "-m", "ignore"]);
    let pids = p.aux.join("pids");
    let script = Script::new().default_steps(vec![
        Step::shell(format!(
            "echo $$ >> {pids}; mkdir -p src; echo \"$RALPH_STORY_ID\" > src/$RALPH_STORY_ID.txt",
            pids = pids.display()
        )),
        Step::sleep_ms(60),
        Step::print("LOOP_COMPLETE"),
    ]);
    p.configure(&script, "text", "max_iterations = 5", "");
    p.write("stories.toml", &six_story_plan());

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut kills = 0;
    while kills < 30 {
        // A whole plan run emits about 50 events; a kill within the first 20 of each session
        // lets every session make a little progress and rarely finish, so the later kills land
        // in the later stages (merges, the last stories).
        match run_and_kill(&p, 1 + rng.below(20)) {
            Some(()) => kills += 1,
            None => break,
        }
        no_agent_left(&pids);
    }
    let out = p.run(&["stories", "run", "--parallel", "3"]);
    assert_eq!(out.code, 0, "after {kills} kills: {}", out.stderr);
    no_agent_left(&pids);

    // Every story merged exactly once: one landed queue entry each, its file on the branch.
    let db = p.db();
    let mut landed = db
        .prepare(
            "SELECT story_ids, COUNT(*) FROM merge_queue WHERE state = 'landed' \
             GROUP BY story_ids ORDER BY story_ids",
        )
        .unwrap();
    let rows: Vec<(String, i64)> = landed
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut all = db
        .prepare(
            "SELECT plan_run_id, seq, story_ids, state, detail FROM merge_queue ORDER BY rowid",
        )
        .unwrap();
    let queue: Vec<String> = all
        .query_map([], |r| {
            Ok(format!(
                "{} {} {} {} {:?}",
                r.get::<_, String>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows.len(),
        6,
        "{rows:?}\n{}\n{}",
        queue.join("\n"),
        out.stderr
    );
    assert!(rows.iter().all(|(_, n)| *n == 1), "{rows:?}");
    let files = p.git_cmd(&["ls-tree", "-r", "--name-only", "ralph/crash", "src/"]);
    for i in 1..=6 {
        assert!(files.contains(&format!("src/S{i}.txt")), "{files}");
        // Its branch (all its work) is in the integration branch.
        let tip = p.git_cmd(&["rev-parse", &format!("ralph/crash--S{i}")]);
        p.git_cmd(&["merge-base", "--is-ancestor", tip.trim(), "ralph/crash"]);
    }
    // No commit twice: every (tree, parents, message) on the branch is unique.
    let log = p.git_cmd(&["log", "--format=%T %P %s", "ralph/crash"]);
    let mut seen = std::collections::HashSet::new();
    for line in log.lines() {
        assert!(seen.insert(line.to_string()), "duplicate commit: {line}");
    }
    let merges = log.lines().filter(|l| l.contains("ralph: merge S")).count();
    assert!(merges <= 6, "{log}");
    p.git_cmd(&["fsck", "--strict", "--no-progress"]);
    assert!(
        kills >= 10,
        "only {kills} kills happened before the plan finished"
    );
}

/// Found by the outside-in check of the stories issue: ralph killed while a story's agent was
/// half-way through an iteration, then resumed, ran that iteration again on top of what the
/// first attempt had written; an agent that appends landed its line twice. The resumed loop
/// now keeps the interrupted state under a checkpoint ref and starts the iteration again from
/// the state it first started from.
#[test]
fn a_story_interrupted_mid_iteration_runs_it_again_from_where_it_started() {
    let p = Project::git();
    p.write(".gitignore", "/.ralph/\n");
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-q", "-m", "ignore"]);
    let (appended, go) = (p.aux.join("appended"), p.aux.join("go"));
    let script = Script::new().default_steps(vec![
        Step::shell(format!(
            "mkdir -p src; echo \"$RALPH_STORY_ID-line\" >> src/$RALPH_STORY_ID.txt; \
             touch {a}; until [ -e {g} ]; do sleep 0.02; done",
            a = appended.display(),
            g = go.display()
        )),
        Step::print("LOOP_COMPLETE"),
    ]);
    p.configure(&script, "text", "max_iterations = 3", "");
    p.write(
        "stories.toml",
        "version = 1\nname = \"f\"\n\n[[story]]\nid = \"A\"\ntitle = \"A\"\n\
         description = \"Append to src/A.txt.\"\n",
    );
    let mut child = p.spawn(&["stories", "run"]);
    wait_until("the agent to append", Duration::from_secs(30), || {
        appended.exists()
    });
    ralph_testkit::proc::kill(child.id() as i32, libc::SIGKILL).unwrap();
    let _ = child.wait();
    std::fs::write(&go, "").unwrap();

    let out = p.run(&["stories", "run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("iteration 1 was interrupted by a crash"),
        "{}",
        out.stderr
    );
    let landed = p.git_cmd(&["show", "ralph/f:src/A.txt"]);
    assert_eq!(landed, "A-line\n", "the iteration's work landed once");
    // The interrupted state is kept, not thrown away.
    let kept = p.git_cmd(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/ralph/checkpoints/",
    ]);
    let interrupted = kept
        .lines()
        .find(|r| r.ends_with("/interrupted-0001"))
        .unwrap_or_else(|| panic!("no interrupted checkpoint in {kept}"));
    let saved = p.git_cmd(&["show", &format!("{interrupted}:src/A.txt")]);
    assert_eq!(saved, "A-line\n");
}
