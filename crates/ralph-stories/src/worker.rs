//! The worker contract: one story = the ordinary loop engine run in the story's worktree.
//!
//! Inputs ([`WorkerInput`]): the plan, the story id, the commit to fork from, the branch and
//! worktree to use, where the iteration artifacts go. Outputs ([`WorkerOutput`]): the story
//! branch's tip and how the loop ended. The worker shares nothing with the scheduler but the
//! git repository and the state database it writes its loop's run into; it can run in another
//! process (or machine) given both.
//!
//! The loop's settings come from [`LoopMaker`] (ralph-cli resolves ralph.toml with the plan's
//! `[defaults]` and the story's overrides); the worker adds the story prompt, the story's
//! `auto` criteria as completion gates, and its scope (so ralph commits after each iteration).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ralph_core::{
    Agent, Cancel, CleanCheckout, Engine, EventSink, Handles, Loop, RunScope, Settings, StopReason,
};
use ralph_git::Git;

use crate::claim::{prepare_worktree, Prepared};
use crate::names;
use crate::plan::{Plan, Story};

/// What ralph-cli provides: one story's loop settings and agents, prompt included.
pub trait LoopMaker: Send + Sync {
    /// Settings (with `prompt` set to `prompt`, gates for the story added), the agents of
    /// `story`'s loop in `work_root`, and the model tiers it may move up to.
    fn story_loop(
        &self,
        story: &Story,
        prompt: String,
        work_root: &Path,
    ) -> Result<(Settings, Vec<Agent>, Option<ralph_core::Escalation>), String>;

    /// Settings (with `prompt` set) and agents of the merge queue's resolver in `work_root`:
    /// the plan's defaults, no story's overrides.
    fn resolver_loop(
        &self,
        prompt: String,
        work_root: &Path,
    ) -> Result<(Settings, Vec<Agent>), String>;
}

/// Everything one story's attempt needs.
#[derive(Debug, Clone)]
pub struct WorkerInput {
    pub plan_run_id: String,
    pub plan: Arc<Plan>,
    pub story_id: String,
    /// The plan run's base (the user's HEAD when it started): dependencies' changes are told
    /// as the diff from here to `start`.
    pub plan_base: String,
    /// The integration tip the worktree forks from (ignored when the worktree or the branch
    /// already exists: a resumed or retried story continues its own work).
    pub start: String,
    pub branch: String,
    pub worktree: PathBuf,
    pub artifacts: PathBuf,
    /// `when = "pre-story"` gates: run in a newly made worktree before the agent.
    pub pre_story: Vec<crate::checks::Check>,
    /// A merged story's worktree, as ralph left it after committing there, that a new story
    /// takes instead of a parked one: one `git worktree move` where parking and claiming
    /// took three git runs between one story's merge and the next's agent. A hint only (a
    /// worker on another machine ignores it): missing, ignored; not needed, parked here.
    pub handoff: Option<PathBuf>,
}

/// How a story's loop ended.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerOutput {
    pub story_id: String,
    pub branch: String,
    /// The story branch's tip after the loop (`None`: the branch could not be read).
    pub head: Option<String>,
    /// Where the worktree forked (the commit `start` resolved to, or the branch's merge base).
    pub base: String,
    pub run_id: String,
    pub stop_reason: StopReason,
    pub message: String,
    pub iterations: u32,
    pub cost_usd: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("story {story}: {what}: {source}")]
    Git {
        story: String,
        what: &'static str,
        source: ralph_git::GitError,
    },
    #[error("story {story}: {message}")]
    Setup { story: String, message: String },
    #[error("story {story}: {source}")]
    Engine {
        story: String,
        source: ralph_core::EngineError,
    },
}

