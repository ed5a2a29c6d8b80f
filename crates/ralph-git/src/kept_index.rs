//! The user's index as it was before an iteration, for when the refs are put back: after an
//! agent's `git reset --hard HEAD~1` the index matches the older commit, and once the branch is
//! back, `git status` would show the last commit undone as staged changes. Git always replaces
//! the index by renaming a new file over it, so a hard link keeps the old content at the cost
//! of one `link()` — no copy of a multi-megabyte file per iteration.

use std::fs;
use std::path::{Path, PathBuf};

use crate::Git;

/// A hard link to the index taken before an iteration; removed on drop.
#[derive(Debug)]
pub struct KeptIndex {
    link: PathBuf,
    index: PathBuf,
}

impl Git {
    /// Links the index into `scratch_dir` (its self-ignoring `git-index/`). `None` when there
    /// is no index yet or the link cannot be made (another file system): then the index is
    /// never restored.
    pub fn keep_index(&self, scratch_dir: &Path) -> Option<KeptIndex> {
        let dir = scratch_dir.join("git-index");
        fs::create_dir_all(&dir).ok()?;
        let ignore = dir.join(".gitignore");
        if !ignore.exists() {
            fs::write(&ignore, "*\n").ok()?;
        }
        let link = dir.join(format!("kept-{}", std::process::id()));
        let _ = fs::remove_file(&link);
        fs::hard_link(&self.index_path, &link).ok()?;
        Some(KeptIndex {
            link,
            index: self.index_path.clone(),
        })
    }
}

impl KeptIndex {
    /// Puts the kept index back unless the index is still the same file. `Ok(false)`: nothing
    /// to do. Written beside the index and renamed over it, as git does, so a reader sees the
    /// old or the new index, never half of one.
    pub fn restore(&self) -> std::io::Result<bool> {
        if same_file(&self.link, &self.index) {
            return Ok(false);
        }
        let mut tmp = self.index.clone().into_os_string();
        tmp.push(".ralph-restore");
        let tmp = PathBuf::from(tmp);
        fs::copy(&self.link, &tmp)?;
        if let Err(e) = fs::rename(&tmp, &self.index) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(true)
    }
}

impl Drop for KeptIndex {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.link);
    }
}

#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::symlink_metadata(b)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &Path, _: &Path) -> bool {
    false
}
