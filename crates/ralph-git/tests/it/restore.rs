//! `restore`, `restore_plan`, `snapshot_tree`, the untracked size limit and `list_commits`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ralph_git::{CheckpointOptions, GitError, RestoreReport, DEFAULT_MAX_UNTRACKED_BYTES};

use crate::support::{files_under, index_fingerprint, Repo};

const MIB: usize = 1024 * 1024;

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn strs(v: &[&str]) -> Vec<String> {
    sorted(v.iter().map(|s| (*s).to_owned()).collect())
}

/// Working-tree files outside `.git`, `.ralph/` and the scratch space, as path → content.
fn visible_files(repo: &Repo) -> BTreeMap<String, Vec<u8>> {
    files_under(&repo.root)
        .into_iter()
        .map(|(p, c)| (p.to_string_lossy().into_owned(), c))
        .filter(|(p, _)| !p.starts_with(".ralph/"))
        .collect()
}

/// Directories under the root (relative), to prove emptied ones are removed.
fn dirs_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name() == ".git" {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                out.push(entry.path().strip_prefix(root).unwrap().to_owned());
                stack.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

/// `ls-tree -r` lines (mode, type, id and path) of a tree.
fn listing(repo: &Repo, tree: &str) -> String {
    repo.git(&["ls-tree", "-r", "--full-tree", tree])
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o111 != 0
}

/// Every kind of change an agent makes, undone by one restore: the working tree afterwards
/// snapshots to exactly the checkpoint's tree (content, modes, symlinks), and nothing of the
/// user's git state moved.
#[test]
fn restores_every_kind_of_change_exactly() {
    let repo = Repo::with_commit(&[
        (".gitignore", "*.log\n"),
        ("keep.txt", "keep\n"),
        ("edit.txt", "a\nb\n"),
        ("gone.txt", "gone\n"),
        ("move-me.txt", "moving\n"),
        ("script.sh", "#!/bin/sh\n"),
        ("becomes-dir", "a file for now\n"),
        ("becomes-file/inner.txt", "inner\n"),
        ("becomes-file/deeper/x.txt", "x\n"),
        ("with space/ünïcödé ✓.txt", "odd\n"),
        ("link-target.txt", "target\n"),
    ]);
    // The user's own state: a stash, a staged change, an unstaged one, an ignored file.
    repo.write("keep.txt", "stashed\n");
    repo.git(&["stash", "-q"]);
    #[cfg(unix)]
    {
        set_mode(&repo.root.join("script.sh"), 0o755);
        std::os::unix::fs::symlink("link-target.txt", repo.root.join("link")).unwrap();
    }
    repo.write("edit.txt", "a\nb\nstaged\n");
    repo.git(&["add", "edit.txt"]);
    repo.write("untracked.txt", "the user's untracked file\n");
    repo.write("debug.log", "ignored\n");
    repo.write(".ralph/.gitignore", "*\n");
    repo.write(".ralph/state.db", "state");

    let git = repo.discover();
    let scratch = repo.root.join(".ralph");
    let cp = git
        .checkpoint("refs/ralph/checkpoints/r/0001", "1", &scratch)
        .unwrap();
    let wanted = visible_files(&repo);

    // The agent at work.
    repo.write("edit.txt", "a\nB\n");
    std::fs::remove_file(repo.root.join("gone.txt")).unwrap();
    std::fs::rename(repo.root.join("move-me.txt"), repo.root.join("moved.txt")).unwrap();
    #[cfg(unix)]
    {
        set_mode(&repo.root.join("script.sh"), 0o644);
        std::fs::remove_file(repo.root.join("link")).unwrap();
        repo.write("link", "now a regular file\n");
    }
    repo.write("new/sub/dir/file.txt", "new\n");
    repo.write("another new.txt", "new\n");
    std::fs::remove_file(repo.root.join("becomes-dir")).unwrap();
    repo.write("becomes-dir/child.txt", "child\n");
    std::fs::remove_dir_all(repo.root.join("becomes-file")).unwrap();
    repo.write("becomes-file", "now a file\n");
    repo.write("with space/ünïcödé ✓.txt", "changed\n");
    std::fs::remove_file(repo.root.join("untracked.txt")).unwrap();
    repo.write("debug.log", "ignored, changed by the agent\n");
    repo.write(".ralph/state.db", "state v2");

    let head = repo.git(&["rev-parse", "HEAD"]);
    let branch = repo.git(&["symbolic-ref", "HEAD"]);
    let staged = repo.git_bytes(&["diff", "--cached", "--binary"]);
    let stash = repo.git(&["stash", "list", "--format=%H %gs"]);
    let index = index_fingerprint(&git).unwrap();
    let refs = repo.git(&["for-each-ref"]);

    let plan = git.restore_plan(&cp.tree, &scratch, None).unwrap();
    let report = git.restore(&cp.tree, &scratch, None).unwrap();
    assert_eq!(plan, report, "the dry run announces exactly what happens");

    // The user's git state, index bytes and mtime included, did not move.
    assert_eq!(index_fingerprint(&git).unwrap(), index);
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(repo.git(&["symbolic-ref", "HEAD"]), branch);
    assert_eq!(repo.git_bytes(&["diff", "--cached", "--binary"]), staged);
    assert_eq!(repo.git(&["stash", "list", "--format=%H %gs"]), stash);
    assert_eq!(repo.git(&["for-each-ref"]), refs);

    // The working tree is the checkpoint again, modes and symlinks included.
    let now = git.snapshot_tree(&scratch).unwrap();
    assert_eq!(listing(&repo, &now), listing(&repo, &cp.tree));
    assert_eq!(now, cp.tree);
    let mut expected = wanted.clone();
    // Ignored files are not part of the checkpoint and are never touched.
    expected.insert(
        "debug.log".into(),
        b"ignored, changed by the agent\n".to_vec(),
    );
    assert_eq!(visible_files(&repo), expected);
    assert_eq!(
        repo.tree_files(&cp.tree)["untracked.txt"],
        wanted["untracked.txt"]
    );
    assert_eq!(
        std::fs::read(repo.root.join(".ralph/state.db")).unwrap(),
        b"state v2"
    );
    #[cfg(unix)]
    {
        assert!(is_executable(&repo.root.join("script.sh")));
        assert_eq!(
            std::fs::read_link(repo.root.join("link")).unwrap(),
            Path::new("link-target.txt")
        );
    }
    // Emptied directories are gone.
    let dirs = dirs_under(&repo.root);
    for gone in ["new", "new/sub", "new/sub/dir"] {
        assert!(!dirs.contains(&PathBuf::from(gone)), "{gone} left behind");
    }
    assert!(repo.root.join("becomes-file").is_dir());
    assert!(repo.root.join("becomes-dir").is_file());

    let mut written = strs(&[
        "edit.txt",
        "gone.txt",
        "move-me.txt",
        "becomes-dir",
        "becomes-file/inner.txt",
        "becomes-file/deeper/x.txt",
        "with space/ünïcödé ✓.txt",
        "untracked.txt",
    ]);
    let mut deleted = strs(&[
        "moved.txt",
        "new/sub/dir/file.txt",
        "another new.txt",
        "becomes-dir/child.txt",
        "becomes-file",
    ]);
    if cfg!(unix) {
        written.extend(["script.sh".to_owned(), "link".to_owned()]);
        written.sort();
    }
    deleted.sort();
    assert_eq!(sorted(report.written.clone()), written);
    assert_eq!(sorted(report.deleted.clone()), deleted);
    assert!(report.skipped.is_empty(), "{report:?}");

    // Restoring again finds nothing to do.
    let again = git.restore(&cp.tree, &scratch, None).unwrap();
    assert_eq!(again, RestoreReport::default());
    assert!(again.is_empty());
}

#[test]
fn a_dry_run_changes_nothing() {
    let repo = Repo::with_commit(&[("a.txt", "a\n"), ("b.txt", "b\n")]);
    let git = repo.discover();
    let cp = git
        .checkpoint("refs/ralph/checkpoints/r/0000", "0", &repo.scratch())
        .unwrap();
    repo.write("a.txt", "changed\n");
    repo.write("c/new.txt", "new\n");
    std::fs::remove_file(repo.root.join("b.txt")).unwrap();
    let before = repo.snapshot();
    let index = index_fingerprint(&git).unwrap();

    let plan = git.restore_plan(&cp.tree, &repo.scratch(), None).unwrap();

    assert_eq!(sorted(plan.written.clone()), strs(&["a.txt", "b.txt"]));
    assert_eq!(plan.deleted, ["c/new.txt"]);
    assert_eq!(index_fingerprint(&git).unwrap(), index);
    assert_eq!(repo.snapshot(), before);
}

#[test]
fn restores_only_the_given_paths() {
    let repo = Repo::with_commit(&[
        ("src/a.rs", "a1\n"),
        ("src/b.rs", "b1\n"),
        ("migrations/001.sql", "create\n"),
        ("README.md", "r1\n"),
    ]);
    let git = repo.discover();
    let cp = git
        .checkpoint("refs/ralph/checkpoints/r/0000", "0", &repo.scratch())
        .unwrap();
    repo.write("src/a.rs", "a2\n");
    repo.write("src/b.rs", "b2\n");
    repo.write("migrations/001.sql", "drop everything\n");
    repo.write("migrations/002.sql", "new migration\n");
    repo.write("README.md", "r2\n");

    let paths = vec!["migrations/".to_owned(), "src/a.rs".to_owned()];
    let report = git
        .restore(&cp.tree, &repo.scratch(), Some(&paths))
        .unwrap();

    assert_eq!(
        sorted(report.written),
        strs(&["migrations/001.sql", "src/a.rs"])
    );
    assert_eq!(report.deleted, ["migrations/002.sql"]);
    let files = visible_files(&repo);
    assert_eq!(files["src/a.rs"], b"a1\n");
    assert_eq!(files["migrations/001.sql"], b"create\n");
    assert!(!files.contains_key("migrations/002.sql"));
    // Outside the paths, the agent's work stays.
    assert_eq!(files["src/b.rs"], b"b2\n");
    assert_eq!(files["README.md"], b"r2\n");

    // A path that matches nothing changes nothing; a path escaping the repository is refused.
    let none = vec!["src/a".to_owned()];
    let report = git.restore(&cp.tree, &repo.scratch(), Some(&none)).unwrap();
    assert_eq!(report, RestoreReport::default());
    for bad in ["../outside", "/etc/passwd", "a/./b", ""] {
        let err = git
            .restore(&cp.tree, &repo.scratch(), Some(&[bad.to_owned()]))
            .unwrap_err();
        assert!(matches!(err, GitError::InvalidPath(_)), "{bad}: {err}");
    }
}

/// A path of the checkpoint that can only be written by destroying something the checkpoint
/// never captured (ignored files, too-large files) is left alone and reported.
#[test]
fn ignored_files_in_the_way_are_never_destroyed() {
    let repo = Repo::with_commit(&[
        (".gitignore", "*.secret\n/cache\n"),
        ("a.txt", "a\n"),
        ("dir/tracked.txt", "t\n"),
    ]);
    let git = repo.discover();
    let cp = git
        .checkpoint("refs/ralph/checkpoints/r/0000", "0", &repo.scratch())
        .unwrap();
    // The file `a.txt` became a directory holding an ignored file (and a captured one).
    std::fs::remove_file(repo.root.join("a.txt")).unwrap();
    repo.write("a.txt/keys.secret", "do not lose me\n");
    repo.write("a.txt/generated.txt", "captured, may go\n");
    // The directory `dir` became a (captured) file: nothing is in the way of restoring it.
    std::fs::remove_dir_all(repo.root.join("dir")).unwrap();
    repo.write("dir", "captured\n");
    repo.write("cache", "ignored cache file\n");
    let files_before = visible_files(&repo);

    let report = git.restore(&cp.tree, &repo.scratch(), None).unwrap();

    assert_eq!(report.skipped, ["a.txt"], "{report:?}");
    assert_eq!(report.written, ["dir/tracked.txt"]);
    assert_eq!(
        sorted(report.deleted.clone()),
        strs(&["a.txt/generated.txt", "dir"])
    );
    let files = visible_files(&repo);
    assert_eq!(files["a.txt/keys.secret"], b"do not lose me\n");
    assert!(!files.contains_key("a.txt/generated.txt"));
    assert_eq!(files["dir/tracked.txt"], b"t\n");
    assert_eq!(files["cache"], files_before["cache"]);
}

#[test]
fn an_ignored_file_where_a_directory_must_go_blocks_only_that_path() {
    let repo = Repo::with_commit(&[(".gitignore", "/build\n"), ("a.txt", "a\n")]);
    let git = repo.discover();
    // A checkpoint in which `build/` held a (force-added, hence tracked) file.
    repo.write("build/out.txt", "out\n");
    repo.git(&["add", "-f", "build/out.txt"]);
    let cp = git
        .checkpoint("refs/ralph/checkpoints/r/0001", "1", &repo.scratch())
        .unwrap();
    repo.git(&["rm", "-q", "--cached", "build/out.txt"]);
    std::fs::remove_dir_all(repo.root.join("build")).unwrap();
    // Now `build` is an ignored file: writing build/out.txt would delete it.
    repo.write("build", "ignored file\n");
    repo.write("a.txt", "changed\n");

    let report = git.restore(&cp.tree, &repo.scratch(), None).unwrap();

    assert_eq!(report.skipped, ["build/out.txt"]);
    assert_eq!(report.written, ["a.txt"]);
    assert_eq!(
        std::fs::read(repo.root.join("build")).unwrap(),
        b"ignored file\n"
    );
    assert_eq!(std::fs::read(repo.root.join("a.txt")).unwrap(), b"a\n");
}

#[test]
fn state_dir_is_never_captured_nor_restored() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    // No self-ignoring .gitignore: the agent deleted it, or ralph runs in a sub-directory.
    repo.write(".ralph/ralph.db", "db v1");
    repo.write("sub/.ralph/ralph.db", "nested db v1");
    let git = repo.discover();
    let cp = git
        .checkpoint("refs/ralph/checkpoints/r/0000", "0", &repo.scratch())
        .unwrap();
    let names: Vec<String> = repo.tree_files(&cp.tree).into_keys().collect();
    assert_eq!(names, ["a.txt"]);

    repo.write(".ralph/ralph.db", "db v2");
    repo.write(".ralph/new", "x");
    repo.write("a.txt", "b\n");
    let report = git.restore(&cp.tree, &repo.scratch(), None).unwrap();
    assert_eq!(report.written, ["a.txt"]);
    assert!(report.deleted.is_empty(), "{report:?}");
    assert_eq!(
        std::fs::read(repo.root.join(".ralph/ralph.db")).unwrap(),
        b"db v2"
    );
    assert!(repo.root.join(".ralph/new").exists());
    assert!(repo.root.join("sub/.ralph/ralph.db").exists());
}

