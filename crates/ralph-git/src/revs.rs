//! Revisions and refs for stories mode: the compare-and-swap that moves the integration branch
//! (the merge queue's "the commit that was tested is the commit that lands"), branches, and the
//! questions the scheduler asks about history.

use crate::command::{self, Invocation};
use crate::{check_revision, parse, unexpected, Git, GitError};

/// What [`Git::update_ref_cas`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    /// The ref now points at the new value.
    Moved,
    /// The ref did not have the expected old value and was left alone; `actual` is what it
    /// points at (`None`: it does not exist).
    Stale { actual: Option<String> },
}

/// What a ref must point at for [`Git::update_refs_cas`] to move it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect<'a> {
    /// It must not exist yet.
    Absent,
    /// It must point at this commit.
    At(&'a str),
    /// Whatever it points at (a scratch ref written again with the same value).
    Any,
    /// Not written: it must point at the update's commit for the others to be (git's
    /// `verify`). What a candidate was built from stays what it was until it lands.
    Stays,
}

/// Longest [`Git::diff_stat_summary`]: it goes into a prompt.
const SUMMARY_MAX_FILES: usize = 40;
const SUMMARY_MAX_BYTES: usize = 4000;

impl Git {
    /// Moves `refname` (a full name under `refs/`) to `new` only if it still points at
    /// `expected_old` (`None`: only if it does not exist yet), atomically: git checks the old
    /// value under its own ref lock. Takes the repository lock, so ralph's own updates never
    /// fail on each other's ref lock; a mismatch is [`CasOutcome::Stale`], not an error.
    pub fn update_ref_cas(
        &self,
        refname: &str,
        new: &str,
        expected_old: Option<&str>,
    ) -> Result<CasOutcome, GitError> {
        check_full_ref(refname)?;
        check_revision(new)?;
        let zero = self.zero_oid();
        let old = match expected_old {
            Some(old) => {
                check_revision(old)?;
                old
            }
            None => zero.as_str(),
        };
        let _lock = self.repo_lock()?;
        let message = format!("ralph: {refname}");
        let args = ["update-ref", "-m", &message, refname, new, old];
        let out = self.run_raw(&Invocation::new(&args))?;
        if out.success() {
            return Ok(CasOutcome::Moved);
        }
        // Under the lock only a user's own git could hold the ref lock, so a failure is a
        // mismatch exactly when the value differs from the expected one; anything else (an
        // invalid new value, a locked ref) is a real error.
        let actual = self.rev_parse(refname)?;
        if !same_oid(actual.as_deref(), expected_old) {
            return Ok(CasOutcome::Stale { actual });
        }
        Err(command::failed(&args, &out))
    }

