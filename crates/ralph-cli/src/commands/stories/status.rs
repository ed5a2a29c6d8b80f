//! `ralph stories status [--json]`: the latest plan run's DAG as the database has it — each
//! story's state, layer, dependencies, iterations, cost, branch and attempts (STORIES.md
//! "Output"). Read-only: it opens the database read-only and takes no lock, so it works while
//! the plan runs.

use clap::Args;
use ralph_store::{PlanRunRecord, RunState, StoryReportRow, StoryState};
use ralph_types::exit_codes;

use crate::error::CliError;
use crate::render::fmt_usd;
use crate::{lock, paths};

#[derive(Debug, Args, Default)]
pub struct StoriesStatusArgs {
    /// The plan (its `name`); default: the plan of the latest plan run
    #[arg(long, value_name = "NAME")]
    pub plan: Option<String>,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
}

pub fn cmd_status(args: StoriesStatusArgs) -> Result<i32, CliError> {
    let cwd = paths::cwd()?;
    let store = crate::commands::open_store(&cwd)?;
    let found = match &store {
        Some(store) => store.latest_plan_run(args.plan.as_deref())?,
        None => None,
    };
    let (Some(store), Some(run)) = (store, found) else {
        if args.json {
            outln!(
                "{}",
                serde_json::json!({"version": 1, "plan": args.plan, "run_id": null,
                    "state": "none", "stories": []})
            );
        } else {
            let which = args
                .plan
                .as_deref()
                .map(|p| format!(" of plan {p}"))
                .unwrap_or_default();
            eprintln!(
                "ralph: no plan run{which} in this project yet; start one with `ralph stories run`"
            );
        }
        return Ok(exit_codes::SUCCESS);
    };
    let stories = store.story_report(&run.id)?;
    let cost = store.plan_run_cost(&run.id)?;
    let live = run.state == RunState::Running && lock::holder(&cwd.join(".ralph")).is_some();
    let state = plan_state(&run, live);
    if args.json {
        let v = serde_json::json!({
            "version": 1,
            "plan": run.plan_name,
            "run_id": run.id,
            "state": state,
            "integration_branch": run.integration_branch,
            "user_branch": run.user_branch,
            "base_commit": run.base_commit,
            "started_at": run.started_at,
            "updated_at": run.updated_at,
            "stop_reason": run.stop_reason,
            "cost_usd": cost,
            "counts": counts(&stories),
            "stories": stories,
        });
        outln!("{v}");
        return Ok(exit_codes::SUCCESS);
    }
    print_text(&run, state, cost, &stories);
    Ok(exit_codes::SUCCESS)
}

/// The plan run's state as a user should read it: one the database says is running while no
/// ralph holds the project's lock crashed, and resumes with `ralph stories run`.
fn plan_state(run: &PlanRunRecord, live: bool) -> &'static str {
    match run.state {
        RunState::Running if !live => RunState::Interrupted.as_str(),
        s => s.as_str(),
    }
}

/// How many stories are in each state, every state named (0 included) so a script can read
/// `counts.merged` without a default.
fn counts(stories: &[StoryReportRow]) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for state in StoryState::ALL.iter() {
        let n = stories.iter().filter(|s| s.state == *state).count();
        map.insert(state.as_str().to_string(), n.into());
    }
    serde_json::Value::Object(map)
}

fn print_text(run: &PlanRunRecord, state: &str, cost: Option<f64>, stories: &[StoryReportRow]) {
    let merged = stories
        .iter()
        .filter(|s| s.state == StoryState::Merged)
        .count();
    outln!(
        "plan {} · run {} · {state} · {merged}/{} merged into {} · {}",
        run.plan_name,
        run.id,
        stories.len(),
        run.integration_branch,
        cost.map(fmt_usd).unwrap_or_else(|| "cost unknown".into())
    );
    if let Some(reason) = run.stop_reason.as_deref().filter(|_| state != "running") {
        outln!("  {reason}");
    }
    outln!(
        "{:<16} {:<12} {:<10} {:>5} {:>8} {:>4}  {:<24} after",
        "story",
        "state",
        "layer",
        "iter",
        "cost",
        "try",
        "branch"
    );
    for s in stories {
        let cost = s.cost_usd.map(fmt_usd).unwrap_or_else(|| "?".into());
        let deps = if s.depends_on.is_empty() {
            "-".to_string()
        } else {
            s.depends_on.join(", ")
        };
        outln!(
            "{:<16} {:<12} {:<10} {:>5} {:>8} {:>4}  {:<24} {deps}",
            s.story_id,
            s.state.as_str(),
            s.layer.as_deref().unwrap_or("-"),
            s.iterations,
            cost,
            s.attempts,
            s.branch.as_deref().unwrap_or("-"),
        );
        if let Some(r) = s
            .reason
            .as_deref()
            .filter(|_| s.state != StoryState::Merged)
        {
            outln!("{:<16} {r}", "");
        }
        if let Some(t) = &s.escalated_to {
            outln!(
                "{:<16} escalated to tier {t}{}",
                "",
                s.model
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            );
        }
    }
    let next = next_step(run, state, stories);
    if let Some(next) = next {
        outln!("next: {next}");
    }
}

/// What the user can do now, from the states.
fn next_step(run: &PlanRunRecord, state: &str, stories: &[StoryReportRow]) -> Option<String> {
    if state == "running" {
        return None;
    }
    let stuck: Vec<&str> = stories
        .iter()
        .filter(|s| {
            matches!(
                s.state,
                StoryState::Failed | StoryState::Conflicted | StoryState::NeedsHuman
            )
        })
        .map(|s| s.story_id.as_str())
        .collect();
    if !stuck.is_empty() {
        return Some(format!(
            "`ralph stories retry {}` runs {} again; `ralph stories land` brings what is merged \
             onto your branch",
            stuck.join(" "),
            if stuck.len() == 1 { "it" } else { "them" }
        ));
    }
    if stories.iter().all(|s| s.state == StoryState::Merged) {
        let onto = run.user_branch.as_deref().unwrap_or("your branch");
        return Some(format!(
            "`ralph stories land` fast-forwards {onto} to {}",
            run.integration_branch
        ));
    }
    Some("`ralph stories run` resumes the plan run".into())
}
