//! `ralph skills list|show|export|run`: the planner's prompts as files. `export` writes the
//! skills (the project's version where it has one) into `.ralph/skills/` (or `--dir`) to edit;
//! `run NAME --set input=value …` makes one bounded, accounted agent call with the skill's
//! prompt and checks the file it was asked to write.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use ralph_types::exit_codes;

use super::plan::call::{call_once, Call};
use crate::error::CliError;
use crate::skills::{self, PROJECT_DIR};
use crate::{lock, paths, settings};

#[derive(Debug, Args)]
pub struct SkillsArgs {
    #[command(subcommand)]
    pub cmd: SkillsCmd,
}

#[derive(Debug, Subcommand)]
pub enum SkillsCmd {
    /// The skills: name, where it comes from, what it does, its inputs
    List,
    /// One skill's file (front matter and prompt)
    Show {
        /// The skill's name
        name: String,
    },
    /// Write skill files to edit (a project's .ralph/skills/<name>.md replaces the built-in)
    Export {
        /// Which skills (default: all)
        names: Vec<String>,
        /// Where to write them
        #[arg(long, value_name = "DIR", default_value = PROJECT_DIR)]
        dir: PathBuf,
        /// Replace files that exist
        #[arg(long)]
        force: bool,
    },
    /// Run one skill: one agent call with its prompt, its output file checked
    Run(SkillRunArgs),
}

#[derive(Debug, Args)]
pub struct SkillRunArgs {
    /// The skill's name
    pub name: String,
    /// An input of the skill, NAME=VALUE (repeat for each)
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    #[command(flatten)]
    pub call: super::plan::call::CallArgs,
    /// One JSON event per line on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn cmd_skills(args: SkillsArgs) -> Result<i32, CliError> {
    let cwd = paths::cwd()?;
    match args.cmd {
        SkillsCmd::List => {
            for name in skills::names(&cwd) {
                match skills::find(&cwd, &name) {
                    Ok(Some(s)) => outln!(
                        "{name:<28} {:<9} {} (inputs: {})",
                        if s.path.is_some() {
                            "project"
                        } else {
                            "built-in"
                        },
                        s.description,
                        s.input_list()
                    ),
                    Ok(None) => {}
                    Err(e) => outln!("{name:<28} {:<9} invalid: {}", "project", e.message),
                }
            }
            Ok(exit_codes::SUCCESS)
        }
        SkillsCmd::Show { name } => {
            let s = skills::get(&cwd, &name)?;
            out!("{}", s.text);
            Ok(exit_codes::SUCCESS)
        }
        SkillsCmd::Export { names, dir, force } => {
            let names = if names.is_empty() {
                skills::names(&cwd)
            } else {
                names
            };
            // Every name is checked before anything is written.
            let all: Vec<skills::Skill> = names
                .iter()
                .map(|n| skills::get(&cwd, n))
                .collect::<Result<_, _>>()?;
            for s in all {
                let to = dir.join(format!("{}.md", s.name));
                if super::plan::write_unless_edited(&cwd, &to, &s.text, force)? {
                    outln!("{}", to.display());
                }
            }
            Ok(exit_codes::SUCCESS)
        }
        SkillsCmd::Run(a) => run(&cwd, a),
    }
}

fn run(cwd: &std::path::Path, a: SkillRunArgs) -> Result<i32, CliError> {
    let skill = skills::get(cwd, &a.name)?;
    let mut values = BTreeMap::new();
    for kv in &a.set {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(CliError::usage(
                format!("--set {kv:?} is not NAME=VALUE"),
                Some(format!("the skill's inputs: {}", skill.input_list())),
            ));
        };
        if !skill.inputs.iter().any(|(n, _)| n == k) {
            return Err(CliError::usage(
                format!("skill {} has no input {k:?}", skill.name),
                Some(format!("its inputs: {}", skill.input_list())),
            ));
        }
        values.insert(k.to_string(), v.to_string());
    }
    let prompt = skill.render(&values)?;
    let cfg = settings::load_config(a.call.config.as_deref(), cwd)?;
    let state_dir = cwd.join(".ralph");
    paths::ensure_state_dir(&state_dir)?;
    let _lock = lock::acquire(&state_dir)?;
    let called = call_once(
        cwd,
        Call {
            cfg: &cfg,
            backend: a.call.backend,
            model: a.call.model,
            scope: format!("skill:{}", skill.name),
            prompt,
            json: a.json,
        },
    )?;
    if called.stops() {
        return Ok(called.exit_code);
    }
    if let Some(out) = skill.output.as_ref().and_then(|o| values.get(o)) {
        if let Err(problem) = skill.check_output(std::path::Path::new(out)) {
            eprintln!("error: skill {}: {problem}", skill.name);
            return Ok(exit_codes::MAX_ITERATIONS);
        }
        outln!("{out}");
    }
    eprintln!(
        "ralph: skill {}: ${:.4}, {} tokens",
        skill.name, called.cost_usd, called.tokens
    );
    Ok(exit_codes::SUCCESS)
}
