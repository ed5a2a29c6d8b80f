//! `ralph stop`: stop the running loop after the current iteration (`.ralph/STOP`), or at once
//! with `--now` (SIGUSR1 to the ralph holding the project lock).

use std::fs;

use ralph_types::exit_codes;

use crate::cli::StopArgs;
use crate::error::CliError;
use crate::{lock, paths};

pub fn cmd_stop(args: StopArgs) -> Result<i32, CliError> {
    let cwd = paths::cwd()?;
    let state_dir = cwd.join(".ralph");
    let Some(pid) = lock::holder(&state_dir) else {
        eprintln!("ralph: no run is active in this project; nothing to stop");
        return Ok(exit_codes::SUCCESS);
    };
    if args.now {
        // SAFETY: kill(2) on a PID read from our own lock file, which the OS keeps locked only
        // while that process lives.
        let rc = unsafe { libc::kill(pid as i32, libc::SIGUSR1) };
        if rc != 0 {
            return Err(CliError::new(
                exit_codes::INTERNAL_ERROR,
                format!(
                    "failed to signal ralph (PID {pid}): {}",
                    std::io::Error::last_os_error()
                ),
                None,
            ));
        }
        eprintln!("ralph: stopping the run now (PID {pid}); the agent is being killed");
    } else {
        fs::write(state_dir.join("STOP"), b"stop\n").map_err(|e| {
            CliError::new(
                exit_codes::INTERNAL_ERROR,
                format!("failed to write .ralph/STOP: {e}"),
                None,
            )
        })?;
        eprintln!("ralph: the run (PID {pid}) will stop after the current iteration");
    }
    Ok(exit_codes::SUCCESS)
}
