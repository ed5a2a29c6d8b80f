//! A story's worktree, as its loop should find it: kept, re-attached to its branch, taken
//! over from a merged story (handed off or parked) or added; claimed under the repository lock
//! and switched after it.

use std::path::{Path, PathBuf};

use ralph_git::Git;

use crate::names;
use crate::worker::WorkerInput;

/// The story's worktree, as it should be before the loop starts: kept as it is when it exists
/// (a resumed story goes on where it was), attached to the story branch when only the branch
/// exists (a retry continues its own commits), else a parked one taken or a new one created
/// from `start`. Returns the commit the story's work is based on, and whether the worktree is
/// new.
///
/// The repository lock is held while the worktree list is read and changed; a parked worktree
/// is claimed under it by moving it to the story's name, and switched to the story's branch
/// after it (see [`Git::worktree_reuse`]).
pub(crate) fn prepare_worktree(
    repo: &Git,
    input: &WorkerInput,
) -> Result<Prepared, ralph_git::GitError> {
    let (claimed, branch_at) = claim_worktree(repo, input)?;
    let fresh = !matches!(claimed, Claim::Kept);
    // The aliases the engine's command guard needs, read where the engine would read them
    // (the worktree: a `config.worktree` counts) while the worktree is switched: a checkout
    // changes no configuration, and it is one git run less on the way to the agent.
    let aliases = {
        let (repo, dir) = (repo.clone(), input.worktree.clone());
        std::thread::Builder::new()
            .name("ralph-aliases".into())
            .spawn(move || repo.open_linked(&dir).and_then(|g| g.aliases()).ok())
            .ok()
    };
    let reused = match claimed {
        Claim::Kept | Claim::Made => None,
        Claim::Added(checkout) => Some(checkout),
        Claim::Handed(target) => Some(repo.worktree_switch_clean(&input.worktree, &target)?),
        Claim::Parked(parked) => {
            match repo.worktree_reuse(&input.worktree, &input.branch, &input.start) {
                Ok(checkout) => Some(checkout),
                // Dirty (rule 6): put back as it was, and the story gets a new worktree.
                Err(ralph_git::GitError::WorktreeDirty { .. }) => {
                    let _lock = repo.repo_lock()?;
                    repo.worktree_move(&input.worktree, &parked)?;
                    repo.worktree_add(&input.worktree, &input.branch, &input.start)?;
                    None
                }
                Err(e) => return Err(e),
            }
        }
    };
    let (head, tree) = match reused {
        Some(c) => (c.commit, Some(c.tree)),
        // The branch's tip as the claim read it, under the lock: a story's own branch moves
        // only by its own loop, which has not started.
        None => (branch_at.unwrap_or_else(|| input.start.clone()), None),
    };
    let base = if head == input.start {
        head.clone()
    } else {
        repo.merge_base(&head, &input.start)?
            .unwrap_or_else(|| head.clone())
    };
    Ok(Prepared {
        base,
        fresh,
        head,
        tree,
        aliases: aliases.and_then(|t| t.join().ok()).flatten(),
    })
}

/// What [`claim_worktree`] did.
enum Claim {
    /// The story's worktree was there, on its branch: kept as it is.
    Kept,
    /// Attached to the existing story branch.
    Made,
    /// Added on a new story branch: the clean checkout of the start.
    Added(ralph_git::Checkout),
    /// A parked worktree is now at the story's path, not yet switched; the path given is
    /// where it goes back to if it turns out dirty.
    Parked(PathBuf),
    /// The handed-off worktree, seen clean at its own path, is now at the story's: switched
    /// to the branch and start read with it.
    Handed(ralph_git::BranchTarget),
}

/// The repository-wide part of [`prepare_worktree`], under the lock.
/// Returns where the story branch pointed when the claim began (`None`: not there), which a
/// parked worktree's dirty fallback leaves as it was.
fn claim_worktree(
    repo: &Git,
    input: &WorkerInput,
) -> Result<(Claim, Option<String>), ralph_git::GitError> {
    let _lock = repo.repo_lock()?;
    // All read-only, and every story start waits on them: asked of git at once. A handed-off
    // worktree's status is asked where it is, before it is taken: a dirty one is not.
    let (list, target, clean) = std::thread::scope(|scope| {
        let target = scope.spawn(|| repo.story_branch_target(&input.branch, &input.start));
        let clean = input
            .handoff
            .as_ref()
            .map(|h| scope.spawn(move || repo.is_clean(h)));
        let list = repo.worktrees();
        let clean = clean.map(|c| {
            c.join()
                .unwrap_or_else(|_| Err(stopped("status")))
                .unwrap_or(false)
        });
        let target = target.join().unwrap_or_else(|_| Err(stopped("cat-file")));
        (list, target, clean)
    });
    let (list, target) = (list?, target?);
    let handoff = input.handoff.as_ref().filter(|h| {
        clean == Some(true) && list.iter().any(|w| crate::checks::same_dir(&w.path, h))
    });
    let branch_at = target.at.clone();
    let (claimed, taken) = claim_from(repo, input, &list, target, handoff)?;
    if let Some(h) = input.handoff.as_ref().filter(|_| !taken) {
        // Not taken (the story had a worktree or a branch of its own, or it was dirty):
        // parked, as the coordinator would have, its files untouched; where it cannot be, it
        // stays (a later `stories clean`).
        let _ = repo.worktree_park(h, &parked_path(h));
    }
    Ok((claimed, branch_at))
}

