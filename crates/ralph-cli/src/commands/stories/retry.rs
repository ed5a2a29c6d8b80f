//! `ralph stories retry ID...`: failed, conflicted, needs-human or blocked stories made
//! `pending` again in their plan run, so the next `ralph stories run` runs them (STORIES.md
//! "Commands").
//!
//! - The story keeps its branch and worktree: the next attempt goes on from the work the last
//!   one committed (nothing is thrown away; a user who wants a clean start deletes the branch
//!   first, or runs the plan `--fresh`).
//! - A blocked story waits on a dependency that did not merge: retrying it retries that
//!   dependency too (every unmerged failed ancestor), or it would only be blocked again.
//! - Stories blocked by the retried ones need nothing: blocked is derived again when the plan
//!   run resumes.
//!
//! Each change is one transaction with its `story.state` event, like the scheduler's own.
//! The project's lock is taken: a running plan run owns its stories.

use std::collections::{BTreeSet, HashMap};

use clap::Args;
use ralph_store::{PlanRunRecord, StoryRecord, StoryState, Write};
use ralph_types::exit_codes;

use crate::error::CliError;
use crate::{lock, paths};

#[derive(Debug, Args, Default)]
pub struct StoriesRetryArgs {
    /// The stories to run again
    #[arg(value_name = "ID", required = true, num_args = 1..)]
    pub ids: Vec<String>,
    /// The plan (its `name`); default: the plan of the latest plan run
    #[arg(long, value_name = "NAME")]
    pub plan: Option<String>,
}

pub fn cmd_retry(args: StoriesRetryArgs) -> Result<i32, CliError> {
    let cwd = paths::cwd()?;
    let state_dir = cwd.join(".ralph");
    let db = state_dir.join("ralph.db");
    if !db.exists() {
        return Err(no_plan_run(args.plan.as_deref()));
    }
    let _lock = lock::acquire(&state_dir)?;
    let mut store = ralph_store::Store::open(&db)?;
    let run = store
        .latest_plan_run(args.plan.as_deref())?
        .ok_or_else(|| no_plan_run(args.plan.as_deref()))?;
    if run.finished_at.is_some() {
        return Err(CliError::usage(
            format!(
                "plan run {} of plan {} is over: every story merged into {}",
                run.id, run.plan_name, run.integration_branch
            ),
            Some("`ralph stories run --fresh` runs the whole plan again".into()),
        ));
    }
    let stories = store.stories(&run.id)?;
    let chosen = choose(&run, &stories, &args.ids)?;
    let now = ralph_core::Clock::rfc3339(&ralph_core::SystemClock);
    for story in &chosen {
        let asked = args.ids.contains(&story.story_id);
        let reason = if asked {
            "retry requested".to_string()
        } else {
            "retried: a story that depends on it was retried".to_string()
        };
        let (next, event) =
            ralph_stories::transitions::transition(story, StoryState::Pending, Some(reason), &now);
        store.commit(&Write::SaveStory {
            story: next,
            events: vec![ralph_stories::transitions::record(&run.id, &event)],
        })?;
        let was = story.state.as_str().replace('_', " ");
        let on = story
            .branch
            .as_deref()
            .map(|b| format!(", going on from its branch {b}"))
            .unwrap_or_default();
        let why = if asked {
            String::new()
        } else {
            " (a retried story depends on it)".into()
        };
        eprintln!(
            "ralph: [{}] {was} → pending: attempt {}{on}{why}",
            story.story_id,
            story.attempts + 1
        );
    }
    eprintln!("ralph: `ralph stories run` runs them (plan run {})", run.id);
    Ok(exit_codes::SUCCESS)
}

fn no_plan_run(plan: Option<&str>) -> CliError {
    let which = plan.map(|p| format!(" of plan {p}")).unwrap_or_default();
    CliError::usage(
        format!("no plan run{which} in this project to retry stories of"),
        Some("`ralph stories run` starts one".into()),
    )
}

/// The stories to make pending: each asked one that is stuck, and for a blocked one every
/// unmerged stuck ancestor. Asking for a story that is not stuck is an error naming its state.
fn choose<'a>(
    run: &PlanRunRecord,
    stories: &'a [StoryRecord],
    ids: &[String],
) -> Result<Vec<&'a StoryRecord>, CliError> {
    let by_id: HashMap<&str, &StoryRecord> =
        stories.iter().map(|s| (s.story_id.as_str(), s)).collect();
    let mut chosen = BTreeSet::new();
    for id in ids {
        let Some(story) = by_id.get(id.as_str()) else {
            let known: Vec<&str> = stories.iter().map(|s| s.story_id.as_str()).collect();
            return Err(CliError::usage(
                format!(
                    "plan run {} of plan {} has no story {id:?}",
                    run.id, run.plan_name
                ),
                Some(format!("its stories: {}", known.join(", "))),
            ));
        };
        match story.state {
            StoryState::Failed | StoryState::Conflicted | StoryState::NeedsHuman => {
                chosen.insert(story.story_id.as_str());
            }
            StoryState::Blocked => {
                chosen.insert(story.story_id.as_str());
                stuck_ancestors(story, &by_id, &mut chosen);
            }
            StoryState::Merged => {
                return Err(CliError::usage(
                    format!(
                        "story {id} is already merged into {}",
                        run.integration_branch
                    ),
                    Some(
                        "only failed, conflicted, blocked or needs-human stories run again".into(),
                    ),
                ))
            }
            other => return Err(CliError::usage(
                format!(
                    "story {id} is {}: it has not failed",
                    other.as_str().replace('_', " ")
                ),
                Some(
                    "`ralph stories run` runs or resumes it; `ralph stories status` shows the plan"
                        .into(),
                ),
            )),
        }
    }
    // Plan order, as the scheduler stored them.
    Ok(stories
        .iter()
        .filter(|s| chosen.contains(s.story_id.as_str()))
        .collect())
}

fn stuck_ancestors<'a>(
    story: &StoryRecord,
    by_id: &HashMap<&str, &'a StoryRecord>,
    chosen: &mut BTreeSet<&'a str>,
) {
    for dep in &story.depends_on {
        let Some(d) = by_id.get(dep.as_str()) else {
            continue;
        };
        if d.state == StoryState::Merged || chosen.contains(d.story_id.as_str()) {
            continue;
        }
        if matches!(
            d.state,
            StoryState::Failed
                | StoryState::Conflicted
                | StoryState::NeedsHuman
                | StoryState::Blocked
        ) {
            chosen.insert(d.story_id.as_str());
        }
        stuck_ancestors(d, by_id, chosen);
    }
}
