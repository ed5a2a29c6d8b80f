//! Real commits for stories mode (STORIES.md rule 2, "ralph commits, agents don't"): what an
//! iteration left in a story's worktree becomes a commit on its branch, with the user's
//! identity and a `Ralph-Story:` trailer. Unlike checkpoints these are ordinary history that
//! lands on the integration branch, so they carry the author from git config, falling back to
//! ralph's own identity only when none is configured (a fresh CI machine must not stop a plan).
//!
//! Built from plumbing (`add`, `write-tree`, `commit-tree`, `update-ref` with the old value)
//! rather than `git commit`: no `commit.gpgSign` prompt, no template or cleanup mode from the
//! user's config, and the branch moves only if nobody moved it in between. The agent's own
//! commits are the parent chain, never rewritten.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::command::Invocation;
use crate::{parse, unexpected, Git, GitError, EXCLUDE_STATE_DIR, IDENT_EMAIL, IDENT_NAME};

/// A worktree's HEAD commit and its tree, as [`Git::head_state`] read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadState {
    pub commit: String,
    pub tree: String,
}

/// A story commit made by [`Git::story_commit`], not yet on its branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoryCommit {
    pub commit: String,
    /// The HEAD it was made on, which HEAD must still be for it to land.
    pub parent: String,
    pub tree: String,
}

/// Who a commit is by: set only for the parts git config leaves empty.
#[derive(Debug, Default)]
pub(crate) struct IdentityEnv {
    vars: Vec<(&'static str, OsString)>,
}

impl IdentityEnv {
    pub(crate) fn as_env(&self) -> Vec<(&str, &std::ffi::OsStr)> {
        self.vars.iter().map(|(k, v)| (*k, v.as_os_str())).collect()
    }
}

impl Git {
    /// Stages everything in the linked worktree `worktree` (tracked changes, deletions and
    /// untracked files that are not ignored; `.ralph/` never) in that worktree's own index
    /// and commits it on its HEAD with `message` and `trailers` (`("Ralph-Story", "S-3")`)
    /// appended as a trailer block. `None` when nothing changed since HEAD (an agent that
    /// committed everything itself leaves ralph nothing to add).
    pub fn commit_all(
        &self,
        worktree: &Path,
        message: &str,
        trailers: &[(&str, &str)],
    ) -> Result<Option<String>, GitError> {
        let root = self.linked_worktree(worktree)?;
        self.run_in(
            &root,
            &Invocation {
                args: &["add", "-A", "--", ".", EXCLUDE_STATE_DIR],
                config: &[
                    "core.safecrlf=false",
                    "core.splitIndex=false",
                    "advice.addEmbeddedRepo=false",
                ],
                env: &[],
            },
        )?;
        let args = &["write-tree"];
        let stdout = self.run_in(&root, &Invocation::new(args))?;
        let tree = parse::object_id(&stdout).ok_or_else(|| unexpected(args, &stdout))?;
        self.commit_on_head(&root, &tree, message, trailers)
    }

    /// [`Git::commit_all`] for a worktree whose index already holds `tree`, the snapshot of
    /// everything in it (a checkpoint that adopted its index,
    /// [`crate::CheckpointOptions::adopt_index`]): nothing is staged or hashed again. `head`:
    /// the HEAD read before (by [`Git::head_state`], while the checkpoint was taken), else it
    /// is read now. HEAD moves only if it is still that commit (the compare-and-swap of the
    /// commit), so a stale read fails, never loses work.
    pub fn commit_staged(
        &self,
        worktree: &Path,
        tree: &str,
        head: Option<&HeadState>,
        message: &str,
        trailers: &[(&str, &str)],
    ) -> Result<Option<String>, GitError> {
        crate::check_revision(tree)?;
        let root = self.linked_worktree(worktree)?;
        match head {
            Some(head) => self.commit_on(&root, head, tree, message, trailers),
            None => self.commit_on_head(&root, tree, message, trailers),
        }
    }

    /// HEAD of the linked worktree at `worktree` and its tree.
    pub fn head_state(&self, worktree: &Path) -> Result<HeadState, GitError> {
        let root = self.linked_worktree(worktree)?;
        self.head_state_in(&root)
    }

    fn head_state_in(&self, root: &Path) -> Result<HeadState, GitError> {
        let args = &["rev-parse", "HEAD", "HEAD^{tree}"];
        let stdout = self.run_in(root, &Invocation::new(args))?;
        let text = String::from_utf8_lossy(&stdout);
        let mut ids = text.lines();
        let (Some(commit), Some(tree)) = (ids.next(), ids.next()) else {
            return Err(unexpected(args, &stdout));
        };
        Ok(HeadState {
            commit: commit.to_owned(),
            tree: tree.to_owned(),
        })
    }

