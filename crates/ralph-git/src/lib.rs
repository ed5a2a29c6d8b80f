//! git CLI wrapper. Checkpoints are ghost commits under `refs/ralph/checkpoints/…` (the ref
//! layout is in [`refs`]): the user's branch, index, stash and working tree are never touched.
//! All writes go through a temporary index file.
//!
//! We shell out to `git` rather than link libgit2: the CLI honours the user's configuration
//! (excludes, sparse checkouts, line endings, SHA-256 repositories) as their own `git add`
//! would. What could run code — hooks, fsmonitor, filter, textconv and diff drivers selected by
//! attributes — is switched off (`command::HARDENING`): an agent can write `.gitattributes` and
//! the user's global config, and ralph's git must never run what it put there. Checkpoints
//! therefore hold the work tree's bytes exactly, unfiltered (an LFS file's content, not its
//! pointer), and restores write them back as they were.
//!
//! Stories mode adds real commits and worktrees: [`Git::repo_lock`] serialises what all
//! worktrees share, `worktree_*` manage a story's worktree, [`Git::commit_all`] and
//! [`Git::merge_tree`] build story commits and candidates, [`Git::update_ref_cas`] lands them.

mod aliases;
mod checkpoint;
mod command;
mod kept_index;
mod merge;
mod meta;
mod parse;
mod ref_files;
pub mod refs;
mod refsnap;
mod repo_lock;
mod restore;
mod revs;
mod rollback;
mod story_commit;
mod temp_index;
mod worktree;

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

pub use checkpoint::{Checkpoint, CheckpointOptions, Snapshot};
use command::{Invocation, Output};

pub use kept_index::KeptIndex;
pub use merge::{check_stories_git, MergeOutcome, MergeTreeOutcome, STORIES_MIN_GIT_VERSION};
pub use meta::{RepoMeta, HOOK_NAMES};
pub use refsnap::{check_ref_pattern, RefFix, RefRestore, RefRules, RefSnapshot};
pub use repo_lock::{RepoLockGuard, REPO_LOCK_FILE};
pub use restore::RestoreReport;
pub use revs::{CasOutcome, Expect};
pub use rollback::{RollbackError, RollbackOptions, RollbackOutcome, RunCheckpoint};
pub use story_commit::{HeadState, StoryCommit};
pub use worktree::{BranchTarget, Checkout, WorktreeInfo};

/// Oldest git ralph supports: 2.25 (January 2020, Ubuntu 20.04's git) has everything used
/// here (`rev-parse --git-path`, linked worktrees with per-worktree indexes, `-z` numstat with
/// renames, `commit-tree --no-gpg-sign`).
pub const MIN_GIT_VERSION: &str = "2.25";
const MIN_GIT: (u32, u32) = (2, 25);

/// The temporary index is written by `add` and rewritten by `write-tree`, then thrown away:
/// its trailing SHA-1 (≈2 ms per write for 10,000 files) protects nothing. Only this git
/// process and the next one read it; git before 2.40 ignores the setting.
const SKIP_INDEX_HASH: &str = "index.skipHash=true";

/// Untracked files larger than this are left out of checkpoints unless the caller says
/// otherwise: a stray database dump or build artefact must not bloat `.git` on every iteration.
pub const DEFAULT_MAX_UNTRACKED_BYTES: u64 = 10 * 1024 * 1024;

/// Pathspec that keeps ralph's own state directory (`.ralph/` at any depth: ralph may run in a
/// sub-directory of the repository) out of snapshots and restores, even when its self-ignoring
/// `.gitignore` has been deleted.
const EXCLUDE_STATE_DIR: &str = ":(exclude,glob)**/.ralph/**";

