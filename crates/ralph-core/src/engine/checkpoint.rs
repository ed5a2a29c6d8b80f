//! Checkpoints (ghost commits under `refs/ralph/checkpoints/<run>/<NNNN>`, see ralph-git) and
//! the hash-chained audit log whose head each checkpoint carries.

use super::{Engine, EngineError};
use crate::events::{EventBody, RunEvent};

/// This run's use of the shared audit log (`Handles::audit`).
#[derive(Default)]
pub(super) struct Audit {
    /// The run.started record, written before this run's first record.
    pub started: Option<serde_json::Value>,
    /// Said once per session that the log cannot be used.
    pub warned: bool,
}

type Written = Result<ralph_git::Checkpoint, ralph_git::GitError>;

/// Iteration `n`'s checkpoint, being written on a thread of its own (see
/// [`Engine::checkpoint_clean_later`], [`Engine::checkpoint_begin`]); written already when no
/// thread could be had.
pub(super) struct Pending {
    n: u32,
    write: Result<std::thread::JoinHandle<Written>, Written>,
}

/// A checkpoint written on a thread, its ref recorded as ralph's own the moment it is written:
/// another loop's ref guard comparing refs meanwhile must not take it for its agent's (and
/// put it back) while this loop's agent still runs.
fn own_ref(own: &crate::shared::OwnRefs, written: Written) -> Written {
    if let Ok(cp) = &written {
        own.record(&cp.refname, &cp.commit);
    }
    written
}

/// A story commit being made by [`Engine::prefetch_story_commit`].
pub(super) type CommitMade =
    std::thread::JoinHandle<Result<Option<ralph_git::StoryCommit>, ralph_git::GitError>>;

/// HEAD being read by [`Engine::prefetch_head`].
pub(super) type HeadRead =
    std::thread::JoinHandle<Result<ralph_git::HeadState, ralph_git::GitError>>;

impl Engine {
    /// Take a checkpoint for iteration `n`; returns its event. A failure is a warning, never a
    /// reason to stop the user's run.
    pub(super) fn checkpoint(&mut self, n: u32) -> Option<RunEvent> {
        let (refname, msg) = self.checkpoint_name(n)?;
        let git = self.checkpoints()?;
        let options = ralph_git::CheckpointOptions {
            max_untracked_bytes: Some(self.settings.max_untracked_bytes),
            // A story's worktree: ralph owns its index and commits this tree next.
            adopt_index: self.scope.plan_run.is_some(),
        };
        let clean = self
            .scope
            .clean_at
            .as_ref()
            .filter(|_| n == 0 && self.run.last_checkpoint.is_none());
        let taken = match clean {
            Some(c) => git.checkpoint_clean(&refname, &msg, &c.commit, c.tree.as_deref()),
            None => git.checkpoint_with(&refname, &msg, &self.state_dir, &options),
        };
        self.checkpoint_taken(n, taken)
    }

    /// Iteration `n`'s ref and commit message. The audit chain's head goes into the commit:
    /// an anchor outside the log, so removing its last records is detectable (`ralph audit
    /// verify`).
    fn checkpoint_name(&mut self, n: u32) -> Option<(String, String)> {
        self.checkpoints()?;
        let audit = self.audit_log();
        let refname = ralph_git::refs::checkpoint_ref(&self.run.id, n);
        let mut msg = format!("ralph checkpoint: run {} iteration {n}", self.run.id);
        if let Some(story) = &self.scope.story {
            msg.push_str(&format!(" (story {story})"));
        }
        if let Some(head) = audit
            .as_ref()
            .and_then(|a| a.lock().head().map(str::to_string))
        {
            msg.push_str("\n\n");
            msg.push_str(&ralph_store::audit::anchor_line(&head));
        }
        Some((refname, msg))
    }

    /// What a checkpoint's tree means for the run: the state the next iteration starts from,
    /// and what the index holds when it was adopted.
    fn checkpoint_tree(&mut self, tree: &str, index_adopted: bool, skipped_large: &[String]) {
        self.guards.index_tree = index_adopted.then(|| tree.to_owned());
        self.run.last_checkpoint = Some(tree.to_owned());
        self.guards.uncaptured = skipped_large.to_vec();
    }