    /// `tree` committed on HEAD of the worktree at `root` (HEAD moved only if it did not
    /// move meanwhile); `None` when HEAD already has that tree.
    fn commit_on_head(
        &self,
        root: &Path,
        tree: &str,
        message: &str,
        trailers: &[(&str, &str)],
    ) -> Result<Option<String>, GitError> {
        let head = self.head_state_in(root)?;
        self.commit_on(root, &head, tree, message, trailers)
    }

    fn commit_on(
        &self,
        root: &Path,
        head: &HeadState,
        tree: &str,
        message: &str,
        trailers: &[(&str, &str)],
    ) -> Result<Option<String>, GitError> {
        match self.story_commit_in(root, head, tree, message, trailers)? {
            Some(commit) => self.land_in(root, &commit).map(Some),
            None => Ok(None),
        }
    }

    /// The commit [`Git::commit_staged`] would make of `tree` on `head` in the linked worktree
    /// `worktree`, made but not yet on the branch (no ref moves: until
    /// [`Git::land_story_commit`], it is an object nothing points at). `None` when `head`
    /// already has that tree. For a caller that decides whether to commit while the commit is
    /// written.
    pub fn story_commit(
        &self,
        worktree: &Path,
        head: &HeadState,
        tree: &str,
        message: &str,
        trailers: &[(&str, &str)],
    ) -> Result<Option<StoryCommit>, GitError> {
        crate::check_revision(tree)?;
        let root = self.linked_worktree(worktree)?;
        self.story_commit_in(&root, head, tree, message, trailers)
    }

    fn story_commit_in(
        &self,
        root: &Path,
        head: &HeadState,
        tree: &str,
        message: &str,
        trailers: &[(&str, &str)],
    ) -> Result<Option<StoryCommit>, GitError> {
        if head.tree == tree {
            return Ok(None);
        }
        let full = with_trailers(message, trailers);
        let commit = self.commit_tree_in(root, tree, &[&head.commit], &full)?;
        Ok(Some(StoryCommit {
            commit,
            parent: head.commit.clone(),
            tree: tree.to_owned(),
        }))
    }

    /// Moves the HEAD of the linked worktree `worktree` to `commit` (made by
    /// [`Git::story_commit`]) only if it is still the commit's parent: the compare-and-swap
    /// of [`Git::commit_staged`]. Returns the commit.
    pub fn land_story_commit(
        &self,
        worktree: &Path,
        commit: &StoryCommit,
    ) -> Result<String, GitError> {
        let root = self.linked_worktree(worktree)?;
        self.land_in(&root, commit)
    }

    fn land_in(&self, root: &Path, commit: &StoryCommit) -> Result<String, GitError> {
        let args = [
            "update-ref",
            "-m",
            "ralph: commit_all",
            "HEAD",
            commit.commit.as_str(),
            commit.parent.as_str(),
        ];
        self.run_in(root, &Invocation::new(&args))?;
        Ok(commit.commit.clone())
    }

    /// A commit of `tree` with `parents` (in order: the first is "ours") and `message`, by the
    /// identity in git config (ralph's when none is set). No ref moves.
    pub fn commit_tree(
        &self,
        tree: &str,
        parents: &[&str],
        message: &str,
    ) -> Result<String, GitError> {
        self.commit_tree_in(&self.root, tree, parents, message)
    }

    fn commit_tree_in(
        &self,
        dir: &Path,
        tree: &str,
        parents: &[&str],
        message: &str,
    ) -> Result<String, GitError> {
        crate::check_revision(tree)?;
        let mut args = vec!["commit-tree", "--no-gpg-sign"];
        for parent in parents {
            crate::check_revision(parent)?;
            args.extend_from_slice(&["-p", parent]);
        }
        // The message on stdin: no argument-length limit, and it is not shown in errors.
        args.extend_from_slice(&["-F", "-", tree]);
        let identity = self.identity_env(dir)?;
        let env = identity.as_env();
        let stdout = crate::command::run_with_input(
            dir,
            Some(self.empty_tree),
            &Invocation {
                args: &args,
                config: &[],
                env: &env,
            },
            message.as_bytes().to_vec(),
        )?;
        parse::object_id(&stdout).ok_or_else(|| unexpected(&args, &stdout))
    }

