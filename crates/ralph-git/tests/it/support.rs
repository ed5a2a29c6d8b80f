//! Temporary repositories driven by the real `git`, isolated from the developer's own
//! configuration and from whatever `GIT_*` variables the test process runs with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ralph_git::Git;
use tempfile::TempDir;

pub struct Repo {
    /// Holds the repository (`root`), an empty HOME and the scratch directory; removed on drop.
    _dir: TempDir,
    pub root: PathBuf,
}

impl Repo {
    /// `git init` with one commit containing `files`.
    pub fn with_commit(files: &[(&str, &str)]) -> Repo {
        let repo = Repo::unborn();
        for (path, content) in files {
            repo.write(path, content);
        }
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", "initial"]);
        repo
    }

    pub fn unborn() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        // Canonical so paths compare equal to what git reports (e.g. /tmp vs /private/tmp).
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("repo");
        std::fs::create_dir_all(base.join("home")).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        let repo = Repo { _dir: dir, root };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    pub fn base(&self) -> PathBuf {
        self.root.parent().unwrap().to_owned()
    }

    pub fn scratch(&self) -> PathBuf {
        self.base().join("scratch")
    }

    pub fn discover(&self) -> Git {
        Git::discover(&self.root).unwrap().expect("a work tree")
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    pub fn git(&self, args: &[&str]) -> String {
        git_in(&self.root, &self.base().join("home"), args)
    }

    pub fn git_bytes(&self, args: &[&str]) -> Vec<u8> {
        git_bytes_in(&self.root, &self.base().join("home"), args)
    }

    /// Everything a user could observe about their repository.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            status: self
                .git(&[
                    "status",
                    "--porcelain=v2",
                    "--branch",
                    "--untracked-files=all",
                    "--ignored",
                ])
                .lines()
                // ralph's scratch space (see `files_under`).
                .filter(|line| !line.starts_with("! .ralph/tmp/"))
                .map(|line| format!("{line}\n"))
                .collect(),
            head: self.git(&["rev-parse", "--verify", "-q", "HEAD"]),
            branch: self.git(&["symbolic-ref", "-q", "HEAD"]),
            staged: self.git_bytes(&["diff", "--cached", "--binary"]),
            stash: self.git(&["stash", "list", "--format=%H %gs"]),
            user_refs: self.git(&[
                "for-each-ref",
                "--format=%(refname) %(objectname)",
                "refs/heads",
                "refs/tags",
                "refs/stash",
            ]),
            files: files_under(&self.root),
        }
    }

    /// path → content of every blob in `tree`.
    pub fn tree_files(&self, tree: &str) -> BTreeMap<String, Vec<u8>> {
        let listing = self.git_bytes(&["ls-tree", "-r", "-z", "--full-tree", tree]);
        listing
            .split(|&b| b == 0)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let entry = String::from_utf8(entry.to_vec()).unwrap();
                let (meta, path) = entry.split_once('\t').unwrap();
                let oid = meta.split(' ').nth(2).unwrap();
                (path.to_owned(), self.git_bytes(&["cat-file", "blob", oid]))
            })
            .collect()
    }

    /// Parent lines of a commit object.
    pub fn parents(&self, commit: &str) -> Vec<String> {
        self.git(&["cat-file", "-p", commit])
            .lines()
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.strip_prefix("parent ").map(str::to_owned))
            .collect()
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub status: String,
    pub head: String,
    pub branch: String,
    pub staged: Vec<u8>,
    pub stash: String,
    pub user_refs: String,
    pub files: BTreeMap<PathBuf, Vec<u8>>,
}

/// Working-tree files (not `.git`), with content.
pub fn files_under(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            // `.ralph/tmp` is ralph's scratch space (the checkpoint's temporary index lives
            // there), not user state.
            if entry.file_name() == ".git"
                || path.strip_prefix(root).unwrap() == Path::new(".ralph/tmp")
            {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                let content = std::fs::read(&path).unwrap();
                out.insert(path.strip_prefix(root).unwrap().to_owned(), content);
            }
        }
    }
    out
}

/// The user's real index: bytes and mtime, to prove a checkpoint never rewrote it.
pub fn index_fingerprint(git: &Git) -> Option<(Vec<u8>, std::time::SystemTime)> {
    let bytes = std::fs::read(&git.index_path).ok()?;
    let mtime = std::fs::metadata(&git.index_path)
        .unwrap()
        .modified()
        .unwrap();
    Some((bytes, mtime))
}

pub fn git_in(dir: &Path, home: &Path, args: &[&str]) -> String {
    String::from_utf8(git_bytes_in(dir, home, args)).unwrap()
}

/// Setup and inspection commands: independent of the developer's config (empty HOME, no
/// system config) and of any `GIT_*` the test process was started with, with an identity so
/// that setup commits work. `symbolic-ref -q` and `rev-parse --verify -q` may exit 1 with no
/// output; that is returned as an empty string.
pub fn git_bytes_in(dir: &Path, home: &Path, args: &[&str]) -> Vec<u8> {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("LC_ALL", "C")
        .env("GIT_AUTHOR_NAME", "Test User")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test User")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .stdin(Stdio::null());
    let out = cmd.args(args).output().unwrap();
    let quiet_miss = out.status.code() == Some(1)
        && out.stdout.is_empty()
        && matches!(args.first(), Some(&"symbolic-ref") | Some(&"rev-parse"));
    assert!(
        out.status.success() || quiet_miss,
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
