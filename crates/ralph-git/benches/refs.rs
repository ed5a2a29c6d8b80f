//! What the ref snapshot adds to an iteration (issue 9: at most 1 ms): [`Git::snapshot_refs`]
//! before the agent plus [`Git::restore_refs`] after it (a second snapshot and the comparison)
//! when the agent changed no ref, each snapshot reusing what the previous one read from files
//! that did not change, in a 10,000-file repository with 1,000 refs (800 branches,
//! 200 tags, a stash). Measured with the refs packed (as after a clone or `git gc`) and loose
//! (as after creating them one by one), against one `git for-each-ref` (what reading them
//! through git would cost).
//!
//! The engine's way (`watched`: inotify vouches for the ref directories nothing happened in)
//! is what the goal is judged by; `stamps` is the fallback without inotify.
//!
//! Run with `cargo bench -p ralph-git --bench refs`.

#![expect(clippy::unwrap_used, reason = "a benchmark stops at the first failure")]

mod support;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::Stats;

use ralph_git::{Git, RefRules};

const FILES: usize = 10_000;
const FILES_PER_DIR: usize = 100;
const BRANCHES: usize = 800;
const TAGS: usize = 200;
const RUNS: usize = 200;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap().join("repo");
    std::fs::create_dir_all(&root).unwrap();
    git(&root, &["init", "-q", "-b", "main"], None);
    for i in 0..FILES {
        let sub = root.join(format!("d{:03}", i / FILES_PER_DIR));
        if i % FILES_PER_DIR == 0 {
            std::fs::create_dir_all(&sub).unwrap();
        }
        std::fs::write(sub.join(format!("f{i:05}.txt")), format!("file {i}\n")).unwrap();
    }
    git(&root, &["add", "-A"], None);
    git(&root, &["commit", "-q", "-m", "initial"], None);
    std::fs::write(root.join("d000/f00000.txt"), "stashed\n").unwrap();
    git(&root, &["stash", "push", "-q"], None);
    let mut input = String::new();
    for i in 0..BRANCHES {
        input.push_str(&format!("create refs/heads/b{i:04} HEAD\n"));
    }
    for i in 0..TAGS {
        input.push_str(&format!("create refs/tags/t{i:04} HEAD\n"));
    }
    git(&root, &["update-ref", "--stdin"], Some(&input));
    let repo = Git::discover(&root).unwrap().unwrap();
    let rules = RefRules::default();
    println!("setup: {FILES} files, {BRANCHES} branches, {TAGS} tags, a stash");
    println!("{:<44} {:>9} {:>9} {:>9}", "", "min", "median", "p95");

    for layout in ["loose", "packed"] {
        if layout == "packed" {
            git(&root, &["pack-refs", "--all"], None);
        }
        let before = repo.snapshot_refs().unwrap();
        assert_eq!(
            before.len(),
            BRANCHES + TAGS + 2,
            "main, the branches, tags, stash"
        );
        // As the engine does it: each snapshot reuses what the previous one read from files
        // that did not change (their lstat stamp is the same).
        let mut last = before.clone();
        let total = time(|| {
            let before = repo.snapshot_refs_since(Some(&last)).unwrap();
            assert!(repo.restore_refs(&before, &rules).unwrap().is_empty());
            last = before;
        });
        Stats::of(total).print_us(&format!("snapshot + compare, {layout} refs, stamps"));
        // As the engine runs it on Linux: inotify vouches for every ref directory nothing
        // happened in (here: all of them), so no loose ref file is touched.
        let mut last = before.clone();
        let total = time(|| {
            let before = repo.snapshot_refs_watched(Some(&last), &|_| true).unwrap();
            assert!(repo
                .restore_refs_watched(&before, &rules, &|_| true)
                .unwrap()
                .is_empty());
            last = before;
        });
        let total = Stats::of(total);
        total.print_us(&format!("snapshot + compare, {layout} refs, watched"));
        Stats::of(time(|| {
            repo.snapshot_refs().unwrap();
        }))
        .print_us(&format!("snapshot alone, {layout} refs, no cache"));
        Stats::of(time(|| {
            git(&root, &["for-each-ref"], None);
        }))
        .print_us(&format!("baseline: git for-each-ref, {layout} refs"));
        println!(
            "  added per iteration ({layout}, watched, median): {:.3} ms; goal <= 1 ms: {}",
            total.median.as_secs_f64() * 1000.0,
            if total.median <= Duration::from_millis(1) {
                "met"
            } else {
                "MISSED"
            }
        );
    }
}

fn time(mut f: impl FnMut()) -> Vec<Duration> {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect()
}

/// Setup and baseline commands, isolated from the developer's configuration.
fn git(dir: &Path, args: &[&str], input: Option<&str>) {
    let mut cmd = Command::new("git");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(name);
        }
    }
    let mut child = cmd
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@localhost")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@localhost")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        stdin.write_all(input.as_bytes()).unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success(), "git {args:?} failed");
}
