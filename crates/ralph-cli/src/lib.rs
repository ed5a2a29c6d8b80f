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

mod cli;
mod commands;
pub mod config;
mod error;
mod escapes;
mod lock;
mod paths;
pub mod plan;
mod render;
mod routing;
pub mod schema;
mod settings;
mod skills;
mod style;

use clap::{CommandFactory, FromArgMatches};
use ralph_types::exit_codes;

use commands::{
    audit, checkpoints, completions, cost, doctor, init, logs, prompt, rollback, run, status, stop,
    stories,
};

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
        // The one place the colour decision is made, before clap prints anything.
        let style = style::Style::detect();
        style::init(style);
        let mut command = cli::Cli::command().color(style.clap_choice());
        let mut matches = command.get_matches_mut();
        let cli = match cli::Cli::from_arg_matches_mut(&mut matches) {
            Ok(cli) => cli,
            Err(e) => e.format(&mut command).exit(),
        };
        match cli.command {
            cli::Command::Init(a) => init::cmd_init(a),
            cli::Command::Run(a) => run::cmd_run(*a),
            cli::Command::Status(a) => status::cmd_status(a),
            cli::Command::Stop(a) => stop::cmd_stop(a),
            cli::Command::Logs(a) => logs::cmd_logs(a),
            cli::Command::Prompt(a) => prompt::cmd_prompt(a),
            cli::Command::Doctor(a) => doctor::cmd_doctor(a),
            cli::Command::Cost(a) => cost::cmd_cost(a),
            cli::Command::Audit(a) => audit::cmd_audit(a),
            cli::Command::Checkpoints(a) => checkpoints::cmd_checkpoints(a),
            cli::Command::Rollback(a) => rollback::cmd_rollback(a),
            cli::Command::Completions(a) => completions::cmd_completions(a),
            cli::Command::Schema(a) => commands::schema::cmd_schema(a),
            cli::Command::Stories(a) => stories::cmd_stories(a),
            cli::Command::Plan(a) => commands::plan::cmd_plan(*a),
            cli::Command::Skills(a) => commands::skills::cmd_skills(a),
            cli::Command::Templates(a) => commands::templates::cmd_templates(a),
        }
    });
    match result {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("{e}");
            e.code
        }
        Err(_) => exit_codes::INTERNAL_ERROR,
    }
}
