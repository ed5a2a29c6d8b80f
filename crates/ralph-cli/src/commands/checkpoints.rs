//! `ralph checkpoints`: the ghost commits ralph keeps under `refs/ralph/checkpoints/<run>/…`
//! (iteration checkpoints are named `NNNN`, `0000` = before the first iteration; a rollback's
//! are `rollback-<UTC yyyymmdd-hhmmss>`), and the helpers `ralph rollback` shares to find a
//! run's checkpoints.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use ralph_git::refs::{self, CHECKPOINTS};
use ralph_git::{Git, GitError, RunCheckpoint};
use ralph_types::exit_codes;
use serde_json::{json, Value};

use super::open_store;
use crate::cli::CheckpointsArgs;
use crate::error::CliError;
use crate::paths;

/// One checkpoint of a run, as `ralph checkpoints` shows it.
#[derive(Debug, Clone)]
struct Entry {
    checkpoint: RunCheckpoint,
    /// Files changed, insertions, deletions against the previous checkpoint.
    stat: Option<(u32, u64, u64)>,
}

pub fn cmd_checkpoints(args: CheckpointsArgs) -> Result<i32, CliError> {
    let root = paths::cwd()?;
    let git = discover(&root, "list checkpoints")?;
    let run = match &args.run {
        Some(id) => {
            check_run_id(id)?;
            id.clone()
        }
        None => match default_run(&git, &root)? {
            Some(run) => run,
            None => {
                if args.json {
                    outln!(
                        "{}",
                        json!({"version": 1, "run_id": null, "checkpoints": []})
                    );
                } else {
                    eprintln!(
                        "ralph: no checkpoints in this repository yet; `ralph run` takes one \
                         before and after every iteration"
                    );
                }
                return Ok(exit_codes::SUCCESS);
            }
        },
    };
    let entries = entries(&git, &root, &run)?;
    if entries.is_empty() {
        let others = runs_with_checkpoints(&git)?;
        if args.run.is_some() && !others.contains(&run) && !run_is_known(&root, &run)? {
            return Err(CliError::usage(
                format!("no run with id {run}"),
                runs_hint(&others),
            ));
        }
        if args.json {
            outln!(
                "{}",
                json!({"version": 1, "run_id": run, "checkpoints": []})
            );
        } else {
            eprintln!("ralph: run {run} has no checkpoints");
            if let Some(hint) = runs_hint(&others) {
                eprintln!("  hint: {hint}");
            }
        }
        return Ok(exit_codes::SUCCESS);
    }
    if args.json {
        let list: Vec<Value> = entries.iter().map(entry_json).collect();
        outln!(
            "{}",
            json!({"version": 1, "run_id": run, "checkpoints": list})
        );
        return Ok(exit_codes::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "run {run} · {} checkpoint{}",
        entries.len(),
        if entries.len() == 1 { "" } else { "s" }
    );
    let width = entries
        .iter()
        .map(|e| label(e).len())
        .max()
        .unwrap_or(0)
        .max("CHECKPOINT".len());
    let _ = writeln!(
        out,
        "{:<width$}  {:<7}  {:<19}  {:>5}  {:>7}  {:>7}",
        "CHECKPOINT", "COMMIT", "DATE (UTC)", "FILES", "+", "-"
    );
    for e in &entries {
        let (files, ins, del) = match e.stat {
            Some((f, i, d)) => (f.to_string(), format!("+{i}"), format!("-{d}")),
            None => ("-".into(), String::new(), String::new()),
        };
        let note = if e.checkpoint.iteration.is_none() {
            format!("  {}", note(&e.checkpoint.commit.subject))
        } else {
            String::new()
        };
        let line = format!(
            "{:<width$}  {:<7}  {:<19}  {files:>5}  {ins:>7}  {del:>7}{note}",
            label(e),
            short(&e.checkpoint.commit.commit),
            date(e.checkpoint.commit.time, "%Y-%m-%d %H:%M:%S"),
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(
        out,
        "roll back with `ralph rollback N` (N = iteration; 0 = before the first iteration)"
    );
    Ok(exit_codes::SUCCESS)
}

pub(super) fn discover(root: &Path, action: &str) -> Result<Git, CliError> {
    match Git::discover(root) {
        Ok(Some(git)) => Ok(git),
        Ok(None) => Err(CliError::usage(
            format!("not a git repository: cannot {action}"),
            Some(
                "ralph keeps checkpoints as git commits under refs/ralph/; they exist only \
                 for runs inside a git repository"
                    .to_string(),
            ),
        )),
        Err(e) => Err(git_failed("inspect the repository", e)),
    }
}

pub(super) fn git_failed(action: &str, e: GitError) -> CliError {
    CliError::new(
        exit_codes::INTERNAL_ERROR,
        format!("failed to {action}: {e}"),
        None,
    )
}

/// Run ids become ref path components.
pub(super) fn check_run_id(id: &str) -> Result<(), CliError> {
    if refs::is_valid_run_id(id) {
        Ok(())
    } else {
        Err(CliError::usage(
            format!("{id:?} is not a run id"),
            Some("`ralph status` shows the latest run id".to_string()),
        ))
    }
}

pub(super) fn run_is_known(root: &Path, run: &str) -> Result<bool, CliError> {
    Ok(match open_store(root)? {
        Some(store) => store.run(run)?.is_some(),
        None => false,
    })
}

/// The latest run in the state database; without one (`.ralph/` deleted), the run with the
/// newest checkpoint.
pub(super) fn default_run(git: &Git, root: &Path) -> Result<Option<String>, CliError> {
    if let Some(store) = open_store(root)? {
        if let Some(run) = store.latest_run()? {
            return Ok(Some(run.id));
        }
    }
    let all = git
        .list_commits(CHECKPOINTS)
        .map_err(|e| git_failed("list checkpoints", e))?;
    Ok(all
        .iter()
        .filter_map(|c| refs::parse_checkpoint_ref(&c.refname).map(|(run, _)| (c.time, run)))
        .max()
        .map(|(_, run)| run.to_owned()))
}

pub(super) fn runs_with_checkpoints(git: &Git) -> Result<Vec<String>, CliError> {
    let all = git
        .list_commits(CHECKPOINTS)
        .map_err(|e| git_failed("list checkpoints", e))?;
    let mut runs: Vec<String> = all
        .iter()
        .filter_map(|c| refs::parse_checkpoint_ref(&c.refname).map(|(run, _)| run.to_owned()))
        .collect();
    runs.sort();
    runs.dedup();
    Ok(runs)
}

pub(super) fn runs_hint(runs: &[String]) -> Option<String> {
    if runs.is_empty() {
        None
    } else {
        Some(format!(
            "runs with checkpoints: {}; pick one with --run",
            runs.join(", ")
        ))
    }
}

/// A run's checkpoints, oldest first, without diff stats.
pub(super) fn list(git: &Git, run: &str) -> Result<Vec<RunCheckpoint>, CliError> {
    git.run_checkpoints(run)
        .map_err(|e| git_failed("list checkpoints", e))
}

/// [`list`] with each checkpoint's changes against the previous one: from the state database
/// where the iteration is recorded there, else computed from the trees.
fn entries(git: &Git, root: &Path, run: &str) -> Result<Vec<Entry>, CliError> {
    let mut entries: Vec<Entry> = list(git, run)?
        .into_iter()
        .map(|checkpoint| Entry {
            checkpoint,
            stat: None,
        })
        .collect();
    let recorded: Vec<_> = match open_store(root)? {
        Some(store) => store.iterations(run)?,
        None => Vec::new(),
    };
    let mut previous: Option<String> = None;
    for e in &mut entries {
        let from_store = recorded.iter().find(|it| {
            it.checkpoint.as_deref() == Some(e.checkpoint.commit.refname.as_str())
                && Some(it.n) == e.checkpoint.iteration
        });
        e.stat = match from_store {
            Some(it) => match (it.files_changed, it.insertions, it.deletions) {
                (Some(f), Some(i), Some(d)) => Some((f, i, d)),
                _ => None,
            },
            None => None,
        };
        if e.stat.is_none() {
            if let Some(prev) = &previous {
                e.stat = git
                    .diff_stat(prev, &e.checkpoint.commit.tree)
                    .ok()
                    .map(|s| (s.files_changed, s.insertions, s.deletions));
            }
        }
        previous = Some(e.checkpoint.commit.tree.clone());
    }
    Ok(entries)
}

fn label(e: &Entry) -> String {
    match e.checkpoint.iteration {
        Some(n) => n.to_string(),
        None => e.checkpoint.name.clone(),
    }
}

/// "before rollback to iteration 1" from the commit subject.
fn note(subject: &str) -> String {
    let text = subject
        .strip_prefix("ralph checkpoint: ")
        .unwrap_or(subject);
    format!("({text})")
}

pub(super) fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

fn date(time: i64, format: &str) -> String {
    DateTime::<Utc>::from_timestamp(time, 0)
        .map(|t| t.format(format).to_string())
        .unwrap_or_default()
}

fn entry_json(e: &Entry) -> Value {
    json!({
        "name": e.checkpoint.name,
        "kind": if e.checkpoint.iteration.is_some() { "iteration" } else { "rollback" },
        "iteration": e.checkpoint.iteration,
        "ref": e.checkpoint.commit.refname,
        "commit": e.checkpoint.commit.commit,
        "tree": e.checkpoint.commit.tree,
        "date": date(e.checkpoint.commit.time, "%Y-%m-%dT%H:%M:%SZ"),
        "subject": e.checkpoint.commit.subject,
        "files_changed": e.stat.map(|s| s.0),
        "insertions": e.stat.map(|s| s.1),
        "deletions": e.stat.map(|s| s.2),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_checked() {
        assert!(check_run_id("20261121-101500-ab12").is_ok());
        for bad in ["", "-x", "a/b", "..", "a..b", "a b", ".hidden"] {
            assert!(check_run_id(bad).is_err(), "{bad}");
        }
    }
}
