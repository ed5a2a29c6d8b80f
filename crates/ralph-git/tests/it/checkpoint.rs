use std::collections::BTreeMap;

use ralph_git::{Git, GitError};

use crate::support::{files_under, git_in, index_fingerprint, Repo};

const REF: &str = "refs/ralph/checkpoints/run1/1";

fn names(files: &BTreeMap<String, Vec<u8>>) -> Vec<&str> {
    files.keys().map(String::as_str).collect()
}

#[test]
fn captures_worktree_without_touching_user_state() {
    let repo = Repo::with_commit(&[
        (".gitignore", "*.log\n"),
        ("staged.txt", "staged v1\n"),
        ("unstaged.txt", "unstaged v1\n"),
        ("both.txt", "both v1\n"),
        ("deleted.txt", "deleted\n"),
        ("rm-staged.txt", "rm staged\n"),
        ("stashed.txt", "stashed v1\n"),
        ("dir/nested.txt", "nested\n"),
    ]);
    // A stash entry that must survive untouched.
    repo.write("stashed.txt", "stashed v2 (in the stash)\n");
    repo.git(&["stash", "-q"]);
    // Staged, unstaged, staged-then-modified, deleted (unstaged and staged), untracked,
    // ignored, and ralph's own state directory.
    repo.write("staged.txt", "staged v2\n");
    repo.git(&["add", "staged.txt"]);
    repo.write("unstaged.txt", "unstaged v2\n");
    repo.write("both.txt", "both v2 (staged)\n");
    repo.git(&["add", "both.txt"]);
    repo.write("both.txt", "both v3 (working tree)\n");
    std::fs::remove_file(repo.root.join("deleted.txt")).unwrap();
    repo.git(&["rm", "-q", "rm-staged.txt"]);
    repo.write("untracked.txt", "new\n");
    repo.write("dir/untracked-nested.txt", "new nested\n");
    repo.write("debug.log", "ignored\n");
    repo.write(".ralph/.gitignore", "*\n");
    repo.write(".ralph/state.db", "sqlite");

    let git = repo.discover();
    let head = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let before = repo.snapshot();
    let index_before = index_fingerprint(&git).unwrap();

    // The scratch directory lives in `.ralph/` as ralph uses it.
    let scratch = repo.root.join(".ralph/tmp");
    let cp = git.checkpoint(REF, "ralph: iteration 1", &scratch).unwrap();

    assert_eq!(
        index_fingerprint(&git).unwrap(),
        index_before,
        "real index rewritten"
    );
    assert_eq!(repo.snapshot(), before);
    assert!(before.stash.contains("WIP on main"), "{}", before.stash);

    // The ref, the tree and the parent.
    assert_eq!(repo.git(&["rev-parse", REF]).trim(), cp.commit);
    assert_eq!(
        repo.git(&["rev-parse", &format!("{}^{{tree}}", cp.commit)])
            .trim(),
        cp.tree
    );
    assert_eq!(cp.refname, REF);
    assert_eq!(repo.parents(&cp.commit), [head.as_str()]);
    assert_eq!(git.head().unwrap().as_deref(), Some(head.as_str()));
    let commit = repo.git(&["cat-file", "-p", &cp.commit]);
    assert!(
        commit.contains("\nauthor ralph <ralph@localhost> "),
        "{commit}"
    );
    assert!(
        commit.contains("\ncommitter ralph <ralph@localhost> "),
        "{commit}"
    );
    assert!(commit.ends_with("\n\nralph: iteration 1\n"), "{commit}");

    let files = repo.tree_files(&cp.tree);
    assert_eq!(
        names(&files),
        [
            ".gitignore",
            "both.txt",
            "dir/nested.txt",
            "dir/untracked-nested.txt",
            "staged.txt",
            "stashed.txt",
            "unstaged.txt",
            "untracked.txt",
        ]
    );
    assert_eq!(files["staged.txt"], b"staged v2\n");
    assert_eq!(files["unstaged.txt"], b"unstaged v2\n");
    assert_eq!(files["both.txt"], b"both v3 (working tree)\n");
    assert_eq!(files["stashed.txt"], b"stashed v1\n");
    assert_eq!(files["untracked.txt"], b"new\n");

    // Nothing left behind but the self-ignoring directory for temporary indexes.
    let leftovers: Vec<_> = files_under(&scratch).into_keys().collect();
    assert_eq!(leftovers, [std::path::Path::new("git-index/.gitignore")]);
}

