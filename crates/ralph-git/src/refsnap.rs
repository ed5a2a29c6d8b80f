//! Every ref of the repository, remembered before an iteration and put back after it: the
//! branches, tags, `refs/stash` with its reflog (the stash entries live there), `refs/ralph/**`
//! and HEAD. This is the by-construction answer to `git stash clear`, `git branch -D`,
//! `git update-ref -d`, `reset --hard HEAD~1`, `commit --amend`, `rebase` and whatever other
//! spelling an agent finds: ralph does not need to recognise the command, only the result.
//!
//! The snapshot reads the files git keeps refs in (`packed-refs`, the loose files under
//! `refs/`, `HEAD`, `logs/refs/stash`) instead of starting `git for-each-ref`: a git process
//! costs a few milliseconds, reading a 1,000-ref `packed-refs` a few dozen microseconds, and
//! this runs twice per iteration. Only a repository using the reftable backend, whose refs are
//! in a binary format, falls back to `git for-each-ref` (its HEAD and stash reflog are then not
//! watched).
//!
//! What is put back ([`Git::restore_refs`]): a ref the agent deleted; a ref moved to a commit
//! that does not contain its old one (a rewrite); any change at all to a tag, `refs/ralph/**`
//! or another non-branch ref; HEAD switched to another branch, detached, emptied or made
//! unreadable. What stays: new refs, and branches (`refs/heads/`, `refs/remotes/`) moved
//! forward — the agent's own new commits. Stash entries the agent dropped come back; entries
//! it pushed stay. Refs matching [`RefRules`] are left as the agent left them.

use std::collections::{BTreeMap, HashSet};
use std::fs;

use crate::command::Invocation;
use crate::meta::write_file;
use crate::ref_files::{
    entry_commit, is_damaged_packed, is_oid, lines, parse_head, parse_packed, read_loose,
    read_optional, read_regular, Head, Loose, Value,
};
use crate::{Git, GitError};

/// The refs of a repository at one moment (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSnapshot {
    refs: BTreeMap<String, Value>,
    /// HEAD's file content, `None` when it was not a readable file (or under reftable).
    head_raw: Option<Vec<u8>>,
    head: Head,
    /// `logs/refs/stash`, `None` when absent.
    stash_log: Option<Vec<u8>>,
    /// `packed-refs`, `None` when absent.
    packed: Option<Vec<u8>>,
    /// Read through `git for-each-ref`: HEAD and the stash reflog are not watched.
    reftable: bool,
    /// The refs `packed` holds, parsed: reused while the file's bytes are the same.
    packed_refs: BTreeMap<String, Value>,
    /// Each loose ref file, with what `lstat` said about it (a file whose stamp is unchanged
    /// is not read again, see [`Stamp`]), and each directory.
    loose: Loose,
}

impl RefSnapshot {
    /// How many refs were seen (HEAD not counted).
    pub fn len(&self) -> usize {
        self.refs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    /// The branch HEAD was on (`refs/heads/…`), `None` when detached, broken or absent.
    pub fn head_branch(&self) -> Option<&str> {
        match &self.head {
            Head::Branch(b) => Some(b),
            _ => None,
        }
    }
}

impl RefSnapshot {
    /// Take `name` as pointing at `oid` at this snapshot's moment: a ref ralph itself wrote
    /// meanwhile (another loop's checkpoint in the same process) is not the agent's doing and
    /// must not be put back.
    pub fn adopt(&mut self, name: &str, oid: &str) {
        self.refs
            .insert(name.to_string(), Value::Oid(oid.to_string()));
    }
}

/// Which refs the agent may delete or rewrite (`[git] allow_ref_rewrites`): patterns where `*`
/// matches within one `/`-separated component and `**` across components, and `HEAD` for
/// switching or detaching HEAD. `refs/ralph/**` is never allowed: rollback and `ralph audit
/// verify` depend on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefRules {
    allow: Vec<String>,
}

impl RefRules {
    /// Checks every pattern (see [`check_ref_pattern`]).
    pub fn new(allow: &[String]) -> Result<RefRules, String> {
        for pattern in allow {
            check_ref_pattern(pattern)?;
        }
        Ok(RefRules {
            allow: allow.to_vec(),
        })
    }

