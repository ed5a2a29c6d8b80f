//! The one repair a candidate gets (STORIES.md rule 5): a resolver agent, given both sides'
//! story texts and criteria and never told to prefer one, works in a scratch worktree on the
//! merge as git left it (conflict markers included) or on the red candidate, until every check
//! of the merged result is green, its loop's completion gates.
//!
//! What it made is not landed as its own commits: ralph makes one merge commit of its final
//! tree with the integration tip and the story branch as parents, so history keeps both sides
//! and no commit with conflict markers is ever on the integration branch. That commit is then
//! checked again in full (the same trees are answered from the cache) with the criteria of
//! every merged story whose files the conflict or the repair touched, and a check that no
//! conflict markers are left.

use std::collections::BTreeSet;

use ralph_core::settings::{Gate, GateWhen};
use ralph_core::{Engine, Loop, RunScope, StopReason};
use ralph_git::Git;

use crate::checks::Check;
use crate::events::LoopSink;
use crate::names;
use crate::plan::{Check as Verify, Plan, Story};
use crate::queue::{checks_for, Candidate, MergedStory, QueueCtx, Trouble};
use crate::worker::LoopMaker;

/// What the repair produced: a candidate and the checks it must pass, or why there is none.
pub(crate) struct Repair {
    pub candidate: Option<(Candidate, Vec<Check>)>,
    pub note: String,
}

/// Fails when text a merge leaves behind is still in a tracked file.
const NO_MARKERS: &str = "! git grep -nE '^(<<<<<<<|>>>>>>>) ' -- .";

pub(crate) async fn repair(
    ctx: &std::sync::Arc<QueueCtx>,
    maker: &dyn LoopMaker,
    seq: u32,
    build: u32,
    story: &str,
    merged: &[MergedStory],
    trouble: &Trouble,
) -> Result<Repair, String> {
    let s = |e: ralph_git::GitError| e.to_string();
    let repo = &ctx.repo;
    let (start, ours, theirs, files, failure) = match trouble {
        Trouble::Conflict {
            files,
            tree,
            ours,
            theirs,
        } => {
            let msg = format!("ralph: merge of {story} with conflicts, for the resolver");
            let start = repo.commit_tree(tree, &[ours, theirs], &msg).map_err(s)?;
            (start, ours.clone(), theirs.clone(), files.clone(), None)
        }
        Trouble::Red {
            check,
            tail,
            candidate,
            theirs,
        } => {
            let base = repo
                .merge_base(&candidate.built_on, theirs)
                .map_err(s)?
                .unwrap_or_else(|| candidate.built_on.clone());
            let files = repo.diff_stat(&base, theirs).map_err(s)?.paths;
            let why = format!(
                "{check} failed: {}",
                tail.lines().last().unwrap_or("").trim()
            );
            (
                candidate.commit.clone(),
                candidate.built_on.clone(),
                theirs.clone(),
                files,
                Some(why),
            )
        }
    };
    let siblings = owners(repo, merged, &files, story);
    let mut checks = checks_for(ctx, &[story.to_string()], &siblings);
    checks.push(Check {
        name: "no-conflict-markers".into(),
        run: NO_MARKERS.into(),
        timeout: std::time::Duration::from_secs(60),
    });
    let dir = names::worktrees_dir(&ctx.state_dir).join(".resolve");
    crate::checks::checkout_detached_async(repo, &dir, &start).await?;
    let prompt = resolver_prompt(&ctx.plan, story, &siblings, &files, failure.as_deref());
    let ended = run_resolver(ctx, maker, story, seq, &dir, prompt, &checks).await?;
    if let Err(note) = ended {
        return Ok(Repair {
            candidate: None,
            note,
        });
    }
    let work = Git::discover(&dir)
        .map_err(s)?
        .ok_or("the resolver's worktree is gone")?;
    let head = work
        .head()
        .map_err(s)?
        .ok_or("the resolver's worktree has no HEAD")?;
    let tree = repo.tree_of(&head).map_err(s)?;
    let title = ctx
        .plan
        .story(story)
        .map(|s| s.title.as_str())
        .unwrap_or("");
    let msg = format!(
        "ralph: merge {story} into {} (conflict repaired by the resolver)\n\n{title}\n\n\
         Ralph-Story: {story}\n",
        ctx.integration_branch
    );
    let commit = repo
        .commit_tree(&tree, &[&ours, &theirs], &msg)
        .map_err(s)?;
    let refname = names::candidate_ref(&ctx.plan_run_id, seq, 100 + build);
    repo.update_ref_cas(&refname, &commit, None).map_err(s)?;
    let candidate = Candidate {
        commit,
        built_on: ours,
        refname,
        ref_written: true,
        merged_heads: Vec::new(),
    };
    Ok(Repair {
        candidate: Some((candidate, checks)),
        note: String::new(),
    })
}

