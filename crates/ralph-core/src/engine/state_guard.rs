//! ralph's own state, `.ralph/`, is out of the agent's reach even without an OS sandbox: what
//! the agent (or a gate running its code) changed there during an iteration is found right
//! after, put back where ralph can, and the run stops (exit 6) naming every change.
//!
//! * The database and the audit log are held open by ralph and restored from its own handles
//!   (`ralph_store::tamper`): a deleted `ralph.db*` loses no history.
//! * Every other file is compared with a listing taken before the agent started (inode, size,
//!   mtime, ctime: any write changes the ctime, which nobody can set back): `.gitignore` is
//!   rewritten, files the agent added are removed, and a changed or deleted iteration artifact
//!   is reported as lost (ralph keeps no copy of its logs; its records are in the database).
//! * The user's index (`index_guard.rs`), deleted or corrupted, is put back from ralph's copy.
//! * Not watched: `STOP` (a stop request, which anyone may make), the current iteration's own
//!   directory and those of other loops of this process (ralph writes them meanwhile),
//!   `git-index/` (the scratch of ralph's own git) and `worktrees/` (where stories' agents
//!   work).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ralph_store::tamper::{Damage, DbMark, FileSig, Finding};

use super::index_guard::IndexKeep;
use super::state_watch::{Change, Watch};
use super::{Engine, EngineError, Stop};
use crate::events::StopReason;

/// `.ralph/.gitignore`: nothing in `.ralph/` is ever committed.
pub const STATE_GITIGNORE: &str = "*\n";

/// Files of `.ralph/` checked by their owner, not by the listing.
const OWN_CHECKS: &[&str] = &[
    "ralph.db",
    "ralph.db-wal",
    "ralph.db-shm",
    "ralph.db.restoring",
    ralph_store::audit::AUDIT_FILE,
    "audit.jsonl.restoring",
    "STOP",
    "worktrees",
    // Scratch: temporary index files of ralph's own git, created and removed by every loop.
    "git-index",
];

/// Most entries listed; a larger `.ralph/` is listed up to here (and says so in the design
/// note), so a runaway directory cannot make every iteration slow.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    sig: FileSig,
    dir: bool,
}

/// `.ralph/` before the agent ran.
pub(super) struct StateMark {
    db: Option<DbMark>,
    /// The listing to compare with, where inotify is not available.
    listing: Option<BTreeMap<PathBuf, Entry>>,
}

/// The inotify watch of `.ralph/`, started at the first iteration.
#[derive(Default)]
pub(super) struct StateWatch {
    tried: bool,
    watch: Option<Watch>,
    /// The user's index, kept between iterations.
    index: IndexKeep,
}

impl Engine {
    /// Before the agent starts: the database's mark, the audit log open (so ralph holds its
    /// copy), and the watch's window opened (or a listing taken).
    pub(super) async fn mark_state(&mut self, n: u32) -> Result<StateMark, EngineError> {
        let db = self.handles.store.exclusive(|s| s.mark_files()).await?;
        let _ = self.audit_log();
        if let Some(git) = &self.git {
            self.state_watch.index.mark(&git.index_path);
        }
        let skip = self.unwatched(n);
        let root = self.state_dir.clone();
        let rel = |p: &Path| p.strip_prefix(&root).map(Path::to_path_buf).ok();
        let unwatched = |r: &Path| is_unwatched(r, &skip, &root);
        if !self.state_watch.tried {
            self.state_watch.tried = true;
            self.state_watch.watch = Watch::start(&root, &unwatched);
        } else if let Some(w) = self.state_watch.watch.as_mut() {
            // What ralph created since: this run's directory, the iteration just sealed.
            let sealed = n
                .checked_sub(1)
                .map(|p| self.artifacts.join(format!("{p:04}")));
            for dir in [Some(self.artifacts.clone()), sealed].into_iter().flatten() {
                if let Some(r) = rel(&dir).filter(|r| !unwatched(r)) {
                    let _ = w.add(&r);
                }
            }
        }
        let listing = match &mut self.state_watch.watch {
            Some(w) => {
                w.open_window();
                None
            }
            None => Some(list(&root, &skip)),
        };
        Ok(StateMark {
            db: Some(db),
            listing,
        })
    }

