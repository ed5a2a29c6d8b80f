//! Merges for the merge queue. The fast path builds a candidate without any worktree:
//! `git merge-tree --write-tree` (git 2.38 or newer) computes the merged tree in the object
//! store or names the conflicted files, then [`Git::commit_tree`] makes the merge commit.
//! Only a conflicting candidate needs a worktree: [`Git::merge_into`] leaves the conflict there
//! for the resolver agent, [`Git::abort_merge`] gives up on it.
//!
//! Attributes are read from the empty tree (`command::HARDENING`), so no merge driver named in
//! `.gitattributes` runs; rerere is off so a recorded resolution is never applied silently.

use std::path::Path;

use crate::command::{self, Invocation};
use crate::{check_revision, parse, unexpected, Git, GitError};

/// The oldest git stories mode runs on: `merge-tree --write-tree` (2.38, October 2022).
pub const STORIES_MIN_GIT_VERSION: &str = "2.38";
const STORIES_MIN_GIT: (u32, u32) = (2, 38);

/// What [`Git::merge_into`] did in the worktree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// A merge commit (`--no-ff`) is the worktree's new HEAD.
    Clean { commit: String },
    /// `theirs` was already contained in HEAD: nothing to merge, HEAD unchanged.
    UpToDate { commit: String },
    /// The merge stopped with these paths unmerged (relative to the worktree's top, sorted);
    /// the worktree holds the conflict markers and `MERGE_HEAD` until the resolver finishes
    /// ([`Git::commit_merge`]) or [`Git::abort_merge`].
    Conflict { files: Vec<String> },
}

/// What [`Git::merge_tree`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeTreeOutcome {
    /// The merged tree, ready for [`Git::commit_tree`] with parents `[ours, theirs]`.
    Clean { tree: String },
    /// The merge conflicts in `files` (sorted). `tree` holds them with conflict markers; it is
    /// what a resolver would start from, not something to commit.
    Conflict { tree: String, files: Vec<String> },
}

/// Settings for every merge ralph makes: no recorded resolutions, no editor, no signing
/// prompt, no "Merge branch" log appended.
const MERGE_CONFIG: &[&str] = &[
    "rerere.enabled=false",
    "rerere.autoUpdate=false",
    "merge.log=false",
    "commit.gpgSign=false",
    "core.splitIndex=false",
];

/// Fails with [`GitError::TooOld`] when the installed git cannot run stories mode; the plan
/// runner checks this once before it starts.
pub fn check_stories_git() -> Result<(), GitError> {
    let found = crate::git_version()?;
    match parse::major_minor(&found) {
        Some(v) if v >= STORIES_MIN_GIT => Ok(()),
        _ => Err(GitError::TooOld {
            found,
            required: STORIES_MIN_GIT_VERSION.to_owned(),
        }),
    }
}

impl Git {
    /// Merges `theirs` into the HEAD of the linked worktree `worktree` with a merge commit
    /// (`--no-ff`, by the configured identity, ralph's when none) and `message`. On conflict
    /// the merge is left in progress for a resolver. The worktree must be clean.
    pub fn merge_into(
        &self,
        worktree: &Path,
        theirs: &str,
        message: &str,
    ) -> Result<MergeOutcome, GitError> {
        check_revision(theirs)?;
        let root = self.linked_worktree(worktree)?;
        let before = self.head_in(&root)?;
        let identity = self.identity_env(&root)?;
        let env = identity.as_env();
        let args = [
            "merge",
            "--no-ff",
            "--no-edit",
            "--no-verify",
            "--no-stat",
            "--no-autostash",
            "--no-gpg-sign",
            "-q",
            "-m",
            message,
            theirs,
        ];
        let out = self.run_raw_in(
            &root,
            &Invocation {
                args: &args,
                config: MERGE_CONFIG,
                env: &env,
            },
        )?;
        if out.success() {
            let after = self.head_in(&root)?;
            return Ok(if after == before {
                MergeOutcome::UpToDate { commit: after }
            } else {
                MergeOutcome::Clean { commit: after }
            });
        }
        // A refusal before merging (local changes in the way, an unknown revision) leaves no
        // unmerged entries: that is an error, not a conflict.
        let files = self.unmerged_in(&root)?;
        if files.is_empty() {
            return Err(command::failed(&args, &out));
        }
        Ok(MergeOutcome::Conflict { files })
    }

