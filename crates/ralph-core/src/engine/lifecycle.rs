//! A run's beginning and end: create it or resume the unfinished one of the same scope, announce
//! it (and take the iteration-0 checkpoint), and finish it with a stop reason.

use std::time::Instant;

use ralph_store::{RunRecord, RunState, Write};

use super::{
    accounting, checkpoint, guardrails, state_guard, Engine, EngineError, Loop, RunSummary, Stop,
};
use crate::cancel::Cancel;
use crate::events::{EventBody, EventSink};
use crate::shared::Handles;

impl Engine {
    /// Prepare a run: resume the unfinished one of this scope unless `settings.fresh`, else
    /// create one.
    pub fn new(
        lp: Loop,
        handles: Handles,
        cancel: Cancel,
        sink: Box<dyn EventSink>,
    ) -> Result<Engine, EngineError> {
        let Loop {
            settings,
            agents,
            scope,
            git,
            escalation,
        } = lp;
        if agents.is_empty() {
            return Err(EngineError::NoAgent);
        }
        let mut guard = crate::guard::Guard::new(
            &settings.safety.blocked_commands,
            &settings.safety.protected_paths,
        )?;
        // `git nuke` is checked as the `reset --hard` the repository's alias expands to. No
        // aliases readable: git would not find them either.
        let aliases = match scope.git_aliases.clone() {
            Some(read) => Some(read),
            None => git.as_ref().and_then(|g| g.aliases().ok()),
        };
        guard.commands = guard.commands.with_git_aliases(aliases.unwrap_or_default());
        let needs_ledger =
            settings.limits.daily_usd.is_some() || settings.limits.monthly_usd.is_some();
        if needs_ledger && handles.ledger.is_none() {
            return Err(EngineError::NoLedger);
        }
        super::enforceable::check_at_start(&settings.limits, &agents)?;
        let now = handles.deps.clock.rfc3339();
        let (fresh, story) = (settings.fresh, scope.story.clone());
        let plan_run = scope.plan_run.clone();
        let deps = handles.deps.clone();
        let start_at = now.clone();
        let (run, history) = handles.store.read(move |store| {
            let resumable = match (&plan_run, &story) {
                _ if fresh => None,
                (Some(plan_run), Some(story)) => store.resumable_story_run(plan_run, story)?,
                _ => store.resumable_run(story.as_deref())?,
            };
            let run = match resumable {
                Some(mut run) => {
                    // The run row is derived from committed iterations; recompute it so a
                    // crash between writes can never leave totals that disagree with them.
                    store.rebuild_run_totals(&mut run)?;
                    run.state = RunState::Running;
                    run.stop_reason = None;
                    run.exit_code = None;
                    run.sessions += 1;
                    run
                }
                None => {
                    let mut id = deps.ids.next_id(deps.clock.now());
                    // Ids are unique per project: never reuse (and so overwrite) another run.
                    while store.run(&id)?.is_some() {
                        id = deps.ids.next_id(deps.clock.now());
                    }
                    let mut run = RunRecord::new(id, &start_at, story);
                    run.plan_run_id = plan_run;
                    run
                }
            };
            let history = accounting::History::load(store, &run.id)?;
            Ok((run, history))
        })?;
        let state_dir = settings.root.join(".ralph");
        let artifacts = scope
            .artifacts
            .clone()
            .unwrap_or_else(|| state_dir.join("runs").join(&run.id));
        handles.register_artifacts(&artifacts);
        let project_key = accounting::project_key(&settings.root);
        let seed = handles.deps.seed.max(1);
        // Only a story's worktree, which ralph owns: the single loop never puts the user's
        // own project back on its own.
        let interrupted = run.current_iteration.filter(|_| scope.plan_run.is_some());
        let completed_before = history.completed_at.filter(|_| run.sessions > 1);
        let mut engine = Engine {
            interrupted,
            completed_before,
            elapsed_before: run.elapsed_s,
            current: 0,
            escalation,
            plateau: super::escalation::Plateau::default(),
            acct: accounting::Accounting::new(history, project_key),
            guards: guardrails::GuardState::new(guard),
            audit: checkpoint::Audit::default(),
            state_watch: state_guard::StateWatch::default(),
            pending_checkpoint: None,
            git,
            handles,
            cancel,
            sink,
            run,
            state_dir,
            artifacts,
            session_start: Instant::now(),
            rng: seed,
            scope,
            agents,
            settings,
        };
        engine.run.backend = engine.agents[0].backend.name().to_string();
        engine.run.model = engine.agents[0].model.clone();
        engine.run.max_iterations = engine.settings.limits.max_iterations;
        engine.run.budget_usd = engine.settings.limits.max_cost_usd;
        engine.run.pid = Some(std::process::id());
        engine.run.current_iteration = None;
        engine.run.updated_at = now;
        Ok(engine)
    }

