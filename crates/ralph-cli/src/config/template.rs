//! What `ralph init` writes: a commented `ralph.toml` and a `PROMPT.md` skeleton.
//!
//! The config template lists every supported key with its default, commented out, so users
//! discover the options in the file itself. Defaults come from `ralph_core` so the template
//! cannot drift from what the engine does. Explanations are written so that no comment line
//! looks like `key = value`: a test uncomments every `# key = value` line and parses the
//! result, which keeps the template from documenting a key the parser rejects.

use ralph_core::settings::{Limits, RetrySettings};

use super::duration::format_duration;
use super::text::toml_string;
use super::{default_priority, DEFAULT_GATE_TIMEOUT};

/// The `PROMPT.md` written by `ralph init`. It never mentions the completion marker: ralph
/// appends its own instruction about it, and a marker in the prompt must not look like a
/// completion when an agent echoes the prompt.
pub const PROMPT_TEMPLATE: &str = "\
# Goal

<!-- What should exist when the work is done? Describe the end state in a few sentences. -->

# Context

<!-- Where the relevant code lives, conventions to follow, documents worth reading. -->

# Constraints

<!-- What must not change: public APIs, files, dependencies, behaviour. -->

# Plan

<!-- The steps, in order. Each iteration starts fresh: the agent should pick the next
     unfinished step, do it, verify it, and note its progress (for example in NOTES.md)
     so that the next iteration can continue from there. -->

1. 
2. 

# How to verify

<!-- The commands that must pass (e.g. `cargo test`, `npm test`, a linter) and what
     \"done\" looks like: every step above finished and every check passing. -->
";

