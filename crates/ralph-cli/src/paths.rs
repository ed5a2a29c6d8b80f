//! Filesystem helpers shared by commands, and where ralph's user-level data lives.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use ralph_types::exit_codes;

use crate::error::CliError;

pub fn cwd() -> Result<PathBuf, CliError> {
    std::env::current_dir().map_err(|e| {
        CliError::new(
            exit_codes::INTERNAL_ERROR,
            format!("failed to read the current directory: {e}"),
            None,
        )
    })
}

/// `.ralph/` with a `.gitignore` of `*`, so ralph's state is never committed and the user's
/// `.gitignore` is never edited.
pub fn ensure_state_dir(dir: &Path) -> Result<(), CliError> {
    let fail = |e: std::io::Error| {
        CliError::new(
            exit_codes::INTERNAL_ERROR,
            format!("failed to create {}: {e}", dir.display()),
            None,
        )
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let gi = dir.join(".gitignore");
    if !gi.exists() {
        std::fs::write(&gi, ralph_core::STATE_GITIGNORE).map_err(fail)?;
    }
    Ok(())
}

/// Resolve a program like the shell would: a path with a slash as is, else search PATH.
pub fn find_program(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| executable(p))
}

/// The environment variables that say where ralph's user-level data lives (CLI.md
/// "Environment read by ralph"), read once. An empty value counts as unset, as the XDG Base
/// Directory spec says of `XDG_DATA_HOME`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataHomeEnv {
    pub ralph_home: Option<PathBuf>,
    pub xdg_data_home: Option<PathBuf>,
    pub home: Option<PathBuf>,
}

impl DataHomeEnv {
    /// From this process's environment.
    pub fn from_process() -> DataHomeEnv {
        DataHomeEnv::new(
            std::env::var_os("RALPH_HOME"),
            std::env::var_os("XDG_DATA_HOME"),
            std::env::var_os("HOME"),
        )
    }

    /// From the raw values of `RALPH_HOME`, `XDG_DATA_HOME` and `HOME`.
    pub fn new(
        ralph_home: Option<OsString>,
        xdg_data_home: Option<OsString>,
        home: Option<OsString>,
    ) -> DataHomeEnv {
        let set = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
        DataHomeEnv {
            ralph_home: set(ralph_home),
            xdg_data_home: set(xdg_data_home),
            home: set(home),
        }
    }
}

/// Where the machine-wide cost ledger is, for `ralph run` (daily and monthly budgets) and
/// `ralph cost --all-projects` alike:
///
/// 1. `budget.ledger` from ralph.toml (`configured`); a leading `~` is `$HOME` (no ledger when
///    `HOME` is unset), a relative path is relative to the project root `cwd`;
/// 2. else `$RALPH_HOME/ledger.db`, a relative `RALPH_HOME` taken from `cwd`;
/// 3. else `$XDG_DATA_HOME/ralph/ledger.db`, when `XDG_DATA_HOME` is absolute (a relative one
///    is ignored, as the XDG spec says);
/// 4. else `$HOME/.local/share/ralph/ledger.db`.
///
/// `None` when none of them says where. Unset and empty variables are the same.
pub fn ledger_path(configured: Option<&Path>, env: &DataHomeEnv, cwd: &Path) -> Option<PathBuf> {
    if let Some(p) = configured {
        let p = match p.strip_prefix("~") {
            Ok(rest) => env.home.as_ref()?.join(rest),
            Err(_) => p.to_path_buf(),
        };
        return Some(cwd.join(p));
    }
    let ralph_home = env.ralph_home.as_ref().map(|p| cwd.join(p));
    ralph_store::Ledger::default_path(
        ralph_home.as_deref(),
        env.xdg_data_home.as_deref(),
        env.home.as_deref().map(|h| cwd.join(h)).as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(ralph_home: &str, xdg_data_home: &str, home: &str) -> DataHomeEnv {
        let v = |s: &str| (s != "unset").then(|| OsString::from(s));
        DataHomeEnv::new(v(ralph_home), v(xdg_data_home), v(home))
    }

    fn at(configured: Option<&str>, env: &DataHomeEnv) -> Option<PathBuf> {
        ledger_path(configured.map(Path::new), env, Path::new("/project"))
    }

    fn p(s: &str) -> Option<PathBuf> {
        Some(PathBuf::from(s))
    }

    #[test]
    fn budget_ledger_wins_over_the_environment() {
        let all = env("/r", "/x", "/h");
        assert_eq!(at(Some("/abs/l.db"), &all), p("/abs/l.db"));
        assert_eq!(at(Some("costs/l.db"), &all), p("/project/costs/l.db"));
        assert_eq!(at(Some("~/l.db"), &all), p("/h/l.db"));
        assert_eq!(at(Some("~"), &all), p("/h"));
        // `~user` is not expanded (ralph does not read the password database).
        assert_eq!(at(Some("~bob/l.db"), &all), p("/project/~bob/l.db"));
        // `~` without a HOME says nothing about where the ledger is.
        assert_eq!(at(Some("~/l.db"), &env("/r", "/x", "unset")), None);
        assert_eq!(at(Some("~/l.db"), &env("/r", "/x", "")), None);
        assert_eq!(
            at(Some("/abs/l.db"), &env("unset", "unset", "unset")),
            p("/abs/l.db")
        );
    }

    #[test]
    fn ralph_home_then_xdg_data_home_then_home() {
        assert_eq!(at(None, &env("/r", "/x", "/h")), p("/r/ledger.db"));
        assert_eq!(at(None, &env("unset", "/x", "/h")), p("/x/ralph/ledger.db"));
        assert_eq!(
            at(None, &env("unset", "unset", "/h")),
            p("/h/.local/share/ralph/ledger.db")
        );
        assert_eq!(at(None, &env("unset", "unset", "unset")), None);
    }

    #[test]
    fn empty_variables_count_as_unset() {
        assert_eq!(at(None, &env("", "/x", "/h")), p("/x/ralph/ledger.db"));
        assert_eq!(
            at(None, &env("", "", "/h")),
            p("/h/.local/share/ralph/ledger.db")
        );
        assert_eq!(at(None, &env("", "", "")), None);
        assert_eq!(env("", "", ""), DataHomeEnv::default());
    }

    #[test]
    fn relative_values() {
        // A relative RALPH_HOME (or HOME) is taken from the project root; a relative
        // XDG_DATA_HOME is ignored, as the spec says.
        assert_eq!(
            at(None, &env("data", "/x", "/h")),
            p("/project/data/ledger.db")
        );
        assert_eq!(
            at(None, &env("./data", "/x", "/h")),
            p("/project/./data/ledger.db")
        );
        assert_eq!(
            at(None, &env("unset", "rel", "/h")),
            p("/h/.local/share/ralph/ledger.db")
        );
        assert_eq!(
            at(None, &env("unset", "unset", "h")),
            p("/project/h/.local/share/ralph/ledger.db")
        );
        assert_eq!(at(None, &env("unset", "rel", "unset")), None);
    }
}