#[test]
fn unborn_repository_without_an_index() {
    let repo = Repo::unborn();
    repo.write("a.txt", "a\n");
    let git = repo.discover();
    assert!(!git.index_path.exists());
    assert_eq!(git.head().unwrap(), None);
    let before = repo.snapshot();

    let cp = git.checkpoint(REF, "first", &repo.scratch()).unwrap();

    assert!(repo.parents(&cp.commit).is_empty());
    assert_eq!(names(&repo.tree_files(&cp.tree)), ["a.txt"]);
    assert!(
        !git.index_path.exists(),
        "an index was created for the user"
    );
    assert_eq!(repo.snapshot(), before);
    assert_eq!(git.head().unwrap(), None);
}

#[test]
fn unborn_repository_with_staged_files() {
    let repo = Repo::unborn();
    repo.write("staged.txt", "s\n");
    repo.git(&["add", "staged.txt"]);
    repo.write("untracked.txt", "u\n");
    let git = repo.discover();
    let before = repo.snapshot();
    let index_before = index_fingerprint(&git).unwrap();

    let cp = git.checkpoint(REF, "first", &repo.scratch()).unwrap();

    assert!(repo.parents(&cp.commit).is_empty());
    assert_eq!(
        names(&repo.tree_files(&cp.tree)),
        ["staged.txt", "untracked.txt"]
    );
    assert_eq!(index_fingerprint(&git).unwrap(), index_before);
    assert_eq!(repo.snapshot(), before);
}

#[test]
fn parent_follows_head_when_the_agent_commits() {
    let repo = Repo::with_commit(&[("a.txt", "1\n")]);
    let git = repo.discover();
    let first = git
        .checkpoint("refs/ralph/checkpoints/r/1", "1", &repo.scratch())
        .unwrap();
    let head1 = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    assert_eq!(repo.parents(&first.commit), [head1.as_str()]);

    repo.write("a.txt", "2\n");
    repo.git(&["commit", "-q", "-am", "agent commit"]);
    let head2 = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let second = git
        .checkpoint("refs/ralph/checkpoints/r/2", "2", &repo.scratch())
        .unwrap();
    assert_eq!(repo.parents(&second.commit), [head2.as_str()]);
    assert_eq!(git.head().unwrap(), Some(head2));

    // Identical working tree as the new HEAD: same tree, no change since the commit.
    assert_eq!(second.tree, repo.git(&["rev-parse", "HEAD^{tree}"]).trim());
    assert!(git
        .diff_stat(&second.tree, &second.tree)
        .unwrap()
        .is_empty());

    let refs = git.list_refs("refs/ralph/checkpoints/r").unwrap();
    assert_eq!(
        refs,
        [
            (
                "refs/ralph/checkpoints/r/1".to_owned(),
                first.commit.clone()
            ),
            (
                "refs/ralph/checkpoints/r/2".to_owned(),
                second.commit.clone()
            ),
        ]
    );
    assert_eq!(git.list_refs("refs/ralph/checkpoints/r/").unwrap(), refs);
    assert!(git
        .list_refs("refs/ralph/checkpoints/other")
        .unwrap()
        .is_empty());
    assert!(git.list_refs("").unwrap().contains(&(
        "refs/heads/main".to_owned(),
        repo.git(&["rev-parse", "HEAD"]).trim().to_owned()
    )));

    git.delete_ref("refs/ralph/checkpoints/r/1").unwrap();
    git.delete_ref("refs/ralph/checkpoints/r/1").unwrap();
    assert_eq!(git.list_refs("refs/ralph").unwrap(), refs[1..]);
}

#[test]
fn overwriting_a_checkpoint_ref_moves_it() {
    let repo = Repo::with_commit(&[("a.txt", "1\n")]);
    let git = repo.discover();
    let first = git.checkpoint(REF, "1", &repo.scratch()).unwrap();
    repo.write("a.txt", "changed\n");
    let second = git.checkpoint(REF, "2", &repo.scratch()).unwrap();
    assert_ne!(first.commit, second.commit);
    assert_eq!(repo.git(&["rev-parse", REF]).trim(), second.commit);
}

