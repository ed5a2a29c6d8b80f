//! Checkpoints: the whole working tree as a ghost commit under `refs/ralph/checkpoints/…`,
//! built in a temporary copy of the index so the user's index, HEAD, branch and files are
//! never touched; the snapshot alone (a tree, no commit) for "what changed since" questions;
//! and the shortcut for a work tree known to be a clean checkout.

use std::ffi::OsString;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::command::{self, Invocation};
use crate::temp_index::TempIndex;
use crate::{
    check_ralph_ref, check_revision, parse, unexpected, Git, GitError, DEFAULT_MAX_UNTRACKED_BYTES,
    EXCLUDE_STATE_DIR, IDENT_EMAIL, IDENT_NAME, SKIP_INDEX_HASH,
};

/// One ghost commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub commit: String,
    pub tree: String,
    pub refname: String,
    /// Untracked files left out because they exceed
    /// [`CheckpointOptions::max_untracked_bytes`], relative to the top of the repository.
    pub skipped_large: Vec<String>,
    /// The real index now holds `tree` ([`CheckpointOptions::adopt_index`]).
    pub index_adopted: bool,
}

/// How a checkpoint (or snapshot) is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointOptions {
    /// Untracked (not ignored) files larger than this many bytes are left out and reported in
    /// [`Checkpoint::skipped_large`]; `None` captures every file. Tracked files are always
    /// captured whatever their size. Default: [`DEFAULT_MAX_UNTRACKED_BYTES`].
    pub max_untracked_bytes: Option<u64>,
    /// The index the snapshot was built in replaces the real one afterwards, so that the
    /// index holds exactly the snapshot's tree — for a worktree whose index ralph owns (a
    /// story's), where committing that tree next would otherwise stage every file again. Only
    /// when no file was left out (the index must be what `git add -A` makes).
    pub adopt_index: bool,
}

impl Default for CheckpointOptions {
    fn default() -> Self {
        CheckpointOptions {
            adopt_index: false,
            max_untracked_bytes: Some(DEFAULT_MAX_UNTRACKED_BYTES),
        }
    }
}

/// The tree a checkpoint would record for the working tree as it is now, without a commit or
/// ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub tree: String,
    /// As [`Checkpoint::skipped_large`].
    pub skipped_large: Vec<String>,
    /// As [`Checkpoint::index_adopted`].
    pub index_adopted: bool,
}

impl Git {
    /// Records the whole working tree (tracked and untracked-not-ignored files, deletions
    /// included) as a commit whose parent is `HEAD` (none in an unborn repository) and points
    /// `refname` (which must be under `refs/ralph/`) at it. The user's HEAD, branch, index,
    /// stash and files are left exactly as they were. `scratch_dir` holds the temporary index
    /// (in a self-ignoring `git-index/` sub-directory, created if missing). Nested repositories
    /// and submodules are recorded as their checked-out commit, as `git add` records them.
    /// `.ralph/` directories and untracked files over [`DEFAULT_MAX_UNTRACKED_BYTES`] are left
    /// out (see [`Git::checkpoint_with`]).
    pub fn checkpoint(
        &self,
        refname: &str,
        message: &str,
        scratch_dir: &Path,
    ) -> Result<Checkpoint, GitError> {
        self.checkpoint_with(refname, message, scratch_dir, &CheckpointOptions::default())
    }

    /// [`Git::checkpoint`] with explicit options.
    pub fn checkpoint_with(
        &self,
        refname: &str,
        message: &str,
        scratch_dir: &Path,
        options: &CheckpointOptions,
    ) -> Result<Checkpoint, GitError> {
        check_ralph_ref(refname)?;
        let snapshot = self.snapshot_with(scratch_dir, options)?;
        self.checkpoint_of(refname, message, snapshot, None)
    }

