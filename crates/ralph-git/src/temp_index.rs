//! The private index a checkpoint is built in, so the user's real index is only ever read.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::GitError;

/// Sub-directory of the caller's scratch directory holding temporary index files.
const SUBDIR: &str = "git-index";

/// A copy of the real index in the scratch directory, removed on drop (also when a git step
/// fails or the caller unwinds).
pub(crate) struct TempIndex {
    path: PathBuf,
}

impl TempIndex {
    /// A path for a new, empty index (the file itself is created by the git that writes it).
    pub fn empty(scratch_dir: &Path) -> Result<TempIndex, GitError> {
        let dir = scratch_dir.join(SUBDIR);
        fs::create_dir_all(&dir)?;
        // If the scratch directory sits inside the work tree and is not ignored, `git add -A`
        // would capture the temporary index (and its lock file) in the checkpoint. A
        // self-ignoring directory makes that impossible whatever the caller's layout, the same
        // trick ralph uses for `.ralph/`.
        let ignore = dir.join(".gitignore");
        if !ignore.exists() {
            fs::write(&ignore, "*\n")?;
        }
        Ok(TempIndex {
            path: dir.join(unique_name()),
        })
    }

    /// A copy of `real_index` (or an empty index where the repository has none yet).
    pub fn create(real_index: &Path, scratch_dir: &Path) -> Result<TempIndex, GitError> {
        let guard = TempIndex::empty(scratch_dir)?;
        match File::open(real_index) {
            Ok(mut src) => {
                // Copy from the open handle and take the mtime from the same handle: if the
                // user's git replaces the index meanwhile we still get one consistent file.
                let mtime = src.metadata()?.modified()?;
                let mut dst = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&guard.path)?;
                std::io::copy(&mut src, &mut dst)?;
                // Git's racy-clean check compares each entry's mtime with the index file's own
                // mtime. A fresh copy would look newer than it is, so an entry modified in the
                // same second the real index was written would be trusted as clean and its new
                // content silently left out of the checkpoint. Keeping the original mtime keeps
                // git's check exactly as strict as on the real index.
                dst.set_modified(mtime)?;
            }
            // An unborn repository may have no index yet; git treats a missing index file as
            // empty, so the path alone is enough.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err.into()),
        }
        Ok(guard)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Puts this index in place of `real_index`, atomically (a copy next to it, renamed over
    /// it): readers see the old index or the new one, never half of either.
    pub fn replace(&self, real_index: &Path) -> Result<(), GitError> {
        let mut next = real_index.as_os_str().to_owned();
        next.push(".ralph-next");
        let next = PathBuf::from(next);
        // The copy keeps the written index's mtime: git's racy-clean check compares entries
        // with it, and a later one would trust entries it should look at again.
        let copied = fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .and_then(|mtime| {
                fs::copy(&self.path, &next)?;
                File::options().write(true).open(&next)?.set_modified(mtime)
            })
            .and_then(|()| fs::rename(&next, real_index));
        if let Err(e) = copied {
            let _ = fs::remove_file(&next);
            return Err(e.into());
        }
        Ok(())
    }
}

impl Drop for TempIndex {
    fn drop(&mut self) {
        // Best effort: a leftover file in the scratch directory is harmless and ignored by git.
        let _ = fs::remove_file(&self.path);
        let mut lock = self.path.clone().into_os_string();
        lock.push(".lock");
        let _ = fs::remove_file(lock);
    }
}

/// Unique across threads (counter), processes (pid) and restarts of a crashed process that
/// got the same pid (time), so concurrent checkpoints never share an index or a lock file.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("index-{}-{n}-{nanos}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_content_and_mtime_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("index");
        fs::write(&real, b"DIRC fake").unwrap();
        let old = SystemTime::UNIX_EPOCH + std::time::Duration::new(1_600_000_000, 123_456_789);
        File::options()
            .write(true)
            .open(&real)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let scratch = dir.path().join("scratch");
        let tmp = TempIndex::create(&real, &scratch).unwrap();
        let path = tmp.path().to_owned();
        assert_eq!(fs::read(&path).unwrap(), b"DIRC fake");
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), old);
        assert_eq!(
            fs::read_to_string(scratch.join(SUBDIR).join(".gitignore")).unwrap(),
            "*\n"
        );
        let mut lock = path.clone().into_os_string();
        lock.push(".lock");
        fs::write(&lock, b"").unwrap();
        drop(tmp);
        assert!(!path.exists());
        assert!(!Path::new(&lock).exists());
    }

    #[test]
    fn missing_real_index_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = TempIndex::create(&dir.path().join("absent"), dir.path()).unwrap();
        assert!(!tmp.path().exists());
    }

    #[test]
    fn names_are_unique() {
        assert_ne!(unique_name(), unique_name());
    }
}
