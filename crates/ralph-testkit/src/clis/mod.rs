//! The real agent CLIs, installed from npm at pinned versions and run
//! offline against a [`crate::mockllm::MockServer`].
//!
//! * [`install_dir`] installs all of them once (about 1.3 GB, ~20 s) into a
//!   cache directory shared by every test process.
//! * [`setup`] prepares an isolated home for one run (config files, and the
//!   environment that points the CLI at the mock and switches off every
//!   phone-home: update checks, telemetry, plugin and model-list fetches).
//! * [`headless_args`] / [`command`] / [`run`] build and run the headless
//!   command line with a timeout of our own (opencode retries 5xx forever).
//!
//! Every CLI accepts the prompt on stdin in headless mode ([`Cli::PROMPT_ON_STDIN`]
//! documents how), so ralph never needs to put a prompt on the command line
//! or into a temporary file.
//!
//! | CLI | model id (`-m`) | wire API | price table entry needed |
//! |---|---|---|---|
//! | Claude Code | `claude-sonnet-4-5` | Anthropic Messages | yes: Claude computes `total_cost_usd` from it |
//! | Codex | `gpt-5.5` | OpenAI Responses | `gpt-5.5` (Codex reports no cost) |
//! | Gemini CLI | `gemini-2.5-pro` | Gemini | `gemini-2.5-pro` (no cost reported) |
//! | opencode | `mock/mock-model` | Chat Completions | cost comes from the `cost` block of its config |
//! | Copilot CLI | `gpt-4.1` | Chat Completions (BYOK) | `gpt-4.1` (BYOK reports cost 0) |

mod install;
mod run;
mod setup;

pub use install::{bin, install_dir};
pub use run::{command, headless_args, run, RunOutput};
pub use setup::{setup, CliEnv, OPENCODE_PRICES};

use crate::mockllm::Dialect;

/// The pinned npm packages, installed together.
pub const PACKAGES: [&str; 5] = [
    "@anthropic-ai/claude-code@2.1.197",
    "@openai/codex@0.169.0",
    "@google/gemini-cli@0.61.0",
    "opencode-ai@1.18.33",
    "@github/copilot@1.0.102",
];

/// The API key every CLI sends. Long and unique on purpose: Copilot CLI
/// masks the provider key's value wherever it appears in its output, so a
/// short key such as `x` turns `"exitCode"` into `"e******itCode"`.
pub const MOCK_API_KEY: &str = "mockllm-test-key-not-a-secret";

/// A real agent CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cli {
    Claude,
    Codex,
    Gemini,
    Opencode,
    Copilot,
}

impl Cli {
    /// All five.
    pub const ALL: [Cli; 5] = [
        Cli::Claude,
        Cli::Codex,
        Cli::Gemini,
        Cli::Opencode,
        Cli::Copilot,
    ];

    /// Every one of them reads the prompt from stdin in headless mode when it
    /// is given no prompt argument (verified with the pinned versions):
    /// Claude `claude -p` + stdin; Codex `codex exec … -` (or no prompt:
    /// "Reading prompt from stdin..."); Gemini without `-p` when stdin is not
    /// a TTY; `opencode run` without a message; Copilot without `-p`
    /// ("piped stdin").
    pub const PROMPT_ON_STDIN: bool = true;

    /// Short lower-case name, as in fixture file names.
    pub fn name(self) -> &'static str {
        match self {
            Cli::Claude => "claude",
            Cli::Codex => "codex",
            Cli::Gemini => "gemini",
            Cli::Opencode => "opencode",
            Cli::Copilot => "copilot",
        }
    }

    /// The pinned npm package (`name@version`).
    pub fn package(self) -> &'static str {
        match self {
            Cli::Claude => PACKAGES[0],
            Cli::Codex => PACKAGES[1],
            Cli::Gemini => PACKAGES[2],
            Cli::Opencode => PACKAGES[3],
            Cli::Copilot => PACKAGES[4],
        }
    }

    /// The pinned version.
    pub fn version(self) -> &'static str {
        let package = self.package();
        // Scoped names start with '@': the version follows the last '@'.
        package.rsplit_once('@').map_or(package, |(_, v)| v)
    }

    /// The executable's name in `node_modules/.bin`.
    pub fn bin_name(self) -> &'static str {
        self.name()
    }

    /// The model id to pass with `-m`/`--model`, and the id a price table
    /// must know to price this CLI's usage.
    pub fn model(self) -> &'static str {
        match self {
            Cli::Claude => "claude-sonnet-4-5",
            Cli::Codex => "gpt-5.5",
            Cli::Gemini => "gemini-2.5-pro",
            Cli::Opencode => "mock/mock-model",
            Cli::Copilot => "gpt-4.1",
        }
    }

    /// The wire API the CLI speaks to the mock.
    pub fn dialect(self) -> Dialect {
        match self {
            Cli::Claude => Dialect::Anthropic,
            Cli::Codex => Dialect::Responses,
            Cli::Gemini => Dialect::Gemini,
            Cli::Opencode | Cli::Copilot => Dialect::Chat,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_names() {
        assert_eq!(Cli::Claude.version(), "2.1.197");
        assert_eq!(Cli::Copilot.version(), "1.0.102");
        assert_eq!(Cli::Opencode.package(), "opencode-ai@1.18.33");
        assert_eq!(Cli::Gemini.name(), "gemini");
    }
}