    fn allows(&self, name: &str) -> bool {
        !name.starts_with(crate::refs::NAMESPACE)
            && self
                .allow
                .iter()
                .any(|p| glob(p.as_bytes(), name.as_bytes()))
    }
}

/// Whether `pattern` can be a `[git] allow_ref_rewrites` entry: `HEAD`, or a full ref name
/// pattern starting with `refs/` that cannot cover ralph's own `refs/ralph/`.
pub fn check_ref_pattern(pattern: &str) -> Result<(), String> {
    if pattern == "HEAD" {
        return Ok(());
    }
    if !pattern.starts_with("refs/") {
        return Err(format!(
            "{pattern:?} is not a ref pattern: write a full ref name such as \
             \"refs/heads/agent/*\" or \"refs/tags/**\", or \"HEAD\""
        ));
    }
    let ralph = [&b"refs/ralph/x"[..], b"refs/ralph/checkpoints/x/0001"];
    if ralph.iter().any(|r| glob(pattern.as_bytes(), r)) {
        return Err(format!(
            "{pattern:?} covers refs/ralph/, where ralph keeps its checkpoints; they are always \
             restored"
        ));
    }
    Ok(())
}

/// `*` within a component, `**` across components, everything else literal.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match pattern {
        [] => name.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=name.len()).any(|i| glob(rest, &name[i..])),
        [b'*', rest @ ..] => {
            let end = name.iter().position(|&b| b == b'/').unwrap_or(name.len());
            (0..=end).any(|i| glob(rest, &name[i..]))
        }
        [c, rest @ ..] => name.first() == Some(c) && glob(rest, &name[1..]),
    }
}

/// One ref ralph put back (or could not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefFix {
    /// `refs/heads/main`, `HEAD`, `refs/stash`, `packed-refs`.
    pub name: String,
    /// What the agent did: `deleted`, `rewritten`, `changed`, `switched`, `damaged`,
    /// `dropped stash entries`.
    pub what: &'static str,
}

/// What [`Git::restore_refs`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefRestore {
    /// Put back as they were.
    pub restored: Vec<RefFix>,
    /// Could not be put back, with the reason (e.g. the commit is no longer in the repository).
    pub failed: Vec<(RefFix, String)>,
    /// Deleted or rewritten, and left so because `[git] allow_ref_rewrites` allows it.
    pub allowed: Vec<String>,
    /// HEAD, or the branch it was on, was put back: the index should go back too
    /// ([`crate::KeptIndex`]).
    pub head_restored: bool,
}

impl RefRestore {
    /// Nothing was found to put back.
    pub fn is_empty(&self) -> bool {
        self.restored.is_empty() && self.failed.is_empty()
    }
}

impl Git {
    /// Every ref, HEAD and the stash reflog as they are now (see the module docs).
    pub fn snapshot_refs(&self) -> Result<RefSnapshot, GitError> {
        self.snapshot_refs_since(None)
    }

    /// [`Git::snapshot_refs`], reusing what `previous` read from files that did not change
    /// since (the loose ref files' stamps, `packed-refs`' bytes): with 1,000 loose refs that
    /// is 1,000 `lstat`s instead of 1,000 reads.
    pub fn snapshot_refs_since(
        &self,
        previous: Option<&RefSnapshot>,
    ) -> Result<RefSnapshot, GitError> {
        self.snapshot_refs_watched(previous, &|_| false)
    }

    /// [`Git::snapshot_refs_since`], also taking from `previous` without a system call every
    /// loose-ref directory `unchanged` vouches for (by its ref-name prefix, e.g. `refs/heads`):
    /// the engine watches them (inotify), so 1,000 loose refs cost nothing when none changed.
    pub fn snapshot_refs_watched(
        &self,
        previous: Option<&RefSnapshot>,
        unchanged: &dyn Fn(&str) -> bool,
    ) -> Result<RefSnapshot, GitError> {
        if self.common_dir.join("reftable").is_dir() {
            return self.snapshot_reftable();
        }
        let previous = previous.filter(|p| !p.reftable);
        let packed = read_optional(&self.common_dir.join("packed-refs"))?;
        let packed_refs = match previous {
            Some(p) if p.packed == packed => p.packed_refs.clone(),
            _ => packed.as_deref().map(parse_packed).unwrap_or_default(),
        };
        let mut loose = Loose::default();
        let cache = previous.map(|p| &p.loose);
        read_loose(
            &self.common_dir.join("refs"),
            "refs",
            cache,
            unchanged,
            &mut loose,
        )?;
        let mut refs = packed_refs.clone();
        for (name, (_, value)) in &loose.files {
            if let Some(value) = value {
                refs.insert(name.clone(), value.clone());
            }
        }
        let head_path = self.git_dir.join("HEAD");
        let head_raw = read_regular(&head_path);
        let head = match &head_raw {
            Some(raw) => parse_head(raw),
            None if head_path.symlink_metadata().is_err() => Head::Absent,
            None => Head::Broken,
        };
        Ok(RefSnapshot {
            refs,
            head_raw,
            head,
            stash_log: read_optional(&self.common_dir.join("logs/refs/stash"))?,
            packed,
            reftable: false,
            packed_refs,
            loose,
        })
    }

