//! `ralph stories check`: validate stories.toml, and ralph.toml as each story would run with
//! it (its `[defaults]` and own overrides applied, then resolved like `ralph run` does).
//! Nothing runs and nothing is written.

use std::path::Path;

use ralph_stories::{Dag, Plan};
use ralph_types::exit_codes;

use crate::cli::{RunArgs, StoriesCheckArgs};
use crate::config::ConfigFile;
use crate::error::CliError;
use crate::plan::{load_plan, PlanFile};
use crate::{paths, settings};

pub fn cmd_check(args: StoriesCheckArgs) -> Result<i32, CliError> {
    let cwd = paths::cwd()?;
    let plan = load_plan(&args.file)
        .map_err(|e| CliError::preformatted(exit_codes::USAGE, e.to_string()))?;
    let base = settings::load_config(args.config.as_deref(), &cwd)?;
    base.check_layer_files(&cwd)
        .map_err(|e| CliError::preformatted(exit_codes::USAGE, e.to_string()))?;
    for story in &plan.plan.stories {
        check_story_config(&plan, &base, &story.id, &cwd)?;
    }
    // The parser has checked the graph already; this cannot fail, but is not assumed to.
    let dag = Dag::of(&plan.plan).map_err(|e| {
        CliError::preformatted(
            exit_codes::USAGE,
            format!("error: {}: {e}", args.file.display()),
        )
    })?;
    let order: Vec<&str> = dag.order().iter().map(|&i| dag.id(i)).collect();
    if args.json {
        let v = serde_json::json!({
            "plan": plan.plan.name,
            "stories": plan.plan.stories.len(),
            "integration_branch": plan.integration_branch(),
            "order": order,
        });
        outln!("{v}");
    } else {
        let depth = dag.critical_paths(|_| 1.0).into_iter().fold(0.0, f64::max);
        outln!(
            "{}: plan {:?} is valid: {} {}, {}",
            args.file.display(),
            plan.plan.name,
            plan.plan.stories.len(),
            if plan.plan.stories.len() == 1 {
                "story"
            } else {
                "stories"
            },
            layers(&plan.plan),
        );
        let unit = if depth <= 1.0 { "story" } else { "stories" };
        outln!(
            "critical path: {depth:.0} {unit}; order: {}",
            order.join(", ")
        );
        outln!("integration branch: {}", plan.integration_branch());
    }
    Ok(exit_codes::SUCCESS)
}

/// A story's config must resolve as `ralph run`'s would. Only usage errors are the plan's or
/// the config's fault; a missing agent CLI or a sandbox the kernel lacks is the machine's,
/// reported when the story runs (and by `ralph doctor`).
fn check_story_config(
    plan: &PlanFile,
    base: &ConfigFile,
    id: &str,
    cwd: &Path,
) -> Result<(), CliError> {
    let cfg = plan.config_for(base, id);
    match settings::resolve(&cfg, &RunArgs::default(), cwd) {
        Err(e) if e.code == exit_codes::USAGE => Err(CliError::usage(
            format!(
                "{}: story {id} (ralph.toml with the plan's overrides): {}",
                plan.path.display(),
                e.message.trim_start_matches("error: ")
            ),
            e.hint,
        )),
        _ => Ok(()),
    }
}

/// `layers: 2 data, 1 api`, in build order: the plan's template's, else
/// [`ralph_stories::Layer::DEFAULTS`]'s; `other` last.
fn layers(plan: &Plan) -> String {
    let order: Vec<String> = plan
        .architecture
        .as_ref()
        .and_then(|a| {
            crate::plan::template::find(Path::new("."), a)
                .ok()
                .flatten()
        })
        .map(|(t, _)| t.order().iter().map(|s| s.to_string()).collect())
        .unwrap_or_else(|| {
            ralph_stories::Layer::DEFAULTS
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
    let rank = |l: &str| order.iter().position(|o| o == l).unwrap_or(order.len());
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for s in &plan.stories {
        match counts.iter_mut().find(|(l, _)| *l == s.layer.as_str()) {
            Some((_, n)) => *n += 1,
            None => counts.push((s.layer.as_str(), 1)),
        }
    }
    counts.sort_by_key(|(l, _)| (*l == "other", rank(l)));
    let parts: Vec<String> = counts.iter().map(|(l, n)| format!("{n} {l}")).collect();
    format!("layers: {}", parts.join(", "))
}
