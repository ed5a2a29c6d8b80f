//! Making the working tree match a checkpoint's tree (rollback, guardrail reverts) without
//! touching the user's HEAD, branch, index or stash.
//!
//! Only what a checkpoint captures is ever overwritten or deleted: tracked files and untracked
//! files that are not ignored (the current state's snapshot tree lists exactly those). Ignored
//! files, untracked files too large to be captured, `.ralph/` and nested repositories are
//! never touched; a path of the target tree that could only be written by destroying one of
//! them is left alone and reported in [`RestoreReport::skipped`].
//!
//! Files are written by `git checkout-index` from a temporary index holding the target tree,
//! so content filters, line endings, symlinks and executable bits come out exactly as a
//! `git checkout` would write them.

use std::collections::HashSet;
use std::path::Path;

use crate::command::{self, Invocation};
use crate::temp_index::TempIndex;
use crate::{check_revision, parse, unexpected, Git, GitError, SKIP_INDEX_HASH};

/// Mode of a gitlink (submodule or nested repository) entry.
const GITLINK: u32 = 0o160000;

/// What a restore changed (or, from [`Git::restore_plan`], would change). Paths are relative
/// to the top of the repository, `/`-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Files written with the tree's content and mode (added, modified, mode or type changed),
    /// in git's order.
    pub written: Vec<String>,
    /// Files deleted because the tree does not have them, in git's order.
    pub deleted: Vec<String>,
    /// Paths that differ but were left alone, sorted: nested repositories and submodules
    /// (ralph never moves their HEAD), `.ralph/`, and paths where an ignored or uncaptured
    /// (too large) file or directory is in the way.
    pub skipped: Vec<String>,
}

impl RestoreReport {
    /// Nothing was (or would be) written or deleted.
    pub fn is_empty(&self) -> bool {
        self.written.is_empty() && self.deleted.is_empty()
    }
}

/// The work a restore does, computed before anything is changed.
#[derive(Debug, Default)]
struct Plan {
    /// Raw paths, as git printed them.
    write: Vec<Vec<u8>>,
    delete: Vec<Vec<u8>>,
    skipped: Vec<Vec<u8>>,
    /// Paths to write that are currently directories whose whole content is being deleted:
    /// the empty directories left behind must go before the file can be written.
    clear_dirs: Vec<Vec<u8>>,
}

impl Plan {
    fn report(&self) -> RestoreReport {
        let text = |paths: &[Vec<u8>]| -> Vec<String> {
            paths
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect()
        };
        let mut skipped = text(&self.skipped);
        skipped.sort();
        RestoreReport {
            written: text(&self.write),
            deleted: text(&self.delete),
            skipped,
        }
    }
}

impl Git {
    /// Makes the working tree match `tree` (a tree or commit id, e.g. a checkpoint's), or only
    /// the parts of it under `paths` (files or directories relative to the top of the
    /// repository). Files the tree has are written with its content and mode; files present
    /// now (tracked, or untracked and not ignored) that it lacks are deleted, and directories
    /// emptied by that are removed. The user's HEAD, branch, index and stash are not touched,
    /// nor are ignored files, untracked files over [`crate::DEFAULT_MAX_UNTRACKED_BYTES`],
    /// `.ralph/` or nested repositories. `scratch_dir` is used as by [`Git::checkpoint`].
    ///
    /// Nothing records the state being replaced: take a checkpoint first when it must be
    /// recoverable (and then use [`Git::restore_from`] with its tree, which saves a snapshot).
    pub fn restore(
        &self,
        tree: &str,
        scratch_dir: &Path,
        paths: Option<&[String]>,
    ) -> Result<RestoreReport, GitError> {
        let current = self.snapshot_tree(scratch_dir)?;
        self.restore_from(&current, tree, scratch_dir, paths)
    }

    /// What [`Git::restore`] would do, changing nothing (a dry run). Only objects for the
    /// snapshot of the current state are written, as a checkpoint would.
    pub fn restore_plan(
        &self,
        tree: &str,
        scratch_dir: &Path,
        paths: Option<&[String]>,
    ) -> Result<RestoreReport, GitError> {
        let current = self.snapshot_tree(scratch_dir)?;
        Ok(self.plan(&current, tree, paths)?.report())
    }

    /// [`Git::restore`] when the current state's tree is already known: `current_tree` must
    /// be a snapshot of the working tree taken just now (typically the tree of the checkpoint
    /// that makes this restore undoable, or the checkpoint after an iteration that is being
    /// reverted). Files that `current_tree` does not list are treated as uncaptured and never
    /// deleted or overwritten.
    pub fn restore_from(
        &self,
        current_tree: &str,
        tree: &str,
        scratch_dir: &Path,
        paths: Option<&[String]>,
    ) -> Result<RestoreReport, GitError> {
        let plan = self.plan(current_tree, tree, paths)?;
        self.apply(&plan, tree, scratch_dir)?;
        Ok(plan.report())
    }

