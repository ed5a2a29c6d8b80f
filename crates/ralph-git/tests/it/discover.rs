use ralph_git::{git_version, Git, GitError};

use crate::support::Repo;

#[test]
fn reports_the_installed_version() {
    let version = git_version().unwrap();
    let mut parts = version.split('.');
    let major: u32 = parts.next().unwrap().parse().unwrap();
    let minor: u32 = parts.next().unwrap().parse().unwrap();
    assert!((major, minor) >= (2, 25), "{version}");
}

#[test]
fn not_a_repository() {
    let dir = tempfile::tempdir().unwrap();
    assert!(Git::discover(dir.path()).unwrap().is_none());
}

#[test]
fn bare_repository_and_git_dir_are_not_work_trees() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    assert!(Git::discover(&repo.root.join(".git")).unwrap().is_none());
    assert!(Git::discover(&repo.root.join(".git/refs"))
        .unwrap()
        .is_none());
    let bare = repo.base().join("bare.git");
    repo.git(&["init", "-q", "--bare", bare.to_str().unwrap()]);
    assert!(Git::discover(&bare).unwrap().is_none());
}

#[test]
fn from_a_subdirectory() {
    let repo = Repo::with_commit(&[("sub/deep/a.txt", "a\n")]);
    let git = Git::discover(&repo.root.join("sub/deep")).unwrap().unwrap();
    assert_eq!(git.root, repo.root);
    assert_eq!(git.index_path, repo.root.join(".git/index"));
    // git prints these relative to the directory (`../../.git`) or absolute, by version.
    assert_eq!(git.git_dir, repo.root.join(".git"));
    assert_eq!(git.common_dir, repo.root.join(".git"));
    // Relative paths are resolved too.
    let rel = pathdiff(&repo.root.join("sub"));
    let git = Git::discover(&rel).unwrap().unwrap();
    assert_eq!(git.index_path, repo.root.join(".git/index"));
}

/// `dir` relative to the current directory, through `..` components.
fn pathdiff(dir: &std::path::Path) -> std::path::PathBuf {
    let cwd = std::env::current_dir().unwrap().canonicalize().unwrap();
    let mut up = std::path::PathBuf::new();
    for _ in cwd.components().skip(1) {
        up.push("..");
    }
    up.join(dir.strip_prefix("/").unwrap())
}

#[test]
fn missing_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Git::discover(&dir.path().join("nope")).unwrap_err();
    assert!(matches!(err, GitError::Dir { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("failed to open directory "),
        "{err}"
    );
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    assert!(matches!(Git::discover(&file), Err(GitError::Dir { .. })));
}

#[test]
fn a_linked_worktree_knows_its_own_and_the_shared_git_directory() {
    let repo = Repo::with_commit(&[("sub/a.txt", "a\n")]);
    let wt = repo.base().join("wt");
    repo.git(&["worktree", "add", "-q", "-b", "other", wt.to_str().unwrap()]);
    let git = Git::discover(&wt.join("sub")).unwrap().unwrap();
    assert_eq!(git.root, wt);
    assert_eq!(git.git_dir, repo.root.join(".git/worktrees/wt"));
    assert_eq!(git.common_dir, repo.root.join(".git"));
    assert_eq!(git.index_path, repo.root.join(".git/worktrees/wt/index"));
}
