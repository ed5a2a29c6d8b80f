//! The repository lock: one holder at a time for the operations that change what every
//! worktree of a repository shares (the worktree list, branches, the integration branch).
//!
//! Git locks single refs and single files, not sequences: two `git worktree add` at once can
//! race on `.git/worktrees/<name>`, two ref updates of the same ref make one fail with
//! "cannot lock ref" (a transient failure, not a stale old value), and a resume must read the
//! worktree list while nothing changes it. So ralph takes this lock around them:
//!
//! - across processes: an exclusive OS file lock (`flock` on Unix, through [`File::lock`]) on
//!   `<common git dir>/ralph-repo.lock`, which every worktree of the repository resolves to the
//!   same file, so a second `ralph` on the same repository (or a `ralph stories work` worker in
//!   another process) waits;
//! - across threads of one process: a table keyed by the common git dir. A thread waits on a
//!   condition variable rather than in the kernel, and the lock is **re-entrant on the thread
//!   that holds it**: the worktree and ref functions take it themselves, and a caller that holds
//!   it around several of them (read the tip, build, compare-and-swap) does not deadlock.
//!
//! The guard is not `Send`: re-entrancy is per thread, so it must be dropped where it was taken.
//! The lock file itself is left in place (removing it would let a waiter lock a file that is no
//! longer the one others open).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::ThreadId;

use crate::{Git, GitError};

/// The lock file's name in the repository's common git dir.
pub const REPO_LOCK_FILE: &str = "ralph-repo.lock";

struct Holder {
    thread: ThreadId,
    depth: usize,
    /// The locked file, held by the outermost guard; `None` while that guard still waits for
    /// the OS lock (other threads already wait behind it here).
    file: Option<File>,
}

type Table = HashMap<PathBuf, Holder>;

fn table() -> &'static (Mutex<Table>, Condvar) {
    static TABLE: OnceLock<(Mutex<Table>, Condvar)> = OnceLock::new();
    TABLE.get_or_init(|| (Mutex::new(HashMap::new()), Condvar::new()))
}

/// A poisoned table only means a thread panicked while holding the mutex for a few map
/// operations; the map itself is still consistent.
fn lock_table() -> MutexGuard<'static, Table> {
    table().0.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Proof that this thread holds the repository lock; released on drop (the outermost guard
/// releases the file lock).
#[derive(Debug)]
#[must_use = "the repository lock is released when the guard is dropped"]
pub struct RepoLockGuard {
    key: PathBuf,
    /// Re-entrancy is per thread: the guard must be dropped on the thread that took it.
    _not_send: PhantomData<*const ()>,
}

impl RepoLockGuard {
    /// The lock file (in the common git dir).
    pub fn path(&self) -> PathBuf {
        self.key.join(REPO_LOCK_FILE)
    }
}

impl Drop for RepoLockGuard {
    fn drop(&mut self) {
        let mut map = lock_table();
        let last = match map.get_mut(&self.key) {
            Some(holder) => {
                holder.depth = holder.depth.saturating_sub(1);
                holder.depth == 0
            }
            None => false,
        };
        if last {
            // Dropping the holder closes the file, which releases the OS lock.
            map.remove(&self.key);
            drop(map);
            table().1.notify_all();
        }
    }
}

impl Git {
    /// Takes the repository lock, waiting as long as another thread or process holds it.
    /// Re-entrant on the calling thread (see the module documentation): [`Git::worktree_add`],
    /// [`Git::worktree_remove`], [`Git::worktree_prune`], [`Git::update_ref_cas`] and
    /// [`Git::create_branch`], [`Git::worktree_move`] and [`Git::worktree_park`] take it
    /// themselves. Read-only functions and the ones that work inside one story's worktree
    /// ([`Git::commit_all`], [`Git::merge_into`], [`Git::worktree_reuse`]) do not.
    pub fn repo_lock(&self) -> Result<RepoLockGuard, GitError> {
        let key = self.common_dir.clone();
        let me = std::thread::current().id();
        let guard = RepoLockGuard {
            key: key.clone(),
            _not_send: PhantomData,
        };
        let mut map = lock_table();
        loop {
            match map.get_mut(&key) {
                Some(holder) if holder.thread == me => {
                    holder.depth += 1;
                    return Ok(guard);
                }
                Some(_) => map = table().1.wait(map).unwrap_or_else(PoisonError::into_inner),
                None => break,
            }
        }
        // Claim the slot before waiting for the OS lock, so this process's other threads wait
        // on the condition variable (one file lock per process at a time).
        map.insert(
            key.clone(),
            Holder {
                thread: me,
                depth: 1,
                file: None,
            },
        );
        drop(map);
        // From here on, dropping `guard` (on an error too) gives the slot back.
        let file = lock_file(&key.join(REPO_LOCK_FILE))?;
        if let Some(holder) = lock_table().get_mut(&key) {
            holder.file = Some(file);
        }
        Ok(guard)
    }
}

fn lock_file(path: &Path) -> Result<File, GitError> {
    let err = |source| GitError::Lock {
        path: path.to_owned(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(err)?;
    // Blocking, exclusive; the kernel releases it if the process dies, so a `kill -9` never
    // leaves the repository locked.
    file.lock().map_err(err)?;
    Ok(file)
}
