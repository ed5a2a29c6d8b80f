//! ralph's command line: commands, settings resolution (defaults < ralph.toml < flags),
//! rendering, exit-code mapping.

/// Like `println!`, but a closed stdout (`ralph logs --json | head -1`) is not an error: the
/// reader has what it wanted.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
/// `print!` counterpart of `outln!`.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

mod audit_cmd;
mod checkpoints_cmd;
mod cli;
mod commands;
pub mod config;
mod cost;
mod error;
mod lock;
mod paths;
mod prompt_cmd;
mod render;
mod run;

use clap::Parser;

pub use error::CliError;

/// Entry point of the `ralph` binary; returns the process exit code.
pub fn main() -> i32 {
    // A bug in ralph must still end with a message and the documented exit code (1), never a
    // backtrace.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("error: internal error in ralph{location}: {payload}");
        eprintln!("  hint: this is a bug; please report it with the command you ran");
    }));
    let result = std::panic::catch_unwind(|| {
        let cli = cli::Cli::parse();
        match cli.command {
            cli::Command::Init(a) => commands::cmd_init(a),
            cli::Command::Run(a) => run::cmd_run(*a),
            cli::Command::Status(a) => commands::cmd_status(a),
            cli::Command::Stop(a) => commands::cmd_stop(a),
            cli::Command::Logs(a) => commands::cmd_logs(a),
            cli::Command::Prompt(a) => prompt_cmd::cmd_prompt(a),
            cli::Command::Doctor(a) => commands::cmd_doctor(a),
            cli::Command::Cost(a) => cost::cmd_cost(a),
            cli::Command::Audit(a) => audit_cmd::cmd_audit(a),
            cli::Command::Checkpoints(a) => checkpoints_cmd::cmd_checkpoints(a),
            cli::Command::Rollback(a) => checkpoints_cmd::cmd_rollback(a),
            cli::Command::Completions(a) => commands::cmd_completions(a),
        }
    });
    match result {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("{e}");
            e.code
        }
        Err(_) => 1,
    }
}
