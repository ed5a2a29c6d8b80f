//! Untracked files too large for checkpoints (`git.max_untracked_mb`): the checkpoint diff
//! cannot see them, so an iteration that deleted or rewrote one would read "0 files changed"
//! while `ralph rollback` could not bring it back. Their size, mtime and inode are noted before
//! the agent runs; a difference afterwards is said on the iteration line ("N files cannot be
//! restored: …") and in the `iteration.finished` event.

use std::path::Path;
use std::time::SystemTime;

use super::Engine;

/// What a file looked like without reading it: enough to tell it was rewritten or replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        Some(Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode: inode(&meta),
        })
    }
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

impl Engine {
    /// A snapshot of the working tree with the run's size limit (as its checkpoints take
    /// them), remembering which files it left out.
    pub(super) fn snapshot_now(&mut self) -> Option<String> {
        let git = self.checkpoints()?;
        let options = ralph_git::CheckpointOptions {
            max_untracked_bytes: Some(self.settings.max_untracked_bytes),
            adopt_index: false,
        };
        let snapshot = git.snapshot_with(&self.state_dir, &options).ok()?;
        self.guards.uncaptured = snapshot.skipped_large;
        Some(snapshot.tree)
    }

    /// The files the last snapshot left out for their size, stamped now.
    pub(super) fn stamp_uncaptured(&self) -> Vec<(String, Option<Stamp>)> {
        let Some(git) = self.git.as_ref() else {
            return Vec::new();
        };
        self.guards
            .uncaptured
            .iter()
            .map(|rel| (rel.clone(), Stamp::of(&git.root.join(rel))))
            .collect()
    }

    /// Those of `before` that the iteration deleted or changed, sorted.
    pub(super) fn lost_uncaptured(&self, before: &[(String, Option<Stamp>)]) -> Vec<String> {
        let Some(git) = self.git.as_ref() else {
            return Vec::new();
        };
        let mut lost: Vec<String> = before
            .iter()
            .filter(|(rel, stamp)| stamp.is_some() && Stamp::of(&git.root.join(rel)) != *stamp)
            .map(|(rel, _)| rel.clone())
            .collect();
        lost.sort();
        lost
    }
}
