//! The repository itself after the agent ran, checked before ralph runs any git command of its
//! own (the checkpoint's `git add` would otherwise run a filter the agent configured):
//!
//! 1. `.git` is still there. Deleted or moved, history and checkpoints went with it: ralph says
//!    exactly that and stops, and claims nothing was restored.
//! 2. `.git`'s config, hooks, `info/exclude` and `info/attributes` are put back
//!    ([`ralph_git::RepoMeta`]).
//! 3. Every ref is put back wholesale where the agent deleted or rewrote it
//!    ([`ralph_git::RefSnapshot`]): branches, tags, the stash and its entries, `refs/ralph/**`,
//!    HEAD (also when emptied), a damaged `packed-refs`.
//!
//! Any of them is tampering with what ralph promised to keep: the run stops (exit 6) with a
//! message saying what the agent did and what was put back, and an audit record.

use super::guardrails::Before;
use super::{Engine, Stop};
use crate::events::StopReason;
use ralph_git::{RefRestore, RefSnapshot};

/// What [`Engine::check_git_integrity`] found.
#[derive(Default)]
pub(super) struct Integrity {
    /// Tampering found (and put back where possible): the run stops.
    pub stop: Option<Stop>,
    /// `.git` is gone: no checkpoint, diff or restore can run.
    pub repo_gone: bool,
}

impl Engine {
    /// The refs before the agent runs (`None` outside a repository, or when they cannot be
    /// read: then nothing is compared, and ralph says so).
    pub(super) fn snapshot_refs(&mut self) -> Option<RefSnapshot> {
        let git = self.git.as_ref()?;
        let unchanged = self
            .guards
            .refs_watch
            .before_snapshot(&git.common_dir.join("refs"), true);
        let taken =
            git.snapshot_refs_watched(self.guards.last_refs.as_ref(), &|p| unchanged.vouches(p));
        match taken {
            Ok(snapshot) => {
                self.guards.last_refs = Some(snapshot.clone());
                Some(snapshot)
            }
            Err(e) => {
                self.warn(format!(
                    "the repository's refs could not be read ({e}); changes the agent makes to \
                     branches, tags or the stash will not be undone this iteration"
                ));
                None
            }
        }
    }

    /// Steps 1–3 of the module docs.
    pub(super) fn check_git_integrity(&mut self, n: u32, before: &Before) -> Integrity {
        let Some(git) = self.git.clone() else {
            return Integrity::default();
        };
        if !git.common_dir.join("objects").is_dir() {
            return Integrity {
                stop: Some(self.repository_gone(n, &git)),
                repo_gone: true,
            };
        }
        let mut said = Vec::new();
        if let Some(meta) = &before.meta {
            let changed = meta.changed();
            if !changed.is_empty() {
                let restored = meta.restore();
                self.audit_record(
                    ralph_store::audit::kinds::GUARD_TRIPPED,
                    serde_json::json!({
                        "iteration": n, "guard": "protected_paths", "paths": changed,
                        "restored": restored.is_ok(),
                    }),
                );
                said.push(format!(
                    "changed {} (protected: .git/**); {}",
                    changed.join(", "),
                    match restored {
                        Ok(()) => "restored".to_string(),
                        Err(e) => format!("restoring failed: {e}"),
                    }
                ));
            }
        }
        if let Some(refs) = &before.refs {
            // What other loops of this process wrote meanwhile is ralph's own.
            let mut refs = refs.clone();
            for (name, oid) in self.handles.own_refs.since(before.own_refs) {
                refs.adopt(&name, &oid);
            }
            let refs = &refs;
            let unchanged = self
                .guards
                .refs_watch
                .before_snapshot(&git.common_dir.join("refs"), false);
            let restored =
                git.restore_refs_watched(refs, &self.settings.ref_rules, &|p| unchanged.vouches(p));
            match restored {
                Ok(report) if report.is_empty() => {}
                Ok(report) => {
                    self.audit_refs(n, &report);
                    let mut text = describe(&report);
                    if report.head_restored {
                        text.push_str(&restore_index(before));
                    }
                    said.push(text);
                }
                Err(e) => {
                    said.push(format!("the refs could not be compared or restored: {e}"));
                }
            }
        }
        Integrity {
            stop: (!said.is_empty()).then(|| {
                Stop::new(
                    StopReason::Safety,
                    format!("{PREFIX}the agent {}", said.join("; it also ")),
                )
            }),
            repo_gone: false,
        }
    }

