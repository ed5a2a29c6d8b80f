//! Putting the working tree back to one of a run's checkpoints, undoably: the state being
//! replaced is checkpointed first (as `rollback-<UTC yyyymmdd-hhmmss>` in the same run, see
//! [`crate::refs::rollback_name`]), then the target's tree is restored through a temporary
//! index ([`Git::restore_from`]). Only the working tree changes: HEAD, branch, index and stash
//! stay as they are, and what [`Git::restore`] never touches stays too.
//!
//! Finding which checkpoint the user meant, locking the project and telling the user what
//! happened are the caller's (`ralph rollback`).

use std::path::Path;

use crate::{refs, Checkpoint, Git, GitError, RefCommit, RestoreReport};

/// One checkpoint of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCheckpoint {
    pub run_id: String,
    /// Last component of the ref: `0003`, `rollback-20261121-101500`.
    pub name: String,
    /// For an iteration checkpoint, its iteration (`0` = before the first).
    pub iteration: Option<u32>,
    pub commit: RefCommit,
}

impl RunCheckpoint {
    /// "iteration 3", or the checkpoint's name.
    pub fn title(&self) -> String {
        match self.iteration {
            Some(n) => format!("iteration {n}"),
            None => self.name.clone(),
        }
    }
}

/// How [`Git::rollback_to`] runs.
#[derive(Debug, Clone, Copy)]
pub struct RollbackOptions<'a> {
    /// Holds the temporary indexes, as for [`Git::checkpoint`].
    pub scratch_dir: &'a Path,
    /// Compute what would change; change nothing and save nothing.
    pub dry_run: bool,
    /// Seconds since the Unix epoch: names the checkpoint of the replaced state.
    pub now: i64,
}

/// What [`Git::rollback_to`] did (or, on a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackOutcome {
    /// The checkpoint restored.
    pub target: RunCheckpoint,
    pub dry_run: bool,
    /// The checkpoint of the state the rollback replaced (rolling back to it undoes this
    /// rollback); `None` on a dry run and when the working tree already matched the target, so
    /// that there is nothing to undo. Its `skipped_large` are untracked files too large to be
    /// saved, left in place.
    pub saved: Option<Checkpoint>,
    /// Files written and deleted (or that would be), and paths left alone.
    pub report: RestoreReport,
}

