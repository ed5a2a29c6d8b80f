//! `ralph rollback`: putting the working tree back to one of a run's checkpoints.
//!
//! * A rollback first checkpoints the current state as `rollback-<UTC yyyymmdd-hhmmss>` in the
//!   same run, so every rollback can itself be rolled back (`ralph rollback rollback-…`).
//! * Only the working tree changes: the user's HEAD, branch, index and stash stay as they are,
//!   and ignored files, untracked files too large to checkpoint and `.ralph/` are never touched
//!   (see `ralph_git::Git::restore`).
//!
//! The algorithm is [`ralph_git::Git::rollback_to`]; this command finds the checkpoint the user
//! means, holds the project lock while files change, and says what happened and how to undo it.

use std::io::Write;
use std::path::Path;

use chrono::Utc;
use ralph_git::refs::{self, CHECKPOINTS};
use ralph_git::{Git, RollbackError, RollbackOptions, RollbackOutcome, RunCheckpoint};
use ralph_types::exit_codes;
use serde_json::{json, Value};

use super::checkpoints::{
    check_run_id, default_run, discover, git_failed, list, run_is_known, runs_hint,
    runs_with_checkpoints, short,
};
use crate::cli::RollbackArgs;
use crate::error::CliError;
use crate::{lock, paths};

/// What `rollback` did (or, on a dry run, would do), and the command that undoes it.
#[derive(Debug, Clone)]
pub struct Rolled {
    pub outcome: RollbackOutcome,
    pub undo_command: Option<String>,
}

pub fn cmd_rollback(args: RollbackArgs) -> Result<i32, CliError> {
    let root = paths::cwd()?;
    let run = match &args.run {
        Some(id) => {
            check_run_id(id)?;
            id.clone()
        }
        None => {
            let git = discover(&root, "roll back")?;
            run_for_target(&git, &root, &args.target)?
        }
    };
    let outcome = rollback(&root, &run, &args.target, args.dry_run)?;
    let mut text = Vec::new();
    if args.json {
        let _ = writeln!(text, "{}", outcome_json(&outcome));
    } else {
        print_outcome(&outcome, &mut text);
    }
    // File names come from the agent's work: one may be named like a secret.
    let redactor = ralph_core::redact::Redactor::new(std::env::vars());
    let _ = std::io::stdout().write_all(&redactor.redact_bytes(&text));
    Ok(exit_codes::SUCCESS)
}

/// Restores the working tree of the repository at `root` to checkpoint `target` of `run`
/// (an iteration number, a checkpoint name such as `rollback-20261121-101500`, or a full
/// `refs/ralph/checkpoints/…` ref). Refused while a run holds the project lock. Unless
/// `dry_run`, the current state is checkpointed first as `rollback-<UTC timestamp>` in the
/// same run, which the outcome's undo command restores.
pub fn rollback(root: &Path, run: &str, target: &str, dry_run: bool) -> Result<Rolled, CliError> {
    check_run_id(run)?;
    let git = discover(root, "roll back")?;
    let state_dir = root.join(".ralph");
    if let Some(pid) = lock::holder(&state_dir) {
        return Err(CliError::usage(
            format!(
                "a run is active in this project (ralph PID {pid}); rolling back now would \
                 fight the agent over the files"
            ),
            Some("wait for it to finish, or stop it with `ralph stop`, then roll back".into()),
        ));
    }
    let checkpoints = list(&git, run)?;
    let Some(checkpoint) = find(&checkpoints, run, target)? else {
        return Err(unknown_target(&git, root, run, target, &checkpoints)?);
    };
    // The scratch space for temporary indexes lives in `.ralph/`, self-ignoring as always.
    paths::ensure_state_dir(&state_dir)?;
    // Hold the project lock while files change, so no run starts half-way through.
    let _lock = if dry_run {
        None
    } else {
        Some(lock::acquire(&state_dir)?)
    };
    let options = RollbackOptions {
        scratch_dir: &state_dir,
        dry_run,
        now: Utc::now().timestamp(),
    };
    let outcome = git.rollback_to(checkpoint, &options).map_err(|e| {
        let hint = match &e {
            RollbackError::Restore { saved, .. } => {
                let name = refs::parse_checkpoint_ref(&saved.refname).map_or("", |(_, n)| n);
                Some(format!(
                    "the state before the rollback is saved as {}; `{}` puts it back",
                    saved.refname,
                    undo_command(&git, root, run, name)
                ))
            }
            _ => None,
        };
        CliError::new(exit_codes::INTERNAL_ERROR, e.to_string(), hint)
    })?;
    let undo_command = outcome
        .undo_name()
        .map(|name| undo_command(&git, root, run, name));
    Ok(Rolled {
        outcome,
        undo_command,
    })
}

