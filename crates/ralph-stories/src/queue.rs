//! The merge queue's one step: build the candidate for an entry (the integration tip plus the
//! entry's story branches), check it, and move the integration branch to exactly the commit
//! that was checked, by compare-and-swap (STORIES.md rule 5). The branch only moves forward.
//!
//! A story whose branch already descends from the tip needs no merge commit: the candidate is
//! its tip, whose tree its post-story checks may have cached already. Otherwise ralph makes the
//! merge commit in the object store (`merge-tree --write-tree`), no worktree needed; the
//! verification worktree (`.ralph/worktrees/.merge`) is only checked out when there is
//! something to run.

use std::path::PathBuf;
use std::sync::Arc;

use ralph_core::{Cancel, Handles, Settings};
use ralph_git::{CasOutcome, Expect, Git};

use crate::checks::{run_checks, Check, CheckPlace, CheckResult};
use crate::names;
use crate::plan::Plan;
use crate::prebuild::{merge_step, Prebuilt, Step};

/// What the queue needs to merge (owned: the queue runs as its own task).
pub struct QueueCtx {
    pub repo: Git,
    pub plan: Arc<Plan>,
    pub plan_run_id: String,
    pub state_dir: PathBuf,
    /// `refs/heads/<integration branch>`.
    pub integration_ref: String,
    pub integration_branch: String,
    /// The project's settings (gates' sandbox, redaction).
    pub settings: Arc<Settings>,
    /// `when = "pre-merge"` gates.
    pub pre_merge: Vec<Check>,
    pub handles: Handles,
    pub cancel: Cancel,
    /// Who makes the resolver's loop (`None`: no repair, a red candidate is `conflicted`).
    pub maker: Option<Arc<dyn crate::worker::LoopMaker>>,
    pub sink: crate::events::SharedSink,
    /// A waiting story's merge made ahead of its turn (see [`crate::prebuild`]).
    pub prebuilt: Prebuilt,
}

/// What the coordinator knows that a candidate is built from: the tip it landed last and each
/// story's head as its worker reported it. A group's first build with nothing to check takes
/// them instead of asking git (its landing's transaction verifies both); any other build
/// reads them from git.
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub tip: Option<String>,
    pub heads: std::collections::HashMap<String, String>,
}

/// A story already on the integration branch: whose criteria a repair must keep green. What
/// it changed is asked of git only when a repair needs it ([`MergedStory::paths`]): most
/// merges need no repair, and a diff per merged story per merge made the queue's cost grow
/// with the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct MergedStory {
    pub id: String,
    /// The story's tip (a commit, or its branch's ref).
    pub head: String,
    /// A commit its work forked from or after: the diff runs from their merge base.
    pub fork: String,
}

impl MergedStory {
    /// What the story changed: its fork point to its tip.
    pub(crate) fn paths(&self, repo: &Git) -> Result<Vec<String>, ralph_git::GitError> {
        let base = repo
            .merge_base(&self.head, &self.fork)?
            .unwrap_or_else(|| self.fork.clone());
        Ok(repo.diff_stat(&base, &self.head)?.paths)
    }
}

/// How an entry's check ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The integration branch is at `commit`, which passed every check; `repaired`: a
    /// resolver made it.
    Landed {
        commit: String,
        built_on: String,
        repaired: bool,
    },
    /// The story branches do not merge textually with the tip (`repair`: why the resolver
    /// could not fix it, when it tried).
    Conflict {
        files: Vec<String>,
        built_on: String,
        repair: Option<String>,
    },
    /// A check failed on the candidate.
    Red {
        check: String,
        tail: String,
        candidate: String,
        built_on: String,
    },
}

/// The candidate as built, before its checks.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub commit: String,
    pub built_on: String,
    pub refname: String,
    /// `refname` points at `commit` already; else it is written with the landing, in the same
    /// transaction (a candidate with nothing to check).
    pub ref_written: bool,
    /// Each story branch merged and the commit it was at: verified in that transaction.
    pub merged_heads: Vec<(String, String)>,
}