    fn snapshot_reftable(&self) -> Result<RefSnapshot, GitError> {
        let args = &[
            "for-each-ref",
            "--format=%(refname)%00%(objectname)%00%(symref)",
        ];
        let stdout = self.run(&Invocation::new(args))?;
        let mut refs = BTreeMap::new();
        for line in stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let text = String::from_utf8_lossy(line);
            let mut fields = text.split('\0');
            let (Some(name), Some(oid), Some(symref)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(crate::unexpected(args, line));
            };
            let value = if symref.is_empty() {
                Value::Oid(oid.to_owned())
            } else {
                Value::Symbolic(symref.to_owned())
            };
            refs.insert(name.to_owned(), value);
        }
        Ok(RefSnapshot {
            refs,
            head_raw: None,
            head: Head::Absent,
            stash_log: None,
            packed: None,
            reftable: true,
            packed_refs: BTreeMap::new(),
            loose: Loose::default(),
        })
    }

    /// Compares the refs now with `before` and puts back what the agent deleted or rewrote
    /// (module docs), unless `rules` allow it. Refs go back in one `git update-ref --stdin`
    /// transaction (all or none), after checking that their objects still exist; HEAD, a
    /// damaged `packed-refs` and the stash reflog are rewritten as files, never through a
    /// symlink.
    pub fn restore_refs(
        &self,
        before: &RefSnapshot,
        rules: &RefRules,
    ) -> Result<RefRestore, GitError> {
        self.restore_refs_watched(before, rules, &|_| false)
    }

    /// [`Git::restore_refs`], its snapshot taken as in [`Git::snapshot_refs_watched`].
    pub fn restore_refs_watched(
        &self,
        before: &RefSnapshot,
        rules: &RefRules,
        unchanged: &dyn Fn(&str) -> bool,
    ) -> Result<RefRestore, GitError> {
        let mut report = RefRestore::default();
        if !before.reftable {
            self.repair_files(before, rules, &mut report)?;
        }
        let now = self.snapshot_refs_watched(Some(before), unchanged)?;
        if now.refs != before.refs || now.stash_log != before.stash_log {
            self.restore_changed(before, &now, rules, &mut report)?;
        }
        report.head_restored = report.restored.iter().any(|f| match &before.head {
            Head::Branch(b) => f.name == *b || f.name == "HEAD",
            _ => f.name == "HEAD",
        });
        Ok(report)
    }

    /// The refs of `before` that differ in `now`, put back as the module docs say.
    fn restore_changed(
        &self,
        before: &RefSnapshot,
        now: &RefSnapshot,
        rules: &RefRules,
        report: &mut RefRestore,
    ) -> Result<(), GitError> {
        let mut plan = Plan::default();
        for (name, old) in &before.refs {
            if name == "refs/stash" && !before.reftable {
                continue;
            }
            let new = now.refs.get(name);
            if new == Some(old) {
                continue;
            }
            if rules.allows(name) {
                report.allowed.push(name.clone());
                continue;
            }
            if *old == Value::Broken {
                continue;
            }
            let what = match new {
                None | Some(Value::Broken) => "deleted",
                Some(Value::Oid(n)) => match old {
                    Value::Oid(o) if may_advance(name) && self.fast_forwards(o, n)? => continue,
                    _ if name.starts_with("refs/heads/") || name.starts_with("refs/remotes/") => {
                        "rewritten"
                    }
                    _ => "changed",
                },
                Some(Value::Symbolic(_)) => "changed",
            };
            plan.push(name, old, what);
        }
        if !before.reftable && !rules.allows("refs/stash") {
            self.plan_stash(before, now, &mut plan);
        }
        self.apply_plan(plan, report)
    }

    /// HEAD and `packed-refs`, repaired as files before any ref is compared: with an empty
    /// HEAD git does not even see a repository, and an unparseable `packed-refs` makes every
    /// `update-ref` fail.
    fn repair_files(
        &self,
        before: &RefSnapshot,
        rules: &RefRules,
        report: &mut RefRestore,
    ) -> Result<(), GitError> {
        // `refs/` replaced by a symlink would have every ref written below outside the
        // repository: the symlink goes (what it points at stays), a real directory comes back.
        let refs_dir = self.common_dir.join("refs");
        if !fs::symlink_metadata(&refs_dir).is_ok_and(|m| m.file_type().is_dir()) {
            crate::meta::remove_any(&refs_dir)
                .and_then(|()| fs::create_dir(&refs_dir))
                .map_err(|source| GitError::Restore {
                    path: refs_dir.clone(),
                    source,
                })?;
            report.restored.push(RefFix {
                name: "refs/".into(),
                what: "damaged",
            });
        }
        let packed_path = self.common_dir.join("packed-refs");
        let packed_now = read_optional(&packed_path)?;
        if packed_now != before.packed && packed_now.as_deref().is_some_and(is_damaged_packed) {
            match &before.packed {
                Some(bytes) => write_file(&packed_path, bytes, 0o644),
                None => crate::meta::remove_any(&packed_path),
            }
            .map_err(|source| GitError::Restore {
                path: packed_path.clone(),
                source,
            })?;
            report.restored.push(RefFix {
                name: "packed-refs".into(),
                what: "damaged",
            });
        }
        let Some(raw) = &before.head_raw else {
            return Ok(());
        };
        let head_path = self.git_dir.join("HEAD");
        let now_raw = read_regular(&head_path);
        if now_raw.as_ref() == Some(raw) {
            return Ok(());
        }
        let now = now_raw.as_deref().map_or(Head::Broken, parse_head);
        let what = match (&before.head, &now) {
            (_, Head::Broken | Head::Absent) => "damaged",
            _ if rules.allows("HEAD") => {
                report.allowed.push("HEAD".into());
                return Ok(());
            }
            (Head::Branch(b), Head::Branch(n)) if b == n => return Ok(()),
            (Head::Detached(o), Head::Detached(n)) if self.fast_forwards(o, n)? => return Ok(()),
            _ => "switched",
        };
        let fix = RefFix {
            name: "HEAD".into(),
            what,
        };
        match write_file(&head_path, raw, 0o644) {
            Ok(()) => report.restored.push(fix),
            Err(e) => report.failed.push((fix, e.to_string())),
        }
        Ok(())
    }

    /// Stash entries the agent dropped (the reflog lost lines) come back, after the ones it
    /// pushed; `refs/stash` points at the newest entry.
    fn plan_stash(&self, before: &RefSnapshot, now: &RefSnapshot, plan: &mut Plan) {
        let old_log = before.stash_log.as_deref().unwrap_or_default();
        let new_log = now.stash_log.as_deref().unwrap_or_default();
        let old_ref = before.refs.get("refs/stash");
        let new_ref = now.refs.get("refs/stash");
        let log_kept = new_log.starts_with(old_log);
        if log_kept && (old_ref.is_none() || new_ref.is_some()) {
            // A stash pushed moves the ref with its log; the ref moved behind an unchanged
            // log (its file or `packed-refs` edited) is put back.
            if let (true, Some(old)) = (new_log == old_log && new_ref != old_ref, old_ref) {
                plan.push("refs/stash", old, "rewritten");
                // update-ref will log the restore in the stash reflog: write it back after.
                plan.stash_log = before.stash_log.clone();
            }
            return;
        }
        // Entries are told apart by their commit: dropping one rewrites the old-id field of
        // the next line, so whole lines do not compare.
        let old_entries: HashSet<&[u8]> = lines(old_log).filter_map(entry_commit).collect();
        let pushed =
            lines(new_log).filter(|l| entry_commit(l).is_none_or(|c| !old_entries.contains(c)));
        let mut merged: Vec<u8> = Vec::with_capacity(old_log.len() + new_log.len());
        for line in lines(old_log).chain(pushed) {
            merged.extend_from_slice(line);
            merged.push(b'\n');
        }
        // Field 2 of a reflog line is the entry's commit.
        let tip = lines(&merged)
            .last()
            .and_then(|l| std::str::from_utf8(l).ok())
            .and_then(|l| l.split(' ').nth(1))
            .map(|oid| Value::Oid(oid.to_owned()))
            .or_else(|| old_ref.cloned());
        if let Some(tip) = tip {
            plan.push("refs/stash", &tip, "dropped stash entries");
        }
        plan.stash_log = Some(merged);
    }

    fn apply_plan(&self, plan: Plan, report: &mut RefRestore) -> Result<(), GitError> {
        if plan.updates.is_empty() && plan.stash_log.is_none() {
            return Ok(());
        }
        let stash_entries: Vec<String> = plan
            .stash_log
            .as_deref()
            .map(|log| {
                lines(log)
                    .filter_map(entry_commit)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let oids: Vec<&str> = plan
            .updates
            .iter()
            .filter_map(|(_, v, _)| match v {
                Value::Oid(o) => Some(o.as_str()),
                Value::Symbolic(_) | Value::Broken => None,
            })
            .chain(stash_entries.iter().map(String::as_str))
            .collect();
        let missing = self.missing_objects(&oids)?;
        for (name, _, _) in &plan.updates {
            self.remove_broken_loose(name);
        }
        let mut input = Vec::new();
        let mut in_transaction = Vec::new();
        for (name, value, what) in plan.updates {
            let fix = RefFix { name, what };
            match value {
                Value::Oid(oid) if missing.contains(&oid) => report.failed.push((
                    fix,
                    format!("its commit {oid} is no longer in the repository"),
                )),
                Value::Oid(oid) => {
                    input.extend_from_slice(format!("update {} {oid}\n", fix.name).as_bytes());
                    in_transaction.push(fix);
                }
                Value::Symbolic(target) => {
                    let args = ["symbolic-ref", fix.name.as_str(), target.as_str()];
                    match self.run(&Invocation::new(&args)) {
                        Ok(_) => report.restored.push(fix),
                        Err(e) => report.failed.push((fix, e.to_string())),
                    }
                }
                // Never planned: a broken ref is not restored to.
                Value::Broken => {}
            }
        }
        if !input.is_empty() {
            let args = [
                "update-ref",
                "-m",
                "ralph: restored after an iteration",
                "--stdin",
            ];
            match self.run_with_input(&Invocation::new(&args), input) {
                Ok(_) => report.restored.extend(in_transaction),
                Err(e) => {
                    let reason = e.to_string();
                    report
                        .failed
                        .extend(in_transaction.into_iter().map(|f| (f, reason.clone())));
                }
            }
        }
        // Last: update-ref above appended its own line to the stash reflog.
        if let Some(log) = plan.stash_log {
            self.write_stash_log(&log, &missing, report);
        }
        Ok(())
    }

    /// The merged stash reflog, without the entries whose commit was pruned.
    fn write_stash_log(&self, log: &[u8], missing: &HashSet<String>, report: &mut RefRestore) {
        // An entry whose commit was pruned cannot come back; keeping its line would make
        // `git stash list` fail.
        let mut kept = Vec::with_capacity(log.len());
        let mut lost = 0;
        for line in lines(log) {
            let gone = entry_commit(line)
                .is_some_and(|c| missing.contains(String::from_utf8_lossy(c).as_ref()));
            if gone {
                lost += 1;
            } else {
                kept.extend_from_slice(line);
                kept.push(b'\n');
            }
        }
        if lost > 0 {
            report.failed.push((
                RefFix {
                    name: "refs/stash".into(),
                    what: "dropped stash entries",
                },
                format!("{lost} stash entries' commits are no longer in the repository"),
            ));
        }
        let log = kept;
        let path = self.common_dir.join("logs/refs/stash");
        if let Err(e) = self
            .real_log_dirs()
            .and_then(|()| write_file(&path, &log, 0o644))
        {
            report.failed.push((
                RefFix {
                    name: "refs/stash".into(),
                    what: "dropped stash entries",
                },
                format!("its reflog could not be written: {e}"),
            ));
        }
    }

    /// `logs/` and `logs/refs/` as real directories, created when missing: the stash reflog
    /// is never written through a symlink the agent put there.
    fn real_log_dirs(&self) -> std::io::Result<()> {
        for dir in [
            self.common_dir.join("logs"),
            self.common_dir.join("logs/refs"),
        ] {
            match fs::symlink_metadata(&dir) {
                Ok(meta) if meta.file_type().is_dir() => {}
                Ok(_) => {
                    return Err(std::io::Error::other(format!(
                        "{} is not a directory (a symlink?); it was left alone",
                        dir.display()
                    )))
                }
                Err(_) => fs::create_dir(&dir)?,
            }
        }
        Ok(())
    }

    /// A loose ref file holding garbage (or a symlink) makes git refuse to update the ref
    /// ("reference broken"): it is removed first. Directories are left alone (they may hold
    /// other refs), and so is any name that could reach outside `refs/`.
    fn remove_broken_loose(&self, name: &str) {
        let safe = name.starts_with("refs/")
            && !name
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..");
        if !safe {
            return;
        }
        let path = self.common_dir.join(name);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            return;
        };
        let broken = if meta.file_type().is_symlink() {
            true
        } else if meta.file_type().is_file() {
            let raw = read_regular(&path).unwrap_or_default();
            let text = String::from_utf8_lossy(&raw);
            let text = text.trim_end();
            !(is_oid(text) || text.starts_with("ref: refs/"))
        } else {
            false
        };
        if broken {
            let _ = fs::remove_file(&path);
        }
    }

    /// Object ids among `oids` the repository no longer has (one `cat-file --batch-check`).
    fn missing_objects(&self, oids: &[&str]) -> Result<HashSet<String>, GitError> {
        if oids.is_empty() {
            return Ok(HashSet::new());
        }
        let mut input = Vec::new();
        for oid in oids {
            input.extend_from_slice(oid.as_bytes());
            input.push(b'\n');
        }
        let args = ["cat-file", "--batch-check=%(objectname)"];
        let stdout = self.run_with_input(&Invocation::new(&args), input)?;
        // Found objects print their id; missing ones `<id> missing`.
        Ok(String::from_utf8_lossy(&stdout)
            .lines()
            .filter_map(|l| l.strip_suffix(" missing"))
            .map(str::to_owned)
            .collect())
    }

    /// `git merge-base --is-ancestor`: whether `new` contains `old` (a fast-forward). A missing
    /// object is "no".
    fn fast_forwards(&self, old: &str, new: &str) -> Result<bool, GitError> {
        crate::check_revision(old)?;
        crate::check_revision(new)?;
        let out = self.run_raw(&Invocation::new(&["merge-base", "--is-ancestor", old, new]))?;
        Ok(out.success())
    }
}