#[test]
fn untracked_files_over_the_limit_are_skipped_and_reported() {
    let repo = Repo::with_commit(&[("small.txt", "s\n")]);
    // A tracked large file is always captured.
    repo.write("tracked-big.bin", vec![b't'; 11 * MIB]);
    repo.git(&["add", "tracked-big.bin"]);
    repo.git(&["commit", "-q", "-m", "big"]);
    repo.write("tracked-big.bin", vec![b'u'; 11 * MIB]);
    repo.write("dump/huge.sql", vec![b'h'; 11 * MIB]);
    repo.write("one-mib.bin", vec![b'o'; MIB]);
    repo.write(
        "exactly-limit.bin",
        vec![b'e'; DEFAULT_MAX_UNTRACKED_BYTES as usize],
    );
    let git = repo.discover();
    let before = repo.snapshot();

    let cp = git
        .checkpoint("refs/ralph/checkpoints/r/0001", "1", &repo.scratch())
        .unwrap();

    assert_eq!(cp.skipped_large, ["dump/huge.sql"]);
    let files = repo.tree_files(&cp.tree);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "exactly-limit.bin",
            "one-mib.bin",
            "small.txt",
            "tracked-big.bin"
        ]
    );
    assert_eq!(files["tracked-big.bin"], vec![b'u'; 11 * MIB]);
    assert_eq!(repo.snapshot(), before);

    // Configurable: a lower limit, or none.
    let low = CheckpointOptions {
        max_untracked_bytes: Some(1000),
        adopt_index: false,
    };
    let cp_low = git
        .checkpoint_with("refs/ralph/checkpoints/r/low", "low", &repo.scratch(), &low)
        .unwrap();
    assert_eq!(
        sorted(cp_low.skipped_large.clone()),
        strs(&["dump/huge.sql", "exactly-limit.bin", "one-mib.bin"])
    );
    let all = CheckpointOptions {
        max_untracked_bytes: None,
        adopt_index: false,
    };
    let snap = git.snapshot_with(&repo.scratch(), &all).unwrap();
    assert!(snap.skipped_large.is_empty());
    assert!(repo.tree_files(&snap.tree).contains_key("dump/huge.sql"));
    assert_eq!(
        CheckpointOptions::default().max_untracked_bytes,
        Some(10 * MIB as u64)
    );

    // A restore neither deletes the uncaptured file nor overwrites it.
    std::fs::remove_file(repo.root.join("one-mib.bin")).unwrap();
    repo.write("dump/huge.sql", vec![b'H'; 11 * MIB]);
    let report = git.restore(&cp.tree, &repo.scratch(), None).unwrap();
    assert_eq!(report.written, ["one-mib.bin"]);
    assert!(report.deleted.is_empty(), "{report:?}");
    assert!(report.skipped.is_empty(), "{report:?}");
    // The unlimited snapshot has the other version of huge.sql: still not overwritten.
    let report = git.restore(&snap.tree, &repo.scratch(), None).unwrap();
    assert_eq!(report.skipped, ["dump/huge.sql"], "{report:?}");
    assert!(report.is_empty(), "{report:?}");
    assert_eq!(
        std::fs::read(repo.root.join("dump/huge.sql")).unwrap(),
        vec![b'H'; 11 * MIB]
    );
}

