//! `ralph templates list|show NAME`: the architecture templates the planner can use, built in
//! or the project's own (`.ralph/templates/<name>.toml`, which replaces a built-in of the same
//! name). `show` prints the layers in build order with their edges, conventions and gates, and
//! `--toml` the file itself, to copy and edit.

use clap::{Args, Subcommand};
use ralph_types::exit_codes;

use crate::error::CliError;
use crate::paths;
use crate::plan::template::{self, Source};

#[derive(Debug, Args)]
pub struct TemplatesArgs {
    #[command(subcommand)]
    pub cmd: TemplatesCmd,
}

#[derive(Debug, Subcommand)]
pub enum TemplatesCmd {
    /// The templates: name, where it comes from, its layers in build order
    List,
    /// One template: its layers in build order, what each builds on, its conventions and gates
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The template's name
    pub name: String,
    /// Print the template file itself (to copy into .ralph/templates/ and edit)
    #[arg(long)]
    pub toml: bool,
}

pub fn cmd_templates(args: TemplatesArgs) -> Result<i32, CliError> {
    let cwd = paths::cwd()?;
    match args.cmd {
        TemplatesCmd::List => {
            for (name, source) in template::list(&cwd) {
                let layers = match template::find(&cwd, &name) {
                    Ok(Some((t, _))) => t.order().join(" → "),
                    Ok(None) => String::new(),
                    Err(e) => format!("(invalid: {})", e.message),
                };
                outln!("{name:<16} {:<10} {layers}", short(&source));
            }
            Ok(exit_codes::SUCCESS)
        }
        TemplatesCmd::Show(a) => {
            let found = template::find(&cwd, &a.name)
                .map_err(|e| CliError::preformatted(exit_codes::USAGE, e.to_string()))?;
            let Some((t, source)) = found else {
                let (message, hint) = template::unknown_template(&cwd, &a.name);
                return Err(CliError::usage(message, Some(hint)));
            };
            if a.toml {
                let text = match &source {
                    Source::Builtin => template::BUILTIN
                        .iter()
                        .find(|(n, _)| *n == t.name)
                        .map(|(_, s)| s.to_string())
                        .unwrap_or_default(),
                    Source::Project(p) => std::fs::read_to_string(cwd.join(p)).map_err(|e| {
                        CliError::new(
                            exit_codes::INTERNAL_ERROR,
                            format!("cannot read {}: {e}", p.display()),
                            None,
                        )
                    })?,
                };
                out!("{text}");
                return Ok(exit_codes::SUCCESS);
            }
            outln!("{} ({})", t.name, source.label());
            out!("{}", t.describe());
            let edges: Vec<String> = t
                .edges()
                .iter()
                .map(|(l, d)| format!("{l} → {d}"))
                .collect();
            outln!(
                "\ndefault edges (a story that names no dependency depends on every story of \
                 the layers its layer builds on): {}",
                if edges.is_empty() {
                    "none".to_string()
                } else {
                    edges.join(", ")
                }
            );
            Ok(exit_codes::SUCCESS)
        }
    }
}

fn short(s: &Source) -> &'static str {
    match s {
        Source::Builtin => "built-in",
        Source::Project(_) => "project",
    }
}
