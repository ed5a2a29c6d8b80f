//! Linked worktrees for stories mode: one per running story (on its branch) and one per
//! merge-queue verification (detached). Adding, moving, parking, removing and pruning take the
//! repository lock ([`Git::repo_lock`]): they change `<common>/worktrees/`, which every
//! worktree shares; switching a worktree its caller owns does not.
//!
//! Functions that run git inside a worktree first check that the path is the top of a linked
//! worktree of this repository (its `.git` file names `<common>/worktrees/<name>`): a story
//! worktree under `.ralph/worktrees/` whose `.git` file went missing would otherwise make git
//! find the user's repository above it, and `git add -A` would write into the user's index.

use std::path::{Path, PathBuf};

use crate::command::{self, Invocation, Output};
use crate::{check_revision, Git, GitError, EXCLUDE_STATE_DIR};

/// One entry of `git worktree list --porcelain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeInfo {
    pub path: PathBuf,
    /// The checked-out commit; `None` in a worktree on an unborn branch (and for a bare entry).
    pub head: Option<String>,
    /// The full ref name (`refs/heads/…`); `None` when detached.
    pub branch: Option<String>,
    /// `git worktree lock` was used; the reason when one was given (may be empty).
    pub locked: Option<String>,
    /// Git would prune this entry (its directory is gone); git's reason.
    pub prunable: Option<String>,
    /// The main worktree is always listed first; only a bare repository's entry is `bare`.
    pub bare: bool,
}

/// What [`Git::worktree_reuse`] checked out: the commit and its tree (the story's first
/// checkpoint records that tree without reading a file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    pub commit: String,
    pub tree: String,
}

/// What [`Git::story_branch_target`] read: where a story branch points (`None`: it does not
/// exist yet) and the commit it is to be checked out at, with its tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchTarget {
    branch: String,
    pub at: Option<String>,
    pub start: Checkout,
}

impl BranchTarget {
    /// The `git checkout` arguments that put a worktree on the branch at the start commit:
    /// the branch as it is when it already points there, created there when missing, and
    /// [`GitError::BranchExists`] when it points elsewhere (an existing branch is never
    /// moved).
    fn checkout_args(&self) -> Result<Vec<String>, GitError> {
        let wanted = &self.start.commit;
        match &self.at {
            Some(at) if at != wanted => Err(GitError::BranchExists {
                branch: self.branch.clone(),
                at: at.clone(),
                wanted: wanted.clone(),
            }),
            Some(_) => Ok(vec![self.branch.clone()]),
            None => Ok(["--no-track", "-b", &self.branch, wanted]
                .map(str::to_owned)
                .to_vec()),
        }
    }
}

/// A scoped thread's result; a thread that panicked is git's unexpected failure.
fn joined<T>(
    handle: std::thread::ScopedJoinHandle<'_, Result<T, GitError>>,
    args: &str,
) -> Result<T, GitError> {
    handle.join().unwrap_or_else(|_| {
        Err(GitError::Unexpected {
            args: args.into(),
            output: "the thread asking it stopped".into(),
        })
    })
}

/// The oldest git with `git worktree list -z` (2.36). Stories mode needs 2.38 anyway
/// ([`crate::STORIES_MIN_GIT_VERSION`]), but listing is also used by `ralph stories clean`.
const LIST_Z: (u32, u32) = (2, 36);

impl Git {
    /// Creates branch `branch` at `start` (any commit-ish) and a worktree at `path` (absolute,
    /// must not exist or be an empty directory) with that branch checked out. When the branch
    /// already exists at the same commit it is attached instead (a crash between the two steps
    /// must not stop a restart); at another commit this fails with
    /// [`GitError::BranchExists`]: an existing branch holds work and is never moved.
    pub fn worktree_add(&self, path: &Path, branch: &str, start: &str) -> Result<(), GitError> {
        let _lock = self.repo_lock()?;
        let target = self.story_branch_target(branch, start)?;
        self.worktree_add_at(path, &target).map(|_| ())
    }

    /// [`Git::worktree_add`] for the branch and start [`Git::story_branch_target`] read (under
    /// the repository lock the caller holds since): no ref is read again. Returns the commit
    /// checked out, with its tree.
    pub fn worktree_add_at(
        &self,
        path: &Path,
        target: &BranchTarget,
    ) -> Result<Checkout, GitError> {
        let _lock = self.repo_lock()?;
        let wanted = &target.start.commit;
        match &target.at {
            Some(at) if at != wanted => {
                return Err(GitError::BranchExists {
                    branch: target.branch.clone(),
                    at: at.clone(),
                    wanted: wanted.clone(),
                })
            }
            Some(_) => self.worktree_attach(path, &target.branch)?,
            None => self.worktree_add_args(path, &["--no-track", "-b", &target.branch], wanted)?,
        }
        Ok(target.start.clone())
    }

