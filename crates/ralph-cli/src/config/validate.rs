//! Walk the parsed document, check every key and value, and build the [`ConfigFile`].
//!
//! Keys are visited in file order and the first problem is returned, so the error the user
//! sees is the topmost one. Rules that involve two keys (custom backend without a command,
//! allowlist without tools, max_delay below base_delay) run after their section is read.

// `ConfigError`'s public shape is part of the CLI contract, and an error ends the parse (it is
// the cold path, taken once), so its size does not matter here.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ralph_agents::{OutputFormat, PermissionMode, PromptVia};
use ralph_core::settings::{Gate, GateWhen, Limits, RetrySettings, RetryStrategy};
use toml_edit::{ImDocument, Item, TableLike, Value};

use super::duration::{format_duration, parse_detailed};
use super::text::{found, found_value, line_col, quote, suggest, toml_string};
use super::{
    normalize_backend, AgentConf, BudgetConf, ConfigError, ConfigFile, ContextConf, GitConf,
    LoopConf, PriceConf, RetryConf, SafetyConf, BACKEND_NAMES, DEFAULT_GATE_TIMEOUT,
};

pub(crate) const SECTIONS: &[&str] = &[
    "agent", "loop", "budget", "git", "retry", "context", "safety", "gates", "pricing",
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
];
pub(crate) const GIT_KEYS: &[&str] = &["checkpoint_every", "require", "max_untracked_mb"];
pub(crate) const SAFETY_KEYS: &[&str] = &[
    "max_files_changed",
    "protected_paths",
    "blocked_commands",
    "no_progress_iterations",
    "max_output_mb",
];
pub(crate) const RETRY_KEYS: &[&str] = &["strategy", "base_delay", "max_delay"];
pub(crate) const GATE_KEYS: &[&str] = &["name", "run", "when", "timeout"];
pub(crate) const CONTEXT_KEYS: &[&str] = &["notes_max_tokens", "summary_model"];
pub(crate) const PRICE_KEYS: &[&str] = &[
    "input",
    "output",
    "cache_read",
    "cache_write",
    "context_window",
];

/// Documented in CLI.md for later versions. Accepting them would mean silently ignoring a
/// limit the user relies on, so they are rejected until they are implemented.
const UNSUPPORTED_SECTIONS: &[&str] = &[];

fn section_keys(section: &str) -> &'static [&'static str] {
    match section {
        "agent" => AGENT_KEYS,
        "loop" => LOOP_KEYS,
        "budget" => BUDGET_KEYS,
        "git" => GIT_KEYS,
        "retry" => RETRY_KEYS,
        "gates" => GATE_KEYS,
        "pricing" => PRICE_KEYS,
        "context" => CONTEXT_KEYS,
        "safety" => SAFETY_KEYS,
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
            "safety" => conf.safety = w.safety(w.section(&e)?)?,
            _ => return Err(w.unknown_top_level(&e)),
        }
    }
    conf.locations = w.locations;
    Ok(conf)
}

/// One key of a table, with where it is.
struct Entry<'a> {
    /// Key path of the containing table (`agent`, `gates[0]`); `None` for the top level.
    section: Option<&'a str>,
    name: &'a str,
    item: &'a Item,
    key_span: Option<Range<usize>>,
}

impl Entry<'_> {
    fn path(&self) -> String {
        match self.section {
            Some(s) => format!("{s}.{}", self.name),
            None => self.name.to_string(),
        }
    }

    /// Where the value is; a dotted table (`a.b = 1`) may have no span of its own.
    fn span(&self) -> Option<Range<usize>> {
        self.item.span().or_else(|| self.key_span.clone())
    }
}

/// A table's entries with their key spans, in file order.
fn entries<'a>(section: &'a str, table: &'a dyn TableLike) -> Vec<Entry<'a>> {
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

struct Walker<'a> {
    src: &'a str,
    file: &'a Path,
    locations: BTreeMap<String, (usize, usize)>,
}

/// What a whole-number key accepts, and how to explain it.
struct IntRule {
    min: i64,
    max: i64,
    /// Shown in hints when the value gives no better number to suggest.
    example: i64,
    /// Why the minimum, or what to do instead.
    below_min_hint: &'static str,
}

type Result<T> = std::result::Result<T, ConfigError>;