    /// A checkpoint taken: its tree the run's state ([`Engine::checkpoint_tree`]), its ref
    /// ralph's own write; its event.
    fn checkpoint_taken(
        &mut self,
        n: u32,
        taken: Result<ralph_git::Checkpoint, ralph_git::GitError>,
    ) -> Option<RunEvent> {
        if let Ok(cp) = &taken {
            self.checkpoint_tree(&cp.tree, cp.index_adopted, &cp.skipped_large);
        }
        self.checkpoint_written(n, taken)
    }

    /// A checkpoint's commit and ref written: recorded as ralph's own, audited; its event.
    /// The run's state is the caller's ([`Engine::checkpoint_taken`]; a checkpoint written on
    /// a thread took it when the thread began).
    fn checkpoint_written(
        &mut self,
        n: u32,
        taken: Result<ralph_git::Checkpoint, ralph_git::GitError>,
    ) -> Option<RunEvent> {
        match taken {
            Ok(cp) => {
                self.handles.own_refs.record(&cp.refname, &cp.commit);
                let data = serde_json::json!({
                    "iteration": n, "ref": cp.refname, "commit": cp.commit,
                    "skipped_large": cp.skipped_large,
                });
                self.audit_record(ralph_store::audit::kinds::CHECKPOINT, data);
                Some(self.event(EventBody::CheckpointCreated {
                    iteration: n,
                    r#ref: cp.refname,
                    commit: cp.commit,
                }))
            }
            Err(e) => {
                self.warn(format!("checkpoint failed: {e}"));
                None
            }
        }
    }

    /// A story's clean checkout whose tree is known (a reused worktree just switched): that
    /// tree is at once the state the first iteration starts from and the run's last
    /// checkpoint (the crash-safe record: it is the story branch's own tree), and the ghost
    /// commit and its ref are written on a thread while the agent starts, settled by
    /// [`Engine::settle_checkpoint`] when its call returns. They were two git runs between one
    /// story's start and its agent. `false`: not such a checkout, nothing done.
    pub(super) fn checkpoint_clean_later(&mut self, n: u32) -> bool {
        let Some((commit, tree)) = self
            .scope
            .clean_at
            .as_ref()
            .filter(|_| n == 0 && self.run.last_checkpoint.is_none())
            .and_then(|c| Some((c.commit.clone(), c.tree.clone()?)))
        else {
            return false;
        };
        let Some((refname, msg)) = self.checkpoint_name(n) else {
            return false;
        };
        let Some(git) = self.checkpoints().cloned() else {
            return false;
        };
        let (t, own) = (tree.clone(), self.handles.own_refs.clone());
        let spawned = std::thread::Builder::new()
            .name("ralph-checkpoint".into())
            .spawn(move || {
                own_ref(
                    &own,
                    git.checkpoint_clean(&refname, &msg, &commit, Some(&t)),
                )
            });
        let Ok(thread) = spawned else {
            return false;
        };
        self.pending_checkpoint = Some(Pending {
            n,
            write: Ok(thread),
        });
        self.checkpoint_tree(&tree, false, &[]);
        self.guards.pre_tree = Some(tree);
        true
    }

    /// Iteration `n`'s checkpoint, its tree taken now and its commit and ref written on a
    /// thread while the caller diffs that tree, the guardrails look at it and a story commits
    /// it (settled by [`Engine::settled_checkpoint`]): two git runs off the path between an
    /// agent's end and the story's merge. Returns the
    /// snapshot; `None` (a warning said) when it could not be taken.
    ///
    /// `head`: a story's HEAD being read ([`Engine::prefetch_head`]), waited for once the
    /// snapshot is taken and returned: the checkpoint goes on that commit, not on whatever HEAD
    /// is when its thread runs, which the story's commit moves meanwhile (a checkpoint on the
    /// story commit would make an unmerged story look kept by a ralph ref to `stories clean`).
    pub(super) fn checkpoint_begin(
        &mut self,
        n: u32,
        head: Option<HeadRead>,
    ) -> (Option<ralph_git::Snapshot>, Option<ralph_git::HeadState>) {
        let snapshot = self.checkpoint_snapshot(n);
        let head = head.and_then(|h| h.join().ok()).and_then(Result::ok);
        let Some((snapshot, refname, msg, git)) = snapshot else {
            return (None, head);
        };
        let parent = head.as_ref().map(|h| h.commit.clone());
        let taken = snapshot.clone();
        let spawned = std::thread::Builder::new()
            .name("ralph-checkpoint".into())
            .spawn({
                let (git, own) = (git.clone(), self.handles.own_refs.clone());
                let (refname, msg, parent) = (refname.clone(), msg.clone(), parent.clone());
                move || {
                    own_ref(
                        &own,
                        git.checkpoint_of(&refname, &msg, taken, parent.as_deref()),
                    )
                }
            });
        let write = spawned
            .map_err(|_| git.checkpoint_of(&refname, &msg, snapshot.clone(), parent.as_deref()));
        self.pending_checkpoint = Some(Pending { n, write });
        (Some(snapshot), head)
    }

