//! Checkpoint cost in a 10,000-file repository with 10 modified files, against `git status`
//! in the same repository (what a user already pays for "what changed?") and a bare
//! `git version` (the floor cost of one git process). Goal: ≤ 100 ms per checkpoint.
//!
//! Also restore (rollback) cost in the same repository: going back and forth between two
//! checkpoints that differ by 10 modified, 5 added and 5 deleted files, a dry run of it, and a
//! restore to the state the working tree is already in.
//!
//! Run with `cargo bench -p ralph-git`.

#![expect(clippy::unwrap_used, reason = "a benchmark stops at the first failure")]

mod support;
use std::time::{Duration, Instant};
use support::{git, Stats};

use ralph_git::{CheckpointOptions, Git};

const FILES: usize = 10_000;
const FILES_PER_DIR: usize = 100;
const MODIFIED: usize = 10;
const RUNS: usize = 20;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap().join("repo");
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&root).unwrap();

    let setup = Instant::now();
    git(&root, &["init", "-q", "-b", "main"]);
    for i in 0..FILES {
        let sub = root.join(format!("d{:03}", i / FILES_PER_DIR));
        if i % FILES_PER_DIR == 0 {
            std::fs::create_dir_all(&sub).unwrap();
        }
        std::fs::write(sub.join(format!("f{i:05}.txt")), content(i, 0)).unwrap();
    }
    // Let the files age past the index's timestamp: otherwise every entry is "racily clean"
    // and any git command rehashes all 10,000 files, which is not what a real repository
    // looks like.
    std::thread::sleep(Duration::from_millis(1100));
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "initial"]);
    for i in 0..MODIFIED {
        let i = i * (FILES / MODIFIED);
        let path = root.join(format!("d{:03}/f{i:05}.txt", i / FILES_PER_DIR));
        std::fs::write(path, content(i, 1)).unwrap();
    }
    println!(
        "setup: {FILES} files committed, {MODIFIED} modified ({:.1} s)",
        setup.elapsed().as_secs_f64()
    );

    let repo = Git::discover(&root).unwrap().unwrap();
    let mut checkpoints = Vec::with_capacity(RUNS);
    let mut last = None;
    for n in 0..RUNS {
        let start = Instant::now();
        let cp = repo
            .checkpoint(
                &format!("refs/ralph/checkpoints/bench/{n}"),
                "bench",
                &scratch,
            )
            .unwrap();
        checkpoints.push(start.elapsed());
        last = Some(cp);
    }
    let last = last.unwrap();
    let diff = time(RUNS, || {
        repo.diff_stat("HEAD", &last.tree).unwrap();
    });

    // The untracked size limit costs one `git ls-files --others` walk per checkpoint.
    let unlimited = CheckpointOptions {
        max_untracked_bytes: None,
        adopt_index: false,
    };
    let no_limit = time(RUNS, || {
        repo.checkpoint_with(
            "refs/ralph/checkpoints/bench/unlimited",
            "bench",
            &scratch,
            &unlimited,
        )
        .unwrap();
    });
    let snapshot = time(RUNS, || {
        repo.snapshot_tree(&scratch).unwrap();
    });

    // Restore: A is the state above; B has 10 more files modified, 5 added and 5 deleted.
    let a = last.clone();
    for i in 0..MODIFIED {
        let i = i * (FILES / MODIFIED) + 1;
        let path = root.join(format!("d{:03}/f{i:05}.txt", i / FILES_PER_DIR));
        std::fs::write(path, content(i, 2)).unwrap();
    }
    for i in 0..5 {
        std::fs::create_dir_all(root.join("added")).unwrap();
        std::fs::write(root.join(format!("added/new{i}.txt")), content(i, 3)).unwrap();
        let gone = i * (FILES / 5) + 2;
        std::fs::remove_file(root.join(format!("d{:03}/f{gone:05}.txt", gone / FILES_PER_DIR)))
            .unwrap();
    }
    let b = repo
        .checkpoint("refs/ralph/checkpoints/bench/b", "bench b", &scratch)
        .unwrap();
    let plan = repo.restore_plan(&a.tree, &scratch, None).unwrap();
    assert_eq!(
        (plan.written.len(), plan.deleted.len()),
        (MODIFIED + 5, 5),
        "{plan:?}"
    );
    let dry_run = time(RUNS, || {
        repo.restore_plan(&a.tree, &scratch, None).unwrap();
    });
    let mut restores = Vec::with_capacity(RUNS);
    for n in 0..RUNS {
        let target = if n % 2 == 0 { &a } else { &b };
        let start = Instant::now();
        let report = repo.restore(&target.tree, &scratch, None).unwrap();
        restores.push(start.elapsed());
        assert_eq!(report.written.len() + report.deleted.len(), MODIFIED + 10);
    }
    assert_eq!(repo.snapshot_tree(&scratch).unwrap(), b.tree);
    // As `ralph rollback` does it: the state before, then restore from that known tree.
    let mut rollbacks = Vec::with_capacity(RUNS);
    for n in 0..RUNS {
        let target = if n % 2 == 0 { &a } else { &b };
        let start = Instant::now();
        let saved = repo
            .checkpoint("refs/ralph/checkpoints/bench/rollback", "bench", &scratch)
            .unwrap();
        repo.restore_from(&saved.tree, &target.tree, &scratch, None)
            .unwrap();
        rollbacks.push(start.elapsed());
    }
    let noop = time(RUNS, || {
        assert!(repo.restore(&b.tree, &scratch, None).unwrap().is_empty());
    });

    let status = time(RUNS, || {
        git(&root, &["status", "--porcelain"]);
    });
    let version = time(RUNS, || {
        git(&root, &["version"]);
    });

    let cp = Stats::of(checkpoints);
    let status = Stats::of(status);
    println!("{:<38} {:>8} {:>8} {:>8}", "", "min", "median", "p95");
    cp.print(&format!("checkpoint (N={RUNS})"));
    Stats::of(no_limit).print("checkpoint, no untracked size limit");
    Stats::of(diff).print("diff_stat HEAD..checkpoint");
    Stats::of(snapshot).print("snapshot_tree");
    Stats::of(dry_run).print("restore_plan (20 files differ)");
    let restore = Stats::of(restores);
    restore.print("restore (20 files differ)");
    Stats::of(rollbacks).print("checkpoint + restore_from (rollback)");
    Stats::of(noop).print("restore (nothing differs)");
    status.print("baseline: git status --porcelain");
    Stats::of(version).print("floor: git version (one spawn)");
    println!(
        "checkpoint / git status (median): {:.2}x; goal median <= 100 ms: {}",
        cp.median.as_secs_f64() / status.median.as_secs_f64(),
        if cp.median <= Duration::from_millis(100) {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "restore / git status (median): {:.2}x",
        restore.median.as_secs_f64() / status.median.as_secs_f64(),
    );
}

fn content(i: usize, version: usize) -> String {
    format!("file {i} version {version}\n{}\n", "x".repeat(200))
}

fn time(runs: usize, mut f: impl FnMut()) -> Vec<Duration> {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect()
}