    /// `run.started`, then the iteration-0 checkpoint: the state before the agent touched
    /// anything.
    pub(super) async fn start(&mut self) -> Result<(), EngineError> {
        // A resumed run does not announce again what it announced before.
        let spend = self.ledger_spend_for_caps().await.unwrap_or(Ok((0.0, 0.0)));
        self.acct.alerted = self.due_alerts(spend);
        let resumed = self.resumed();
        self.touch();
        let started = self.event(EventBody::RunStarted {
            backend: self.run.backend.clone(),
            model: self.run.model.clone(),
            max_iterations: self.run.max_iterations,
            iteration: self.run.iteration,
            resumed,
            checkpoints: self.checkpoints().is_some(),
            sandbox: self.settings.sandbox.agents.label(),
            sandbox_gaps: self.settings.sandbox.agents.enforced.gaps.clone(),
        });
        // Not waited for (start-up latency): a failure surfaces at the next write waited for.
        self.handles.store.post(Write::SaveRun {
            run: self.run.clone(),
            events: vec![started.to_record()],
            durable: false,
        });
        self.audit.started = Some(serde_json::json!({
            "backend": self.run.backend, "resumed": resumed, "iteration": self.run.iteration,
            "protected_paths": self.settings.safety.protected_paths,
            "story": self.scope.story,
            "sandbox": self.settings.sandbox.agents.label(),
            "sandbox_gates": self.settings.sandbox.gates.label(),
            "sandbox_gaps": self.settings.sandbox.agents.enforced.gaps,
        }));
        let sb = &self.settings.sandbox;
        let gaps = !(sb.agents.enforced.gaps.is_empty() && sb.gates.enforced.gaps.is_empty());
        if gaps && !resumed {
            let data = serde_json::json!({
                "agents": sb.agents.label(), "gates": sb.gates.label(),
                "agents_gaps": sb.agents.enforced.gaps, "gates_gaps": sb.gates.enforced.gaps,
            });
            self.audit_record(ralph_store::audit::kinds::SANDBOX_UNENFORCED, data);
        }
        self.emit(&[started]);
        self.warn_unenforced_caps();
        self.recover_unaccounted_spend().await?;

        if self.checkpoints().is_some()
            && self.run.last_checkpoint.is_none()
            && !self.checkpoint_clean_later(self.run.iteration)
        {
            if let Some(ev) = self.checkpoint(self.run.iteration) {
                self.save_run(std::slice::from_ref(&ev), false).await?;
                self.emit(&[ev]);
                // Just taken: it is the state the first iteration starts from.
                self.guards.pre_tree = self.run.last_checkpoint.clone();
            }
        }
        if let Some(k) = self.interrupted.take() {
            self.set_aside_interrupted(k);
        }
        Ok(())
    }