    /// The environment that completes the identity git config gives (`author.*` and
    /// `committer.*` over `user.*`, as git reads them) with ralph's. `GIT_AUTHOR_*` from ralph's
    /// own environment never reach git (see `command::STRIPPED`), so config is the only source.
    ///
    /// Read once per repository per process while the repository's `config` file is
    /// unchanged: every story commit and merge commit of a plan run asked it again, two `git
    /// config` runs per story on the critical path. An identity set in the user's global
    /// config while a plan runs applies from the next run.
    pub(crate) fn identity_env(&self, dir: &Path) -> Result<Arc<IdentityEnv>, GitError> {
        type Cache = HashMap<PathBuf, (Option<ConfigStamp>, Arc<IdentityEnv>)>;
        static READ: OnceLock<Mutex<Cache>> = OnceLock::new();
        let cache = READ.get_or_init(Mutex::default);
        let stamp = ConfigStamp::of(&self.common_dir.join("config"));
        let cached = cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&self.common_dir)
            .filter(|(seen, _)| stamp.is_some() && *seen == stamp)
            .map(|(_, env)| env.clone());
        if let Some(env) = cached {
            return Ok(env);
        }
        let env = Arc::new(self.read_identity(dir)?);
        cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(self.common_dir.clone(), (stamp, env.clone()));
        Ok(env)
    }

    fn read_identity(&self, dir: &Path) -> Result<IdentityEnv, GitError> {
        let args = &[
            "config",
            "-z",
            "--get-regexp",
            r"^(user|author|committer)\.(name|email)$",
        ];
        let out = self.run_raw_in(dir, &Invocation::new(args))?;
        // Exit 1: no such setting at all.
        let none_set = out.code == Some(1) && out.stdout.is_empty();
        if !out.success() && !none_set {
            return Err(crate::command::failed(args, &out));
        }
        let mut found: Vec<(String, bool)> = Vec::new();
        for record in out.stdout.split(|&b| b == 0).filter(|r| !r.is_empty()) {
            let text = String::from_utf8_lossy(record);
            let (key, value) = text.split_once('\n').unwrap_or((&text, ""));
            found.push((key.to_ascii_lowercase(), !value.trim().is_empty()));
        }
        let has = |key: &str| found.iter().any(|(k, set)| k == key && *set);
        let mut env = IdentityEnv::default();
        for (role, var_name, var_email) in [
            ("author", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL"),
            ("committer", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"),
        ] {
            if !has(&format!("{role}.name")) && !has("user.name") {
                env.vars.push((var_name, OsString::from(IDENT_NAME)));
            }
            if !has(&format!("{role}.email")) && !has("user.email") {
                env.vars.push((var_email, OsString::from(IDENT_EMAIL)));
            }
        }
        Ok(env)
    }
}

/// What says a config file was not written since: its inode, size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConfigStamp {
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

impl ConfigStamp {
    fn of(path: &Path) -> Option<ConfigStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(ConfigStamp {
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
        })
    }
}

/// `message` with `trailers` as its last paragraph, as `git interpret-trailers` would put
/// them: appended to an existing trailer block, else after a blank line. Values are put on
/// one line (a newline in a value would end the trailer and start text).
pub(crate) fn with_trailers(message: &str, trailers: &[(&str, &str)]) -> String {
    let body = message.trim_end();
    let mut out = body.to_owned();
    if trailers.is_empty() {
        out.push('\n');
        return out;
    }
    let last_paragraph = body.rsplit("\n\n").next().unwrap_or("");
    let ends_in_trailers = body.contains("\n\n")
        && !last_paragraph.is_empty()
        && last_paragraph.lines().all(is_trailer_line);
    out.push_str(if ends_in_trailers { "\n" } else { "\n\n" });
    if body.is_empty() {
        out.clear();
    }
    for (key, value) in trailers {
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        out.push_str(&format!("{key}: {value}\n"));
    }
    out
}

fn is_trailer_line(line: &str) -> bool {
    match line.split_once(": ") {
        Some((key, _)) => {
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_start_a_paragraph_or_join_one() {
        let t = [("Ralph-Story", "STORY-003")];
        assert_eq!(
            with_trailers("Add parser\n", &t),
            "Add parser\n\nRalph-Story: STORY-003\n"
        );
        assert_eq!(
            with_trailers("Add parser\n\nBody text.\n\nSigned-off-by: A <a@b>\n", &t),
            "Add parser\n\nBody text.\n\nSigned-off-by: A <a@b>\nRalph-Story: STORY-003\n"
        );
        // A subject that looks like a trailer is still a subject.
        assert_eq!(
            with_trailers("Fix: crash", &t),
            "Fix: crash\n\nRalph-Story: STORY-003\n"
        );
        assert_eq!(with_trailers("", &t), "Ralph-Story: STORY-003\n");
        assert_eq!(with_trailers("x\n\n", &[]), "x\n");
        assert_eq!(
            with_trailers("x", &[("Ralph-Story", "a\nb")]),
            "x\n\nRalph-Story: a b\n"
        );
    }
}