/// A thread asking git that panicked: git's unexpected failure.
fn stopped(args: &str) -> ralph_git::GitError {
    ralph_git::GitError::Unexpected {
        args: args.into(),
        output: "the thread asking it stopped".into(),
    }
}

/// Where a worktree that was at `dir` is parked.
fn parked_path(dir: &Path) -> PathBuf {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    dir.with_file_name(names::parked_name(&name))
}

/// [`claim_worktree`]'s choice, from the worktree list and whether the story branch exists;
/// `true` with it when the handed-off worktree was taken.
fn claim_from(
    repo: &Git,
    input: &WorkerInput,
    list: &[ralph_git::WorktreeInfo],
    target: ralph_git::BranchTarget,
    handoff: Option<&PathBuf>,
) -> Result<(Claim, bool), ralph_git::GitError> {
    let exists = target.at.is_some();
    if let Some(entry) = list
        .iter()
        .find(|w| crate::checks::same_dir(&w.path, &input.worktree))
    {
        let ours = entry.branch.as_deref() == Some(names::heads(&input.branch).as_str());
        if ours || exists {
            return Ok((Claim::Kept, false));
        }
        // Detached, or on another story's branch, with no story branch yet: a parked or
        // handed-off worktree claimed but never switched (ralph stopped in between).
        // Switched now (only if clean); were it dirty, it goes to a parked name of its own.
        return Ok((Claim::Parked(parked_path(&input.worktree)), false));
    }
    if input.worktree.exists() {
        // A directory git does not know (a crash inside `git worktree add`, a user's copy):
        // not ralph's to delete, and in the way. Moved aside, kept.
        repo.worktree_prune()?;
        set_aside(&input.worktree);
    }
    if exists {
        repo.worktree_attach(&input.worktree, &input.branch)?;
        return Ok((Claim::Made, false));
    }
    if let Some(h) = handoff {
        repo.worktree_move(h, &input.worktree)?;
        return Ok((Claim::Handed(target), true));
    }
    if let Some(parked) = parked_in(list, &input.worktree) {
        repo.worktree_move(&parked, &input.worktree)?;
        return Ok((Claim::Parked(parked), false));
    }
    let added = repo.worktree_add_at(&input.worktree, &target)?;
    Ok((Claim::Added(added), false))
}

/// The worktree [`prepare_worktree`] left.
pub(crate) struct Prepared {
    /// Where the story's work forks from the integration tip it started on.
    pub(crate) base: String,
    /// Made just now (a new, reused or re-attached worktree): the clean checkout of `head`.
    pub(crate) fresh: bool,
    /// The story branch's tip.
    pub(crate) head: String,
    /// Its tree, when the preparation learnt it.
    pub(crate) tree: Option<String>,
    /// The repository's git aliases, read from the worktree.
    pub(crate) aliases: Option<Vec<(String, String)>>,
}

/// A parked worktree (a merged story's) in `list` to take for the story at `worktree`, if
/// there is one. Its cleanness is checked once, by the reuse itself.
fn parked_in(list: &[ralph_git::WorktreeInfo], worktree: &Path) -> Option<PathBuf> {
    let dir = worktree.parent()?;
    list.iter()
        .find(|w| {
            w.branch.is_none()
                && w.path
                    .parent()
                    .is_some_and(|p| crate::checks::same_dir(p, dir))
                && w.path
                    .file_name()
                    .is_some_and(|n| names::is_parked(&n.to_string_lossy()))
        })
        .map(|w| w.path.clone())
}

