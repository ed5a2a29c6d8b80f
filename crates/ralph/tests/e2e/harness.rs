//! A temporary project with a fake agent, helpers to run ralph in it, and [`ralph_snapshot!`],
//! the one way to snapshot what ralph printed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ralph_testkit::{fake_agent_path, Script};

pub const RALPH: &str = env!("CARGO_BIN_EXE_ralph");

pub struct Project {
    _tmp: tempfile::TempDir,
    /// The project root (ralph's working directory).
    pub root: PathBuf,
    /// Outside the project: scripts and other test-only files, so they never show up in the
    /// project's checkpoints.
    pub aux: PathBuf,
    pub home: PathBuf,
    /// `configure` writes `[sandbox] mode = "off"`: for tests of what ralph's after-the-fact
    /// checks catch when nothing stopped the agent (no sandbox, or a kernel without one).
    pub unsandboxed: bool,
}

impl Project {
    /// A plain directory (not a git repository).
    pub fn new() -> Project {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("project");
        let aux = tmp.path().join("aux");
        let home = tmp.path().join("home");
        for d in [&root, &aux, &home] {
            std::fs::create_dir_all(d).unwrap();
        }
        Project {
            _tmp: tmp,
            root,
            aux,
            home,
            unsandboxed: false,
        }
    }

    /// `[sandbox]` keys every test config gets: the test's own directory beside the project,
    /// where fake agents write pid files and recordings, is writable like a user's `writable`
    /// entry (and the sandbox is off for [`Project::without_sandbox`] projects).
    pub fn sandbox_keys(&self) -> String {
        let mut keys = format!("writable = [{:?}]\n", self.aux.display().to_string());
        if self.unsandboxed {
            keys.push_str("mode = \"off\"\n");
        }
        keys
    }

    /// The `[sandbox]` section with [`Project::sandbox_keys`], for hand-written configs.
    pub fn sandbox_section(&self) -> String {
        format!("\n[sandbox]\n{}", self.sandbox_keys())
    }

    /// This project without the OS sandbox (see [`Project::unsandboxed`]).
    pub fn without_sandbox(mut self) -> Project {
        self.unsandboxed = true;
        self
    }

    /// A git repository with one commit.
    pub fn git() -> Project {
        let p = Project::new();
        p.git_cmd(&["init", "-q", "-b", "main"]);
        p.write("README.md", "hello\n");
        p.git_cmd(&["add", "-A"]);
        p.git_cmd(&["commit", "-q", "-m", "initial"]);
        p
    }