#[test]
fn linked_worktree() {
    let repo = Repo::with_commit(&[("a.txt", "main\n"), ("b.txt", "b\n")]);
    repo.write("main-untracked.txt", "main only\n");
    let wt_path = repo.base().join("wt");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "story",
        wt_path.to_str().unwrap(),
    ]);
    let home = repo.base().join("home");
    std::fs::write(wt_path.join("a.txt"), "changed in worktree\n").unwrap();
    std::fs::write(wt_path.join("wt-new.txt"), "new in worktree\n").unwrap();
    std::fs::remove_file(wt_path.join("b.txt")).unwrap();

    let main_git = repo.discover();
    let main_before = repo.snapshot();
    let main_index = index_fingerprint(&main_git).unwrap();
    let wt_status = |args: &[&str]| git_in(&wt_path, &home, args);
    let wt_before = (
        wt_status(&[
            "status",
            "--porcelain=v2",
            "--branch",
            "--untracked-files=all",
        ]),
        wt_status(&["rev-parse", "HEAD"]),
    );

    let git = Git::discover(&wt_path.join(".")).unwrap().unwrap();
    assert_eq!(git.root, wt_path);
    assert!(
        git.index_path.ends_with(".git/worktrees/wt/index"),
        "{}",
        git.index_path.display()
    );
    let wt_index = index_fingerprint(&git).unwrap();

    let cp = git
        .checkpoint("refs/ralph/checkpoints/story/1", "wt", &repo.scratch())
        .unwrap();
    // Fingerprints first: the `git status` inside `snapshot()` may legitimately rewrite an
    // index (racy-clean smudging), which would hide what the checkpoint did.
    assert_eq!(index_fingerprint(&main_git).unwrap(), main_index);
    assert_eq!(index_fingerprint(&git).unwrap(), wt_index);

    let files = repo.tree_files(&cp.tree);
    assert_eq!(names(&files), ["a.txt", "wt-new.txt"]);
    assert_eq!(files["a.txt"], b"changed in worktree\n");
    assert_eq!(repo.parents(&cp.commit), [wt_before.1.trim().to_owned()]);
    // Refs are shared: the main checkout sees the checkpoint, nothing else changed there.
    assert_eq!(
        repo.git(&["rev-parse", "refs/ralph/checkpoints/story/1"])
            .trim(),
        cp.commit
    );
    assert_eq!(repo.snapshot(), main_before);
    assert_eq!(
        (
            wt_status(&[
                "status",
                "--porcelain=v2",
                "--branch",
                "--untracked-files=all"
            ]),
            wt_status(&["rev-parse", "HEAD"]),
        ),
        wt_before
    );
}

#[test]
fn odd_file_names() {
    let repo = Repo::with_commit(&[("plain.txt", "x\n")]);
    let git = repo.discover();
    let first = git.checkpoint(REF, "1", &repo.scratch()).unwrap();
    let odd = [
        "with space.txt",
        "ünïcödé ✓.txt",
        "new\nline.txt",
        "tab\there.txt",
    ];
    for name in odd {
        repo.write(name, format!("{name}\n"));
    }
    let before = repo.snapshot();
    let second = git.checkpoint(REF, "2", &repo.scratch()).unwrap();
    assert_eq!(repo.snapshot(), before);

    let files = repo.tree_files(&second.tree);
    for name in odd {
        assert_eq!(files[name], format!("{name}\n").as_bytes(), "{name:?}");
    }
    let stat = git.diff_stat(&first.tree, &second.tree).unwrap();
    assert_eq!(stat.files_changed, 4);
    // "new\nline.txt\n" is two lines.
    assert_eq!(stat.insertions, 5);
    let mut paths = stat.paths.clone();
    paths.sort();
    let mut expected = odd.map(str::to_owned).to_vec();
    expected.sort();
    assert_eq!(paths, expected);
}

#[test]
fn scratch_dir_inside_the_worktree_is_not_captured() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    // Not ignored by anything of the user's: only our self-ignoring sub-directory keeps the
    // temporary index out of the snapshot.
    let cp = git
        .checkpoint(REF, "1", &repo.root.join("scratch-in-tree"))
        .unwrap();
    assert_eq!(names(&repo.tree_files(&cp.tree)), ["a.txt"]);
}

#[test]
fn hooks_and_signing_are_never_run() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let hooks = repo.base().join("hooks");
    let marker = repo.base().join("hook-ran");
    std::fs::create_dir_all(&hooks).unwrap();
    for hook in ["reference-transaction", "post-index-change", "pre-commit"] {
        let path = hooks.join(hook);
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho {hook} >> '{}'\nexit 1\n", marker.display()),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    repo.git(&["config", "core.hooksPath", hooks.to_str().unwrap()]);
    repo.git(&["config", "commit.gpgSign", "true"]);
    repo.git(&["config", "gpg.program", "false"]);
    repo.git(&["config", "core.safecrlf", "true"]);
    repo.git(&["config", "core.autocrlf", "input"]);
    repo.write("crlf.txt", "line\r\n");

    let git = repo.discover();
    let cp = git.checkpoint(REF, "1", &repo.scratch()).unwrap();
    assert!(
        !marker.exists(),
        "{}",
        std::fs::read_to_string(&marker).unwrap()
    );
    assert!(!repo.git(&["cat-file", "-p", &cp.commit]).contains("gpgsig"));
    assert!(repo.tree_files(&cp.tree).contains_key("crlf.txt"));
}