impl RollbackOutcome {
    /// The name of the checkpoint that undoes this rollback (`rollback-…`), if any.
    pub fn undo_name(&self) -> Option<&str> {
        let saved = self.saved.as_ref()?;
        refs::parse_checkpoint_ref(&saved.refname).map(|(_, name)| name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error("failed to compute the rollback: {0}")]
    Plan(#[source] GitError),
    #[error("failed to checkpoint the current state before rolling back: {0}")]
    Save(#[source] GitError),
    /// The replaced state is safe in `saved`; rolling back to it puts it back.
    #[error("failed to restore the checkpoint: {source}")]
    Restore {
        saved: Box<Checkpoint>,
        #[source]
        source: GitError,
    },
}

impl Git {
    /// A run's checkpoints, oldest first; iteration checkpoints before a rollback's taken in the
    /// same second.
    pub fn run_checkpoints(&self, run_id: &str) -> Result<Vec<RunCheckpoint>, GitError> {
        let commits = self.list_commits(&refs::run_checkpoints(run_id))?;
        let mut list: Vec<RunCheckpoint> = commits
            .into_iter()
            .filter_map(|commit| {
                let (run, name) = refs::parse_checkpoint_ref(&commit.refname)?;
                Some(RunCheckpoint {
                    run_id: run.to_owned(),
                    name: name.to_owned(),
                    iteration: refs::checkpoint_iteration(name),
                    commit,
                })
            })
            .collect();
        list.sort_by(|a, b| {
            (a.commit.time, a.iteration.is_none(), a.iteration, &a.name).cmp(&(
                b.commit.time,
                b.iteration.is_none(),
                b.iteration,
                &b.name,
            ))
        });
        Ok(list)
    }

    /// Makes the working tree match checkpoint `target` (from [`Git::run_checkpoints`]). The
    /// current state is checkpointed first in the same run, under a name no checkpoint of the
    /// run has yet; when it already matches the target, that checkpoint is dropped again and
    /// nothing changes. A dry run only computes the [`RestoreReport`].
    ///
    /// The caller makes sure nothing else writes to the working tree meanwhile (ralph holds
    /// the project lock).
    pub fn rollback_to(
        &self,
        target: &RunCheckpoint,
        options: &RollbackOptions<'_>,
    ) -> Result<RollbackOutcome, RollbackError> {
        let mut outcome = RollbackOutcome {
            target: target.clone(),
            dry_run: options.dry_run,
            saved: None,
            report: RestoreReport::default(),
        };
        let tree = &target.commit.tree;
        if options.dry_run {
            outcome.report = self
                .restore_plan(tree, options.scratch_dir, None)
                .map_err(RollbackError::Plan)?;
            return Ok(outcome);
        }
        let taken = self
            .run_checkpoints(&target.run_id)
            .map_err(RollbackError::Save)?;
        let name = saved_name(&taken, options.now);
        let saved_ref = refs::named_checkpoint_ref(&target.run_id, &name);
        let message = format!("ralph checkpoint: before rollback to {}", target.title());
        let saved = self
            .checkpoint(&saved_ref, &message, options.scratch_dir)
            .map_err(RollbackError::Save)?;
        if saved.tree == *tree {
            // Nothing differs: there is nothing to undo either.
            let _ = self.delete_ref(&saved_ref);
            return Ok(outcome);
        }
        outcome.report = match self.restore_from(&saved.tree, tree, options.scratch_dir, None) {
            Ok(report) => report,
            Err(source) => {
                return Err(RollbackError::Restore {
                    saved: Box::new(saved),
                    source,
                })
            }
        };
        outcome.saved = Some(saved);
        Ok(outcome)
    }
}

/// `rollback-<UTC yyyymmdd-hhmmss>`, with `-2`, `-3`, … when that second is taken.
fn saved_name(taken: &[RunCheckpoint], now: i64) -> String {
    let base = refs::rollback_name(now);
    let is_taken = |name: &str| taken.iter().any(|c| c.name == name);
    if !is_taken(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|name| !is_taken(name))
        .unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(name: &str) -> RunCheckpoint {
        RunCheckpoint {
            run_id: "r".to_owned(),
            name: name.to_owned(),
            iteration: refs::checkpoint_iteration(name),
            commit: RefCommit {
                refname: refs::named_checkpoint_ref("r", name),
                commit: "c".repeat(40),
                tree: "t".repeat(40),
                time: 1,
                subject: String::new(),
            },
        }
    }

    #[test]
    fn saved_names_never_collide() {
        let now = 1_795_256_100;
        let first = saved_name(&[], now);
        assert_eq!(first, "rollback-20261121-101500");
        let taken = vec![checkpoint("0001"), checkpoint(&first)];
        assert_eq!(saved_name(&taken, now), format!("{first}-2"));
        let taken = vec![checkpoint(&first), checkpoint(&format!("{first}-2"))];
        assert_eq!(saved_name(&taken, now), format!("{first}-3"));
    }

    #[test]
    fn titles_and_undo_names() {
        assert_eq!(checkpoint("0003").title(), "iteration 3");
        assert_eq!(
            checkpoint("rollback-20261121-101500").title(),
            "rollback-20261121-101500"
        );
        let saved = Checkpoint {
            commit: "c".repeat(40),
            tree: "t".repeat(40),
            refname: refs::named_checkpoint_ref("r", "rollback-20261121-101500"),
            skipped_large: Vec::new(),
            index_adopted: false,
        };
        let mut outcome = RollbackOutcome {
            target: checkpoint("0001"),
            dry_run: false,
            saved: None,
            report: RestoreReport::default(),
        };
        assert_eq!(outcome.undo_name(), None);
        outcome.saved = Some(saved);
        assert_eq!(outcome.undo_name(), Some("rollback-20261121-101500"));
    }
}
