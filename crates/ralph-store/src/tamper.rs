//! ralph's own files changed behind its back: the state database (and its `-wal` and `-shm`)
//! and the audit log, which an agent's shell can reach like any other file (`rm -f
//! .ralph/ralph.db*`, `sed -i 1d .ralph/audit.jsonl`, `cp other.db .ralph/ralph.db`).
//!
//! ralph holds both open, so most damage can be undone from its own handle:
//!
//! * The database: a file deleted, moved away or replaced by another (its inode changed) is
//!   rebuilt from ralph's open connection with SQLite's backup API, which reads every page
//!   through that connection (the unlinked files included) — nothing committed is lost. The
//!   connection is then reopened on the restored file. Damage SQLite's own locking let through
//!   (another program committed to it: `PRAGMA data_version` moved) or an overwrite in place
//!   (the main file changed while only a checkpoint may write it, and ralph checkpoints only
//!   between iterations) cannot be undone: ralph says so.
//! * The audit log: ralph keeps a copy of the bytes it holds to be the log (read once when the
//!   log is opened, then every record it appends), so a deleted, replaced, truncated or edited
//!   log is put back exactly.
//!
//! [`Store::mark_files`] is taken before the agent starts, [`Store::check_files`] after it and
//! its gates ended; [`AuditLog::check_file`] compares the log with its copy.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, DatabaseName};

use crate::{sql, AuditLog, Store, StoreError};

/// Above this, the audit log is not copied in memory (and a damaged one cannot be restored).
pub const MAX_AUDIT_COPY_BYTES: u64 = 64 << 20;

/// Write-ahead log size at which [`Store::mark_files`] checkpoints it (SQLite's own default
/// of 1000 pages): ralph checkpoints only there, so the main file is still during an iteration.
const CHECKPOINT_WAL_BYTES: u64 = 1000 * 4096;

/// What identifies a file and its last change, without following a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSig {
    pub dev: u64,
    pub ino: u64,
    pub len: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub mode: u32,
}

impl FileSig {
    /// `None`: nothing there (or it cannot be read, which counts as gone).
    pub fn of(path: &Path) -> Option<FileSig> {
        fs::symlink_metadata(path)
            .ok()
            .map(|m| FileSig::from_meta(&m))
    }

    pub fn from_meta(m: &fs::Metadata) -> FileSig {
        FileSig {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
            mode: m.mode(),
        }
    }

    fn same_file(&self, other: &FileSig) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

/// What happened to one of ralph's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// Gone (deleted or moved away).
    Deleted,
    /// Another file is at its path (replaced, or moved over it).
    Replaced,
    /// Its contents or metadata changed in place.
    Modified,
    /// Another program committed to the database through SQLite.
    ForeignWrite,
    /// A file ralph did not write appeared.
    Added,
}

impl Damage {
    pub fn verb(self) -> &'static str {
        match self {
            Damage::Deleted => "deleted",
            Damage::Replaced => "replaced",
            Damage::Modified => "modified",
            Damage::ForeignWrite => "wrote to",
            Damage::Added => "added",
        }
    }
}

/// One damaged file and whether ralph put it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The path relative to `.ralph/`, e.g. `ralph.db-wal`.
    pub file: String,
    pub damage: Damage,
    pub restored: bool,
    /// Why it could not be restored, or how it was.
    pub note: Option<String>,
}

/// The database files as they were before the agent ran.
#[derive(Debug, Clone)]
pub struct DbMark {
    data_version: i64,
    generation: u64,
    main: Option<FileSig>,
    /// ralph's own checkpoints so far: one during the window (another loop's mark) wrote the
    /// main file, so its change then is ralph's.
    checkpoints: u64,
}

/// The identities of the database's files, taken when ralph opened (or restored) them.
#[derive(Debug, Clone, Default)]
pub(crate) struct DbFiles {
    pub path: PathBuf,
    pub main: Option<FileSig>,
    pub wal: Option<FileSig>,
    pub shm: Option<FileSig>,
    /// Bumped by every restore: a mark from before it compares nothing.
    pub generation: u64,
    /// Checkpoints of the write-ahead log ralph ran (each writes the main file).
    pub checkpoints: u64,
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl DbFiles {
    pub fn capture(path: &Path, generation: u64) -> DbFiles {
        DbFiles {
            path: path.to_path_buf(),
            main: FileSig::of(path),
            wal: FileSig::of(&suffixed(path, "-wal")),
            shm: FileSig::of(&suffixed(path, "-shm")),
            generation,
            checkpoints: 0,
        }
    }
}

impl Store {
    /// Before the agent runs: checkpoint the write-ahead log if it grew large (the only time
    /// ralph writes the main file), then remember the main file and SQLite's data version.
    pub fn mark_files(&mut self) -> Result<DbMark, StoreError> {
        let Some(files) = &self.files else {
            return Ok(DbMark {
                data_version: 0,
                generation: 0,
                main: None,
                checkpoints: 0,
            });
        };
        let wal_len = FileSig::of(&suffixed(&files.path, "-wal")).map_or(0, |s| s.len);
        let checkpoint = wal_len > CHECKPOINT_WAL_BYTES;
        if checkpoint {
            self.conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                .map_err(sql("checkpoint the write-ahead log"))?;
        }
        let generation = files.generation;
        let path = files.path.clone();
        let checkpoints = files.checkpoints + u64::from(checkpoint);
        if let Some(f) = &mut self.files {
            f.checkpoints = checkpoints;
        }
        Ok(DbMark {
            data_version: self.data_version()?,
            generation,
            main: FileSig::of(&path),
            checkpoints,
        })
    }

    fn data_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(sql("read the data version"))
    }

