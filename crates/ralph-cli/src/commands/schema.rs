//! `ralph schema stories|config`: the JSON Schema of a file ralph reads, on stdout.

use ralph_types::exit_codes;

use crate::cli::{SchemaArgs, SchemaFile};
use crate::error::CliError;
use crate::schema;

pub fn cmd_schema(args: SchemaArgs) -> Result<i32, CliError> {
    let value = match args.file {
        SchemaFile::Stories => schema::stories_schema(),
        SchemaFile::Config => schema::config_schema(),
    };
    out!("{}", schema::render(&value));
    Ok(exit_codes::SUCCESS)
}