    /// After the agent and its gates: every change to `.ralph/` since `mark`, restored where
    /// possible; `Some` stops the run.
    pub(super) async fn check_state(
        &mut self,
        n: u32,
        mark: &StateMark,
    ) -> Result<Option<Stop>, EngineError> {
        let mut findings = match &mark.db {
            Some(db) => {
                let db = db.clone();
                self.handles
                    .store
                    .exclusive(move |s| s.check_files(&db))
                    .await?
            }
            None => Vec::new(),
        };
        if let Ok(Some(audit)) = self.handles.audit.get() {
            findings.extend(audit.lock().check_file());
        }
        let skip = self.unwatched(n);
        match (&mut self.state_watch.watch, &mark.listing) {
            (Some(w), _) => {
                findings.extend(watched(&self.state_dir, w.close_window(), &skip));
            }
            (None, Some(before)) => {
                let now = list(&self.state_dir, &skip);
                findings.extend(compare(&self.state_dir, before, &now));
            }
            (None, None) => {}
        }
        let index = match &self.git {
            Some(git) => self.state_watch.index.check(&git.index_path),
            None => None,
        };
        if findings.is_empty() && index.is_none() {
            return Ok(None);
        }
        let data: Vec<serde_json::Value> = findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "file": f.file, "change": f.damage.verb(), "restored": f.restored,
                    "note": f.note,
                })
            })
            .collect();
        self.audit_record(
            ralph_store::audit::kinds::STATE_TAMPERED,
            serde_json::json!({ "iteration": n, "files": data, "index": index }),
        );
        let text = match (findings.is_empty(), index) {
            (false, Some(index)) => format!("{}; the agent also {index}", message(&findings)),
            (false, None) => message(&findings),
            (true, Some(index)) => format!("stopped by a safety guard: the agent {index}"),
            (true, None) => String::new(),
        };
        Ok(Some(Stop::new(StopReason::Safety, text)))
    }

    /// Directories ralph itself writes while this iteration runs.
    fn unwatched(&self, n: u32) -> Vec<PathBuf> {
        let mut skip = vec![self.iteration_dir(n)];
        skip.extend(
            self.handles
                .artifact_dirs()
                .into_iter()
                .filter(|d| *d != self.artifacts),
        );
        skip
    }
}

/// `rel` (relative to `.ralph/`) is checked by its owner or written by ralph meanwhile.
fn is_unwatched(rel: &Path, skip: &[PathBuf], root: &Path) -> bool {
    let top = rel.components().next().map(|c| c.as_os_str());
    top.is_some_and(|t| OWN_CHECKS.iter().any(|n| t == *n))
        || skip.iter().any(|s| root.join(rel).starts_with(s))
}

/// The watch's changes as findings, restored where ralph can.
fn watched(dir: &Path, changes: super::state_watch::Changes, skip: &[PathBuf]) -> Vec<Finding> {
    let Some(changes) = changes else {
        return vec![Finding {
            file: String::new(),
            damage: Damage::Modified,
            restored: false,
            note: Some("more changes than the kernel could report: check it by hand".into()),
        }];
    };
    let relevant: BTreeMap<&PathBuf, Change> = changes
        .iter()
        .filter(|(rel, _)| !is_unwatched(rel, skip, dir))
        .map(|(r, c)| (r, *c))
        .collect();
    let mut findings = Vec::new();
    for (rel, change) in &relevant {
        // Below an added or deleted directory, the directory says it all.
        let covered = rel.ancestors().skip(1).any(|a| {
            relevant
                .get(&a.to_path_buf())
                .is_some_and(|c| *c != Change::Modified)
        });
        if covered {
            continue;
        }
        let damage = match change {
            Change::Added => Damage::Added,
            Change::Deleted => Damage::Deleted,
            Change::Modified => Damage::Modified,
        };
        findings.push(repair(dir, rel, damage));
    }
    findings
}
/// Everything under `dir` but [`OWN_CHECKS`] (at the top) and `skip`, never following a
/// symlink.
fn list(dir: &Path, skip: &[PathBuf]) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if out.len() >= MAX_ENTRIES {
                return out;
            }
            let path = e.path();
            let rel = path.strip_prefix(dir).unwrap_or(&path);
            if is_unwatched(rel, skip, dir) {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let is_dir = meta.file_type().is_dir();
            if is_dir {
                stack.push(path.clone());
            }
            let rel = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
            out.insert(
                rel,
                Entry {
                    sig: FileSig::from_meta(&meta),
                    dir: is_dir,
                },
            );
        }
    }
    out
}

/// What changed between two listings, restored where ralph can.
fn compare(
    dir: &Path,
    before: &BTreeMap<PathBuf, Entry>,
    after: &BTreeMap<PathBuf, Entry>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (rel, was) in before {
        let damage = match after.get(rel) {
            None => Damage::Deleted,
            Some(now) if now.dir != was.dir || now.sig.ino != was.sig.ino => Damage::Replaced,
            // A directory's own times change with its entries, which are compared themselves.
            Some(now) if !was.dir && now.sig != was.sig => Damage::Modified,
            Some(_) => continue,
        };
        // Below a deleted directory, the directory says it all.
        if damage == Damage::Deleted && rel.ancestors().skip(1).any(|a| gone(before, after, a)) {
            continue;
        }
        findings.push(repair(dir, rel, damage));
    }
    for rel in after.keys().filter(|r| !before.contains_key(*r)) {
        if rel
            .ancestors()
            .skip(1)
            .any(|a| after.contains_key(a) && !before.contains_key(a))
        {
            continue;
        }
        findings.push(repair(dir, rel, Damage::Added));
    }
    // `.gitignore` deleted along with everything else is still put back.
    if !after.contains_key(Path::new(".gitignore"))
        && before.contains_key(Path::new(".gitignore"))
        && !findings.iter().any(|f| f.file == ".gitignore")
    {
        findings.push(repair(dir, Path::new(".gitignore"), Damage::Deleted));
    }
    findings
}