impl<'a> Walker<'a> {
    fn error(
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
    fn bad(&self, e: &Entry, message: impl Into<String>, hint: impl Into<String>) -> ConfigError {
        self.error(e.span(), Some(e.path()), message, hint)
    }

    fn record(&mut self, e: &Entry) {
        if let Some(span) = e.span() {
            self.locations
                .insert(e.path(), line_col(self.src, span.start));
        }
    }

    // ----- structure -----

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

    // ----- sections -----

    fn agent(&mut self, table: &dyn TableLike) -> Result<AgentConf> {
        let mut conf = AgentConf::default();
        let mut backend_entry = None;
        let mut permissions_entry = None;
        let mut tools_entry = None;
        let mut allowlist = false;
        let mut sandbox = false;
        let mut tools: Option<Vec<String>> = None;
        let all = entries("agent", table);
        for e in &all {
            self.record(e);
            match e.name {
                "backend" => {
                    conf.backend = Some(self.backend(e)?.to_string());
                    backend_entry = Some(e);
                }
                "model" => {
                    conf.model = Some(self.nonempty_string(
                        e,
                        "claude-sonnet-4-5",
                        "remove the key to use the agent's default model",
                    )?)
                }
                "args" => conf.args = Some(self.strings(e, &["--verbose"])?),
                "priority" => conf.priority = Some(self.backend_list(e)?),
                "fallback" => conf.fallback = Some(self.backend_list_with_models(e)?),
                "command" => conf.command = Some(self.command(e)?),
                "prompt_via" => {
                    conf.prompt_via =
                        Some(match self.choice(e, &["stdin", "arg", "file"], "stdin")? {
                            "arg" => PromptVia::Arg,
                            "file" => PromptVia::File,
                            _ => PromptVia::Stdin,
                        })
                }
                "output" => conf.output = Some(self.output(e)?),
                "permissions" => {
                    let mode = self.choice(e, &["full", "allowlist", "sandbox"], "full")?;
                    allowlist = mode == "allowlist";
                    sandbox = mode == "sandbox";
                    permissions_entry = Some(e);
                }
                "allowed_tools" => {
                    let list = self.strings(e, &["Read", "Edit", "Bash(git diff *)"])?;
                    self.no_empty_items(e, &list, "a tool name such as \"Read\"")?;
                    tools = Some(list);
                    tools_entry = Some(e);
                }
                _ => return Err(self.unknown_key(e, "agent")),
            }
        }
        if conf.backend.as_deref() == Some("custom") && conf.command.is_none() {
            if let Some(e) = backend_entry {
                return Err(self.bad(
                    e,
                    "backend \"custom\" needs `agent.command`, the agent's command line",
                    "add command = [\"./my-agent\", \"--flag\"] to [agent]",
                ));
            }
        }
        let tools_given = tools.as_ref().is_some_and(|t| !t.is_empty());
        match (permissions_entry, allowlist) {
            (Some(pe), true) if !tools_given => {
                let e = tools_entry.unwrap_or(pe);
                return Err(self.bad(
                    e,
                    "permissions = \"allowlist\" needs at least one tool in `agent.allowed_tools`",
                    "add allowed_tools = [\"Read\", \"Edit\", \"Bash(git diff *)\"] to [agent], \
                     or use permissions = \"full\"",
                ));
            }
            (Some(_), true) => {
                conf.permissions = Some(PermissionMode::AllowList(tools.unwrap_or_default()));
            }
            (pe, _) => {
                if let (true, Some(te)) = (tools_given, tools_entry) {
                    // A tool list under full permissions would restrict nothing: say so
                    // rather than let the user believe the agent is sandboxed.
                    let full = match (pe.is_some(), sandbox) {
                        (true, true) => "with permissions = \"sandbox\"",
                        (true, false) => "with permissions = \"full\"",
                        _ => "by default",
                    };
                    return Err(self.error(
                        te.key_span.clone(),
                        Some(te.path()),
                        format!(
                            "only applies with permissions = \"allowlist\"; {full} the agent may \
                             use every tool"
                        ),
                        "set permissions = \"allowlist\" in [agent], or remove allowed_tools",
                    ));
                }
                if pe.is_some() {
                    conf.permissions = Some(if sandbox {
                        PermissionMode::Sandbox
                    } else {
                        PermissionMode::Full
                    });
                }
            }
        }
        Ok(conf)
    }

    fn loop_(&mut self, table: &dyn TableLike) -> Result<LoopConf> {
        let mut conf = LoopConf::default();
        let defaults = Limits::default();
        for e in &entries("loop", table) {
            self.record(e);
            match e.name {
                "prompt_file" => {
                    conf.prompt_file = Some(PathBuf::from(self.nonempty_string(
                        e,
                        "PROMPT.md",
                        "remove the key to use PROMPT.md",
                    )?))
                }
                "completion_marker" => conf.completion_marker = Some(self.marker(e)?),
                "max_iterations" => {
                    conf.max_iterations = Some(self.whole_u32(
                        e,
                        IntRule {
                            min: 1,
                            max: i64::from(u32::MAX),
                            example: 10,
                            below_min_hint: "at least one iteration is needed; remove the key \
                                             for the default (100)",
                        },
                    )?)
                }
                "max_runtime" => {
                    conf.max_runtime = Some(self.duration(e, false, defaults.max_runtime)?)
                }
                "iteration_timeout" => {
                    conf.iteration_timeout =
                        Some(self.duration(e, false, defaults.iteration_timeout)?)
                }
                "idle_timeout" => {
                    conf.idle_timeout = Some(self.duration(e, false, defaults.idle_timeout)?)
                }
                "max_consecutive_failures" => {
                    conf.max_consecutive_failures = Some(self.whole_u32(
                        e,
                        IntRule {
                            min: 1,
                            max: i64::from(u32::MAX),
                            example: 5,
                            below_min_hint: "1 gives up at the first failure; remove the key for \
                                             the default (5)",
                        },
                    )?)
                }
                _ => return Err(self.unknown_key(e, "loop")),
            }
        }
        Ok(conf)
    }

    fn budget(&mut self, table: &dyn TableLike) -> Result<BudgetConf> {
        let mut conf = BudgetConf::default();
        for e in &entries("budget", table) {
            self.record(e);
            match e.name {
                "max_cost_usd" => conf.max_cost_usd = Some(self.usd(e)?),
                "max_tokens" => {
                    let n = self.whole(
                        e,
                        IntRule {
                            min: 1,
                            max: i64::MAX,
                            example: 5_000_000,
                            below_min_hint: "remove the key for no token limit",
                        },
                    )?;
                    conf.max_tokens = Some(u64::try_from(n).unwrap_or(u64::MAX));
                }
                "daily_usd" => conf.daily_usd = Some(self.usd(e)?),
                "monthly_usd" => conf.monthly_usd = Some(self.usd(e)?),
                "alert_at" => conf.alert_at = Some(self.fractions(e)?),
                "stop_before_exceeding" => {
                    conf.stop_before_exceeding = Some(self.boolean(e, "true")?)
                }
                "ledger" => {
                    conf.ledger = Some(PathBuf::from(self.nonempty_string(
                        e,
                        "~/.local/share/ralph/ledger.db",
                        "remove the key to use $RALPH_HOME or the XDG data directory",
                    )?))
                }
                _ => return Err(self.unknown_key(e, "budget")),
            }
        }
        Ok(conf)
    }

    /// `[pricing."model"]`: per-model prices in USD per million tokens, overriding or adding
    /// to the built-in table.
    fn pricing(&mut self, table: &dyn TableLike) -> Result<BTreeMap<String, PriceConf>> {
        let mut out = BTreeMap::new();
        // Entry paths borrow their section name; build the names first.
        let names: Vec<(String, String)> = table
            .iter()
            .map(|(model, _)| (model.to_string(), format!("pricing.{}", toml_key(model))))
            .collect();
        for ((model, path), e) in names.iter().zip(entries("pricing", table)) {
            self.record(&e);
            let Some(inner) = e.item.as_table_like() else {
                return Err(self.bad(
                    &e,
                    format!("expected a table of prices, found {}", found(e.item)),
                    format!(
                        "write [{path}] with input = 3.0 and output = 15.0 (USD per million tokens)"
                    ),
                ));
            };
            let mut price = PriceConf::default();
            for pe in &entries(path, inner) {
                self.record(pe);
                match pe.name {
                    "input" => price.input = Some(self.per_mtok(pe)?),
                    "output" => price.output = Some(self.per_mtok(pe)?),
                    "cache_read" => price.cache_read = Some(self.per_mtok(pe)?),
                    "cache_write" => price.cache_write = Some(self.per_mtok(pe)?),
                    "context_window" => {
                        let n = self.whole(
                            pe,
                            IntRule {
                                min: 1,
                                max: i64::MAX,
                                example: 200_000,
                                below_min_hint: "remove the key if the window is not known",
                            },
                        )?;
                        price.context_window = Some(u64::try_from(n).unwrap_or(u64::MAX));
                    }
                    _ => return Err(self.unknown_key(pe, "pricing")),
                }
            }
            out.insert(model.clone(), price);
        }
        Ok(out)
    }

    fn boolean(&self, e: &Entry, example: &str) -> Result<bool> {
        match e.item.as_value() {
            Some(Value::Boolean(b)) => Ok(*b.value()),
            _ => Err(self.bad(
                e,
                format!("expected true or false, found {}", found(e.item)),
                format!("write {} = {example} (no quotes)", e.name),
            )),
        }
    }

    /// `alert_at`: fractions of a cap, each in (0, 1], in ascending order.
    fn fractions(&self, e: &Entry) -> Result<Vec<f64>> {
        let hint = "write alert_at = [0.5, 0.8, 1.0] (fractions of the cap, ascending)";
        let Some(Value::Array(items)) = e.item.as_value() else {
            return Err(self.bad(
                e,
                format!("expected an array of fractions, found {}", found(e.item)),
                hint,
            ));
        };
        let mut out: Vec<f64> = Vec::new();
        for (i, v) in items.iter().enumerate() {
            let f = match v {
                Value::Float(f) => *f.value(),
                Value::Integer(n) => *n.value() as f64,
                _ => f64::NAN,
            };
            let ok = f.is_finite() && f > 0.0 && f <= 1.0 && out.last().is_none_or(|p| *p < f);
            if !ok {
                return Err(self.error(
                    v.span(),
                    Some(format!("{}[{i}]", e.path())),
                    format!(
                        "expected a fraction above the previous one and at most 1, found {}",
                        found_value(v)
                    ),
                    hint,
                ));
            }
            out.push(f);
        }
        Ok(out)
    }

    /// A price in USD per million tokens: a number ≥ 0 (free models exist).
    fn per_mtok(&self, e: &Entry) -> Result<f64> {
        let value = match e.item.as_value() {
            Some(Value::Float(f)) => Some(*f.value()),
            Some(Value::Integer(i)) => Some(*i.value() as f64),
            _ => None,
        };
        match value {
            Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
            _ => Err(self.bad(
                e,
                format!(
                    "expected a price in US dollars per million tokens (a number ≥ 0), found {}",
                    found(e.item)
                ),
                format!("write {} = 3.0", e.name),
            )),
        }
    }

    fn context(&mut self, table: &dyn TableLike) -> Result<ContextConf> {
        let mut conf = ContextConf::default();
        for e in &entries("context", table) {
            self.record(e);
            match e.name {
                "notes_max_tokens" => {
                    let n = self.whole(
                        e,
                        IntRule {
                            min: 100,
                            max: i64::from(u32::MAX),
                            example: 2000,
                            below_min_hint: "notes under 100 tokens cannot say anything useful; \
                                             remove the key for the default (2000)",
                        },
                    )?;
                    conf.notes_max_tokens = Some(u64::try_from(n).unwrap_or(2000));
                }
                "summary_model" => {
                    let m = self.string(e, "claude-haiku-4-5")?;
                    // An empty string (the template's value) means "the agent's own model".
                    conf.summary_model = (!m.trim().is_empty()).then(|| m.to_string());
                }
                _ => return Err(self.unknown_key(e, "context")),
            }
        }
        Ok(conf)
    }

    fn safety(&mut self, table: &dyn TableLike) -> Result<SafetyConf> {
        let mut conf = SafetyConf::default();
        for e in &entries("safety", table) {
            self.record(e);
            let count = |w: &Self, e: &Entry, min: i64, example: i64, hint: &'static str| {
                w.whole_u32(
                    e,
                    IntRule {
                        min,
                        max: i64::from(u32::MAX),
                        example,
                        below_min_hint: hint,
                    },
                )
            };
            match e.name {
                "max_files_changed" => {
                    conf.max_files_changed = Some(count(
                        self,
                        e,
                        1,
                        200,
                        "at least one file must be allowed to change",
                    )?)
                }
                "no_progress_iterations" => {
                    conf.no_progress_iterations = Some(count(
                        self,
                        e,
                        1,
                        3,
                        "at least one iteration without progress",
                    )?)
                }
                "max_output_mb" => {
                    conf.max_output_mb = Some(u64::from(count(
                        self,
                        e,
                        1,
                        100,
                        "agent output per iteration, in MiB, kept in the artifact",
                    )?))
                }
                "protected_paths" => {
                    let list = self.strings(e, &[".git/**", ".ralph/**", "ralph.toml"])?;
                    self.no_empty_items(e, &list, "a glob such as \".env\"")?;
                    if let Err(err) = ralph_core::guard::PathGuard::new(&list) {
                        return Err(self.bad(
                            e,
                            format!("invalid glob: {err}"),
                            "write globs like \".git/**\", \"secrets/*.key\", \"ralph.toml\"",
                        ));
                    }
                    conf.protected_paths = Some(list);
                }
                "blocked_commands" => {
                    let list = self.strings(e, &["npm publish", "re:^terraform\\s+destroy"])?;
                    self.no_empty_items(e, &list, "a command prefix such as \"npm publish\"")?;
                    if let Err(err) = ralph_core::guard::CommandGuard::new(&list) {
                        return Err(self.bad(
                            e,
                            format!("invalid blocked command: {err}"),
                            "a plain command prefix like \"npm publish\", or \"re:<regex>\" with a \
                             valid Rust regex",
                        ));
                    }
                    conf.blocked_commands = Some(list);
                }
                _ => return Err(self.unknown_key(e, "safety")),
            }
        }
        Ok(conf)
    }

