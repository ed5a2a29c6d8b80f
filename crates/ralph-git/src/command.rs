//! Locating the `git` binary and spawning it in a controlled environment.
//!
//! Every git process ralph starts goes through [`run`], so the environment rules live in one
//! place: ralph may itself be started from a git hook, an alias or a shell that exported
//! `GIT_DIR`/`GIT_INDEX_FILE`/…, and any of those would silently redirect our writes into the
//! wrong repository or, worse, into the user's real index.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::GitError;

/// Variables that change which repository, work tree, index, object store, refs or
/// configuration git uses, or how it resolves pathspecs and identities. They are removed by
/// name even when absent from our environment, so the rule is visible (and testable) on every
/// `Command`; any other `GIT_*` variable is removed too unless it is in [`KEPT`].
pub(crate) const STRIPPED: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CEILING_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    "GIT_PREFIX",
    "GIT_QUARANTINE_PATH",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_REPLACE_REF_BASE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_GRAFT_FILE",
    "GIT_SHALLOW_FILE",
    "GIT_LITERAL_PATHSPECS",
    "GIT_GLOB_PATHSPECS",
    "GIT_NOGLOB_PATHSPECS",
    "GIT_ICASE_PATHSPECS",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "GIT_COMMITTER_DATE",
    "GIT_EXTERNAL_DIFF",
    "GIT_DIFF_OPTS",
    "GIT_EDITOR",
    "GIT_PAGER",
];

/// `GIT_*` variables that are passed through: where git's own helpers live (relocatable
/// installs need it), where the user keeps configuration (their choice, and it cannot point
/// git at another repository), and tracing (stderr only, useful when debugging ralph).
const KEPT: &[&str] = &[
    "GIT_EXEC_PATH",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
];

/// Longest stderr excerpt kept in an error: enough for git's `error:`/`fatal:` lines, small
/// enough that a misbehaving filter cannot flood ralph's logs.
const STDERR_LIMIT: usize = 2000;
/// Longest argument list kept in an error (commit messages can be long).
const ARGS_LIMIT: usize = 200;

fn should_strip(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    name.starts_with("GIT_") && !KEPT.contains(&name) && !name.starts_with("GIT_TRACE")
}

/// The `git` executable, looked up on `PATH` once per process: every checkpoint spawns several
/// git processes and a `PATH` walk each time would be wasted work.
pub(crate) fn git_binary() -> Result<&'static Path, GitError> {
    static GIT: OnceLock<Option<PathBuf>> = OnceLock::new();
    GIT.get_or_init(|| find_on_path(std::env::var_os("PATH")?.as_os_str()))
        .as_deref()
        .ok_or(GitError::NotInstalled)
}

fn find_on_path(path: &OsStr) -> Option<PathBuf> {
    let name = if cfg!(windows) { "git.exe" } else { "git" };
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// One git invocation: subcommand arguments, extra `-c` settings and environment.
pub(crate) struct Invocation<'a> {
    pub args: &'a [&'a str],
    /// `-c key=value` settings placed before the subcommand.
    pub config: &'a [&'a str],
    pub env: &'a [(&'a str, &'a OsStr)],
}

impl<'a> Invocation<'a> {
    pub fn new(args: &'a [&'a str]) -> Self {
        Invocation {
            args,
            config: &[],
            env: &[],
        }
    }
}

