//! What the `fake-agent` was given on each invocation: its whole argv, its whole environment,
//! its stdin and its working directory, so a test can compare what ralph says it runs (e.g.
//! `ralph run --dry-run`) with what the agent really received.
//!
//! Recording is switched on by [`Script::record`](crate::Script::record()) or by the
//! [`RECORD_DIR_ENV`] variable (which wins when both are set). Invocation `N` (1-based, in the
//! order the agents started) is kept in `<dir>/<N>/`:
//!
//! | file | content |
//! |---|---|
//! | `argv.json` | JSON array: argv\[0\] (the program as invoked), then every argument |
//! | `env.json` | JSON object: every environment variable, sorted by name |
//! | `stdin` | what the agent read from stdin (empty when it was a terminal) |
//! | `cwd` | the working directory |
//!
//! Non-UTF-8 text is stored lossily. Each invocation's directory is written beside its final
//! name and renamed into place, so a reader never sees a half-written recording, and concurrent
//! agents never share a number.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The environment variable naming a directory to record every invocation into.
pub const RECORD_DIR_ENV: &str = "FAKE_AGENT_RECORD_DIR";

const ARGV_FILE: &str = "argv.json";
const ENV_FILE: &str = "env.json";
const STDIN_FILE: &str = "stdin";
const CWD_FILE: &str = "cwd";

/// One invocation of the fake agent, as it received it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recording {
    /// argv\[0\] and then every argument, in order.
    pub argv: Vec<String>,
    /// The complete environment.
    pub env: BTreeMap<String, String>,
    /// Everything read from stdin.
    pub stdin: String,
    /// The working directory.
    pub cwd: PathBuf,
}

impl Recording {
    /// The arguments after argv\[0\].
    pub fn args(&self) -> &[String] {
        self.argv.get(1..).unwrap_or_default()
    }

    /// The value of one environment variable.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str)
    }

    /// The variables ralph sets for its agents: every `RALPH_*` variable, and `IS_SANDBOX`.
    pub fn ralph_env(&self) -> BTreeMap<&str, &str> {
        self.env
            .iter()
            .filter(|(k, _)| k.starts_with("RALPH_") || *k == "IS_SANDBOX")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// Writes this recording as the next numbered invocation under `dir` (created if missing);
    /// returns the invocation's directory.
    ///
    /// # Errors
    ///
    /// If a file cannot be written or the directory cannot be renamed into place.
    pub fn write_next(&self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".tmp-{}", std::process::id()));
        std::fs::create_dir_all(&tmp)?;
        let argv = serde_json::to_string(&self.argv).map_err(std::io::Error::other)?;
        let env = serde_json::to_string_pretty(&self.env).map_err(std::io::Error::other)?;
        std::fs::write(tmp.join(ARGV_FILE), argv + "\n")?;
        std::fs::write(tmp.join(ENV_FILE), env + "\n")?;
        std::fs::write(tmp.join(STDIN_FILE), &self.stdin)?;
        std::fs::write(tmp.join(CWD_FILE), self.cwd.to_string_lossy().as_bytes())?;
        // Renaming a directory onto an existing non-empty one fails, and every numbered
        // directory is non-empty: the first free number is ours, even with agents racing.
        for n in 1u32.. {
            let target = dir.join(n.to_string());
            if target.exists() {
                continue;
            }
            match std::fs::rename(&tmp, &target) {
                Ok(()) => return Ok(target),
                Err(_) if target.exists() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other("no free invocation number"))
    }

    /// Reads one invocation's directory (`<dir>/<N>`).
    ///
    /// # Errors
    ///
    /// If a file is missing or `argv.json`/`env.json` is not what [`Recording::write_next`]
    /// writes.
    pub fn read(invocation_dir: &Path) -> std::io::Result<Recording> {
        let read = |name: &str| std::fs::read_to_string(invocation_dir.join(name));
        let invalid =
            |e: serde_json::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        Ok(Recording {
            argv: serde_json::from_str(&read(ARGV_FILE)?).map_err(invalid)?,
            env: serde_json::from_str(&read(ENV_FILE)?).map_err(invalid)?,
            stdin: read(STDIN_FILE)?,
            cwd: PathBuf::from(read(CWD_FILE)?),
        })
    }

    /// Every invocation recorded under `dir`, in the order they started; empty when `dir` does
    /// not exist (no agent ran).
    ///
    /// # Errors
    ///
    /// If `dir` cannot be listed or an invocation cannot be read.
    pub fn read_all(dir: &Path) -> std::io::Result<Vec<Recording>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut numbered = Vec::new();
        for entry in entries {
            let entry = entry?;
            if let Some(n) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            {
                numbered.push((n, entry.path()));
            }
        }
        numbered.sort();
        numbered
            .iter()
            .map(|(_, path)| Recording::read(path))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(arg: &str) -> Recording {
        Recording {
            argv: vec!["/bin/fake-agent".into(), arg.into(), "with space".into()],
            env: BTreeMap::from([
                ("RALPH_ITERATION".into(), "2".into()),
                ("IS_SANDBOX".into(), "1".into()),
                ("HOME".into(), "/h".into()),
            ]),
            stdin: "the prompt\n".into(),
            cwd: PathBuf::from("/work/p"),
        }
    }

    #[test]
    fn invocations_are_numbered_in_order_and_read_back_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rec");
        assert!(Recording::read_all(&dir).unwrap().is_empty());
        let first = sample("a");
        let second = sample("b");
        assert_eq!(first.write_next(&dir).unwrap(), dir.join("1"));
        assert_eq!(second.write_next(&dir).unwrap(), dir.join("2"));
        assert_eq!(Recording::read_all(&dir).unwrap(), [first, second.clone()]);
        assert_eq!(second.args(), ["b", "with space"]);
        assert_eq!(second.var("HOME"), Some("/h"));
        assert_eq!(
            second.ralph_env(),
            BTreeMap::from([("IS_SANDBOX", "1"), ("RALPH_ITERATION", "2")])
        );
        // Nothing but the numbered directories is left behind.
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["1", "2"]);
    }
}
