//! Checks outside a story's loop: `pre-merge` gates and the stories' `auto` criteria on a
//! candidate, `pre-story` gates in a fresh worktree. Each runs `sh -c` in its own process group
//! under the guardian, in the gates' sandbox, with a timeout, its output in a log file.
//!
//! Results are cached by (tree, name, command hash) in the state database: the same tree is
//! never checked twice by the same command (STORIES.md rule 4), across candidates, batches and
//! crashes.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use ralph_core::process::{self, Deadlines, EndReason, Spec};
use ralph_core::sandbox::{CallCommand, CallPlace, Who};
use ralph_core::{Cancel, Handles, Settings};
use ralph_store::{GateResult, Write};

/// The tag naming one check call's sandbox temp dir (which the sandbox empties and creates):
/// unique to the call, since the same check on the same tree can run twice at once (two ralph
/// processes on copies of one repository; CI saw two tests with the same plan collide, EEXIST).
fn sandbox_tag(tree: &str, check: &str) -> String {
    format!(
        "check-{}-{}-{}-{}",
        std::process::id(),
        NEXT_CALL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        &tree[..12.min(tree.len())],
        check.replace('/', "-")
    )
}

/// Numbers the checks of this process (their sandbox temp dirs).
static NEXT_CALL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One check to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// A gate's name, or `<story>/<criterion>` for a criterion.
    pub name: String,
    pub run: String,
    pub timeout: Duration,
}

/// What a check found.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub name: String,
    pub passed: bool,
    pub exit_code: Option<i32>,
    pub duration_s: f64,
    pub tail: String,
    /// Answered from the cache: nothing ran.
    pub cached: bool,
}

/// Where checks run.
pub struct CheckPlace<'a> {
    pub settings: &'a Settings,
    pub handles: &'a Handles,
    pub cancel: &'a Cancel,
    /// The worktree holding `tree`.
    pub dir: &'a Path,
    /// The tree checked out there (the cache key).
    pub tree: &'a str,
    /// Where the logs go (`<name>.log`, `/` replaced).
    pub logs: &'a Path,
    /// `RALPH_*` variables for the command.
    pub env: Vec<(String, String)>,
    /// Answer from (and record into) the cache. Off for `pre-story` gates, which are run for
    /// what they do to the worktree (install dependencies), not only for their verdict.
    pub cache: bool,
}

/// Run blocking work (git) off the async runtime's threads: many loops and the queue share
/// the runtime, and one story's checkout of a large tree must not hold up the others.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("a git task of ralph's failed: {e}"))?
}

/// [`checkout_detached`] off the runtime's threads.
pub async fn checkout_detached_async(
    repo: &ralph_git::Git,
    dir: &Path,
    commit: &str,
) -> Result<(), String> {
    let (repo, dir, commit) = (repo.clone(), dir.to_path_buf(), commit.to_string());
    blocking(move || checkout_detached(&repo, &dir, &commit)).await
}

/// Point ralph's scratch worktree `dir` (created when missing) at `commit`, whatever an
/// earlier check or an interrupted run left there: the queue's verification worktree, the
/// resolver's, or the one a gate is checked on the base in.
pub fn checkout_detached(repo: &ralph_git::Git, dir: &Path, commit: &str) -> Result<(), String> {
    let _lock = repo.repo_lock().map_err(|e| e.to_string())?;
    let registered = repo
        .worktrees()
        .map_err(|e| e.to_string())?
        .iter()
        .any(|w| same_dir(&w.path, dir));
    let done = if registered {
        repo.scratch_checkout(dir, commit)
    } else {
        if dir.exists() {
            repo.worktree_prune().map_err(|e| e.to_string())?;
        }
        repo.worktree_add_detached(dir, commit)
    };
    done.map_err(|e| e.to_string())
}

pub(crate) fn same_dir(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    canon(a) == canon(b)
}

