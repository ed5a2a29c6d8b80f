//! The parts of a repository's git directory an agent must not change behind the user's back:
//! the shared `config` (remotes, `core.hooksPath`, credential helpers, aliases), the worktree's
//! own `config.worktree`, `info/attributes` and `info/exclude`, and the hooks. [`RepoMeta`] remembers them before an iteration;
//! after it, [`RepoMeta::changed`] says what the agent changed and [`RepoMeta::restore`] puts
//! it back.
//!
//! The locations come from git ([`Git::git_dir`], [`Git::common_dir`]), not from `<root>/.git`,
//! so this works in linked worktrees too, where `.git` is a file and config and hooks live in
//! the main repository's git directory.
//!
//! Restoring never writes through a symlink: a file or directory the agent replaced with a
//! symlink (possibly pointing outside the repository) is removed and the captured content
//! written in its place; what the symlink pointed at is left alone.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Git;

/// The hooks git runs (githooks(5)) that a checkout, commit, merge, rebase or push by the user
/// would trigger.
pub const HOOK_NAMES: &[&str] = &[
    "applypatch-msg",
    "commit-msg",
    "post-checkout",
    "post-commit",
    "post-merge",
    "post-rewrite",
    "pre-applypatch",
    "pre-commit",
    "pre-merge-commit",
    "pre-push",
    "pre-rebase",
    "prepare-commit-msg",
    "reference-transaction",
];

/// What was at a path, without following a symlink there.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Absent,
    File {
        bytes: Vec<u8>,
        mode: u32,
    },
    Symlink(PathBuf),
    Dir,
    /// A socket, a device, or a file that could not be read: never compared, never restored.
    Other,
}

impl Node {
    fn read(path: &Path) -> Node {
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Node::Absent,
            Err(_) => return Node::Other,
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            return fs::read_link(path).map_or(Node::Other, Node::Symlink);
        }
        if kind.is_dir() {
            return Node::Dir;
        }
        if !kind.is_file() {
            return Node::Other;
        }
        match fs::read(path) {
            Ok(bytes) => Node::File {
                bytes,
                mode: mode(&meta),
            },
            Err(_) => Node::Other,
        }
    }
}

#[cfg(unix)]
fn mode(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode(_: &fs::Metadata) -> u32 {
    0
}

/// A snapshot of a repository's config and hooks (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoMeta {
    /// The worktree's top level, to show paths inside it relative to it.
    root: PathBuf,
    /// `config` and `config.worktree`.
    configs: Vec<(PathBuf, Node)>,
    hooks_dir: PathBuf,
    hooks_dir_node: Node,
    /// Each of [`HOOK_NAMES`] in `hooks_dir`; empty unless `hooks_dir` was a real directory
    /// or absent (hooks behind a symlinked directory live outside the repository: only the
    /// symlink itself is watched).
    hooks: Vec<(PathBuf, Node)>,
}

impl RepoMeta {
    /// Reads the common dir's `config`, the worktree's `config.worktree` (absent is recorded
    /// too, so a new one is noticed) and the hooks directory's hooks.
    pub fn capture(git: &Git) -> RepoMeta {
        // `info/attributes` can name a filter driver and `info/exclude` hide files from
        // checkpoints: both are put back before ralph's next git command.
        let configs = [
            git.common_dir.join("config"),
            git.git_dir.join("config.worktree"),
            git.common_dir.join("info/attributes"),
            git.common_dir.join("info/exclude"),
        ]
        .into_iter()
        .map(|p| {
            let node = Node::read(&p);
            (p, node)
        })
        .collect();
        // Hooks are shared by every worktree; `core.hooksPath` moving them elsewhere is a
        // change of `config`, which is watched.
        let hooks_dir = git.common_dir.join("hooks");
        let hooks_dir_node = Node::read(&hooks_dir);
        let hooks = match hooks_dir_node {
            Node::Dir | Node::Absent => HOOK_NAMES
                .iter()
                .map(|name| {
                    let p = hooks_dir.join(name);
                    let node = Node::read(&p);
                    (p, node)
                })
                .collect(),
            _ => Vec::new(),
        };
        RepoMeta {
            root: git.root.clone(),
            configs,
            hooks_dir,
            hooks_dir_node,
            hooks,
        }
    }

