//! `stories.toml`, the plan of the stories mode (STORIES.md): parsed with located errors like
//! ralph.toml (the same [`ConfigError`], the same value checks) into the validated
//! [`ralph_stories::Plan`], plus the per-story agent and limit overrides that ralph-cli layers
//! over ralph.toml.
//!
//! | what | file |
//! |---|---|
//! | the keys of every table, and their kinds (also the JSON Schema's source) | `keys.rs` |
//! | the walk: top level, `[defaults]`, `[[story]]` and its tables | `walk.rs` |
//! | `[[story.criteria]]`, ids, plan names as git branch names | `checks.rs` |
//! | the dependency graph's errors, located | `graph.rs` |
//! | each story's layer against the plan's architecture template | `layers.rs` |
//! | architecture templates: built-in and the project's, parsed | `template.rs` |

mod checks;
mod graph;
pub(crate) mod keys;
mod layers;
pub mod template;
pub(crate) mod walk;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::{AgentConf, ConfigError, ConfigFile};

/// A parsed and validated plan file.
#[derive(Debug, Clone)]
pub struct PlanFile {
    pub plan: ralph_stories::Plan,
    /// As given (relative when the user gave a relative path).
    pub path: PathBuf,
    /// sha256 of the file's bytes, lowercase hex.
    pub hash: String,
    /// `[defaults]`.
    pub defaults: StoryOverrides,
    /// `[story.agent]` and `[story.budget]`, by story id; stories without either are absent.
    pub overrides: BTreeMap<String, StoryOverrides>,
}

/// What `[defaults]`, `[story.agent]` and `[story.budget]` may set: ralph.toml's `[agent]`
/// keys and four limits, validated as ralph.toml validates them. `None`: not set here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoryOverrides {
    pub agent: AgentConf,
    /// As `loop.max_iterations`: ≥ 1.
    pub max_iterations: Option<u32>,
    /// As `loop.max_runtime`: > 0.
    pub max_runtime: Option<Duration>,
    /// As `budget.max_cost_usd`: finite, > 0.
    pub max_cost_usd: Option<f64>,
    /// As `budget.max_tokens`: ≥ 1.
    pub max_tokens: Option<u64>,
}

impl StoryOverrides {
    /// Overlay what is set here onto `cfg` (a loaded ralph.toml); the rest of `cfg` stays.
    pub fn apply(&self, cfg: &mut ConfigFile) {
        fn set<T: Clone>(target: &mut Option<T>, value: &Option<T>) {
            if value.is_some() {
                target.clone_from(value);
            }
        }
        let (a, to) = (&self.agent, &mut cfg.agent);
        set(&mut to.backend, &a.backend);
        set(&mut to.model, &a.model);
        set(&mut to.args, &a.args);
        set(&mut to.priority, &a.priority);
        set(&mut to.fallback, &a.fallback);
        set(&mut to.command, &a.command);
        set(&mut to.prompt_via, &a.prompt_via);
        set(&mut to.output, &a.output);
        set(&mut to.permissions, &a.permissions);
        set(&mut cfg.loop_.max_iterations, &self.max_iterations);
        set(&mut cfg.loop_.max_runtime, &self.max_runtime);
        set(&mut cfg.budget.max_cost_usd, &self.max_cost_usd);
        set(&mut cfg.budget.max_tokens, &self.max_tokens);
    }

    pub fn is_empty(&self) -> bool {
        *self == StoryOverrides::default()
    }
}

impl PlanFile {
    /// The config one story runs with: `base` (ralph.toml) < `[defaults]` < ralph.toml's
    /// `[layers.<its layer>]` backend and model < the story's own `[story.agent]` and
    /// `[story.budget]`. An unknown id gets `base` with the defaults.
    pub fn config_for(&self, base: &ConfigFile, story: &str) -> ConfigFile {
        let mut cfg = base.clone();
        self.defaults.apply(&mut cfg);
        if let Some(l) = self.layer_conf(base, story) {
            match &l.backend {
                Some(b) => cfg.agent.switch_backend(b, l.model.clone()),
                None if l.model.is_some() => cfg.agent.model.clone_from(&l.model),
                None => {}
            }
        }
        if let Some(o) = self.overrides.get(story) {
            o.apply(&mut cfg);
        }
        cfg
    }

    /// ralph.toml's `[layers.<name>]` for story `story`'s layer, if it has one.
    pub fn layer_conf<'c>(
        &self,
        base: &'c ConfigFile,
        story: &str,
    ) -> Option<&'c crate::config::LayerConf> {
        let s = self.plan.story(story)?;
        base.layers.get(s.layer.as_str())
    }

    /// `ralph/<name>`: where verified stories land.
    pub fn integration_branch(&self) -> String {
        format!("ralph/{}", self.plan.name)
    }
}

/// Parse and validate the text of a plan file. `path` is used in errors; `prd` and `design`
/// are checked relative to the current directory (the project root).
#[expect(
    clippy::result_large_err,
    reason = "ConfigError's fields are the documented contract; it is returned once"
)]
pub fn parse_plan(src: &str, path: &Path) -> Result<PlanFile, ConfigError> {
    let hash = hex(&Sha256::digest(src.as_bytes()));
    let text = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut plan = walk::parse(text, path)?;
    plan.hash = hash;
    Ok(plan)
}

/// Read, parse and validate a plan file. Read failures are `ConfigError`s too (no location).
#[expect(
    clippy::result_large_err,
    reason = "ConfigError's fields are the documented contract; it is returned once"
)]
pub fn load_plan(path: &Path) -> Result<PlanFile, ConfigError> {
    let src = crate::config::read_toml(path, &PLAN_FILE)?;
    let mut plan = parse_plan(&src, path)?;
    plan.hash = hex(&Sha256::digest(src.as_bytes()));
    Ok(plan)
}

const PLAN_FILE: crate::config::TomlFile = crate::config::TomlFile {
    the: "the plan",
    noun: "plan file",
    name: "stories.toml",
    flag: "-f",
    missing_hint: "write stories.toml (see `ralph schema stories`), or pass another with -f PATH",
};

/// Whether `name` can be a plan's name (its integration branch is `ralph/<name>`).
pub fn valid_plan_name(name: &str) -> bool {
    !name.trim().is_empty() && checks::branch_name_problem(name).is_none()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