/// Why a first candidate could not land as built.
pub(crate) enum Trouble {
    /// A textual conflict: `tree` holds the markers.
    Conflict {
        files: Vec<String>,
        tree: String,
        ours: String,
        theirs: String,
    },
    /// A check failed on the candidate.
    Red {
        check: String,
        tail: String,
        candidate: Candidate,
        theirs: String,
    },
}

/// One verdict per queue entry.
pub type Verdicts = Vec<(u32, Result<(Verdict, Vec<CheckResult>), String>)>;

/// Check and land a group of waiting entries (in queue order): all of them as one candidate
/// first; green, they land together (one run of each gate for the group). A conflict or a red
/// check splits the group in halves, the first checked (and landed) before the second is built
/// on the new tip, down to single entries, which get [`merge_entry`] with its repair. The
/// tested commit is still the commit that lands, for every half.
pub async fn merge_batch(
    ctx: &Arc<QueueCtx>,
    group: Vec<(u32, Vec<String>)>,
    mut merged: Vec<MergedStory>,
    known: Known,
) -> Verdicts {
    // Only the first build: after it, the tip may have moved.
    let mut known = Some(known);
    let mut out = Vec::new();
    let mut todo = std::collections::VecDeque::from([group]);
    let mut build = 200;
    while let Some(group) = todo.pop_front() {
        if let [(seq, ids)] = group.as_slice() {
            let verdict = merge_entry(ctx, *seq, ids, &merged, known.take()).await;
            note_landed(ctx, &verdict, ids, &mut merged);
            out.push((*seq, verdict));
            continue;
        }
        build += 1;
        let ids: Vec<String> = group.iter().flat_map(|(_, ids)| ids.clone()).collect();
        match try_whole(ctx, group[0].0, build, &ids, known.take()).await {
            Ok(Some((verdict, results))) => {
                note_landed(ctx, &Ok((verdict.clone(), Vec::new())), &ids, &mut merged);
                for (seq, _) in &group {
                    out.push((*seq, Ok((verdict.clone(), results.clone()))));
                }
            }
            Ok(None) => {
                let (first, second) = group.split_at(group.len() / 2);
                todo.push_front(second.to_vec());
                todo.push_front(first.to_vec());
            }
            Err(e) => {
                for (seq, _) in &group {
                    out.push((*seq, Err(e.clone())));
                }
            }
        }
    }
    out
}

/// The whole group as one candidate: `Some` landed, `None` not green (bisect).
async fn try_whole(
    ctx: &Arc<QueueCtx>,
    seq: u32,
    build: u32,
    ids: &[String],
    known: Option<Known>,
) -> Result<Option<(Verdict, Vec<CheckResult>)>, String> {
    let checks = checks_for(ctx, ids, &[]);
    let built = build_blocking(ctx, seq, build, ids, !checks.is_empty(), known).await?;
    let Ok(candidate) = built else {
        return Ok(None);
    };
    let results = check_commit(ctx, &candidate.commit, &checks, ids).await?;
    if results.iter().any(|r| !r.passed) {
        return Ok(None);
    }
    let moved = move_integration(ctx, &candidate)?;
    Ok(match moved {
        CasOutcome::Moved => Some((
            Verdict::Landed {
                commit: candidate.commit,
                built_on: candidate.built_on,
                repaired: false,
            },
            results,
        )),
        // The tip moved under the group: split and rebuild (each half on the new tip).
        CasOutcome::Stale { .. } => None,
    })
}

