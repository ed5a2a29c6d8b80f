//! One plan run, from start (or resume) to its end: which stories start (rule 3), what their
//! workers' endings mean, the merge queue (rule 5), blocked stories, the stop conditions, and
//! every transition persisted with its event before it is told (rule 8).
//!
//! The coordinator is one task; workers and the queue's merges are tasks of their own that
//! report back over a channel, so a long merge check never delays starting the next story.

mod finish;
mod merging;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use ralph_core::{Cancel, Handles, Settings, StopReason};
use ralph_git::Git;
use ralph_store::{
    AttemptRecord, PlanRunRecord, QueueEntry, RunState, StoryRecord, StoryState, Write,
};
use ralph_types::exit_codes;
use tokio::sync::mpsc;

use crate::checks::Check;
use crate::dag::Dag;
use crate::events::{LoopSink, PlanEvent, SharedSink, PLAN_STARTED};
use crate::names;
use crate::plan::Plan;
use crate::queue::QueueCtx;
use crate::schedule::{Outcome, Scheduler, State};
use crate::transitions::{is_terminal, record, transition};
use crate::worker::{run_story, LoopMaker, WorkerError, WorkerInput, WorkerOutput};

/// `ralph stories run`'s options.
#[derive(Debug, Clone, Default)]
pub struct PlanRunOptions {
    /// Stories at once (at least 1).
    pub parallel: usize,
    /// Run only these (and what they depend on that is not merged).
    pub only: Vec<String>,
    /// The integration branch (`None`: `ralph/<plan>`).
    pub into: Option<String>,
    /// Start a new plan run even when one is unfinished.
    pub fresh: bool,
}

/// The plan and everything resolved for it.
pub struct PlanInput {
    pub plan: Arc<Plan>,
    pub plan_path: String,
    pub plan_hash: String,
    /// The project's own settings: the queue's checks run with its sandbox and redaction.
    pub settings: Arc<Settings>,
    /// `when = "pre-merge"` gates.
    pub pre_merge: Vec<Check>,
    /// `when = "pre-story"` gates (run by the worker in a new worktree).
    pub pre_story: Vec<Check>,
    /// `when = "post-story"` gates (run by the story's loop; here only to tell a gate broken
    /// on the base from a story that broke it).
    pub post_story: Vec<Check>,
    pub maker: Arc<dyn LoopMaker>,
}

/// How the plan run ended.
#[derive(Debug, Clone)]
pub struct PlanOutcome {
    pub plan_run: PlanRunRecord,
    pub stories: Vec<StoryRecord>,
    pub exit_code: i32,
    pub message: String,
    pub resumed: bool,
}

/// Why a plan run did not run to an ending.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// It cannot start as asked; nothing was changed. The user's to fix (exit 2).
    #[error("{message}")]
    Refused { message: String, hint: String },
    /// ralph's own failure (exit 1); the plan run is resumed once the cause is gone.
    #[error("{0}")]
    Failed(String),
}

impl From<String> for PlanError {
    fn from(e: String) -> PlanError {
        PlanError::Failed(e)
    }
}

enum Msg {
    Worker(usize, Box<Result<WorkerOutput, WorkerError>>),
    Merged(crate::queue::Verdicts),
    /// Story `usize`'s loop committed on its branch (the commit): its merge may be made ahead.
    Committed(usize, String),
}