    /// [`Engine::checkpoint_begin`]'s snapshot, made the run's state, with the checkpoint's
    /// name and repository.
    fn checkpoint_snapshot(
        &mut self,
        n: u32,
    ) -> Option<(ralph_git::Snapshot, String, String, ralph_git::Git)> {
        let (refname, msg) = self.checkpoint_name(n)?;
        let git = self.checkpoints()?.clone();
        let options = ralph_git::CheckpointOptions {
            max_untracked_bytes: Some(self.settings.max_untracked_bytes),
            // A story's worktree: ralph owns its index and commits this tree next.
            adopt_index: self.scope.plan_run.is_some(),
        };
        let snapshot = match git.snapshot_with(&self.state_dir, &options) {
            Ok(s) => s,
            Err(e) => {
                self.warn(format!("checkpoint failed: {e}"));
                return None;
            }
        };
        // The run's state now: the guardrails and the story commit that follow the diff go
        // by it while the ref is written; a guard's revert changes it after.
        self.checkpoint_tree(
            &snapshot.tree,
            snapshot.index_adopted,
            &snapshot.skipped_large,
        );
        Some((snapshot, refname, msg, git))
    }

    /// The checkpoint being written on a thread ([`Engine::checkpoint_clean_later`],
    /// [`Engine::checkpoint_begin`]), written: audited, its event (its tree became the run's
    /// state when the thread began; its ref is recorded as ralph's own by the thread).
    pub(super) fn settled_checkpoint(&mut self) -> Option<RunEvent> {
        let Pending { n, write } = self.pending_checkpoint.take()?;
        let taken = match write {
            Ok(thread) => thread.join().unwrap_or_else(|_| {
                Err(ralph_git::GitError::Unexpected {
                    args: "commit-tree".into(),
                    output: "the thread writing the checkpoint stopped".into(),
                })
            }),
            Err(written) => written,
        };
        self.checkpoint_written(n, taken)
    }

    /// [`Engine::settled_checkpoint`], its event told and saved.
    pub(super) async fn settle_checkpoint(&mut self) -> Result<(), EngineError> {
        if let Some(ev) = self.settled_checkpoint() {
            self.save_run(std::slice::from_ref(&ev), false).await?;
            self.emit(&[ev]);
        }
        Ok(())
    }

    /// A story's loop: its worktree's HEAD, read on a thread of its own for
    /// [`Engine::story_commit`].
    pub(super) fn prefetch_head(&self) -> Option<HeadRead> {
        self.scope.plan_run.as_ref()?;
        let git = self.git.clone()?;
        let root = self.scope.work_root.clone();
        std::thread::Builder::new()
            .name("ralph-head".into())
            .spawn(move || git.head_state(&root))
            .ok()
    }

    /// A story's loop: iteration `n`'s commit of a checkpoint's tree that its index holds
    /// (`snapshot`), made on `head` on a thread while the tree is diffed and the guardrails
    /// look at it. It lands in [`Engine::story_commit`] only if they leave that tree as it
    /// is; otherwise it is an object nothing points at.
    pub(super) fn prefetch_story_commit(
        &self,
        n: u32,
        head: Option<&ralph_git::HeadState>,
        snapshot: &ralph_git::Snapshot,
    ) -> Option<CommitMade> {
        let head = head.filter(|_| snapshot.index_adopted)?.clone();
        let (msg, story) = self.story_message(n)?;
        let git = self.git.clone()?;
        let root = self.scope.work_root.clone();
        let tree = snapshot.tree.clone();
        std::thread::Builder::new()
            .name("ralph-commit".into())
            .spawn(move || {
                let trailers = [("Ralph-Story", story.as_str())];
                git.story_commit(&root, &head, &tree, &msg, &trailers)
            })
            .ok()
    }

