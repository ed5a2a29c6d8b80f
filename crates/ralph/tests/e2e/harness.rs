//! A temporary project with a fake agent, and helpers to run ralph in it.

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
        }
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
