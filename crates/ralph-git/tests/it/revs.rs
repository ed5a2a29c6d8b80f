//! The integration branch's compare-and-swap, branches, and history questions.

use ralph_git::{CasOutcome, Expect, GitError};

use crate::support::Repo;

fn commit(repo: &Repo, file: &str) -> String {
    repo.write(file, format!("{file}\n"));
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", file]);
    repo.git(&["rev-parse", "HEAD"]).trim().to_owned()
}

#[test]
fn cas_moves_only_from_the_expected_value() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let one = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let two = commit(&repo, "b.txt");
    let three = commit(&repo, "c.txt");
    let name = "refs/heads/ralph/plan";

    assert_eq!(
        git.update_ref_cas(name, &one, None).unwrap(),
        CasOutcome::Moved
    );
    // "Must not exist" when it does.
    assert_eq!(
        git.update_ref_cas(name, &two, None).unwrap(),
        CasOutcome::Stale {
            actual: Some(one.clone())
        }
    );
    assert_eq!(
        git.update_ref_cas(name, &two, Some(&one)).unwrap(),
        CasOutcome::Moved
    );
    // A stale expected value: refused, the ref is left where it is.
    assert_eq!(
        git.update_ref_cas(name, &three, Some(&one)).unwrap(),
        CasOutcome::Stale {
            actual: Some(two.clone())
        }
    );
    assert_eq!(git.rev_parse(name).unwrap(), Some(two.clone()));
    // Expecting a value for a ref that does not exist.
    assert_eq!(
        git.update_ref_cas("refs/ralph/candidates/x", &three, Some(&two))
            .unwrap(),
        CasOutcome::Stale { actual: None }
    );
    assert_eq!(git.rev_parse("refs/ralph/candidates/x").unwrap(), None);
    // Errors that are not a mismatch stay errors.
    let missing = "1234567890123456789012345678901234567890";
    assert!(matches!(
        git.update_ref_cas(name, missing, Some(&two)),
        Err(GitError::Failed { .. })
    ));
    assert!(git.update_ref_cas("HEAD", &three, Some(&two)).is_err());
    assert!(git.update_ref_cas("main", &three, Some(&two)).is_err());
    let log = repo.git(&["reflog", "show", "--format=%H %gs", name]);
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(log.contains("ralph: refs/heads/ralph/plan"), "{log}");
}

/// A landing that moves the integration branch only while the story branch it merged still
/// points where it did: a branch moved meanwhile stops the whole transaction and is named.
#[test]
fn a_transaction_lands_only_while_a_verified_ref_stays() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let one = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let two = commit(&repo, "b.txt");
    let three = commit(&repo, "c.txt");
    let (tip, story) = ("refs/heads/ralph/plan", "refs/heads/ralph/plan--S");
    repo.git(&["update-ref", tip, &one]);
    repo.git(&["update-ref", story, &two]);
    let land = |story_at: &str| {
        git.update_refs_cas(&[
            (tip, &three, Expect::At(&one)),
            (story, story_at, Expect::Stays),
        ])
        .unwrap()
    };
    // The story branch is not where the candidate was built from: nothing moves.
    assert_eq!(
        land(&one),
        CasOutcome::Stale {
            actual: Some(two.clone())
        }
    );
    assert_eq!(git.rev_parse(tip).unwrap(), Some(one.clone()));
    // Where it was: the tip moves, the verified ref is not written (no reflog entry).
    assert_eq!(land(&two), CasOutcome::Moved);
    assert_eq!(git.rev_parse(tip).unwrap(), Some(three.clone()));
    assert_eq!(git.rev_parse(story).unwrap(), Some(two.clone()));
    let log = repo.git(&["reflog", "show", "--format=%gs", story]);
    assert!(!log.contains("ralph: land"), "{log}");
}

#[test]
fn history_questions() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let base = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let b = commit(&repo, "b.txt");
    let c = commit(&repo, "c.txt");
    repo.git(&["checkout", "-q", "-b", "side", &base]);
    let d = commit(&repo, "d.txt");

    assert_eq!(git.rev_parse("main").unwrap(), Some(c.clone()));
    assert_eq!(git.rev_parse("refs/heads/nope").unwrap(), None);
    assert!(git.rev_parse("--all").is_err(), "options are not revisions");
    assert_eq!(
        git.tree_of(&c).unwrap(),
        repo.git(&["rev-parse", &format!("{c}^{{tree}}")]).trim()
    );
    assert!(git.tree_of("refs/heads/nope").is_err());
    assert!(git.is_ancestor(&base, &c).unwrap());
    assert!(git.is_ancestor(&c, &c).unwrap());
    assert!(!git.is_ancestor(&c, &base).unwrap());
    assert!(!git.is_ancestor(&d, &c).unwrap());
    assert!(git.is_ancestor("nope", &c).is_err());
    assert_eq!(git.merge_base(&c, &d).unwrap(), Some(base.clone()));
    assert_eq!(
        git.commits_between(&base, &c).unwrap(),
        [b.clone(), c.clone()]
    );
    assert!(git.commits_between(&c, &c).unwrap().is_empty());

    let orphan_tree = git.tree_of(&d).unwrap();
    let orphan = git.commit_tree(&orphan_tree, &[], "unrelated").unwrap();
    assert_eq!(git.merge_base(&orphan, &c).unwrap(), None);
}

#[test]
fn diff_stat_summary_is_short_text() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let base = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    repo.write("a.txt", "a\nmore\n");
    for i in 0..60 {
        repo.write(&format!("many/f{i:02}.txt"), "x\n");
    }
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "many"]);
    let tip = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let summary = git.diff_stat_summary(&base, &tip).unwrap();
    assert!(summary.starts_with(" a.txt        | 1 +\n"), "{summary}");
    assert!(summary.contains(" ...\n"), "{summary}");
    assert!(summary.contains("61 files changed"), "{summary}");
    assert!(summary.lines().count() <= 42, "{summary}");
    assert!(summary.len() <= 4000);
    assert_eq!(git.diff_stat_summary(&tip, &tip).unwrap(), "");
}

#[test]
fn branches_are_created_once_and_never_moved() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let one = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let two = commit(&repo, "b.txt");
    assert!(!git.branch_exists("ralph/plan").unwrap());
    git.create_branch("ralph/plan", &one).unwrap();
    assert!(git.branch_exists("ralph/plan").unwrap());
    git.create_branch("ralph/plan", &one).unwrap();
    let err = git.create_branch("ralph/plan", &two).unwrap_err();
    assert!(matches!(err, GitError::BranchExists { .. }), "{err:?}");
    assert_eq!(git.rev_parse("refs/heads/ralph/plan").unwrap(), Some(one));
    assert!(git.create_branch("bad..name", &two).is_err());
    assert!(git.create_branch("-f", &two).is_err());
}
