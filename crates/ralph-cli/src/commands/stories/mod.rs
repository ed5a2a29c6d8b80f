//! `ralph stories …` (STORIES.md): one file per subcommand.

pub mod check;
pub mod clean;
pub mod land;
mod render;
pub mod retry;
pub mod run;
pub mod status;

use crate::cli::{StoriesArgs, StoriesCmd};
use crate::error::CliError;

pub fn cmd_stories(args: StoriesArgs) -> Result<i32, CliError> {
    match args.cmd {
        StoriesCmd::Check(a) => check::cmd_check(a),
        StoriesCmd::Run(a) => run::cmd_stories_run(*a),
        StoriesCmd::Status(a) => status::cmd_status(a),
        StoriesCmd::Retry(a) => retry::cmd_retry(a),
        StoriesCmd::Land(a) => land::cmd_land(a),
        StoriesCmd::Clean(a) => clean::cmd_clean(a),
    }
}