#[test]
fn snapshot_tree_matches_the_checkpoint_and_writes_no_ref() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    repo.write("b.txt", "b\n");
    let git = repo.discover();
    let refs = repo.git(&["for-each-ref"]);
    let before = repo.snapshot();
    let tree = git.snapshot_tree(&repo.scratch()).unwrap();
    assert_eq!(repo.git(&["for-each-ref"]), refs);
    assert_eq!(repo.snapshot(), before);
    assert_eq!(repo.git(&["cat-file", "-t", &tree]).trim(), "tree");
    let cp = git
        .checkpoint("refs/ralph/checkpoints/r/0001", "1", &repo.scratch())
        .unwrap();
    assert_eq!(cp.tree, tree);
    assert!(cp.skipped_large.is_empty());
}

#[test]
fn nested_repositories_are_left_alone() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let cp = git
        .checkpoint("refs/ralph/checkpoints/r/0000", "0", &repo.scratch())
        .unwrap();
    // The agent cloned something into the project.
    let nested = repo.root.join("vendor/lib");
    std::fs::create_dir_all(&nested).unwrap();
    crate::support::git_in(&nested, &repo.base().join("home"), &["init", "-q"]);
    std::fs::write(nested.join("lib.rs"), "lib\n").unwrap();
    crate::support::git_in(&nested, &repo.base().join("home"), &["add", "-A"]);
    crate::support::git_in(
        &nested,
        &repo.base().join("home"),
        &["commit", "-q", "-m", "lib"],
    );
    repo.write("a.txt", "changed\n");

    let report = git.restore(&cp.tree, &repo.scratch(), None).unwrap();

    assert_eq!(report.written, ["a.txt"]);
    assert_eq!(report.skipped, ["vendor/lib"]);
    assert!(nested.join("lib.rs").exists() && nested.join(".git").exists());
}