/// The compare-and-swap of the integration branch to `candidate`, recorded as ralph's own
/// write when it moved: the running stories' ref guards then take the new tip as ralph's
/// instead of asking git, each, whether it fast-forwarded.
fn move_integration(ctx: &QueueCtx, candidate: &Candidate) -> Result<CasOutcome, String> {
    let moved = if candidate.ref_written {
        ctx.repo.update_ref_cas(
            &ctx.integration_ref,
            &candidate.commit,
            Some(&candidate.built_on),
        )
    } else {
        let mut updates = vec![
            (
                candidate.refname.as_str(),
                candidate.commit.as_str(),
                Expect::Any,
            ),
            (
                ctx.integration_ref.as_str(),
                candidate.commit.as_str(),
                Expect::At(&candidate.built_on),
            ),
        ];
        for (branch, head) in &candidate.merged_heads {
            updates.push((branch.as_str(), head.as_str(), Expect::Stays));
        }
        ctx.repo.update_refs_cas(&updates)
    }
    .map_err(|e| e.to_string())?;
    if moved == CasOutcome::Moved {
        ctx.handles
            .own_refs
            .record(&ctx.integration_ref, &candidate.commit);
    }
    Ok(moved)
}

/// Stories just landed join `merged` (what a later repair in the group must keep green).
fn note_landed(
    ctx: &QueueCtx,
    verdict: &Result<(Verdict, Vec<CheckResult>), String>,
    ids: &[String],
    merged: &mut Vec<MergedStory>,
) {
    let Ok((Verdict::Landed { built_on, .. }, _)) = verdict else {
        return;
    };
    for id in ids {
        merged.push(MergedStory {
            id: id.clone(),
            head: names::heads(&names::story_branch(&ctx.plan.name, id)),
            fork: built_on.clone(),
        });
    }
}

/// Check and land queue entry `seq` (its stories in order). On a conflict or a red check,
/// one repair by the resolver, then the whole check again. A tip that moved meanwhile (it
/// cannot within one ralph, but another may share the branch) rebuilds on the new tip.
pub async fn merge_entry(
    ctx: &Arc<QueueCtx>,
    seq: u32,
    stories: &[String],
    merged: &[MergedStory],
    mut known: Option<Known>,
) -> Result<(Verdict, Vec<CheckResult>), String> {
    for build in 1..=5u32 {
        let checks = checks_for(ctx, stories, &[]);
        let write_ref = !checks.is_empty();
        let built = build_blocking(ctx, seq, build, stories, write_ref, known.take()).await?;
        let (candidate, results, repaired) = match built {
            Ok(candidate) => {
                let results = check_commit(ctx, &candidate.commit, &checks, stories).await?;
                match results.iter().find(|r| !r.passed) {
                    None => (candidate, results, false),
                    Some(red) => {
                        let theirs = story_head(ctx, stories.last())?;
                        let trouble = Trouble::Red {
                            check: red.name.clone(),
                            tail: red.tail.clone(),
                            candidate: candidate.clone(),
                            theirs,
                        };
                        match repaired(ctx, seq, build, stories, merged, trouble).await? {
                            Ok(ok) => ok,
                            Err(verdict) => return Ok((verdict, results)),
                        }
                    }
                }
            }
            Err(trouble) => match repaired(ctx, seq, build, stories, merged, trouble).await? {
                Ok(ok) => ok,
                Err(verdict) => return Ok((verdict, Vec::new())),
            },
        };
        match move_integration(ctx, &candidate)? {
            CasOutcome::Moved => {
                let verdict = Verdict::Landed {
                    commit: candidate.commit,
                    built_on: candidate.built_on,
                    repaired,
                };
                return Ok((verdict, results));
            }
            CasOutcome::Stale { .. } => continue,
        }
    }
    Err(format!(
        "the integration branch {} kept moving while ralph checked a candidate; is another \
         process landing on it?",
        ctx.integration_branch
    ))
}

