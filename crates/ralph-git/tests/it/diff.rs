use ralph_git::{DiffStat, GitError};

use crate::support::Repo;

#[test]
fn counts_between_two_checkpoints() {
    let repo = Repo::with_commit(&[
        ("keep.txt", "k1\nk2\nk3\n"),
        ("edit.txt", "a\nb\nc\n"),
        ("gone.txt", "g1\ng2\n"),
        ("move-me.txt", "m1\nm2\nm3\nm4\nm5\n"),
    ]);
    let git = repo.discover();
    let first = git
        .checkpoint("refs/ralph/checkpoints/d/1", "1", &repo.scratch())
        .unwrap();

    repo.write("edit.txt", "a\nB\nc\nd\n"); // +2 -1
    std::fs::remove_file(repo.root.join("gone.txt")).unwrap(); // -2
    std::fs::rename(repo.root.join("move-me.txt"), repo.root.join("moved.txt")).unwrap(); // rename
    repo.write("new.txt", "n\n"); // +1
    repo.write("image.bin", [0u8, 159, 146, 150, 0, 1, 2, 255]); // binary, 0/0
    let second = git
        .checkpoint("refs/ralph/checkpoints/d/2", "2", &repo.scratch())
        .unwrap();

    let stat = git.diff_stat(&first.tree, &second.tree).unwrap();
    assert_eq!(stat.files_changed, 5, "{stat:?}");
    assert_eq!(stat.insertions, 3, "{stat:?}");
    assert_eq!(stat.deletions, 3, "{stat:?}");
    let mut paths = stat.paths.clone();
    paths.sort();
    assert_eq!(
        paths,
        ["edit.txt", "gone.txt", "image.bin", "moved.txt", "new.txt"]
    );

    // Commits work as well as trees, and the reverse direction swaps the counts.
    let back = git.diff_stat(&second.commit, &first.commit).unwrap();
    assert_eq!(
        (back.files_changed, back.insertions, back.deletions),
        (5, 3, 3)
    );

    // No change, no process.
    assert_eq!(
        git.diff_stat(&second.tree, &second.tree).unwrap(),
        DiffStat::default()
    );
    let third = git
        .checkpoint("refs/ralph/checkpoints/d/3", "3", &repo.scratch())
        .unwrap();
    assert_eq!(third.tree, second.tree);
}

#[test]
fn bad_revisions() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    assert!(matches!(
        git.diff_stat("--output=/tmp/x", "HEAD"),
        Err(GitError::InvalidRevision(_))
    ));
    let missing = "0123456789abcdef0123456789abcdef01234567";
    let err = git.diff_stat(missing, "HEAD").unwrap_err();
    match err {
        GitError::Failed { args, stderr, .. } => {
            assert!(args.starts_with("diff-tree "), "{args}");
            assert!(!stderr.is_empty());
        }
        other => panic!("{other:?}"),
    }
}