    /// The checkpoint of a snapshot [`Git::snapshot_with`] took: its commit and `refname`
    /// pointing at it. [`Git::checkpoint_with`] in two steps, for a caller that has other git
    /// work to do with the tree while the commit and ref are written. `parent`: the commit the
    /// checkpoint goes on, when the caller read HEAD and may move it meanwhile (a story's
    /// commit); `None`: `HEAD` as git finds it.
    pub fn checkpoint_of(
        &self,
        refname: &str,
        message: &str,
        snapshot: Snapshot,
        parent: Option<&str>,
    ) -> Result<Checkpoint, GitError> {
        check_ralph_ref(refname)?;
        check_revision(&snapshot.tree)?;
        if let Some(p) = parent {
            check_revision(p)?;
        }
        let commit = self.ghost_commit_tree_on(&snapshot.tree, message, parent)?;
        self.run(&Invocation::new(&["update-ref", refname, &commit]))?;
        Ok(Checkpoint {
            commit,
            tree: snapshot.tree,
            refname: refname.to_owned(),
            skipped_large: snapshot.skipped_large,
            index_adopted: snapshot.index_adopted,
        })
    }

    /// A checkpoint of a work tree known to be the clean checkout of `commit` (a story's
    /// worktree just made): its tree is the commit's, so no file is read or hashed.
    /// `tree`: the commit's tree when the caller knows it (one `rev-parse` fewer).
    pub fn checkpoint_clean(
        &self,
        refname: &str,
        message: &str,
        commit: &str,
        tree: Option<&str>,
    ) -> Result<Checkpoint, GitError> {
        check_ralph_ref(refname)?;
        check_revision(commit)?;
        let tree = match tree {
            Some(tree) => {
                check_revision(tree)?;
                tree.to_owned()
            }
            None => self.commit_tree_id(commit)?,
        };
        let ghost = self.ghost_commit_tree(&tree, message)?;
        self.run(&Invocation::new(&["update-ref", refname, &ghost]))?;
        Ok(Checkpoint {
            commit: ghost,
            tree,
            refname: refname.to_owned(),
            skipped_large: Vec::new(),
            index_adopted: false,
        })
    }

    /// The tree of `commit`.
    fn commit_tree_id(&self, commit: &str) -> Result<String, GitError> {
        let rev = format!("{commit}^{{tree}}");
        let args = &["rev-parse", "--verify", "-q", &rev];
        let stdout = self.run(&Invocation::new(args))?;
        parse::object_id(&stdout).ok_or_else(|| unexpected(args, &stdout))
    }

    /// The tree [`Git::checkpoint`] would record, without creating a commit or a ref: for
    /// "what changed since" checks against an earlier checkpoint's tree (equal ids mean
    /// nothing changed). Objects are written to the object store as `git add` writes them.
    pub fn snapshot_tree(&self, scratch_dir: &Path) -> Result<String, GitError> {
        Ok(self
            .snapshot_with(scratch_dir, &CheckpointOptions::default())?
            .tree)
    }

    /// [`Git::snapshot_tree`] with explicit options, also reporting the files left out.
    pub fn snapshot_with(
        &self,
        scratch_dir: &Path,
        options: &CheckpointOptions,
    ) -> Result<Snapshot, GitError> {
        let skipped_large = match options.max_untracked_bytes {
            Some(limit) => self.large_untracked(limit)?,
            None => Vec::new(),
        };
        // `.` is the whole tree (git runs at the top level), minus the exclusions.
        let mut pathspecs: Vec<String> = vec![".".to_owned(), EXCLUDE_STATE_DIR.to_owned()];
        pathspecs.extend(
            skipped_large
                .iter()
                .map(|path| format!(":(exclude,literal){path}")),
        );
        let mut args: Vec<&str> = vec!["add", "-A", "--"];
        args.extend(pathspecs.iter().map(String::as_str));
        // Starting from a copy of the real index (not an empty one) means git already has
        // the stat data and object ids of unchanged files and only hashes what changed.
        let tmp = TempIndex::create(&self.index_path, scratch_dir)?;
        let env = [("GIT_INDEX_FILE", tmp.path().as_os_str())];
        // An index that becomes the real one keeps git's checksum: other tools read it.
        let adopt = options.adopt_index && skipped_large.is_empty();
        let hash = if adopt {
            "index.skipHash=false"
        } else {
            SKIP_INDEX_HASH
        };
        self.run(&Invocation {
            args: &args,
            config: &[
                hash,
                // A snapshot must not abort over an irreversible CRLF conversion that
                // `core.safecrlf=true` would refuse; it stores what `git add` would.
                "core.safecrlf=false",
                // A split index would make git write `sharedindex.*` files into `.git`.
                "core.splitIndex=false",
                "advice.addEmbeddedRepo=false",
            ],
            env: &env,
        })?;
        // write-tree rewrites the index too, to store the updated cache-tree.
        let args = &["write-tree"];
        let stdout = self.run(&Invocation {
            args,
            config: &[hash],
            env: &env,
        })?;
        let tree = parse::object_id(&stdout).ok_or_else(|| unexpected(args, &stdout))?;
        let index_adopted = adopt && tmp.replace(&self.index_path).is_ok();
        // The temporary index is removed when `tmp` drops, before the caller's next step.
        Ok(Snapshot {
            tree,
            skipped_large,
            index_adopted,
        })
    }

