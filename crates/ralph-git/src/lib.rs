//! git CLI wrapper. Checkpoints are ghost commits under `refs/ralph/checkpoints/…`: the user's
//! branch, index, stash and working tree are never touched. All writes go through a temporary
//! index file.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git is not installed (looked for `git` on PATH)")]
    NotInstalled,
    #[error("git {found} is too old; ralph needs git {required} or newer")]
    TooOld { found: String, required: String },
    #[error("failed to run git {args}: {source}")]
    Spawn { args: String, source: std::io::Error },
    #[error("git {args} failed (exit {code}): {stderr}")]
    Failed { args: String, code: i32, stderr: String },
    #[error("failed to prepare the temporary index: {0}")]
    Io(#[from] std::io::Error),
}

/// A repository ralph can checkpoint.
#[derive(Debug, Clone)]
pub struct Git {
    /// Top level of the working tree.
    pub root: PathBuf,
    /// The repository's index file (resolved once; worktrees have their own).
    pub index_path: PathBuf,
}

/// One ghost commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub commit: String,
    pub tree: String,
    pub refname: String,
}

impl Git {
    /// `Ok(None)` when `dir` is not inside a git working tree.
    pub fn discover(_dir: &Path) -> Result<Option<Git>, GitError> {
        Ok(None)
    }
}
