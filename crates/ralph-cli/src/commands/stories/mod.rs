//! `ralph stories …` (STORIES.md): one file per subcommand.

pub mod check;
pub mod run;

use crate::cli::{StoriesArgs, StoriesCmd};
use crate::error::CliError;

pub fn cmd_stories(args: StoriesArgs) -> Result<i32, CliError> {
    match args.cmd {
        StoriesCmd::Check(a) => check::cmd_check(a),
        StoriesCmd::Run(a) => run::cmd_stories_run(*a),
    }
}
