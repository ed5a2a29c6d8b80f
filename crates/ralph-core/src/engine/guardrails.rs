//! Guardrails after the agent ran, compared with the state before it: a tripped guard reverts
//! the whole iteration; a change to a protected path is put back; more files changed than
//! `max_files_changed` are reverted (twice in a row stops); `.git` config and hooks are put
//! back; and the stuck detector asks for one recovery iteration, then gives up.

use super::decision::Facts;
use super::outcome::Outcome;
use super::{Engine, Stop};
use crate::events::{EventBody, RunEvent, StopReason};
use crate::safety::{Stuck, StuckVerdict};
use ralph_git::RepoMeta;

/// Guardrail state carried from one iteration to the next.
pub(super) struct GuardState {
    /// Blocked commands and protected paths, checked on every tool use as it streams.
    pub guard: crate::guard::Guard,
    pub stuck: Stuck,
    /// The working tree's state before the next iteration (`None`: take a snapshot first).
    pub pre_tree: Option<String>,
    /// Iterations in a row whose changes exceeded `max_files_changed` and were reverted.
    pub over_limit: u32,
    /// Untracked files the last snapshot or checkpoint left out for their size.
    pub uncaptured: Vec<String>,
    /// The last ref snapshot: the next one reuses what it read from unchanged files.
    pub last_refs: Option<ralph_git::RefSnapshot>,
    /// The loose refs' directories, watched so a snapshot reads only what changed.
    pub refs_watch: super::refs_watch::RefsWatch,
    /// The real index holds this tree: the checkpoint just taken adopted its index (a story's
    /// worktree), so the story's commit need not stage the files again. Only until that
    /// commit.
    pub index_tree: Option<String>,
    /// Protected paths the agent tried to change in this iteration and the sandbox refused
    /// (from its own error messages): nothing changed, but the attempt stops the run as a
    /// change would.
    pub refused_protected: Vec<String>,
    /// A story's loop: the commit ralph's last story commit put on the branch, while it is
    /// the last thing that moved it (`None` after an iteration ralph did not commit: the
    /// agent's own commits may have moved it). What the worker reports as the story's tip
    /// without asking git again.
    pub story_head: Option<String>,
}

impl GuardState {
    pub fn new(guard: crate::guard::Guard) -> GuardState {
        GuardState {
            guard,
            stuck: Stuck::default(),
            pre_tree: None,
            over_limit: 0,
            uncaptured: Vec::new(),
            last_refs: None,
            refs_watch: Default::default(),
            index_tree: None,
            refused_protected: Vec::new(),
            story_head: None,
        }
    }
}

/// What the tree and `.git` looked like before the agent ran.
pub(super) struct Before {
    pub tree: Option<String>,
    /// `.git`'s config and hooks, where git says they are (linked worktrees included).
    pub meta: Option<RepoMeta>,
    /// Every ref, HEAD and the stash reflog (see `git_integrity.rs`).
    pub refs: Option<ralph_git::RefSnapshot>,
    /// Files too large for checkpoints, stamped (see `uncaptured.rs`).
    pub uncaptured: Vec<(String, Option<super::uncaptured::Stamp>)>,
    /// The index, kept for when HEAD or its branch is put back.
    pub index: Option<ralph_git::KeptIndex>,
    /// [`crate::shared::OwnRefs::mark`] before `refs` was taken.
    pub own_refs: usize,
}

/// What the iteration did to the tree, and what the guardrails made of it.
#[derive(Default)]
pub(super) struct After {
    pub diff: Option<ralph_git::DiffStat>,
    pub checkpoint_ref: Option<String>,
    /// The iteration's changes were undone.
    pub reverted: bool,
    /// Some of them were (protected paths put back): the work tree is no longer the
    /// checkpoint's tree.
    pub restored_paths: bool,
    pub stop: Option<Stop>,
    /// For the next prompt (a revert's reason).
    pub feedback: Option<String>,
    /// `checkpoint.created`, committed with the iteration.
    pub events: Vec<RunEvent>,
    /// Files too large for checkpoints that the iteration deleted or changed: no rollback can
    /// bring them back.
    pub unrestorable: Vec<String>,
}

/// The stuck detector's verdict on this iteration.
#[derive(Default)]
pub(super) struct Progress {
    pub recovery: Option<String>,
    pub stop: Option<Stop>,
    pub events: Vec<RunEvent>,
}

impl Engine {
    /// The state to go back to if a guard trips: the last checkpoint when it was taken right
    /// after the previous iteration, else a snapshot now.
    pub(super) fn snapshot_before(&mut self) -> Before {
        if self.checkpoints().is_some() && self.guards.pre_tree.is_none() {
            self.guards.pre_tree = self.snapshot_now();
        }
        let own_refs = self.handles.own_refs.mark();
        // The agent runs next and may commit: the tip is no longer known.
        self.guards.story_head = None;
        Before {
            own_refs,
            tree: self.guards.pre_tree.clone(),
            meta: self.git.as_ref().map(RepoMeta::capture),
            refs: self.snapshot_refs(),
            uncaptured: self.stamp_uncaptured(),
            index: self
                .git
                .as_ref()
                .and_then(|g| g.keep_index(&self.state_dir)),
        }
    }