    fn git(&mut self, table: &dyn TableLike) -> Result<GitConf> {
        let mut conf = GitConf::default();
        for e in &entries("git", table) {
            self.record(e);
            match e.name {
                "checkpoint_every" => {
                    conf.checkpoint_every = Some(self.whole_u32(
                        e,
                        IntRule {
                            min: 0,
                            max: i64::from(u32::MAX),
                            example: 1,
                            below_min_hint: "use 0 to turn checkpoints off",
                        },
                    )?)
                }
                "require" => conf.require = Some(self.boolean(e, "true")?),
                "max_untracked_mb" => {
                    conf.max_untracked_mb = Some(u64::from(self.whole_u32(
                        e,
                        IntRule {
                            min: 1,
                            max: i64::from(u32::MAX),
                            example: 10,
                            below_min_hint: "untracked files up to this size go into checkpoints",
                        },
                    )?))
                }
                _ => return Err(self.unknown_key(e, "git")),
            }
        }
        Ok(conf)
    }

    fn retry(&mut self, table: &dyn TableLike) -> Result<RetryConf> {
        let mut conf = RetryConf::default();
        let defaults = RetrySettings::default();
        let mut base_entry = None;
        let mut max_entry = None;
        let all = entries("retry", table);
        for e in &all {
            self.record(e);
            match e.name {
                "strategy" => {
                    conf.strategy = Some(
                        match self.choice(
                            e,
                            &["immediate", "linear", "exponential"],
                            "exponential",
                        )? {
                            "immediate" => RetryStrategy::Immediate,
                            "linear" => RetryStrategy::Linear,
                            _ => RetryStrategy::Exponential,
                        },
                    )
                }
                "base_delay" => {
                    conf.base_delay = Some(self.duration(e, true, defaults.base_delay)?);
                    base_entry = Some(e);
                }
                "max_delay" => {
                    conf.max_delay = Some(self.duration(e, true, defaults.max_delay)?);
                    max_entry = Some(e);
                }
                _ => return Err(self.unknown_key(e, "retry")),
            }
        }
        // Checked against the defaults too: there are no flags for these, so the values
        // checked here are the values the engine will use.
        let base = conf.base_delay.unwrap_or(defaults.base_delay);
        let max = conf.max_delay.unwrap_or(defaults.max_delay);
        if max < base {
            let (b, m) = (format_duration(base), format_duration(max));
            let err = match (base_entry, max_entry) {
                (_, Some(me)) if conf.max_delay.is_some() && conf.base_delay.is_some() => self.bad(
                    me,
                    format!("max_delay ({m}) is shorter than base_delay ({b})"),
                    format!("write max_delay = \"{b}\" or more, or lower base_delay"),
                ),
                (_, Some(me)) => self.bad(
                    me,
                    format!("max_delay ({m}) is shorter than the default base_delay ({b})"),
                    format!("write max_delay = \"{b}\" or more, or set a lower base_delay"),
                ),
                (Some(be), _) => self.bad(
                    be,
                    format!("base_delay ({b}) is longer than the default max_delay ({m})"),
                    format!("also set max_delay = \"{b}\" (or more), or lower base_delay"),
                ),
                (None, None) => return Ok(conf),
            };
            return Err(err);
        }
        Ok(conf)
    }

