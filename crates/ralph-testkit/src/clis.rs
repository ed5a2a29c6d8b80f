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

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::json;

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

// ------------------------------------------------------------------ install

/// Where the CLIs are installed: `$RALPH_AGENT_CLIS` if set, else
/// `<cargo target dir>/agent-clis`. Installs them on first use.
///
/// Parallel test processes install once: the install runs under an
/// exclusive file lock, and a marker file records the installed package
/// list, so later callers (and later runs) skip npm entirely.
///
/// # Panics
///
/// If the install fails, with npm's output. Tests that need the real CLIs
/// must fail, never skip, when they are unavailable.
pub fn install_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = cache_dir();
        if let Err(e) = install_locked(&dir) {
            panic!("clis::install_dir: {e}");
        }
        dir
    })
    .clone()
}

/// `<install_dir>/node_modules/.bin/<cli>`.
pub fn bin(cli: Cli) -> PathBuf {
    install_dir()
        .join("node_modules")
        .join(".bin")
        .join(cli.bin_name())
}

fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RALPH_AGENT_CLIS").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => panic!("clis::install_dir: cannot determine the current executable: {e}"),
    };
    let profile = crate::profile_dir_of(&exe);
    let target = profile.parent().map_or(profile.clone(), Path::to_path_buf);
    target.join("agent-clis")
}

/// The marker's content: the package list, so a changed pin reinstalls.
fn marker_text() -> String {
    let mut text = PACKAGES.join("\n");
    text.push('\n');
    text
}

/// The unpacked Copilot runtime shared by every test home (see [`setup`]).
fn copilot_shared_pkg(dir: &Path) -> PathBuf {
    dir.join("copilot-home")
        .join(".cache")
        .join("copilot")
        .join("pkg")
}

fn installed(dir: &Path) -> bool {
    let marker_ok =
        std::fs::read_to_string(dir.join(".installed")).is_ok_and(|text| text == marker_text());
    let bins_ok = Cli::ALL.iter().all(|cli| {
        dir.join("node_modules")
            .join(".bin")
            .join(cli.bin_name())
            .exists()
    });
    let copilot_ok = std::fs::read_dir(copilot_shared_pkg(dir))
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    marker_ok && bins_ok && copilot_ok
}