    /// A story's loop resumed after ralph died in the middle of iteration `k`: what that
    /// iteration had changed so far is kept as checkpoint `interrupted-<k>` and the worktree
    /// goes back to the checkpoint before it, so the iteration runs again from the state it
    /// first ran from (an agent that appends to a file would otherwise do its work twice, and
    /// the story would land it twice). Nothing is lost: the ref keeps it, and `ralph rollback`
    /// can bring it back.
    fn set_aside_interrupted(&mut self, k: u32) {
        // With a checkpoint every iteration the last one is the state iteration `k` started
        // from; with fewer it may be older, and going back to it would undo committed work.
        if self.settings.checkpoint_every != 1 {
            return;
        }
        let (Some(pre), Some(git)) = (
            self.run.last_checkpoint.clone(),
            self.checkpoints().cloned(),
        ) else {
            return;
        };
        let name = format!("interrupted-{k:04}");
        let refname = ralph_git::refs::named_checkpoint_ref(&self.run.id, &name);
        let msg = format!(
            "ralph checkpoint: run {} iteration {k} as a crash left it",
            self.run.id
        );
        let options = ralph_git::CheckpointOptions {
            max_untracked_bytes: Some(self.settings.max_untracked_bytes),
            adopt_index: false,
        };
        let saved = match git.checkpoint_with(&refname, &msg, &self.state_dir, &options) {
            Ok(cp) => cp,
            Err(e) => {
                self.warn(format!(
                    "iteration {k} was interrupted by a crash and its changes could not be set \
                    aside ({e}); it runs again on top of them"
                ));
                return;
            }
        };
        self.handles.own_refs.record(&saved.refname, &saved.commit);
        if saved.tree == pre {
            return;
        }
        match git.restore_from(&saved.tree, &pre, &self.state_dir, None) {
            Ok(_) => {
                self.guards.pre_tree = Some(pre);
                self.warn(format!(
                    "iteration {k} was interrupted by a crash: what it had changed is kept as \
                    {refname}, and the worktree is back as it was before it, to run it again"
                ));
            }
            Err(e) => self.warn(format!(
                "iteration {k} was interrupted by a crash and the worktree could not be put \
                    back ({e}); its changes are kept as {refname} and it runs again on top of them"
            )),
        }
    }

    pub(super) async fn finish(mut self, stop: Stop) -> Result<RunSummary, EngineError> {
        // A run that ended before its agent's call returned (a limit, an error) still writes
        // its first checkpoint's ref and event.
        let settled = self.settle_checkpoint().await;
        self.release_ledger_reservations().await;
        let Stop { reason, message } = stop;
        let message = self.settings.redactor.redact(&message).into_owned();
        self.touch();
        self.audit_record(
            ralph_store::audit::kinds::RUN_FINISHED,
            serde_json::json!({
                "stop_reason": reason.as_str(), "exit_code": reason.exit_code(),
                "iterations": self.run.iteration, "message": message,
            }),
        );
        self.run.state = reason.state();
        self.run.stop_reason = Some(reason.as_str().to_string());
        self.run.exit_code = Some(reason.exit_code());
        self.run.current_iteration = None;
        let ev = self.event(EventBody::RunFinished {
            stop_reason: reason,
            exit_code: reason.exit_code(),
            message: message.clone(),
            iterations: self.run.iteration,
            elapsed_s: self.run.elapsed_s,
            cost_usd: self.run.cost_usd,
            cost_unknown_iterations: self.acct.cost_unknown,
            tokens: self.run.tokens,
        });
        // Closing an inotify descriptor waits for the kernel to retire every watch on it (an
        // SRCU grace period: 10-20 ms with a worktree's directories watched). Nothing waits for
        // that: the watches are dropped off the loop's path, each on a thread of its own (the
        // grace periods overlap), and before the run's last write, so that a process ending
        // right after its last loop (whose exit waits for them) waits as little as it can.
        let state_watch = std::mem::take(&mut self.state_watch);
        let refs_watch = std::mem::take(&mut self.guards.refs_watch);
        let _ = std::thread::Builder::new()
            .name("ralph-unwatch".into())
            .spawn(move || drop(state_watch));
        let _ = std::thread::Builder::new()
            .name("ralph-unwatch".into())
            .spawn(move || drop(refs_watch));
        // Shown even if it cannot be recorded: the summary line is printed on every exit.
        let saved = self.save_run(std::slice::from_ref(&ev), true).await;
        self.emit(&[ev]);
        saved?;
        settled?;
        Ok(RunSummary {
            run: self.run,
            stop_reason: reason,
            exit_code: reason.exit_code(),
            message,
            story_head: self.guards.story_head.take(),
        })
    }
}