    fn gates(&mut self, e: &Entry) -> Result<Vec<Gate>> {
        // `[[gates]]` blocks, or `gates = [{ … }, { … }]`.
        let tables: Vec<(&dyn TableLike, Option<Range<usize>>)> = match e.item {
            Item::ArrayOfTables(a) => a.iter().map(|t| (t as &dyn TableLike, t.span())).collect(),
            Item::Value(Value::Array(a)) => {
                let mut v: Vec<(&dyn TableLike, Option<Range<usize>>)> = Vec::new();
                for (i, item) in a.iter().enumerate() {
                    match item {
                        Value::InlineTable(t) => v.push((t as &dyn TableLike, t.span())),
                        other => {
                            return Err(self.error(
                                other.span(),
                                Some(format!("gates[{i}]")),
                                format!("expected a table for each gate, found {}", found_value(other)),
                                "write each gate as a [[gates]] block with name = \"…\" and run = \"…\"",
                            ))
                        }
                    }
                }
                v
            }
            other => {
                return Err(self.bad(
                    e,
                    format!(
                        "expected an array of tables [[gates]], found {}",
                        found(other)
                    ),
                    "write [[gates]] (double brackets) above every gate",
                ))
            }
        };
        let mut gates: Vec<Gate> = Vec::new();
        let mut names: Vec<(String, usize)> = Vec::new();
        for (i, (table, span)) in tables.into_iter().enumerate() {
            let section = format!("gates[{i}]");
            let gate = self.gate(&section, table, span.clone())?;
            let name_entry = entries(&section, table)
                .into_iter()
                .find(|e| e.name == "name");
            let name_line = name_entry
                .as_ref()
                .and_then(Entry::span)
                .map_or(0, |s| line_col(self.src, s.start).0);
            if let Some((_, first_line)) = names.iter().find(|(n, _)| *n == gate.name) {
                let err_span = name_entry.as_ref().and_then(Entry::span).or(span);
                return Err(self.error(
                    err_span,
                    Some(format!("{section}.name")),
                    format!(
                        "duplicate gate name {} (also used by the gate on line {first_line})",
                        quote(&gate.name)
                    ),
                    "give each gate its own name: it names the log file gate-<name>.log",
                ));
            }
            names.push((gate.name.clone(), name_line));
            gates.push(gate);
        }
        Ok(gates)
    }