struct Run {
    input: PlanInput,
    opts: PlanRunOptions,
    repo: Git,
    state_dir: PathBuf,
    handles: Handles,
    cancel: Cancel,
    sink: SharedSink,
    plan_run: PlanRunRecord,
    stories: Vec<StoryRecord>,
    dag: Dag,
    /// Rule 3: what starts next, what a failure blocks, `--only`'s scope.
    sched: Scheduler,
    /// A worker is running (the scheduler's `Running` also covers queued and merging).
    running: Vec<bool>,
    queue: VecDeque<QueueEntry>,
    /// The entries being checked (one group).
    merging: Vec<QueueEntry>,
    next_seq: u32,
    queue_ctx: Arc<QueueCtx>,
    /// Why the plan run stops before every story ended (exit code, message).
    stop: Option<(i32, String)>,
    tx: mpsc::UnboundedSender<Msg>,
    /// The integration tip as this run last saw it (read once, then each landing's commit):
    /// where the next story starts. Someone else moving the branch meanwhile costs a merge
    /// instead of a fast-forward, never a wrong landing (the queue's compare-and-swap).
    tip: Option<String>,
    /// Merged stories' worktrees still at their own paths, clean as ralph committed them: a
    /// story started next takes one as it is ([`WorkerInput::handoff`]); those no story takes
    /// at once are parked off the coordinator's path (`parking`).
    spare: Vec<PathBuf>,
    /// Parks under way, awaited before a story starts without a spare one and before the end.
    parking: Vec<tokio::task::JoinHandle<()>>,
}

/// Run (or resume) the plan to its end.
pub async fn run_plan(
    input: PlanInput,
    opts: PlanRunOptions,
    repo: Git,
    handles: Handles,
    cancel: Cancel,
    sink: SharedSink,
) -> Result<PlanOutcome, PlanError> {
    let dag = Dag::of(&input.plan).map_err(|e| e.to_string())?;
    // Before anything is written: a plan run must not start for a story that is not there.
    if let Some(id) = opts.only.iter().find(|id| dag.index(id).is_none()) {
        return Err(PlanError::Refused {
            message: format!("--only {id}: the plan has no story {id}"),
            hint: "name stories by their `id` in the plan (`ralph stories check` lists them)"
                .into(),
        });
    }
    let state_dir = repo.root.join(".ralph");
    let crate::open::Opened {
        plan_run,
        stories,
        queue,
        next_seq,
        resumed,
    } = crate::open::open_plan_run(&input, &opts, &repo, &handles).await?;
    // ralph writes here while agents run (every story's artifacts, the queue's check logs):
    // made before any agent starts and named to every loop's state check as ralph's own.
    let run_dir = state_dir.join("stories").join(&plan_run.id);
    std::fs::create_dir_all(run_dir.join("merge"))
        .map_err(|e| format!("cannot create {}: {e}", run_dir.display()))?;
    handles.register_artifacts(&run_dir);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sched = scheduler(&input.plan, &dag, &opts.only, &stories)?;
    let queue_ctx = Arc::new(QueueCtx {
        repo: repo.clone(),
        plan: input.plan.clone(),
        plan_run_id: plan_run.id.clone(),
        state_dir: state_dir.clone(),
        integration_ref: names::heads(&plan_run.integration_branch),
        integration_branch: plan_run.integration_branch.clone(),
        settings: input.settings.clone(),
        pre_merge: input.pre_merge.clone(),
        handles: handles.clone(),
        cancel: cancel.clone(),
        maker: Some(input.maker.clone()),
        sink: sink.clone(),
        prebuilt: Default::default(),
    });
    let n = stories.len();
    // A new plan run's integration branch was just put at its base; a resumed one's tip is
    // read when the first story starts.
    let tip = (!resumed).then(|| plan_run.base_commit.clone());
    let mut run = Run {
        input,
        opts,
        repo,
        state_dir,
        handles,
        cancel,
        sink,
        plan_run,
        stories,
        dag,
        sched,
        running: vec![false; n],
        queue: queue.into(),
        merging: Vec::new(),
        next_seq,
        queue_ctx,
        stop: None,
        tx,
        tip,
        spare: Vec::new(),
        parking: Vec::new(),
    };
    // Stories merged before a resume send no event again: what a live view starts from.
    let merged: Vec<&StoryRecord> = run
        .stories
        .iter()
        .filter(|s| s.state == StoryState::Merged)
        .collect();
    let merged_cost: Option<f64> = merged.iter().map(|s| s.cost_usd).sum();
    run.tell(PlanEvent {
        kind: PLAN_STARTED,
        ts: run.now(),
        payload: serde_json::json!({
            "plan": run.input.plan.name, "run_id": run.plan_run.id,
            "integration_branch": run.plan_run.integration_branch,
            "base_commit": run.plan_run.base_commit, "stories": n, "resumed": resumed,
            "parallel": run.opts.parallel, "merged": merged.len(),
            "merged_cost_usd": merged_cost,
        }),
    });
    run.persist_blocked().await?;
    let driven = run.drive(&mut rx).await;
    run.park_spares();
    run.parked().await;
    driven?;
    Ok(run.finish(resumed).await?)
}

