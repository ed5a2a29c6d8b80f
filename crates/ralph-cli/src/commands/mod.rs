//! One module per command, named after it (`ralph rollback` is `rollback.rs`), plus what
//! several commands share.

pub mod audit;
pub mod checkpoints;
pub mod completions;
pub mod cost;
pub mod doctor;
pub mod init;
pub mod logs;
pub mod plan;
pub mod prompt;
pub mod rollback;
pub mod run;
pub mod schema;
pub mod skills;
pub mod status;
pub mod stop;
pub mod stories;
pub mod templates;

use std::path::Path;

use ralph_store::Store;

use crate::error::CliError;

/// The project's state database, read-only; `None` before the first run.
pub(crate) fn open_store(cwd: &Path) -> Result<Option<Store>, CliError> {
    let db = cwd.join(".ralph").join("ralph.db");
    if !db.exists() {
        return Ok(None);
    }
    Ok(Some(Store::open_read_only(&db)?))
}