/// Identity for ghost commits, so checkpoints work for a user who never configured git.
const IDENT_NAME: &str = "ralph";
const IDENT_EMAIL: &str = "ralph@localhost";

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git is not installed (looked for `git` on PATH)")]
    NotInstalled,
    #[error("git {found} is too old; ralph needs git {required} or newer")]
    TooOld { found: String, required: String },
    #[error("failed to run git {args}: {source}")]
    Spawn {
        args: String,
        source: std::io::Error,
    },
    #[error("git {args} failed (exit {code}): {stderr}")]
    Failed {
        args: String,
        code: i32,
        stderr: String,
    },
    #[error("failed to prepare the temporary index: {0}")]
    Io(#[from] std::io::Error),
    #[error("failed to open directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to understand the output of git {args}: {output:?}")]
    Unexpected { args: String, output: String },
    #[error("failed to use {0:?} as a ralph ref: ralph only writes refs under refs/ralph/")]
    InvalidRef(String),
    #[error("failed to use {0:?} as a revision: it must not be empty or start with '-'")]
    InvalidRevision(String),
    #[error(
        "failed to find commit {0:?} in the repository (deleted or never fetched?); `git log \
         --all` lists what is there"
    )]
    UnknownCommit(String),
    #[error(
        "failed to use {0:?} as a path to restore: it must be relative to the top of the \
         repository, without `.` or `..` components"
    )]
    InvalidPath(String),
    #[error("failed to restore {path}: {source}")]
    Restore {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to take the repository lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to create branch {branch}: it already exists at {at}, not at {wanted}")]
    BranchExists {
        branch: String,
        at: String,
        wanted: String,
    },
    #[error(
        "failed to use worktree {path}: it has uncommitted or untracked files ({})",
        entries.join(", ")
    )]
    WorktreeDirty { path: PathBuf, entries: Vec<String> },
    #[error("failed to use {0}: it is not the top of a linked worktree of this repository")]
    NotOurWorktree(PathBuf),
}

/// A repository ralph can checkpoint.
#[derive(Debug, Clone)]
pub struct Git {
    /// Top level of the working tree.
    pub root: PathBuf,
    /// The repository's index file (resolved once; worktrees have their own).
    pub index_path: PathBuf,
    /// This working tree's git directory: `<root>/.git`, or in a linked worktree
    /// `<common>/worktrees/<name>` (its HEAD, index and `config.worktree`).
    pub git_dir: PathBuf,
    /// The directory every worktree of the repository shares: objects, refs, `config` and
    /// `hooks`. The same as `git_dir` outside linked worktrees.
    pub common_dir: PathBuf,
    /// The empty tree's id in the repository's object format ([`EMPTY_TREE_SHA1`] or
    /// [`EMPTY_TREE_SHA256`]): ralph's git reads attributes from it, so no filter, textconv or
    /// diff driver set up through `.gitattributes` runs in ralph's own git commands.
    pub empty_tree: &'static str,
}

/// The empty tree of a SHA-1 repository.
pub const EMPTY_TREE_SHA1: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
/// The empty tree of a SHA-256 repository.
pub const EMPTY_TREE_SHA256: &str =
    "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321";

/// A commit a ref points at, with what `ralph checkpoints` shows about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefCommit {
    pub refname: String,
    pub commit: String,
    pub tree: String,
    /// Committer date, seconds since the Unix epoch.
    pub time: i64,
    /// First line of the commit message.
    pub subject: String,
}

/// What changed between two trees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffStat {
    /// Files added, modified, deleted or renamed (a rename counts once).
    pub files_changed: u32,
    /// Lines added; binary files contribute 0.
    pub insertions: u64,
    /// Lines removed; binary files contribute 0.
    pub deletions: u64,
    /// One path per changed file, in git's order; renamed files appear under their new name.
    pub paths: Vec<String>,
}

impl DiffStat {
    pub fn is_empty(&self) -> bool {
        self.files_changed == 0
    }
}

/// The installed git's version, e.g. `2.47.3` (cached after the first successful call).
pub fn git_version() -> Result<String, GitError> {
    static VERSION: OnceLock<String> = OnceLock::new();
    if let Some(version) = VERSION.get() {
        return Ok(version.clone());
    }
    const ARGS: &[&str] = &["version"];
    // `git version` needs no repository; running it from the temp dir keeps a broken
    // repository in the current directory from getting in the way.
    let stdout = command::run(&std::env::temp_dir(), None, &Invocation::new(ARGS))?;
    let text = String::from_utf8_lossy(&stdout);
    let version = parse::version(&text).ok_or_else(|| unexpected(ARGS, &stdout))?;
    Ok(VERSION.get_or_init(|| version).clone())
}