    pub fn git_cmd(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(&self.root)
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    /// Write the fake agent's script; returns its path.
    pub fn script(&self, script: &Script) -> PathBuf {
        let p = self.aux.join("script.json");
        script.write_to(&p).unwrap();
        p
    }

    /// `ralph.toml` for the custom backend running the fake agent with `script`, plus `extra`
    /// TOML appended (extra sections; the [agent] and [loop] sections are written here, so pass
    /// other keys via `loop_extra`).
    pub fn configure(&self, script: &Script, output: &str, loop_extra: &str, extra: &str) {
        let sp = self.script(script);
        let grant = self.sandbox_keys();
        let extra = match extra.find("[sandbox]\n") {
            Some(i) => format!("{}[sandbox]\n{grant}{}", &extra[..i], &extra[i + 10..]),
            None => format!("{extra}\n[sandbox]\n{grant}"),
        };
        let toml = format!(
            "[agent]\nbackend = \"custom\"\ncommand = [{:?}, {:?}]\noutput = \"{output}\"\n\n\
             [loop]\n{loop_extra}\n\n[retry]\nbase_delay = \"0s\"\n\n{extra}\n",
            fake_agent_path().display().to_string(),
            sp.display().to_string(),
        );
        self.write("ralph.toml", &toml);
        if !self.exists("PROMPT.md") {
            self.write("PROMPT.md", "Make the tests pass.\n");
        }
    }

    /// Text-output fake agent with default settings.
    pub fn configure_text(&self, script: &Script, loop_extra: &str) {
        self.configure(script, "text", loop_extra, "");
    }

    pub fn ralph(&self) -> Command {
        let mut c = Command::new(RALPH);
        c.current_dir(&self.root)
            .env("HOME", &self.home)
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("RALPH_HOME", self.home.join("ralph-home"))
            .env("NO_COLOR", "1")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("RALPH_RUN_ID")
            .env_remove("IS_SANDBOX")
            .env_remove("RALPH_ITERATION")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Out {
        let out = self.ralph().args(args).output().unwrap();
        Out::from(out)
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.ralph()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path(".ralph/ralph.db")).unwrap()
    }

    /// (n, outcome, error_class) of the latest run's committed iterations.
    pub fn iterations(&self) -> Vec<(u32, String, Option<String>)> {
        let db = self.db();
        let mut stmt = db
            .prepare(
                "SELECT n, outcome, error_class FROM iterations WHERE run_id = \
                 (SELECT id FROM runs ORDER BY rowid DESC LIMIT 1) ORDER BY n",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    pub fn latest_run_id(&self) -> String {
        self.db()
            .query_row("SELECT id FROM runs ORDER BY rowid DESC LIMIT 1", [], |r| {
                r.get(0)
            })
            .unwrap()
    }

    pub fn status_json(&self) -> serde_json::Value {
        let out = self.run(&["status", "--json"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        serde_json::from_str(&out.stdout).unwrap()
    }

    pub fn artifact(&self, iteration: u32, name: &str) -> String {
        let run = self.latest_run_id();
        std::fs::read_to_string(self.path(&format!(".ralph/runs/{run}/{iteration:04}/{name}")))
            .unwrap_or_else(|e| panic!("artifact {iteration}/{name}: {e}"))
    }

    pub fn aux_path(&self, name: &str) -> PathBuf {
        self.aux.join(name)
    }

    pub fn read_aux(&self, name: &str) -> String {
        std::fs::read_to_string(self.aux_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Out {
    fn from(o: Output) -> Self {
        use std::os::unix::process::ExitStatusExt;
        Out {
            code: o
                .status
                .code()
                .unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0)),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Out {
    /// The one-line summary every exit prints (the last stderr line starting with "ralph: ").
    pub fn summary(&self) -> &str {
        self.stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("ralph: "))
            .unwrap_or("")
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Wait until `cond` holds, checking every few milliseconds; panics after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Wait for a child with a timeout (a hung ralph must fail the test, not hang it).
pub fn wait_child(child: Child, timeout: Duration) -> Out {
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => Out::from(out.unwrap()),
        Err(_) => {
            let _ = ralph_testkit::proc::kill(pid, libc::SIGKILL);
            panic!("ralph did not exit within {timeout:?}");
        }
    }
}

pub fn pid_alive(pid: i32) -> bool {
    ralph_testkit::proc::process_alive(pid)
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}

// ---- snapshots ------------------------------------------------------------------------------

/// Runs ralph in a [`Project`] and snapshots its exit code, stdout and stderr through insta,
/// with every machine- and run-specific detail filtered out (see [`snapshot_filters`]); returns
/// the unfiltered [`Out`] for further checks.
///
/// ```ignore
/// ralph_snapshot!(p, ["status"]);                                 // snapshots/e2e__<module>__<test>.snap
/// ralph_snapshot!(p, ["run", "--json"], filters = [(r"ctx \d+%", "ctx [PCT]")]);
/// ralph_snapshot!(p, p.ralph().arg("doctor").env("PATH", path));  // a prepared Command
/// ralph_snapshot!(p, ("ralph run", wait_child(child, timeout)));  // a run that was spawned
/// ralph_snapshot!(name = format!("config_{case}"), p, ["run"], context = toml);
/// ralph_snapshot!(p, ["stop"], @"...");                           // an inline snapshot
/// ```
///
/// What is run is anything [`Invocation`]: an argument array or slice (run with
/// [`Project::run`]), a `&mut Command` from [`Project::ralph`], or an already finished [`Out`]
/// (optionally with the command line it ran, for the snapshot's description). `context` is
/// text put before the output (what the test set up, e.g. the config file); `filters` are
/// extra `(regex, replacement)` pairs, applied before the standard ones.
macro_rules! ralph_snapshot {
    (name = $name:expr, $project:expr, $run:expr
        $(, context = $context:expr)? $(, filters = $filters:expr)? $(,)?) => {{
        let context: &[&str] = &[$(&$context)?];
        let filters: &[&[(&str, &str)]] = &[$(&$filters)?];
        let (description, out, text) =
            $crate::harness::snapshot_parts(&$project, $run, context, filters);
        $crate::harness::snapshot_settings(&description).bind(|| {
            ::insta::assert_snapshot!($name, text);
        });
        out
    }};
    ($project:expr, $run:expr
        $(, context = $context:expr)? $(, filters = $filters:expr)?, @$snapshot:literal $(,)?) => {{
        let context: &[&str] = &[$(&$context)?];
        let filters: &[&[(&str, &str)]] = &[$(&$filters)?];
        let (description, out, text) =
            $crate::harness::snapshot_parts(&$project, $run, context, filters);
        $crate::harness::snapshot_settings(&description).bind(|| {
            ::insta::assert_snapshot!(text, @$snapshot);
        });
        out
    }};
    ($project:expr, $run:expr
        $(, context = $context:expr)? $(, filters = $filters:expr)? $(,)?) => {{
        let context: &[&str] = &[$(&$context)?];
        let filters: &[&[(&str, &str)]] = &[$(&$filters)?];
        let (description, out, text) =
            $crate::harness::snapshot_parts(&$project, $run, context, filters);
        $crate::harness::snapshot_settings(&description).bind(|| {
            ::insta::assert_snapshot!(text);
        });
        out
    }};
}
pub(crate) use ralph_snapshot;

/// Something [`ralph_snapshot!`] can snapshot: it runs (or has run) ralph in a project and
/// yields the command line for the snapshot's description (empty when unknown) and the output.
pub trait Invocation {
    fn invoke(self, p: &Project) -> (String, Out);
}

impl<const N: usize> Invocation for [&str; N] {
    fn invoke(self, p: &Project) -> (String, Out) {
        self[..].invoke(p)
    }
}

impl<const N: usize> Invocation for &[&str; N] {
    fn invoke(self, p: &Project) -> (String, Out) {
        self[..].invoke(p)
    }
}

impl Invocation for &[&str] {
    fn invoke(self, p: &Project) -> (String, Out) {
        (command_line(self.iter().copied()), p.run(self))
    }
}

impl Invocation for Vec<&str> {
    fn invoke(self, p: &Project) -> (String, Out) {
        self[..].invoke(p)
    }
}

impl Invocation for &Vec<&str> {
    fn invoke(self, p: &Project) -> (String, Out) {
        self[..].invoke(p)
    }
}

impl Invocation for &mut Command {
    fn invoke(self, _: &Project) -> (String, Out) {
        let args: Vec<String> = self
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let line = command_line(args.iter().map(String::as_str));
        (line, Out::from(self.output().unwrap()))
    }
}

impl Invocation for Out {
    fn invoke(self, _: &Project) -> (String, Out) {
        (String::new(), self)
    }
}

impl Invocation for (&str, Out) {
    fn invoke(self, _: &Project) -> (String, Out) {
        (self.0.to_owned(), self.1)
    }
}

/// `ralph` and the arguments, quoted where a shell would need it.
fn command_line<'a>(args: impl Iterator<Item = &'a str>) -> String {
    let mut line = String::from("ralph");
    for arg in args {
        line.push(' ');
        let plain = !arg.is_empty()
            && arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
        if plain {
            line.push_str(arg);
        } else {
            line.push('\'');
            line.push_str(&arg.replace('\'', "'\\''"));
            line.push('\'');
        }
    }
    line
}

/// Runs `run` and renders what a snapshot stores: `context`, then the output, normalised.
/// Used by [`ralph_snapshot!`].
pub fn snapshot_parts(
    p: &Project,
    run: impl Invocation,
    context: &[&str],
    filters: &[&[(&str, &str)]],
) -> (String, Out, String) {
    let (description, out) = run.invoke(p);
    let filters: Vec<(&str, &str)> = filters.iter().flat_map(|f| f.iter().copied()).collect();
    let text = p.normalize(
        &format!("{}{}", context.concat(), out.snapshot_text()),
        &filters,
    );
    (p.normalize(&description, &filters), out, text)
}

/// The insta settings of every [`ralph_snapshot!`]: the command line as the description
/// instead of the (always identical) expression.
pub fn snapshot_settings(description: &str) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_omit_expression(true);
    if !description.is_empty() {
        settings.set_description(description);
    }
    settings
}

/// The standard `(regex, replacement)` filters, applied after the project's paths are replaced
/// (see [`Project::normalize`]). Each names what it hides, in uv's `[NAME]` style.
pub fn snapshot_filters() -> &'static [(regex::Regex, &'static str)] {
    static FILTERS: std::sync::OnceLock<Vec<(regex::Regex, &'static str)>> =
        std::sync::OnceLock::new();
    FILTERS.get_or_init(|| {
        [
            // The sandbox's per-call temp dirs: under ralph's TMPDIR, named by the user's uid.
            (r"[^\s'\x22]*/ralph-sandbox-\d+/", "[SANDBOX_TMP]/"),
            // Run ids: `20261202-054012-ab12`.
            (r"\b\d{8}-\d{6}-[0-9a-f]{4}\b", "[RUN_ID]"),
            // Rollback checkpoints are named after the time they were taken (with a `-N` suffix
            // for a second one within the same second).
            (r"\brollback-\d{8}-\d{6}(?:-\d+)?\b", "rollback-[TIMESTAMP]"),
            // RFC 3339 timestamps, with or without fraction and offset.
            (
                r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?",
                "[TIMESTAMP]",
            ),
            // Hashes: sha256 (audit chain, sha256 repositories) and sha1 commit ids; short commit
            // ids where ralph names a commit or checkpoint.
            (r"\b[0-9a-f]{64}\b", "[SHA256]"),
            (r"\b[0-9a-f]{40}\b", "[COMMIT]"),
            (r"\b(commit|checkpoint) [0-9a-f]{7,12}\b", "$1 [SHORT]"),
            (r"\(([0-9a-f]{7,12})\)", "([SHORT])"),
            // The COMMIT column of `ralph checkpoints`, just before the DATE column.
            (r"\b[0-9a-f]{7,12}(\s+\[TIMESTAMP\])", "[SHORT]$1"),
            // UUIDs and the fake agent's random message and tool ids.
            (
                r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
                "[UUID]",
            ),
            (r"\b(msg|toolu)_[0-9a-f]{24}\b", "${1}_[ID]"),
            // Measured durations: `1.2s`, `0.03s`, `12ms`, `1m5s`. Whole units on their own
            // (`1s`, `30m`, `1h30m`) are configured limits or examples in hints, and stay.
            (r"\b\d+m\d+s\b|\b\d+\.\d+s\b|\b\d+ms\b", "[TIME]"),
            // ... and as event fields, in JSON and in `ralph logs`' `key=value` lines.
            (
                r#""(duration_ms|duration_api_ms|elapsed_s|duration_s)":[0-9.]+"#,
                r#""$1":[TIME]"#,
            ),
            (
                r"\b(duration_ms|duration_api_ms|elapsed_s|duration_s)=[0-9.]+",
                "$1=[TIME]",
            ),
            // Process ids.
            (r"\b(PID|pid) \d+\b", "$1 [PID]"),
            (r#""pid":\s*\d+"#, r#""pid": [PID]"#),
        ]
        .into_iter()
        .map(|(re, replacement)| (regex::Regex::new(re).unwrap(), replacement))
        .collect()
    })
}

impl Project {
    /// The project's paths and binaries, longest first, with the name a snapshot shows instead.
    pub fn path_filters(&self) -> Vec<(String, &'static str)> {
        let tmp = self.root.parent().unwrap().to_path_buf();
        let mut filters = Vec::new();
        for (path, name) in [
            (fake_agent_path(), "[FAKE_AGENT]"),
            (PathBuf::from(RALPH), "[RALPH]"),
            (self.root.clone(), "[ROOT]"),
            (self.aux.clone(), "[AUX]"),
            (self.home.clone(), "[HOME]"),
            (tmp, "[TMP]"),
        ] {
            if let Ok(canonical) = path.canonicalize() {
                if canonical != path {
                    filters.push((path_str(&canonical), name));
                }
            }
            filters.push((path_str(&path), name));
        }
        filters.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
        filters
    }

    /// `text` with the `extra` `(regex, replacement)` filters, then this project's paths, then
    /// everything [`snapshot_filters`] names replaced: what a snapshot of it stores. Extra
    /// filters come first so that a test can name one value the standard filters would hide
    /// among others (a second project's root, one particular run id).
    pub fn normalize(&self, text: &str, extra: &[(&str, &str)]) -> String {
        let mut text = text.to_owned();
        for (re, replacement) in extra {
            let re = regex::Regex::new(re).unwrap();
            text = re.replace_all(&text, *replacement).into_owned();
        }
        for (path, name) in self.path_filters() {
            text = text.replace(&path, name);
        }
        for (re, replacement) in snapshot_filters() {
            text = re.replace_all(&text, *replacement).into_owned();
        }
        text
    }
}

impl Out {
    /// Exit code, stdout and stderr as one text, unfiltered (uv's layout).
    pub fn snapshot_text(&self) -> String {
        format!(
            "exit_code: {}\n----- stdout -----\n{}\n----- stderr -----\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

#[test]
fn snapshot_filters_hide_what_varies_and_keep_the_rest() {
    let p = Project::new();
    let raw = format!(
        "run 20261202-054012-ab1f at 2026-12-02T05:40:12.345Z in {root}/x, aux {aux}, home {home}\n\
         [1/3] custom · 1.2s · 0.03s · 12ms · 1m5s · limit 1s · example \"1h30m\" · 30m\n\
         commit 0123456789abcdef0123456789abcdef01234567 checkpoint 0a1b2c3 ({short})\n\
         0001  9f8e7d6  2026-12-02 05:40:12  2\n\
         ralph (PID 4242) \"pid\": 77 sha {sha} rollback-20261202-054012-2\n\
         agent {agent} \"duration_ms\":812 elapsed_s=0.08 session {uuid} toolu_0123456789abcdef01234567\n\
         kept: 0.0123 tokens 1450, v1 4fab38cd, 4294967295, iteration 0001",
        root = path_str(&p.root),
        aux = path_str(&p.aux),
        home = path_str(&p.home),
        short = "abcdef1",
        sha = "ab".repeat(32),
        agent = path_str(&fake_agent_path()),
        uuid = "0f0e0d0c-0b0a-4909-8807-060504030201",
    );
    assert_eq!(
        p.normalize(&raw, &[("example", "EXAMPLE")]),
        "run [RUN_ID] at [TIMESTAMP] in [ROOT]/x, aux [AUX], home [HOME]\n\
         [1/3] custom · [TIME] · [TIME] · [TIME] · [TIME] · limit 1s · EXAMPLE \"1h30m\" · 30m\n\
         commit [COMMIT] checkpoint [SHORT] ([SHORT])\n\
         0001  [SHORT]  [TIMESTAMP]  2\n\
         ralph (PID [PID]) \"pid\": [PID] sha [SHA256] rollback-[TIMESTAMP]\n\
         agent [FAKE_AGENT] \"duration_ms\":[TIME] elapsed_s=[TIME] session [UUID] toolu_[ID]\n\
         kept: 0.0123 tokens 1450, v1 4fab38cd, 4294967295, iteration 0001"
    );
}

#[test]
fn inline_snapshots_work_too() {
    let p = Project::new();
    let out = ralph_snapshot!(p, ["status"], @r"
    exit_code: 0
    ----- stdout -----

    ----- stderr -----
    ralph: no runs in this project yet; start one with `ralph run`
    ");
    assert!(!p.exists(".ralph"), "{out:?}");
}

/// A `claude` on PATH that is the fake agent, recording its arguments and `IS_SANDBOX` in
/// `claude-args.txt`; returns the PATH to run ralph with.
pub fn fake_claude(p: &Project, script: &ralph_testkit::Script) -> String {
    let bin = p.aux_path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script_path = p.aux_path("claude-script.json");
    script.write_to(&script_path).unwrap();
    let wrapper = format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo '2.1.197 (Claude Code)'; exit 0; fi\n\
         printf '%s\\n' \"$@\" > {args}\necho \"IS_SANDBOX=$IS_SANDBOX\" >> {args}\n\
         FAKE_AGENT_SCRIPT={script} exec {agent} \"$@\"\n",
        args = p.aux_path("claude-args.txt").display(),
        script = script_path.display(),
        agent = ralph_testkit::fake_agent_path().display(),
    );
    let path = bin.join("claude");
    std::fs::write(&path, wrapper).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}