/// Refs that may move forward: branches and remote-tracking branches (new commits, a fetch).
/// Tags, notes, the stash and ralph's refs never move.
fn may_advance(name: &str) -> bool {
    name.starts_with("refs/heads/") || name.starts_with("refs/remotes/")
}

#[derive(Default)]
struct Plan {
    updates: Vec<(String, Value, &'static str)>,
    stash_log: Option<Vec<u8>>,
}

impl Plan {
    fn push(&mut self, name: &str, value: &Value, what: &'static str) {
        self.updates.push((name.to_owned(), value.clone(), what));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_components() {
        assert!(glob(b"refs/heads/*", b"refs/heads/main"));
        assert!(!glob(b"refs/heads/*", b"refs/heads/a/b"));
        assert!(glob(b"refs/heads/**", b"refs/heads/a/b"));
        assert!(glob(b"refs/heads/agent-*", b"refs/heads/agent-1"));
        assert!(!glob(b"refs/tags/*", b"refs/heads/x"));
    }

    #[test]
    fn patterns_are_checked() {
        assert!(check_ref_pattern("HEAD").is_ok());
        assert!(check_ref_pattern("refs/heads/agent/*").is_ok());
        assert!(check_ref_pattern("main").is_err());
        assert!(check_ref_pattern("refs/**").is_err());
        assert!(check_ref_pattern("refs/ralph/*").is_err());
        assert!(check_ref_pattern("refs/*/checkpoints/**").is_err());
        let rules = RefRules::new(&["refs/tags/*".into()]).unwrap();
        assert!(!rules.allows("refs/ralph/x"), "never ralph's refs");
        assert!(rules.allows("refs/tags/v1"));
    }
}
