//! Reading the files git keeps refs in (`packed-refs`, loose ref files, `HEAD`, reflogs)
//! for [`crate::refsnap`], without a git process.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use crate::GitError;

/// A ref's value: an object id, or `ref: <target>` for a symbolic ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Oid(String),
    Symbolic(String),
    /// A loose ref file git cannot read (garbage, a symlink): git ignores the ref, so it is as
    /// good as deleted.
    Broken,
}

/// What HEAD was, read from its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Head {
    Branch(String),
    Detached(String),
    /// Empty, garbage or not a regular file: git no longer sees a repository.
    Broken,
    Absent,
}

/// Inode, size, modification and status-change times of a file. The status-change time
/// (`ctime`) cannot be set back from user space, so an equal stamp means the file was not
/// written since, whoever wrote it; a rename over it changes the inode. Without `lstat`
/// details (not Unix) no stamp is equal and every file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp(Option<[i64; 6]>);

impl Stamp {
    #[cfg(unix)]
    pub(crate) fn of(meta: &fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp(Some([
            meta.ino() as i64,
            meta.size() as i64,
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
        ]))
    }

    #[cfg(not(unix))]
    pub(crate) fn of(_: &fs::Metadata) -> Stamp {
        Stamp(None)
    }

    pub(crate) fn same(&self, other: &Stamp) -> bool {
        self.0.is_some() && self == other
    }
}

/// Field 2 of a reflog line: the commit the entry is about.
pub(crate) fn entry_commit(line: &[u8]) -> Option<&[u8]> {
    line.split(|&b| b == b' ').nth(1)
}

pub(crate) fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty())
}

/// `packed-refs`: `<oid> <refname>` lines, `#` header, `^<oid>` peeled lines.
pub(crate) fn parse_packed(bytes: &[u8]) -> BTreeMap<String, Value> {
    let mut refs = BTreeMap::new();
    for line in lines(bytes) {
        if line.starts_with(b"#") || line.starts_with(b"^") {
            continue;
        }
        let Ok(text) = std::str::from_utf8(line) else {
            continue;
        };
        if let Some((oid, name)) = text.split_once(' ') {
            if is_oid(oid) {
                refs.insert(name.to_owned(), Value::Oid(oid.to_owned()));
            }
        }
    }
    refs
}

/// A `packed-refs` git would refuse: a line that is neither a header, a peeled id nor
/// `<oid> refs/…`.
pub(crate) fn is_damaged_packed(bytes: &[u8]) -> bool {
    lines(bytes).any(|line| {
        if line.starts_with(b"#") {
            return false;
        }
        let Ok(text) = std::str::from_utf8(line) else {
            return true;
        };
        match text.strip_prefix('^') {
            Some(oid) => !is_oid(oid),
            None => !text
                .split_once(' ')
                .is_some_and(|(oid, name)| is_oid(oid) && name.starts_with("refs/")),
        }
    })
}

/// The loose ref files read from `refs/`, and every directory seen there: a directory with no
/// ref in it yet (just created, or holding only a lock file) must still be visited next time,
/// and a directory taken from the cache is known only through this list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Loose {
    /// Ref name → its file's stamp and value (`None`: vanished while being read).
    pub files: HashMap<String, (Stamp, Option<Value>)>,
    /// Directory ref-name prefix (`refs/heads`) → the names of its subdirectories.
    pub dirs: HashMap<String, Vec<String>>,
}