    /// A worktree at `path` for the existing branch `branch`, as it is (resuming a story).
    /// Already attached there (as [`Git::worktrees`] lists it): nothing to do.
    pub fn worktree_attach(&self, path: &Path, branch: &str) -> Result<(), GitError> {
        check_revision(branch)?;
        let _lock = self.repo_lock()?;
        let full = format!("refs/heads/{branch}");
        let already = self
            .worktrees()?
            .into_iter()
            .any(|w| w.branch.as_deref() == Some(full.as_str()) && same_path(&w.path, path));
        if already {
            return Ok(());
        }
        // `--end-of-options` is not understood by `worktree add` before git 2.43; the branch
        // name was checked not to start with `-`.
        self.worktree_add_args(path, &[], branch)
    }

    /// A worktree at `path` with `commit` checked out on a detached HEAD: a merge-queue
    /// verification worktree, where no branch moves until a candidate passes.
    pub fn worktree_add_detached(&self, path: &Path, commit: &str) -> Result<(), GitError> {
        check_revision(commit)?;
        let _lock = self.repo_lock()?;
        self.worktree_add_args(path, &["--detach"], commit)
    }

    fn worktree_add_args(&self, path: &Path, opts: &[&str], what: &str) -> Result<(), GitError> {
        let path = path_str(path)?;
        let mut args = vec!["worktree", "add", "-q"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["--", path, what]);
        // The checkout is the expensive part: a split index would leave `sharedindex.*`
        // files, and `checkout.workers` is the user's choice, so it is kept.
        self.run(&Invocation {
            args: &args,
            config: &["core.splitIndex=false", "advice.detachedHead=false"],
            env: &[],
        })?;
        Ok(())
    }

    /// Reuses the clean linked worktree at `path` for another story instead of removing it and
    /// adding a new one: creates branch `branch` at `start` (or takes it when it already points
    /// there, as [`Git::worktree_add`]) and checks it out, rewriting only the files that differ
    /// from what is checked out. In a large repository this is the difference between writing
    /// every file twice per story (remove, add) and writing the few that changed. The branch
    /// checked out before stays as it is; a worktree with uncommitted or untracked work is
    /// refused ([`GitError::WorktreeDirty`]) before anything changes. Returns the commit
    /// checked out.
    ///
    /// Takes no repository lock: it is for a worktree only its caller uses (a story's, claimed
    /// by [`Git::worktree_move`] to the story's name), and what it changes outside that
    /// worktree is one new branch, which git locks itself. Its `git status` and checkout cost
    /// tens of milliseconds each in a 10,000-file repository; under the lock they held up every
    /// other story's merge.
    pub fn worktree_reuse(
        &self,
        path: &Path,
        branch: &str,
        start: &str,
    ) -> Result<Checkout, GitError> {
        // The branch and the start are resolved while the worktree's status is asked: both
        // are read-only, and a story's agent waits on them.
        let (target, root) = std::thread::scope(|scope| {
            let target = scope.spawn(|| self.story_branch_target(branch, start));
            let root = self.clean_linked_worktree(path);
            (joined(target, "cat-file"), root)
        });
        let (target, root) = (target?, root?);
        self.switch_in(&root, &target)
    }

    /// [`Git::worktree_reuse`] of a worktree its caller has just seen clean
    /// ([`Git::is_clean`]) and that nothing has written to since (a merged story's, handed
    /// straight to the next story): the `git status` is not asked twice. `target` is what
    /// [`Git::story_branch_target`] read for the story's branch and start.
    pub fn worktree_switch_clean(
        &self,
        path: &Path,
        target: &BranchTarget,
    ) -> Result<Checkout, GitError> {
        let root = self.linked_worktree(path)?;
        self.switch_in(&root, target)
    }

    fn switch_in(&self, root: &Path, target: &BranchTarget) -> Result<Checkout, GitError> {
        let opts = target.checkout_args()?;
        self.checkout_in(root, &opts.iter().map(String::as_str).collect::<Vec<_>>())?;
        Ok(target.start.clone())
    }