pub(crate) struct Output {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Settings that keep code the repository's configuration names from running in ralph's own
/// git processes. An agent can write `.gitattributes` (`* filter=evil`), the user's global
/// config or `.git/info/attributes`; `.git/config` and `info/attributes` are put back before
/// ralph runs git after an iteration, the rest is switched off here:
///
/// - hooks: `update-ref` fires `reference-transaction`; `/dev/null` is not a directory, so no
///   hook is ever found;
/// - fsmonitor: `core.fsmonitor` may name a program, run by every index-reading command;
/// - attributes, which select filter drivers (`clean`/`smudge`/`process` run on `git add` and
///   `checkout-index`), textconv and diff drivers: the global attributes file is replaced by
///   `/dev/null`, the system one by `GIT_ATTR_NOSYSTEM`, and the work tree's `.gitattributes`
///   by those of the empty tree (`attr.tree`, git 2.43 or newer; [`Git::run`] adds it). So
///   checkpoints store and restore the bytes in the work tree exactly, without any filter;
/// - replace refs (`git replace`), which would make ralph see other objects than the ones
///   the refs name;
/// - automatic gc and maintenance (they could prune objects ralph restores refs to), and
///   any transport or credential helper (ralph never talks to a remote).
pub(crate) const HARDENING: &[&str] = &[
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.attributesFile=/dev/null",
    "core.useReplaceRefs=false",
    "gc.auto=0",
    "maintenance.auto=false",
    "credential.helper=",
    "protocol.allow=never",
];

/// Builds the command without running it (separate so tests can inspect the environment).
/// `attr_tree`: the empty tree's id, read attributes from it (see [`HARDENING`]).
pub(crate) fn build(
    git: &Path,
    cwd: &Path,
    attr_tree: Option<&str>,
    inv: &Invocation<'_>,
) -> Command {
    let mut cmd = Command::new(git);
    cmd.current_dir(cwd);
    for name in STRIPPED {
        cmd.env_remove(name);
    }
    for (name, _) in std::env::vars_os() {
        if should_strip(&name) {
            cmd.env_remove(name);
        }
    }
    // LC_ALL=C: we match a few stderr texts and parse stdout. GIT_TERMINAL_PROMPT=0: a filter
    // or credential helper must never wait for input nobody will type. GIT_OPTIONAL_LOCKS=0:
    // read-only commands must not take `index.lock` on the user's real index behind their back.
    cmd.env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_ATTR_NOSYSTEM", "1");
    for (name, value) in inv.env {
        cmd.env(name, value);
    }
    for setting in HARDENING {
        cmd.args(["-c", setting]);
    }
    if let Some(tree) = attr_tree {
        cmd.arg("-c").arg(format!("attr.tree={tree}"));
    }
    for setting in inv.config {
        cmd.args(["-c", setting]);
    }
    cmd.args(inv.args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs git and returns its output whatever the exit status.
pub(crate) fn run_raw(
    cwd: &Path,
    attr_tree: Option<&str>,
    inv: &Invocation<'_>,
) -> Result<Output, GitError> {
    let git = git_binary()?;
    let out = build(git, cwd, attr_tree, inv)
        .output()
        .map_err(|source| GitError::Spawn {
            args: display_args(inv.args),
            source,
        })?;
    Ok(Output {
        code: out.status.code(),
        stdout: out.stdout,
        stderr: out.stderr,
    })
}

/// Runs git with `input` on its stdin (written from a separate thread, so a git that writes a
/// lot of output before reading all of its input cannot deadlock us); stdout as [`run`].
pub(crate) fn run_with_input(
    cwd: &Path,
    attr_tree: Option<&str>,
    inv: &Invocation<'_>,
    input: Vec<u8>,
) -> Result<Vec<u8>, GitError> {
    let git = git_binary()?;
    let spawn_error = |source| GitError::Spawn {
        args: display_args(inv.args),
        source,
    };
    let mut cmd = build(git, cwd, attr_tree, inv);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(spawn_error)?;
    let writer = child.stdin.take().map(|mut stdin| {
        std::thread::spawn(move || {
            use std::io::Write as _;
            // A git that exits early closes the pipe; its exit status tells what happened.
            let _ = stdin.write_all(&input);
        })
    });
    let out = child.wait_with_output().map_err(spawn_error)?;
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let out = Output {
        code: out.status.code(),
        stdout: out.stdout,
        stderr: out.stderr,
    };
    if out.success() {
        Ok(out.stdout)
    } else {
        Err(failed(inv.args, &out))
    }
}

/// Runs git and returns stdout, or [`GitError::Failed`] on a non-zero exit.
pub(crate) fn run(
    cwd: &Path,
    attr_tree: Option<&str>,
    inv: &Invocation<'_>,
) -> Result<Vec<u8>, GitError> {
    let out = run_raw(cwd, attr_tree, inv)?;
    if out.success() {
        Ok(out.stdout)
    } else {
        Err(failed(inv.args, &out))
    }
}

pub(crate) fn failed(args: &[&str], out: &Output) -> GitError {
    GitError::Failed {
        args: display_args(args),
        // -1: killed by a signal, there is no exit code.
        code: out.code.unwrap_or(-1),
        stderr: bounded(&String::from_utf8_lossy(&out.stderr), STDERR_LIMIT),
    }
}

pub(crate) fn display_args(args: &[&str]) -> String {
    bounded(&args.join(" "), ARGS_LIMIT)
}

pub(crate) fn bounded(text: &str, limit: usize) -> String {
    let text = text.trim();
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Raw git output bytes as a path: git prints paths unquoted and not necessarily UTF-8.
pub(crate) fn bytes_to_path(bytes: &[u8]) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        PathBuf::from(OsStr::from_bytes(bytes))
    }
    #[cfg(not(unix))]
    {
        PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(cmd: &Command) -> Vec<(String, Option<String>)> {
        cmd.get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn builder_removes_repository_variables_and_sets_ours() {
        let index = std::ffi::OsString::from("/tmp/some-index");
        let inv = Invocation {
            args: &["write-tree"],
            config: &["core.safecrlf=false"],
            env: &[("GIT_INDEX_FILE", index.as_os_str())],
        };
        let cmd = build(Path::new("git"), Path::new("/"), Some("4b82"), &inv);
        let env = env_of(&cmd);
        let get = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        for name in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_OBJECT_DIRECTORY",
            "GIT_ALTERNATE_OBJECT_DIRECTORIES",
            "GIT_CEILING_DIRECTORIES",
            "GIT_COMMON_DIR",
            "GIT_NAMESPACE",
            "GIT_CONFIG_PARAMETERS",
        ] {
            assert_eq!(get(name), Some(None), "{name} must be removed");
        }
        // Set on purpose for this invocation: the explicit value wins over the removal.
        assert_eq!(get("GIT_INDEX_FILE"), Some(Some("/tmp/some-index".into())));
        assert_eq!(get("LC_ALL"), Some(Some("C".into())));
        assert_eq!(get("GIT_TERMINAL_PROMPT"), Some(Some("0".into())));
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
        let mut expected: Vec<String> = HARDENING
            .iter()
            .flat_map(|s| ["-c".to_string(), s.to_string()])
            .collect();
        expected.extend(
            [
                "-c",
                "attr.tree=4b82",
                "-c",
                "core.safecrlf=false",
                "write-tree",
            ]
            .map(String::from),
        );
        assert_eq!(args, expected);
        assert_eq!(get("GIT_ATTR_NOSYSTEM"), Some(Some("1".into())));
    }

    #[test]
    fn builder_without_index_override_removes_index_file() {
        let cmd = build(
            Path::new("git"),
            Path::new("/"),
            None,
            &Invocation::new(&["status"]),
        );
        let env = env_of(&cmd);
        assert!(env.contains(&("GIT_INDEX_FILE".into(), None)));
    }

    #[test]
    fn strip_rule_keeps_config_location_and_tracing() {
        assert!(should_strip(OsStr::new("GIT_CONFIG_KEY_0")));
        assert!(should_strip(OsStr::new("GIT_CONFIG_VALUE_0")));
        assert!(should_strip(OsStr::new("GIT_SOMETHING_NEW")));
        assert!(!should_strip(OsStr::new("GIT_TRACE2_EVENT")));
        assert!(!should_strip(OsStr::new("GIT_CONFIG_GLOBAL")));
        assert!(!should_strip(OsStr::new("GIT_EXEC_PATH")));
        assert!(!should_strip(OsStr::new("HOME")));
    }

    #[test]
    fn bounded_respects_char_boundaries() {
        assert_eq!(bounded("  short \n", 10), "short");
        assert_eq!(bounded("ééé", 3), "é…");
    }

    #[test]
    fn finds_an_executable_on_a_path_list() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("git");
        std::fs::write(&fake, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(find_on_path(dir.path().as_os_str()), None, "not executable");
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = std::env::join_paths(["/nonexistent-dir".as_ref(), dir.path()]).unwrap();
        assert_eq!(find_on_path(&path), Some(fake));
    }
}
