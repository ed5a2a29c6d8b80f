//! Linked worktrees for stories: added on a new branch, attached again for a resume, listed,
//! never removed while they hold uncommitted work, pruned once their directory is gone.

use std::path::{Path, PathBuf};

use ralph_git::{Git, GitError};

use crate::support::{git_in, Repo};

pub fn wt_path(repo: &Repo, name: &str) -> PathBuf {
    repo.base().join("worktrees").join(name)
}

pub fn git_at(repo: &Repo, dir: &Path, args: &[&str]) -> String {
    git_in(dir, &repo.base().join("home"), args)
}

fn entry_for(git: &Git, path: &Path) -> Option<ralph_git::WorktreeInfo> {
    git.worktrees()
        .unwrap()
        .into_iter()
        .find(|w| w.path == path)
}

#[test]
fn add_creates_the_branch_and_lists_the_worktree() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let head = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    // Under `.ralph/worktrees/`, as stories mode lays them out; git creates the parents.
    let path = repo.root.join(".ralph/worktrees/S-1");
    git.worktree_add(&path, "ralph/plan/S-1", "HEAD").unwrap();

    assert_eq!(std::fs::read_to_string(path.join("a.txt")).unwrap(), "a\n");
    assert_eq!(
        git.rev_parse("refs/heads/ralph/plan/S-1").unwrap(),
        Some(head.clone())
    );
    let list = git.worktrees().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].path, repo.root);
    assert_eq!(list[0].branch.as_deref(), Some("refs/heads/main"));
    let entry = &list[1];
    assert_eq!(entry.path, path);
    assert_eq!(entry.head.as_deref(), Some(head.as_str()));
    assert_eq!(entry.branch.as_deref(), Some("refs/heads/ralph/plan/S-1"));
    assert_eq!((entry.locked.clone(), entry.prunable.clone()), (None, None));
    assert!(git.is_clean(&path).unwrap());
    // The user's branch and HEAD did not move.
    assert_eq!(
        repo.git(&["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/main"
    );
}

#[test]
fn an_existing_branch_is_attached_only_at_the_same_commit() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let first = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    repo.write("b.txt", "b\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "second"]);
    repo.git(&["branch", "story", &first]);

    let path = wt_path(&repo, "S-1");
    let err = git.worktree_add(&path, "story", "HEAD").unwrap_err();
    match &err {
        GitError::BranchExists { branch, at, .. } => {
            assert_eq!((branch.as_str(), at.as_str()), ("story", first.as_str()));
        }
        other => panic!("expected BranchExists, got {other:?}"),
    }
    assert!(err.to_string().contains("already exists"), "{err}");
    assert!(!path.exists(), "nothing was created");
    assert_eq!(
        repo.git(&["rev-parse", "story"]).trim(),
        first,
        "never moved"
    );

    // Same commit: attached (a restart after a crash between branch and worktree).
    git.worktree_add(&path, "story", &first).unwrap();
    assert_eq!(
        entry_for(&git, &path).unwrap().branch.as_deref(),
        Some("refs/heads/story")
    );
    // Asking again for the worktree that is already there is not an error.
    git.worktree_add(&path, "story", &first).unwrap();
    git.worktree_attach(&path, "story").unwrap();
    assert_eq!(git.worktrees().unwrap().len(), 2);
}

#[test]
fn attach_resumes_a_branch_with_its_commits() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let path = wt_path(&repo, "S-1");
    git.worktree_add(&path, "story", "HEAD").unwrap();
    std::fs::write(path.join("work.txt"), "done\n").unwrap();
    let commit = git
        .commit_all(&path, "work", &[("Ralph-Story", "S-1")])
        .unwrap()
        .unwrap();
    git.worktree_remove(&path).unwrap();
    assert!(!path.exists());
    assert!(
        git.branch_exists("story").unwrap(),
        "the branch outlives its worktree"
    );

    let again = wt_path(&repo, "S-1-resumed");
    git.worktree_attach(&again, "story").unwrap();
    assert_eq!(git_at(&repo, &again, &["rev-parse", "HEAD"]).trim(), commit);
    assert_eq!(
        std::fs::read_to_string(again.join("work.txt")).unwrap(),
        "done\n"
    );
}

#[test]
fn detached_worktrees_move_no_branch() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let refs_before = repo.git(&["for-each-ref"]);
    let path = wt_path(&repo, "verify");
    git.worktree_add_detached(&path, "HEAD").unwrap();
    let entry = entry_for(&git, &path).unwrap();
    assert_eq!(entry.branch, None);
    assert_eq!(repo.git(&["for-each-ref"]), refs_before);
}

#[test]
fn remove_refuses_uncommitted_and_untracked_work_but_not_ignored_files() {
    let repo = Repo::with_commit(&[("a.txt", "a\n"), (".gitignore", "target/\n")]);
    let git = repo.discover();
    let path = wt_path(&repo, "S-1");
    git.worktree_add(&path, "story", "HEAD").unwrap();

    std::fs::create_dir_all(path.join("target")).unwrap();
    std::fs::write(path.join("target/out.o"), "build output").unwrap();
    assert!(git.is_clean(&path).unwrap(), "ignored files are not work");

    std::fs::write(path.join("new.txt"), "untracked\n").unwrap();
    assert!(!git.is_clean(&path).unwrap(), "an untracked file is work");
    match git.worktree_remove(&path).unwrap_err() {
        GitError::WorktreeDirty { entries, .. } => assert_eq!(entries, ["?? new.txt"]),
        other => panic!("expected WorktreeDirty, got {other:?}"),
    }
    std::fs::remove_file(path.join("new.txt")).unwrap();
    std::fs::write(path.join("a.txt"), "changed\n").unwrap();
    assert!(matches!(
        git.worktree_remove(&path),
        Err(GitError::WorktreeDirty { .. })
    ));
    assert_eq!(
        std::fs::read_to_string(path.join("a.txt")).unwrap(),
        "changed\n"
    );
    assert!(entry_for(&git, &path).is_some());

    git.commit_all(&path, "keep it", &[]).unwrap().unwrap();
    git.worktree_remove(&path).unwrap();
    assert!(!path.exists());
    assert!(entry_for(&git, &path).is_none());
}

