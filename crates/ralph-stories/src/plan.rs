//! The plan as the scheduler and the workers see it: already validated.
//!
//! `stories.toml` is parsed by ralph-cli (`plan/`), whose errors are located like ralph.toml's
//! (file, line, column, key, hint). What reaches this crate is known to be well-formed: ids are
//! unique and match `[A-Za-z0-9_-]+`, every dependency names another story, the graph has no
//! cycle, and every `auto` criterion has a `run`. Per-story agent and budget overrides are
//! resolved into settings by ralph-cli too; they are not part of this model.

use std::path::PathBuf;

/// A validated plan: the stories of one feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The plan's `name`: the integration branch is `ralph/<name>` unless `--into` says else.
    pub name: String,
    /// Given to every story as context (a path relative to the project root).
    pub prd: Option<PathBuf>,
    /// The same.
    pub design: Option<PathBuf>,
    /// A template name (`ralph templates`); kept for the planner, unused by execution.
    pub architecture: Option<String>,
    /// In the file's order.
    pub stories: Vec<Story>,
}

impl Plan {
    pub fn story(&self, id: &str) -> Option<&Story> {
        self.stories.iter().find(|s| s.id == id)
    }
}

/// One unit of work.
#[derive(Debug, Clone, PartialEq)]
pub struct Story {
    pub id: String,
    pub title: String,
    pub layer: Layer,
    pub depends_on: Vec<String>,
    /// Globs relative to the project root: a prediction of what the story edits, not a lock.
    pub affected_paths: Vec<String>,
    pub description: String,
    pub criteria: Vec<Criterion>,
    /// `low`, `medium` or `high` as the planner estimated it (`[routing]` rules match it);
    /// `None`: estimated from the criteria and affected paths ([`Story::complexity`]).
    pub complexity: Option<String>,
}

impl Story {
    /// The plan's `complexity`, else an estimate from the story's size: criteria plus
    /// affected paths, up to 2 `low`, up to 5 `medium`, more `high`.
    pub fn complexity(&self) -> &str {
        if let Some(c) = &self.complexity {
            return c;
        }
        match self.criteria.len() + self.affected_paths.len() {
            0..=2 => "low",
            3..=5 => "medium",
            _ => "high",
        }
    }

    /// The criteria a machine checks, in the plan's order.
    pub fn auto_criteria(&self) -> impl Iterator<Item = (&Criterion, &str)> {
        self.criteria.iter().filter_map(|c| match &c.check {
            Check::Auto { run } => Some((c, run.as_str())),
            Check::Manual => None,
        })
    }
}

/// A story's layer: one of the plan's architecture template's layers (`ralph templates`), or,
/// without one, of [`Layer::DEFAULTS`]. The parser checks which; execution only shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Layer(String);

impl Layer {
    /// The layers of a plan that names no architecture.
    pub const DEFAULTS: [&'static str; 7] =
        ["data", "service", "api", "ui", "infra", "docs", "other"];

    pub fn new(name: impl Into<String>) -> Layer {
        Layer(name.into())
    }

    /// `other`: a story that names no layer.
    pub fn other() -> Layer {
        Layer("other".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An acceptance criterion.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    pub id: String,
    pub text: String,
    pub check: Check,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// `run` must exit 0 (a shell command, run in the worktree or on the candidate).
    Auto { run: String },
    /// Recorded and reported; never blocks.
    Manual,
}
