//! The repository lock across threads and processes, and many stories at once: worktrees
//! added, committed in and merged into one shared ref by eight threads.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use ralph_git::{CasOutcome, Git, MergeTreeOutcome};

use crate::support::Repo;
use crate::worktree::{git_at, wt_path};

/// `flock -n FILE true`: whether another process could take the lock now.
fn free_for_another_process(path: &std::path::Path) -> bool {
    let status = Command::new("flock")
        .args(["-n", "-E", "75"])
        .arg(path)
        .arg("true")
        .status()
        .unwrap();
    match status.code() {
        Some(0) => true,
        Some(75) => false,
        other => panic!("flock failed: {other:?}"),
    }
}

#[test]
fn the_lock_excludes_other_processes_and_is_reentrant_on_its_thread() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let outer = git.repo_lock().unwrap();
    let path = outer.path();
    assert_eq!(path, git.common_dir.join("ralph-repo.lock"));
    assert!(!free_for_another_process(&path));
    // Re-entrant: the functions that take it themselves work under it.
    let inner = git.repo_lock().unwrap();
    git.worktree_add(&wt_path(&repo, "S-1"), "s1", "HEAD")
        .unwrap();
    drop(inner);
    assert!(
        !free_for_another_process(&path),
        "the outer guard still holds it"
    );
    drop(outer);
    // Free at once for ralph; a process another test thread is forking at this moment holds a
    // copy of the descriptor until its exec closes it (O_CLOEXEC), so allow that instant.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !free_for_another_process(&path) {
        assert!(
            std::time::Instant::now() < deadline,
            "the lock was not let go"
        );
    }

    // The same lock from a linked worktree's point of view.
    let from_worktree = Git::discover(&wt_path(&repo, "S-1")).unwrap().unwrap();
    let guard = from_worktree.repo_lock().unwrap();
    assert_eq!(guard.path(), path);
    assert!(!free_for_another_process(&path));
}

#[test]
fn the_lock_waits_for_another_process_to_let_go() {
    use std::io::{BufRead as _, BufReader, Write as _};
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let path = git.common_dir.join(ralph_git::REPO_LOCK_FILE);
    // Another process holds the lock until we write a line to it.
    let mut child = Command::new("flock")
        .arg(&path)
        .args(["-c", "echo locked; read line"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "locked\n");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let _guard = git.repo_lock().unwrap();
            tx.send(()).unwrap();
        });
        // Nothing to wait for but time: the lock must not be granted while the child has it.
        let early = rx.recv_timeout(std::time::Duration::from_millis(300));
        assert!(early.is_err(), "granted while another process held it");
        writeln!(child.stdin.take().unwrap()).unwrap();
        rx.recv().unwrap();
    });
    assert!(child.wait().unwrap().success());
}