/// The `ralph.toml` written by `ralph init --backend NAME`: `backend` is set, every other key
/// is present but commented out with its default. For `custom`, `command` is set too (to a
/// placeholder), because a custom backend without a command is an error.
pub fn init_template(backend: &str) -> String {
    let limits = Limits::default();
    let retry = RetrySettings::default();
    let priority: Vec<String> = default_priority().iter().map(|b| toml_string(b)).collect();
    let priority = priority.join(", ");
    let command_prefix = if backend == "custom" { "" } else { "# " };
    let strategy = match retry.strategy {
        ralph_core::settings::RetryStrategy::Immediate => "immediate",
        ralph_core::settings::RetryStrategy::Linear => "linear",
        ralph_core::settings::RetryStrategy::Exponential => "exponential",
    };
    let d = format_duration;
    // Every parser this build has, so the template never lists fewer.
    let outputs: Vec<String> = ralph_agents::OutputFormat::NAMES
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect();
    let outputs = match outputs.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => outputs.join(""),
    };
    format!(
        r##"# ralph.toml: settings for `ralph run`.
#
# Every key is optional. A commented-out line shows the default (or an example where there
# is no default); remove the leading "# " to change it. Flags given to `ralph run` override
# this file. Durations are written like "90s", "30m", "4h" or "1h30m".

[agent]
# Which agent to run: auto (the first one installed, in `priority` order), claude, codex,
# gemini, opencode, copilot, kiro (alias q), amp, cursor, or custom (any command).
backend = {backend}
# Model passed to the agent. Default: the agent's own default.
# model = "claude-sonnet-4-5"
# Extra arguments for the agent (arguments after `--` on the command line are added).
# args = []
# Search order of backend = "auto".
# priority = [{priority}]
# Agents to switch to, in order, when the current one hits a usage limit or quota:
# "backend" or "backend:model", as in ["codex:gpt-5.5", "gemini"].
# fallback = []
# What the agent may do without asking: "full" (everything; an agent running headless
# cannot ask), "allowlist" (only the tools in allowed_tools; Claude, Copilot) or "sandbox"
# (the agent's own sandbox, where it has one, e.g. Codex workspace-write).
# permissions = "full"
# Tools allowed with permissions = "allowlist", as in ["Read", "Edit", "Bash(git diff *)"].
# allowed_tools = []
# The agent's command line, program first (needed with backend = "custom").
{command_prefix}command = ["./my-agent", "--flag"]
# How a custom agent gets the prompt: "stdin" (written to its input), "arg" (appended as
# the last argument) or "file" ({{prompt_file}} in command becomes the prompt file's path).
# prompt_via = "stdin"
# How ralph reads a custom agent's output, one of
# {outputs}.
# output = "text"

[loop]
# The prompt, read again before every iteration: edits take effect during a run.
# prompt_file = "PROMPT.md"
# The agent says the work is done by printing this on a line of its own.
# completion_marker = "LOOP_COMPLETE"
# Stop after this many iterations.
# max_iterations = {max_iterations}
# Stop when the whole run has taken this long.
# max_runtime = "{max_runtime}"
# Stop an iteration that takes longer than this.
# iteration_timeout = "{iteration_timeout}"
# Stop an iteration when the agent has printed nothing for this long.
# idle_timeout = "{idle_timeout}"
# Give up after this many failed iterations in a row.
# max_consecutive_failures = {max_consecutive_failures}

[budget]
# Stop when the run has cost this many US dollars. Default: no limit.
# max_cost_usd = 25.0
# Stop when the run has used this many tokens. Default: no limit.
# max_tokens = 5000000
# Stop before an iteration when the spend so far plus the most expensive iteration so far
# would pass a cap; false: stop after the iteration that crossed it.
# stop_before_exceeding = true
# Caps over all runs on this machine, per local day and month. Default: no limit.
# daily_usd = 100.0
# monthly_usd = 1000.0
# Fractions of each cap at which ralph says how much is spent.
# alert_at = [0.5, 0.8, 1.0]
# Where those cross-project totals are kept. Default: $RALPH_HOME/ledger.db, else
# $XDG_DATA_HOME/ralph/ledger.db.
# ledger = "~/.local/share/ralph/ledger.db"
# Before each iteration ralph reserves its expected cost under the daily and monthly caps, so
# projects running at once cannot all spend the last dollar: the costliest recent iteration of
# the backend, or at least this. Default: recent iterations only ($0 before the first).
# iteration_estimate_usd = 0.5
# An agent that reports neither cost nor tokens (kiro, amp, cursor, a custom command with
# text output) cannot be held to the caps above: ralph refuses to start. true: run anyway,
# with a warning (only iterations and time are limited then).
# allow_unenforced = false

[git]
# Record a git checkpoint every N iterations, for `ralph rollback`; 0 turns them off.
# checkpoint_every = 1
# Outside a git repository ralph runs without checkpoints (and says so); true refuses.
# require = false
# Untracked files larger than this many MiB are left out of checkpoints.
# max_untracked_mb = 10
# After every iteration each ref the agent deleted or rewrote (a branch moved to a commit that
# does not contain its old one, any change to a tag or the stash, HEAD switched) is put back and
# the run stops. Refs listed here (`*` within a component, `**` across, "HEAD") are left alone.
# allow_ref_rewrites = ["refs/heads/agent/**"]

[safety]
# An iteration that changes more files than this is reverted; twice in a row stops the run.
# max_files_changed = 200
# Changes here are restored and stop the run (globs, relative to the project).
# protected_paths = [".git/**", ".ralph/**", "ralph.toml"]
# Commands the agent may not run, added to the built-in set (rm -rf /, git push --force,
# git reset --hard, sudo, …): a command prefix like "npm publish", or "re:<regex>".
# blocked_commands = []
# Iterations in a row without a file change or completion (or failing the same way) before
# ralph asks for a change of approach once, then gives up.
# no_progress_iterations = 3
# Agent output kept per iteration (MiB); the rest is cut from the artifact, with a note.
# max_output_mb = 100

[sandbox]
# The OS sandbox around every agent and gate (Linux: Landlock, seccomp, namespaces).
# "workspace": the agent writes only to the project (or its story worktree), a private temp
# dir, its backend's state dirs and `writable`, and reads everything; "strict": its reads are
# limited to the project, the toolchains on PATH and system directories too; "off": no
# sandbox. Unset: "workspace" where the kernel supports it, else none (with a warning).
# `ralph doctor` shows what this kernel can enforce.
# mode = "workspace"
# Refuse to run (exit 8) when the kernel cannot enforce the mode, rather than warn and run.
# required = false
# More paths the agent may write: absolute, "~/..." or relative to the project.
# writable = []
# "on": as without a sandbox; "allowlist": only allow_hosts, the backend's API hosts and the
# local model servers in its environment (through a proxy); "off": loopback only.
# network = "on"
# Hosts let through by network = "allowlist": "example.com", "*.example.com:443", "10.0.0.1".
# allow_hosts = []

# The gates' sandbox: the same keys; each one not set here takes [sandbox]'s value.
# [sandbox.gates]
# mode = "workspace"
# required = false
# writable = []
# network = "on"
# allow_hosts = []

[retry]
# Wait before retrying a failed iteration: "immediate", "linear" (base_delay times the
# attempt) or "exponential" (base_delay, doubled at each attempt), never more than max_delay.
# strategy = "{strategy}"
# base_delay = "{base_delay}"
# max_delay = "{max_delay}"

[context]
# ralph keeps notes on failed or idle iterations for the next prompt; past this many tokens
# it asks the agent to summarise them (a separate, cheap call, accounted like an iteration).
# notes_max_tokens = 2000
# Model for that summary; "" means the agent's own.
# summary_model = ""

[plan]
# `ralph plan PRD.md`: attempts per phase (design, stories) when what the agent wrote does not
# validate; the error goes back to the agent each time.
# max_attempts = 3
# The architecture template when --architecture is not given (`ralph templates list`).
# architecture = "layered-4"
# Where the design document goes: <design_dir>/<plan-name>.md.
# design_dir = "docs/design"

# What every story of one layer runs with (`ralph stories run`); a story's own
# [story.agent] still wins. Repeat the block for each layer.
# [layers.data]
# A Markdown file added to the prompt of each story of the layer.
# instructions = "docs/agents/data.md"
# The backend and model for its stories.
# backend = "claude"
# model = "claude-sonnet-4-5"
# Gates of its own, run when one of its stories claims completion (like [[gates]]).
# gates = [{{ name = "migrations", run = "make migrate-check" }}]

# Model routing for `ralph stories run` and `ralph plan`: each call runs on a tier chosen by
# the first rule that matches its story's layer, complexity (low, medium, high: the plan's
# `complexity`, else estimated from its criteria and affected paths) and kind
# (implementation, repair, planning). A story's loop moves up to the next tier when the same
# criteria or gates fail for plateau_iterations iterations in a row.
# [routing]
# plateau_iterations = 2
# The tier of calls no rule matches ("" or absent: the configured [agent]).
# default_tier = "standard"
# tier = [{{ name = "cheap", models = ["claude:claude-haiku-4-5"] }}, {{ name = "standard", models = ["claude:claude-sonnet-4-5"] }}]
# rule = [{{ complexity = "low", tier = "cheap" }}]

# Gates: shell commands that must pass. Repeat the block for each gate.
# [[gates]]
# Names the log file gate-<name>.log (letters, digits, _ . and - only).
# name = "tests"
# Run by `sh -c` in the project directory; exit status 0 means it passed.
# run = "cargo test"
# "complete": checked when the agent says it is done, and completion only counts if it
# passes; "iteration": run after every iteration. For `ralph stories run` also
# "pre-story" (in a story's fresh worktree before its agent), "post-story" (when a story
# claims completion) and "pre-merge" (on every merge candidate).
# when = "complete"
# timeout = "{gate_timeout}"

# Prices in US dollars per million tokens, used when an agent reports tokens but no cost
# (Codex, Gemini, Copilot). Common models are built in; a table adds or overrides one.
# [pricing."claude-sonnet-4-5"]
# input = 3.0
# output = 15.0
# cache_read = 0.3
# cache_write = 3.75
# context_window = 200000
"##,
        backend = toml_string(backend),
        max_iterations = limits.max_iterations,
        max_runtime = d(limits.max_runtime),
        iteration_timeout = d(limits.iteration_timeout),
        idle_timeout = d(limits.idle_timeout),
        max_consecutive_failures = limits.max_consecutive_failures,
        base_delay = d(retry.base_delay),
        max_delay = d(retry.max_delay),
        gate_timeout = d(DEFAULT_GATE_TIMEOUT),
        outputs = outputs,
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::validate::{
        AGENT_KEYS, BUDGET_KEYS, CONTEXT_KEYS, GATE_KEYS, GIT_KEYS, LAYER_KEYS, LOOP_KEYS,
        PLAN_KEYS, PRICE_KEYS, RETRY_KEYS, ROUTING_KEYS, SAFETY_KEYS, SANDBOX_GATE_KEYS,
    };
    use super::super::{backend_names, parse};
    use super::*;

    /// `# key = value`, `# [section]` and `# [[gates]]` lines, with the `# ` removed.
    fn uncomment(template: &str) -> String {
        let mut out = String::new();
        for line in template.lines() {
            let uncommented = line.strip_prefix("# ").filter(|rest| {
                let is_assignment = rest.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                });
                let is_header = rest.starts_with('[')
                    && rest.ends_with(']')
                    && (rest.starts_with("[pricing.\"")
                        || rest
                            .trim_matches(['[', ']'])
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c == '.'));
                is_assignment || is_header
            });
            out.push_str(uncommented.unwrap_or(line));
            out.push('\n');
        }
        out
    }

    #[test]
    fn template_lists_every_output_parser() {
        let t = init_template("custom");
        for name in ralph_agents::OutputFormat::NAMES {
            assert!(t.contains(&format!("\"{name}\"")), "{name} missing");
        }
    }

    #[test]
    fn template_parses_for_every_backend() {
        for backend in backend_names() {
            let t = init_template(backend);
            let c = parse(&t, Path::new("ralph.toml")).unwrap_or_else(|e| panic!("{backend}: {e}"));
            let want = if *backend == "q" { "kiro" } else { backend };
            assert_eq!(c.agent.backend.as_deref(), Some(want));
            assert_eq!(c.agent.command.is_some(), *backend == "custom");
            assert_eq!(
                c.loop_.max_iterations, None,
                "everything else is commented out"
            );
        }
    }

    #[test]
    fn uncommented_template_parses_to_the_defaults() {
        let t = uncomment(&init_template("claude"));
        let c = parse(&t, Path::new("ralph.toml")).unwrap_or_else(|e| panic!("{e}\n{t}"));
        let limits = Limits::default();
        let retry = RetrySettings::default();
        assert_eq!(c.loop_.max_iterations, Some(limits.max_iterations));
        assert_eq!(c.loop_.max_runtime, Some(limits.max_runtime));
        assert_eq!(c.loop_.iteration_timeout, Some(limits.iteration_timeout));
        assert_eq!(c.loop_.idle_timeout, Some(limits.idle_timeout));
        assert_eq!(
            c.loop_.max_consecutive_failures,
            Some(limits.max_consecutive_failures)
        );
        assert_eq!(c.loop_.completion_marker.as_deref(), Some("LOOP_COMPLETE"));
        assert_eq!(c.retry.strategy, Some(retry.strategy));
        assert_eq!(c.retry.base_delay, Some(retry.base_delay));
        assert_eq!(c.retry.max_delay, Some(retry.max_delay));
        assert_eq!(c.git.checkpoint_every, Some(1));
        assert_eq!(
            c.agent.permissions,
            Some(ralph_agents::PermissionMode::Full)
        );
        let priority: Vec<String> = default_priority().iter().map(|s| s.to_string()).collect();
        assert_eq!(c.agent.priority, Some(priority));
        assert_eq!(c.gates.len(), 1);
        assert_eq!(c.gates[0].timeout, DEFAULT_GATE_TIMEOUT);
        for keys in [&c.sandbox.agents, &c.sandbox.gates] {
            assert_eq!(keys.mode, Some(ralph_sandbox::Mode::Workspace));
            assert_eq!(keys.required, Some(false));
            assert_eq!(keys.network, Some(ralph_sandbox::Config::default().network));
            assert_eq!(keys.writable, Some(Vec::new()));
            assert_eq!(keys.allow_hosts, Some(Vec::new()));
        }
    }

    #[test]
    fn template_documents_every_supported_key() {
        let t = uncomment(&init_template("claude"));
        let sections: [(&str, &[&str]); 14] = [
            ("[agent]", AGENT_KEYS),
            ("[loop]", LOOP_KEYS),
            ("[budget]", BUDGET_KEYS),
            ("[git]", GIT_KEYS),
            ("[retry]", RETRY_KEYS),
            ("[context]", CONTEXT_KEYS),
            ("[plan]", PLAN_KEYS),
            ("[layers.data]", LAYER_KEYS),
            ("[routing]", ROUTING_KEYS),
            ("[safety]", SAFETY_KEYS),
            ("[sandbox]", SANDBOX_GATE_KEYS),
            ("[sandbox.gates]", SANDBOX_GATE_KEYS),
            ("[[gates]]", GATE_KEYS),
            ("[pricing.\"claude-sonnet-4-5\"]", PRICE_KEYS),
        ];
        for (header, keys) in sections {
            let start = t
                .find(&format!("\n{header}\n"))
                .unwrap_or_else(|| panic!("{header}"));
            let body = &t[start + header.len() + 2..];
            let body = body.split("\n[").next().unwrap();
            for key in keys {
                assert!(
                    body.lines().any(|l| l.starts_with(&format!("{key} = "))),
                    "{key} missing under {header}"
                );
            }
        }
    }

    #[test]
    fn template_quotes_odd_backend_names() {
        let t = init_template("we\"ird");
        assert!(t.contains("backend = \"we\\\"ird\""));
    }

    #[test]
    fn prompt_template_never_contains_the_marker() {
        assert!(!PROMPT_TEMPLATE
            .to_ascii_uppercase()
            .contains("LOOP_COMPLETE"));
        assert!(!PROMPT_TEMPLATE
            .to_ascii_uppercase()
            .contains("LOOP COMPLETE"));
        for section in ["# Goal", "# Constraints", "# How to verify"] {
            assert!(PROMPT_TEMPLATE.contains(section), "{section}");
        }
    }
}
