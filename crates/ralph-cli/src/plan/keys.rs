//! The keys of stories.toml, by table, with their kind: what the parser accepts (a key not
//! listed here is an unknown key) and what `ralph schema stories` describes. One table, so the
//! schema cannot drift from the parser (a test in `walk.rs` parses a plan that sets every key).

use crate::config::validate::AGENT_KEYS;

/// What a key's value is, as the schema says it (the parser checks more: ranges, choices).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// The plan format's version: the integer 1.
    Version,
    /// A non-empty string.
    Text,
    /// A string matching `[A-Za-z0-9_-]+`.
    Id,
    /// A plan name usable in a git branch name.
    BranchName,
    /// A path relative to the project root, which must exist.
    Path,
    /// One of these strings.
    Choice(&'static [&'static str]),
    /// An array of strings.
    Strings,
    /// A table of [`StoryOverrides`](super::StoryOverrides) keys.
    Table,
    /// An array of tables.
    Tables,
}

pub(crate) struct Key {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    pub doc: &'static str,
}

const fn key(name: &'static str, kind: Kind, required: bool, doc: &'static str) -> Key {
    Key {
        name,
        kind,
        required,
        doc,
    }
}

pub(crate) const CHECKS: &[&str] = &["auto", "manual"];
pub(crate) const COMPLEXITIES: &[&str] = &["low", "medium", "high"];

pub(crate) const TOP: &[Key] = &[
    key(
        "version",
        Kind::Version,
        true,
        "the plan format's version: 1",
    ),
    key(
        "name",
        Kind::BranchName,
        true,
        "the plan's name: the integration branch is ralph/<name>",
    ),
    key(
        "prd",
        Kind::Path,
        false,
        "a file given to every story as context (relative to the project root)",
    ),
    key(
        "design",
        Kind::Path,
        false,
        "the same, for a design document",
    ),
    key(
        "architecture",
        Kind::Text,
        false,
        "a built-in or project template name, for the planner",
    ),
    key(
        "defaults",
        Kind::Table,
        false,
        "agent keys and limits for every story",
    ),
    key("story", Kind::Tables, true, "the stories, at least one"),
];

pub(crate) const STORY: &[Key] = &[
    key("id", Kind::Id, true, "[A-Za-z0-9_-]+, unique in the plan"),
    key("title", Kind::Text, true, "one line"),
    key(
        "layer",
        Kind::Id,
        false,
        "one of the architecture template's layers, or other (the default); without \
         architecture: data, service, api, ui, infra, docs or other",
    ),
    key(
        "depends_on",
        Kind::Strings,
        false,
        "ids of the stories this one needs merged first",
    ),
    key(
        "affected_paths",
        Kind::Strings,
        false,
        "globs the story is expected to edit (a prediction, not a lock)",
    ),
    key(
        "description",
        Kind::Text,
        true,
        "what to build, in the words a developer needs",
    ),
    key(
        "complexity",
        Kind::Choice(COMPLEXITIES),
        false,
        "low, medium or high, for [routing] rules; default: estimated from the criteria and affected paths",
    ),
    key("criteria", Kind::Tables, false, "acceptance criteria"),
    key(
        "agent",
        Kind::Table,
        false,
        "[agent] keys of ralph.toml for this story",
    ),
    key("budget", Kind::Table, false, "limits for this story"),
];

pub(crate) const CRITERION: &[Key] = &[
    key("id", Kind::Id, true, "[A-Za-z0-9_-]+, unique in the story"),
    key("text", Kind::Text, true, "what must be true"),
    key(
        "check",
        Kind::Choice(CHECKS),
        false,
        "auto (default): `run` must pass; manual: recorded, never blocks",
    ),
    key(
        "run",
        Kind::Text,
        false,
        "a shell command; required when check = \"auto\", refused when \"manual\"",
    ),
];

/// Per-story limits: the names of ralph.toml's `loop.max_iterations`, `loop.max_runtime`,
/// `budget.max_cost_usd` and `budget.max_tokens`, checked by the same code.
pub(crate) const LIMIT_KEYS: &[&str] = &[
    "max_iterations",
    "max_runtime",
    "max_cost_usd",
    "max_tokens",
];

/// `[defaults]`: agent keys and limits together.
pub(crate) fn defaults_keys() -> Vec<&'static str> {
    AGENT_KEYS.iter().chain(LIMIT_KEYS).copied().collect()
}

pub(crate) fn names(keys: &[Key]) -> Vec<&'static str> {
    keys.iter().map(|k| k.name).collect()
}

/// The ralph.toml section whose key of the same name a limit mirrors.
pub(crate) fn limit_section(key: &str) -> &'static str {
    match key {
        "max_iterations" | "max_runtime" => "loop",
        _ => "budget",
    }
}
