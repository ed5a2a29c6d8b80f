//! `ralph audit verify`: check the hash chain of `.ralph/audit.jsonl`, and that every audit
//! head recorded in a checkpoint commit (`ralph-audit-head: <hex>` in the messages of the
//! commits under `refs/ralph/checkpoints`) is still in the log: the chain alone cannot tell that
//! records were removed from its end.
//!
//! Exit codes: 0 the log checks out (or there is none and no checkpoint anchors one); 6
//! ([`exit_codes::SAFETY`], like `ralph run`'s safety stop) the log was tampered with, damaged,
//! truncated or is missing while checkpoints anchor it; 1 the log could not be read.

use std::collections::BTreeMap;
use std::path::Path;

use ralph_git::refs;
use ralph_store::audit::{self, VerifyReport};
use ralph_types::exit_codes;

use crate::cli::{AuditArgs, AuditCmd};
use crate::error::CliError;
use crate::paths;

pub fn cmd_audit(args: AuditArgs) -> Result<i32, CliError> {
    match args.cmd {
        AuditCmd::Verify { json } => cmd_verify(json),
    }
}

/// Audit heads recorded in checkpoint commits: hash → the refs whose commit carries it.
type Anchors = BTreeMap<String, Vec<String>>;

fn cmd_verify(json: bool) -> Result<i32, CliError> {
    let cwd = paths::cwd()?;
    let path = cwd.join(".ralph").join(audit::AUDIT_FILE);
    let anchors = match checkpoint_anchors(&cwd) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ralph: checkpoint anchors not checked: {e}");
            Anchors::new()
        }
    };
    let shown = Path::new(".ralph").join(audit::AUDIT_FILE);
    if !path.exists() {
        if anchors.is_empty() {
            if json {
                outln!(
                    "{}",
                    serde_json::json!({
                        "version": 1, "status": "none", "records": 0, "head": null, "anchors": 0,
                    })
                );
            } else {
                outln!("no audit log yet ({} does not exist)", shown.display());
            }
            return Ok(exit_codes::SUCCESS);
        }
        let missing: Vec<String> = anchors.keys().cloned().collect();
        let report = VerifyReport::AnchorMissing {
            records: 0,
            head: None,
            missing,
        };
        return finish(&report, &anchors, json, &shown, false);
    }
    let report = audit::verify_with_anchors(&path, anchors.keys()).map_err(|e| {
        CliError::new(
            exit_codes::INTERNAL_ERROR,
            e.to_string(),
            Some("check that .ralph/ is readable".to_string()),
        )
    })?;
    finish(&report, &anchors, json, &shown, true)
}

fn finish(
    report: &VerifyReport,
    anchors: &Anchors,
    json: bool,
    shown: &Path,
    shown_exists: bool,
) -> Result<i32, CliError> {
    let refs_of = |hash: &str| anchors.get(hash).cloned().unwrap_or_default();
    if json {
        let v = match report {
            VerifyReport::Ok { records, head } => serde_json::json!({
                "version": 1, "status": "ok", "records": records, "head": head,
                "anchors": anchors.len(),
            }),
            VerifyReport::Broken { line, seq, reason } => serde_json::json!({
                "version": 1, "status": "broken", "line": line, "seq": seq, "reason": reason,
                "anchors": anchors.len(),
            }),
            VerifyReport::AnchorMissing {
                records,
                head,
                missing,
            } => serde_json::json!({
                "version": 1, "status": "anchor_missing", "records": records, "head": head,
                "anchors": anchors.len(),
                "missing": missing.iter().map(|h| serde_json::json!({
                    "hash": h, "refs": refs_of(h),
                })).collect::<Vec<_>>(),
            }),
        };
        outln!("{v}");
        return Ok(if report.is_ok() {
            exit_codes::SUCCESS
        } else {
            exit_codes::SAFETY
        });
    }
    match report {
        VerifyReport::Ok { records, head } => {
            let head = head.as_deref().unwrap_or("none");
            let checked = match anchors.len() {
                0 => String::new(),
                1 => "; 1 checkpoint anchor found".to_string(),
                n => format!("; {n} checkpoint anchors found"),
            };
            outln!("audit log OK: {records} records, head {head}{checked}");
            Ok(exit_codes::SUCCESS)
        }
        VerifyReport::Broken { line, seq, reason } => {
            let seq = seq
                .map(|s| format!(" (record seq {s})"))
                .unwrap_or_default();
            Err(CliError::new(
                exit_codes::SAFETY,
                format!("audit log BROKEN at line {line}{seq}: {reason}"),
                Some(format!(
                    "{} was changed after ralph wrote it (or a crash tore its last line, which \
                     the next `ralph run` repairs); the chain holds up to line {}. Keep a copy \
                     for inspection; to start a new chain, move the file aside",
                    shown.display(),
                    line.saturating_sub(1)
                )),
            ))
        }
        VerifyReport::AnchorMissing {
            records, missing, ..
        } => {
            let first = missing.first().map(String::as_str).unwrap_or_default();
            let refs = refs_of(first);
            let place = match refs.first() {
                Some(r) if refs.len() > 1 => format!("{r} and {} more", refs.len() - 1),
                Some(r) => r.clone(),
                None => "a checkpoint".to_string(),
            };
            let what = if !shown_exists {
                format!("audit log MISSING: {} does not exist", shown.display())
            } else if *records == 0 {
                format!("audit log BROKEN: {} is empty", shown.display())
            } else {
                format!(
                    "audit log BROKEN after line {records}: the chain of {records} records is \
                     intact"
                )
            };
            let more = match missing.len() {
                1 => String::new(),
                n => format!(" (and {} other anchored heads)", n - 1),
            };
            Err(CliError::new(
                exit_codes::SAFETY,
                format!(
                    "{what}, but the record {first} anchored by {place} is not in it{more}: \
                     records were removed from the end or the log was replaced"
                ),
                Some(
                    "checkpoint commits record the log's head (`ralph-audit-head:` in `git log \
                     refs/ralph/checkpoints/...`); restore the log from a backup that has those \
                     records"
                        .to_string(),
                ),
            ))
        }
    }
}

