//! `ralph stories clean [--dry-run]`: the worktrees under `.ralph/worktrees/` that are provably
//! free of work removed (STORIES.md rule 6), every other one kept and the reason said.
//!
//! A worktree goes only when all of these hold:
//! - it is clean: no uncommitted change, no untracked file (ignored files, build output, go
//!   with it);
//! - it is not locked (`git worktree lock`);
//! - its commit is kept without it: on a story branch, that commit is merged into an
//!   integration branch or kept under `refs/ralph/`; detached (a parked worktree, the merge
//!   queue's verification and repair worktrees), some ref reaches it.
//!
//! Branches are never deleted, and `.ralph/worktrees/.lost/` (directories ralph moved aside)
//! is never touched. The project's lock is taken: a running plan run owns its worktrees.

use std::path::Path;

use clap::Args;
use ralph_git::{Git, WorktreeInfo};
use ralph_types::exit_codes;

use crate::error::CliError;
use crate::{lock, paths};

#[derive(Debug, Args, Default)]
pub struct StoriesCleanArgs {
    /// Say what would be removed; remove nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// What to do with one worktree.
enum Verdict {
    Remove,
    Keep(String),
}

pub fn cmd_clean(args: StoriesCleanArgs) -> Result<i32, CliError> {
    let cwd = paths::cwd()?;
    let state_dir = cwd.join(".ralph");
    let repo = Git::discover(&cwd).ok().flatten().ok_or_else(|| {
        CliError::usage(
            format!("{} is not inside a git repository", cwd.display()),
            None,
        )
    })?;
    let dir = ralph_stories::names::worktrees_dir(&state_dir);
    if !dir.is_dir() {
        eprintln!("ralph: no story worktrees in this project");
        return Ok(exit_codes::SUCCESS);
    }
    let _lock = lock::acquire(&state_dir)?;
    let git =
        |e: ralph_git::GitError| CliError::new(exit_codes::INTERNAL_ERROR, e.to_string(), None);
    let tips = integration_tips(&repo, &state_dir)?;
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let ours: Vec<WorktreeInfo> = repo
        .worktrees()
        .map_err(git)?
        .into_iter()
        .filter(|w| is_ours(&w.path, &dir))
        .collect();
    let (mut removed, mut kept) = (Vec::new(), Vec::new());
    for w in &ours {
        let rel = w
            .path
            .strip_prefix(&cwd)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| w.path.clone());
        match verdict(&repo, w, &tips).map_err(git)? {
            Verdict::Keep(why) => kept.push(format!("{}: {why}", rel.display())),
            Verdict::Remove if args.dry_run => removed.push(rel),
            Verdict::Remove => match repo.worktree_remove(&w.path) {
                Ok(()) => removed.push(rel),
                // Changed since it was judged: kept, as it must be.
                Err(e) => kept.push(format!("{}: {e}", rel.display())),
            },
        }
    }
    if !args.dry_run {
        repo.worktree_prune().map_err(git)?;
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for r in &removed {
        eprintln!("ralph: {verb} {}", r.display());
    }
    for k in &kept {
        eprintln!("ralph: kept {k}");
    }
    eprintln!(
        "ralph: {verb} {} worktree{}, kept {}",
        removed.len(),
        if removed.len() == 1 { "" } else { "s" },
        kept.len()
    );
    Ok(exit_codes::SUCCESS)
}

/// A worktree below `.ralph/worktrees/`, but not one ralph set aside in `.lost/`.
fn is_ours(path: &Path, dir: &Path) -> bool {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    path.starts_with(dir) && !path.starts_with(dir.join(".lost"))
}

/// Every plan run's integration branch tip that still exists.
fn integration_tips(repo: &Git, state_dir: &Path) -> Result<Vec<String>, CliError> {
    let db = state_dir.join("ralph.db");
    if !db.exists() {
        return Ok(Vec::new());
    }
    let store = ralph_store::Store::open_read_only(&db)?;
    let mut tips = Vec::new();
    for branch in store.integration_branches()? {
        let full = ralph_stories::names::heads(&branch);
        if let Ok(Some(tip)) = repo.rev_parse(&full) {
            tips.push(tip);
        }
    }
    Ok(tips)
}

fn verdict(repo: &Git, w: &WorktreeInfo, tips: &[String]) -> Result<Verdict, ralph_git::GitError> {
    if w.prunable.is_some() {
        return Ok(Verdict::Keep(
            "its directory is gone; `git worktree prune` forgets it".into(),
        ));
    }
    if let Some(reason) = &w.locked {
        return Ok(Verdict::Keep(if reason.is_empty() {
            "locked (`git worktree lock`)".into()
        } else {
            format!("locked: {reason}")
        }));
    }
    let dirty = repo.dirty_paths(&w.path)?;
    if !dirty.is_empty() {
        return Ok(Verdict::Keep(format!(
            "{} uncommitted change{} ({})",
            dirty.len(),
            if dirty.len() == 1 { "" } else { "s" },
            dirty.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let Some(head) = &w.head else {
        return Ok(Verdict::Keep("it has no commit".into()));
    };
    let merged = tips
        .iter()
        .map(|tip| repo.is_ancestor(head, tip))
        .collect::<Result<Vec<bool>, _>>()?
        .into_iter()
        .any(|b| b);
    if merged {
        return Ok(Verdict::Remove);
    }
    match &w.branch {
        Some(branch) => {
            if repo.ref_containing(head, "refs/ralph/")?.is_some() {
                return Ok(Verdict::Remove);
            }
            let short = branch.strip_prefix("refs/heads/").unwrap_or(branch);
            Ok(Verdict::Keep(format!(
                "{short} has work not merged into an integration branch"
            )))
        }
        None => match repo.ref_containing(head, "refs/")? {
            Some(_) => Ok(Verdict::Remove),
            None => Ok(Verdict::Keep(format!(
                "its commit {} is on no branch or ref",
                head.get(..10).unwrap_or(head)
            ))),
        },
    }
}