    /// The paths that differ from the capture (relative to the worktree's top level when
    /// inside it, e.g. `.git/config`; absolute otherwise, as in a linked worktree).
    pub fn changed(&self) -> Vec<String> {
        let mut out = Vec::new();
        let differs = |(path, before): &(PathBuf, Node)| {
            *before != Node::Other && Node::read(path) != *before
        };
        for entry in &self.configs {
            if differs(entry) {
                out.push(self.show(&entry.0));
            }
        }
        let dir_now = Node::read(&self.hooks_dir);
        let dir_changed = match &self.hooks_dir_node {
            // Absent then created: only the hooks in it matter.
            Node::Absent => !matches!(dir_now, Node::Absent | Node::Dir),
            Node::Other => false,
            before => dir_now != *before,
        };
        if dir_changed {
            out.push(self.show(&self.hooks_dir));
        } else {
            for entry in &self.hooks {
                if differs(entry) {
                    out.push(self.show(&entry.0));
                }
            }
        }
        out
    }

    /// Puts every captured path back as it was: files rewritten (content and mode), files
    /// that did not exist deleted, symlinks put back; a symlink or directory found where a
    /// file was is removed first, never written through.
    pub fn restore(&self) -> std::io::Result<()> {
        for (path, before) in &self.configs {
            restore_node(path, before)?;
        }
        match &self.hooks_dir_node {
            Node::Dir => {
                if Node::read(&self.hooks_dir) != Node::Dir {
                    remove_any(&self.hooks_dir)?;
                    fs::create_dir(&self.hooks_dir)?;
                }
            }
            Node::Absent => {
                if !matches!(Node::read(&self.hooks_dir), Node::Absent | Node::Dir) {
                    remove_any(&self.hooks_dir)?;
                }
            }
            Node::Symlink(_) => return restore_node(&self.hooks_dir, &self.hooks_dir_node),
            _ => return Ok(()),
        }
        for (path, before) in &self.hooks {
            restore_node(path, before)?;
        }
        if self.hooks_dir_node == Node::Absent {
            // Emptied by removing the hooks the agent added; anything else in it stays.
            let _ = fs::remove_dir(&self.hooks_dir);
        }
        Ok(())
    }

    fn show(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// Makes `path` what `before` says, unless it already is.
fn restore_node(path: &Path, before: &Node) -> std::io::Result<()> {
    if *before == Node::Other {
        return Ok(());
    }
    let now = Node::read(path);
    if now == *before {
        return Ok(());
    }
    match before {
        // Never through a symlinked parent: that would delete a file outside the repository.
        Node::Absent => match path.parent() {
            Some(dir) if fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) => {
                fs::remove_file(dir)
            }
            _ => remove_any(path),
        },
        Node::File { bytes, mode } => {
            real_parent(path)?;
            write_file(path, bytes, *mode)
        }
        Node::Symlink(target) => {
            real_parent(path)?;
            remove_any(path)?;
            symlink(target, path)
        }
        Node::Dir => {
            remove_any(path)?;
            fs::create_dir(path)
        }
        Node::Other => Ok(()),
    }
}

/// Makes `path`'s parent (e.g. `.git/info`) a real directory: one the agent replaced with a
/// symlink is removed (what it pointed at stays) and created again, so the file written next
/// lands inside the repository.
fn real_parent(path: &Path) -> std::io::Result<()> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_dir() => Ok(()),
        Ok(_) => {
            remove_any(dir)?;
            fs::create_dir(dir)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::create_dir(dir),
        Err(e) => Err(e),
    }
}

/// Removes whatever is at `path` without following it: a symlink is unlinked (its target
/// stays), a directory removed with its content (std's `remove_dir_all` does not follow
/// symlinks inside it either).
pub(crate) fn remove_any(path: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(meta) if meta.file_type().is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
    }
}

/// Writes a sibling temporary file and renames it over `path`: a rename replaces a symlink
/// itself, never its target, and readers (the user's git) see the old or the new file, never
/// half of one.
pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let Some(dir) = path.parent() else {
        return Err(std::io::ErrorKind::InvalidInput.into());
    };
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".ralph-restore");
    let tmp = dir.join(name);
    remove_any(&tmp)?;
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        set_mode(&file, mode)?;
        file.sync_all()?;
        if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_dir()) {
            fs::remove_dir_all(path)?;
        }
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

#[cfg(unix)]
fn set_mode(file: &fs::File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &fs::File, _: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn symlink(target: &Path, path: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, path)
}

#[cfg(not(unix))]
fn symlink(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}