    /// The repository, when checkpoints are on.
    pub(super) fn checkpoints(&self) -> Option<&ralph_git::Git> {
        self.git
            .as_ref()
            .filter(|_| self.settings.checkpoint_every > 0)
    }

    /// Checkpoint (every `checkpoint_every` iterations, at a completion candidate, and when a
    /// guard tripped: it also records what is about to be reverted), diff against the state
    /// before, then the guardrails.
    pub(super) fn after_agent(
        &mut self,
        n: u32,
        before: &Before,
        outcome: &Outcome,
        candidate: bool,
    ) -> After {
        let mut after = After::default();
        // Before any git command of ralph's: `.git` as it was, refs put back.
        let integrity = self.check_git_integrity(n, before);
        if integrity.repo_gone {
            after.stop = integrity.stop;
            return after;
        }
        // A story's commit comes after the checkpoint and the guardrails; the HEAD it commits
        // on is read meanwhile (the agent is gone and the refs are back as they were: nothing
        // moves HEAD until that commit).
        let head = self.prefetch_head();
        let every = self.settings.checkpoint_every;
        let mut post: Option<String> = None;
        let mut snapshot = None;
        let head = if self.checkpoints().is_some()
            && (n.is_multiple_of(every) || candidate || outcome.trip.is_some())
        {
            let (taken, head) = self.checkpoint_begin(n, head);
            snapshot = taken;
            post = snapshot.as_ref().map(|s| s.tree.clone());
            head
        } else {
            head.and_then(|h| h.join().ok()).and_then(Result::ok)
        };
        // The story's commit of that tree, made while it is diffed (the checkpoint's commit
        // and ref are written meanwhile too).
        let made = snapshot
            .as_ref()
            .and_then(|s| self.prefetch_story_commit(n, head.as_ref(), s));
        if self.checkpoints().is_some() && before.tree.is_some() && post.is_none() {
            post = self.snapshot_now();
        }
        if let (Some(git), Some(pre), Some(post)) = (self.checkpoints(), &before.tree, &post) {
            after.diff = git.diff_stat(pre, post).ok();
        }
        // A tripped guard reverts what the checkpoint recorded: its record comes first.
        if outcome.trip.is_some() {
            self.push_checkpoint(&mut after);
        }
        after.unrestorable = self.lost_uncaptured(&before.uncaptured);
        self.guard_iteration(n, outcome, before, post.as_deref(), &mut after);
        super::git_integrity::merge_stop(&mut after.stop, integrity.stop);
        // The next iteration starts from what is on disk now.
        self.guards.pre_tree = if after.reverted {
            before.tree.clone()
        } else {
            post
        };
        if after.reverted && self.run.last_checkpoint.is_some() {
            self.run.last_checkpoint = before.tree.clone();
        }
        // After the guardrails: what they reverted is not committed.
        // A story commit of the checkpoint's tree only if the work tree still is that tree.
        let committed = self.story_commit(n, after.reverted || after.restored_paths, head, made);
        // The checkpoint's ref was written while the guardrails ran and the story commit
        // landed.
        self.push_checkpoint(&mut after);
        after.events.extend(committed);
        after
    }

