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
//! * Not watched: `STOP` (a stop request, which anyone may make), the current iteration's own
//!   directory and those of other loops of this process (ralph writes them meanwhile),
//!   `git-index/` (the scratch of ralph's own git) and `worktrees/` (where stories' agents
//!   work).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ralph_store::tamper::{Damage, DbMark, FileSig, Finding};

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
    listing: BTreeMap<PathBuf, Entry>,
}

impl Engine {
    /// Before the agent starts: the database's mark, the audit log open (so ralph holds its
    /// copy), and the listing of everything else.
    pub(super) async fn mark_state(&mut self, n: u32) -> Result<StateMark, EngineError> {
        let db = self.handles.store.exclusive(|s| s.mark_files()).await?;
        let _ = self.audit_log();
        let skip = self.unwatched(n);
        Ok(StateMark {
            db: Some(db),
            listing: list(&self.state_dir, &skip),
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
        let now = list(&self.state_dir, &skip);
        findings.extend(compare(&self.state_dir, &mark.listing, &now));
        if findings.is_empty() {
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
            serde_json::json!({ "iteration": n, "files": data }),
        );
        Ok(Some(Stop::new(StopReason::Safety, message(&findings))))
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
            let top = d == dir;
            if top && OWN_CHECKS.iter().any(|n| e.file_name() == *n) {
                continue;
            }
            if skip.contains(&path) {
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
