//! `ralph plan PRD.md [-o stories.toml] [--architecture NAME]`: the agent writes a design
//! document and then the plan, one phase after the other; each phase is one bounded, accounted
//! agent call (`call.rs`) whose output ralph checks (`verify.rs`) and sends back with the error
//! when it does not hold, at most `plan.max_attempts` times. The prompts are skills
//! (`ralph skills`), the layers an architecture template (`ralph templates`). It ends by
//! printing the plan's DAG and what planning cost; the user reads the file and runs
//! `ralph stories run`.
//!
//! | what | file |
//! |---|---|
//! | the phases, their attempts, the summary | `mod.rs` |
//! | one agent call through the loop engine | `call.rs` |
//! | the checks of the plan and the default edges written into it | `verify.rs` |
//! | Claude Code subagent files for the layers (`--claude-agents`) | `claude_agents.rs` |

pub(crate) mod call;
mod claude_agents;
mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use ralph_stories::{Dag, Template};
use ralph_types::exit_codes;

use crate::error::CliError;
use crate::plan::{template, PlanFile};
use crate::skills::{self, Skill};
use crate::{lock, paths, settings};
use call::{call_once, Call};

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The PRD: the feature, in a Markdown file inside the repository
    pub prd: PathBuf,
    /// Where the plan goes
    #[arg(short, long, value_name = "PATH", default_value = "stories.toml")]
    pub output: PathBuf,
    /// Architecture template (`ralph templates list`), instead of plan.architecture
    #[arg(long, value_name = "NAME")]
    pub architecture: Option<String>,
    /// The plan's name (its integration branch is ralph/<name>); default: the PRD file's name
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Where the design document goes; default: <plan.design_dir>/<name>.md
    #[arg(long, value_name = "PATH")]
    pub design: Option<PathBuf>,
    /// Write the design and the plan again even if they exist (and subagent files)
    #[arg(long)]
    pub force: bool,
    /// Also write Claude Code subagents: .claude/agents/ralph-<layer>.md and an orchestrator
    #[arg(long)]
    pub claude_agents: bool,
    #[command(flatten)]
    pub call: call::CallArgs,
    /// One JSON event per line on stdout, then the plan's summary as one JSON object
    #[arg(long)]
    pub json: bool,
}

/// The plan as accepted, and the default edges ralph added to it.
type Accepted = (PlanFile, Vec<(String, String)>);

/// Everything the phases share.
struct Planning<'a> {
    cwd: &'a Path,
    cfg: &'a crate::config::ConfigFile,
    args: &'a PlanArgs,
    name: String,
    template: Template,
    design: PathBuf,
    max_attempts: u32,
    /// Spent so far, every call.
    cost_usd: f64,
    tokens: u64,
    calls: u32,
}

