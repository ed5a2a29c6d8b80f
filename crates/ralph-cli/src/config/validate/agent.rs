//! `[agent]`: the backend and its fallbacks, the custom command, permissions and tools.

use std::ops::Range;

use ralph_agents::{OutputFormat, PermissionMode, PromptVia};
use toml_edit::{TableLike, Value};

use super::{entries, Entry, Result, Walker};
use crate::config::text::{found, quote, suggest};
use crate::config::{backend_names, normalize_backend, AgentConf, ConfigError};

impl Walker<'_> {
    pub(crate) fn agent(&mut self, table: &dyn TableLike) -> Result<AgentConf> {
        self.agent_entries(&entries("agent", table))
    }

    /// `[agent]`'s keys from any table (stories.toml's `[defaults]` and `[story.agent]` pass
    /// the entries that are agent keys), with the same checks of keys that go together.
    pub(crate) fn agent_entries(&mut self, all: &[Entry]) -> Result<AgentConf> {
        let mut conf = AgentConf::default();
        let mut backend_entry = None;
        let mut permissions_entry = None;
        let mut prompt_via_entry = None;
        let mut tools_entry = None;
        let mut allowlist = false;
        let mut sandbox = false;
        let mut tools: Option<Vec<String>> = None;
        for e in all {
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
                    prompt_via_entry = Some(e);
                    conf.prompt_via = Some(match self.choice(e, super::PROMPT_VIAS, "stdin")? {
                        "arg" => PromptVia::Arg,
                        "file" => PromptVia::File,
                        _ => PromptVia::Stdin,
                    })
                }
                "output" => conf.output = Some(self.output(e)?),
                "permissions" => {
                    let mode = self.choice(e, super::PERMISSION_MODES, "full")?;
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
        if let (Some(PromptVia::File), Some(e)) = (conf.prompt_via, prompt_via_entry) {
            let placeholder = ralph_agents::PROMPT_FILE_PLACEHOLDER;
            let named = conf
                .command
                .iter()
                .flatten()
                .chain(conf.args.iter().flatten())
                .any(|a| a.contains(placeholder));
            if !named {
                return Err(self.bad(
                    e,
                    format!(
                        "prompt_via = \"file\" needs {placeholder} in `agent.command` or \
                         `agent.args`: it is where the prompt file's path goes"
                    ),
                    format!(
                        "write it where the agent expects the path, e.g. command = \
                         [\"./my-agent\", \"--prompt-file\", \"{placeholder}\"]"
                    ),
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

    pub(crate) fn command(&self, e: &Entry) -> Result<Vec<String>> {
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

    pub(crate) fn backend(&self, e: &Entry) -> Result<&'static str> {
        let Some(Value::String(s)) = e.item.as_value() else {
            return Err(self.bad(
                e,
                format!("expected a backend name in quotes, found {}", found(e.item)),
                format!(
                    "write backend = \"claude\"; valid backends: {}",
                    backend_names().join(", ")
                ),
            ));
        };
        let s = s.value().as_str();
        normalize_backend(s).map_err(|_| self.unknown_backend(s, e.span(), e.path()))
    }

    pub(crate) fn unknown_backend(
        &self,
        s: &str,
        span: Option<Range<usize>>,
        key: String,
    ) -> ConfigError {
        let valid = backend_names().join(", ");
        let hint = match suggest(s, backend_names()) {
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

    pub(crate) fn backend_list(&self, e: &Entry) -> Result<Vec<String>> {
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
    pub(crate) fn backend_list_with_models(&self, e: &Entry) -> Result<Vec<String>> {
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

    pub(crate) fn output(&self, e: &Entry) -> Result<OutputFormat> {
        let name = self.choice(e, OutputFormat::NAMES, "text")?;
        Ok(OutputFormat::parse(name).unwrap_or_default())
    }
}