    /// A story's iteration `n`: its commit message, and the story.
    fn story_message(&self, n: u32) -> Option<(String, String)> {
        self.scope.plan_run.as_ref()?;
        let story = self.scope.story.clone()?;
        Some((
            format!("ralph: {story} iteration {n}\n\nRun {}.", self.run.id),
            story,
        ))
    }

    /// A story's loop: commit what the worktree holds now on the story branch, with the
    /// `Ralph-Story` trailer. The agent's own commits stay as they are (ralph only adds one on
    /// top); nothing changed, no commit. `made`: the commit
    /// [`Engine::prefetch_story_commit`] made, taken when it is of the tree to commit. A
    /// failure is a warning: the work is still on disk and the next iteration's commit takes
    /// it.
    pub(super) fn story_commit(
        &mut self,
        n: u32,
        reverted: bool, // files were put back since the checkpoint,
        head: Option<ralph_git::HeadState>,
        made: Option<CommitMade>,
    ) -> Option<RunEvent> {
        // What the index holds is known only right after the checkpoint that adopted it, and
        // only if no guard put files back since.
        let staged = self
            .guards
            .index_tree
            .take()
            .filter(|t| !reverted && self.run.last_checkpoint.as_ref() == Some(t));
        let made = made
            .and_then(|m| m.join().ok())
            .and_then(Result::ok)
            .filter(|c| match (c, &staged, &head) {
                (Some(c), Some(tree), Some(head)) => c.tree == *tree && c.parent == head.commit,
                (None, Some(tree), Some(head)) => head.tree == *tree,
                _ => false,
            });
        let (msg, story) = self.story_message(n)?;
        let git = self.git.clone()?;
        let trailers = [("Ralph-Story", story.as_str())];
        let root = &self.scope.work_root;
        let committed = git.repo_lock().and_then(|_lock| match (&staged, made) {
            (Some(_), Some(Some(c))) => git.land_story_commit(root, &c).map(Some),
            (Some(_), Some(None)) => Ok(None),
            (Some(tree), None) => git.commit_staged(root, tree, head.as_ref(), &msg, &trailers),
            (None, _) => git.commit_all(root, &msg, &trailers),
        });
        self.guards.story_head = committed.as_ref().ok().and_then(Clone::clone);
        match committed {
            Ok(Some(commit)) => {
                // The branch moved is ralph's own write: another loop's ref guard takes it as
                // such instead of asking git whether it fast-forwarded.
                if let Some(branch) = self.guards.last_refs.as_ref().and_then(|r| r.head_branch()) {
                    self.handles.own_refs.record(branch, &commit);
                }
                Some(self.event(EventBody::StoryCommitted {
                    iteration: n,
                    commit,
                }))
            }
            Ok(None) => None,
            Err(e) => {
                self.warn(format!("ralph could not commit story {story}'s work: {e}"));
                None
            }
        }
    }

    /// The shared log, opened on first use, with this run's run.started record written first.
    pub(super) fn audit_log(&mut self) -> Option<ralph_store::SharedAudit> {
        match self.handles.audit.get() {
            Ok(None) => None,
            Ok(Some(log)) => {
                let log = log.clone();
                if let Some(data) = self.audit.started.take() {
                    let _ = log.lock().append(
                        ralph_store::audit::kinds::RUN_STARTED,
                        &self.run.id,
                        data,
                    );
                }
                Some(log)
            }
            Err(e) => {
                self.audit.started = None;
                if !self.audit.warned {
                    self.audit.warned = true;
                    self.warn(format!(
                        "the audit log could not be opened ({e}); running without it"
                    ));
                }
                None
            }
        }
    }

    /// Append to the audit log. A failure is said loudly but does not stop the user's run.
    pub(super) fn audit_record(&mut self, kind: &str, data: serde_json::Value) {
        // Guard records quote what the agent ran, which may hold a secret.
        let text = data.to_string();
        let data = match self.settings.redactor.redact(&text) {
            std::borrow::Cow::Borrowed(_) => data,
            // Never fall back to the unredacted value.
            std::borrow::Cow::Owned(clean) => serde_json::from_str(&clean)
                .unwrap_or_else(|_| serde_json::json!({ "redacted": clean })),
        };
        let Some(audit) = self.audit_log() else {
            return;
        };
        let appended = audit.lock().append(kind, &self.run.id, data);
        if let Err(e) = appended {
            self.warn(format!("the audit log could not be written: {e}"));
        }
    }
}
