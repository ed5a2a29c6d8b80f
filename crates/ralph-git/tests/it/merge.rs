//! Candidates: the fast path in the object store (`merge_tree` + `commit_tree`) and the merge
//! in a verification worktree that leaves a conflict for the resolver.

use ralph_git::{Git, MergeOutcome, MergeTreeOutcome};

use crate::support::Repo;
use crate::worktree::{git_at, wt_path};

/// `main` with `shared.txt`; branch `left` and branch `right` each change it (conflicting when
/// `conflict`) and add a file of their own. Returns (left tip, right tip).
fn two_stories(repo: &Repo, conflict: bool) -> (String, String) {
    let base = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let mut tips = Vec::new();
    for side in ["left", "right"] {
        repo.git(&["checkout", "-q", "-b", side, &base]);
        repo.write(&format!("{side}.txt"), format!("{side}\n"));
        if conflict {
            repo.write("shared.txt", format!("one\n{side}\nthree\n"));
        }
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", side]);
        tips.push(repo.git(&["rev-parse", "HEAD"]).trim().to_owned());
    }
    repo.git(&["checkout", "-q", "main"]);
    (tips[0].clone(), tips[1].clone())
}

fn setup(conflict: bool) -> (Repo, Git, String, String) {
    let repo = Repo::with_commit(&[("shared.txt", "one\ntwo\nthree\n")]);
    let (left, right) = two_stories(&repo, conflict);
    let git = repo.discover();
    (repo, git, left, right)
}

#[test]
fn merge_tree_builds_a_clean_candidate_without_a_worktree() {
    let (repo, git, left, right) = setup(false);
    let before = repo.snapshot();
    let MergeTreeOutcome::Clean { tree } = git.merge_tree(&left, &right).unwrap() else {
        panic!("expected a clean merge");
    };
    let candidate = git
        .commit_tree(&tree, &[&left, &right], "merge right")
        .unwrap();
    git.update_ref_cas("refs/ralph/candidates/p/1", &candidate, None)
        .unwrap();
    let files = repo.tree_files(&candidate);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, ["left.txt", "right.txt", "shared.txt"]);
    assert_eq!(repo.parents(&candidate), [left, right]);
    assert_eq!(
        repo.snapshot(),
        before,
        "no worktree, index or user ref touched"
    );
}

#[test]
fn merge_tree_reports_conflicting_files() {
    let (repo, git, left, right) = setup(true);
    let before = repo.snapshot();
    match git.merge_tree(&left, &right).unwrap() {
        MergeTreeOutcome::Conflict { tree, files } => {
            assert_eq!(files, ["shared.txt"]);
            let content = String::from_utf8(repo.tree_files(&tree)["shared.txt"].clone()).unwrap();
            assert!(content.contains("<<<<<<<"), "{content}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(repo.snapshot(), before);
    assert!(git.merge_tree(&left, "no-such-rev").is_err());
}

#[test]
fn merge_into_makes_a_merge_commit_in_the_worktree() {
    let (repo, git, left, right) = setup(false);
    let path = wt_path(&repo, "verify");
    git.worktree_add_detached(&path, &left).unwrap();
    let outcome = git
        .merge_into(&path, &right, "Merge S-2 into plan")
        .unwrap();
    let MergeOutcome::Clean { commit } = outcome else {
        panic!("expected a clean merge, got {outcome:?}");
    };
    assert_eq!(repo.parents(&commit), [left.clone(), right.clone()]);
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s", &commit]).trim(),
        "Merge S-2 into plan"
    );
    assert!(git.is_clean(&path).unwrap());
    // Merging it again: nothing to do, HEAD unchanged.
    assert_eq!(
        git.merge_into(&path, &right, "again").unwrap(),
        MergeOutcome::UpToDate {
            commit: commit.clone()
        }
    );
    // A fast-forward is still a merge commit made by ralph (--no-ff).
    let ff = wt_path(&repo, "ff");
    let main = repo.git(&["rev-parse", "main"]).trim().to_owned();
    git.worktree_add_detached(&ff, &main).unwrap();
    let MergeOutcome::Clean { commit } = git.merge_into(&ff, &left, "ff").unwrap() else {
        panic!("expected a merge commit");
    };
    assert_eq!(repo.parents(&commit), [main, left]);
}

#[test]
fn a_conflict_stays_for_the_resolver_then_commits_or_aborts() {
    let (repo, git, left, right) = setup(true);
    let path = wt_path(&repo, "verify");
    git.worktree_add_detached(&path, &left).unwrap();
    let outcome = git.merge_into(&path, &right, "Merge S-2").unwrap();
    assert_eq!(
        outcome,
        MergeOutcome::Conflict {
            files: vec!["shared.txt".to_owned()]
        }
    );
    let text = std::fs::read_to_string(path.join("shared.txt")).unwrap();
    assert!(
        text.contains("<<<<<<<") && text.contains(">>>>>>>"),
        "{text}"
    );
    assert!(!git.is_clean(&path).unwrap());

    git.abort_merge(&path).unwrap();
    assert!(git.is_clean(&path).unwrap());
    assert_eq!(git_at(&repo, &path, &["rev-parse", "HEAD"]).trim(), left);

    // Again, and this time the "resolver" edits the file and ralph concludes the merge.
    assert!(matches!(
        git.merge_into(&path, &right, "Merge S-2").unwrap(),
        MergeOutcome::Conflict { .. }
    ));
    std::fs::write(path.join("shared.txt"), "one\nleft and right\nthree\n").unwrap();
    let merged = git.commit_merge(&path, "Merge S-2 (resolved)\n").unwrap();
    assert_eq!(repo.parents(&merged), [left, right]);
    assert_eq!(
        repo.tree_files(&merged)["shared.txt"],
        b"one\nleft and right\nthree\n"
    );
    assert_eq!(
        repo.git(&["log", "-1", "--format=%B", &merged]),
        "Merge S-2 (resolved)\n\n"
    );
    assert!(
        git.is_clean(&path).unwrap(),
        "MERGE_HEAD and the markers are gone"
    );
    let merge_head = git_at(&repo, &path, &["rev-parse", "--verify", "-q", "MERGE_HEAD"]);
    assert_eq!(merge_head, "");
}

#[test]
fn a_merge_refused_before_it_starts_is_an_error_not_a_conflict() {
    let (repo, git, left, right) = setup(true);
    let path = wt_path(&repo, "verify");
    git.worktree_add_detached(&path, &left).unwrap();
    std::fs::write(path.join("shared.txt"), "local edit\n").unwrap();
    let err = git.merge_into(&path, &right, "m").unwrap_err();
    assert!(matches!(err, ralph_git::GitError::Failed { .. }), "{err:?}");
    assert_eq!(
        std::fs::read_to_string(path.join("shared.txt")).unwrap(),
        "local edit\n"
    );
}