    fn gate(
        &mut self,
        section: &str,
        table: &dyn TableLike,
        span: Option<Range<usize>>,
    ) -> Result<Gate> {
        let mut name = None;
        let mut run = None;
        let mut when = GateWhen::Complete;
        let mut timeout = DEFAULT_GATE_TIMEOUT;
        for e in &entries(section, table) {
            self.record(e);
            match e.name {
                "name" => name = Some(self.gate_name(e)?),
                "run" => {
                    run = Some(self.nonempty_string(
                        e,
                        "cargo test",
                        "write the shell command to run, e.g. run = \"cargo test\"",
                    )?)
                }
                "when" => {
                    when = match self.choice(e, &["complete", "iteration"], "complete")? {
                        "iteration" => GateWhen::Iteration,
                        _ => GateWhen::Complete,
                    }
                }
                "timeout" => timeout = self.duration(e, false, DEFAULT_GATE_TIMEOUT)?,
                _ => return Err(self.unknown_key(e, "gates")),
            }
        }
        let missing = |key: &str, hint: &str| {
            self.error(
                span.clone(),
                Some(format!("{section}.{key}")),
                format!("this gate has no `{key}`"),
                hint,
            )
        };
        let name = name.ok_or_else(|| {
            missing(
                "name",
                "add name = \"tests\" (it names the log file gate-tests.log)",
            )
        })?;
        let run = run.ok_or_else(|| {
            missing(
                "run",
                "add run = \"cargo test\": the command run by sh -c in the project",
            )
        })?;
        Ok(Gate {
            name,
            run,
            when,
            timeout,
        })
    }