impl Run {
    fn now(&self) -> String {
        self.handles.deps.clock.rfc3339()
    }

    fn tell(&self, event: PlanEvent) {
        self.sink
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .plan_event(&event);
    }

    /// Story `i` (as `story`, its other fields already updated) goes to `state`: one write with
    /// its `story.state` event, then the record kept and the event told.
    async fn save_state(
        &mut self,
        i: usize,
        story: &StoryRecord,
        state: StoryState,
        reason: Option<String>,
    ) -> Result<(), String> {
        let (next, ev) = transition(story, state, reason, &self.now());
        let write = Write::SaveStory {
            story: next.clone(),
            events: vec![record(&self.plan_run.id, &ev)],
        };
        self.handles
            .store
            .write(write)
            .await
            .map_err(|e| e.to_string())?;
        self.stories[i] = next;
        self.tell(ev);
        Ok(())
    }

    fn stopping(&self) -> bool {
        self.stop.is_some() || self.cancel.current().is_some() || self.handles.stop.requested()
    }

    async fn drive(&mut self, rx: &mut mpsc::UnboundedReceiver<Msg>) -> Result<(), String> {
        loop {
            if !self.stopping() {
                self.start_ready().await?;
                self.start_merge().await?;
            }
            self.park_spares();
            let busy = self.running.iter().any(|r| *r) || !self.merging.is_empty();
            if !busy {
                return Ok(());
            }
            match rx.recv().await {
                Some(Msg::Worker(i, out)) => self.worker_done(i, *out).await?,
                Some(Msg::Merged(verdicts)) => self.group_done(verdicts).await?,
                Some(Msg::Committed(i, commit)) => self.merge_ahead(i, &commit),
                None => return Ok(()),
            }
        }
    }

    async fn start_ready(&mut self) -> Result<(), String> {
        // A story left running by a crash goes on first, in its worktree, its loop resumed.
        let orphaned: Vec<usize> = (0..self.stories.len())
            .filter(|&i| !self.running[i] && self.sched.in_scope(i))
            .filter(|&i| {
                matches!(
                    self.stories[i].state,
                    StoryState::Running | StoryState::Verifying
                )
            })
            .collect();
        for i in orphaned {
            self.start_story(i).await?;
        }
        let busy = self.running.iter().filter(|r| **r).count();
        let free = self.opts.parallel.max(1).saturating_sub(busy);
        if free == 0 {
            return Ok(());
        }
        let quick = self.quick_merges();
        let (chosen, _held) = self.sched.next_holding(free, |d| quick[d]);
        for i in chosen {
            self.sched.start(i).map_err(|e| e.to_string())?;
            self.start_story(i).await?;
        }
        Ok(())
    }

    /// Per story: it has left its slot and waits in a merge that runs no check (no
    /// `pre-merge` gate, no `auto` criterion of its own), so it will be merged in moments —
    /// what [`crate::Scheduler::next_holding`] may hold a slot for. A merge with checks can take
    /// minutes: no slot waits for it.
    fn quick_merges(&self) -> Vec<bool> {
        let mut quick = vec![false; self.stories.len()];
        if !self.queue_ctx.pre_merge.is_empty() {
            return quick;
        }
        for entry in self.queue.iter().chain(&self.merging) {
            for id in &entry.story_ids {
                let checked = self
                    .input
                    .plan
                    .story(id)
                    .is_some_and(|s| s.auto_criteria().next().is_some());
                if let Some(i) = self.dag.index(id) {
                    quick[i] = !checked && !self.running[i];
                }
            }
        }
        quick
    }

