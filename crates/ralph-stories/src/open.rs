//! Starting a plan run, or finding the one to resume: the integration branch created from the
//! user's `HEAD` (never the user's branch itself), the stories' rows, the queue's unfinished
//! entries; and `--only`'s scope.

use ralph_core::Handles;
use ralph_git::Git;
use ralph_store::{PlanRunRecord, QueueEntry, QueueState, RunState, StoryRecord, Write};

use crate::coordinator::{PlanError, PlanInput, PlanRunOptions};
use crate::events::PLAN_STARTED;
use crate::names;
use crate::plan::Plan;

/// What a plan run starts or resumes from.
pub(crate) struct Opened {
    pub plan_run: PlanRunRecord,
    /// In plan order.
    pub stories: Vec<StoryRecord>,
    /// The queue's unfinished entries.
    pub queue: Vec<QueueEntry>,
    /// The next entry's number: after every entry ever made in this plan run (a number is
    /// never reused: an entry's row is its history).
    pub next_seq: u32,
    pub resumed: bool,
}

/// The plan run to go on with, resumed or new.
pub(crate) async fn open_plan_run(
    input: &PlanInput,
    opts: &PlanRunOptions,
    repo: &Git,
    handles: &Handles,
) -> Result<Opened, PlanError> {
    let name = input.plan.name.clone();
    let found = if opts.fresh {
        None
    } else {
        handles
            .store
            .read(move |s| s.latest_unfinished_plan_run(&name))
            .map_err(|e| e.to_string())?
    };
    if let Some(mut plan_run) = found {
        let id = plan_run.id.clone();
        let (mut stories, queue) = handles
            .store
            .read(move |s| Ok((s.stories(&id)?, s.merge_queue(&id)?)))
            .map_err(|e| e.to_string())?;
        // Stories the plan gained since are added; rows of stories it lost are kept, unused.
        let now = handles.deps.clock.rfc3339();
        let mut added = Vec::new();
        for s in &input.plan.stories {
            if !stories.iter().any(|r| r.story_id == s.id) {
                let r = StoryRecord::new(
                    &plan_run.id,
                    &s.id,
                    Some(s.layer.as_str().into()),
                    s.depends_on.clone(),
                    &now,
                );
                added.push(r.clone());
                stories.push(r);
            }
        }
        plan_run.state = RunState::Running;
        plan_run.plan_hash = input.plan_hash.clone();
        plan_run.updated_at = now;
        let write = Write::SavePlanRun {
            plan_run: plan_run.clone(),
            stories: added,
            events: Vec::new(),
        };
        handles
            .store
            .write(write)
            .await
            .map_err(|e| e.to_string())?;
        let ordered = in_plan_order(&input.plan, stories);
        let next_seq = queue.iter().map(|e| e.seq + 1).max().unwrap_or(1);
        let pending = queue
            .into_iter()
            .filter(|e| {
                matches!(
                    e.state,
                    QueueState::Waiting | QueueState::Checking | QueueState::Passed
                )
            })
            .collect();
        return Ok(Opened {
            plan_run,
            stories: ordered,
            queue: pending,
            next_seq,
            resumed: true,
        });
    }
    let plan_run = start(input, opts, repo, handles).await?;
    let now = handles.deps.clock.rfc3339();
    let stories: Vec<StoryRecord> = input
        .plan
        .stories
        .iter()
        .map(|s| {
            StoryRecord::new(
                &plan_run.id,
                &s.id,
                Some(s.layer.as_str().into()),
                s.depends_on.clone(),
                &now,
            )
        })
        .collect();
    let event = ralph_store::EventRecord {
        run_id: plan_run.id.clone(),
        iteration: None,
        ts: now,
        kind: PLAN_STARTED.to_string(),
        payload: serde_json::json!({ "plan": input.plan.name, "run_id": plan_run.id }).to_string(),
    };
    let write = Write::SavePlanRun {
        plan_run: plan_run.clone(),
        stories: stories.clone(),
        events: vec![event],
    };
    handles
        .store
        .write(write)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Opened {
        plan_run,
        stories,
        queue: Vec::new(),
        next_seq: 1,
        resumed: false,
    })
}

/// A new plan run: the integration branch at the user's `HEAD`.
async fn start(
    input: &PlanInput,
    opts: &PlanRunOptions,
    repo: &Git,
    handles: &Handles,
) -> Result<PlanRunRecord, PlanError> {
    let s = |e: ralph_git::GitError| PlanError::Failed(e.to_string());
    let refused = |message: String, hint: &str| PlanError::Refused {
        message,
        hint: hint.to_string(),
    };
    let branch = names::integration_branch(&input.plan.name, opts.into.as_deref());
    // HEAD and the integration branch in one git run.
    let found = repo
        .resolve_all(&["HEAD", &names::heads(&branch)])
        .map_err(s)?;
    let (head, existing) = match found.as_slice() {
        [head, existing] => (head.clone(), existing.clone()),
        _ => (None, None),
    };
    let head = head.ok_or_else(|| {
        refused(
            "the repository has no commit yet: the integration branch starts from HEAD".into(),
            "commit once (`git commit`), then run the plan",
        )
    })?;
    let user_branch = std::fs::read_to_string(repo.git_dir.join("HEAD"))
        .ok()
        .and_then(|h| {
            h.trim()
                .strip_prefix("ref: refs/heads/")
                .map(str::to_string)
        });
    if user_branch.as_deref() == Some(branch.as_str()) {
        return Err(refused(
            format!("the integration branch {branch} is the branch you are on"),
            "ralph never moves your branch: switch to another branch, or pass --into NAME",
        ));
    }
    {
        let _lock = repo.repo_lock().map_err(s)?;
        // Read before the lock: only ralph moves it, and the moves below are checked.
        match existing {
            None => repo.create_branch(&branch, &head).map_err(s)?,
            Some(tip) if tip == head => {}
            Some(tip) if repo.is_ancestor(&tip, &head).map_err(s)? => {
                let _ = repo
                    .update_ref_cas(&names::heads(&branch), &head, Some(&tip))
                    .map_err(s)?;
            }
            Some(_) => {
                return Err(refused(
                    format!(
                        "the branch {branch} exists and holds commits your HEAD does not have \
                         (an earlier plan run's?)"
                    ),
                    "merge it into your branch, delete it, or pass --into NAME",
                ))
            }
        }
    }
    let now = handles.deps.clock.rfc3339();
    let id = format!(
        "plan-{}",
        handles.deps.ids.next_id(handles.deps.clock.now())
    );
    Ok(PlanRunRecord {
        id,
        plan_name: input.plan.name.clone(),
        plan_path: input.plan_path.clone(),
        plan_hash: input.plan_hash.clone(),
        integration_branch: branch,
        base_commit: head,
        user_branch,
        state: RunState::Running,
        started_at: now.clone(),
        updated_at: now,
        finished_at: None,
        stop_reason: None,
        options: serde_json::json!({ "parallel": opts.parallel, "only": opts.only }),
    })
}

fn in_plan_order(plan: &Plan, mut rows: Vec<StoryRecord>) -> Vec<StoryRecord> {
    let pos = |id: &str| {
        plan.stories
            .iter()
            .position(|s| s.id == id)
            .unwrap_or(usize::MAX)
    };
    rows.retain(|r| pos(&r.story_id) != usize::MAX);
    rows.sort_by_key(|r| pos(&r.story_id));
    rows
}