fn install_locked(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let lock_path = dir.join(".install.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    // Blocks while another test process installs; released on drop.
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    if installed(dir) {
        return Ok(());
    }
    let _ = std::fs::remove_file(dir.join(".installed"));
    let mut npm = Command::new("npm");
    npm.arg("install")
        .arg("--prefix")
        .arg(dir)
        .args(["--no-audit", "--no-fund"])
        .args(PACKAGES)
        .env("npm_config_update_notifier", "false")
        .stdin(Stdio::null());
    let out = npm
        .output()
        .map_err(|e| format!("cannot run `npm install` (is Node.js installed?): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`npm install --prefix {} {}` failed with {}\n--- stdout\n{}\n--- stderr\n{}",
            dir.display(),
            PACKAGES.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    unpack_copilot_runtime(dir)?;
    std::fs::write(dir.join(".installed"), marker_text())
        .map_err(|e| format!("writing the install marker: {e}"))?;
    Ok(())
}

/// Copilot CLI unpacks a ~235 MB runtime into `$XDG_CACHE_HOME/copilot/pkg`
/// of every new home on first start. Do it once here (any command unpacks
/// it, `--version` is the cheapest), and let [`setup`] symlink each test
/// home's cache to this copy.
fn unpack_copilot_runtime(dir: &Path) -> Result<(), String> {
    let home = dir.join("copilot-home");
    let bin = dir.join("node_modules").join(".bin").join("copilot");
    let out = Command::new(&bin)
        .arg("--version")
        .env_clear()
        .env("PATH", base_path(dir))
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("COPILOT_HOME", home.join(".copilot"))
        .env("COPILOT_OFFLINE", "true")
        .env("COPILOT_AUTO_UPDATE", "false")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let pkg = copilot_shared_pkg(dir);
    let unpacked = std::fs::read_dir(&pkg)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if !out.status.success() || !unpacked {
        return Err(format!(
            "`copilot --version` did not unpack its runtime into {} ({})\n--- stdout\n{}\n--- stderr\n{}",
            pkg.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// PATH for the CLIs: their `.bin` first, then the directory of the `node`
/// the tests run with (Codex and Gemini are Node launchers), then the
/// system directories their shell tools need.
fn base_path(install: &Path) -> String {
    let mut parts = vec![install
        .join("node_modules")
        .join(".bin")
        .display()
        .to_string()];
    if let Some(node_dir) = find_in_path("node").and_then(|p| p.parent().map(Path::to_path_buf)) {
        parts.push(node_dir.display().to_string());
    }
    for dir in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        if !parts.iter().any(|p| p == dir) {
            parts.push(dir.to_string());
        }
    }
    parts.join(":")
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

// -------------------------------------------------------------------- setup

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

// ------------------------------------------------------------------ running

/// The headless arguments (without the program) for a run of `cli`.
/// `prompt: None` means the prompt comes on stdin.
pub fn headless_args(cli: Cli, env: &CliEnv, prompt: Option<&str>) -> Vec<String> {
    let mut args: Vec<String> = match cli {
        Cli::Claude => vec![
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--dangerously-skip-permissions",
        ],
        Cli::Codex => vec![
            "exec",
            "--json",
            "--skip-git-repo-check",
            "--dangerously-bypass-approvals-and-sandbox",
        ],
        Cli::Gemini => vec!["--output-format", "stream-json", "--yolo"],
        Cli::Opencode => vec!["run", "--format", "json"],
        Cli::Copilot => vec!["--allow-all-tools", "--output-format", "json"],
    }
    .into_iter()
    .map(String::from)
    .collect();
    args.extend(env.args.iter().cloned());
    match (cli, prompt) {
        (Cli::Gemini | Cli::Copilot, Some(p)) => {
            args.push("-p".into());
            args.push(p.into());
        }
        (_, Some(p)) => args.push(p.into()),
        // Codex reads stdin for a prompt of "-"; the others read it when no
        // prompt is given.
        (Cli::Codex, None) => args.push("-".into()),
        (_, None) => {}
    }
    args
}

/// A ready [`Command`]: the CLI's binary, `args`, exactly `env.env`, and
/// `cwd`.
pub fn command(cli: Cli, env: &CliEnv, cwd: &Path, args: &[String]) -> Command {
    let mut cmd = Command::new(bin(cli));
    cmd.args(args)
        .env_clear()
        .envs(env.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(cwd);
    cmd
}

/// The result of [`run`].
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The exit status (`None` only if waiting failed).
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    /// The timeout struck and the process group was killed.
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl RunOutput {
    /// The exit code, `None` when killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// stdout's lines that parse as JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// Runs `cmd` in its own process group with `stdin` (closed when `None`)
/// and a timeout: when it strikes, the group gets SIGTERM, then SIGKILL two
/// seconds later. The group is SIGKILLed after the run in any case, so
/// helpers the CLI left behind (shells, daemons) do not outlive the test.
pub fn run(mut cmd: Command, stdin: Option<&str>, timeout: Duration) -> RunOutput {
    let start = Instant::now();
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return RunOutput {
                status: None,
                stdout: String::new(),
                stderr: format!("cannot spawn {cmd:?}: {e}"),
                timed_out: false,
                elapsed: start.elapsed(),
            }
        }
    };
    let pgid = child.id() as i32;
    let writer = match (stdin, child.stdin.take()) {
        (Some(text), Some(mut pipe)) => {
            let text = text.to_string();
            Some(std::thread::spawn(move || {
                // A CLI that exits without reading its stdin is not an error.
                let _ = pipe.write_all(text.as_bytes());
            }))
        }
        _ => None,
    };
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = start + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) => {
                timed_out = true;
                signal_group(pgid, libc::SIGTERM);
                let grace = Instant::now() + Duration::from_secs(2);
                while Instant::now() < grace {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
                break child.wait().ok();
            }
            Err(_) => break None,
        }
    };
    signal_group(pgid, libc::SIGKILL);
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    RunOutput {
        status,
        stdout,
        stderr,
        timed_out,
        elapsed: start.elapsed(),
    }
}

/// Signals the whole process group (`proc::kill` deliberately refuses
/// group-wide signals, so this is the one place that sends them).
fn signal_group(pgid: i32, signal: i32) {
    if pgid > 0 {
        // SAFETY: plain syscall on the process group this module created
        // (process_group(0) made the child its leader); a group that is
        // already gone just yields ESRCH.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn versions_and_names() {
        assert_eq!(Cli::Claude.version(), "2.1.197");
        assert_eq!(Cli::Copilot.version(), "1.0.102");
        assert_eq!(Cli::Opencode.package(), "opencode-ai@1.18.33");
        assert_eq!(Cli::Gemini.name(), "gemini");
    }

    #[test]
    fn codex_config_quotes_the_url() {
        let c = codex_config("http://127.0.0.1:9/s/a b");
        assert!(
            c.contains("base_url = \"http://127.0.0.1:9/s/a b/v1\""),
            "{c}"
        );
        assert!(c.contains("plugins = false"));
    }

    #[test]
    fn headless_args_put_prompt_where_each_cli_wants_it() {
        let env = CliEnv {
            env: Vec::new(),
            args: vec!["-m".into(), "M".into()],
            model: "M".into(),
        };
        assert_eq!(
            headless_args(Cli::Codex, &env, None)
                .last()
                .map(String::as_str),
            Some("-")
        );
        let g = headless_args(Cli::Gemini, &env, Some("hi"));
        assert_eq!(&g[g.len() - 2..], ["-p", "hi"]);
        let o = headless_args(Cli::Opencode, &env, None);
        assert_eq!(o, ["run", "--format", "json", "-m", "M"]);
    }
}