#[test]
fn the_lock_excludes_other_threads() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let inside = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        for _ in 0..4 {
            let (git, inside, max_seen) = (git.clone(), inside.clone(), max_seen.clone());
            s.spawn(move || {
                for _ in 0..50 {
                    let _guard = git.repo_lock().unwrap();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    max_seen.fetch_max(now, Ordering::SeqCst);
                    std::thread::yield_now();
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(max_seen.load(Ordering::SeqCst), 1);
}

const THREADS: usize = 8;
const ROUNDS: usize = 3;
const SHARED: &str = "refs/heads/ralph/integration";

/// One story: its worktree, `ROUNDS` commits, each merged into the shared ref (even threads
/// hold the lock around read-build-swap and must never see a stale tip; odd ones rely on the
/// compare-and-swap and retry). Returns the story commits and how many swaps were stale.
fn story(git: &Git, repo: &Repo, i: usize, start: &Barrier) -> (Vec<String>, usize) {
    let path = wt_path(repo, &format!("S-{i}"));
    start.wait();
    let base = git.rev_parse(SHARED).unwrap().unwrap();
    git.worktree_add(&path, &format!("story/{i}"), &base)
        .unwrap();
    let mut commits = Vec::new();
    let mut stale = 0;
    for round in 0..ROUNDS {
        std::fs::write(
            path.join(format!("s{i}-r{round}.txt")),
            format!("{i} {round}\n"),
        )
        .unwrap();
        let commit = git
            .commit_all(
                &path,
                &format!("S-{i} round {round}"),
                &[("Ralph-Story", &format!("S-{i}"))],
            )
            .unwrap()
            .unwrap();
        loop {
            let guard = i.is_multiple_of(2).then(|| git.repo_lock().unwrap());
            let tip = git.rev_parse(SHARED).unwrap().unwrap();
            let MergeTreeOutcome::Clean { tree } = git.merge_tree(&tip, &commit).unwrap() else {
                panic!("stories touch different files");
            };
            let merge = git
                .commit_tree(&tree, &[&tip, &commit], &format!("merge S-{i} r{round}"))
                .unwrap();
            match git.update_ref_cas(SHARED, &merge, Some(&tip)).unwrap() {
                CasOutcome::Moved => break,
                CasOutcome::Stale { .. } => {
                    assert!(guard.is_none(), "a swap under the lock cannot be stale");
                    stale += 1;
                }
            }
        }
        commits.push(commit);
    }
    (commits, stale)
}

#[test]
fn eight_stories_at_once_land_every_commit_exactly_once() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let base = git.head().unwrap().unwrap();
    git.create_branch("ralph/integration", &base).unwrap();
    let start = Barrier::new(THREADS);
    let results: Vec<(Vec<String>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (git, repo, start) = (&git, &repo, &start);
                s.spawn(move || story(git, repo, i, start))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let story_commits: BTreeSet<String> = results.iter().flat_map(|(c, _)| c.clone()).collect();
    assert_eq!(story_commits.len(), THREADS * ROUNDS);

    // The first-parent chain is one merge per story commit, each second parent seen once.
    let chain = repo.git(&["rev-list", "--first-parent", &format!("{base}..{SHARED}")]);
    assert_eq!(chain.lines().count(), THREADS * ROUNDS, "{chain}");
    let merged: Vec<String> = chain
        .lines()
        .map(|merge| repo.parents(merge)[1].clone())
        .collect();
    assert_eq!(
        merged.iter().cloned().collect::<BTreeSet<_>>(),
        story_commits
    );
    // Every update was recorded once: creation plus one per merge.
    let reflog = repo.git(&["reflog", "show", "--format=%H", SHARED]);
    assert_eq!(reflog.lines().count(), THREADS * ROUNDS + 1, "{reflog}");
    let tip = git.rev_parse(SHARED).unwrap().unwrap();
    assert_eq!(repo.tree_files(&tip).len(), 1 + THREADS * ROUNDS);

    // Exit 0 (asserted by the helper) and nothing but the candidates the stale swaps left.
    let fsck = repo.git(&["fsck", "--strict", "--no-progress"]);
    assert!(
        fsck.lines().all(|l| l.starts_with("dangling commit ")),
        "{fsck}"
    );

    let list = git.worktrees().unwrap();
    assert_eq!(list.len(), THREADS + 1);
    for (i, (commits, _)) in results.iter().enumerate() {
        let path = wt_path(&repo, &format!("S-{i}"));
        let entry = list.iter().find(|w| w.path == path).unwrap();
        assert_eq!(
            entry.branch.as_deref(),
            Some(format!("refs/heads/story/{i}").as_str())
        );
        assert!(entry.prunable.is_none());
        assert_eq!(
            git_at(&repo, &path, &["rev-parse", "HEAD"]).trim(),
            commits[ROUNDS - 1]
        );
    }
    std::thread::scope(|s| {
        for i in 0..THREADS {
            let (git, repo) = (&git, &repo);
            s.spawn(move || {
                git.worktree_remove(&wt_path(repo, &format!("S-{i}")))
                    .unwrap()
            });
        }
    });
    assert_eq!(git.worktrees().unwrap().len(), 1);
    assert_eq!(
        repo.git(&["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1
    );
}
