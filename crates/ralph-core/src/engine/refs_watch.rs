//! The loose refs' directories (`.git/refs/**`) watched with inotify, so the ref snapshot of
//! every iteration (`git_integrity.rs`) reads only the directories something happened in:
//! with 1,000 loose refs and none changed, a snapshot makes no system call per ref. Without
//! inotify (or after the kernel's queue overflowed) every directory counts as changed, and the
//! snapshot falls back to one `lstat` per ref file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::state_watch::Watch;

#[derive(Default)]
pub(super) struct RefsWatch {
    tried: bool,
    watch: Option<Watch>,
    /// Directories changed since the last snapshot taken as a new baseline (`None`: the
    /// kernel's queue overflowed since, anything may have changed).
    dirty: Option<HashSet<PathBuf>>,
}

/// Which ref-name prefixes (`refs/heads`, …) did not change since the previous snapshot.
pub(super) struct Unchanged {
    /// `None`: nothing is vouched for.
    clean: Option<HashSet<PathBuf>>,
}

impl Unchanged {
    pub fn vouches(&self, prefix: &str) -> bool {
        let rel = Path::new(
            prefix
                .strip_prefix("refs")
                .unwrap_or(prefix)
                .trim_start_matches('/'),
        );
        self.clean.as_ref().is_some_and(|c| c.contains(rel))
    }
}

impl RefsWatch {
    /// Before a snapshot of the refs under `refs_dir` that reuses the last baseline snapshot:
    /// the directories it may take from it. `baseline`: this snapshot becomes the new baseline
    /// (what the next ones are compared with), so what changed is counted afresh after it.
    pub fn before_snapshot(&mut self, refs_dir: &Path, baseline: bool) -> Unchanged {
        if !self.tried {
            self.tried = true;
            self.watch = Watch::start(refs_dir, &|_| false);
            self.dirty = Some(HashSet::new());
            return Unchanged { clean: None };
        }
        let Some(w) = self.watch.as_mut() else {
            return Unchanged { clean: None };
        };
        let clean = match (w.changed_dirs(), self.dirty.take()) {
            (Some(new), Some(mut dirty)) => {
                dirty.extend(new);
                // Directories created since are watched before they are read, and count as
                // changed (each directory has its own watch: a subdirectory of a changed one may
                // be clean).
                let known: HashSet<PathBuf> = w.watched_dirs().cloned().collect();
                for d in dirty.clone() {
                    w.add_tree(&d, &|_| false);
                }
                dirty.extend(w.watched_dirs().filter(|d| !known.contains(*d)).cloned());
                let clean = w
                    .watched_dirs()
                    .filter(|d| !dirty.contains(*d))
                    .cloned()
                    .collect();
                self.dirty = Some(dirty);
                Some(clean)
            }
            // An overflow: nothing is vouched for until the next baseline.
            _ => None,
        };
        if baseline {
            self.dirty = Some(HashSet::new());
        }
        Unchanged { clean }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap_or(root)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(p, "0123456789012345678901234567890123456789\n")
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn only_directories_something_happened_in_are_read_again() {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let refs = t.path();
        write(refs, "heads/main");
        write(refs, "tags/v1");
        let mut w = RefsWatch::default();
        assert!(!w.before_snapshot(refs, true).vouches("refs/heads"));
        // Nothing happened: everything is vouched for.
        let u = w.before_snapshot(refs, true);
        assert!(u.vouches("refs/heads") && u.vouches("refs/tags") && u.vouches("refs"));
        // A write in heads, a new directory with a ref in it.
        write(refs, "heads/main");
        write(refs, "ralph/checkpoints/r1/0001");
        let u = w.before_snapshot(refs, false);
        assert!(!u.vouches("refs/heads"));
        assert!(u.vouches("refs/tags"));
        assert!(!u.vouches("refs/ralph") && !u.vouches("refs/ralph/checkpoints/r1"));
        // Not a baseline: the next snapshot still counts those changes.
        let u = w.before_snapshot(refs, true);
        assert!(!u.vouches("refs/heads") && !u.vouches("refs/ralph/checkpoints/r1"));
        // After the baseline, the new directory is watched like the rest.
        write(refs, "tags/v2");
        let u = w.before_snapshot(refs, true);
        assert!(u.vouches("refs/ralph/checkpoints/r1") && u.vouches("refs/heads"));
        assert!(!u.vouches("refs/tags"));
    }
}
