//! `run_checkpoints` and `rollback_to`: restoring a run's checkpoint, undoably.

use ralph_git::{refs, RollbackError, RollbackOptions, RunCheckpoint};

use crate::support::{files_under, Repo};

const NOW: i64 = 1_795_256_100; // 2026-11-21T10:15:00Z

fn options(scratch: &std::path::Path, dry_run: bool) -> RollbackOptions<'_> {
    RollbackOptions {
        scratch_dir: scratch,
        dry_run,
        now: NOW,
    }
}

fn named<'a>(list: &'a [RunCheckpoint], name: &str) -> &'a RunCheckpoint {
    list.iter().find(|c| c.name == name).unwrap()
}

#[test]
fn rolls_back_saves_the_replaced_state_and_can_be_undone() {
    let repo = Repo::with_commit(&[("a.txt", "a1\n"), ("gone.txt", "gone\n")]);
    let git = repo.discover();
    let scratch = repo.scratch();
    git.checkpoint(&refs::checkpoint_ref("r", 0), "before", &scratch)
        .unwrap();
    repo.write("a.txt", "a2\n");
    repo.write("new.txt", "new\n");
    std::fs::remove_file(repo.root.join("gone.txt")).unwrap();
    git.checkpoint(&refs::checkpoint_ref("r", 1), "after 1", &scratch)
        .unwrap();
    // Another run's checkpoints are not this run's.
    git.checkpoint(&refs::checkpoint_ref("other", 1), "x", &scratch)
        .unwrap();
    let changed = files_under(&repo.root);
    let head = repo.git(&["rev-parse", "HEAD"]);
    let staged = repo.git(&["ls-files", "-s"]);

    let list = git.run_checkpoints("r").unwrap();
    let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["0000", "0001"]);
    assert_eq!(list[0].iteration, Some(0));
    assert_eq!(list[1].title(), "iteration 1");
    assert!(list.iter().all(|c| c.run_id == "r"));

    // A dry run reports and changes nothing.
    let plan = git.rollback_to(&list[0], &options(&scratch, true)).unwrap();
    assert!(plan.dry_run && plan.saved.is_none());
    assert_eq!(plan.report.written, ["a.txt", "gone.txt"]);
    assert_eq!(plan.report.deleted, ["new.txt"]);
    assert_eq!(files_under(&repo.root), changed);
    assert_eq!(git.run_checkpoints("r").unwrap().len(), 2);

    let done = git
        .rollback_to(&list[0], &options(&scratch, false))
        .unwrap();
    assert_eq!(done.report, plan.report);
    assert_eq!(done.target, list[0]);
    let saved = done.saved.clone().unwrap();
    assert_eq!(
        saved.refname,
        "refs/ralph/checkpoints/r/rollback-20261121-101500"
    );
    assert_eq!(done.undo_name(), Some("rollback-20261121-101500"));
    assert_eq!(
        std::fs::read_to_string(repo.root.join("a.txt")).unwrap(),
        "a1\n"
    );
    assert!(repo.root.join("gone.txt").exists());
    assert!(!repo.root.join("new.txt").exists());
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(repo.git(&["ls-files", "-s"]), staged);
    let message = repo.git(&["log", "-1", "--format=%s", &saved.refname]);
    assert_eq!(
        message.trim(),
        "ralph checkpoint: before rollback to iteration 0"
    );

    // Undo: roll back to the saved state, in the same second: a new name, not a clash.
    let list = git.run_checkpoints("r").unwrap();
    let undo = named(&list, "rollback-20261121-101500");
    assert_eq!(undo.iteration, None);
    let back = git.rollback_to(undo, &options(&scratch, false)).unwrap();
    assert_eq!(files_under(&repo.root), changed);
    assert_eq!(back.undo_name(), Some("rollback-20261121-101500-2"));
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s", &back.saved.unwrap().refname])
            .trim(),
        "ralph checkpoint: before rollback to rollback-20261121-101500"
    );
}

#[test]
fn nothing_to_roll_back_leaves_no_checkpoint() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let scratch = repo.scratch();
    git.checkpoint(&refs::checkpoint_ref("r", 0), "before", &scratch)
        .unwrap();
    let list = git.run_checkpoints("r").unwrap();
    let done = git
        .rollback_to(&list[0], &options(&scratch, false))
        .unwrap();
    assert!(done.saved.is_none() && done.report.is_empty());
    assert_eq!(done.undo_name(), None);
    assert_eq!(git.run_checkpoints("r").unwrap().len(), 1);
}

#[test]
fn a_missing_target_fails_before_anything_changes() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let scratch = repo.scratch();
    git.checkpoint(&refs::checkpoint_ref("r", 0), "before", &scratch)
        .unwrap();
    let mut target = git.run_checkpoints("r").unwrap().remove(0);
    repo.write("a.txt", "changed\n");
    target.commit.tree = "0".repeat(40);
    let err = git
        .rollback_to(&target, &options(&scratch, false))
        .unwrap_err();
    let RollbackError::Restore { saved, .. } = &err else {
        panic!("{err:?}");
    };
    // The replaced state is saved and named in the error, so it can be put back.
    assert!(saved
        .refname
        .starts_with("refs/ralph/checkpoints/r/rollback-"));
    assert!(
        err.to_string()
            .starts_with("failed to restore the checkpoint: "),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(repo.root.join("a.txt")).unwrap(),
        "changed\n"
    );
}
