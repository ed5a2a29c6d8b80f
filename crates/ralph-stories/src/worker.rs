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

use crate::names;
use crate::plan::{Plan, Story};

/// What ralph-cli provides: one story's loop settings and agents, prompt included.
pub trait LoopMaker: Send + Sync {
    /// Settings (with `prompt` set to `prompt`, gates for the story added) and the agents of
    /// `story`'s loop in `work_root`.
    fn story_loop(
        &self,
        story: &Story,
        prompt: String,
        work_root: &Path,
    ) -> Result<(Settings, Vec<Agent>), String>;

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
    let (settings, agents) =
        maker
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

/// The story's worktree, as it should be before the loop starts: kept as it is when it exists
/// (a resumed story goes on where it was), attached to the story branch when only the branch
/// exists (a retry continues its own commits), else a parked one taken or a new one created
/// from `start`. Returns the commit the story's work is based on, and whether the worktree is
/// new.
///
/// The repository lock is held while the worktree list is read and changed; a parked worktree
/// is claimed under it by moving it to the story's name, and switched to the story's branch
/// after it (see [`Git::worktree_reuse`]).
fn prepare_worktree(repo: &Git, input: &WorkerInput) -> Result<Prepared, ralph_git::GitError> {
    let claimed = claim_worktree(repo, input)?;
    let fresh = !matches!(claimed, Claim::Kept);
    // The aliases the engine's command guard needs, read where the engine would read them
    // (the worktree: a `config.worktree` counts) while the worktree is switched: a checkout
    // changes no configuration, and it is one git run less on the way to the agent.
    let aliases = {
        let (repo, dir) = (repo.clone(), input.worktree.clone());
        std::thread::Builder::new()
            .name("ralph-aliases".into())
            .spawn(move || repo.open_linked(&dir).and_then(|g| g.aliases()).ok())
            .ok()
    };
    let reused = match claimed {
        Claim::Kept | Claim::Made => None,
        Claim::Parked(parked) => {
            match repo.worktree_reuse(&input.worktree, &input.branch, &input.start) {
                Ok(checkout) => Some(checkout),
                // Dirty (rule 6): put back as it was, and the story gets a new worktree.
                Err(ralph_git::GitError::WorktreeDirty { .. }) => {
                    let _lock = repo.repo_lock()?;
                    repo.worktree_move(&input.worktree, &parked)?;
                    repo.worktree_add(&input.worktree, &input.branch, &input.start)?;
                    None
                }
                Err(e) => return Err(e),
            }
        }
    };
    let (head, tree) = match reused {
        Some(c) => (c.commit, Some(c.tree)),
        None => (
            repo.rev_parse(&names::heads(&input.branch))?
                .unwrap_or_else(|| input.start.clone()),
            None,
        ),
    };
    let base = if head == input.start {
        head.clone()
    } else {
        repo.merge_base(&head, &input.start)?
            .unwrap_or_else(|| head.clone())
    };
    Ok(Prepared {
        base,
        fresh,
        head,
        tree,
        aliases: aliases.and_then(|t| t.join().ok()).flatten(),
    })
}

/// What [`claim_worktree`] did.
enum Claim {
    /// The story's worktree was there, on its branch: kept as it is.
    Kept,
    /// Attached to the existing story branch, or added.
    Made,
    /// A parked or handed-off worktree is now at the story's path, not yet switched; the
    /// path given is where it goes back to if it turns out dirty.
    Parked(PathBuf),
}

/// The repository-wide part of [`prepare_worktree`], under the lock.
fn claim_worktree(repo: &Git, input: &WorkerInput) -> Result<Claim, ralph_git::GitError> {
    let _lock = repo.repo_lock()?;
    // Both are read-only and every story start waits on them: asked of git at once.
    let (list, exists) = std::thread::scope(|scope| {
        let exists = scope.spawn(|| repo.branch_exists(&input.branch));
        let list = repo.worktrees();
        let exists = exists.join().unwrap_or_else(|_| {
            Err(ralph_git::GitError::Unexpected {
                args: "rev-parse".into(),
                output: "the thread asking it stopped".into(),
            })
        });
        (list, exists)
    });
    let (list, exists) = (list?, exists?);
    let handoff = input
        .handoff
        .as_ref()
        .filter(|h| list.iter().any(|w| crate::checks::same_dir(&w.path, h)));
    let (claimed, taken) = claim_from(repo, input, &list, exists, handoff)?;
    if let Some(h) = handoff.filter(|_| !taken) {
        // Not taken (the story had a worktree or a branch of its own): parked, as the
        // coordinator would have; where it cannot be, it stays (a later `stories clean`).
        let _ = repo.worktree_park(h, &parked_path(h));
    }
    Ok(claimed)
}

/// Where a worktree that was at `dir` is parked.
fn parked_path(dir: &Path) -> PathBuf {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    dir.with_file_name(names::parked_name(&name))
}

/// [`claim_worktree`]'s choice, from the worktree list and whether the story branch exists;
/// `true` with it when the handed-off worktree was taken.
fn claim_from(
    repo: &Git,
    input: &WorkerInput,
    list: &[ralph_git::WorktreeInfo],
    exists: bool,
    handoff: Option<&PathBuf>,
) -> Result<(Claim, bool), ralph_git::GitError> {
    if let Some(entry) = list
        .iter()
        .find(|w| crate::checks::same_dir(&w.path, &input.worktree))
    {
        let ours = entry.branch.as_deref() == Some(names::heads(&input.branch).as_str());
        if ours || exists {
            return Ok((Claim::Kept, false));
        }
        // Detached, or on another story's branch, with no story branch yet: a parked or
        // handed-off worktree claimed but never switched (ralph stopped in between).
        // Switched now (only if clean); were it dirty, it goes to a parked name of its own.
        return Ok((Claim::Parked(parked_path(&input.worktree)), false));
    }
    if input.worktree.exists() {
        // A directory git does not know (a crash inside `git worktree add`, a user's copy):
        // not ralph's to delete, and in the way. Moved aside, kept.
        repo.worktree_prune()?;
        set_aside(&input.worktree);
    }
    if exists {
        repo.worktree_attach(&input.worktree, &input.branch)?;
        return Ok((Claim::Made, false));
    }
    if let Some(h) = handoff {
        repo.worktree_move(h, &input.worktree)?;
        return Ok((Claim::Parked(parked_path(h)), true));
    }
    if let Some(parked) = parked_in(list, &input.worktree) {
        repo.worktree_move(&parked, &input.worktree)?;
        return Ok((Claim::Parked(parked), false));
    }
    repo.worktree_add(&input.worktree, &input.branch, &input.start)?;
    Ok((Claim::Made, false))
}

/// The worktree [`prepare_worktree`] left.
struct Prepared {
    /// Where the story's work forks from the integration tip it started on.
    base: String,
    /// Made just now (a new, reused or re-attached worktree): the clean checkout of `head`.
    fresh: bool,
    /// The story branch's tip.
    head: String,
    /// Its tree, when the preparation learnt it.
    tree: Option<String>,
    /// The repository's git aliases, read from the worktree.
    aliases: Option<Vec<(String, String)>>,
}

/// A parked worktree (a merged story's) in `list` to take for the story at `worktree`, if
/// there is one. Its cleanness is checked once, by the reuse itself.
fn parked_in(list: &[ralph_git::WorktreeInfo], worktree: &Path) -> Option<PathBuf> {
    let dir = worktree.parent()?;
    list.iter()
        .find(|w| {
            w.branch.is_none()
                && w.path
                    .parent()
                    .is_some_and(|p| crate::checks::same_dir(p, dir))
                && w.path
                    .file_name()
                    .is_some_and(|n| names::is_parked(&n.to_string_lossy()))
        })
        .map(|w| w.path.clone())
}

/// Move `dir` to `.ralph/worktrees/.lost/<name>-<n>` (the first free `n`).
fn set_aside(dir: &Path) {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return;
    };
    let lost = parent.join(".lost");
    let _ = std::fs::create_dir_all(&lost);
    for n in 1..1000 {
        let to = lost.join(format!("{}-{n}", name.to_string_lossy()));
        if !to.exists() {
            let _ = std::fs::rename(dir, &to);
            return;
        }
    }
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