/// A stable hash of what a check runs: a changed command is a cache miss. FNV-1a: a cache key,
/// not a defence (the database is ralph's own).
pub fn command_hash(check: &Check) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in check
        .run
        .bytes()
        .chain(check.timeout.as_millis().to_le_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Run `checks` in order until one fails (the rest are not run: the candidate is red anyway).
/// Returns every result, the failing one last.
pub async fn run_checks(
    place: &CheckPlace<'_>,
    checks: &[Check],
) -> Result<Vec<CheckResult>, String> {
    let mut out = Vec::new();
    for check in checks {
        let result = run_check(place, check).await?;
        let failed = !result.passed;
        out.push(result);
        if failed {
            break;
        }
    }
    Ok(out)
}

async fn run_check(place: &CheckPlace<'_>, check: &Check) -> Result<CheckResult, String> {
    let hash = command_hash(check);
    let (tree, name, key) = (place.tree.to_string(), check.name.clone(), hash.clone());
    let cached = if place.cache {
        place
            .handles
            .store
            .read(move |s| s.gate_result(&tree, &name, &key))
            .map_err(|e| e.to_string())?
    } else {
        None
    };
    if let Some(hit) = cached {
        return Ok(CheckResult {
            name: check.name.clone(),
            passed: hit.passed,
            exit_code: hit.exit_code,
            duration_s: hit.duration_s,
            tail: hit.output_tail.unwrap_or_default(),
            cached: true,
        });
    }
    let result = execute(place, check).await?;
    let record = GateResult {
        tree: place.tree.to_string(),
        gate: check.name.clone(),
        command_hash: hash,
        passed: result.passed,
        exit_code: result.exit_code,
        duration_s: result.duration_s,
        output_tail: Some(result.tail.clone()),
        created_at: place.handles.deps.clock.rfc3339(),
    };
    // A timeout or an interrupted check says nothing about the tree: not cached.
    if place.cache && result.exit_code.is_some() {
        place
            .handles
            .store
            .write(Write::RecordGateResult { result: record })
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(result)
}

struct NoLines;
impl process::LineSink for NoLines {
    fn line(&mut self, _: &[u8], _: bool) -> bool {
        false
    }
}

async fn execute(place: &CheckPlace<'_>, check: &Check) -> Result<CheckResult, String> {
    std::fs::create_dir_all(place.logs).map_err(|e| format!("{}: {e}", place.logs.display()))?;
    let log_path = place
        .logs
        .join(format!("{}.log", check.name.replace('/', "-")));
    let mut log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let args = vec!["-c".to_string(), check.run.clone()];
    let tag = sandbox_tag(place.tree, &check.name);
    let sandbox = ralph_core::sandbox::for_call(
        &place.settings.sandbox,
        CallPlace {
            root: &place.settings.root,
            work_root: place.dir,
            tag: &tag,
            scratch: None,
        },
        Who::Gate,
        CallCommand {
            program: "sh",
            args: &args,
            env: &place.env,
        },
    )
    .map_err(|e| {
        format!(
            "the sandbox for check {} could not be set up: {e}",
            check.name
        )
    })?;
    let mut sandbox = sandbox;
    let mut spec = Spec {
        program: "sh",
        args: &args,
        env: &place.env,
        cwd: place.dir,
        stdin: None,
        merge_stderr: true,
        max_output_bytes: Some(place.settings.safety.max_output_bytes),
        supervised: true,
        sandbox: sandbox.as_mut().and_then(|s| s.prepared.take()),
    };
    let deadlines = Deadlines {
        deadline: Instant::now() + check.timeout,
        deadline_is_runtime: false,
        idle: None,
        grace: Duration::from_secs(5),
    };
    let finished = process::run(
        &mut spec,
        deadlines,
        &mut log,
        None,
        &mut NoLines,
        place.cancel,
    )
    .await
    .map_err(|e| format!("check {} could not run: {e}", check.name))?;
    drop(sandbox);
    let exit_code = match finished.reason {
        EndReason::Exited => finished.exit.code,
        _ => None,
    };
    Ok(CheckResult {
        name: check.name.clone(),
        passed: exit_code == Some(0),
        exit_code,
        duration_s: finished.duration.as_secs_f64(),
        tail: place.settings.redactor.redact(&finished.tail).into_owned(),
        cached: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_check_on_the_same_tree_gets_its_own_sandbox_dir_each_time() {
        let tree = "0123456789abcdef0123456789abcdef01234567";
        let (a, b) = (sandbox_tag(tree, "A/AC"), sandbox_tag(tree, "A/AC"));
        assert_ne!(a, b);
        assert!(a.ends_with("-0123456789ab-A-AC"), "{a}");
        assert!(!a.contains('/'), "{a}");
    }
}
