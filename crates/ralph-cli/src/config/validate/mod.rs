//! Walk the parsed document, check every key and value, and build the [`ConfigFile`].
//!
//! Keys are visited in file order and the first problem is returned, so the error the user
//! sees is the topmost one. Rules that involve two keys (custom backend without a command,
//! allowlist without tools, max_delay below base_delay) run after their section is read.
//!
//! This file holds the walk, the key tables and the errors about structure (unknown sections
//! and keys); one file per section checks its keys (`agent.rs`, `loop_.rs` with `[context]`
//! and `[retry]`, `budget.rs` with `[pricing]`, `safety.rs` with `[git]`, `sandbox.rs` with
//! `[sandbox.gates]`, `gates.rs`), and
//! `values.rs` has the value checks they share.

#![expect(
    clippy::result_large_err,
    reason = "ConfigError's public shape is part of the CLI contract, and an error ends the \
              parse (the cold path, taken once), so its size does not matter here"
)]

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use toml_edit::{ImDocument, Item, TableLike, Value};

use super::text::{found, line_col, suggest, toml_string};
use super::{ConfigError, ConfigFile};

mod agent;
mod budget;
mod gates;
mod layers;
mod loop_;
mod routing;
mod safety;
mod sandbox;
mod values;

pub use sandbox::check_allow_host;

pub(crate) const SECTIONS: &[&str] = &[
    "agent", "loop", "budget", "git", "retry", "context", "safety", "sandbox", "gates", "pricing",
    "plan", "layers", "routing",
];
pub(crate) const AGENT_KEYS: &[&str] = &[
    "backend",
    "model",
    "args",
    "priority",
    "fallback",
    "command",
    "prompt_via",
    "output",
    "permissions",
    "allowed_tools",
];
pub(crate) const LOOP_KEYS: &[&str] = &[
    "prompt_file",
    "completion_marker",
    "max_iterations",
    "max_runtime",
    "iteration_timeout",
    "idle_timeout",
    "max_consecutive_failures",
];
pub(crate) const BUDGET_KEYS: &[&str] = &[
    "max_cost_usd",
    "max_tokens",
    "daily_usd",
    "monthly_usd",
    "alert_at",
    "stop_before_exceeding",
    "ledger",
    "allow_unenforced",
    "iteration_estimate_usd",
];
pub(crate) const GIT_KEYS: &[&str] = &[
    "checkpoint_every",
    "require",
    "max_untracked_mb",
    "allow_ref_rewrites",
];
pub(crate) const SAFETY_KEYS: &[&str] = &[
    "max_files_changed",
    "protected_paths",
    "blocked_commands",
    "no_progress_iterations",
    "max_output_mb",
];
pub(crate) const SANDBOX_KEYS: &[&str] = &[
    "mode",
    "required",
    "writable",
    "network",
    "allow_hosts",
    "gates",
];
/// `[sandbox.gates]`: `[sandbox]`'s keys but `gates`.
pub(crate) const SANDBOX_GATE_KEYS: &[&str] =
    &["mode", "required", "writable", "network", "allow_hosts"];
pub(crate) const RETRY_KEYS: &[&str] = &["strategy", "base_delay", "max_delay"];
pub(crate) const GATE_KEYS: &[&str] = &["name", "run", "when", "timeout"];
pub(crate) const CONTEXT_KEYS: &[&str] = &["notes_max_tokens", "summary_model"];
pub(crate) const PLAN_KEYS: &[&str] = &["max_attempts", "architecture", "design_dir"];
/// `[layers.<name>]`.
pub(crate) use routing::{CALL_KINDS, COMPLEXITIES};
/// `[routing]`.
pub(crate) const ROUTING_KEYS: &[&str] = &["plateau_iterations", "default_tier", "tier", "rule"];
pub(crate) const LAYER_KEYS: &[&str] = &["instructions", "backend", "model", "gates"];
pub(crate) const PRICE_KEYS: &[&str] = &[
    "input",
    "output",
    "cache_read",
    "cache_write",
    "context_window",
];

/// The values of keys that take one of a few names (also what `ralph schema config` lists).
pub(crate) const PROMPT_VIAS: &[&str] = &["stdin", "arg", "file"];
pub(crate) const PERMISSION_MODES: &[&str] = &["full", "allowlist", "sandbox"];
pub(crate) const SANDBOX_MODES: &[&str] = &["workspace", "strict", "off"];
pub(crate) const NETWORK_MODES: &[&str] = &["on", "allowlist", "off"];
pub(crate) const RETRY_STRATEGIES: &[&str] = &["immediate", "linear", "exponential"];
pub(crate) const GATE_WHENS: &[&str] = &[
    "complete",
    "iteration",
    "pre-story",
    "post-story",
    "pre-merge",
];

/// Documented in CLI.md for later versions. Accepting them would mean silently ignoring a
/// limit the user relies on, so they are rejected until they are implemented.
const UNSUPPORTED_SECTIONS: &[&str] = &[];