    // ----- values -----

    fn string<'i>(&self, e: &Entry<'i>, example: &str) -> Result<&'i str> {
        match e.item.as_value() {
            Some(Value::String(s)) => Ok(s.value()),
            Some(
                v @ (Value::Integer(_) | Value::Float(_) | Value::Boolean(_) | Value::Datetime(_)),
            ) => {
                let raw = v.to_string_lossy(self.src);
                Err(self.bad(
                    e,
                    format!("expected a string, found {}", found(e.item)),
                    format!("write {} = {} (in quotes)", e.name, toml_string(&raw)),
                ))
            }
            _ => Err(self.bad(
                e,
                format!("expected a string, found {}", found(e.item)),
                format!("write {} = {}", e.name, toml_string(example)),
            )),
        }
    }

    fn nonempty_string(&self, e: &Entry, example: &str, empty_hint: &str) -> Result<String> {
        let s = self.string(e, example)?;
        if s.trim().is_empty() {
            return Err(self.bad(
                e,
                format!("expected a non-empty string, found {}", found(e.item)),
                empty_hint,
            ));
        }
        Ok(s.to_string())
    }

    /// An array of strings; `example` is used in hints.
    fn strings(&self, e: &Entry, example: &[&str]) -> Result<Vec<String>> {
        let example_array = |items: &[&str]| {
            let quoted: Vec<String> = items.iter().map(|s| toml_string(s)).collect();
            format!("[{}]", quoted.join(", "))
        };
        match e.item.as_value() {
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    match v {
                        Value::String(s) => out.push(s.value().clone()),
                        other => {
                            let quoted: Vec<String> = a
                                .iter()
                                .map(|v| match v {
                                    Value::String(s) => s.value().clone(),
                                    v => v.to_string_lossy(self.src),
                                })
                                .collect();
                            let quoted: Vec<&str> = quoted.iter().map(String::as_str).collect();
                            return Err(self.error(
                                other.span(),
                                Some(format!("{}[{i}]", e.path())),
                                format!("expected a string, found {}", found_value(other)),
                                format!(
                                    "quote every item: {} = {}",
                                    e.name,
                                    example_array(&quoted)
                                ),
                            ));
                        }
                    }
                }
                Ok(out)
            }
            Some(Value::String(s)) => {
                let words: Vec<&str> = s.value().split_whitespace().collect();
                let suggestion = if words.is_empty() {
                    example.to_vec()
                } else {
                    words
                };
                Err(self.bad(
                    e,
                    format!("expected an array of strings, found {}", found(e.item)),
                    format!("write {} = {}", e.name, example_array(&suggestion)),
                ))
            }
            _ => Err(self.bad(
                e,
                format!("expected an array of strings, found {}", found(e.item)),
                format!("write {} = {}", e.name, example_array(example)),
            )),
        }
    }

    fn no_empty_items(&self, e: &Entry, items: &[String], what: &str) -> Result<()> {
        if let (Some(i), Some(Value::Array(a))) = (
            items.iter().position(|s| s.trim().is_empty()),
            e.item.as_value(),
        ) {
            return Err(self.error(
                a.get(i).and_then(Value::span),
                Some(format!("{}[{i}]", e.path())),
                "expected a non-empty string, found an empty string",
                format!("remove the empty item or write {what}"),
            ));
        }
        Ok(())
    }

    fn command(&self, e: &Entry) -> Result<Vec<String>> {
        let argv = self.strings(e, &["./my-agent", "--flag"])?;
        if argv.is_empty() {
            return Err(self.bad(
                e,
                "expected at least the program to run, found an empty array",
                "write command = [\"./my-agent\", \"--flag\"] (the program first, then its arguments)",
            ));
        }
        if argv[0].trim().is_empty() {
            if let Some(Value::Array(a)) = e.item.as_value() {
                return Err(self.error(
                    a.get(0).and_then(Value::span),
                    Some(format!("{}[0]", e.path())),
                    "the program name (the first item) is empty",
                    "write command = [\"./my-agent\", \"--flag\"] (the program first, then its arguments)",
                ));
            }
        }
        Ok(argv)
    }

    /// One of `choices`. Returns the matching `&'static str` so callers can `match` on it.
    fn choice(&self, e: &Entry, choices: &[&'static str], example: &str) -> Result<&'static str> {
        let list: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
        let list = list.join(", ");
        let s = self.string(e, example).map_err(|_| {
            self.bad(
                e,
                format!("expected one of {list}, found {}", found(e.item)),
                format!("write {} = \"{example}\"", e.name),
            )
        })?;
        if let Some(c) = choices.iter().find(|c| **c == s) {
            return Ok(c);
        }
        let hint = match suggest(s, choices) {
            Some(c) => format!("did you mean \"{c}\"? write {} = \"{c}\"", e.name),
            None => format!("write {} = \"{example}\"", e.name),
        };
        Err(self.bad(
            e,
            format!("expected one of {list}, found {}", found(e.item)),
            hint,
        ))
    }

    fn backend(&self, e: &Entry) -> Result<&'static str> {
        let Some(Value::String(s)) = e.item.as_value() else {
            return Err(self.bad(
                e,
                format!("expected a backend name in quotes, found {}", found(e.item)),
                format!(
                    "write backend = \"claude\"; valid backends: {}",
                    BACKEND_NAMES.join(", ")
                ),
            ));
        };
        let s = s.value().as_str();
        normalize_backend(s).map_err(|_| self.unknown_backend(s, e.span(), e.path()))
    }

    fn unknown_backend(&self, s: &str, span: Option<Range<usize>>, key: String) -> ConfigError {
        let valid = BACKEND_NAMES.join(", ");
        let hint = match suggest(s, BACKEND_NAMES) {
            Some(c) => format!("did you mean \"{c}\"? valid backends: {valid}"),
            None => format!("valid backends: {valid}"),
        };
        self.error(
            span,
            Some(key),
            format!("unknown backend {}", quote(s)),
            hint,
        )
    }

    fn backend_list(&self, e: &Entry) -> Result<Vec<String>> {
        let names = self.strings(e, &["claude", "codex"])?;
        let spans: Vec<Option<Range<usize>>> = match e.item.as_value() {
            Some(Value::Array(a)) => a.iter().map(Value::span).collect(),
            _ => Vec::new(),
        };
        let mut out = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let span = spans.get(i).cloned().flatten();
            let key = format!("{}[{i}]", e.path());
            match normalize_backend(name) {
                Ok("auto") => {
                    return Err(self.error(
                        span,
                        Some(key),
                        format!("\"auto\" cannot be listed in `{}`", e.path()),
                        "list concrete backends, e.g. [\"claude\", \"codex\"]",
                    ))
                }
                Ok(b) => out.push(b.to_string()),
                Err(_) => return Err(self.unknown_backend(name, span, key)),
            }
        }
        Ok(out)
    }

    /// `agent.fallback`: backend names, each optionally with the model to use,
    /// `"codex:gpt-5.5"` (a fallback rarely wants the primary agent's model).
    fn backend_list_with_models(&self, e: &Entry) -> Result<Vec<String>> {
        let names = self.strings(e, &["codex", "gemini:gemini-2.5-pro"])?;
        let spans: Vec<Option<Range<usize>>> = match e.item.as_value() {
            Some(Value::Array(a)) => a.iter().map(Value::span).collect(),
            _ => Vec::new(),
        };
        let mut out = Vec::new();
        for (i, entry) in names.iter().enumerate() {
            let span = spans.get(i).cloned().flatten();
            let key = format!("{}[{i}]", e.path());
            let (name, model) = match entry.split_once(':') {
                Some((n, m)) => (n, Some(m)),
                None => (entry.as_str(), None),
            };
            if model.is_some_and(|m| m.trim().is_empty()) {
                return Err(self.error(
                    span,
                    Some(key),
                    format!("{} names no model after the colon", quote(entry)),
                    "write \"backend\" or \"backend:model\", e.g. \"codex:gpt-5.5\"",
                ));
            }
            match normalize_backend(name) {
                Ok("auto") => {
                    return Err(self.error(
                        span,
                        Some(key),
                        format!("\"auto\" cannot be listed in `{}`", e.path()),
                        "list concrete backends, e.g. [\"codex\", \"gemini:gemini-2.5-pro\"]",
                    ))
                }
                Ok(b) => out.push(match model {
                    Some(m) => format!("{b}:{m}"),
                    None => b.to_string(),
                }),
                Err(_) => return Err(self.unknown_backend(name, span, key)),
            }
        }
        Ok(out)
    }

    fn output(&self, e: &Entry) -> Result<OutputFormat> {
        let name = self.choice(e, OutputFormat::NAMES, "text")?;
        Ok(OutputFormat::parse(name).unwrap_or_default())
    }

    fn marker(&self, e: &Entry) -> Result<String> {
        let s = self.string(e, "LOOP_COMPLETE")?;
        let fix = |hint: &str| format!("{hint}, e.g. completion_marker = \"LOOP_COMPLETE\"");
        if s.trim().is_empty() {
            return Err(self.bad(
                e,
                format!("expected a non-empty marker, found {}", found(e.item)),
                fix("write a word the agent would not print by accident"),
            ));
        }
        if s.contains(['\n', '\r']) {
            return Err(self.bad(
                e,
                format!("the marker must be a single line, found {}", found(e.item)),
                fix("the agent prints the marker on a line of its own; use one line"),
            ));
        }
        if s.trim() != s {
            return Err(self.bad(
                e,
                format!("the marker has spaces around it: {}", quote(s)),
                format!("write completion_marker = {}", toml_string(s.trim())),
            ));
        }
        Ok(s.to_string())
    }

    fn gate_name(&self, e: &Entry) -> Result<String> {
        let s = self.string(e, "tests")?;
        if s.is_empty() {
            return Err(self.bad(
                e,
                "expected a gate name, found an empty string",
                "write name = \"tests\" (it names the log file gate-tests.log)",
            ));
        }
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if !s.chars().all(ok) {
            let fixed: String = s.chars().map(|c| if ok(c) { c } else { '-' }).collect();
            return Err(self.bad(
                e,
                format!(
                    "gate name {} may only contain letters, digits, `_`, `.` and `-`",
                    quote(s)
                ),
                format!(
                    "it becomes the log file name gate-<name>.log; write name = {}",
                    toml_string(&fixed)
                ),
            ));
        }
        Ok(s.to_string())
    }

    fn whole_u32(&self, e: &Entry, rule: IntRule) -> Result<u32> {
        let n = self.whole(e, rule)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn whole(&self, e: &Entry, rule: IntRule) -> Result<i64> {
        let expected = format!("expected a whole number ≥ {}", rule.min);
        let name = e.name;
        match e.item.as_value() {
            Some(Value::Integer(i)) => {
                let n = *i.value();
                if n < rule.min {
                    return Err(self.bad(
                        e,
                        format!("{expected}, found {}", found(e.item)),
                        rule.below_min_hint,
                    ));
                }
                if n > rule.max {
                    return Err(self.bad(
                        e,
                        format!(
                            "expected a whole number ≤ {}, found {}",
                            rule.max,
                            found(e.item)
                        ),
                        format!("write {name} = {}", rule.example),
                    ));
                }
                Ok(n)
            }
            Some(Value::Float(f)) => {
                let f = *f.value();
                let hint = if f.is_finite()
                    && f.fract() == 0.0
                    && f >= rule.min as f64
                    && f <= rule.max as f64
                {
                    format!("write {name} = {} (no decimal point)", f as i64)
                } else {
                    format!("write a whole number, e.g. {name} = {}", rule.example)
                };
                Err(self.bad(e, format!("{expected}, found {}", found(e.item)), hint))
            }
            Some(Value::String(s)) => {
                let number = s.value().trim().replace('_', "").parse::<i64>().ok();
                let n = number
                    .filter(|n| (rule.min..=rule.max).contains(n))
                    .unwrap_or(rule.example);
                Err(self.bad(
                    e,
                    format!("{expected}, found {}", found(e.item)),
                    format!("write {name} = {n} (no quotes)"),
                ))
            }
            _ => Err(self.bad(
                e,
                format!("{expected}, found {}", found(e.item)),
                format!("write {name} = {}", rule.example),
            )),
        }
    }

    fn usd(&self, e: &Entry) -> Result<f64> {
        let expected = "expected an amount of US dollars greater than 0";
        let example = match e.name {
            "daily_usd" => "100.0",
            "monthly_usd" => "1000.0",
            _ => "25.0",
        };
        let hint_example = format!(
            "write {} = {example}, or remove the key for no limit",
            e.name
        );
        let hint_example = hint_example.as_str();
        let value = match e.item.as_value() {
            Some(Value::Float(f)) => *f.value(),
            Some(Value::Integer(i)) => *i.value() as f64,
            Some(Value::String(s)) => {
                let t = s.value().trim();
                let amount = t.trim_start_matches('$').trim().parse::<f64>().ok();
                let hint = match amount.filter(|a| a.is_finite() && *a > 0.0) {
                    Some(a) => format!(
                        "write {} = {} (no quotes, no $)",
                        e.name,
                        super::text::float(a)
                    ),
                    None => hint_example.to_string(),
                };
                return Err(self.bad(e, format!("{expected}, found {}", found(e.item)), hint));
            }
            _ => {
                return Err(self.bad(
                    e,
                    format!("{expected}, found {}", found(e.item)),
                    hint_example,
                ))
            }
        };
        if !value.is_finite() || value <= 0.0 {
            return Err(self.bad(
                e,
                format!("{expected}, found {}", found(e.item)),
                hint_example,
            ));
        }
        Ok(value)
    }

    fn duration(&self, e: &Entry, allow_zero: bool, default: Duration) -> Result<Duration> {
        let name = e.name;
        let units = "a number with a unit: ms, s, m, h or d, combined as in \"1h30m\"";
        let example = format!("write {name} = \"{}\" ({units})", format_duration(default));
        match e.item.as_value() {
            Some(Value::String(s)) => match parse_detailed(s.value()) {
                Ok(d) if d.is_zero() && !allow_zero => Err(self.bad(
                    e,
                    format!(
                        "expected a duration longer than 0s, found {}",
                        found(e.item)
                    ),
                    format!(
                        "a zero limit would stop at once; remove the key for the default ({})",
                        format_duration(default)
                    ),
                )),
                Ok(d) => Ok(d),
                Err(err) => {
                    let hint = match err.fix {
                        Some(fix) => format!("write {name} = \"{fix}\" ({units})"),
                        None => example,
                    };
                    Err(self.bad(
                        e,
                        format!("invalid duration {}: {}", quote(s.value()), err.reason),
                        hint,
                    ))
                }
            },
            Some(Value::Integer(i)) if *i.value() > 0 => Err(self.bad(
                e,
                format!(
                    "expected a duration string such as \"30m\", found {}",
                    found(e.item)
                ),
                format!("write {name} = \"{}s\" ({units})", i.value()),
            )),
            _ => Err(self.bad(
                e,
                format!(
                    "expected a duration string such as \"30m\", found {}",
                    found(e.item)
                ),
                example,
            )),
        }
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
    SECTIONS
        .iter()
        .copied()
        .find(|s| *s != "gates" && section_keys(s).contains(&key))
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