pub fn cmd_plan(args: PlanArgs) -> Result<i32, CliError> {
    let cwd = paths::cwd()?;
    let cfg = settings::load_config(args.call.config.as_deref(), &cwd)?;
    relative_inside("the PRD", &args.prd)?;
    if !cwd.join(&args.prd).is_file() {
        return Err(CliError::usage(
            format!("{} is not a file", args.prd.display()),
            Some("pass the PRD's path relative to the project root".into()),
        ));
    }
    relative_inside("the plan's path (-o)", &args.output)?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => name_from(&args.prd),
    };
    if !crate::plan::valid_plan_name(&name) {
        return Err(CliError::usage(
            format!("{name:?} cannot be a plan name (it names the branch ralph/{name})"),
            Some("pass --name with letters, digits, `-` and `_`".into()),
        ));
    }
    let arch = args
        .architecture
        .clone()
        .or_else(|| cfg.plan.architecture.clone())
        .unwrap_or_else(|| "layered-4".into());
    let found = template::find(&cwd, &arch)
        .map_err(|e| CliError::preformatted(exit_codes::USAGE, e.to_string()))?;
    let Some((template, _)) = found else {
        let (message, hint) = template::unknown_template(&cwd, &arch);
        return Err(CliError::usage(message, Some(hint)));
    };
    let design = args.design.clone().unwrap_or_else(|| {
        cfg.plan
            .design_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("docs/design"))
            .join(format!("{name}.md"))
    });
    relative_inside("the design document's path", &design)?;
    if cwd.join(&args.output).exists() && !args.force {
        return Err(CliError::usage(
            format!("{} exists already", args.output.display()),
            Some("pass -o with another path, or --force to replace it".into()),
        ));
    }
    // Both skills are loaded before anything is spent: a broken project skill fails now.
    let design_skill = skills::get(&cwd, "design-solution")?;
    let stories_skill = skills::get(&cwd, "solution-to-stories")?;
    let state_dir = cwd.join(".ralph");
    paths::ensure_state_dir(&state_dir)?;
    let _lock = lock::acquire(&state_dir)?;
    let mut p = Planning {
        cwd: &cwd,
        cfg: &cfg,
        args: &args,
        name,
        template,
        design,
        max_attempts: cfg.plan.max_attempts.unwrap_or(3),
        cost_usd: 0.0,
        tokens: 0,
        calls: 0,
    };
    if let Some(code) = p.design_phase(&design_skill)? {
        return Ok(code);
    }
    let (plan, edges) = match p.stories_phase(&stories_skill)? {
        Ok(done) => done,
        Err(code) => return Ok(code),
    };
    p.summary(&plan, &edges);
    if args.claude_agents {
        p.write_claude_agents()?;
    }
    Ok(exit_codes::SUCCESS)
}