#[test]
fn restores_in_an_unborn_repository_and_from_a_commit_id() {
    let repo = Repo::unborn();
    repo.write("a.txt", "a\n");
    let git = repo.discover();
    let cp = git
        .checkpoint("refs/ralph/checkpoints/r/0000", "0", &repo.scratch())
        .unwrap();
    repo.write("a.txt", "b\n");
    repo.write("b.txt", "b\n");
    let report = git.restore(&cp.commit, &repo.scratch(), None).unwrap();
    assert_eq!(report.written, ["a.txt"]);
    assert_eq!(report.deleted, ["b.txt"]);
    assert!(
        !git.index_path.exists(),
        "an index was created for the user"
    );
    assert_eq!(git.head().unwrap(), None);
    let leftovers: Vec<_> = files_under(&repo.scratch()).into_keys().collect();
    assert_eq!(leftovers, [Path::new("git-index/.gitignore")]);
}

#[test]
fn restore_from_a_known_current_tree() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let before = git
        .checkpoint("refs/ralph/checkpoints/r/0000", "0", &repo.scratch())
        .unwrap();
    repo.write("a.txt", "agent\n");
    repo.write("b.txt", "agent\n");
    let after = git
        .checkpoint("refs/ralph/checkpoints/r/0001", "1", &repo.scratch())
        .unwrap();
    let report = git
        .restore_from(&after.tree, &before.tree, &repo.scratch(), None)
        .unwrap();
    assert_eq!(report.written, ["a.txt"]);
    assert_eq!(report.deleted, ["b.txt"]);
    assert_eq!(git.snapshot_tree(&repo.scratch()).unwrap(), before.tree);
    // And back: the restore is undoable from the checkpoint taken before it.
    git.restore(&after.commit, &repo.scratch(), None).unwrap();
    assert_eq!(git.snapshot_tree(&repo.scratch()).unwrap(), after.tree);
    assert!(matches!(
        git.restore_from("--output=x", &before.tree, &repo.scratch(), None),
        Err(GitError::InvalidRevision(_))
    ));
}

