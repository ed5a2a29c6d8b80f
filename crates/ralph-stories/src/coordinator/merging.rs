//! The merge queue's side of a plan run: stories entering the queue, groups of waiting
//! entries checked as one candidate (batching, bisected on a failure, in `queue.rs`), and
//! what each verdict does to the stories and the scheduler.

use ralph_store::{QueueEntry, QueueState, StoryRecord, StoryState, Write};
use ralph_types::exit_codes;

use super::{Msg, Run};

/// Most entries checked as one candidate. Four: a failure costs at most two more rounds of
/// bisection per half, while a green batch of four runs the pre-merge gates once, not four
/// times.
pub(super) const MAX_BATCH: usize = 4;
use crate::checks::CheckResult;
use crate::events::LoopSink;
use crate::names;
use crate::queue::{merge_batch, Known, Verdict};
use crate::schedule::Outcome;
use crate::transitions::{record, transition};

impl Run {
    /// A new queue entry for `story` (already `queued`): the write that persists both.
    pub(super) fn enqueue(
        &mut self,
        story: &StoryRecord,
        events: Vec<ralph_store::EventRecord>,
    ) -> Write {
        let now = self.now();
        let entry = QueueEntry {
            plan_run_id: self.plan_run.id.clone(),
            seq: self.next_seq,
            story_ids: vec![story.story_id.clone()],
            state: QueueState::Waiting,
            candidate_ref: None,
            candidate_commit: None,
            built_on: None,
            detail: None,
            created_at: now.clone(),
            updated_at: now,
        };
        self.next_seq += 1;
        self.queue.push_back(entry.clone());
        Write::SaveQueueEntry {
            entry,
            stories: vec![story.clone()],
            events,
        }
    }

    /// The stories merged so far (for the resolver's checks; what each changed is read only
    /// when a repair needs it).
    pub(super) fn merged_stories(&self) -> Vec<crate::queue::MergedStory> {
        self.stories
            .iter()
            .filter(|s| s.state == StoryState::Merged)
            .filter_map(|s| {
                Some(crate::queue::MergedStory {
                    id: s.story_id.clone(),
                    head: s.head_commit.clone()?,
                    fork: s.base_commit.clone()?,
                })
            })
            .collect()
    }

    /// Start checking the waiting entries, up to [`MAX_BATCH`] as one candidate: stories that
    /// queued up while the previous check ran are checked together (rule 5's batching).
    pub(super) async fn start_merge(&mut self) -> Result<(), String> {
        if !self.merging.is_empty() || self.queue.is_empty() {
            return Ok(());
        }
        let take = self.queue.len().min(MAX_BATCH);
        let mut group: Vec<QueueEntry> = self.queue.drain(..take).collect();
        for entry in &mut group {
            self.mark_merging(entry).await?;
        }
        let (ctx, tx) = (self.queue_ctx.clone(), self.tx.clone());
        let ids: Vec<(u32, Vec<String>)> =
            group.iter().map(|e| (e.seq, e.story_ids.clone())).collect();
        let merged = self.merged_stories();
        let known = Known {
            tip: self.tip.clone(),
            heads: ids
                .iter()
                .flat_map(|(_, ids)| ids)
                .filter_map(|id| {
                    let head = self.stories[self.dag.index(id)?].head_commit.clone()?;
                    Some((id.clone(), head))
                })
                .collect(),
        };
        self.merging = group;
        tokio::spawn(async move {
            let verdicts = merge_batch(&ctx, ids, merged, known).await;
            let _ = tx.send(Msg::Merged(verdicts));
        });
        Ok(())
    }

    /// The entry `checking`, its stories `merging`: one write, then told.
    async fn mark_merging(&mut self, entry: &mut QueueEntry) -> Result<(), String> {
        entry.state = QueueState::Checking;
        entry.updated_at = self.now();
        let mut stories = Vec::new();
        let mut events = Vec::new();
        for id in &entry.story_ids {
            if let Some(i) = self.dag.index(id) {
                let (next, ev) =
                    transition(&self.stories[i], StoryState::Merging, None, &self.now());
                events.push(ev);
                stories.push((i, next));
            }
        }
        let write = Write::SaveQueueEntry {
            entry: entry.clone(),
            stories: stories.iter().map(|(_, s)| s.clone()).collect(),
            events: events
                .iter()
                .map(|e| record(&self.plan_run.id, e))
                .collect(),
        };
        self.handles
            .store
            .write(write)
            .await
            .map_err(|e| e.to_string())?;
        for (i, s) in stories {
            self.stories[i] = s;
        }
        for ev in events {
            self.tell(ev);
        }
        Ok(())
    }

    /// Story `i` committed `commit` on its branch: when its merge would be the next one (the
    /// queue idle and nothing to check, which is when a link of a chain waits on it), that
    /// merge is made now, while its loop finishes and it is queued (see [`crate::prebuild`]).
    pub(super) fn merge_ahead(&mut self, i: usize, commit: &str) {
        let idle = self.queue.is_empty() && self.merging.is_empty();
        let (Some(tip), Some(story)) = (self.tip.as_deref(), self.stories.get(i)) else {
            return;
        };
        let unchecked = self.queue_ctx.pre_merge.is_empty()
            && self
                .input
                .plan
                .story(&story.story_id)
                .is_some_and(|s| s.auto_criteria().next().is_none());
        if idle && unchecked {
            let ctx = &self.queue_ctx;
            ctx.prebuilt.speculate(
                &ctx.repo,
                &ctx.plan,
                &ctx.integration_branch,
                &story.story_id,
                tip,
                commit,
            );
        }
    }