    /// Concludes a merge [`Git::merge_into`] left in conflict once the resolver has edited
    /// the files: stages everything (as [`Git::commit_all`]) and commits with HEAD and
    /// `MERGE_HEAD` as parents. Fails while a path is still unmerged after staging (a resolver
    /// that deleted a file in conflict resolves it).
    pub fn commit_merge(&self, worktree: &Path, message: &str) -> Result<String, GitError> {
        let root = self.linked_worktree(worktree)?;
        let identity = self.identity_env(&root)?;
        let env = identity.as_env();
        self.run_in(
            &root,
            &Invocation {
                args: &["add", "-A", "--", ".", crate::EXCLUDE_STATE_DIR],
                config: &["core.safecrlf=false", "core.splitIndex=false"],
                env: &[],
            },
        )?;
        // `git commit` is what removes MERGE_HEAD, MERGE_MSG and MERGE_MODE consistently;
        // hooks are off (`command::HARDENING`), `--no-verify` says so twice.
        self.run_with_input_in(
            &root,
            &Invocation {
                args: &[
                    "commit",
                    "-q",
                    "--no-verify",
                    "--no-gpg-sign",
                    "--cleanup=verbatim",
                    "-F",
                    "-",
                ],
                config: MERGE_CONFIG,
                env: &env,
            },
            message.as_bytes().to_vec(),
        )?;
        self.head_in(&root)
    }

    /// `git merge --abort`: the worktree back to its HEAD before [`Git::merge_into`].
    pub fn abort_merge(&self, worktree: &Path) -> Result<(), GitError> {
        let root = self.linked_worktree(worktree)?;
        self.run_in(&root, &Invocation::new(&["merge", "--abort"]))?;
        Ok(())
    }

    /// Merges `theirs` into `ours` (commits) in the object store only, no worktree or index
    /// touched: `git merge-tree --write-tree`. Needs git 2.38 ([`check_stories_git`]).
    pub fn merge_tree(&self, ours: &str, theirs: &str) -> Result<MergeTreeOutcome, GitError> {
        check_revision(ours)?;
        check_revision(theirs)?;
        check_stories_git()?;
        let args = [
            "merge-tree",
            "--write-tree",
            "-z",
            "--name-only",
            "--no-messages",
            ours,
            theirs,
        ];
        let out = self.run_raw(&Invocation {
            args: &args,
            config: MERGE_CONFIG,
            env: &[],
        })?;
        // 0: clean, 1: conflicts; anything else (an unknown revision, unrelated histories) is
        // a failure to merge at all.
        let clean = match out.code {
            Some(0) => true,
            Some(1) => false,
            _ => return Err(command::failed(&args, &out)),
        };
        let (tree, files) =
            parse_merge_tree(&out.stdout).ok_or_else(|| unexpected(&args, &out.stdout))?;
        if clean {
            Ok(MergeTreeOutcome::Clean { tree })
        } else {
            Ok(MergeTreeOutcome::Conflict { tree, files })
        }
    }

    fn head_in(&self, root: &Path) -> Result<String, GitError> {
        let args = &["rev-parse", "--verify", "HEAD"];
        let stdout = self.run_in(root, &Invocation::new(args))?;
        parse::object_id(&stdout).ok_or_else(|| unexpected(args, &stdout))
    }

    /// Paths with unmerged index entries, sorted, each once.
    fn unmerged_in(&self, root: &Path) -> Result<Vec<String>, GitError> {
        let args = &[
            "diff",
            "--name-only",
            "--diff-filter=U",
            "-z",
            "--no-ext-diff",
        ];
        let stdout = self.run_in(root, &Invocation::new(args))?;
        let mut files: Vec<String> = stdout
            .split(|&b| b == 0)
            .filter(|f| !f.is_empty())
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        files.sort();
        files.dedup();
        Ok(files)
    }

    fn run_with_input_in(
        &self,
        dir: &Path,
        inv: &Invocation<'_>,
        input: Vec<u8>,
    ) -> Result<Vec<u8>, GitError> {
        command::run_with_input(dir, Some(self.empty_tree), inv, input)
    }
}

/// `merge-tree --write-tree -z --name-only --no-messages`: `TREE\0`, then on conflict each
/// conflicted path `PATH\0` and an empty field ending the list.
fn parse_merge_tree(stdout: &[u8]) -> Option<(String, Vec<String>)> {
    let mut fields = stdout.split(|&b| b == 0);
    let tree = parse::object_id(fields.next()?)?;
    let mut files: Vec<String> = fields
        .take_while(|f| !f.is_empty())
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    files.sort();
    files.dedup();
    Some((tree, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_merge_tree_output() {
        let tree = "2e48f729852a42e22db7969ae822bcadb513255a";
        assert_eq!(
            parse_merge_tree(format!("{tree}\0").as_bytes()),
            Some((tree.to_owned(), vec![]))
        );
        assert_eq!(
            parse_merge_tree(format!("{tree}\0b\0a\0\0").as_bytes()),
            Some((tree.to_owned(), vec!["a".to_owned(), "b".to_owned()]))
        );
        assert_eq!(parse_merge_tree(b"nonsense\0"), None);
    }
}
