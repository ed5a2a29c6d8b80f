//! A story's merge into the integration tip, one step of a candidate ([`merge_step`]), and
//! the same step made ahead of time ([`speculate`]): when a story's loop commits on its branch
//! while the queue is idle, its merge with the tip is made at once, on a thread, while the
//! loop finishes, its run is recorded and the story is queued (some 5–8 ms on every link of a
//! chain of stories). The queue takes that step only if it is of the same tip and the same
//! story commit it builds from; else it is garbage objects, nothing else. Refs are never
//! written here: the candidate lands by the queue's compare-and-swap, which also verifies the
//! story branch still points at the commit merged.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use ralph_git::{Git, MergeTreeOutcome};

use crate::plan::Plan;

/// What merging one story's head into the candidate so far did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Already in (the head is an ancestor of the candidate): nothing to merge.
    Contained,
    /// The candidate is now this commit: the head itself (a fast-forward) or a merge commit.
    Advanced(String),
    /// A textual conflict: `tree` holds the markers.
    Conflict { files: Vec<String>, tree: String },
}

/// Merge `head` (story `id`'s) into `cur`: merge commit message from the plan.
pub(crate) fn merge_step(
    repo: &Git,
    plan: &Plan,
    integration_branch: &str,
    id: &str,
    cur: &str,
    head: &str,
) -> Result<Step, String> {
    let s = |e: ralph_git::GitError| e.to_string();
    // One merge base answers both questions: already in (it is the story's tip), or a
    // fast-forward (it is the tip so far). The merged tree is asked for at the same time
    // (both only read): on the critical path of every chain of stories, the merge costs one
    // git run's wait instead of two; when it is not needed its objects are garbage.
    let (base, merged) = std::thread::scope(|scope| {
        let merged = scope.spawn(|| repo.merge_tree(cur, head));
        let base = repo.merge_base(head, cur);
        (base, merged.join())
    });
    let base = base.map_err(s)?;
    if base.as_deref() == Some(head) {
        return Ok(Step::Contained);
    }
    if base.as_deref() == Some(cur) {
        return Ok(Step::Advanced(head.to_string()));
    }
    let merged = merged.map_err(|_| "the merge of the candidate stopped".to_string())?;
    match merged.map_err(s)? {
        MergeTreeOutcome::Clean { tree } => {
            let title = plan.story(id).map(|s| s.title.as_str()).unwrap_or("");
            let msg = format!(
                "ralph: merge {id} into {integration_branch}\n\n{title}\n\nRalph-Story: {id}\n"
            );
            repo.commit_tree(&tree, &[cur, head], &msg)
                .map(Step::Advanced)
                .map_err(s)
        }
        MergeTreeOutcome::Conflict { files, tree } => Ok(Step::Conflict { files, tree }),
    }
}

/// A step under way for story `story`: `head` merged into `tip`.
struct Ahead {
    story: String,
    tip: String,
    head: String,
    step: JoinHandle<Result<Step, String>>,
}

/// The one step made ahead (a newer one replaces it).
#[derive(Default)]
pub struct Prebuilt(Mutex<Option<Ahead>>);

impl Prebuilt {
    /// Start merging `head` into `tip` for `story`, on a thread of its own.
    pub(crate) fn speculate(
        &self,
        repo: &Git,
        plan: &Arc<Plan>,
        integration_branch: &str,
        story: &str,
        tip: &str,
        head: &str,
    ) {
        let (repo, plan, branch) = (repo.clone(), plan.clone(), integration_branch.to_string());
        let (id, cur, theirs) = (story.to_string(), tip.to_string(), head.to_string());
        let spawned = std::thread::Builder::new()
            .name("ralph-prebuild".into())
            .spawn(move || merge_step(&repo, &plan, &branch, &id, &cur, &theirs));
        // No thread: the queue makes the step itself when it gets there.
        let Ok(step) = spawned else {
            return;
        };
        let ahead = Ahead {
            story: story.to_string(),
            tip: tip.to_string(),
            head: head.to_string(),
            step,
        };
        // An older one, unclaimed, is left to finish on its own: objects only.
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(ahead);
    }

    /// The step made ahead for exactly this merge, waited for; `None` when there is none (or
    /// it failed: the queue makes it again and reports its own error).
    pub(crate) fn take(&self, story: &str, tip: &str, head: &str) -> Option<Step> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let matches = slot
            .as_ref()
            .is_some_and(|a| a.story == story && a.tip == tip && a.head == head);
        if !matches {
            return None;
        }
        let ahead = slot.take()?;
        drop(slot);
        ahead.step.join().ok()?.ok()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// A commit on `from` writing `file` (and returning to `main`).
    fn commit_on(root: &Path, branch: &str, from: &str, file: &str, text: &str) -> String {
        git(root, &["checkout", "-q", "-B", branch, from]);
        std::fs::write(root.join(file), text).unwrap();
        git(root, &["add", "-A"]);
        git(root, &["commit", "-qm", file]);
        let head = git(root, &["rev-parse", "HEAD"]);
        git(root, &["checkout", "-q", "main"]);
        head
    }

