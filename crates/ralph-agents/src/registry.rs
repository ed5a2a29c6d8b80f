//! The registry: every backend this build knows, and the static facts about each one that the
//! rest of ralph needs without building a backend (config names and aliases, the order of
//! `backend = "auto"`, install hints, credentials, network hosts, state directories, tools).
//!
//! # Adding a backend
//!
//! Each backend module exports one [`BackendDescriptor`] (`DESCRIPTOR`) and its backend type
//! returns it from [`Backend::descriptor`]. Adding a backend is:
//!
//! 1. a new module `src/<name>.rs` (declared in `lib.rs`, its types re-exported there) with the
//!    backend type, its stream parser and its `DESCRIPTOR`;
//! 2. one line in [`BACKENDS`] below, at its place in the default priority.
//!
//! Everything else reads the table: [`backend_names`], [`all_names_with_aliases`],
//! [`resolve_name`], [`default_priority`], [`install_hint`], [`builtin_backend`] and the
//! backend-agnostic tool table of [`crate::tools`]. Only a new `agent.output` format (for
//! `custom` commands that print that CLI's stream) also needs an [`OutputFormat`] variant.
//!
//! # Sources
//!
//! Facts come from `shared/reference/agent-clis.md` (measured against the real CLIs) where it
//! has them; Cursor and Kiro could not be installed there, so theirs come from the vendors'
//! documentation, as the comment on each entry says.

use std::sync::LazyLock;

use crate::backend::{Backend, BackendConfig, OutputFormat, PromptVia};
use crate::tools::ToolTable;

/// Every backend, in the default priority order of `backend = "auto"`; `custom` last.
static BACKENDS: &[&BackendDescriptor] = &[
    &crate::claude::DESCRIPTOR,
    &crate::codex::DESCRIPTOR,
    &crate::gemini::DESCRIPTOR,
    &crate::opencode::DESCRIPTOR,
    &crate::copilot::DESCRIPTOR,
    &crate::kiro::DESCRIPTOR,
    &crate::amp::DESCRIPTOR,
    &crate::cursor::DESCRIPTOR,
    &crate::custom::DESCRIPTOR,
];

/// How to install an agent CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// An npm package: `npm install -g <package>`.
    Npm(&'static str),
    /// The vendor's installer command (the CLI is not on npm).
    Script(&'static str),
    /// Nothing to install: the command is the user's own (`custom`).
    UserCommand,
}

impl Install {
    /// The npm package, for npm-installed CLIs.
    pub fn npm_package(&self) -> Option<&'static str> {
        match self {
            Install::Npm(package) => Some(package),
            Install::Script(_) | Install::UserCommand => None,
        }
    }

    /// The command that installs the CLI, as a user would type it.
    pub fn command(&self) -> Option<String> {
        match self {
            Install::Npm(package) => Some(format!("npm install -g {package}")),
            Install::Script(command) => Some((*command).to_string()),
            Install::UserCommand => None,
        }
    }
}

/// The static facts about one backend: its registry entry.
#[derive(Debug)]
pub struct BackendDescriptor {
    /// The name used in config (`agent.backend`, `agent.priority`, `--backend`).
    pub name: &'static str,
    /// Other names accepted for it and resolved to `name` (`q` for `kiro`).
    pub aliases: &'static [&'static str],
    /// The program run when `agent.command` is unset; empty for `custom`.
    pub program: &'static str,
    pub install: Install,
    /// Environment variables that carry credentials (shown by `ralph doctor`).
    pub auth_env: &'static [&'static str],
    /// The hosts the CLI talks to with the credentials it supports (for a network allow-list;
    /// `*.` matches any subdomain). Empty when they are not documented or depend on the
    /// user's configuration (see the entry's comment).
    pub api_hosts: &'static [&'static str],
    /// Where the API endpoint is configured instead (a variable or config key), if anywhere.
    pub api_host_setting: Option<&'static str>,
    /// Directories and files the CLI writes, relative to HOME (for a sandbox).
    pub home_state: &'static [&'static str],
    /// Variables that move the CLI's state directory away from HOME (`CODEX_HOME`); the
    /// sandbox makes the directory they name writable too.
    pub state_env: &'static [&'static str],
    /// How the backend passes the prompt (`custom`: `agent.prompt_via`, stdin by default).
    pub prompt: PromptVia,
    /// Whether `backend = "auto"` tries it (every CLI but `custom`).
    pub auto: bool,
    /// The `agent.output` format that reads this CLI's stream, for `custom` commands that
    /// wrap it; `None` when it has none of its own.
    pub output: Option<OutputFormat>,
    /// The CLI's tools that run commands or write files, for [`Backend::tool_action`] and the
    /// backend-agnostic [`crate::tools::command_any`] / [`crate::tools::paths_any`].
    pub tools: ToolTable,
    /// Builds the backend from the resolved settings.
    pub(crate) new: fn(BackendConfig) -> Box<dyn Backend>,
}

