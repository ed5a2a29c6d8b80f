//! The user's index (what they staged) survives an agent that deletes or corrupts it
//! (`rm .git/index`, `truncate -s0 .git/index`, a symlink in its place). ralph keeps a copy of
//! the index as it was before the agent ran — read again only when the file changed since the
//! last copy, so an iteration that stages nothing costs one `stat` — and puts it back when the
//! index is gone or no longer an index after the iteration. An index the agent changed by
//! staging (`git add`, a commit, `git reset`) is the agent's work and stays.

use std::path::Path;

use ralph_store::tamper::FileSig;

/// An index larger than this is not copied (and so cannot be put back).
const MAX_COPY_BYTES: u64 = 64 << 20;

/// The copy, carried from one iteration to the next.
#[derive(Default)]
pub(super) struct IndexKeep {
    sig: Option<FileSig>,
    copy: Option<Vec<u8>>,
}

impl IndexKeep {
    /// Before the agent runs: refresh the copy if the index changed since it was taken.
    pub fn mark(&mut self, index: &Path) {
        let sig = FileSig::of(index);
        if sig == self.sig && (self.copy.is_some() || sig.is_none()) {
            return;
        }
        self.sig = sig;
        self.copy = match std::fs::symlink_metadata(index) {
            Ok(m) if m.file_type().is_file() && m.len() <= MAX_COPY_BYTES => {
                std::fs::read(index).ok().filter(|b| looks_like_index(b))
            }
            _ => None,
        };
    }

    /// After the iteration: `Some(what happened)` when the index was damaged, with whether it
    /// was put back.
    pub fn check(&mut self, index: &Path) -> Option<String> {
        let copy = self.copy.as_ref()?;
        // No git directory at all is the git checks' to tell.
        if !index.parent().is_some_and(Path::is_dir) {
            return None;
        }
        let what = match std::fs::symlink_metadata(index) {
            Err(_) => "deleted",
            Ok(m) if !m.file_type().is_file() => "replaced",
            Ok(_) => match std::fs::read(index) {
                Ok(bytes) if looks_like_index(&bytes) => return None,
                _ => "corrupted",
            },
        };
        let restored = restore(index, copy);
        self.sig = FileSig::of(index);
        Some(match restored {
            Ok(()) => format!("{what} .git/index (the staged changes; restored from ralph's copy)"),
            Err(e) => format!("{what} .git/index (the staged changes; restoring failed: {e})"),
        })
    }
}

/// A git index: the `DIRC` signature, a known version, and room for the header and checksum.
fn looks_like_index(bytes: &[u8]) -> bool {
    bytes.len() >= 12 + 20
        && bytes.starts_with(b"DIRC")
        && matches!(
            u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            2..=4
        )
}

/// Write the copy back through a temporary file and a rename, which replaces a symlink itself,
/// never what it points at.
fn restore(index: &Path, copy: &[u8]) -> std::io::Result<()> {
    let tmp = index.with_extension("ralph-restore");
    if let Ok(m) = std::fs::symlink_metadata(index) {
        if m.file_type().is_dir() {
            std::fs::remove_dir_all(index)?;
        }
    }
    std::fs::write(&tmp, copy)?;
    std::fs::rename(&tmp, index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_bytes() -> Vec<u8> {
        let mut b = b"DIRC\0\0\0\x02\0\0\0\0".to_vec();
        b.extend([7u8; 20]);
        b
    }

    #[test]
    fn a_deleted_or_corrupted_index_is_put_back_and_staging_is_not() {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let index = t.path().join("index");
        let original = index_bytes();
        std::fs::write(&index, &original).unwrap_or_else(|e| panic!("{e}"));
        let mut keep = IndexKeep::default();
        keep.mark(&index);
        std::fs::remove_file(&index).unwrap_or_else(|e| panic!("{e}"));
        assert!(keep.check(&index).unwrap_or_default().contains("deleted"));
        assert_eq!(std::fs::read(&index).ok(), Some(original.clone()));

        keep.mark(&index);
        std::fs::write(&index, "").unwrap_or_else(|e| panic!("{e}"));
        assert!(keep.check(&index).unwrap_or_default().contains("corrupted"));
        assert_eq!(std::fs::read(&index).ok(), Some(original.clone()));

        // Staging changes the index, validly: the agent's work stays.
        keep.mark(&index);
        let mut staged = index_bytes();
        staged[8] = 1;
        std::fs::write(&index, &staged).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keep.check(&index), None);
        assert_eq!(std::fs::read(&index).ok(), Some(staged));
    }
}