    /// Where story branch `branch` stands, and the commit `start` names with its tree: one
    /// `git cat-file`, read before a worktree is switched to the branch (and, for a story
    /// start, in place of asking whether the branch exists).
    pub fn story_branch_target(&self, branch: &str, start: &str) -> Result<BranchTarget, GitError> {
        check_revision(branch)?;
        check_revision(start)?;
        let full = format!("refs/heads/{branch}");
        let tree = format!("{start}^{{tree}}");
        let (commit, found) = self.commit_and(start, &[&full, &tree])?;
        let mut found = found.into_iter();
        let (at, tree) = (found.next().flatten(), found.next().flatten());
        // A commit has a tree: missing, the object store is damaged.
        let tree = tree.ok_or_else(|| GitError::UnknownCommit(start.to_owned()))?;
        Ok(BranchTarget {
            branch: branch.to_owned(),
            at,
            start: Checkout { commit, tree },
        })
    }

    /// Moves the linked worktree at `from` to `to` (`git worktree move`), under the
    /// repository lock: no file in it changes, so nothing is checked. A parked worktree is
    /// claimed this way (to the story's name, where no other story looks for one) before
    /// [`Git::worktree_reuse`] switches it.
    pub fn worktree_move(&self, from: &Path, to: &Path) -> Result<(), GitError> {
        let _lock = self.repo_lock()?;
        let from = self.linked_worktree(from)?;
        let (from_s, to_s) = (path_str(&from)?, path_str(to)?);
        self.run(&Invocation::new(&["worktree", "move", "--", from_s, to_s]))?;
        Ok(())
    }

    /// Parks the linked worktree at `path` under `to` for a later story: its HEAD detached at
    /// the commit it is on (so its branch is checked out nowhere) without touching its files
    /// or index, then moved. Whether it is clean is not asked here but by the
    /// [`Git::worktree_reuse`] that takes it (one `git status` per story, not two): parking
    /// changes no file, so a dirty one loses nothing and is never switched.
    pub fn worktree_park(&self, path: &Path, to: &Path) -> Result<(), GitError> {
        let root = self.linked_worktree(path)?;
        // Detaching writes only the worktree's own HEAD: the lock is for the move, and every
        // story start and commit waits on it.
        // The new value `HEAD` is what HEAD resolves to now: detached where it was, in one git
        // run (an unborn branch resolves to nothing and fails, as it should).
        self.run_in(
            &root,
            &Invocation::new(&[
                "update-ref",
                "--no-deref",
                "-m",
                "ralph: park",
                "HEAD",
                "HEAD",
            ]),
        )?;
        let (from_s, to_s) = (path_str(&root)?, path_str(to)?);
        let _lock = self.repo_lock()?;
        self.run(&Invocation::new(&["worktree", "move", "--", from_s, to_s]))?;
        Ok(())
    }

    /// Points the clean linked worktree at `path` at `commit` on a detached HEAD (the next
    /// candidate in a reused verification worktree); only the files that differ are written.
    pub fn worktree_checkout_detached(&self, path: &Path, commit: &str) -> Result<(), GitError> {
        check_revision(commit)?;
        let root = self.clean_linked_worktree(path)?;
        self.checkout_in(&root, &["--detach", commit])
    }

    /// Points ralph's own scratch worktree at `path` (the merge queue's verification worktree,
    /// where only ralph's checkouts and the gates' outputs ever are) at `commit`, detached,
    /// whatever a gate or an interrupted run left in it: changes are discarded and untracked
    /// files removed (`checkout --force`, `clean -ffdx`). Never for a story's worktree.
    pub fn scratch_checkout(&self, path: &Path, commit: &str) -> Result<(), GitError> {
        check_revision(commit)?;
        let root = self.linked_worktree(path)?;
        self.checkout_in(&root, &["--force", "--detach", commit])?;
        self.run_in(&root, &Invocation::new(&["clean", "-q", "-ffdx"]))?;
        Ok(())
    }

    fn clean_linked_worktree(&self, path: &Path) -> Result<PathBuf, GitError> {
        let root = self.linked_worktree(path)?;
        let entries = self.dirty_entries(&root)?;
        if entries.is_empty() {
            Ok(root)
        } else {
            Err(GitError::WorktreeDirty {
                path: root,
                entries,
            })
        }
    }

    fn checkout_in(&self, root: &Path, opts: &[&str]) -> Result<(), GitError> {
        let mut args = vec!["checkout", "-q", "--no-recurse-submodules"];
        args.extend_from_slice(opts);
        args.push("--");
        self.run_in(
            root,
            &Invocation {
                args: &args,
                config: &["core.splitIndex=false", "advice.detachedHead=false"],
                env: &[],
            },
        )?;
        Ok(())
    }