impl Planning<'_> {
    /// The design document: kept when it is there and holds (unless `--force`), else written
    /// by the agent. `Some(code)`: the command ends with it.
    fn design_phase(&mut self, skill: &Skill) -> Result<Option<i32>, CliError> {
        // Relative to the project root, where ralph runs: the agent is told the same path.
        let path = self.design.clone();
        if path.exists() && !self.args.force {
            return match skill.check_output(&path) {
                Ok(()) => {
                    eprintln!(
                        "ralph: design: {} is there and has every section; kept (--force writes it again)",
                        self.design.display()
                    );
                    Ok(None)
                }
                Err(problem) => Err(CliError::usage(
                    problem,
                    Some("complete it by hand, or pass --force to have it written again".into()),
                )),
            };
        }
        let values = BTreeMap::from([
            ("prd".to_string(), self.args.prd.display().to_string()),
            ("design_path".to_string(), self.design.display().to_string()),
            ("architecture".to_string(), self.template.describe()),
        ]);
        let check = |_: &mut Self| skill.check_output(&path);
        match self.phase("design", skill, values, check)? {
            Ok(()) => Ok(None),
            Err(code) => Ok(Some(code)),
        }
    }

    /// The plan, written by the agent and validated, with the template's default edges.
    fn stories_phase(&mut self, skill: &Skill) -> Result<Result<Accepted, i32>, CliError> {
        let values = BTreeMap::from([
            ("prd".to_string(), self.args.prd.display().to_string()),
            ("design".to_string(), self.design.display().to_string()),
            (
                "plan_path".to_string(),
                self.args.output.display().to_string(),
            ),
            ("plan_name".to_string(), self.name.clone()),
            ("architecture_name".to_string(), self.template.name.clone()),
            ("architecture".to_string(), self.template.describe()),
        ]);
        let mut accepted = None;
        let out = self.args.output.clone();
        let check = |p: &mut Self| {
            let expect = verify::Expect {
                name: &p.name,
                template: &p.template,
            };
            // The parser reads `prd`, `design` and templates relative to the project root,
            // which is where ralph runs.
            let r = verify::stories(&out, &expect);
            r.map(|done| accepted = Some(done))
        };
        match self.phase("stories", skill, values, check)? {
            Ok(()) => match accepted {
                Some(done) => Ok(Ok(done)),
                None => Err(CliError::new(
                    exit_codes::INTERNAL_ERROR,
                    "the plan was accepted but not kept",
                    None,
                )),
            },
            Err(code) => Ok(Err(code)),
        }
    }

    /// One phase: up to `max_attempts` calls, each checked by `check`, whose error goes into
    /// the next call's prompt. `Err(code)`: the command ends with it.
    fn phase(
        &mut self,
        phase: &str,
        skill: &Skill,
        mut values: BTreeMap<String, String>,
        mut check: impl FnMut(&mut Self) -> Result<(), String>,
    ) -> Result<Result<(), i32>, CliError> {
        let mut problem = String::new();
        for attempt in 1..=self.max_attempts {
            values.insert("feedback".into(), feedback(attempt, &problem));
            let prompt = skill.render(&values)?;
            eprintln!(
                "ralph: {phase}: attempt {attempt} of {} ({} skill)",
                self.max_attempts, skill.name
            );
            let called = call_once(
                self.cwd,
                Call {
                    cfg: self.cfg,
                    backend: self.args.call.backend.clone(),
                    model: self.args.call.model.clone(),
                    scope: format!("plan:{}:{phase}", self.name),
                    prompt,
                    json: self.args.json,
                },
            )?;
            self.cost_usd += called.cost_usd;
            self.tokens += called.tokens;
            self.calls += 1;
            if called.stops() {
                eprintln!("ralph: {phase}: stopped (exit {})", called.exit_code);
                return Ok(Err(called.exit_code));
            }
            match check(self) {
                Ok(()) => {
                    eprintln!("ralph: {phase}: accepted");
                    return Ok(Ok(()));
                }
                Err(p) => {
                    eprintln!("ralph: {phase}: refused: {}", first_line(&p));
                    problem = p;
                }
            }
        }
        let by_hand = if phase == "stories" {
            "fix it by hand (`ralph stories check` checks it)"
        } else {
            "complete it by hand (ralph plan then keeps it)"
        };
        eprintln!(
            "error: {phase}: what the agent wrote still does not hold after {} attempts:\n{problem}\n  \
             hint: {by_hand}, or run `ralph plan` again (plan.max_attempts sets the attempts)",
            self.max_attempts
        );
        Ok(Err(exit_codes::MAX_ITERATIONS))
    }

    /// `--claude-agents`: the subagent files; one that exists and differs is kept unless
    /// `--force`.
    fn write_claude_agents(&self) -> Result<(), CliError> {
        let files = claude_agents::files(
            self.cwd,
            self.cfg,
            &self.template,
            &self.name,
            &self.args.output,
        );
        for (rel, text) in files {
            if write_unless_edited(self.cwd, &rel, &text, self.args.force)? {
                outln!("wrote {}", rel.display());
            }
        }
        Ok(())
    }

    /// The DAG, the critical path and what planning cost.
    fn summary(&self, plan: &PlanFile, edges: &[(String, String)]) {
        let p = &plan.plan;
        let Ok(dag) = Dag::of(p) else { return };
        let depth = dag.critical_paths(|_| 1.0);
        let chain = critical_chain(&dag, &depth);
        if self.args.json {
            let stories: Vec<serde_json::Value> = dag
                .order()
                .iter()
                .map(|&i| {
                    let s = &p.stories[i];
                    serde_json::json!({"id": s.id, "layer": s.layer.as_str(), "depends_on": s.depends_on})
                })
                .collect();
            let v = serde_json::json!({
                "event": "plan.written",
                "plan": p.name,
                "file": self.args.output,
                "design": self.design,
                "architecture": self.template.name,
                "stories": stories,
                "default_edges": edges.iter().map(|(s, d)| [s, d]).collect::<Vec<_>>(),
                "critical_path": chain,
                "calls": self.calls,
                "cost_usd": self.cost_usd,
                "tokens": self.tokens,
            });
            outln!("{v}");
            return;
        }
        outln!(
            "{}: plan {:?}, {} stories, architecture {} (design: {})",
            self.args.output.display(),
            p.name,
            p.stories.len(),
            self.template.name,
            self.design.display()
        );
        let width = p.stories.iter().map(|s| s.id.len()).max().unwrap_or(2);
        let lw = p
            .stories
            .iter()
            .map(|s| s.layer.as_str().len())
            .max()
            .unwrap_or(5);
        for &i in dag.order() {
            let s = &p.stories[i];
            let deps = if s.depends_on.is_empty() {
                "-".to_string()
            } else {
                s.depends_on.join(", ")
            };
            let added = edges.iter().any(|(x, _)| *x == s.id);
            outln!(
                "  {:<width$}  {:<lw$}  after: {deps}{}",
                s.id,
                s.layer.as_str(),
                if added {
                    " (the template's default)"
                } else {
                    ""
                }
            );
        }
        outln!(
            "critical path: {} ({} stories)",
            chain.join(" → "),
            chain.len()
        );
        outln!(
            "planning cost: ${:.4}, {} tokens, {} agent call{}",
            self.cost_usd,
            self.tokens,
            self.calls,
            if self.calls == 1 { "" } else { "s" }
        );
        outln!(
            "next: read {}, edit it as you like, then `ralph stories run`",
            self.args.output.display()
        );
    }
}