fn ensure_supported() -> Result<(), GitError> {
    let found = git_version()?;
    match parse::major_minor(&found) {
        Some(v) if v >= MIN_GIT => Ok(()),
        _ => Err(GitError::TooOld {
            found,
            required: MIN_GIT_VERSION.to_owned(),
        }),
    }
}

impl Git {
    /// `Ok(None)` when `dir` is not inside a git working tree (including bare repositories
    /// and the inside of a `.git` directory).
    pub fn discover(dir: &Path) -> Result<Option<Git>, GitError> {
        // Canonical so that a relative `--git-path` answer (`../../.git/index`) can be joined
        // and normalised lexically: git computes it from the physical directory.
        let dir = std::fs::canonicalize(dir).map_err(|source| GitError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        if !dir.is_dir() {
            return Err(GitError::Dir {
                path: dir,
                source: std::io::ErrorKind::NotADirectory.into(),
            });
        }
        // Without a `.git` anywhere above, git would only confirm there is no repository: skip
        // the two process starts (about 3 ms of ralph's start-up). Our environment never
        // carries GIT_DIR, so this mirrors git's own discovery.
        if !dir.ancestors().any(|d| d.join(".git").exists()) {
            return Ok(None);
        }
        ensure_supported()?;
        // One process answers all the questions, in argument order. `--show-object-format`
        // exists since git 2.29 (older ones echo it back); before that, SHA-1 is the only
        // format not marked experimental.
        const ARGS: &[&str] = &[
            "rev-parse",
            "--is-inside-work-tree",
            "--show-toplevel",
            "--git-path",
            "index",
            "--git-dir",
            "--git-common-dir",
            "--show-object-format",
        ];
        let knows_format = parse::major_minor(&git_version()?).is_some_and(|v| v >= (2, 29));
        let args = if knows_format {
            ARGS
        } else {
            &ARGS[..ARGS.len() - 1]
        };
        let out = command::run_raw(&dir, None, &Invocation::new(args))?;
        match parse::discover(&out.stdout) {
            // Bare repositories and `.git` directories print `false` and then fail on
            // `--show-toplevel`; the `false` is the answer.
            Some(parse::RevParse::NotWorkTree) => Ok(None),
            Some(parse::RevParse::WorkTree {
                toplevel,
                index,
                git_dir,
                common_dir,
                format,
            }) if out.success() => {
                // Git prints some of these relative to `dir`, some absolute.
                let resolve = |raw: &[u8]| {
                    let path = command::bytes_to_path(raw);
                    if path.is_absolute() {
                        path
                    } else {
                        normalize(&dir.join(path))
                    }
                };
                Ok(Some(Git {
                    root: command::bytes_to_path(toplevel),
                    index_path: resolve(index),
                    git_dir: resolve(git_dir),
                    common_dir: resolve(common_dir),
                    empty_tree: match format {
                        Some(b"sha256") => EMPTY_TREE_SHA256,
                        _ => EMPTY_TREE_SHA1,
                    },
                }))
            }
            _ if !out.success() => {
                // LC_ALL=C makes this text stable. Other failures (e.g. "detected dubious
                // ownership") are real problems the user must see, not "no repository".
                if String::from_utf8_lossy(&out.stderr).contains("not a git repository") {
                    Ok(None)
                } else {
                    Err(command::failed(args, &out))
                }
            }
            _ => Err(unexpected(args, &out.stdout)),
        }
    }

    /// Lines and files changed from one tree (or commit) to another. Equal ids short-circuit
    /// without running git: the common "agent did nothing" case costs nothing.
    pub fn diff_stat(&self, from_tree: &str, to_tree: &str) -> Result<DiffStat, GitError> {
        if from_tree == to_tree {
            return Ok(DiffStat::default());
        }
        check_revision(from_tree)?;
        check_revision(to_tree)?;
        // -M: a moved file is one change, as in `git diff --stat`; plumbing does not read
        // `diff.renames`, so it has to be asked for.
        let args = &[
            "diff-tree",
            "-r",
            "--numstat",
            "-z",
            "-M",
            from_tree,
            to_tree,
        ];
        let stdout = self.run(&Invocation::new(args))?;
        parse::numstat(&stdout).ok_or_else(|| unexpected(args, &stdout))
    }

    /// `(refname, commit)` for every ref under `prefix` (a path prefix such as
    /// `refs/ralph/checkpoints/<run>`; empty for all refs), sorted by refname.
    pub fn list_refs(&self, prefix: &str) -> Result<Vec<(String, String)>, GitError> {
        if prefix.starts_with('-') {
            return Err(GitError::InvalidRevision(prefix.to_owned()));
        }
        let format = "--format=%(refname)%00%(objectname)";
        let mut args = vec!["for-each-ref", format];
        if !prefix.is_empty() {
            args.push(prefix);
        }
        let stdout = self.run(&Invocation::new(&args))?;
        stdout
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                let text = std::str::from_utf8(line).ok();
                text.and_then(|t| t.split_once('\0'))
                    .map(|(name, oid)| (name.to_owned(), oid.to_owned()))
                    .ok_or_else(|| unexpected(&args, line))
            })
            .collect()
    }

    /// Every commit-valued ref under `prefix` (as [`Git::list_refs`]) with its tree, committer
    /// date and subject, sorted by refname. Refs pointing at other objects are left out.
    pub fn list_commits(&self, prefix: &str) -> Result<Vec<RefCommit>, GitError> {
        if prefix.starts_with('-') {
            return Err(GitError::InvalidRevision(prefix.to_owned()));
        }
        let format = "--format=%(objecttype)%00%(refname)%00%(objectname)%00%(tree)%00\
%(committerdate:unix)%00%(contents:subject)";
        let mut args = vec!["for-each-ref", format];
        if !prefix.is_empty() {
            args.push(prefix);
        }
        let stdout = self.run(&Invocation::new(&args))?;
        parse::ref_commits(&stdout).ok_or_else(|| unexpected(&args, &stdout))
    }

    /// `(commit, full message)` for each of `commits` (ids), in one `git log --no-walk` per
    /// 256 commits.
    pub fn commit_messages(&self, commits: &[&str]) -> Result<Vec<(String, String)>, GitError> {
        let mut out = Vec::with_capacity(commits.len());
        for chunk in commits.chunks(256) {
            for c in chunk {
                check_revision(c)?;
            }
            // A signature check would print between the commits.
            let mut args = vec!["log", "--no-walk=unsorted", "--format=%H%x00%B%x1e"];
            args.extend_from_slice(chunk);
            args.push("--");
            let stdout = self.run(&Invocation {
                args: &args,
                config: &["log.showSignature=false"],
                env: &[],
            })?;
            let text = String::from_utf8_lossy(&stdout);
            for entry in text.split('\x1e') {
                if let Some((commit, message)) = entry.trim_start().split_once('\0') {
                    out.push((commit.to_owned(), message.to_owned()));
                }
            }
        }
        Ok(out)
    }

    /// Removes a ref ralph created (e.g. pruning old checkpoints). Removing a ref that does not
    /// exist is not an error.
    pub fn delete_ref(&self, refname: &str) -> Result<(), GitError> {
        check_ralph_ref(refname)?;
        self.run(&Invocation::new(&["update-ref", "-d", refname]))?;
        Ok(())
    }

    /// The commit HEAD points at; `None` in an unborn repository.
    pub fn head(&self) -> Result<Option<String>, GitError> {
        let args = &["rev-parse", "--verify", "-q", "HEAD^{commit}"];
        let out = self.run_raw(&Invocation::new(args))?;
        if out.success() {
            return parse::object_id(&out.stdout)
                .map(Some)
                .ok_or_else(|| unexpected(args, &out.stdout));
        }
        // `--verify -q` exits 1 silently for "no such revision"; anything else is a failure.
        if out.code == Some(1) && out.stdout.is_empty() {
            Ok(None)
        } else {
            Err(command::failed(args, &out))
        }
    }

    /// Every git command ralph runs in the repository goes through these three, with the
    /// repository's empty tree as attribute source (see `command::HARDENING`).
    fn run(&self, inv: &Invocation<'_>) -> Result<Vec<u8>, GitError> {
        command::run(&self.root, Some(self.empty_tree), inv)
    }

    fn run_raw(&self, inv: &Invocation<'_>) -> Result<Output, GitError> {
        command::run_raw(&self.root, Some(self.empty_tree), inv)
    }

    fn run_with_input(&self, inv: &Invocation<'_>, input: Vec<u8>) -> Result<Vec<u8>, GitError> {
        command::run_with_input(&self.root, Some(self.empty_tree), inv, input)
    }
}