    async fn start_story(&mut self, i: usize) -> Result<(), String> {
        let plan = self.input.plan.clone();
        let id = self.stories[i].story_id.clone();
        if self.stories[i].state == StoryState::Running {
            if let Some(done) = self.completed_before_crash(i)? {
                self.running[i] = true;
                return self.worker_done(i, Ok(done)).await;
            }
        }
        let tip = match &self.tip {
            Some(tip) => tip.clone(),
            None => {
                let integration = names::heads(&self.plan_run.integration_branch);
                let tip = self
                    .repo
                    .rev_parse(&integration)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("the integration branch {integration} is gone"))?;
                self.tip = Some(tip.clone());
                tip
            }
        };
        let branch = names::story_branch(&plan.name, &id);
        let worktree = names::story_worktree(&self.state_dir, &id);
        let resumed = self.stories[i].state == StoryState::Running;
        let mut next = self.stories[i].clone();
        if !resumed {
            next.attempts += 1;
            next.base_commit = Some(tip.clone());
        }
        // A first attempt has no worktree of its own yet: it takes a merged story's.
        let handoff = (next.attempts == 1 && !resumed)
            .then(|| self.spare.pop())
            .flatten();
        if handoff.is_none() {
            // A parked one is looked for: the parks under way are done first.
            self.parked().await;
        }
        next.branch = Some(branch.clone());
        next.worktree = Some(worktree.display().to_string());
        self.save_state(i, &next, StoryState::Running, None).await?;
        self.running[i] = true;
        let attempt = self.stories[i].attempts.max(1);
        let input = WorkerInput {
            plan_run_id: self.plan_run.id.clone(),
            plan: plan.clone(),
            story_id: id.clone(),
            plan_base: self.plan_run.base_commit.clone(),
            start: self.stories[i].base_commit.clone().unwrap_or(tip),
            branch,
            worktree,
            artifacts: names::attempt_artifacts(&self.state_dir, &self.plan_run.id, &id, attempt),
            pre_story: self.input.pre_story.clone(),
            handoff,
        };
        let (repo, maker, handles) = (
            self.repo.clone(),
            self.input.maker.clone(),
            self.handles.clone(),
        );
        let (cancel, sink, tx) = (self.cancel.child(), self.sink.clone(), self.tx.clone());
        tokio::spawn(async move {
            let sink = Box::new(merging::CommitSink {
                inner: LoopSink(sink),
                story: i,
                tx: tx.clone(),
            });
            let out = run_story(input, &repo, maker.as_ref(), handles, cancel, sink).await;
            let _ = tx.send(Msg::Worker(i, Box::new(out)));
        });
        Ok(())
    }

    /// A story left `running` whose loop had completed (ralph died before queueing it): its
    /// ending as the worker would have told it, so its agent does not run again.
    fn completed_before_crash(&self, i: usize) -> Result<Option<WorkerOutput>, String> {
        let (plan_run, id) = (self.plan_run.id.clone(), self.stories[i].story_id.clone());
        let run = self
            .handles
            .store
            .read(move |s| s.latest_story_run(&plan_run, &id))
            .map_err(|e| e.to_string())?;
        let Some(run) = run.filter(|r| r.state == RunState::Completed) else {
            return Ok(None);
        };
        let story = &self.stories[i];
        let branch = names::story_branch(&self.input.plan.name, &story.story_id);
        let head = self
            .repo
            .rev_parse(&names::heads(&branch))
            .map_err(|e| e.to_string())?;
        Ok(Some(WorkerOutput {
            story_id: story.story_id.clone(),
            branch,
            head,
            base: story.base_commit.clone().unwrap_or_default(),
            run_id: run.id,
            stop_reason: StopReason::Completed,
            message: String::new(),
            iterations: run.iteration,
            cost_usd: run.cost_usd,
        }))
    }

    async fn worker_done(
        &mut self,
        i: usize,
        out: Result<WorkerOutput, WorkerError>,
    ) -> Result<(), String> {
        self.running[i] = false;
        let mut story = self.stories[i].clone();
        let (state, reason, attempt) = match out {
            Err(e) => (StoryState::Failed, Some(e.to_string()), None),
            Ok(o) => {
                story.head_commit = o.head.clone();
                // Every attempt's, from what the loops stored: `None` when any call's cost is
                // unknown (a cost is never shown as 0 for unknown).
                let (iterations, cost) = self.figures(&story.story_id).await?;
                story.iterations = iterations;
                story.cost_usd = cost;
                let (state, mut reason) = self.ending(&o);
                if state == StoryState::Failed {
                    if let Some(broken) = self.broken_on_base(&o.base).await? {
                        reason = Some(format!(
                            "{broken}; the story's loop: {}",
                            reason.unwrap_or_default()
                        ));
                    }
                }
                let attempt = AttemptRecord {
                    plan_run_id: self.plan_run.id.clone(),
                    story_id: story.story_id.clone(),
                    n: story.attempts.max(1),
                    run_id: o.run_id.clone(),
                    started_at: story.updated_at.clone(),
                    finished_at: Some(self.now()),
                    outcome: Some(o.stop_reason.as_str().to_string()),
                    base_commit: Some(o.base.clone()),
                };
                (state, reason, Some(attempt))
            }
        };
        let (next, ev) = transition(&story, state, reason, &self.now());
        let events = vec![record(&self.plan_run.id, &ev)];
        let write = match (attempt, state) {
            (_, StoryState::Queued) => self.enqueue(&next, events),
            (Some(attempt), _) => Write::FinishAttempt {
                attempt,
                story: Some(next.clone()),
                events,
            },
            (None, _) => Write::SaveStory {
                story: next.clone(),
                events,
            },
        };
        self.handles
            .store
            .write(write)
            .await
            .map_err(|e| e.to_string())?;
        self.stories[i] = next;
        self.tell(ev);
        if matches!(state, StoryState::Failed | StoryState::NeedsHuman) {
            self.finished(i, Outcome::Failed).await?;
        }
        Ok(())
    }

    /// A story's iterations and cost summed over its attempts' loop runs
    /// ([`ralph_store::Store::story_report`]).
    async fn figures(&self, story_id: &str) -> Result<(u32, Option<f64>), String> {
        let (plan_run, id) = (self.plan_run.id.clone(), story_id.to_string());
        let rows = self
            .handles
            .store
            .exclusive(move |s| s.story_report(&plan_run))
            .await
            .map_err(|e| e.to_string())?;
        Ok(rows
            .into_iter()
            .find(|r| r.story_id == id)
            .map(|r| (r.iterations, r.cost_usd))
            .unwrap_or((0, None)))
    }

    /// What a loop's ending means for its story, and for the plan run.
    fn ending(&mut self, o: &WorkerOutput) -> (StoryState, Option<String>) {
        match o.stop_reason {
            StopReason::Completed => (StoryState::Queued, None),
            StopReason::StopRequested | StopReason::Interrupted | StopReason::Terminated => {
                // Resumable as it is: the next `ralph stories run` goes on in its worktree.
                self.stop
                    .get_or_insert((o.stop_reason.exit_code(), o.message.clone()));
                (StoryState::Running, None)
            }
            StopReason::NeedsHuman => (StoryState::NeedsHuman, Some(o.message.clone())),
            StopReason::Budget if self.handles.budget.as_ref().is_some_and(|b| b.refused()) => {
                self.stop.get_or_insert((
                    exit_codes::BUDGET,
                    format!(
                        "the plan run's budget stopped it ({}); merged stories stay merged, \
                         and `ralph stories run` with a larger --max-cost goes on",
                        o.message
                    ),
                ));
                // Not the story's failure: it goes on when the plan is given more budget.
                (StoryState::Running, None)
            }
            StopReason::MaxIterations => (
                StoryState::Failed,
                // The loop's hint names `ralph run`'s flag; a story's limit is set elsewhere.
                Some(o.message.replace(
                    "raise --max-iterations or refine the prompt",
                    "raise max_iterations (the story's or [defaults] in the plan, or \
                     loop.max_iterations in ralph.toml) and `ralph stories retry` it, or refine \
                     the story",
                )),
            ),
            _ => (StoryState::Failed, Some(o.message.clone())),
        }
    }

    /// A failed story's `post-story` gates, run on the commit it started from: one red there
    /// too is the base's fault (rule 4). Cached by tree, so every story on the same base asks
    /// once.
    async fn broken_on_base(&self, base: &str) -> Result<Option<String>, String> {
        if self.input.post_story.is_empty() {
            return Ok(None);
        }
        let dir = names::base_worktree(&self.state_dir);
        crate::checks::checkout_detached_async(&self.repo, &dir, base).await?;
        let tree = self.repo.tree_of(base).map_err(|e| e.to_string())?;
        let logs = self
            .state_dir
            .join("stories")
            .join(&self.plan_run.id)
            .join("merge")
            .join("base");
        let place = crate::checks::CheckPlace {
            settings: &self.input.settings,
            handles: &self.handles,
            cancel: &self.cancel,
            dir: &dir,
            tree: &tree,
            logs: &logs,
            env: vec![("RALPH_PLAN_RUN_ID".into(), self.plan_run.id.clone())],
            cache: true,
        };
        let results = crate::checks::run_checks(&place, &self.input.post_story).await?;
        Ok(results.iter().find(|r| !r.passed).map(|red| {
            format!(
                "post-story gate {} is broken on base: it fails on {} too, before this story's work",
                red.name,
                &base[..12.min(base.len())]
            )
        }))
    }

    /// On a resume, stories the scheduler derives as blocked (an ancestor failed in an earlier
    /// session) are stored and told as such.
    async fn persist_blocked(&mut self) -> Result<(), String> {
        let blocked: Vec<usize> = (0..self.stories.len())
            .filter(|&d| self.sched.state(d) == State::Blocked)
            .collect();
        self.block(blocked).await
    }

    /// Tell the scheduler how story `i` ended; the stories that blocks are persisted as
    /// `blocked`, each with its reason.
    async fn finished(&mut self, i: usize, outcome: Outcome) -> Result<(), String> {
        let blocked = self.sched.finish(i, outcome).map_err(|e| e.to_string())?;
        self.block(blocked).await
    }

    /// Store `stories` as blocked, each naming the failed story it depends on.
    async fn block(&mut self, stories: Vec<usize>) -> Result<(), String> {
        for d in stories {
            if is_terminal(self.stories[d].state) {
                continue;
            }
            let cause = self
                .dag
                .ancestors(d)
                .into_iter()
                .find(|&a| self.sched.state(a) == State::Failed);
            let why = match cause {
                Some(a) => format!(
                    "depends on {}, which is {}",
                    self.stories[a].story_id,
                    self.stories[a].state.as_str()
                ),
                None => "a story it depends on cannot be merged".to_string(),
            };
            let story = self.stories[d].clone();
            self.save_state(d, &story, StoryState::Blocked, Some(why))
                .await?;
        }
        Ok(())
    }
}

/// The scheduler as the stored stories left it, restricted to `--only`.
fn scheduler(
    plan: &Plan,
    dag: &Dag,
    only: &[String],
    stories: &[StoryRecord],
) -> Result<Scheduler, String> {
    let states: Vec<State> = stories
        .iter()
        .map(|s| match s.state {
            StoryState::Merged => State::Done,
            StoryState::Failed | StoryState::Conflicted | StoryState::NeedsHuman => State::Failed,
            StoryState::Running
            | StoryState::Verifying
            | StoryState::Queued
            | StoryState::Merging => State::Running,
            // Blocked is derived again from the failed stories.
            StoryState::Pending | StoryState::Ready | StoryState::Blocked => State::Pending,
        })
        .collect();
    let mut sched = Scheduler::resume(plan, dag, None, &states).map_err(|e| e.to_string())?;
    if !only.is_empty() {
        // Checked by run_plan before anything was written.
        let idx: Vec<usize> = only.iter().filter_map(|id| dag.index(id)).collect();
        sched.restrict(&idx).map_err(|e| e.to_string())?;
    }
    Ok(sched)
}
