//! `ralph stories land [--onto BRANCH]`: the user's branch fast-forwarded to the integration
//! branch's tip — the only way ralph ever moves it (STORIES.md "Commands").
//!
//! Only a fast-forward: when the branch moved since the plan started and the integration branch
//! does not contain that, landing is refused (exit 2) and nothing changes; the user merges. A
//! branch checked out in a worktree is moved by `git merge --ff-only` there, so its files follow
//! and git refuses (changing nothing) when uncommitted changes would be overwritten; a branch
//! checked out nowhere is moved by a compare-and-swap `update-ref`.

use clap::Args;
use ralph_git::{CasOutcome, Git};
use ralph_store::{EventRecord, StoryState, Write};
use ralph_types::exit_codes;

use crate::error::CliError;
use crate::{lock, paths};

#[derive(Debug, Args, Default)]
pub struct StoriesLandArgs {
    /// The branch to fast-forward (default: the branch the plan run started from)
    #[arg(long, value_name = "BRANCH")]
    pub onto: Option<String>,
    /// The plan (its `name`); default: the plan of the latest plan run
    #[arg(long, value_name = "NAME")]
    pub plan: Option<String>,
}

/// The event a landing leaves in the plan run's journal.
pub const PLAN_LANDED: &str = "plan.landed";

pub fn cmd_land(args: StoriesLandArgs) -> Result<i32, CliError> {
    let cwd = paths::cwd()?;
    let state_dir = cwd.join(".ralph");
    let db = state_dir.join("ralph.db");
    let no_run = || {
        CliError::usage(
            "no plan run in this project to land",
            Some("`ralph stories run` starts one".into()),
        )
    };
    if !db.exists() {
        return Err(no_run());
    }
    let _lock = lock::acquire(&state_dir)?;
    let mut store = ralph_store::Store::open(&db)?;
    let run = store
        .latest_plan_run(args.plan.as_deref())?
        .ok_or_else(no_run)?;
    let Some(onto) = args
        .onto
        .clone()
        .or_else(|| run.user_branch.clone())
        .map(|b| b.strip_prefix("refs/heads/").unwrap_or(&b).to_string())
    else {
        return Err(CliError::usage(
            format!(
                "plan run {} started on a detached HEAD: there is no branch of yours to land on",
                run.id
            ),
            Some("name one: `ralph stories land --onto BRANCH`".into()),
        ));
    };
    if onto == run.integration_branch {
        return Err(CliError::usage(
            format!("{onto} is the integration branch itself"),
            Some("name your own branch: `ralph stories land --onto BRANCH`".into()),
        ));
    }
    let repo = Git::discover(&cwd).ok().flatten().ok_or_else(|| {
        CliError::usage(
            format!("{} is not inside a git repository", cwd.display()),
            None,
        )
    })?;
    let git =
        |e: ralph_git::GitError| CliError::new(exit_codes::INTERNAL_ERROR, e.to_string(), None);
    let integration = format!("refs/heads/{}", run.integration_branch);
    let tip = repo.rev_parse(&integration).map_err(git)?.ok_or_else(|| {
        CliError::usage(
            format!("the integration branch {} is gone", run.integration_branch),
            Some("nothing to land; `ralph stories run --fresh` runs the plan again".into()),
        )
    })?;
    let target = format!("refs/heads/{onto}");
    let old = repo.rev_parse(&target).map_err(git)?.ok_or_else(|| {
        CliError::usage(
            format!("there is no branch {onto}"),
            Some("create it first, or name another with --onto BRANCH".into()),
        )
    })?;
    if repo.is_ancestor(&tip, &old).map_err(git)? {
        eprintln!(
            "ralph: {onto} already contains {} ({}); nothing to land",
            run.integration_branch,
            short(&tip)
        );
        return Ok(exit_codes::SUCCESS);
    }
    if !repo.is_ancestor(&old, &tip).map_err(git)? {
        let ahead = repo.commits_between(&tip, &old).map_err(git)?.len();
        return Err(CliError::usage(
            format!(
                "{onto} moved since the plan started ({ahead} commit{} not in {}): landing \
                 would not be a fast-forward, and ralph never rewrites your branch",
                if ahead == 1 { "" } else { "s" },
                run.integration_branch
            ),
            Some(format!(
                "merge it yourself (`git merge {}` on {onto}), or rebase the integration \
                 branch onto {onto}",
                run.integration_branch
            )),
        ));
    }
    let commits = repo.commits_between(&old, &tip).map_err(git)?.len();
    move_branch(&repo, &onto, &target, &old, &tip)?;
    let merged = store
        .stories(&run.id)?
        .iter()
        .filter(|s| s.state == StoryState::Merged)
        .count();
    let total = store.stories(&run.id)?.len();
    let ts = ralph_core::Clock::rfc3339(&ralph_core::SystemClock);
    let payload = serde_json::json!({
        "run_id": run.id, "onto": onto, "from": old, "to": tip, "commits": commits,
        "merged": merged, "stories": total,
    });
    store.commit(&Write::AppendEvents {
        events: vec![EventRecord {
            run_id: run.id.clone(),
            iteration: None,
            ts,
            kind: PLAN_LANDED.into(),
            payload: payload.to_string(),
        }],
    })?;
    let rest = if merged < total {
        format!(
            "; {} of {total} stories are not merged and not in it",
            total - merged
        )
    } else {
        String::new()
    };
    eprintln!(
        "ralph: {onto} fast-forwarded {} → {} ({commits} commit{}, {merged} stories of plan {}){rest}",
        short(&old),
        short(&tip),
        if commits == 1 { "" } else { "s" },
        run.plan_name
    );
    Ok(exit_codes::SUCCESS)
}

/// Moves `target` from `old` to `tip` (a fast-forward, checked by the caller).
fn move_branch(repo: &Git, onto: &str, target: &str, old: &str, tip: &str) -> Result<(), CliError> {
    let checked_out = repo
        .worktrees()
        .map_err(|e| CliError::new(exit_codes::INTERNAL_ERROR, e.to_string(), None))?
        .into_iter()
        .find(|w| w.branch.as_deref() == Some(target));
    if let Some(w) = checked_out {
        return repo.fast_forward_in(&w.path, tip).map_err(|e| {
            CliError::usage(
                format!(
                    "{onto} is checked out in {} and git refused to fast-forward it: {e}",
                    w.path.display()
                ),
                Some(
                    "commit or stash the changes git names, then `ralph stories land` again".into(),
                ),
            )
        });
    }
    match repo
        .update_ref_cas(target, tip, Some(old))
        .map_err(|e| CliError::new(exit_codes::INTERNAL_ERROR, e.to_string(), None))?
    {
        CasOutcome::Moved => Ok(()),
        CasOutcome::Stale { .. } => Err(CliError::usage(
            format!("{onto} moved while landing; nothing was changed"),
            Some("`ralph stories land` again".into()),
        )),
    }
}

fn short(oid: &str) -> &str {
    oid.get(..10).unwrap_or(oid)
}
