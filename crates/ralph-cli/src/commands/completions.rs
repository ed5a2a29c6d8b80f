//! `ralph completions SHELL`: shell completions generated from the clap definitions.

use clap::CommandFactory;
use ralph_types::exit_codes;

use crate::cli::{Cli, CompletionsArgs, Shell};
use crate::error::CliError;

pub fn cmd_completions(args: CompletionsArgs) -> Result<i32, CliError> {
    use clap_complete::Shell as S;
    let shell = match args.shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Elvish => S::Elvish,
        Shell::Powershell => S::PowerShell,
    };
    clap_complete::generate(shell, &mut Cli::command(), "ralph", &mut std::io::stdout());
    Ok(exit_codes::SUCCESS)
}