/// The run a rollback without `--run` applies to: the run a full ref names; else the latest
/// run, unless the target is a checkpoint name only another run has (the undo command of a
/// rollback in an older run, typed after a newer run started).
fn run_for_target(git: &Git, root: &Path, target: &str) -> Result<String, CliError> {
    if let Some(rest) = target.strip_prefix("refs/") {
        return match refs::parse_checkpoint_ref(target) {
            Some((run, _)) => Ok(run.to_owned()),
            None => Err(CliError::usage(
                format!("refs/{rest} is not a ralph checkpoint"),
                Some(format!(
                    "checkpoint refs look like {CHECKPOINTS}<run>/<NNNN>; `ralph checkpoints` \
                     lists them"
                )),
            )),
        };
    }
    let latest = default_run(git, root)?;
    let is_name = target.parse::<u32>().is_err();
    if is_name {
        let in_latest = match &latest {
            Some(run) => list(git, run)?.iter().any(|e| e.name == target),
            None => false,
        };
        if !in_latest {
            let all = git
                .list_commits(CHECKPOINTS)
                .map_err(|e| git_failed("list checkpoints", e))?;
            let mut runs: Vec<&str> = all
                .iter()
                .filter_map(|c| refs::parse_checkpoint_ref(&c.refname))
                .filter(|(_, name)| *name == target)
                .map(|(run, _)| run)
                .collect();
            runs.dedup();
            match runs.as_slice() {
                [run] => return Ok((*run).to_owned()),
                [] => {}
                several => {
                    return Err(CliError::usage(
                        format!("several runs have a checkpoint named {target}"),
                        Some(format!("pick one with --run ({})", several.join(", "))),
                    ))
                }
            }
        }
    }
    latest.ok_or_else(|| {
        CliError::usage(
            "no checkpoints in this repository yet",
            Some("`ralph run` takes one before and after every iteration".to_string()),
        )
    })
}

/// The checkpoint `target` names in `entries`. Iteration numbers match numerically (`1`,
/// `0001`); names and full refs exactly.
fn find<'a>(
    entries: &'a [RunCheckpoint],
    run: &str,
    target: &str,
) -> Result<Option<&'a RunCheckpoint>, CliError> {
    if target.is_empty() || target.starts_with('-') {
        return Err(CliError::usage(
            format!("{target:?} is not a checkpoint"),
            Some("give an iteration number or a name from `ralph checkpoints`".to_string()),
        ));
    }
    if target.starts_with("refs/") {
        if let Some((ref_run, _)) = refs::parse_checkpoint_ref(target) {
            if ref_run != run {
                return Err(CliError::usage(
                    format!("{target} belongs to run {ref_run}, not {run}"),
                    Some(format!("pass --run {ref_run}, or leave --run out")),
                ));
            }
        }
        return Ok(entries.iter().find(|e| e.commit.refname == target));
    }
    if target.bytes().all(|b| b.is_ascii_digit()) {
        let Ok(n) = target.parse::<u32>() else {
            return Ok(None);
        };
        return Ok(entries.iter().find(|e| e.iteration == Some(n)));
    }
    Ok(entries.iter().find(|e| e.name == target))
}

fn unknown_target(
    git: &Git,
    root: &Path,
    run: &str,
    target: &str,
    entries: &[RunCheckpoint],
) -> Result<CliError, CliError> {
    if entries.is_empty() {
        let others = runs_with_checkpoints(git)?;
        let known = others.iter().any(|r| r == run) || run_is_known(root, run)?;
        let message = if known {
            format!("run {run} has no checkpoints")
        } else {
            format!("no run with id {run}")
        };
        return Ok(CliError::usage(message, runs_hint(&others)));
    }
    let what = match target.parse::<u32>() {
        Ok(n) => format!("run {run} has no checkpoint for iteration {n}"),
        Err(_) => format!("run {run} has no checkpoint named {target}"),
    };
    let iterations: Vec<String> = entries
        .iter()
        .filter_map(|e| e.iteration.map(|n| n.to_string()))
        .collect();
    let names: Vec<&str> = entries
        .iter()
        .filter(|e| e.iteration.is_none())
        .map(|e| e.name.as_str())
        .collect();
    let mut available = String::new();
    if !iterations.is_empty() {
        available.push_str(&format!("iterations {}", iterations.join(", ")));
    }
    if !names.is_empty() {
        if !available.is_empty() {
            available.push_str("; ");
        }
        available.push_str(&names.join(", "));
    }
    Ok(CliError::usage(
        what,
        Some(format!(
            "available: {available} (`ralph checkpoints` lists them)"
        )),
    ))
}

/// `ralph rollback <name>`, with `--run` only when the short form would find another run's
/// checkpoint (two runs with a rollback in the same second).
fn undo_command(git: &Git, root: &Path, run: &str, name: &str) -> String {
    match run_for_target(git, root, name) {
        Ok(found) if found == run => format!("ralph rollback {name}"),
        _ => format!("ralph rollback --run {run} {name}"),
    }
}