fn gone(before: &BTreeMap<PathBuf, Entry>, after: &BTreeMap<PathBuf, Entry>, p: &Path) -> bool {
    !p.as_os_str().is_empty() && before.contains_key(p) && !after.contains_key(p)
}

/// Put one change back: `.gitignore` is rewritten, an added file removed; anything else ralph
/// keeps no copy of.
fn repair(dir: &Path, rel: &Path, damage: Damage) -> Finding {
    let path = dir.join(rel);
    let file = rel.to_string_lossy().into_owned();
    let outcome: Result<&str, String> = if rel == Path::new(".gitignore") {
        remove_any(&path)
            .and_then(|()| std::fs::create_dir_all(dir))
            .and_then(|()| std::fs::write(&path, STATE_GITIGNORE))
            .map(|()| "restored")
            .map_err(|e| e.to_string())
    } else if damage == Damage::Added {
        remove_any(&path)
            .map(|()| "removed")
            .map_err(|e| e.to_string())
    } else {
        Err("ralph keeps no copy of it".to_string())
    };
    Finding {
        file,
        damage,
        restored: outcome.is_ok(),
        note: Some(match outcome {
            Ok(how) => how.to_string(),
            Err(e) => format!("cannot be restored: {e}"),
        }),
    }
}

/// Remove a file, a symlink (not what it points at) or a directory tree; absent is fine.
fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        // `remove_dir_all` does not follow symlinks inside the tree.
        Ok(m) if m.file_type().is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    }
}

/// One line naming every change and what became of it.
fn message(findings: &[Finding]) -> String {
    let parts: Vec<String> = findings
        .iter()
        .take(8)
        .map(|f| {
            let verb = if f.damage == Damage::ForeignWrite {
                "wrote to".to_string()
            } else {
                f.damage.verb().to_string()
            };
            match &f.note {
                Some(note) => format!("{verb} .ralph/{} ({note})", f.file),
                None => format!("{verb} .ralph/{}", f.file),
            }
        })
        .collect();
    let more = findings.len().saturating_sub(parts.len());
    let tail = if more > 0 {
        format!(" and {more} more (see `ralph audit verify` and .ralph/audit.jsonl)")
    } else {
        String::new()
    };
    let lost = findings.iter().any(|f| !f.restored);
    format!(
        "stopped by a safety guard: the agent changed ralph's own state: {}{tail}; {}",
        parts.join(", "),
        if lost {
            "what could not be restored is lost"
        } else {
            "everything was restored"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join(".gitignore"), STATE_GITIGNORE).unwrap();
        std::fs::create_dir_all(t.path().join("runs/r1/0001")).unwrap();
        std::fs::write(t.path().join("runs/r1/0001/output.log"), "out\n").unwrap();
        std::fs::write(t.path().join("lock"), "1\n").unwrap();
        t
    }

    fn changes(t: &Path, act: impl FnOnce(&Path)) -> Vec<(String, Damage, bool)> {
        let before = list(t, &[]);
        act(t);
        compare(t, &before, &list(t, &[]))
            .iter()
            .map(|f| (f.file.clone(), f.damage, f.restored))
            .collect()
    }

    #[test]
    fn the_listing_finds_and_repairs_what_changed() {
        let t = state();
        let got = changes(t.path(), |d| {
            std::fs::write(d.join(".gitignore"), "!*\n").unwrap();
            std::fs::write(d.join("runs/r1/0001/output.log"), "forged\n").unwrap();
            std::fs::write(d.join("planted"), "x").unwrap();
            std::fs::remove_file(d.join("lock")).unwrap();
        });
        assert!(
            got.contains(&(".gitignore".into(), Damage::Modified, true)),
            "{got:?}"
        );
        assert!(
            got.contains(&("runs/r1/0001/output.log".into(), Damage::Modified, false)),
            "{got:?}"
        );
        assert!(
            got.contains(&("planted".into(), Damage::Added, true)),
            "{got:?}"
        );
        assert!(
            got.contains(&("lock".into(), Damage::Deleted, false)),
            "{got:?}"
        );
        assert_eq!(
            std::fs::read_to_string(t.path().join(".gitignore")).unwrap(),
            "*\n"
        );
        assert!(!t.path().join("planted").exists());
    }

    #[test]
    fn the_kernel_reports_the_same_changes() {
        let t = state();
        let Some(mut w) = Watch::start(t.path(), &|r| is_unwatched(r, &[], t.path())) else {
            return; // no inotify here: the listing is what runs
        };
        w.open_window();
        std::fs::write(t.path().join("runs/r1/0001/output.log"), "forged\n").unwrap();
        std::fs::remove_dir_all(t.path().join("runs")).unwrap();
        std::fs::write(t.path().join("STOP"), "").unwrap();
        let got: Vec<_> = watched(t.path(), w.close_window(), &[])
            .into_iter()
            .map(|f| (f.file, f.damage))
            .collect();
        // One finding for the deleted tree; STOP is anyone's to write.
        assert_eq!(got, vec![("runs".to_string(), Damage::Deleted)]);
    }
}
