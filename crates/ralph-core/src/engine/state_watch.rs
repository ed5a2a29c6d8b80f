//! What changed in `.ralph/` while the agent ran, told by the kernel (inotify), so the check
//! costs the same at iteration 1,000 as at iteration 1: no listing of every earlier iteration's
//! artifacts. One watch per directory of `.ralph/` (up to [`MAX_WATCHES`], newest runs first);
//! the window opens when the agent is about to start ([`Watch::open_window`] drops what ralph
//! itself did before) and closes after the gates ([`Watch::close_window`]).
//!
//! Where inotify is not available, `state_guard.rs` compares two listings instead.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Directories watched at most; beyond, the oldest runs' artifacts go unwatched.
const MAX_WATCHES: usize = 4096;

const MASK: u32 = libc::IN_MODIFY
    | libc::IN_ATTRIB
    | libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF
    | libc::IN_DONT_FOLLOW
    | libc::IN_ONLYDIR
    | libc::IN_EXCL_UNLINK;

/// What happened to one path during the window, net.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    Added,
    Deleted,
    Modified,
}

pub(super) struct Watch {
    fd: OwnedFd,
    root: PathBuf,
    /// Watch descriptor → directory, relative to the root ("" for the root).
    dirs: HashMap<i32, PathBuf>,
    /// The same directories, to look up.
    watched: HashSet<PathBuf>,
}

/// The window's net changes, or `None` when the kernel's queue overflowed (too many to know).
pub(super) type Changes = Option<BTreeMap<PathBuf, Change>>;

impl Watch {
    /// Watch `root` and its directories but those `skip` says (relative paths).
    pub fn start(root: &Path, skip: &dyn Fn(&Path) -> bool) -> Option<Watch> {
        // SAFETY: inotify_init1 takes flags only and returns a new descriptor or -1.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        // SAFETY: the descriptor was just created and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut w = Watch {
            fd,
            root: root.to_path_buf(),
            dirs: HashMap::new(),
            watched: HashSet::new(),
        };
        w.add(Path::new(""))?;
        w.add_tree(Path::new(""), skip);
        Some(w)
    }

    /// Watch `rel` (a directory) if it is not watched yet; `None` if the kernel refused.
    pub fn add(&mut self, rel: &Path) -> Option<()> {
        if self.watched.contains(rel) {
            return Some(());
        }
        if self.dirs.len() >= MAX_WATCHES {
            return None;
        }
        let path = CString::new(self.root.join(rel).as_os_str().as_bytes()).ok()?;
        // SAFETY: a NUL-terminated path we own and a mask of flags.
        let wd = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), path.as_ptr(), MASK) };
        if wd < 0 {
            return None;
        }
        // The kernel gives an existing watch's descriptor again for the same directory.
        if let Some(old) = self.dirs.insert(wd, rel.to_path_buf()) {
            self.watched.remove(&old);
        }
        self.watched.insert(rel.to_path_buf());
        Some(())
    }

    /// Watch every directory below `rel`, newest first (directory names sort by time: run ids
    /// and iteration numbers), until [`MAX_WATCHES`].
    pub fn add_tree(&mut self, rel: &Path, skip: &dyn Fn(&Path) -> bool) {
        let Ok(entries) = std::fs::read_dir(self.root.join(rel)) else {
            return;
        };
        let mut subdirs: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| rel.join(e.file_name()))
            .filter(|r| !skip(r))
            .collect();
        subdirs.sort_unstable_by(|a, b| b.cmp(a));
        for d in subdirs {
            if self.add(&d).is_none() {
                return;
            }
            self.add_tree(&d, skip);
        }
    }

    /// Forget what happened so far (ralph's own writes between iterations).
    pub fn open_window(&mut self) {
        let _ = self.read();
    }

    /// What happened since [`Watch::open_window`], net per path.
    pub fn close_window(&mut self) -> Changes {
        let events = self.read()?;
        let mut first: BTreeMap<PathBuf, Change> = BTreeMap::new();
        for (rel, mask) in events
            .into_iter()
            .filter(|(r, _)| !r.as_os_str().is_empty())
        {
            let change = if mask & (libc::IN_CREATE | libc::IN_MOVED_TO) != 0 {
                Change::Added
            } else if mask & (libc::IN_DELETE | libc::IN_MOVED_FROM) != 0 {
                Change::Deleted
            } else {
                Change::Modified
            };
            first.entry(rel).or_insert(change);
        }
        // Net effect: what was added and is gone again did not happen; what existed and is
        // gone was deleted; what existed and is still there (or back) was modified.
        let mut net = BTreeMap::new();
        for (rel, first) in first {
            let exists = std::fs::symlink_metadata(self.root.join(&rel)).is_ok();
            let change = match (first, exists) {
                (Change::Added, true) => Change::Added,
                (Change::Added, false) => continue,
                (_, false) => Change::Deleted,
                (_, true) => Change::Modified,
            };
            net.insert(rel, change);
        }
        Some(net)
    }

    /// Directories (relative to the root) something happened in since the last call, with
    /// every directory created or removed there; `None` on a queue overflow (anything may have
    /// changed).
    pub fn changed_dirs(&mut self) -> Option<HashSet<PathBuf>> {
        let mut dirs = HashSet::new();
        for (rel, mask) in self.read()? {
            dirs.insert(rel.parent().map(Path::to_path_buf).unwrap_or_default());
            if mask & libc::IN_ISDIR != 0 {
                dirs.insert(rel);
            }
        }
        Some(dirs)
    }

    /// Every directory with a live watch (relative to the root).
    pub fn watched_dirs(&self) -> impl Iterator<Item = &PathBuf> {
        self.dirs.values()
    }

    /// Every queued event as (path relative to the root, mask); `None` on a queue overflow.
    fn read(&mut self) -> Option<Vec<(PathBuf, u32)>> {
        let mut out = Vec::new();
        let mut overflow = false;
        let mut buf = [0u8; 16 * 1024];
        loop {
            // SAFETY: read into a buffer we own, of its length.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            let Ok(n) = usize::try_from(n) else {
                break; // EAGAIN: the queue is empty
            };
            if n == 0 {
                break;
            }
            let mut off = 0;
            let header = std::mem::size_of::<libc::inotify_event>();
            while off + header <= n {
                // SAFETY: the kernel wrote a whole event header at `off`; read it unaligned.
                let ev: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf.as_ptr().add(off).cast()) };
                let name_len = ev.len as usize;
                let name_bytes = &buf[off + header..(off + header + name_len).min(n)];
                let name = name_bytes.split(|&b| b == 0).next().unwrap_or(&[]);
                off += header + name_len;
                if ev.mask & libc::IN_Q_OVERFLOW != 0 {
                    overflow = true;
                    continue;
                }
                if ev.mask & libc::IN_IGNORED != 0 {
                    if let Some(gone) = self.dirs.remove(&ev.wd) {
                        self.watched.remove(&gone);
                    }
                    continue;
                }
                let Some(dir) = self.dirs.get(&ev.wd) else {
                    continue;
                };
                let rel = if name.is_empty() {
                    dir.clone()
                } else {
                    dir.join(OsStr::from_bytes(name))
                };
                out.push((rel, ev.mask));
            }
        }
        (!overflow).then_some(out)
    }
}