/// The repair of `trouble` and its full check: `Ok(Ok(..))` lands, `Ok(Err(verdict))` does
/// not.
async fn repaired(
    ctx: &Arc<QueueCtx>,
    seq: u32,
    build: u32,
    stories: &[String],
    merged: &[MergedStory],
    trouble: Trouble,
) -> Result<Result<(Candidate, Vec<CheckResult>, bool), Verdict>, String> {
    let unrepaired = unrepaired_verdict(&trouble);
    let (Some(maker), [story]) = (ctx.maker.clone(), stories) else {
        return Ok(Err(unrepaired));
    };
    let outcome =
        crate::repair::repair(ctx, maker.as_ref(), seq, build, story, merged, &trouble).await?;
    let Some((candidate, checks)) = outcome.candidate else {
        return Ok(Err(with_repair_note(unrepaired, &outcome.note)));
    };
    let results = check_commit(ctx, &candidate.commit, &checks, stories).await?;
    match results.iter().find(|r| !r.passed) {
        None => Ok(Ok((candidate, results, true))),
        Some(red) => Ok(Err(Verdict::Red {
            check: red.name.clone(),
            tail: format!(
                "still failing after the resolver's repair: {}",
                red.tail.lines().last().unwrap_or("").trim()
            ),
            candidate: candidate.commit,
            built_on: candidate.built_on,
        })),
    }
}

fn unrepaired_verdict(trouble: &Trouble) -> Verdict {
    match trouble {
        Trouble::Conflict { files, ours, .. } => Verdict::Conflict {
            files: files.clone(),
            built_on: ours.clone(),
            repair: None,
        },
        Trouble::Red {
            check,
            tail,
            candidate,
            ..
        } => Verdict::Red {
            check: check.clone(),
            tail: tail.clone(),
            candidate: candidate.commit.clone(),
            built_on: candidate.built_on.clone(),
        },
    }
}

fn with_repair_note(verdict: Verdict, note: &str) -> Verdict {
    match verdict {
        Verdict::Conflict {
            files, built_on, ..
        } if !note.is_empty() => Verdict::Conflict {
            files,
            built_on,
            repair: Some(note.to_string()),
        },
        Verdict::Red {
            check,
            tail,
            candidate,
            built_on,
        } if !note.is_empty() => Verdict::Red {
            check,
            tail: format!("{tail}; the resolver could not repair it: {note}"),
            candidate,
            built_on,
        },
        v => v,
    }
}

fn story_head(ctx: &Arc<QueueCtx>, story: Option<&String>) -> Result<String, String> {
    let id = story.ok_or("a queue entry without stories")?;
    let branch = names::story_branch(&ctx.plan.name, id);
    ctx.repo
        .rev_parse(&names::heads(&branch))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the story branch {branch} is gone"))
}

/// [`build_candidate`] off the runtime's threads.
async fn build_blocking(
    ctx: &Arc<QueueCtx>,
    seq: u32,
    build: u32,
    stories: &[String],
    write_ref: bool,
    known: Option<Known>,
) -> Result<Result<Candidate, Trouble>, String> {
    let (ctx, stories) = (ctx.clone(), stories.to_vec());
    crate::checks::blocking(move || build_candidate(&ctx, seq, build, &stories, write_ref, known))
        .await
}

/// `Ok(Err(verdict))`: a conflict. `write_ref`: the candidate's ref is written now (it is
/// checked before it lands), else with the landing.
fn build_candidate(
    ctx: &Arc<QueueCtx>,
    seq: u32,
    build: u32,
    stories: &[String],
    write_ref: bool,
    known: Option<Known>,
) -> Result<Result<Candidate, Trouble>, String> {
    let repo = &ctx.repo;
    let s = |e: ralph_git::GitError| e.to_string();
    // No repository lock: building a candidate reads refs and writes only objects, and what
    // it built lands by compare-and-swap on the tip it was built on (`move_integration`, its
    // ref writes under the lock). Held here, it made the critical story's merge wait for a
    // sibling's worktree park or claim.
    let branches: Vec<String> = stories
        .iter()
        .map(|id| names::heads(&names::story_branch(&ctx.plan.name, id)))
        .collect();
    let (tip, heads) = match known
        .filter(|_| !write_ref)
        .and_then(|k| known_refs(k, stories))
    {
        Some(known) => known,
        None => read_refs(ctx, &branches)?,
    };
    let mut cur = tip.clone();
    let mut merged_heads = Vec::new();
    for ((id, branch), head) in stories.iter().zip(branches).zip(heads) {
        let Some(head) = head else {
            continue;
        };
        let ahead = (cur == tip)
            .then(|| ctx.prebuilt.take(id, &cur, &head))
            .flatten();
        let step = match ahead {
            Some(step) => step,
            None => merge_step(repo, &ctx.plan, &ctx.integration_branch, id, &cur, &head)?,
        };
        match step {
            Step::Contained => {}
            Step::Advanced(next) => cur = next,
            Step::Conflict { files, tree } => {
                return Ok(Err(Trouble::Conflict {
                    files,
                    tree,
                    ours: cur,
                    theirs: head,
                }))
            }
        }
        merged_heads.push((branch, head));
    }
    let refname = names::candidate_ref(&ctx.plan_run_id, seq, build);
    // A candidate ref is written once; the same name again (a resumed check) points where it
    // did or is left alone.
    if write_ref {
        let _ = repo.update_ref_cas(&refname, &cur, None).map_err(s)?;
    }
    Ok(Ok(Candidate {
        commit: cur,
        built_on: tip,
        refname,
        ref_written: write_ref,
        merged_heads,
    }))
}