#[test]
fn lists_commits_with_dates_and_subjects() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let one = git
        .checkpoint(
            "refs/ralph/checkpoints/r/0001",
            "ralph checkpoint: run r iteration 1",
            &repo.scratch(),
        )
        .unwrap();
    repo.write("b.txt", "b\n");
    let two = git
        .checkpoint(
            "refs/ralph/checkpoints/r/rollback-20260101-000000",
            "ralph checkpoint: before rollback to iteration 1",
            &repo.scratch(),
        )
        .unwrap();
    let list = git.list_commits("refs/ralph/checkpoints/r/").unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].refname, one.refname);
    assert_eq!(list[0].commit, one.commit);
    assert_eq!(list[0].tree, one.tree);
    assert_eq!(list[0].subject, "ralph checkpoint: run r iteration 1");
    assert_eq!(list[1].tree, two.tree);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - list[1].time).abs() < 600, "{}", list[1].time);
    assert!(git
        .list_commits("refs/ralph/checkpoints/none/")
        .unwrap()
        .is_empty());
    assert!(matches!(
        git.list_commits("-x"),
        Err(GitError::InvalidRevision(_))
    ));
}

/// With a stale `current_tree`, a directory that became a symlink is never followed: what it
/// points at is outside what the snapshot described.
#[cfg(unix)]
#[test]
fn deletions_never_follow_a_symlinked_directory() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let before = git
        .checkpoint("refs/ralph/checkpoints/r/0000", "0", &repo.scratch())
        .unwrap();
    repo.write("d/x.txt", "x\n");
    let stale = git.snapshot_tree(&repo.scratch()).unwrap();
    std::fs::remove_dir_all(repo.root.join("d")).unwrap();
    let outside = repo.base().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("x.txt"), "not yours\n").unwrap();
    std::os::unix::fs::symlink(&outside, repo.root.join("d")).unwrap();

    git.restore_from(&stale, &before.tree, &repo.scratch(), None)
        .unwrap();

    assert_eq!(
        std::fs::read(outside.join("x.txt")).unwrap(),
        b"not yours\n"
    );
}
