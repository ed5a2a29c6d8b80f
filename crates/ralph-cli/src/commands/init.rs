//! `ralph init`: write ralph.toml and a PROMPT.md template in the current directory.

use std::fs;
use std::io::Write;
use std::path::Path;

use ralph_types::exit_codes;

use crate::cli::InitArgs;
use crate::config;
use crate::error::CliError;
use crate::paths;

pub fn cmd_init(args: InitArgs) -> Result<i32, CliError> {
    let cwd = paths::cwd()?;
    let backend = config::normalize_backend(&args.backend)
        .map_err(|e| CliError::usage(format!("--backend {}: {e}", args.backend), None))?;
    let files = [
        ("ralph.toml", config::init_template(backend)),
        ("PROMPT.md", config::PROMPT_TEMPLATE.to_string()),
    ];
    if !args.force {
        let existing: Vec<&str> = files
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| cwd.join(n).exists())
            .collect();
        if !existing.is_empty() {
            return Err(CliError::usage(
                format!(
                    "{} already exist{}; nothing was written",
                    existing.join(" and "),
                    if existing.len() == 1 { "s" } else { "" }
                ),
                Some("pass --force to overwrite".into()),
            ));
        }
    }
    for (name, content) in &files {
        write_atomically(&cwd.join(name), content.as_bytes()).map_err(|e| {
            CliError::new(
                exit_codes::INTERNAL_ERROR,
                format!("failed to write {name}: {e}"),
                None,
            )
        })?;
    }
    eprintln!("ralph: wrote ralph.toml (backend {backend}) and PROMPT.md");
    eprintln!("ralph: describe the task in PROMPT.md, then `ralph run`");
    Ok(exit_codes::SUCCESS)
}

fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("ralph-tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}