/// Move `dir` to `.ralph/worktrees/.lost/<name>-<n>` (the first free `n`).
fn set_aside(dir: &Path) {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return;
    };
    let lost = parent.join(".lost");
    let _ = std::fs::create_dir_all(&lost);
    for n in 1..1000 {
        let to = lost.join(format!("{}-{n}", name.to_string_lossy()));
        if !to.exists() {
            let _ = std::fs::rename(dir, &to);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::sync::Arc;

    use super::*;

    struct Repo {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        git: Git,
    }

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {:?}", out);
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn repo() -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["config", "user.name", "t"]);
        git(&root, &["config", "user.email", "t@t"]);
        std::fs::write(root.join(".gitignore"), "/.ralph/\n").unwrap();
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-qm", "init"]);
        let git = Git::discover(&root).unwrap().unwrap();
        Repo {
            _tmp: tmp,
            root,
            git,
        }
    }

    fn wt(r: &Repo, id: &str) -> PathBuf {
        r.root.join(".ralph/worktrees").join(id)
    }

    /// A merged story's worktree: on its branch, one commit on top of main.
    fn merged(r: &Repo, id: &str) -> String {
        let dir = wt(r, id);
        let branch = format!("ralph/p--{id}");
        git(
            &r.root,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                &branch,
                dir.to_str().unwrap(),
            ],
        );
        std::fs::write(dir.join(format!("{id}.txt")), id).unwrap();
        git(&dir, &["add", "-A"]);
        git(&dir, &["commit", "-qm", id]);
        git(&dir, &["rev-parse", "HEAD"])
    }

    fn input(r: &Repo, id: &str, start: &str, handoff: Option<PathBuf>) -> WorkerInput {
        let plan = crate::sample::plan("p", vec![crate::sample::story(id, &[], &[])]);
        WorkerInput {
            plan_run_id: "run".into(),
            plan: Arc::new(plan),
            story_id: id.into(),
            plan_base: start.into(),
            start: start.into(),
            branch: format!("ralph/p--{id}"),
            worktree: wt(r, id),
            artifacts: r.root.join(".ralph/art"),
            pre_story: Vec::new(),
            handoff,
        }
    }

    fn branch_of(dir: &Path) -> String {
        git(dir, &["symbolic-ref", "HEAD"])
    }

    #[test]
    fn a_merged_storys_worktree_handed_off_becomes_the_next_storys_on_its_own_branch() {
        let r = repo();
        let tip = merged(&r, "A");
        let got = prepare_worktree(&r.git, &input(&r, "B", &tip, Some(wt(&r, "A")))).unwrap();
        assert!(got.fresh);
        assert_eq!(
            (got.head.as_str(), got.base.as_str()),
            (tip.as_str(), tip.as_str())
        );
        assert_eq!(branch_of(&wt(&r, "B")), "refs/heads/ralph/p--B");
        assert!(wt(&r, "B").join("A.txt").exists());
        assert!(!wt(&r, "A").exists() && !wt(&r, ".free-A").exists());
        // A's branch is checked out nowhere now.
        let list = git(&r.root, &["worktree", "list", "--porcelain"]);
        assert!(!list.contains("ralph/p--A"), "{list}");
        assert!(got.aliases.is_some());
    }

    #[test]
    fn a_worktree_left_on_another_storys_branch_by_a_crash_mid_handoff_is_switched() {
        let r = repo();
        let tip = merged(&r, "A");
        // ralph died after moving A's worktree to B's name, before switching it.
        git(
            &r.root,
            &[
                "worktree",
                "move",
                wt(&r, "A").to_str().unwrap(),
                wt(&r, "B").to_str().unwrap(),
            ],
        );
        prepare_worktree(&r.git, &input(&r, "B", &tip, None)).unwrap();
        assert_eq!(branch_of(&wt(&r, "B")), "refs/heads/ralph/p--B");
        // A's branch keeps its commit: nothing was committed on it.
        assert_eq!(git(&r.root, &["rev-parse", "ralph/p--A"]), tip);
    }

    #[test]
    fn a_dirty_handed_off_worktree_is_never_switched_and_goes_to_its_parked_name() {
        let r = repo();
        let tip = merged(&r, "A");
        std::fs::write(wt(&r, "A").join("A.txt"), "edited after the merge").unwrap();
        prepare_worktree(&r.git, &input(&r, "B", &tip, Some(wt(&r, "A")))).unwrap();
        let kept = std::fs::read_to_string(wt(&r, ".free-A").join("A.txt")).unwrap();
        assert_eq!(kept, "edited after the merge");
        assert_eq!(branch_of(&wt(&r, "B")), "refs/heads/ralph/p--B");
        // A new worktree for B, with A's file as A committed it.
        assert_eq!(
            std::fs::read_to_string(wt(&r, "B").join("A.txt")).unwrap(),
            "A"
        );
    }

    #[test]
    fn a_handoff_the_story_does_not_take_is_parked() {
        let r = repo();
        let tip = merged(&r, "A");
        let main = git(&r.root, &["rev-parse", "main"]);
        // B was tried before: its branch exists, so it is re-attached, not handed A's worktree.
        git(&r.root, &["branch", "ralph/p--B", &main]);
        prepare_worktree(&r.git, &input(&r, "B", &tip, Some(wt(&r, "A")))).unwrap();
        assert_eq!(branch_of(&wt(&r, "B")), "refs/heads/ralph/p--B");
        assert!(wt(&r, ".free-A").join("A.txt").exists());
        assert!(!wt(&r, "A").exists());
    }
}