pub(crate) fn section_keys(section: &str) -> &'static [&'static str] {
    match section {
        "agent" => AGENT_KEYS,
        "loop" => LOOP_KEYS,
        "budget" => BUDGET_KEYS,
        "git" => GIT_KEYS,
        "retry" => RETRY_KEYS,
        "gates" => GATE_KEYS,
        "pricing" => PRICE_KEYS,
        "context" => CONTEXT_KEYS,
        "plan" => PLAN_KEYS,
        "layers" => LAYER_KEYS,
        "routing" => ROUTING_KEYS,
        "safety" => SAFETY_KEYS,
        "sandbox" => SANDBOX_KEYS,
        "sandbox.gates" => SANDBOX_GATE_KEYS,
        _ => &[],
    }
}

fn section_label(section: &str) -> String {
    if section == "gates" {
        "[[gates]]".into()
    } else {
        format!("[{section}]")
    }
}

pub(crate) fn parse(src: &str, file: &Path) -> Result<ConfigFile> {
    let doc = ImDocument::parse(src).map_err(|e| super::syntax::error(src, file, &e))?;
    let mut w = Walker {
        src,
        file,
        locations: BTreeMap::new(),
    };
    let mut conf = ConfigFile {
        file: file.to_path_buf(),
        ..ConfigFile::default()
    };
    let root = doc.as_table();
    for (name, item) in root.iter() {
        let key_span = root.key(name).and_then(|k| k.span());
        let e = Entry {
            section: None,
            name,
            item,
            key_span,
        };
        match name {
            "agent" => conf.agent = w.agent(w.section(&e)?)?,
            "loop" => conf.loop_ = w.loop_(w.section(&e)?)?,
            "budget" => conf.budget = w.budget(w.section(&e)?)?,
            "git" => conf.git = w.git(w.section(&e)?)?,
            "retry" => conf.retry = w.retry(w.section(&e)?)?,
            "gates" => conf.gates = w.gates(&e)?,
            "pricing" => conf.pricing = w.pricing(w.section(&e)?)?,
            "context" => conf.context = w.context(w.section(&e)?)?,
            "plan" => conf.plan = w.plan(w.section(&e)?)?,
            "layers" => conf.layers = w.layers(w.section(&e)?)?,
            "routing" => conf.routing = w.routing(w.section(&e)?)?,
            "safety" => conf.safety = w.safety(w.section(&e)?)?,
            "sandbox" => conf.sandbox = w.sandbox(w.section(&e)?)?,
            _ => return Err(w.unknown_top_level(&e)),
        }
    }
    conf.locations = w.locations;
    Ok(conf)
}

/// One key of a table, with where it is.
pub(crate) struct Entry<'a> {
    /// Key path of the containing table (`agent`, `gates[0]`); `None` for the top level.
    pub(crate) section: Option<&'a str>,
    pub(crate) name: &'a str,
    pub(crate) item: &'a Item,
    pub(crate) key_span: Option<Range<usize>>,
}

impl Entry<'_> {
    pub(crate) fn path(&self) -> String {
        match self.section {
            Some(s) => format!("{s}.{}", self.name),
            None => self.name.to_string(),
        }
    }

    /// Where the value is; a dotted table (`a.b = 1`) may have no span of its own.
    pub(crate) fn span(&self) -> Option<Range<usize>> {
        self.item.span().or_else(|| self.key_span.clone())
    }
}

/// A table's entries with their key spans, in file order.
pub(crate) fn entries<'a>(section: &'a str, table: &'a dyn TableLike) -> Vec<Entry<'a>> {
    table
        .iter()
        .map(|(name, item)| Entry {
            section: Some(section),
            name,
            item,
            key_span: table.key(name).and_then(|k| k.span()),
        })
        .collect()
}

pub(crate) struct Walker<'a> {
    src: &'a str,
    file: &'a Path,
    locations: BTreeMap<String, (usize, usize)>,
}

/// What a whole-number key accepts, and how to explain it.
pub(crate) struct IntRule {
    pub(crate) min: i64,
    pub(crate) max: i64,
    /// Shown in hints when the value gives no better number to suggest.
    pub(crate) example: i64,
    /// Why the minimum, or what to do instead.
    pub(crate) below_min_hint: &'static str,
}

pub(crate) type Result<T> = std::result::Result<T, ConfigError>;