#[test]
fn rejects_refs_outside_ralphs_namespace() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let before = repo.snapshot();
    for bad in ["refs/heads/main", "HEAD", "refs/stash", "refs/ralph/"] {
        let err = git.checkpoint(bad, "x", &repo.scratch()).unwrap_err();
        assert!(matches!(err, GitError::InvalidRef(_)), "{bad}: {err}");
        assert!(matches!(git.delete_ref(bad), Err(GitError::InvalidRef(_))));
    }
    assert_eq!(repo.snapshot(), before);
}

#[test]
fn failures_carry_args_and_stderr_and_clean_up() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let scratch = repo.scratch();
    // A corrupt index makes `git add` fail after the copy was made.
    let corrupt = repo.base().join("corrupt-index");
    std::fs::write(&corrupt, b"not an index at all").unwrap();
    let git = Git {
        index_path: corrupt,
        ..repo.discover()
    };
    let err = git.checkpoint(REF, "x", &scratch).unwrap_err();
    match &err {
        GitError::Failed { args, code, stderr } => {
            assert!(args.starts_with("add -A -- . "), "{args}");
            assert_ne!(*code, 0);
            assert!(stderr.contains("index"), "{stderr}");
        }
        other => panic!("unexpected error: {other:?}"),
    }
    assert!(
        err.to_string().starts_with("git add -A -- . ")
            && err.to_string().contains(" failed (exit "),
        "{err}"
    );
    let leftovers: Vec<_> = files_under(&scratch).into_keys().collect();
    assert_eq!(leftovers, [std::path::Path::new("git-index/.gitignore")]);

    // An invalid ref name fails in update-ref, after the objects were written.
    let git = repo.discover();
    let err = git
        .checkpoint("refs/ralph/bad..name", "x", &scratch)
        .unwrap_err();
    assert!(
        matches!(&err, GitError::Failed { args, .. } if args.starts_with("update-ref refs/ralph/bad..name ")),
        "{err:?}"
    );
}

/// Racy git: an entry whose mtime is not older than the index file itself cannot be trusted
/// by its stat data alone. The temporary index must keep the real index's mtime, or a file
/// rewritten (same size) in the same second the user's index was written would be snapshotted
/// with its old content.
#[test]
fn racily_clean_entries_are_rehashed() {
    use std::fs::File;
    use std::time::{Duration, UNIX_EPOCH};

    let repo = Repo::with_commit(&[("other.txt", "o\n")]);
    // ctime cannot be set from userspace; ignoring it makes the race deterministic: the stat
    // data of `f` will match its index entry exactly although its content changed.
    repo.git(&["config", "core.trustctime", "false"]);
    let when = UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000);
    let set_mtime = |path: &std::path::Path| {
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    };
    let f = repo.root.join("f.txt");
    repo.write("f.txt", "aaaa\n");
    set_mtime(&f);
    repo.git(&["add", "f.txt"]);
    let git = repo.discover();
    // As if the index had been written in the same second as f.txt's last change...
    set_mtime(&git.index_path);
    // ...and f.txt rewritten right after, same size, same mtime.
    repo.write("f.txt", "bbbb\n");
    set_mtime(&f);

    let cp = git.checkpoint(REF, "racy", &repo.scratch()).unwrap();
    assert_eq!(repo.tree_files(&cp.tree)["f.txt"], b"bbbb\n");
}

/// Regression (see the e2e `a_storys_checkpoint_is_on_the_commit_before_its_story_commit_never_on_it`):
/// a checkpoint written on a thread while a story's commit moves HEAD goes on the commit the
/// caller names, not on HEAD as it is by then.
#[test]
fn a_checkpoint_of_a_snapshot_goes_on_the_parent_given_even_after_head_moved() {
    let repo = Repo::with_commit(&[("a.txt", "1\n")]);
    let git = repo.discover();
    let before = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    repo.write("a.txt", "2\n");
    let snap = git
        .snapshot_with(&repo.scratch(), &ralph_git::CheckpointOptions::default())
        .unwrap();
    // The story's commit lands meanwhile.
    repo.git(&["commit", "-qam", "ralph: S iteration 1"]);
    let cp = git
        .checkpoint_of(
            "refs/ralph/checkpoints/r/0001",
            "cp",
            snap.clone(),
            Some(&before),
        )
        .unwrap();
    assert_eq!(repo.parents(&cp.commit), std::slice::from_ref(&before));
    // Without one, HEAD as git finds it (the single loop, where nothing else moves HEAD).
    let cp = git
        .checkpoint_of("refs/ralph/checkpoints/r/0002", "cp", snap, None)
        .unwrap();
    assert_ne!(repo.parents(&cp.commit), [before]);
}