/// Audit heads in the messages of the checkpoint commits; empty outside a git repository.
fn checkpoint_anchors(cwd: &Path) -> Result<Anchors, String> {
    let mut anchors = Anchors::new();
    let git = match ralph_git::Git::discover(cwd) {
        Ok(Some(git)) => git,
        Ok(None) => return Ok(anchors),
        Err(e) => return Err(e.to_string()),
    };
    let refs = git
        .list_refs(refs::CHECKPOINTS)
        .map_err(|e| e.to_string())?;
    let mut refs_by_commit: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (refname, commit) in refs {
        refs_by_commit.entry(commit).or_default().push(refname);
    }
    let commits: Vec<&str> = refs_by_commit.keys().map(String::as_str).collect();
    // Through ralph-git: its git runs with the repository's hooks and filters switched off.
    let messages = git.commit_messages(&commits).map_err(|e| e.to_string())?;
    for (commit, message) in messages {
        let refnames = refs_by_commit.get(&commit).cloned().unwrap_or_default();
        for head in audit::parse_anchors(&message) {
            anchors
                .entry(head)
                .or_default()
                .extend(refnames.iter().cloned());
        }
    }
    for refnames in anchors.values_mut() {
        refnames.sort();
        refnames.dedup();
    }
    Ok(anchors)
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    #[test]
    fn anchors_are_read_from_checkpoint_commit_messages() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert!(checkpoint_anchors(root).unwrap().is_empty());
        git(root, &["init", "-q"]);
        assert!(checkpoint_anchors(root).unwrap().is_empty());
        git(root, &["commit", "-q", "--allow-empty", "-m", "init"]);
        let (h1, h2) = ("ab".repeat(32), "cd".repeat(32));
        let mut commits = Vec::new();
        for (n, msg) in [
            format!("ralph: checkpoint 1\n\n{}\n", audit::anchor_line(&h1)),
            format!(
                "ralph: checkpoint 2\n\nfiles: 3\n{}",
                audit::anchor_line(&h2)
            ),
            "ralph: checkpoint from before the audit log\n".to_string(),
        ]
        .iter()
        .enumerate()
        {
            let c = git(
                root,
                &["commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", msg],
            );
            let refname = refs::named_checkpoint_ref("run-1", &(n + 1).to_string());
            git(root, &["update-ref", &refname, &c]);
            commits.push(c);
        }
        // A second ref to the first commit.
        git(
            root,
            &["update-ref", "refs/ralph/checkpoints/run-2/1", &commits[0]],
        );
        // Refs outside the checkpoint namespace are not anchors.
        let other = git(
            root,
            &[
                "commit-tree",
                "HEAD^{tree}",
                "-m",
                &audit::anchor_line(&"ef".repeat(32)),
            ],
        );
        git(root, &["update-ref", "refs/heads/other", &other]);

        let sub = root.join("sub");
        std::fs::create_dir(&sub).unwrap();
        let anchors = checkpoint_anchors(&sub).unwrap();
        assert_eq!(anchors.len(), 2, "{anchors:?}");
        assert_eq!(
            anchors[&h1],
            vec![
                "refs/ralph/checkpoints/run-1/1".to_string(),
                "refs/ralph/checkpoints/run-2/1".to_string()
            ]
        );
        assert_eq!(
            anchors[&h2],
            vec!["refs/ralph/checkpoints/run-1/2".to_string()]
        );
    }
}