    /// After the agent and its gates: what happened to the database's files since `mark`,
    /// each restored where ralph can.
    pub fn check_files(&mut self, mark: &DbMark) -> Result<Vec<Finding>, StoreError> {
        let Some(files) = self.files.clone() else {
            return Ok(Vec::new());
        };
        if files.generation != mark.generation {
            // Restored since (by another loop's check), which said so.
            return Ok(Vec::new());
        }
        let mut findings = Vec::new();
        let name = |p: &Path| {
            p.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        };
        let mut swapped = false;
        for (path, known) in [
            (files.path.clone(), files.main),
            (suffixed(&files.path, "-wal"), files.wal),
            (suffixed(&files.path, "-shm"), files.shm),
        ] {
            let Some(known) = known else { continue };
            let damage = match FileSig::of(&path) {
                None => Damage::Deleted,
                Some(now) if !now.same_file(&known) => Damage::Replaced,
                Some(_) => continue,
            };
            swapped = true;
            findings.push(Finding {
                file: name(&path),
                damage,
                restored: false,
                note: None,
            });
        }
        if swapped {
            let restored = self.restore_from_handle();
            for f in &mut findings {
                f.restored = restored.is_ok();
                f.note = Some(match &restored {
                    Ok(()) => "restored from ralph's open database".to_string(),
                    Err(e) => format!("restoring failed: {e}"),
                });
            }
            return Ok(findings);
        }
        let main_now = FileSig::of(&files.path);
        if mark.main.is_some() && main_now != mark.main && files.checkpoints == mark.checkpoints {
            findings.push(Finding {
                file: name(&files.path),
                damage: Damage::Modified,
                restored: false,
                note: Some("overwritten in place: ralph cannot tell what was lost".to_string()),
            });
        } else if self.data_version()? != mark.data_version {
            findings.push(Finding {
                file: name(&files.path),
                damage: Damage::ForeignWrite,
                restored: false,
                note: Some(
                    "another program committed changes: ralph cannot tell which".to_string(),
                ),
            });
        }
        Ok(findings)
    }

    /// Rebuild the database file from the open connection, then reopen it there.
    fn restore_from_handle(&mut self) -> Result<(), StoreError> {
        let Some(files) = self.files.clone() else {
            return Ok(());
        };
        let path = files.path.clone();
        let io = |action: &'static str| {
            let path = path.clone();
            move |e: std::io::Error| StoreError::Restore {
                action,
                path: path.display().to_string(),
                source: e,
            }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io("recreate the directory of"))?;
        }
        let tmp = suffixed(&path, ".restoring");
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io("remove a stale copy of")(e))
            }
            _ => {}
        }
        self.conn
            .backup(DatabaseName::Main, &tmp, None)
            .map_err(sql("copy the open database"))?;
        // Close the old connection before its files' names are reused: closing checkpoints into
        // the old (unlinked) file and unlinks whatever is at the `-wal` path.
        let placeholder = Connection::open_in_memory().map_err(sql("open a placeholder"))?;
        drop(std::mem::replace(&mut self.conn, placeholder));
        for suffix in ["-wal", "-shm"] {
            match fs::remove_file(suffixed(&path, suffix)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io("remove a planted file at")(e))
                }
                _ => {}
            }
        }
        fs::rename(&tmp, &path).map_err(io("move the restored copy to"))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = fs::File::open(dir).and_then(|d| d.sync_all());
        }
        let conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Store::configure(&conn)?;
        self.conn = conn;
        self.files = Some(DbFiles::capture(&path, files.generation + 1));
        Ok(())
    }
}

impl AuditLog {
    /// Compare the log on disk with ralph's copy; put it back if it differs. `None`: intact.
    pub fn check_file(&mut self) -> Option<Finding> {
        let meta = fs::symlink_metadata(&self.path).ok();
        let now = meta.as_ref().map(FileSig::from_meta);
        if now.is_some() && now == self.sig {
            return None;
        }
        let on_disk = meta
            .filter(|m| m.file_type().is_file())
            .and_then(|_| fs::read(&self.path).ok());
        let damage = match (now, self.sig) {
            (None, _) => Damage::Deleted,
            (Some(n), Some(k)) if !n.same_file(&k) => Damage::Replaced,
            _ => Damage::Modified,
        };
        if let (Some(bytes), Some(copy), Damage::Modified) = (&on_disk, &self.copy, damage) {
            if bytes == copy {
                // Touched, not changed.
                self.sig = now;
                return None;
            }
        }
        let file = crate::audit::AUDIT_FILE.to_string();
        let restored = self.restore_copy();
        Some(Finding {
            file,
            damage,
            restored: restored.is_ok(),
            note: Some(match restored {
                Ok(()) => "restored from ralph's copy".to_string(),
                Err(e) => format!("could not be restored: {e}"),
            }),
        })
    }

    fn restore_copy(&mut self) -> Result<(), String> {
        let Some(copy) = &self.copy else {
            return Err(format!(
                "the log is larger than the {} MiB ralph keeps a copy of",
                MAX_AUDIT_COPY_BYTES >> 20
            ));
        };
        let tmp = suffixed(&self.path, ".restoring");
        let write = || -> std::io::Result<fs::File> {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(dir)?;
            }
            let _ = fs::remove_file(&tmp);
            fs::write(&tmp, copy)?;
            fs::File::open(&tmp)?.sync_all()?;
            // Replaces a symlink itself, never what it points at.
            fs::rename(&tmp, &self.path)?;
            fs::OpenOptions::new()
                .read(true)
                .append(true)
                .open(&self.path)
        };
        let file = write().map_err(|e| e.to_string())?;
        self.file = file;
        self.end = copy.len() as u64;
        self.sig = FileSig::of(&self.path);
        Ok(())
    }
}