    /// Removes the worktree at `path` (its directory and its entry; the branch stays). Refuses
    /// with [`GitError::WorktreeDirty`] when it has uncommitted changes or untracked files
    /// (ignored files are removed with it), and never forces: unmerged work is never deleted.
    pub fn worktree_remove(&self, path: &Path) -> Result<(), GitError> {
        let _lock = self.repo_lock()?;
        let root = self.clean_linked_worktree(path)?;
        let root = path_str(&root)?;
        self.run(&Invocation::new(&["worktree", "remove", "--", root]))?;
        Ok(())
    }

    /// `git worktree prune`: forgets worktrees whose directory is gone (a crash, a user's
    /// `rm -rf`). Locked entries are kept, as git keeps them.
    pub fn worktree_prune(&self) -> Result<(), GitError> {
        let _lock = self.repo_lock()?;
        self.run(&Invocation::new(&["worktree", "prune"]))?;
        Ok(())
    }

    /// Every worktree of the repository, the main one first.
    pub fn worktrees(&self) -> Result<Vec<WorktreeInfo>, GitError> {
        let z = crate::parse::major_minor(&crate::git_version()?).is_some_and(|v| v >= LIST_Z);
        let args: &[&str] = if z {
            &["worktree", "list", "--porcelain", "-z"]
        } else {
            &["worktree", "list", "--porcelain"]
        };
        let stdout = self.run(&Invocation::new(args))?;
        let sep = if z { 0 } else { b'\n' };
        parse_worktree_list(&stdout, sep).ok_or_else(|| crate::unexpected(args, &stdout))
    }

    /// No uncommitted change and no untracked file in the worktree at `path` (ignored files and
    /// `.ralph/` do not count). `path` must be the top of a worktree of this repository.
    pub fn is_clean(&self, path: &Path) -> Result<bool, GitError> {
        let root = self.worktree_top(path)?;
        Ok(self.dirty_entries(&root)?.is_empty())
    }

    /// What keeps the worktree at `path` from being clean: its `git status` entries (`XY path`,
    /// at most 20), untracked files included, ignored ones not.
    pub fn dirty_paths(&self, path: &Path) -> Result<Vec<String>, GitError> {
        let root = self.worktree_top(path)?;
        self.dirty_entries(&root)
    }

    /// `git status` entries (`XY path`), at most 20: enough to say why, bounded for an error.
    pub(crate) fn dirty_entries(&self, root: &Path) -> Result<Vec<String>, GitError> {
        let args = &[
            "status",
            "--porcelain",
            "-z",
            "--untracked-files=normal",
            "--ignore-submodules=none",
            "--",
            ".",
            EXCLUDE_STATE_DIR,
        ];
        let stdout = self.run_in(root, &Invocation::new(args))?;
        Ok(parse_status(&stdout, 20))
    }

    /// `path` canonicalised, after checking it is the top of a linked worktree of this
    /// repository (see the module documentation). The main worktree is refused: it is the
    /// user's.
    pub(crate) fn linked_worktree(&self, path: &Path) -> Result<PathBuf, GitError> {
        self.linked_dirs(path).map(|(root, _)| root)
    }

    /// The handle for the linked worktree at `path` (checked as [`Git::linked_worktree`]),
    /// what [`Git::discover`] would find there, from the worktree's `.git` file and this
    /// handle instead of a `git rev-parse`: a story's loop opens one per story.
    pub fn open_linked(&self, path: &Path) -> Result<Git, GitError> {
        let (root, git_dir) = self.linked_dirs(path)?;
        Ok(Git {
            root,
            index_path: git_dir.join("index"),
            git_dir,
            common_dir: self.common_dir.clone(),
            empty_tree: self.empty_tree,
        })
    }

    /// The worktree's top and its git directory, both canonical.
    fn linked_dirs(&self, path: &Path) -> Result<(PathBuf, PathBuf), GitError> {
        let not_ours = || GitError::NotOurWorktree(path.to_owned());
        let root = std::fs::canonicalize(path).map_err(|_| not_ours())?;
        let text = std::fs::read_to_string(root.join(".git")).map_err(|_| not_ours())?;
        let gitdir = text
            .strip_prefix("gitdir: ")
            .map(|rest| root.join(rest.trim_end_matches(['\n', '\r'])))
            .ok_or_else(not_ours)?;
        let gitdir = std::fs::canonicalize(gitdir).map_err(|_| not_ours())?;
        let worktrees =
            std::fs::canonicalize(self.common_dir.join("worktrees")).map_err(|_| not_ours())?;
        if gitdir.parent() == Some(worktrees.as_path()) {
            Ok((root, gitdir))
        } else {
            Err(not_ours())
        }
    }

