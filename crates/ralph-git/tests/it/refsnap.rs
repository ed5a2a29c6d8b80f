//! Ref snapshots: what changed is found and put back, whatever wrote it.

use ralph_git::RefRules;

use crate::support::Repo;

fn repo() -> Repo {
    let repo = Repo::with_commit(&[("a.txt", "1\n")]);
    repo.write("a.txt", "2\n");
    repo.git(&["commit", "-q", "-a", "-m", "second"]);
    repo.git(&["branch", "feature", "HEAD~1"]);
    repo
}

#[test]
fn an_in_place_rewrite_of_a_loose_ref_is_seen_through_the_stat_cache() {
    let repo = repo();
    let git = repo.discover();
    let first = git.snapshot_refs().unwrap();
    // Same size, same inode, written within the same second as the snapshot.
    let main = repo.git(&["rev-parse", "main"]);
    let path = repo.root.join(".git/refs/heads/feature");
    std::fs::write(&path, format!("{}\n", main.trim())).unwrap();
    let cached = git.snapshot_refs_since(Some(&first)).unwrap();
    assert_eq!(
        cached,
        git.snapshot_refs().unwrap(),
        "the cache saw the write"
    );
    let report = git.restore_refs(&first, &RefRules::default()).unwrap();
    // feature moved forward (HEAD~1 → HEAD): a fast-forward of a branch stays.
    assert!(report.is_empty(), "{report:?}");
}

/// Found by CI: one story's loop saw another loop's first checkpoint as "deleted by the
/// agent". Its run directory was still empty (git had made it, the ref was a lock file) when
/// the baseline was read, so the cache had no file under it; the next snapshot took the
/// unchanged parent from the cache, learnt its subdirectories from the cached file names, and
/// never looked into the directory the ref had appeared in.
#[test]
fn a_ref_written_into_a_directory_that_was_empty_at_the_baseline_is_seen() {
    let repo = repo();
    let git = repo.discover();
    let run = repo.root.join(".git/refs/ralph/checkpoints/r2");
    std::fs::create_dir_all(&run).unwrap();
    let before = git.snapshot_refs().unwrap();
    let main = repo.git(&["rev-parse", "main"]);
    repo.git(&["update-ref", "refs/ralph/checkpoints/r2/0000", main.trim()]);
    // What inotify reports: only the run directory changed, its parents did not.
    let dirty = |prefix: &str| prefix == "refs/ralph/checkpoints/r2";
    let now = git
        .snapshot_refs_watched(Some(&before), &|p| !dirty(p))
        .unwrap();
    assert_eq!(now, git.snapshot_refs().unwrap(), "the new ref was seen");
}

#[test]
fn a_moved_tag_and_a_deleted_branch_come_back_in_one_transaction() {
    let repo = repo();
    repo.git(&["tag", "v1", "HEAD~1"]);
    let git = repo.discover();
    let before = git.snapshot_refs().unwrap();
    let feature = repo.git(&["rev-parse", "feature"]);
    repo.git(&["tag", "-f", "v1", "HEAD"]);
    repo.git(&["branch", "-D", "feature"]);
    let report = git.restore_refs(&before, &RefRules::default()).unwrap();
    let mut fixed: Vec<(&str, &str)> = report
        .restored
        .iter()
        .map(|f| (f.name.as_str(), f.what))
        .collect();
    fixed.sort();
    assert_eq!(
        fixed,
        [
            ("refs/heads/feature", "deleted"),
            ("refs/tags/v1", "changed")
        ]
    );
    assert_eq!(repo.git(&["rev-parse", "feature"]), feature);
    assert_eq!(git.snapshot_refs().unwrap().len(), before.len());
    // The reflog says who put it back.
    let log = repo.git(&["reflog", "show", "--format=%gs", "refs/heads/feature"]);
    assert!(log.contains("ralph: restored after an iteration"), "{log}");
}

#[test]
fn reftable_repositories_fall_back_to_for_each_ref() {
    let repo = Repo::unborn();
    // Only git 2.45 and newer can create one; older ones fail here and the test has nothing to
    // check.
    let dir = repo.base().join("rt");
    let made = std::process::Command::new("git")
        .args(["init", "-q", "--ref-format=reftable", "-b", "main"])
        .arg(&dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", repo.base().join("home"))
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        return;
    }
    let rt = crate::support::git_in;
    let home = repo.base().join("home");
    std::fs::write(dir.join("a.txt"), "1\n").unwrap();
    rt(&dir, &home, &["add", "-A"]);
    rt(&dir, &home, &["commit", "-q", "-m", "one"]);
    rt(&dir, &home, &["branch", "feature"]);
    let git = ralph_git::Git::discover(&dir).unwrap().unwrap();
    let before = git.snapshot_refs().unwrap();
    assert_eq!(before.len(), 2, "main and feature");
    rt(&dir, &home, &["branch", "-D", "feature"]);
    let report = git.restore_refs(&before, &RefRules::default()).unwrap();
    assert_eq!(report.restored.len(), 1, "{report:?}");
    assert_eq!(git.snapshot_refs().unwrap(), before);
}
