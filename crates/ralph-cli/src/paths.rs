//! Filesystem helpers shared by commands.

use ralph_types::exit_codes;
use std::path::{Path, PathBuf};

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
        std::fs::write(&gi, "*\n").map_err(fail)?;
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