    fn plan(
        &self,
        current_tree: &str,
        tree: &str,
        paths: Option<&[String]>,
    ) -> Result<Plan, GitError> {
        check_revision(current_tree)?;
        check_revision(tree)?;
        let filter = paths.map(normalize_paths).transpose()?;
        if current_tree == tree {
            return Ok(Plan::default());
        }
        let args = &[
            "diff-tree",
            "-r",
            "-z",
            "--raw",
            "--no-renames",
            "--no-commit-id",
            current_tree,
            tree,
        ];
        let stdout = self.run(&Invocation::new(args))?;
        let changes = parse::raw_diff(&stdout).ok_or_else(|| unexpected(args, &stdout))?;

        let mut plan = Plan::default();
        // Nested repositories stay where they are; nothing may be written inside them.
        let mut kept_gitlinks: HashSet<Vec<u8>> = HashSet::new();
        let mut writes = Vec::new();
        for change in changes {
            if let Some(filter) = &filter {
                if !filter.iter().any(|f| covers(f, &change.path)) {
                    continue;
                }
            }
            if !safe_path(&change.path) || in_state_dir(&change.path) {
                plan.skipped.push(change.path);
                continue;
            }
            if change.old_mode == GITLINK || change.new_mode == GITLINK {
                if change.old_mode == GITLINK {
                    kept_gitlinks.insert(change.path.clone());
                }
                plan.skipped.push(change.path);
                continue;
            }
            match change.status {
                b'D' => plan.delete.push(change.path),
                _ => writes.push(change),
            }
        }

        let deleting: HashSet<&[u8]> = plan.delete.iter().map(Vec::as_slice).collect();
        let mut write = Vec::new();
        let mut clear_dirs = Vec::new();
        for change in writes {
            // `A`: the path is not in the current snapshot, so whatever is on disk there (an
            // ignored file, a file too large to capture) is the user's and must stay.
            let captured = change.status != b'A';
            match self.obstacle(&change.path, captured, &deleting, &kept_gitlinks) {
                Obstacle::None => write.push(change.path),
                Obstacle::EmptiedDir => {
                    clear_dirs.push(change.path.clone());
                    write.push(change.path);
                }
                Obstacle::Blocked => plan.skipped.push(change.path),
            }
        }
        plan.write = write;
        plan.clear_dirs = clear_dirs;
        Ok(plan)
    }

    /// Whether `path` can be written: every leading directory must be a real directory, or
    /// absent, or a captured file about to be deleted; the path itself absent, or a captured
    /// file, or a directory holding only files about to be deleted.
    fn obstacle(
        &self,
        path: &[u8],
        captured: bool,
        deleting: &HashSet<&[u8]>,
        kept_gitlinks: &HashSet<Vec<u8>>,
    ) -> Obstacle {
        for (i, _) in path.iter().enumerate().filter(|(_, &b)| b == b'/') {
            let leading = &path[..i];
            if kept_gitlinks.contains(leading) {
                return Obstacle::Blocked;
            }
            match std::fs::symlink_metadata(self.root.join(command::bytes_to_path(leading))) {
                // Nothing deeper exists either; checkout-index creates the directories.
                Err(_) => return Obstacle::None,
                Ok(meta) if meta.is_dir() => continue,
                // A file or symlink where a directory must go: only if it is being deleted
                // (then nothing deeper exists).
                Ok(_) if deleting.contains(leading) => return Obstacle::None,
                Ok(_) => return Obstacle::Blocked,
            }
        }
        match std::fs::symlink_metadata(self.root.join(command::bytes_to_path(path))) {
            Err(_) => Obstacle::None,
            Ok(meta) if meta.is_dir() => {
                if self.only_deleted_files(path, deleting) {
                    Obstacle::EmptiedDir
                } else {
                    Obstacle::Blocked
                }
            }
            Ok(_) if captured => Obstacle::None,
            Ok(_) => Obstacle::Blocked,
        }
    }

