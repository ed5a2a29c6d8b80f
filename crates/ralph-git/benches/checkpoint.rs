//! Checkpoint cost in a 10,000-file repository with 10 modified files, against `git status`
//! in the same repository (what a user already pays for "what changed?") and a bare
//! `git version` (the floor cost of one git process). Goal: ≤ 100 ms per checkpoint.
//!
//! Run with `cargo bench -p ralph-git`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ralph_git::Git;

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

    let status = time(RUNS, || {
        git(&root, &["status", "--porcelain"]);
    });
    let version = time(RUNS, || {
        git(&root, &["version"]);
    });

    let cp = Stats::of(checkpoints);
    let status = Stats::of(status);
    println!("{:<34} {:>8} {:>8} {:>8}", "", "min", "median", "p95");
    cp.print(&format!("checkpoint (N={RUNS})"));
    Stats::of(diff).print("diff_stat HEAD..checkpoint");
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

struct Stats {
    min: Duration,
    median: Duration,
    p95: Duration,
}

impl Stats {
    fn of(mut samples: Vec<Duration>) -> Stats {
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Stats {
            min: samples[0],
            median: at(0.5),
            p95: at(0.95),
        }
    }

    fn print(&self, label: &str) {
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
        println!(
            "{label:<34} {:>8} {:>8} {:>8}",
            ms(self.min),
            ms(self.median),
            ms(self.p95)
        );
    }
}

/// Setup and baseline commands, isolated from the developer's configuration.
fn git(dir: &Path, args: &[&str]) {
    let mut cmd = Command::new("git");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(name);
        }
    }
    let status = cmd
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@localhost")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@localhost")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?} failed");
}