impl BackendDescriptor {
    /// The backend itself, for `config`.
    pub fn build(&self, config: &BackendConfig) -> Box<dyn Backend> {
        (self.new)(config.clone())
    }

    /// Whether the prompt goes to the agent's stdin (for `custom`, with the default
    /// `agent.prompt_via`).
    pub fn prompt_on_stdin(&self) -> bool {
        self.prompt == PromptVia::Stdin
    }
}

/// Every backend's descriptor, in default priority order, `custom` last.
pub fn descriptors() -> &'static [&'static BackendDescriptor] {
    BACKENDS
}

/// The descriptor of the backend called `name` or one of its aliases.
pub fn descriptor(name: &str) -> Option<&'static BackendDescriptor> {
    BACKENDS
        .iter()
        .find(|d| d.name == name || d.aliases.contains(&name))
        .copied()
}

/// The canonical name for `name` or an alias of it (`q` → `kiro`); `None` for unknown names.
pub fn resolve_name(name: &str) -> Option<&'static str> {
    descriptor(name).map(|d| d.name)
}

/// Names accepted by `agent.backend` (besides `auto`), in default priority order.
pub fn backend_names() -> &'static [&'static str] {
    static NAMES: LazyLock<Vec<&'static str>> =
        LazyLock::new(|| BACKENDS.iter().map(|d| d.name).collect());
    &NAMES
}

/// [`backend_names`] with each backend's aliases right after its name (`…, kiro, q, …`): every
/// spelling the config accepts besides `auto`, in the order shown to users.
pub fn all_names_with_aliases() -> &'static [&'static str] {
    static NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
        BACKENDS
            .iter()
            .flat_map(|d| std::iter::once(&d.name).chain(d.aliases))
            .copied()
            .collect()
    });
    &NAMES
}

/// The order in which `backend = "auto"` looks for an installed CLI.
pub fn default_priority() -> &'static [&'static str] {
    static NAMES: LazyLock<Vec<&'static str>> =
        LazyLock::new(|| BACKENDS.iter().filter(|d| d.auto).map(|d| d.name).collect());
    &NAMES
}

/// The command that installs the backend's CLI (`npm install -g @openai/codex`); `None` for
/// `custom` and unknown names.
pub fn install_hint(name: &str) -> Option<String> {
    descriptor(name).and_then(|d| d.install.command())
}

/// Build a backend by name or alias. `None` for an unknown name.
pub fn builtin_backend(name: &str, config: &BackendConfig) -> Option<Box<dyn Backend>> {
    descriptor(name).map(|d| d.build(config))
}