    /// Untracked, not ignored files larger than `limit` bytes. Listing them is one directory
    /// walk by git (the same walk `add -A` does); only the listed files are stat'ed.
    fn large_untracked(&self, limit: u64) -> Result<Vec<String>, GitError> {
        let args = &[
            "ls-files",
            "--others",
            "--exclude-standard",
            "-z",
            "--",
            ".",
            EXCLUDE_STATE_DIR,
        ];
        let stdout = self.run(&Invocation::new(args))?;
        let mut large = Vec::new();
        for raw in stdout.split(|&b| b == 0).filter(|p| !p.is_empty()) {
            // Embedded repositories are listed as `dir/`; lstat says directory and they are
            // skipped like symlinks (always small) and special files.
            let path = self.root.join(command::bytes_to_path(raw));
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                // Deleted since the listing: nothing to capture either way.
                continue;
            };
            if meta.is_file() && meta.len() > limit {
                let Ok(text) = std::str::from_utf8(raw) else {
                    // A pathspec is text; a non-UTF-8 name cannot be excluded reliably, so it
                    // is captured rather than silently mangled.
                    continue;
                };
                large.push(text.to_owned());
            }
        }
        Ok(large)
    }

    /// `git commit-tree` with `HEAD` as parent when there is one. HEAD is resolved by git in
    /// the same process (`-p HEAD`) rather than by us beforehand: it saves a spawn on every
    /// checkpoint and cannot go stale if the agent committed since the last one. Only an
    /// unborn HEAD makes this fail, and only then do we look at HEAD and retry.
    fn ghost_commit_tree(&self, tree: &str, message: &str) -> Result<String, GitError> {
        self.ghost_commit_tree_on(tree, message, None)
    }

    /// [`Git::ghost_commit_tree`] on `parent` when given.
    fn ghost_commit_tree_on(
        &self,
        tree: &str,
        message: &str,
        parent: Option<&str>,
    ) -> Result<String, GitError> {
        let date = OsString::from(format!(
            "@{} +0000",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        ));
        let name = OsString::from(IDENT_NAME);
        let email = OsString::from(IDENT_EMAIL);
        let env = [
            ("GIT_AUTHOR_NAME", name.as_os_str()),
            ("GIT_AUTHOR_EMAIL", email.as_os_str()),
            ("GIT_AUTHOR_DATE", date.as_os_str()),
            ("GIT_COMMITTER_NAME", name.as_os_str()),
            ("GIT_COMMITTER_EMAIL", email.as_os_str()),
            ("GIT_COMMITTER_DATE", date.as_os_str()),
        ];
        // --no-gpg-sign: current git ignores `commit.gpgSign` in commit-tree, but if any
        // release or wrapper honours it, gpg could wait for a passphrase nobody will type.
        let with_parent = [
            "commit-tree",
            "--no-gpg-sign",
            "-p",
            parent.unwrap_or("HEAD"),
            "-m",
            message,
            tree,
        ];
        let first = self.run(&Invocation {
            args: &with_parent,
            config: &[],
            env: &env,
        });
        let stdout = match first {
            Ok(stdout) => stdout,
            Err(err @ GitError::Failed { .. }) => {
                if parent.is_some() || self.head()?.is_some() {
                    return Err(err);
                }
                self.run(&Invocation {
                    args: &["commit-tree", "--no-gpg-sign", "-m", message, tree],
                    config: &[],
                    env: &env,
                })?
            }
            Err(err) => return Err(err),
        };
        parse::object_id(&stdout).ok_or_else(|| unexpected(&with_parent, &stdout))
    }
}