#[test]
fn prune_forgets_worktrees_whose_directory_is_gone() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let path = wt_path(&repo, "S-1");
    git.worktree_add(&path, "story", "HEAD").unwrap();
    std::fs::remove_dir_all(&path).unwrap();
    let entry = entry_for(&git, &path).unwrap();
    assert!(entry.prunable.is_some(), "{entry:?}");
    git.worktree_prune().unwrap();
    assert!(entry_for(&git, &path).is_none());
    assert!(git.branch_exists("story").unwrap());
}

#[test]
fn only_linked_worktrees_of_this_repository_are_written() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    repo.write("a.txt", "user's change\n");
    let before = repo.snapshot();
    // The main worktree is the user's, and a directory inside it whose `.git` is missing
    // would make git find the user's repository.
    let plain = repo.root.join(".ralph/worktrees/broken");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(plain.join("x.txt"), "x\n").unwrap();
    let other = Repo::with_commit(&[("o.txt", "o\n")]);
    let foreign = wt_path(&other, "theirs");
    other
        .discover()
        .worktree_add(&foreign, "b", "HEAD")
        .unwrap();
    for dir in [repo.root.clone(), plain.clone(), foreign.clone()] {
        for err in [
            git.commit_all(&dir, "m", &[]).unwrap_err(),
            git.worktree_remove(&dir).unwrap_err(),
            git.abort_merge(&dir).unwrap_err(),
        ] {
            assert!(
                matches!(err, GitError::NotOurWorktree(_)),
                "{dir:?}: {err:?}"
            );
        }
    }
    let mut after = repo.snapshot();
    after.status = after
        .status
        .lines()
        .filter(|l| !l.contains(".ralph/"))
        .map(|l| format!("{l}\n"))
        .collect();
    after.files.retain(|p, _| !p.starts_with(".ralph"));
    assert_eq!(after, before);
    assert!(
        git.is_clean(&repo.root).is_ok(),
        "reading the main worktree is allowed"
    );
}

#[test]
fn a_clean_worktree_is_reused_for_the_next_story() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let path = wt_path(&repo, "slot-0");
    git.worktree_add(&path, "story/1", "HEAD").unwrap();
    std::fs::write(path.join("one.txt"), "1\n").unwrap();
    // Dirty: refused, nothing switched.
    let err = git.worktree_reuse(&path, "story/2", "main").unwrap_err();
    assert!(matches!(err, GitError::WorktreeDirty { .. }), "{err:?}");
    let first = git.commit_all(&path, "story 1", &[]).unwrap().unwrap();

    git.worktree_reuse(&path, "story/2", "main").unwrap();
    let entry = entry_for(&git, &path).unwrap();
    assert_eq!(entry.branch.as_deref(), Some("refs/heads/story/2"));
    assert!(!path.join("one.txt").exists(), "story 2 starts from main");
    assert_eq!(
        git.rev_parse("refs/heads/story/1").unwrap(),
        Some(first.clone())
    );
    // An existing branch elsewhere: never moved.
    let err = git.worktree_reuse(&path, "story/1", "main").unwrap_err();
    assert!(matches!(err, GitError::BranchExists { .. }), "{err:?}");
    // At the same commit: taken as it is (a resume).
    git.worktree_reuse(&path, "story/1", &first).unwrap();
    assert_eq!(
        std::fs::read_to_string(path.join("one.txt")).unwrap(),
        "1\n"
    );

    git.worktree_checkout_detached(&path, "main").unwrap();
    let entry = entry_for(&git, &path).unwrap();
    assert_eq!(entry.branch, None);
    assert_eq!(entry.head, git.rev_parse("main").unwrap());
    assert!(git.is_clean(&path).unwrap());
}

#[test]
fn a_linked_worktree_opens_as_discover_finds_it() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let path = wt_path(&repo, "S1");
    git.worktree_add(&path, "story/1", "HEAD").unwrap();
    let opened = git.open_linked(&path).unwrap();
    let found = Git::discover(&path).unwrap().unwrap();
    assert_eq!(opened.root, found.root);
    assert_eq!(opened.git_dir, found.git_dir);
    assert_eq!(opened.index_path, found.index_path);
    assert_eq!(opened.common_dir, found.common_dir);
    assert_eq!(opened.empty_tree, found.empty_tree);
    // The user's own worktree is not a linked one.
    assert!(git.open_linked(&git.root).is_err());
}

#[test]
fn a_start_commit_that_is_not_there_is_named_as_missing() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let path = wt_path(&repo, "S1");
    git.worktree_add(&path, "story/1", "HEAD").unwrap();
    git.commit_all(&path, "nothing", &[]).unwrap();
    let gone = "1234567890123456789012345678901234567890";
    let err = git.worktree_reuse(&path, "story/2", gone).unwrap_err();
    assert!(
        matches!(&err, GitError::UnknownCommit(r) if r == gone),
        "{err:?}"
    );
    assert!(err.to_string().contains("git log --all"), "{err}");
    let err = git.create_branch("story/3", gone).unwrap_err();
    assert!(
        matches!(&err, GitError::UnknownCommit(r) if r == gone),
        "{err:?}"
    );
}
