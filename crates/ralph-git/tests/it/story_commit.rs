//! ralph's commits on a story branch: everything the iteration left, after the agent's own
//! commits, with the story trailer and the configured (or ralph's) identity.

use crate::support::Repo;
use crate::worktree::{git_at, wt_path};

#[test]
fn keeps_the_agents_commit_and_adds_ralphs_with_the_trailer() {
    let repo = Repo::with_commit(&[("a.txt", "a\n"), ("gone.txt", "bye\n")]);
    let git = repo.discover();
    let base = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let path = wt_path(&repo, "S-3");
    git.worktree_add(&path, "ralph/plan/S-3", &base).unwrap();

    // The agent commits on its own (with its own message and identity)...
    std::fs::write(path.join("agent.txt"), "by the agent\n").unwrap();
    git_at(&repo, &path, &["add", "agent.txt"]);
    git_at(
        &repo,
        &path,
        &["commit", "-q", "-m", "agent: add agent.txt"],
    );
    let agent = git_at(&repo, &path, &["rev-parse", "HEAD"])
        .trim()
        .to_owned();
    // ...and leaves more behind: a change, a deletion, an untracked file, ralph's state.
    std::fs::write(path.join("a.txt"), "changed\n").unwrap();
    std::fs::remove_file(path.join("gone.txt")).unwrap();
    std::fs::write(path.join("new.txt"), "new\n").unwrap();
    std::fs::create_dir_all(path.join(".ralph/tmp")).unwrap();
    std::fs::write(path.join(".ralph/tmp/state"), "ralph's own\n").unwrap();

    let commit = git
        .commit_all(&path, "S-3: iteration 2", &[("Ralph-Story", "STORY-003")])
        .unwrap()
        .expect("there were changes");
    assert_eq!(repo.parents(&commit), std::slice::from_ref(&agent));
    assert_eq!(repo.parents(&agent), std::slice::from_ref(&base));
    assert_eq!(
        repo.git(&["log", "--format=%s", &format!("{base}..ralph/plan/S-3")]),
        "S-3: iteration 2\nagent: add agent.txt\n",
        "the agent's commit is kept as it was"
    );
    let message = repo.git(&["log", "-1", "--format=%B", &commit]);
    assert_eq!(message, "S-3: iteration 2\n\nRalph-Story: STORY-003\n\n");
    let trailer = repo.git(&[
        "log",
        "-1",
        "--format=%(trailers:key=Ralph-Story,valueonly)",
        &commit,
    ]);
    assert_eq!(trailer.trim(), "STORY-003");
    let files = repo.tree_files(&commit);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, ["a.txt", "agent.txt", "new.txt"]);
    assert_eq!(files["a.txt"], b"changed\n");
    // The branch moved with the worktree's HEAD; the worktree is clean again (ralph's own
    // state is not work).
    assert_eq!(repo.git(&["rev-parse", "ralph/plan/S-3"]).trim(), commit);
    assert!(git.is_clean(&path).unwrap());
    // Nothing left: no commit.
    assert_eq!(git.commit_all(&path, "again", &[]).unwrap(), None);
    assert_eq!(repo.git(&["rev-parse", "ralph/plan/S-3"]).trim(), commit);
    // The user's branch is where it was.
    assert_eq!(repo.git(&["rev-parse", "main"]).trim(), base);
}

#[test]
fn the_identity_comes_from_git_config_or_is_ralphs() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let path = wt_path(&repo, "S-1");
    git.worktree_add(&path, "story", "HEAD").unwrap();

    // Whatever the machine's global config says, git in this process sees the same: the
    // result is either that identity or ralph's (the hostile-environment re-run of this suite
    // has none at all, and `user.useConfigOnly`).
    std::fs::write(path.join("one.txt"), "1\n").unwrap();
    let first = git.commit_all(&path, "one", &[]).unwrap().unwrap();
    let author = repo.git(&["log", "-1", "--format=%an <%ae>|%cn <%ce>", &first]);
    let mut cmd = std::process::Command::new("git");
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let kept = [
            "GIT_CONFIG_GLOBAL",
            "GIT_CONFIG_SYSTEM",
            "GIT_CONFIG_NOSYSTEM",
        ];
        if name.starts_with("GIT_") && !kept.contains(&name.as_str()) {
            cmd.env_remove(name);
        }
    }
    let configured = cmd
        .args(["config", "user.email"])
        .current_dir(&path)
        .output()
        .unwrap();
    if configured.stdout.is_empty() {
        assert_eq!(
            author.trim(),
            "ralph <ralph@localhost>|ralph <ralph@localhost>"
        );
    }

    // Repository config wins, as for the user's own commits.
    repo.git(&["config", "user.name", "Dana Dev"]);
    repo.git(&["config", "user.email", "dana@example.com"]);
    std::fs::write(path.join("two.txt"), "2\n").unwrap();
    let second = git.commit_all(&path, "two", &[]).unwrap().unwrap();
    let author = repo.git(&["log", "-1", "--format=%an <%ae>|%cn <%ce>", &second]);
    assert_eq!(
        author.trim(),
        "Dana Dev <dana@example.com>|Dana Dev <dana@example.com>"
    );
}

#[test]
fn commit_tree_makes_a_commit_with_the_given_parents_and_moves_nothing() {
    let repo = Repo::with_commit(&[("a.txt", "a\n")]);
    let git = repo.discover();
    let first = git.head().unwrap().unwrap();
    repo.write("b.txt", "b\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "second"]);
    let head = git.head().unwrap().unwrap();
    let tree = git.tree_of(&head).unwrap();
    let refs = repo.git(&["for-each-ref"]);
    let commit = git
        .commit_tree(&tree, &[&head, &first], "two parents\n\nbody\n")
        .unwrap();
    assert_eq!(repo.parents(&commit), [head.clone(), first.clone()]);
    assert_eq!(git.tree_of(&commit).unwrap(), tree);
    assert_eq!(
        repo.git(&["log", "-1", "--format=%B", &commit]),
        "two parents\n\nbody\n\n"
    );
    assert_eq!(repo.git(&["for-each-ref"]), refs);
    let root = git.commit_tree(&tree, &[], "root").unwrap();
    assert!(repo.parents(&root).is_empty());
}