    /// Every file under directory `dir` is in `deleting` (empty sub-directories are fine).
    fn only_deleted_files(&self, dir: &[u8], deleting: &HashSet<&[u8]>) -> bool {
        let mut stack = vec![dir.to_vec()];
        while let Some(rel) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(self.root.join(command::bytes_to_path(&rel)))
            else {
                return false;
            };
            for entry in entries {
                let Ok(entry) = entry else {
                    return false;
                };
                let mut child = rel.clone();
                child.push(b'/');
                child.extend_from_slice(&name_bytes(&entry.file_name()));
                match entry.file_type() {
                    Ok(kind) if kind.is_dir() => stack.push(child),
                    Ok(_) if deleting.contains(child.as_slice()) => {}
                    _ => return false,
                }
            }
        }
        true
    }

    fn apply(&self, plan: &Plan, tree: &str, scratch_dir: &Path) -> Result<(), GitError> {
        let abs = |rel: &[u8]| self.root.join(command::bytes_to_path(rel));
        for rel in &plan.delete {
            // Only through real directories: with a stale `current_tree`, a leading directory
            // may have become a symlink, and what it points at is not ours to delete.
            let through_dirs = leading_dirs(rel)
                .all(|dir| std::fs::symlink_metadata(abs(dir)).is_ok_and(|meta| meta.is_dir()));
            if !through_dirs {
                continue;
            }
            let path = abs(rel);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(GitError::Restore { path, source }),
            }
        }
        // Directories the deletions emptied, deepest first so parents empty out in turn.
        let mut parents: Vec<&[u8]> = plan
            .delete
            .iter()
            .flat_map(|rel| leading_dirs(rel))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        parents.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for dir in parents {
            // Fails (and is left alone) when not empty: other files live there.
            let _ = std::fs::remove_dir(abs(dir));
        }
        for dir in &plan.clear_dirs {
            remove_empty_dirs(&abs(dir));
        }
        if plan.write.is_empty() {
            return Ok(());
        }
        check_revision(tree)?;
        let tmp = TempIndex::empty(scratch_dir)?;
        let env = [("GIT_INDEX_FILE", tmp.path().as_os_str())];
        self.run(&Invocation {
            args: &["read-tree", tree],
            config: &[SKIP_INDEX_HASH],
            env: &env,
        })?;
        let mut input = Vec::new();
        for rel in &plan.write {
            input.extend_from_slice(rel);
            input.push(0);
        }
        // -f: replace what is there (a captured file, or a symlink in the way of a directory
        // being deleted anyway); without -u the temporary index is only read.
        self.run_with_input(
            &Invocation {
                args: &["checkout-index", "-f", "-z", "--stdin"],
                config: &[],
                env: &env,
            },
            input,
        )?;
        Ok(())
    }
}

enum Obstacle {
    None,
    /// The path is a directory that only holds files being deleted.
    EmptiedDir,
    Blocked,
}

/// `paths` as raw, `/`-separated relative paths without trailing slashes.
fn normalize_paths(paths: &[String]) -> Result<Vec<Vec<u8>>, GitError> {
    paths
        .iter()
        .map(|p| {
            let trimmed = p.trim_end_matches('/');
            if safe_path(trimmed.as_bytes()) {
                Ok(trimmed.as_bytes().to_vec())
            } else {
                Err(GitError::InvalidPath(p.clone()))
            }
        })
        .collect()
}

/// `filter` is `path` or one of its leading directories.
fn covers(filter: &[u8], path: &[u8]) -> bool {
    path.strip_prefix(filter)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/"))
}

/// A relative path without empty, `.`, `..` or `.git` components: nothing git would put in a
/// tree it wrote itself, checked anyway because files are deleted by these names.
fn safe_path(path: &[u8]) -> bool {
    !path.is_empty()
        && path
            .split(|&b| b == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b".." && !c.eq_ignore_ascii_case(b".git"))
}

/// Inside a `.ralph/` directory (at any depth), which holds ralph's own state.
fn in_state_dir(path: &[u8]) -> bool {
    let mut components: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    components.pop();
    components.contains(&b".ralph".as_slice())
}

/// `a/b/c` → `a/b`, `a`.
fn leading_dirs(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.iter()
        .enumerate()
        .filter(|(_, &b)| b == b'/')
        .map(move |(i, _)| &path[..i])
}

/// Removes `dir` if it holds nothing but (nested) empty directories; anything else stays.
fn remove_empty_dirs(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn name_bytes(name: &std::ffi::OsStr) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        name.as_bytes().to_vec()
    }
    #[cfg(not(unix))]
    {
        name.to_string_lossy().into_owned().into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked_and_matched_by_component() {
        assert!(safe_path(b"a/b c/d.txt"));
        for bad in [
            &b""[..],
            b"/abs",
            b"a//b",
            b"a/./b",
            b"../x",
            b"a/..",
            b".git/config",
            b"sub/.GIT/x",
        ] {
            assert!(!safe_path(bad), "{}", String::from_utf8_lossy(bad));
        }
        assert!(covers(b"src", b"src/a.rs"));
        assert!(covers(b"src/a.rs", b"src/a.rs"));
        assert!(!covers(b"src", b"srcx/a.rs"));
        assert!(!covers(b"src/a", b"src/a.rs"));
        assert_eq!(
            normalize_paths(&["dir/".into(), "f.txt".into()]).unwrap(),
            [b"dir".to_vec(), b"f.txt".to_vec()]
        );
        assert!(matches!(
            normalize_paths(&["../up".into()]),
            Err(GitError::InvalidPath(_))
        ));
        assert!(in_state_dir(b".ralph/ralph.db"));
        assert!(in_state_dir(b"sub/.ralph/x"));
        assert!(!in_state_dir(b".ralph"));
        assert!(!in_state_dir(b"a/.ralphx/y"));
        assert_eq!(
            leading_dirs(b"a/b/c").collect::<Vec<_>>(),
            [&b"a"[..], b"a/b"]
        );
    }
}
