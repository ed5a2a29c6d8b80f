//! The isolated home and environment of one CLI run against the mock: config files, the
//! variables that point the CLI at the mock, and every phone-home switched off.

use std::path::Path;

use serde_json::json;

use super::install::{base_path, copilot_shared_pkg, install_dir};
use super::{Cli, MOCK_API_KEY};

/// What a CLI needs to run against the mock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliEnv {
    /// The complete environment (start from an empty one: `env_clear`). It
    /// holds no URL other than the mock's.
    pub env: Vec<(String, String)>,
    /// Arguments ralph must pass besides its headless flags: the model, and
    /// for Copilot its update/telemetry switches.
    pub args: Vec<String>,
    /// The model id (see the module table).
    pub model: String,
}

impl CliEnv {
    /// The value of one variable.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.env.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.env.push((key.to_string(), value)),
        }
    }
}

/// Prepares `home` (created if missing) as the isolated HOME of one `cli`
/// run against the mock at `base_url` (a [`crate::mockllm::MockServer`]
/// base or scenario URL, without `/v1`), and returns its environment.
///
/// Creates `home/tmp` (TMPDIR: opencode leaves a 5.5 MB `.so` there per run,
/// and Codex refuses to create its helper links under a TMPDIR that contains
/// CODEX_HOME, so CODEX_HOME is `home/.codex`, beside it), the XDG
/// directories, and per CLI:
///
/// * Claude: `ANTHROPIC_BASE_URL`, `ANTHROPIC_API_KEY`, `CLAUDE_CONFIG_DIR`,
///   `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC` and `DISABLE_*` (else it
///   contacts api.anthropic.com at startup), `CLAUDE_CODE_MAX_RETRIES=1`,
///   `IS_SANDBOX=1` when root (else `--dangerously-skip-permissions` is
///   refused).
/// * Codex: `$CODEX_HOME/config.toml` with a `mock` provider (Responses API,
///   retries 0), `[features] plugins=false` (else github.com and chatgpt.com
///   are contacted), update check, analytics and feedback off.
/// * Gemini: `~/.gemini/settings.json` selecting API-key auth (required with
///   a custom base URL), usage statistics and telemetry off, no auto-update,
///   `maxAttempts: 1`; `GOOGLE_GEMINI_BASE_URL`, `GEMINI_CLI_TRUST_WORKSPACE`.
/// * opencode: the whole config in `OPENCODE_CONFIG_CONTENT` (mock provider
///   with a cost table), `OPENCODE_DISABLE_*`, and `npm_config_offline=true`
///   plus a registry on the mock, which stops its embedded npm client's
///   registry lookups.
/// * Copilot: BYOK `COPILOT_PROVIDER_*` (Chat Completions), `COPILOT_OFFLINE`,
///   `COPILOT_HOME`, and `$XDG_CACHE_HOME/copilot/pkg` symlinked to the
///   runtime unpacked once by [`install_dir`].
///
/// # Panics
///
/// If a directory or config file cannot be written, or the install fails.
pub fn setup(cli: Cli, home: &Path, base_url: &str) -> CliEnv {
    let base_url = base_url.trim_end_matches('/');
    let install = install_dir();
    let mkdir = |p: &Path| {
        if let Err(e) = std::fs::create_dir_all(p) {
            panic!("clis::setup: cannot create {}: {e}", p.display());
        }
    };
    let write = |p: &Path, text: &str| {
        if let Some(parent) = p.parent() {
            mkdir(parent);
        }
        if let Err(e) = std::fs::write(p, text) {
            panic!("clis::setup: cannot write {}: {e}", p.display());
        }
    };
    let tmp = home.join("tmp");
    let config = home.join(".config");
    let data = home.join(".local").join("share");
    let cache = home.join(".cache");
    let state = home.join(".local").join("state");
    for dir in [home, &tmp, &config, &data, &cache, &state] {
        mkdir(dir);
    }
    let path_str = |p: &Path| p.display().to_string();
    let mut env = CliEnv {
        env: Vec::new(),
        args: Vec::new(),
        model: cli.model().to_string(),
    };
    env.set("PATH", base_path(&install));
    env.set("HOME", path_str(home));
    env.set("TMPDIR", path_str(&tmp));
    env.set("XDG_CONFIG_HOME", path_str(&config));
    env.set("XDG_DATA_HOME", path_str(&data));
    env.set("XDG_CACHE_HOME", path_str(&cache));
    env.set("XDG_STATE_HOME", path_str(&state));
    env.set("LANG", "C.UTF-8");
    env.set("NO_COLOR", "1");
    match cli {
        Cli::Claude => {
            env.set("ANTHROPIC_BASE_URL", base_url);
            env.set("ANTHROPIC_API_KEY", MOCK_API_KEY);
            env.set("CLAUDE_CONFIG_DIR", path_str(&home.join(".claude")));
            env.set("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1");
            env.set("DISABLE_TELEMETRY", "1");
            env.set("DISABLE_ERROR_REPORTING", "1");
            env.set("DISABLE_AUTOUPDATER", "1");
            env.set("DISABLE_BUG_COMMAND", "1");
            // Default is 10 retries with backoff up to ~40 s apart.
            env.set("CLAUDE_CODE_MAX_RETRIES", "1");
            // SAFETY: geteuid has no preconditions and cannot fail.
            if unsafe { libc::geteuid() } == 0 {
                env.set("IS_SANDBOX", "1");
            }
            env.args = vec!["--model".into(), cli.model().into()];
        }
        Cli::Codex => {
            let codex_home = home.join(".codex");
            mkdir(&codex_home);
            write(&codex_home.join("config.toml"), &codex_config(base_url));
            env.set("CODEX_HOME", path_str(&codex_home));
            env.set("MOCK_API_KEY", MOCK_API_KEY);
            env.args = vec!["-m".into(), cli.model().into()];
        }
        Cli::Gemini => {
            write(
                &home.join(".gemini").join("settings.json"),
                &gemini_settings(),
            );
            env.set("GEMINI_API_KEY", MOCK_API_KEY);
            env.set("GOOGLE_GEMINI_BASE_URL", base_url);
            env.set("GEMINI_CLI_TRUST_WORKSPACE", "true");
            env.args = vec!["-m".into(), cli.model().into()];
        }
        Cli::Opencode => {
            env.set("OPENCODE_CONFIG_CONTENT", opencode_config(base_url));
            env.set("MOCK_API_KEY", MOCK_API_KEY);
            env.set("OPENCODE_DISABLE_AUTOUPDATE", "1");
            env.set("OPENCODE_DISABLE_MODELS_FETCH", "1");
            env.set("OPENCODE_DISABLE_SHARE", "1");
            env.set("OPENCODE_DISABLE_DEFAULT_PLUGINS", "1");
            env.set("OPENCODE_DISABLE_LSP_DOWNLOAD", "1");
            // Its embedded npm client looks up @opencode-ai/plugin on fresh
            // state dirs and after idling: offline mode plus a registry on
            // the mock keep it off the network (a lookup would show up in
            // the mock's request log as a 404).
            env.set("npm_config_offline", "true");
            env.set("npm_config_registry", format!("{base_url}/npm-registry/"));
            env.args = vec!["-m".into(), cli.model().into()];
        }
        Cli::Copilot => {
            let copilot_cache = cache.join("copilot");
            mkdir(&copilot_cache);
            let link = copilot_cache.join("pkg");
            if std::fs::symlink_metadata(&link).is_err() {
                if let Err(e) = std::os::unix::fs::symlink(copilot_shared_pkg(&install), &link) {
                    panic!("clis::setup: cannot link {}: {e}", link.display());
                }
            }
            env.set("COPILOT_OFFLINE", "true");
            env.set("COPILOT_PROVIDER_BASE_URL", format!("{base_url}/v1"));
            env.set("COPILOT_PROVIDER_TYPE", "openai");
            env.set("COPILOT_PROVIDER_WIRE_API", "completions");
            env.set("COPILOT_PROVIDER_API_KEY", MOCK_API_KEY);
            env.set("COPILOT_MODEL", cli.model());
            env.set("COPILOT_HOME", path_str(&home.join(".copilot")));
            env.set("COPILOT_AUTO_UPDATE", "false");
            env.args = vec![
                "--model".into(),
                cli.model().into(),
                "--no-auto-update".into(),
                "--disable-client-telemetry".into(),
            ];
        }
    }
    env
}