/// A path as a person should see it on one line: as is when it is plain, else in double quotes
/// with C escapes (`"tracked\nname.txt"`), as git itself quotes names. A newline or tab inside
/// a file name would otherwise split or hide it in a listing.
pub fn display_path(path: &str) -> std::borrow::Cow<'_, str> {
    if !path
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return std::borrow::Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len() + 2);
    out.push('"');
    for c in path.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    std::borrow::Cow::Owned(out)
}

fn check_ralph_ref(refname: &str) -> Result<(), GitError> {
    match refname.strip_prefix(refs::NAMESPACE) {
        Some(rest) if !rest.is_empty() => Ok(()),
        _ => Err(GitError::InvalidRef(refname.to_owned())),
    }
}

/// Ids are passed as arguments; one starting with `-` would be read as an option.
fn check_revision(rev: &str) -> Result<(), GitError> {
    if rev.is_empty() || rev.starts_with('-') {
        Err(GitError::InvalidRevision(rev.to_owned()))
    } else {
        Ok(())
    }
}

fn unexpected(args: &[&str], output: &[u8]) -> GitError {
    GitError::Unexpected {
        args: command::display_args(args),
        output: command::bounded(&String::from_utf8_lossy(output), 200),
    }
}

/// Lexical `.`/`..` removal; only valid on a path without symlinks (see `discover`).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ralph_refs_only() {
        assert!(check_ralph_ref("refs/ralph/checkpoints/r1/3").is_ok());
        for bad in ["refs/heads/main", "HEAD", "refs/ralph/", "refs/stash", ""] {
            assert!(
                matches!(check_ralph_ref(bad), Err(GitError::InvalidRef(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn odd_paths_are_quoted_for_display() {
        assert_eq!(display_path("src/lib.rs"), "src/lib.rs");
        assert_eq!(display_path("a\nb.txt"), "\"a\\nb.txt\"");
        assert_eq!(display_path("say \"hi\"\tnow"), "\"say \\\"hi\\\"\\tnow\"");
        assert_eq!(display_path("bell\u{7}"), "\"bell\\x07\"");
    }

    #[test]
    fn revisions_cannot_be_options() {
        assert!(check_revision("abc123").is_ok());
        assert!(check_revision("--output=/etc/x").is_err());
        assert!(check_revision("").is_err());
    }

    #[test]
    fn normalizes_relative_git_paths() {
        assert_eq!(
            normalize(Path::new("/r/sub/deep/../../.git/index")),
            Path::new("/r/.git/index")
        );
        assert_eq!(
            normalize(Path::new("/r/./.git/index")),
            Path::new("/r/.git/index")
        );
    }

    #[test]
    fn equal_trees_need_no_git() {
        let git = Git {
            root: PathBuf::from("/nonexistent"),
            index_path: PathBuf::from("/nonexistent/.git/index"),
            git_dir: PathBuf::from("/nonexistent/.git"),
            common_dir: PathBuf::from("/nonexistent/.git"),
            empty_tree: EMPTY_TREE_SHA1,
        };
        assert_eq!(git.diff_stat("x", "x").unwrap(), DiffStat::default());
    }

    #[test]
    fn error_messages_are_fragments() {
        let err = GitError::Failed {
            args: "write-tree".into(),
            code: 128,
            stderr: "fatal: boom".into(),
        };
        assert_eq!(
            err.to_string(),
            "git write-tree failed (exit 128): fatal: boom"
        );
        assert_eq!(
            GitError::InvalidRef("refs/heads/main".into()).to_string(),
            "failed to use \"refs/heads/main\" as a ralph ref: ralph only writes refs under refs/ralph/"
        );
    }
}
