//! What ralph's own git costs per story in stories mode, in a 10,000-file repository: the
//! story's worktree added (a checkout of every file), ralph's commit of a 3-file change, the
//! candidate built in the object store (`merge_tree` + `commit_tree` against the integration
//! tip), the integration branch moved by compare-and-swap, the worktree removed. Goal: the
//! sum of the medians ≤ 250 ms (the agent's own time excluded).
//!
//! All worktrees are added first and the files left to age for a second before the commits,
//! as they do while an agent works: a commit right after the checkout would find every entry
//! "racily clean" and rehash all 10,000 files, which no real story does.
//!
//! Measured twice: with a new worktree per story (added, then removed: every file written and
//! deleted once per story) and with worktrees reused from a small pool
//! ([`Git::worktree_reuse`]: only the files that differ from the last story are rewritten).
//!
//! Run with `cargo bench -p ralph-git --bench stories`.

#![expect(clippy::unwrap_used, reason = "a benchmark stops at the first failure")]

mod support;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{git, Stats};

use ralph_git::{CasOutcome, Git, MergeTreeOutcome};

const FILES: usize = 10_000;
const FILES_PER_DIR: usize = 100;
const RUNS: usize = 15;
const INTEGRATION: &str = "refs/heads/ralph/bench";

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let root = base.join("repo");
    std::fs::create_dir_all(&root).unwrap();
    let setup = Instant::now();
    git(&root, &["init", "-q", "-b", "main"]);
    for i in 0..FILES {
        let sub = root.join(format!("d{:03}", i / FILES_PER_DIR));
        if i % FILES_PER_DIR == 0 {
            std::fs::create_dir_all(&sub).unwrap();
        }
        std::fs::write(sub.join(format!("f{i:05}.txt")), format!("file {i}\n")).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1100));
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "initial"]);
    let repo = Git::discover(&root).unwrap().unwrap();
    let head = repo.head().unwrap().unwrap();
    repo.create_branch("ralph/bench", &head).unwrap();
    println!(
        "setup: {FILES} files committed ({:.1} s), git {}",
        setup.elapsed().as_secs_f64(),
        ralph_git::git_version().unwrap()
    );

    let fresh = fresh_worktrees(&repo, &base);
    report("a new worktree per story (added, then removed)", fresh);
    let pooled = pooled_worktrees(&repo, &base);
    report("worktrees reused (a pool of 2, switched per story)", pooled);
}

/// Two files of the story's own changed and one added (files no other story touches, so
/// every candidate merges cleanly); then ralph's commit, the candidate, the swap.
fn land_story(repo: &Git, path: &Path, n: usize, samples: &mut [Vec<Duration>; 3]) {
    for k in 0..2 {
        let i = n * 3 + k;
        let rel = format!("d{:03}/f{i:05}.txt", i / FILES_PER_DIR);
        std::fs::write(path.join(rel), format!("story {n} changed {i}\n")).unwrap();
    }
    std::fs::write(path.join(format!("story-{n}.txt")), "new\n").unwrap();
    let mut story_commit = String::new();
    samples[0].push(time(|| {
        let trailer = format!("S-{n}");
        story_commit = repo
            .commit_all(path, "story work", &[("Ralph-Story", &trailer)])
            .unwrap()
            .unwrap();
    }));
    let tip = repo.rev_parse(INTEGRATION).unwrap().unwrap();
    let mut merged = String::new();
    samples[1].push(time(|| {
        let MergeTreeOutcome::Clean { tree } = repo.merge_tree(&tip, &story_commit).unwrap() else {
            panic!("stories touch different files");
        };
        merged = repo
            .commit_tree(&tree, &[&tip, &story_commit], "merge story")
            .unwrap();
    }));
    samples[2].push(time(|| {
        let moved = repo.update_ref_cas(INTEGRATION, &merged, Some(&tip));
        assert_eq!(moved.unwrap(), CasOutcome::Moved);
    }));
}

type Rows = Vec<(&'static str, Vec<Duration>)>;

fn fresh_worktrees(repo: &Git, base: &Path) -> Rows {
    let paths: Vec<PathBuf> = (0..RUNS)
        .map(|n| base.join(format!("worktrees/S-{n}")))
        .collect();
    let mut add = Vec::new();
    for (n, path) in paths.iter().enumerate() {
        let tip = repo.rev_parse(INTEGRATION).unwrap().unwrap();
        add.push(time(|| {
            repo.worktree_add(path, &format!("story/{n}"), &tip)
                .unwrap()
        }));
    }
    std::thread::sleep(Duration::from_millis(1100));
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    let mut remove = Vec::new();
    for (n, path) in paths.iter().enumerate() {
        land_story(repo, path, n, &mut samples);
        remove.push(time(|| repo.worktree_remove(path).unwrap()));
    }
    let [commit, candidate, cas] = samples;
    vec![
        ("worktree_add (checkout of 10,000 files)", add),
        ("commit_all (3 files)", commit),
        ("merge_tree + commit_tree", candidate),
        ("update_ref_cas", cas),
        ("worktree_remove", remove),
    ]
}

fn pooled_worktrees(repo: &Git, base: &Path) -> Rows {
    let slots: Vec<PathBuf> = (0..2).map(|k| base.join(format!("pool/{k}"))).collect();
    for (k, slot) in slots.iter().enumerate() {
        repo.worktree_add(slot, &format!("pool/{k}"), INTEGRATION)
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(1100));
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    let mut reuse = Vec::new();
    for n in RUNS..2 * RUNS {
        let slot = &slots[n % 2];
        let tip = repo.rev_parse(INTEGRATION).unwrap().unwrap();
        reuse.push(time(|| {
            repo.worktree_reuse(slot, &format!("story/{n}"), &tip)
                .unwrap();
        }));
        land_story(repo, slot, n, &mut samples);
    }
    let [commit, candidate, cas] = samples;
    vec![
        ("worktree_reuse (switch to the new tip)", reuse),
        ("commit_all (3 files)", commit),
        ("merge_tree + commit_tree", candidate),
        ("update_ref_cas", cas),
    ]
}

fn report(title: &str, rows: Rows) {
    println!("\n{title}");
    println!("{:<40} {:>9} {:>9} {:>9}", "", "min", "median", "p95");
    let mut total = Duration::ZERO;
    for (label, samples) in rows {
        let stats = Stats::of(samples);
        total += stats.median;
        stats.print(label);
    }
    println!(
        "{:<40} {:>9} {:>6.1} ms  (goal: <= 250 ms)",
        "sum of medians",
        "",
        total.as_secs_f64() * 1000.0
    );
}

fn time(mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}