/// Write `text` to `root/rel` (its directory made), unless a file with other text is there
/// and not `force`: a file the user edited is kept, and said so. `true`: written.
pub(crate) fn write_unless_edited(
    root: &Path,
    rel: &Path,
    text: &str,
    force: bool,
) -> Result<bool, CliError> {
    let path = root.join(rel);
    let fail = |p: &Path, e: std::io::Error| {
        CliError::new(
            exit_codes::INTERNAL_ERROR,
            format!("cannot write {}: {e}", p.display()),
            Some("check the directory's permissions and free space".into()),
        )
    };
    let same = std::fs::read_to_string(&path).is_ok_and(|t| t == text);
    if path.exists() && !same && !force {
        eprintln!(
            "ralph: {} exists and differs; kept (--force replaces it)",
            rel.display()
        );
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    }
    std::fs::write(&path, text).map_err(|e| fail(&path, e))?;
    Ok(true)
}

/// What the agent is told of the attempt before.
fn feedback(attempt: u32, problem: &str) -> String {
    if attempt == 1 || problem.is_empty() {
        return String::new();
    }
    format!(
        "Your previous attempt was refused by ralph's check:\n\n{problem}\n\nFix exactly this \
         and write the file again; keep what was right."
    )
}

/// The longest chain of stories, from a root.
fn critical_chain(dag: &Dag, depth: &[f64]) -> Vec<String> {
    let mut at = (0..dag.len())
        .filter(|&i| dag.deps(i).is_empty())
        .max_by(|&a, &b| depth[a].total_cmp(&depth[b]));
    let mut chain = Vec::new();
    while let Some(i) = at {
        chain.push(dag.id(i).to_string());
        at = dag
            .dependents(i)
            .iter()
            .copied()
            .max_by(|&a, &b| depth[a].total_cmp(&depth[b]));
    }
    chain
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The PRD's file name as a plan name: `docs/prd/Provenance Engine.md` → `provenance-engine`.
fn name_from(prd: &Path) -> String {
    let stem = prd
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut out = String::new();
    for c in stem.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "plan".into()
    } else {
        out
    }
}

fn relative_inside(what: &str, p: &Path) -> Result<(), CliError> {
    let ok = p.components().all(|c| {
        matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    });
    if ok && !p.as_os_str().is_empty() {
        return Ok(());
    }
    Err(CliError::usage(
        format!("{what} {} is not inside the project", p.display()),
        Some("pass a path relative to the project root, without `..`".into()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prd_file_name_becomes_a_branch_safe_plan_name() {
        assert_eq!(
            name_from(Path::new("docs/Provenance Engine.md")),
            "provenance-engine"
        );
        assert_eq!(name_from(Path::new("PRD.md")), "prd");
        assert_eq!(name_from(Path::new("...md")), "plan");
    }
}