    /// The checkpoint [`Engine::checkpoint_begin`] began, settled: its event and ref.
    fn push_checkpoint(&mut self, after: &mut After) {
        if let Some(ev) = self.settled_checkpoint() {
            if let EventBody::CheckpointCreated { r#ref, .. } = &ev.body {
                after.checkpoint_ref = Some(r#ref.clone());
            }
            after.events.push(ev);
        }
    }

    /// Put the tree (or `paths` of it) back as it was before the iteration.
    fn restore(
        &self,
        pre: Option<&str>,
        post: Option<&str>,
        paths: Option<&[String]>,
    ) -> Result<ralph_git::RestoreReport, String> {
        match (&self.git, pre, post) {
            (Some(git), Some(pre), Some(post)) => git
                .restore_from(post, pre, &self.state_dir, paths)
                .map_err(|e| e.to_string()),
            _ => Err("no checkpoint to restore from (not a git repository?)".to_string()),
        }
    }

    fn guard_iteration(
        &mut self,
        n: u32,
        outcome: &Outcome,
        before: &Before,
        post: Option<&str>,
        after: &mut After,
    ) {
        let pre = before.tree.as_deref();
        if let Some(t) = &outcome.trip {
            let restored = self.restore(pre, post, None);
            after.reverted = restored.is_ok();
            let how = match &restored {
                Ok(r) => format!("{} files restored", r.written.len() + r.deleted.len()),
                Err(e) => format!("could not restore: {e}"),
            };
            self.audit_record(
                ralph_store::audit::kinds::COMMAND_BLOCKED,
                serde_json::json!({
                    "iteration": n, "tool": t.tool, "what": t.what,
                    "rule": t.blocked.rule, "reason": t.blocked.reason, "restored": how,
                }),
            );
            after.stop = Some(Stop::new(
                StopReason::Safety,
                format!(
                    "stopped by a safety guard: the agent tried `{}` ({}); it was killed and the \
                     iteration reverted ({how})",
                    t.what, t.blocked
                ),
            ));
        } else if let Some(d) = after.diff.clone() {
            self.guard_changes(n, &d, pre, post, after);
        }
        let refused = std::mem::take(&mut self.guards.refused_protected);
        if after.stop.is_none() && !refused.is_empty() {
            self.audit_record(
                ralph_store::audit::kinds::GUARD_TRIPPED,
                serde_json::json!({
                    "iteration": n, "guard": "protected_paths", "paths": refused,
                    "refused_by": "sandbox",
                }),
            );
            after.stop = Some(Stop::new(
                StopReason::Safety,
                format!(
                    "stopped by a safety guard: the agent tried to change protected path{} {} \
                     (safety.protected_paths); the sandbox refused it, so nothing changed",
                    if refused.len() == 1 { "" } else { "s" },
                    refused.join(", ")
                ),
            ));
        }
    }

    /// Protected paths among the changed files, and the file-count limit.
    fn guard_changes(
        &mut self,
        n: u32,
        d: &ralph_git::DiffStat,
        pre: Option<&str>,
        post: Option<&str>,
        after: &mut After,
    ) {
        let protected: Vec<String> = d
            .paths
            .iter()
            .filter(|p| self.guards.guard.paths.matches(p).is_some())
            .cloned()
            .collect();
        let max = self.settings.safety.max_files_changed;
        if !protected.is_empty() {
            let restored = self.restore(pre, post, Some(&protected));
            // Even a failed restore may have written some of them back.
            after.restored_paths = true;
            self.audit_record(
                ralph_store::audit::kinds::GUARD_TRIPPED,
                serde_json::json!({
                    "iteration": n, "guard": "protected_paths", "paths": protected,
                    "restored": restored.is_ok(),
                }),
            );
            after.stop = Some(Stop::new(
                StopReason::Safety,
                format!(
                    "stopped by a safety guard: the agent changed protected path{} {} \
                     (safety.protected_paths); {}",
                    if protected.len() == 1 { "" } else { "s" },
                    protected
                        .iter()
                        .map(|p| ralph_git::display_path(p))
                        .collect::<Vec<_>>()
                        .join(", "),
                    match restored {
                        Ok(_) => "restored from the checkpoint".to_string(),
                        Err(e) => format!("restoring failed: {e}"),
                    }
                ),
            ));
        } else if d.files_changed > max {
            let restored = self.restore(pre, post, None);
            after.reverted = restored.is_ok();
            self.guards.over_limit += 1;
            self.audit_record(
                ralph_store::audit::kinds::GUARD_TRIPPED,
                serde_json::json!({
                    "iteration": n, "guard": "max_files_changed",
                    "files_changed": d.files_changed, "max": max, "reverted": after.reverted,
                }),
            );
            after.feedback = Some(format!(
                "Your changes in iteration {n} touched {} files, more than the {max} allowed \
                 (safety.max_files_changed), so ralph reverted them. Make a smaller, focused \
                 change.",
                d.files_changed
            ));
            if self.guards.over_limit >= 2 {
                after.stop = Some(Stop::new(
                    StopReason::Safety,
                    format!(
                        "stopped by a safety guard: two iterations in a row changed more than \
                         {max} files (safety.max_files_changed); both were reverted"
                    ),
                ));
            }
        } else {
            self.guards.over_limit = 0;
        }
    }

    /// Feed the stuck detector: no file change, or the same error again, `limit` times in a
    /// row earns one recovery iteration; reaching it again gives up. Not after a completion or
    /// a guardrail stop.
    pub(super) fn observe_progress(
        &mut self,
        facts: &Facts,
        outcome: &Outcome,
        safety_stopped: bool,
    ) -> Progress {
        let mut progress = Progress::default();
        if facts.completed || safety_stopped {
            return progress;
        }
        let err = outcome.agent.error.map(|c| {
            (
                c.as_str(),
                outcome.agent.error_message.as_deref().unwrap_or(""),
            )
        });
        let limit = self.settings.safety.no_progress_iterations;
        match self.guards.stuck.observe(facts.files_changed, err, limit) {
            StuckVerdict::Fine => {}
            StuckVerdict::Recover => {
                progress.recovery = Some(crate::safety::recovery_feedback(limit));
                progress.events.push(self.event(EventBody::Warning {
                    message: format!(
                        "no progress in {limit} iterations: the next one is asked to analyse \
                         the failures and change approach"
                    ),
                }));
            }
            StuckVerdict::GiveUp => {
                progress.stop = Some(Stop::new(
                    StopReason::GaveUp,
                    format!(
                        "gave up: still no progress after a recovery iteration ({limit} \
                         iterations without a file change or with the same error); see \
                         `ralph logs` and rethink the task"
                    ),
                ));
            }
        }
        progress
    }
}