fn outcome_json(rolled: &Rolled) -> Value {
    let o = &rolled.outcome;
    let target = &o.target;
    json!({
        "version": 1,
        "run_id": target.run_id,
        "dry_run": o.dry_run,
        "target": {
            "ref": target.commit.refname,
            "commit": target.commit.commit,
            "iteration": target.iteration,
            "label": target.title(),
        },
        "saved": o.saved.as_ref().map(|saved| json!({
            "ref": saved.refname,
            "commit": saved.commit,
        })),
        "undo": rolled.undo_command,
        "written": o.report.written,
        "deleted": o.report.deleted,
        "skipped": o.report.skipped,
        "skipped_large": o.saved.as_ref().map(|s| s.skipped_large.as_slice()).unwrap_or_default(),
    })
}

fn print_outcome(rolled: &Rolled, out: &mut Vec<u8>) {
    let o = &rolled.outcome;
    let r = &o.report;
    let what = format!(
        "{} of run {} ({})",
        o.target.title(),
        o.target.run_id,
        short(&o.target.commit.commit)
    );
    if r.is_empty() {
        let _ = writeln!(
            out,
            "the working tree already matches {what}; nothing to {}",
            if o.dry_run { "roll back" } else { "undo" }
        );
    } else if o.dry_run {
        let _ = writeln!(
            out,
            "rolling back to {what} would write {} and delete {} (dry run: nothing was changed)",
            count(r.written.len()),
            count(r.deleted.len())
        );
    } else {
        let _ = writeln!(out, "rolled back to {what}");
    }
    let (write, delete) = if o.dry_run {
        ("would write", "would delete")
    } else {
        ("wrote", "deleted")
    };
    let width = write.len().max(delete.len()).max("skipped".len());
    // Quoted when odd: a newline in a name must not split it over two lines.
    let show = ralph_git::display_path;
    for path in &r.written {
        let _ = writeln!(out, "  {write:<width$}  {}", show(path));
    }
    for path in &r.deleted {
        let _ = writeln!(out, "  {delete:<width$}  {}", show(path));
    }
    for path in &r.skipped {
        let _ = writeln!(out, "  {:<width$}  {}", "skipped", show(path));
    }
    if !r.skipped.is_empty() {
        let _ = writeln!(
            out,
            "skipped paths were left alone: a nested repository, .ralph/, or an ignored or \
             uncaptured file in the way"
        );
    }
    if !o.dry_run && !r.is_empty() {
        let _ = writeln!(
            out,
            "wrote {}, deleted {}; HEAD, branch, index and stash are unchanged",
            count(r.written.len()),
            count(r.deleted.len())
        );
    }
    let skipped_large = o.saved.as_ref().map(|s| s.skipped_large.as_slice());
    if let Some(large) = skipped_large.filter(|l| !l.is_empty()) {
        let _ = writeln!(
            out,
            "not in the saved state (untracked and too large; left in place): {}",
            large.join(", ")
        );
    }
    if let (Some(saved), Some(undo)) = (&o.saved, &rolled.undo_command) {
        let _ = writeln!(out, "the previous state is saved as {}", saved.refname);
        let _ = writeln!(out, "undo: {undo}");
    }
}

fn count(n: usize) -> String {
    format!("{n} file{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ralph_git::RefCommit;

    fn entry(name: &str, time: i64) -> RunCheckpoint {
        RunCheckpoint {
            run_id: "r".to_owned(),
            name: name.to_owned(),
            iteration: name.parse().ok(),
            commit: RefCommit {
                refname: refs::named_checkpoint_ref("r", name),
                commit: "c".repeat(40),
                tree: "t".repeat(40),
                time,
                subject: String::new(),
            },
        }
    }

    #[test]
    fn targets_match_numbers_names_and_refs() {
        let entries = vec![
            entry("0000", 1),
            entry("0001", 1),
            entry("rollback-20261121-101500", 2),
        ];
        let name = |t: &str| find(&entries, "r", t).unwrap().map(|e| e.name.clone());
        assert_eq!(name("0").as_deref(), Some("0000"));
        assert_eq!(name("1").as_deref(), Some("0001"));
        assert_eq!(name("0001").as_deref(), Some("0001"));
        assert_eq!(name("2"), None);
        assert_eq!(name("99999999999999999999"), None);
        assert_eq!(
            name("rollback-20261121-101500").as_deref(),
            Some("rollback-20261121-101500")
        );
        assert_eq!(
            name("refs/ralph/checkpoints/r/0001").as_deref(),
            Some("0001")
        );
        assert!(find(&entries, "r", "refs/ralph/checkpoints/other/0001").is_err());
        assert!(find(&entries, "r", "--all").is_err());
    }
}