/// The backend whose own stream `format` is (what a `custom` command printing it is read as).
pub(crate) fn by_output(format: OutputFormat) -> Option<&'static BackendDescriptor> {
    BACKENDS.iter().find(|d| d.output == Some(format)).copied()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use super::*;
    use crate::CommandContext;

    #[test]
    fn names_and_aliases_are_unique() {
        let mut seen = HashSet::new();
        for n in all_names_with_aliases() {
            assert!(seen.insert(*n), "{n} twice");
        }
        assert!(!seen.contains("auto"), "auto is not a backend");
    }

    #[test]
    fn name_lists() {
        assert_eq!(
            backend_names(),
            [
                "claude", "codex", "gemini", "opencode", "copilot", "kiro", "amp", "cursor",
                "custom"
            ]
        );
        assert_eq!(
            all_names_with_aliases(),
            [
                "claude", "codex", "gemini", "opencode", "copilot", "kiro", "q", "amp", "cursor",
                "custom"
            ]
        );
        assert_eq!(
            default_priority(),
            ["claude", "codex", "gemini", "opencode", "copilot", "kiro", "amp", "cursor"]
        );
    }

    #[test]
    fn builtin_backends_by_name() {
        let cfg = BackendConfig::default();
        for name in backend_names() {
            let b = builtin_backend(name, &cfg);
            assert_eq!(b.map(|b| b.name()), Some(*name));
        }
        assert!(builtin_backend("nope", &cfg).is_none());
    }

    #[test]
    fn aliases_resolve_to_their_backend() {
        assert_eq!(resolve_name("q"), Some("kiro"));
        assert_eq!(resolve_name("kiro"), Some("kiro"));
        assert_eq!(resolve_name("claude"), Some("claude"));
        assert_eq!(resolve_name("auto"), None);
        assert_eq!(resolve_name("Claude"), None);
        assert_eq!(resolve_name(""), None);
        let cfg = BackendConfig::default();
        assert_eq!(builtin_backend("q", &cfg).map(|b| b.name()), Some("kiro"));
        assert!(builtin_backend("nope", &cfg).is_none());
    }

    #[test]
    fn every_backend_returns_its_own_descriptor() {
        let cfg = BackendConfig::default();
        for d in descriptors() {
            let b = d.build(&cfg);
            assert!(std::ptr::eq(b.descriptor(), *d), "{}", d.name);
            assert_eq!(b.name(), d.name);
            assert_eq!(b.program(), d.program, "{}", d.name);
            assert_eq!(b.auth_env(), d.auth_env, "{}", d.name);
            assert_eq!(d.auto, d.name != "custom");
        }
    }

    /// The descriptor's prompt passing is what the command builder does.
    #[test]
    fn prompt_passing_matches_the_command() {
        let cfg = BackendConfig {
            command: vec!["agent".to_string()],
            ..BackendConfig::default()
        };
        let ctx = CommandContext {
            prompt: "do it",
            prompt_path: Path::new("/p/prompt.md"),
            model: None,
            extra_args: &[],
            is_root: false,
            scratch_dir: Path::new("/tmp/0001"),
        };
        for d in descriptors() {
            let spec = d.build(&cfg).command(&ctx);
            assert_eq!(spec.stdin.is_some(), d.prompt_on_stdin(), "{}", d.name);
            let in_args = spec.args.iter().any(|a| a == "do it");
            assert_eq!(in_args, d.prompt == PromptVia::Arg, "{}", d.name);
        }
    }

    #[test]
    fn install_hints() {
        assert_eq!(
            install_hint("claude").as_deref(),
            Some("npm install -g @anthropic-ai/claude-code")
        );
        assert_eq!(
            install_hint("q").as_deref(),
            Some("curl -fsSL https://cli.kiro.dev/install | bash")
        );
        assert_eq!(install_hint("custom"), None);
        assert_eq!(install_hint("nope"), None);
        let npm: Vec<_> = descriptors()
            .iter()
            .filter_map(|d| d.install.npm_package())
            .collect();
        assert_eq!(
            npm,
            [
                "@anthropic-ai/claude-code",
                "@openai/codex",
                "@google/gemini-cli",
                "opencode-ai",
                "@github/copilot",
                "@ampcode/cli"
            ]
        );
    }

    #[test]
    fn hosts_and_state_paths_are_plain() {
        for d in descriptors() {
            for h in d.api_hosts {
                let bare = h.strip_prefix("*.").unwrap_or(h);
                assert!(
                    !bare.is_empty() && !bare.contains(['/', ':', '*', ' ']),
                    "{}: {h}",
                    d.name
                );
            }
            for p in d.home_state {
                assert!(
                    !p.is_empty() && !p.starts_with('/') && !p.starts_with('~'),
                    "{}: {p}",
                    d.name
                );
            }
        }
    }

    #[test]
    fn output_formats_map_to_their_backend() {
        for f in OutputFormat::NAMES {
            let Some(format) = OutputFormat::parse(f) else {
                panic!("{f}");
            };
            let owner = by_output(format).map(|d| d.name);
            let want = match format {
                OutputFormat::Text => None,
                OutputFormat::ClaudeStreamJson => Some("claude"),
                OutputFormat::CodexJson => Some("codex"),
                OutputFormat::GeminiStreamJson => Some("gemini"),
                OutputFormat::OpencodeJson => Some("opencode"),
                OutputFormat::CopilotJson => Some("copilot"),
                OutputFormat::CursorStreamJson => Some("cursor"),
            };
            assert_eq!(owner, want, "{f}");
        }
    }
}
