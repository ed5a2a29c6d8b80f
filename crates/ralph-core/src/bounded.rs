//! Bounded reads of the user's files (`ralph.toml`, the prompt file): a size limit, and only
//! regular files. A symlink to `/dev/zero` would otherwise grow ralph's memory without end, and
//! a FIFO would block it forever.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Largest `ralph.toml` ralph reads: 1 MiB (a real one is a few KiB).
pub const CONFIG_MAX_BYTES: u64 = 1024 * 1024;

/// Largest prompt file ralph reads: 10 MiB (it is sent to the agent every iteration).
pub const PROMPT_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// Reads the regular file at `path` (symlinks followed), refusing anything else and files of
/// more than `limit` bytes; the error's message says which (kind `InvalidInput`).
pub fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    // Non-blocking open: opening a FIFO must not wait for a writer.
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let ft = file.metadata()?.file_type();
    let what = if ft.is_file() {
        None
    } else if ft.is_dir() {
        Some("a directory")
    } else if ft.is_fifo() {
        Some("a named pipe (FIFO)")
    } else if ft.is_char_device() {
        Some("a character device")
    } else if ft.is_block_device() {
        Some("a block device")
    } else if ft.is_socket() {
        Some("a socket")
    } else {
        Some("not a file")
    };
    if let Some(what) = what {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {what}, not a regular file"),
        ));
    }
    let mut bytes = Vec::new();
    // One byte more than the limit tells "too large" from "exactly the limit"; the file may
    // grow after the stat, so the read itself is bounded.
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "it is larger than {} MiB, ralph's limit",
                limit / (1024 * 1024)
            ),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_file_types() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, vec![b'x'; 2 * 1024 * 1024]).unwrap();
        assert_eq!(
            read_bounded(&f, 2 * 1024 * 1024).unwrap().len(),
            2 * 1024 * 1024
        );
        let e = read_bounded(&f, 1024 * 1024).unwrap_err();
        assert!(e.to_string().contains("larger than 1 MiB"), "{e}");
        let e = read_bounded(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let e = read_bounded(dir.path(), 1024).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
    }
}