fn toml_string(s: &str) -> String {
    // A JSON string literal is a valid TOML basic string.
    json!(s).to_string()
}

fn codex_config(base_url: &str) -> String {
    format!(
        r#"# Written by ralph_testkit::clis::setup: Codex against the scripted mock.
model = "gpt-5.5"
model_provider = "mock"
check_for_update_on_startup = false

[model_providers.mock]
name = "Mock LLM"
base_url = {base}
wire_api = "responses"
env_key = "MOCK_API_KEY"
request_max_retries = 0
stream_max_retries = 0

# Plugins contact github.com, api.github.com and chatgpt.com at startup.
[features]
plugins = false

[analytics]
enabled = false

[feedback]
enabled = false
"#,
        base = toml_string(&format!("{base_url}/v1"))
    )
}

fn gemini_settings() -> String {
    let settings = json!({
        // Required with GOOGLE_GEMINI_BASE_URL: without it the auth type is
        // "gateway", which headless mode rejects (exit 41).
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        // Stops the Clearcut usage statistics (play.googleapis.com).
        "privacy": {"usageStatisticsEnabled": false},
        "telemetry": {"enabled": false},
        "general": {"disableAutoUpdate": true, "disableUpdateNag": true, "maxAttempts": 1}
    });
    format!("{settings:#}\n")
}

fn opencode_config(base_url: &str) -> String {
    json!({
        "model": "mock/mock-model",
        "small_model": "mock/mock-model",
        "autoupdate": false,
        "share": "disabled",
        "permission": {"edit": "allow", "bash": "allow", "webfetch": "deny"},
        "provider": {"mock": {
            "npm": "@ai-sdk/openai-compatible",
            "name": "Mock LLM",
            "options": {"baseURL": format!("{base_url}/v1"), "apiKey": "{env:MOCK_API_KEY}"},
            "models": {"mock-model": {
                "name": "Mock Model",
                "tool_call": true,
                "limit": {"context": 200_000, "output": 8192},
                // USD per million tokens; opencode prices each step with it.
                "cost": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}
            }}
        }}
    })
    .to_string()
}

/// opencode's per-million prices configured by [`setup`]: input, output,
/// cache read, cache write.
pub const OPENCODE_PRICES: [f64; 4] = [3.0, 15.0, 0.3, 3.75];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codex_config_quotes_the_url() {
        let c = codex_config("http://127.0.0.1:9/s/a b");
        assert!(
            c.contains("base_url = \"http://127.0.0.1:9/s/a b/v1\""),
            "{c}"
        );
        assert!(c.contains("plugins = false"));
    }
}