    /// [`Git::update_ref_cas`] for several refs in one transaction (`update-ref --stdin`):
    /// every ref moves, or none does. The merge queue writes a candidate's ref and moves the
    /// integration branch to it this way when the candidate has nothing to be checked: one
    /// git run instead of two, and no candidate ref left behind by a tip that moved.
    /// [`CasOutcome::Stale`] names the first ref that did not have its expected value.
    pub fn update_refs_cas(
        &self,
        updates: &[(&str, &str, Expect<'_>)],
    ) -> Result<CasOutcome, GitError> {
        let zero = self.zero_oid();
        let mut input = Vec::new();
        for (refname, new, old) in updates {
            check_full_ref(refname)?;
            check_revision(new)?;
            if *old == Expect::Stays {
                if refname.contains(['\0', '\n']) || new.contains(['\0', '\n']) {
                    return Err(GitError::InvalidRevision((*refname).to_owned()));
                }
                input.extend_from_slice(format!("verify {refname}\0{new}\0").as_bytes());
                continue;
            }
            let old = match old {
                Expect::At(old) => {
                    check_revision(old)?;
                    *old
                }
                Expect::Absent => zero.as_str(),
                // An empty old value: git does not check it.
                Expect::Any | Expect::Stays => "",
            };
            for part in [refname, new, old] {
                if part.contains(['\0', '\n']) {
                    return Err(GitError::InvalidRevision((*part).to_owned()));
                }
            }
            input.extend_from_slice(format!("update {refname}\0{new}\0{old}\0").as_bytes());
        }
        let _lock = self.repo_lock()?;
        let args = ["update-ref", "-m", "ralph: land", "--stdin", "-z"];
        let err = match self.run_with_input(&Invocation::new(&args), input) {
            Ok(_) => return Ok(CasOutcome::Moved),
            Err(e) => e,
        };
        // As in `update_ref_cas`: under the lock a failure is a mismatch exactly when a value
        // differs from the expected one.
        let names: Vec<&str> = updates.iter().map(|(r, _, _)| *r).collect();
        let actual = self.resolve_all(&names)?;
        for ((_, new, expected), actual) in updates.iter().zip(actual) {
            let expected = match expected {
                Expect::Any => continue,
                Expect::Absent => None,
                Expect::At(old) => Some(*old),
                Expect::Stays => Some(*new),
            };
            if !same_oid(actual.as_deref(), expected) {
                return Ok(CasOutcome::Stale { actual });
            }
        }
        Err(err)
    }

    /// The object `rev` names (full id), `None` when it names nothing.
    pub fn rev_parse(&self, rev: &str) -> Result<Option<String>, GitError> {
        check_revision(rev)?;
        let args = &["rev-parse", "--verify", "-q", rev];
        let out = self.run_raw(&Invocation::new(args))?;
        if out.success() {
            return parse::object_id(&out.stdout)
                .map(Some)
                .ok_or_else(|| unexpected(args, &out.stdout));
        }
        if out.code == Some(1) && out.stdout.is_empty() {
            Ok(None)
        } else {
            Err(command::failed(args, &out))
        }
    }

    /// What each of `revs` names (full ids, in order; `None`: nothing), asked in one `git
    /// cat-file --batch-check` instead of one `rev-parse` each: the merge queue reads the
    /// integration tip and every story branch of a candidate at once.
    pub fn resolve_all(&self, revs: &[&str]) -> Result<Vec<Option<String>>, GitError> {
        let mut input = Vec::new();
        for rev in revs {
            check_revision(rev)?;
            if rev.contains(['\n', '\r', '\0']) {
                return Err(crate::GitError::InvalidRevision((*rev).to_owned()));
            }
            input.extend_from_slice(rev.as_bytes());
            input.push(b'\n');
        }
        let args = ["cat-file", "--batch-check=%(objectname)"];
        let stdout = self.run_with_input(&Invocation::new(&args), input)?;
        let text = String::from_utf8_lossy(&stdout);
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() != revs.len() {
            return Err(unexpected(&args, &stdout));
        }
        lines
            .iter()
            .zip(revs)
            .map(|(line, rev)| {
                if line.strip_suffix(" missing") == Some(rev) {
                    Ok(None)
                } else {
                    parse::object_id(line.as_bytes())
                        .map(Some)
                        .ok_or_else(|| unexpected(&args, &stdout))
                }
            })
            .collect()
    }

    /// The commit `rev` names (peeled) and what each of `more` names, in one git run
    /// ([`Git::resolve_all`]); [`GitError::UnknownCommit`] when `rev` names none.
    pub(crate) fn commit_and(
        &self,
        rev: &str,
        more: &[&str],
    ) -> Result<(String, Vec<Option<String>>), GitError> {
        let spec = format!("{rev}^{{commit}}");
        let mut revs = vec![spec.as_str()];
        revs.extend_from_slice(more);
        let mut found = self.resolve_all(&revs)?.into_iter();
        let commit = found
            .next()
            .flatten()
            .ok_or_else(|| GitError::UnknownCommit(rev.to_owned()))?;
        Ok((commit, found.collect()))
    }

    /// The tree of `commit`.
    pub fn tree_of(&self, commit: &str) -> Result<String, GitError> {
        self.peeled(commit, "tree")
    }

    fn peeled(&self, rev: &str, kind: &str) -> Result<String, GitError> {
        check_revision(rev)?;
        let spec = format!("{rev}^{{{kind}}}");
        let args = &["rev-parse", "--verify", spec.as_str()];
        let stdout = self.run(&Invocation::new(args))?;
        parse::object_id(&stdout).ok_or_else(|| unexpected(args, &stdout))
    }

    /// `a` is `b` or one of its ancestors.
    pub fn is_ancestor(&self, a: &str, b: &str) -> Result<bool, GitError> {
        check_revision(a)?;
        check_revision(b)?;
        let args = &["merge-base", "--is-ancestor", a, b];
        let out = self.run_raw(&Invocation::new(args))?;
        match out.code {
            Some(0) => Ok(true),
            Some(1) if out.stderr.is_empty() => Ok(false),
            _ => Err(command::failed(args, &out)),
        }
    }

    /// The best common ancestor of `a` and `b`; `None` for unrelated histories.
    pub fn merge_base(&self, a: &str, b: &str) -> Result<Option<String>, GitError> {
        check_revision(a)?;
        check_revision(b)?;
        let args = &["merge-base", a, b];
        let out = self.run_raw(&Invocation::new(args))?;
        match out.code {
            Some(0) => parse::object_id(&out.stdout)
                .map(Some)
                .ok_or_else(|| unexpected(args, &out.stdout)),
            Some(1) if out.stdout.is_empty() && out.stderr.is_empty() => Ok(None),
            _ => Err(command::failed(args, &out)),
        }
    }

    /// `git diff --stat` from `a` to `b` (commits or trees) as text for a prompt: at most
    /// 40 files (git's own `... N more` line says how many were left out) and 4,000 bytes, cut
    /// at a line end. Empty when nothing changed.
    pub fn diff_stat_summary(&self, a: &str, b: &str) -> Result<String, GitError> {
        check_revision(a)?;
        check_revision(b)?;
        let count = format!("--stat-count={SUMMARY_MAX_FILES}");
        let args = &[
            "diff-tree",
            "-r",
            "-M",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--stat=100",
            count.as_str(),
            a,
            b,
            "--",
        ];
        let stdout = self.run(&Invocation::new(args))?;
        Ok(cap_lines(
            &String::from_utf8_lossy(&stdout),
            SUMMARY_MAX_BYTES,
        ))
    }

    /// Commits reachable from `tip` and not from `base`, oldest first (as they were made).
    pub fn commits_between(&self, base: &str, tip: &str) -> Result<Vec<String>, GitError> {
        check_revision(base)?;
        check_revision(tip)?;
        let range = format!("{base}..{tip}");
        let args = &["rev-list", "--reverse", range.as_str(), "--"];
        let stdout = self.run(&Invocation::new(args))?;
        String::from_utf8_lossy(&stdout)
            .lines()
            .map(|line| parse::object_id(line.as_bytes()).ok_or_else(|| unexpected(args, &stdout)))
            .collect()
    }

    /// Creates branch `name` (short name, e.g. `ralph/plan`) at `at`. An existing branch is
    /// never moved: [`GitError::BranchExists`], unless it already points at that commit.
    pub fn create_branch(&self, name: &str, at: &str) -> Result<(), GitError> {
        check_revision(name)?;
        let _lock = self.repo_lock()?;
        let full = format!("refs/heads/{name}");
        let (wanted, found) = self.commit_and(at, &[&full])?;
        if let Some(Some(existing)) = found.into_iter().next() {
            return if existing == wanted {
                Ok(())
            } else {
                Err(GitError::BranchExists {
                    branch: name.to_owned(),
                    at: existing,
                    wanted,
                })
            };
        }
        // `git branch` validates the name as a branch name (`check-ref-format --branch`).
        self.run(&Invocation::new(&["branch", "--no-track", name, &wanted]))?;
        Ok(())
    }

    /// `refs/heads/<name>` exists.
    pub fn branch_exists(&self, name: &str) -> Result<bool, GitError> {
        check_revision(name)?;
        Ok(self.rev_parse(&format!("refs/heads/{name}"))?.is_some())
    }

    /// Fast-forwards the branch checked out in the worktree at `root` to `commit`
    /// (`git merge --ff-only`): the files follow, and uncommitted changes stay where git can
    /// keep them (git refuses, changing nothing, when one would be overwritten). Anything but
    /// a fast-forward is refused by git.
    pub fn fast_forward_in(&self, root: &std::path::Path, commit: &str) -> Result<(), GitError> {
        check_revision(commit)?;
        let _lock = self.repo_lock()?;
        self.run_in(
            root,
            &Invocation::new(&["merge", "--ff-only", "-q", "--no-stat", commit]),
        )?;
        Ok(())
    }

    /// A ref under `prefix` (`refs/`, `refs/ralph/`) whose history contains `commit` (the
    /// first by name), if any: a commit some ref reaches is kept by git however its worktree
    /// goes.
    pub fn ref_containing(&self, commit: &str, prefix: &str) -> Result<Option<String>, GitError> {
        check_revision(commit)?;
        check_revision(prefix)?;
        let args = &[
            "for-each-ref",
            "--count=1",
            "--format=%(refname)",
            "--contains",
            commit,
            prefix,
        ];
        let stdout = self.run(&Invocation::new(args))?;
        let text = String::from_utf8_lossy(&stdout);
        Ok(text.lines().next().map(str::to_owned))
    }

    /// The all-zero id of the repository's object format ("must not exist" to update-ref).
    pub(crate) fn zero_oid(&self) -> String {
        "0".repeat(self.empty_tree.len())
    }
}

/// update-ref takes the expected old value as any revision; compare ids by prefix so an
/// abbreviated expected value that matches is not called stale.
fn same_oid(actual: Option<&str>, expected: Option<&str>) -> bool {
    match (actual, expected) {
        (None, None) => true,
        (Some(a), Some(e)) => a.starts_with(e) || e.starts_with(a),
        _ => false,
    }
}

fn check_full_ref(refname: &str) -> Result<(), GitError> {
    if refname.starts_with("refs/") && refname.len() > "refs/".len() {
        Ok(())
    } else {
        Err(GitError::InvalidRevision(refname.to_owned()))
    }
}

/// Whole lines of `text` that fit in `max_bytes`, with a last line saying what was cut.
fn cap_lines(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut cut = 0;
    for line in text.lines() {
        if cut == 0 && out.len() + line.len() < max_bytes.saturating_sub(40) {
            out.push_str(line);
            out.push('\n');
        } else {
            cut += 1;
        }
    }
    out.push_str(&format!("... {cut} more lines\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_summaries_are_cut_at_line_ends() {
        let text: String = (0..500).map(|i| format!(" f{i:03} | 1 +\n")).collect();
        let out = cap_lines(&text, 200);
        assert!(out.len() <= 200, "{}", out.len());
        assert!(out.ends_with(" more lines\n"));
        assert!(out
            .lines()
            .all(|l| l.starts_with(" f") || l.starts_with("...")));
        assert_eq!(cap_lines("short\n", 200), "short\n");
    }

    #[test]
    fn expected_ids_compare_by_prefix() {
        assert!(same_oid(Some("abcdef"), Some("abc")));
        assert!(!same_oid(Some("abcdef"), Some("abd")));
        assert!(!same_oid(None, Some("abc")));
        assert!(same_oid(None, None));
    }

    #[test]
    fn only_full_ref_names() {
        assert!(check_full_ref("refs/heads/ralph/plan").is_ok());
        for bad in ["HEAD", "main", "refs/", "-x"] {
            assert!(check_full_ref(bad).is_err(), "{bad}");
        }
    }
}