    fn setup() -> (tempfile::TempDir, std::path::PathBuf, Git, Arc<Plan>) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["config", "user.name", "t"]);
        git(&root, &["config", "user.email", "t@t"]);
        std::fs::write(root.join("shared.txt"), "one\n").unwrap();
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-qm", "init"]);
        let repo = Git::discover(&root).unwrap().unwrap();
        let stories = ["S1", "S2", "S3"]
            .iter()
            .map(|id| crate::sample::story(id, &[], &[]))
            .collect();
        let plan = Arc::new(crate::sample::plan("p", stories));
        (tmp, root, repo, plan)
    }

    #[test]
    fn a_step_is_contained_a_fast_forward_a_merge_commit_or_a_conflict() {
        let (_tmp, root, repo, plan) = setup();
        let base = git(&root, &["rev-parse", "HEAD"]);
        let one = commit_on(&root, "s1", &base, "a.txt", "a\n");
        let step = |cur: &str, head: &str| merge_step(&repo, &plan, "ralph/p", "S2", cur, head);
        assert_eq!(step(&one, &base).unwrap(), Step::Contained);
        assert_eq!(step(&base, &one).unwrap(), Step::Advanced(one.clone()));
        let two = commit_on(&root, "s2", &base, "b.txt", "b\n");
        let Step::Advanced(merge) = step(&one, &two).unwrap() else {
            panic!("no merge commit");
        };
        let msg = git(&root, &["log", "-1", "--format=%B", &merge]);
        assert!(msg.starts_with("ralph: merge S2 into ralph/p"), "{msg}");
        assert!(msg.contains("Ralph-Story: S2"), "{msg}");
        assert_eq!(git(&root, &["rev-parse", &format!("{merge}^1")]), one);
        assert_eq!(git(&root, &["rev-parse", &format!("{merge}^2")]), two);
        let x = commit_on(&root, "x", &base, "shared.txt", "x\n");
        let y = commit_on(&root, "y", &base, "shared.txt", "y\n");
        match step(&x, &y).unwrap() {
            Step::Conflict { files, .. } => assert_eq!(files, vec!["shared.txt".to_string()]),
            other => panic!("{other:?}"),
        }
    }

    /// The step made ahead is taken only for the very merge it made: another story, another
    /// tip or another head of the story gets `None` (the queue merges itself), and a step is
    /// taken once.
    #[test]
    fn a_step_made_ahead_is_taken_only_for_the_same_merge() {
        let (_tmp, root, repo, plan) = setup();
        let base = git(&root, &["rev-parse", "HEAD"]);
        let tip = commit_on(&root, "s1", &base, "a.txt", "a\n");
        let head = commit_on(&root, "s2", &base, "b.txt", "b\n");
        let other = commit_on(&root, "s3", &base, "c.txt", "c\n");
        let ahead = Prebuilt::default();
        let expected = merge_step(&repo, &plan, "ralph/p", "S2", &tip, &head).unwrap();
        let Step::Advanced(made) = &expected else {
            panic!("{expected:?}");
        };
        ahead.speculate(&repo, &plan, "ralph/p", "S2", &tip, &head);
        assert_eq!(ahead.take("S3", &tip, &head), None);
        assert_eq!(ahead.take("S2", &base, &head), None);
        assert_eq!(ahead.take("S2", &tip, &other), None);
        let Some(Step::Advanced(taken)) = ahead.take("S2", &tip, &head) else {
            panic!("the step made ahead was not taken");
        };
        // The same merge: the same tree and parents (a new commit: made at another time).
        for rev in ["^{tree}", "^1", "^2"] {
            assert_eq!(
                git(&root, &["rev-parse", &format!("{taken}{rev}")]),
                git(&root, &["rev-parse", &format!("{made}{rev}")])
            );
        }
        assert_eq!(ahead.take("S2", &tip, &head), None);
        // A newer step replaces an unclaimed older one.
        ahead.speculate(&repo, &plan, "ralph/p", "S2", &tip, &head);
        ahead.speculate(&repo, &plan, "ralph/p", "S3", &tip, &other);
        assert_eq!(ahead.take("S2", &tip, &head), None);
        assert!(matches!(
            ahead.take("S3", &tip, &other),
            Some(Step::Advanced(_))
        ));
    }
}