    /// A linked worktree of this repository, or its main worktree.
    fn worktree_top(&self, path: &Path) -> Result<PathBuf, GitError> {
        if same_path(path, &self.root) {
            return Ok(self.root.clone());
        }
        self.linked_worktree(path)
    }

    /// As [`Git::run`], in another working tree of the repository (a story's worktree).
    pub(crate) fn run_in(&self, dir: &Path, inv: &Invocation<'_>) -> Result<Vec<u8>, GitError> {
        command::run(dir, Some(self.empty_tree), inv)
    }

    pub(crate) fn run_raw_in(&self, dir: &Path, inv: &Invocation<'_>) -> Result<Output, GitError> {
        command::run_raw(dir, Some(self.empty_tree), inv)
    }
}

/// Paths are arguments; git needs them as text here (a non-UTF-8 worktree path is refused
/// rather than mangled).
pub(crate) fn path_str(path: &Path) -> Result<&str, GitError> {
    path.to_str()
        .ok_or_else(|| GitError::InvalidPath(path.to_string_lossy().into_owned()))
}

fn same_path(a: &Path, b: &Path) -> bool {
    a == b
        || match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
}

/// `git worktree list --porcelain [-z]`: records of `key[ value]` lines, each record ended by
/// an empty line. `sep` is NUL with `-z`, newline without.
pub(crate) fn parse_worktree_list(stdout: &[u8], sep: u8) -> Option<Vec<WorktreeInfo>> {
    let mut out = Vec::new();
    let mut current: Option<WorktreeInfo> = None;
    for line in stdout.split(|&b| b == sep) {
        if line.is_empty() {
            out.extend(current.take());
            continue;
        }
        let (key, value) = match line.iter().position(|&b| b == b' ') {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line, None),
        };
        let text = |v: Option<&[u8]>| String::from_utf8_lossy(v.unwrap_or_default()).into_owned();
        if key == b"worktree" {
            out.extend(current.take());
            current = Some(WorktreeInfo {
                path: command::bytes_to_path(value?),
                head: None,
                branch: None,
                locked: None,
                prunable: None,
                bare: false,
            });
            continue;
        }
        let entry = current.as_mut()?;
        match key {
            b"HEAD" => {
                let oid = text(value);
                // An unborn branch's worktree prints the all-zero id.
                entry.head = oid.bytes().any(|b| b != b'0').then_some(oid);
            }
            b"branch" => entry.branch = Some(text(value)),
            b"locked" => entry.locked = Some(text(value)),
            b"prunable" => entry.prunable = Some(text(value)),
            b"bare" => entry.bare = true,
            // `detached` and whatever later gits add.
            _ => {}
        }
    }
    out.extend(current);
    Some(out)
}

/// `git status --porcelain -z`: `XY path\0`, a rename or copy followed by its source path.
fn parse_status(stdout: &[u8], limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut fields = stdout.split(|&b| b == 0).filter(|f| !f.is_empty());
    while let Some(entry) = fields.next() {
        if matches!(entry.first(), Some(b'R' | b'C')) {
            let _source = fields.next();
        }
        if out.len() < limit {
            out.push(String::from_utf8_lossy(entry).into_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_worktree_list_with_and_without_nul() {
        let z = b"worktree /r\0HEAD 1111111111111111111111111111111111111111\0branch refs/heads/main\0\0\
worktree /r/.ralph/worktrees/S-1\0HEAD 2222222222222222222222222222222222222222\0detached\0locked\0\0\
worktree /gone\0HEAD 0000000000000000000000000000000000000000\0branch refs/heads/x\0prunable gitdir file points to non-existent location\0\0";
        let list = parse_worktree_list(z, 0).unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].branch.as_deref(), Some("refs/heads/main"));
        assert_eq!(list[1].branch, None);
        assert_eq!(list[1].locked.as_deref(), Some(""));
        assert_eq!(list[2].head, None);
        assert!(list[2].prunable.as_deref().unwrap().starts_with("gitdir"));
        let nl: Vec<u8> = z.iter().map(|&b| if b == 0 { b'\n' } else { b }).collect();
        assert_eq!(parse_worktree_list(&nl, b'\n').unwrap(), list);
        assert!(parse_worktree_list(b"HEAD 11\0\0", 0).is_none());
    }

    #[test]
    fn status_entries_skip_rename_sources() {
        let out = parse_status(b"R  new\0old\0?? junk\0 M a\0", 2);
        assert_eq!(out, vec!["R  new".to_owned(), "?? junk".to_owned()]);
    }
}
