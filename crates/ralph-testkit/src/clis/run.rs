//! Running a CLI headless: its command line, and a run in its own process group with a timeout
//! of our own (opencode retries 5xx forever).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::install::bin;
use super::{Cli, CliEnv};

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
    use super::*;

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