/// Run one attempt of a story to its loop's end.
pub async fn run_story(
    input: WorkerInput,
    repo: &Git,
    maker: &dyn LoopMaker,
    handles: Handles,
    cancel: Cancel,
    sink: Box<dyn EventSink>,
) -> Result<WorkerOutput, WorkerError> {
    let id = input.story_id.clone();
    let git_err = |what| {
        let story = id.clone();
        move |source| WorkerError::Git {
            story,
            what,
            source,
        }
    };
    let story = input
        .plan
        .story(&id)
        .cloned()
        .ok_or_else(|| WorkerError::Setup {
            story: id.clone(),
            message: "not in the plan".into(),
        })?;
    // What the dependencies changed is asked of git while the worktree is prepared (a story
    // starts at `start` unless it resumes its own branch): the two are on every story's path
    // to its agent, and they do not depend on each other.
    let wants_stat = !story.depends_on.is_empty() && input.start != input.plan_base;
    let early_stat = wants_stat.then(|| {
        let (repo, from, to) = (repo.clone(), input.plan_base.clone(), input.start.clone());
        tokio::task::spawn_blocking(move || repo.diff_stat_summary(&from, &to).ok())
    });
    let Prepared {
        base,
        fresh,
        head,
        tree,
        aliases,
    } = {
        let (repo, input) = (repo.clone(), input.clone());
        tokio::task::spawn_blocking(move || prepare_worktree(&repo, &input))
            .await
            .map_err(|e| WorkerError::Setup {
                story: id.clone(),
                message: format!("preparing its worktree failed: {e}"),
            })?
            .map_err(git_err("prepare its worktree"))?
    };
    let deps_changed = if story.depends_on.is_empty() || base == input.plan_base {
        None
    } else {
        match early_stat {
            Some(task) if base == input.start => task.await.ok().flatten(),
            _ => repo.diff_stat_summary(&input.plan_base, &base).ok(),
        }
    };
    let prompt = crate::prompt::story_prompt(&input.plan, &story, deps_changed.as_deref());
    let (settings, agents, escalation) = maker
        .story_loop(&story, prompt, &input.worktree)
        .map_err(|message| WorkerError::Setup {
            story: id.clone(),
            message,
        })?;
    if fresh && !input.pre_story.is_empty() {
        pre_story(repo, &input, &settings, &handles, &cancel, &base).await?;
    }
    let git = Some(
        repo.open_linked(&input.worktree)
            .map_err(git_err("open its worktree"))?,
    );
    let lp = Loop {
        settings,
        agents,
        scope: RunScope {
            work_root: input.worktree.clone(),
            story: Some(id.clone()),
            artifacts: Some(input.artifacts.clone()),
            plan_run: Some(input.plan_run_id.clone()),
            // Pre-story gates may have written in it (an install): then it is read.
            clean_at: (fresh && input.pre_story.is_empty())
                .then_some(CleanCheckout { commit: head, tree }),
            // Pre-story gates run the user's commands, which may configure git: read again.
            git_aliases: aliases.filter(|_| !fresh || input.pre_story.is_empty()),
        },
        git,
        escalation,
    };
    let engine = Engine::new(lp, handles, cancel, sink).map_err(|source| WorkerError::Engine {
        story: id.clone(),
        source,
    })?;
    let summary = engine.run().await.map_err(|source| WorkerError::Engine {
        story: id.clone(),
        source,
    })?;
    let head = match summary.story_head.clone() {
        Some(head) => Some(head),
        None => repo.rev_parse(&names::heads(&input.branch)).ok().flatten(),
    };
    Ok(WorkerOutput {
        story_id: id,
        branch: input.branch,
        head,
        base,
        run_id: summary.run.id.clone(),
        stop_reason: summary.stop_reason,
        message: summary.message,
        iterations: summary.run.iteration,
        cost_usd: summary.run.cost_usd,
    })
}

/// The `pre-story` gates in the new worktree. A red one fails the story before its agent ran:
/// the base is broken (or the gate is), not the story's work.
async fn pre_story(
    repo: &Git,
    input: &WorkerInput,
    settings: &Settings,
    handles: &Handles,
    cancel: &Cancel,
    base: &str,
) -> Result<(), WorkerError> {
    let setup = |message: String| WorkerError::Setup {
        story: input.story_id.clone(),
        message,
    };
    let tree = repo.tree_of(base).map_err(|e| setup(e.to_string()))?;
    let logs = input.artifacts.join("pre-story");
    let place = crate::checks::CheckPlace {
        settings,
        handles,
        cancel,
        dir: &input.worktree,
        tree: &tree,
        logs: &logs,
        env: vec![("RALPH_STORY_ID".into(), input.story_id.clone())],
        cache: false,
    };
    let results = crate::checks::run_checks(&place, &input.pre_story)
        .await
        .map_err(setup)?;
    match results.iter().find(|r| !r.passed) {
        None => Ok(()),
        Some(red) => Err(setup(format!(
            "pre-story gate {} failed before the agent ran, so the base is broken (not the \
             story): {}",
            red.name,
            red.tail.lines().last().unwrap_or("").trim()
        ))),
    }
}