    /// Every verdict of a checked group, in queue order.
    pub(super) async fn group_done(
        &mut self,
        verdicts: crate::queue::Verdicts,
    ) -> Result<(), String> {
        for (seq, verdict) in verdicts {
            self.merge_done(seq, verdict).await?;
        }
        // An entry the group never reached (ralph's own failure stopped it) stays `checking`:
        // resumed next time.
        self.merging.clear();
        Ok(())
    }

    async fn merge_done(
        &mut self,
        seq: u32,
        verdict: Result<(Verdict, Vec<CheckResult>), String>,
    ) -> Result<(), String> {
        let Some(pos) = self.merging.iter().position(|e| e.seq == seq) else {
            return Err(format!(
                "merge queue entry {seq} finished but was not being checked"
            ));
        };
        let mut entry = self.merging.remove(pos);
        let verdict = match verdict {
            Ok((v, _)) => v,
            Err(e) => {
                // Stays `checking` in the database: the next `ralph stories run` checks it again.
                self.stop.get_or_insert((exit_codes::INTERNAL_ERROR, e));
                return Ok(());
            }
        };
        entry.updated_at = self.now();
        let (state, reason, landed) = match &verdict {
            Verdict::Landed {
                commit,
                built_on,
                repaired,
            } => {
                entry.state = QueueState::Landed;
                entry.candidate_commit = Some(commit.clone());
                entry.built_on = Some(built_on.clone());
                let note = repaired.then(|| "repaired by the resolver".to_string());
                entry.detail = note.clone();
                (StoryState::Merged, note, Some(commit.clone()))
            }
            Verdict::Conflict {
                files,
                built_on,
                repair,
            } => {
                entry.state = QueueState::Failed;
                entry.built_on = Some(built_on.clone());
                let mut why = format!(
                    "conflicts with the integration branch in {}",
                    files.join(", ")
                );
                if let Some(r) = repair {
                    why.push_str(&format!("; the resolver could not repair it: {r}"));
                }
                entry.detail = Some(why.clone());
                (StoryState::Conflicted, Some(why), None)
            }
            Verdict::Red {
                check,
                tail,
                candidate,
                built_on,
            } => {
                entry.state = QueueState::Failed;
                entry.candidate_commit = Some(candidate.clone());
                entry.built_on = Some(built_on.clone());
                let last = tail.lines().last().unwrap_or("").trim().to_string();
                let why = format!("{check} failed on the merged result: {last}");
                entry.detail = Some(why.clone());
                (StoryState::Conflicted, Some(why), None)
            }
        };
        if landed.is_some() {
            self.tip = landed.clone();
        }
        let mut changed = Vec::new();
        let mut events = Vec::new();
        for id in &entry.story_ids {
            if let Some(i) = self.dag.index(id) {
                let mut s = self.stories[i].clone();
                s.merged_commit = landed.clone();
                let (next, ev) = transition(&s, state, reason.clone(), &self.now());
                changed.push((i, next));
                events.push(ev);
            }
        }
        let records: Vec<StoryRecord> = changed.iter().map(|(_, s)| s.clone()).collect();
        let rows = events
            .iter()
            .map(|e| record(&self.plan_run.id, e))
            .collect();
        let write = if landed.is_some() {
            Write::Land {
                entry,
                stories: records,
                events: rows,
            }
        } else {
            Write::SaveQueueEntry {
                entry,
                stories: records,
                events: rows,
            }
        };
        self.handles
            .store
            .write(write)
            .await
            .map_err(|e| e.to_string())?;
        let mut ended = Vec::new();
        for (i, s) in changed {
            self.stories[i] = s;
            ended.push(i);
        }
        for ev in events {
            self.tell(ev);
        }
        for i in ended {
            if landed.is_some() {
                let id = &self.stories[i].story_id;
                self.spare.push(names::story_worktree(&self.state_dir, id));
                self.finished(i, Outcome::Merged).await?;
            } else {
                self.finished(i, Outcome::Failed).await?;
            }
        }
        Ok(())
    }

    /// The merged stories' worktrees no story took (see `Run::spare`) are parked for later
    /// stories (see [`names::parked_worktree`]), each on a blocking thread, not waited for
    /// here; anything left in one keeps it from being switched (rule 6), and a worktree that
    /// cannot be parked stays where it is.
    pub(super) fn park_spares(&mut self) {
        for path in self.spare.drain(..) {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let to = names::parked_worktree(&self.state_dir, &name);
            let repo = self.repo.clone();
            self.parking.push(tokio::task::spawn_blocking(move || {
                let _ = repo.worktree_park(&path, &to);
            }));
        }
    }

    /// Every park under way, done.
    pub(super) async fn parked(&mut self) {
        for park in self.parking.drain(..) {
            let _ = park.await;
        }
    }
}

/// A story's loop's view of the shared sink that also tells the coordinator of each commit on
/// the story branch ([`Run::merge_ahead`]).
pub(super) struct CommitSink {
    pub(super) inner: LoopSink,
    pub(super) story: usize,
    pub(super) tx: tokio::sync::mpsc::UnboundedSender<Msg>,
}

impl ralph_core::EventSink for CommitSink {
    fn event(&mut self, event: &ralph_core::RunEvent) {
        self.inner.event(event);
        if let ralph_core::EventBody::StoryCommitted { commit, .. } = &event.body {
            let _ = self.tx.send(Msg::Committed(self.story, commit.clone()));
        }
    }

    fn waiting(&mut self, remaining: std::time::Duration, reason: &str) {
        self.inner.waiting(remaining, reason);
    }
}