    fn repository_gone(&mut self, n: u32, git: &ralph_git::Git) -> Stop {
        let dir = git.git_dir.display().to_string();
        self.audit_record(
            ralph_store::audit::kinds::GUARD_TRIPPED,
            serde_json::json!({
                "iteration": n, "guard": "repository", "path": dir, "restored": false,
            }),
        );
        Stop::new(
            StopReason::Safety,
            format!(
                "stopped by a safety guard: the agent deleted or moved the repository's git \
                 directory ({dir}); its history, branches and ralph's checkpoints went with it \
                 and ralph cannot restore them (nothing was restored; recover it from a clone \
                 or a backup)"
            ),
        )
    }

    fn audit_refs(&mut self, n: u32, report: &RefRestore) {
        let restored: Vec<_> = report
            .restored
            .iter()
            .map(|f| serde_json::json!({ "ref": f.name, "what": f.what }))
            .collect();
        let failed: Vec<_> = report
            .failed
            .iter()
            .map(|(f, why)| serde_json::json!({ "ref": f.name, "what": f.what, "error": why }))
            .collect();
        self.audit_record(
            ralph_store::audit::kinds::GUARD_TRIPPED,
            serde_json::json!({
                "iteration": n, "guard": "refs", "restored": restored, "failed": failed,
            }),
        );
    }
}

/// With HEAD or its branch back, the index the user had goes back too (else `git status` would
/// show the undone commits as staged reversals).
fn restore_index(before: &Before) -> String {
    match before.index.as_ref().map(ralph_git::KeptIndex::restore) {
        Some(Ok(true)) => "; the index too".to_string(),
        Some(Ok(false)) => String::new(),
        Some(Err(e)) => format!("; the index could NOT be put back ({e})"),
        None => "; the index was not kept and may show the undone changes as staged \
                 (`git reset` clears that)"
            .to_string(),
    }
}

/// A guard that already stopped the run keeps its message; what the integrity check found is
/// added to it, so the summary tells both.
pub(super) fn merge_stop(stop: &mut Option<Stop>, found: Option<Stop>) {
    let Some(found) = found else { return };
    match stop {
        Some(existing) => {
            let text = found.message.strip_prefix(PREFIX).unwrap_or(&found.message);
            existing.message.push_str("; also, ");
            existing.message.push_str(text);
        }
        None => *stop = Some(found),
    }
}

const PREFIX: &str = "stopped by a safety guard: ";

/// `deleted refs/heads/x, rewrote refs/heads/main; put back` (and what could not be).
fn describe(report: &RefRestore) -> String {
    let what = |f: &ralph_git::RefFix| {
        let verb = match f.what {
            "deleted" => "deleted",
            "rewritten" => "rewrote",
            "switched" => "switched",
            "damaged" => "damaged",
            "dropped stash entries" => "dropped stash entries from",
            _ => "changed",
        };
        format!("{verb} {}", f.name)
    };
    let mut parts: Vec<String> = report.restored.iter().map(what).collect();
    parts.extend(report.failed.iter().map(|(f, _)| what(f)));
    let mut text = parts.join(", ");
    if !report.restored.is_empty() {
        text.push_str(if report.failed.is_empty() {
            "; put back as they were"
        } else {
            "; partly put back"
        });
    }
    for (f, why) in &report.failed {
        text.push_str(&format!("; {} could NOT be put back: {why}", f.name));
    }
    text
}
