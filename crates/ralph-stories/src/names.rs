//! Where a plan run keeps things: branch names, worktree paths, candidate refs, artifact
//! directories. One place, so the scheduler, the workers, `status` and `clean` agree.
//!
//! Story branches are `ralph/<plan>--<story-id>`, not STORIES.md's `ralph/<plan>/<story-id>`:
//! git stores refs as files, so `refs/heads/ralph/<plan>` (the integration branch) and
//! `refs/heads/ralph/<plan>/<id>` cannot both exist (a file and a directory of one name).

use std::path::{Path, PathBuf};

/// The integration branch: `--into`, else `ralph/<plan>`.
pub fn integration_branch(plan: &str, into: Option<&str>) -> String {
    into.map(str::to_string)
        .unwrap_or_else(|| format!("ralph/{plan}"))
}

pub fn story_branch(plan: &str, story: &str) -> String {
    format!("ralph/{plan}--{story}")
}

pub fn heads(branch: &str) -> String {
    format!("refs/heads/{branch}")
}

/// Every worktree of the stories mode lives here (`.ralph/worktrees/`).
pub fn worktrees_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("worktrees")
}

pub fn story_worktree(state_dir: &Path, story: &str) -> PathBuf {
    worktrees_dir(state_dir).join(story)
}

/// The merge queue's verification worktree: `.merge` cannot be a story id (ids have no dot).
pub fn verify_worktree(state_dir: &Path) -> PathBuf {
    worktrees_dir(state_dir).join(".merge")
}

/// A merged story's clean worktree, parked (detached) for the next story to take: checking
/// out the next story's start rewrites only the files that differ, where a new worktree
/// writes every file of the repository. A dot: no story id has one.
pub fn parked_worktree(state_dir: &Path, story: &str) -> PathBuf {
    worktrees_dir(state_dir).join(parked_name(story))
}

/// The directory name of [`parked_worktree`].
pub fn parked_name(story: &str) -> String {
    format!(".free-{story}")
}

/// Whether `name` (a directory of `.ralph/worktrees/`) is a parked worktree.
pub fn is_parked(name: &str) -> bool {
    name.starts_with(".free-")
}

/// Where a gate is checked on a story's base (`.base`: no story id has a dot).
pub fn base_worktree(state_dir: &Path) -> PathBuf {
    worktrees_dir(state_dir).join(".base")
}

/// A candidate's scratch ref: one per queue entry and build, never moved once written (a ref
/// under `refs/ralph/` that changed would be put back by a running loop's ref guard).
pub fn candidate_ref(plan_run: &str, seq: u32, build: u32) -> String {
    format!("refs/ralph/candidates/{plan_run}/{seq}-{build}")
}

/// Where an attempt's iteration directories go (`.ralph/stories/<plan-run>/<story>/`).
pub fn attempt_artifacts(state_dir: &Path, plan_run: &str, story: &str, attempt: u32) -> PathBuf {
    let dir = state_dir.join("stories").join(plan_run).join(story);
    if attempt <= 1 {
        dir
    } else {
        dir.join(format!("attempt-{attempt}"))
    }
}