impl<'a> Walker<'a> {
    /// A walker over `src` (the text of `file`) for another file in ralph.toml's format
    /// (`stories.toml`), so that its errors and locations are made the same way.
    pub(crate) fn new(src: &'a str, file: &'a Path) -> Walker<'a> {
        Walker {
            src,
            file,
            locations: BTreeMap::new(),
        }
    }

    pub(crate) fn error(
        &self,
        span: Option<Range<usize>>,
        key: Option<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> ConfigError {
        let pos = span.map(|s| line_col(self.src, s.start));
        ConfigError {
            file: self.file.to_path_buf(),
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            key,
            message: message.into(),
            hint: Some(hint.into()).filter(|h: &String| !h.is_empty()),
        }
    }

    /// An error about an entry's value.
    pub(crate) fn bad(
        &self,
        e: &Entry,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> ConfigError {
        self.error(e.span(), Some(e.path()), message, hint)
    }

    pub(crate) fn record(&mut self, e: &Entry) {
        if let Some(span) = e.span() {
            self.locations
                .insert(e.path(), line_col(self.src, span.start));
        }
    }

    /// A section must be a table: `[agent]`, `agent.x = …` or `agent = { … }`.
    fn section<'i>(&self, e: &Entry<'i>) -> Result<&'i dyn TableLike> {
        if let Some(t) = e.item.as_table_like() {
            return Ok(t);
        }
        let name = e.name;
        let hint = match e.item {
            Item::ArrayOfTables(_) => {
                format!("write [{name}] (single brackets): there is one {name} section")
            }
            _ => format!("write [{name}] on a line of its own and put its keys below it"),
        };
        Err(self.bad(
            e,
            format!("expected a table [{name}], found {}", found(e.item)),
            hint,
        ))
    }

    fn unknown_top_level(&self, e: &Entry) -> ConfigError {
        let name = e.name;
        if UNSUPPORTED_SECTIONS.contains(&name) {
            return self.error(
                e.key_span.clone(),
                Some(name.to_string()),
                format!("[{name}] is not supported by this version of ralph yet"),
                format!("remove the [{name}] section and its keys: they would be ignored"),
            );
        }
        let sections: Vec<String> = SECTIONS.iter().map(|s| section_label(s)).collect();
        let sections = sections.join(", ");
        let is_table = e.item.is_table_like() || e.item.is_array_of_tables();
        if is_table {
            let label = if e.item.is_array_of_tables() {
                format!("[[{name}]]")
            } else {
                format!("[{name}]")
            };
            let hint = match suggest(name, SECTIONS) {
                Some(s) => format!(
                    "did you mean {}? valid sections: {sections}",
                    section_label(s)
                ),
                None => format!("valid sections: {sections}"),
            };
            return self.error(
                e.key_span.clone(),
                Some(name.to_string()),
                format!("unknown section {label}"),
                hint,
            );
        }
        let hint = match home_section(name) {
            Some(s) => format!(
                "`{name}` belongs in {}: move it below the {} line",
                section_label(s),
                section_label(s)
            ),
            None => format!("keys go inside a section; valid sections: {sections}"),
        };
        self.error(
            e.key_span.clone(),
            Some(name.to_string()),
            format!("unknown key `{name}` at the top level"),
            hint,
        )
    }

    fn unknown_key(&self, e: &Entry, section: &str) -> ConfigError {
        let name = e.name;
        let label = section_label(section);
        let valid = section_keys(section);
        let valid_list = valid.join(", ");
        let hint = if let Some(s) = suggest(name, valid).or_else(|| synonym(section, name)) {
            format!("did you mean `{s}`? valid keys: {valid_list}")
        } else if let Some(home) = home_section(name).filter(|h| *h != section) {
            format!(
                "`{name}` belongs in {}; valid keys here: {valid_list}",
                section_label(home)
            )
        } else {
            format!("valid keys: {valid_list}")
        };
        self.error(
            e.key_span.clone(),
            Some(e.path()),
            format!("unknown key `{name}` in {label}"),
            hint,
        )
    }
}

/// Names people reach for that are too far from ours for a spelling suggestion.
fn synonym(section: &str, key: &str) -> Option<&'static str> {
    let table: &[(&str, &str)] = match section {
        "agent" => &[
            ("cmd", "command"),
            ("tools", "allowed_tools"),
            ("allowlist", "allowed_tools"),
        ],
        "loop" => &[
            ("prompt", "prompt_file"),
            ("marker", "completion_marker"),
            ("timeout", "iteration_timeout"),
        ],
        "gates" => &[
            ("cmd", "run"),
            ("command", "run"),
            ("script", "run"),
            ("on", "when"),
        ],
        _ => &[],
    };
    table
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| *v)
}

/// The section a key belongs to, for "belongs in [budget]" hints.
fn home_section(key: &str) -> Option<&'static str> {
    // `gates` is a table of [sandbox], not a key anyone would misplace.
    SECTIONS
        .iter()
        .copied()
        .find(|s| *s != "gates" && key != "gates" && section_keys(s).contains(&key))
}

/// The raw text of a scalar value as written in the file.
trait RawText {
    fn to_string_lossy(&self, src: &str) -> String;
}

impl RawText for Value {
    fn to_string_lossy(&self, src: &str) -> String {
        self.span()
            .and_then(|s| src.get(s))
            .map(str::to_string)
            .unwrap_or_else(|| match self {
                Value::Integer(i) => i.value().to_string(),
                Value::Float(f) => super::text::float(*f.value()),
                Value::Boolean(b) => b.value().to_string(),
                Value::Datetime(d) => d.value().to_string(),
                Value::String(s) => s.value().clone(),
                _ => String::new(),
            })
    }
}

/// A key as TOML would need it written in a dotted path: bare if it can be, else quoted.
fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        key.to_string()
    } else {
        toml_string(key)
    }
}