/// Merged stories (other than `story`) whose changes touch any of `files`. A story whose
/// changes git cannot list counts as touching them: its criteria run once more rather than
/// being skipped.
fn owners(repo: &Git, merged: &[MergedStory], files: &[String], story: &str) -> Vec<String> {
    let files: BTreeSet<&String> = files.iter().collect();
    merged
        .iter()
        .filter(|m| m.id != story)
        .filter(|m| {
            m.paths(repo)
                .map_or(true, |paths| paths.iter().any(|p| files.contains(p)))
        })
        .map(|m| m.id.clone())
        .collect()
}

/// The resolver's loop in `dir`: the checks as its completion gates. `Ok(Err(why))`: it did
/// not finish.
async fn run_resolver(
    ctx: &std::sync::Arc<QueueCtx>,
    maker: &dyn LoopMaker,
    story: &str,
    seq: u32,
    dir: &std::path::Path,
    prompt: String,
    checks: &[Check],
) -> Result<Result<(), String>, String> {
    let (mut settings, agents) = maker.resolver_loop(prompt, dir)?;
    for c in checks {
        settings.gates.push(Gate {
            name: c.name.replace('/', "-"),
            run: c.run.clone(),
            when: GateWhen::Complete,
            timeout: c.timeout,
        });
    }
    let git = Git::discover(dir).map_err(|e| e.to_string())?;
    let artifacts = ctx
        .state_dir
        .join("stories")
        .join(&ctx.plan_run_id)
        .join(story)
        .join(format!("resolve-{seq}"));
    let lp = Loop {
        settings,
        agents,
        scope: RunScope {
            work_root: dir.to_path_buf(),
            // A dot: no story of the plan can have this id.
            story: Some(format!("{story}.resolve-{seq}")),
            artifacts: Some(artifacts),
            plan_run: Some(ctx.plan_run_id.clone()),
            clean_at: None,
            git_aliases: None,
        },
        git,
        escalation: None,
    };
    let sink = Box::new(LoopSink(ctx.sink.clone()));
    let engine = Engine::new(lp, ctx.handles.clone(), ctx.cancel.child(), sink)
        .map_err(|e| e.to_string())?;
    let summary = engine.run().await.map_err(|e| e.to_string())?;
    Ok(match summary.stop_reason {
        StopReason::Completed => Ok(()),
        _ => Err(summary.message),
    })
}

/// Both sides, as equals: the story being merged and the merged stories it meets.
fn resolver_prompt(
    plan: &Plan,
    story: &str,
    siblings: &[String],
    files: &[String],
    failure: Option<&str>,
) -> String {
    let mut p = format!(
        "You are resolving a merge in the plan \"{}\". Story {story} is being merged into the \
         integration branch, which already holds the work of other stories. Both sides are \
         wanted: keep the intent of every story below, drop neither side's change, and do not \
         prefer one side over the other.\n\n",
        plan.name
    );
    match failure {
        None => p.push_str(&format!(
            "git could not merge these files; they hold conflict markers: {}.\n\n",
            files.join(", ")
        )),
        Some(why) => p.push_str(&format!(
            "The merge is textually clean but a check fails on it: {why}\n\n"
        )),
    }
    for id in std::iter::once(story).chain(siblings.iter().map(String::as_str)) {
        if let Some(s) = plan.story(id) {
            describe(&mut p, s, id == story);
        }
    }
    p.push_str(
        "Edit the files in the current directory until every criterion above holds; remove \
         every conflict marker. Do not run git commands that commit, merge, reset or switch \
         branches: ralph makes the merge commit.\n",
    );
    p
}

fn describe(p: &mut String, s: &Story, merging: bool) {
    let side = if merging {
        "being merged"
    } else {
        "already merged"
    };
    p.push_str(&format!(
        "## Story {} ({side}): {}\n{}\n",
        s.id,
        s.title,
        s.description.trim_end()
    ));
    for c in &s.criteria {
        match &c.check {
            Verify::Auto { run } => p.push_str(&format!("- {}: {} (`{run}`)\n", c.id, c.text)),
            Verify::Manual => p.push_str(&format!("- {}: {}\n", c.id, c.text)),
        }
    }
    p.push('\n');
}