/// The loose ref files under `dir` (whose ref name is `prefix`) into `out`, with their value
/// (garbage and symlinks are [`Value::Broken`]; `None`: vanished while being read). Files
/// whose stamp equals the one in `cache` are not read. Symlinks are not followed; lock files
/// are skipped.
pub(crate) fn read_loose(
    dir: &Path,
    prefix: &str,
    cache: Option<&Loose>,
    unchanged: &dyn Fn(&str) -> bool,
    out: &mut Loose,
) -> Result<(), GitError> {
    // A directory the caller knows did not change (nothing added, removed or written in it
    // since `cache` was read) is taken from the cache without a system call; its
    // subdirectories are judged on their own.
    if let Some(cache) = cache.filter(|_| unchanged(prefix)) {
        let start = prefix.len() + 1;
        for (name, entry) in &cache.files {
            let Some(rest) = name.get(start..).filter(|_| name.starts_with(prefix)) else {
                continue;
            };
            if name.as_bytes().get(prefix.len()) == Some(&b'/') && !rest.contains('/') {
                out.files.insert(name.clone(), entry.clone());
            }
        }
        let subdirs = cache.dirs.get(prefix).cloned().unwrap_or_default();
        for sub in &subdirs {
            read_loose(
                &dir.join(sub),
                &format!("{prefix}/{sub}"),
                Some(cache),
                unchanged,
                out,
            )?;
        }
        out.dirs.insert(prefix.to_owned(), subdirs);
        return Ok(());
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(GitError::Dir {
                path: dir.to_owned(),
                source,
            })
        }
    };
    let mut subdirs = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let full = format!("{prefix}/{name}");
        if kind.is_dir() {
            read_loose(&entry.path(), &full, cache, unchanged, out)?;
            subdirs.push(name);
            continue;
        }
        if name.ends_with(".lock") || !(kind.is_file() || kind.is_symlink()) {
            continue;
        }
        // DirEntry::metadata does not follow a symlink (`lstat`).
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let stamp = Stamp::of(&meta);
        if let Some((cached, value)) = cache.and_then(|c| c.files.get(&full)) {
            if cached.same(&stamp) {
                out.files.insert(full, (stamp, value.clone()));
                continue;
            }
        }
        // A symlink is never followed: as a ref it is broken.
        let value = match kind.is_file() {
            true => read_regular(&entry.path()).map(|raw| parse_loose(&raw)),
            false => Some(Value::Broken),
        };
        out.files.insert(full, (stamp, value));
    }
    // Sorted, so a snapshot reads the same whatever order the directory listed them in.
    subdirs.sort_unstable();
    out.dirs.insert(prefix.to_owned(), subdirs);
    Ok(())
}

pub(crate) fn parse_loose(raw: &[u8]) -> Value {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_end();
    if let Some(target) = text.strip_prefix("ref: ") {
        Value::Symbolic(target.to_owned())
    } else if is_oid(text) {
        Value::Oid(text.to_owned())
    } else {
        Value::Broken
    }
}

pub(crate) fn parse_head(raw: &[u8]) -> Head {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_end();
    match text.strip_prefix("ref: ") {
        Some(target) if target.starts_with("refs/") => Head::Branch(target.to_owned()),
        Some(_) => Head::Broken,
        None if is_oid(text) => Head::Detached(text.to_owned()),
        None => Head::Broken,
    }
}

pub(crate) fn is_oid(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A regular file's content; `None` for anything else (absent, a symlink, a directory) or
/// unreadable.
pub(crate) fn read_regular(path: &Path) -> Option<Vec<u8>> {
    let meta = fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_file() {
        return None;
    }
    fs::read(path).ok()
}

/// A file's content, `None` when absent or not a regular file.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, GitError> {
    Ok(read_regular(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_refs_parse_and_damage_is_seen() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let text = format!("# pack-refs with: peeled fully-peeled sorted \n{a} refs/heads/main\n{b} refs/tags/v1\n^{a}\n");
        let refs = parse_packed(text.as_bytes());
        assert_eq!(refs.len(), 2);
        assert_eq!(refs["refs/heads/main"], Value::Oid(a.clone()));
        assert!(!is_damaged_packed(text.as_bytes()));
        assert!(is_damaged_packed(format!("{text}garbage\n").as_bytes()));
    }

    #[test]
    fn head_is_parsed() {
        assert_eq!(
            parse_head(b"ref: refs/heads/main\n"),
            Head::Branch("refs/heads/main".into())
        );
        assert_eq!(parse_head(b""), Head::Broken);
        let oid = "c".repeat(40);
        assert_eq!(parse_head(oid.as_bytes()), Head::Detached(oid.clone()));
    }
}