/// The tip and every story's head as the coordinator knows them, when it knows them all.
fn known_refs(known: Known, stories: &[String]) -> Option<(String, Vec<Option<String>>)> {
    let heads = stories
        .iter()
        .map(|id| known.heads.get(id).cloned().map(Some))
        .collect::<Option<Vec<_>>>()?;
    Some((known.tip?, heads))
}

/// The tip and every story branch, in one git run (a story branch that is gone: `None`).
fn read_refs(ctx: &QueueCtx, branches: &[String]) -> Result<(String, Vec<Option<String>>), String> {
    let refs: Vec<&str> = std::iter::once(ctx.integration_ref.as_str())
        .chain(branches.iter().map(String::as_str))
        .collect();
    let mut found = ctx
        .repo
        .resolve_all(&refs)
        .map_err(|e| e.to_string())?
        .into_iter();
    let tip = found
        .next()
        .flatten()
        .ok_or_else(|| format!("the integration branch {} is gone", ctx.integration_branch))?;
    Ok((tip, found.collect()))
}

/// The pre-merge gates, then every story's `auto` criteria (the entry's, then `also`'s).
pub(crate) fn checks_for(ctx: &Arc<QueueCtx>, stories: &[String], also: &[String]) -> Vec<Check> {
    let mut checks = ctx.pre_merge.clone();
    for id in stories.iter().chain(also) {
        if let Some(story) = ctx.plan.story(id) {
            for (c, run) in story.auto_criteria() {
                checks.push(Check {
                    name: format!("{id}/{}", c.id),
                    run: run.to_string(),
                    timeout: ralph_core::settings::DEFAULT_GATE_TIMEOUT,
                });
            }
        }
    }
    checks
}

/// Run `checks` on `commit` in the verification worktree (cached by its tree).
pub(crate) async fn check_commit(
    ctx: &Arc<QueueCtx>,
    commit: &str,
    checks: &[Check],
    stories: &[String],
) -> Result<Vec<CheckResult>, String> {
    if checks.is_empty() {
        return Ok(Vec::new());
    }
    let tree = ctx.repo.tree_of(commit).map_err(|e| e.to_string())?;
    let dir = names::verify_worktree(&ctx.state_dir);
    crate::checks::checkout_detached_async(&ctx.repo, &dir, commit).await?;
    let logs = ctx
        .state_dir
        .join("stories")
        .join(&ctx.plan_run_id)
        .join("merge")
        .join(&commit[..12.min(commit.len())]);
    let place = CheckPlace {
        settings: &ctx.settings,
        handles: &ctx.handles,
        cancel: &ctx.cancel,
        dir: &dir,
        tree: &tree,
        logs: &logs,
        env: vec![
            ("RALPH_PLAN_RUN_ID".into(), ctx.plan_run_id.clone()),
            ("RALPH_CANDIDATE".into(), commit.to_string()),
            ("RALPH_STORY_IDS".into(), stories.join(" ")),
        ],
        cache: true,
    };
    run_checks(&place, checks).await
}
