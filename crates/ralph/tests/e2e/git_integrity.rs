//! The repository survives a hostile agent (issue 9, items 4, 5, 7, 16, 18): refs are restored
//! wholesale, ralph's own git never runs agent-configured code, damage to `.git` is repaired or
//! told truthfully, and what checkpoints cannot restore is said.
//!
//! The agent here is a shell script running real git commands without any tool-use event, so
//! the command guard never sees them: only the checks after the iteration can catch them.

use crate::harness::*;

/// A custom agent running `body` in sh from the project root, text output.
fn sh_agent(p: &Project, body: &str, extra: &str) {
    let script = format!(
        "#!/bin/sh\ncat > /dev/null\nexport GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@a \
         GIT_COMMITTER_NAME=a GIT_COMMITTER_EMAIL=a@a\n{body}\necho did it\n"
    );
    std::fs::write(p.aux_path("agent.sh"), script).unwrap();
    p.write(
        "ralph.toml",
        &format!(
            "[agent]\nbackend = \"custom\"\ncommand = [\"sh\", {:?}]\noutput = \"text\"\n\n\
             [loop]\nmax_iterations = 1\n\n[retry]\nbase_delay = \"0s\"\n\n{extra}\n",
            path_str(&p.aux_path("agent.sh"))
        ),
    );
    p.write("PROMPT.md", "Make the tests pass.\n");
    p.write(".gitignore", ".ralph/\n");
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-q", "-m", "config"]);
}

/// A repository with history, a second branch, a tag and two stash entries.
fn rich_repo() -> Project {
    let p = Project::git();
    p.write("a.txt", "one\n");
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-q", "-m", "second"]);
    p.git_cmd(&["branch", "feature"]);
    p.git_cmd(&["tag", "-a", "-m", "release", "v1"]);
    p.git_cmd(&["tag", "light"]);
    for (i, text) in ["first stash\n", "second stash\n"].iter().enumerate() {
        p.write("a.txt", text);
        p.git_cmd(&["stash", "push", "-q", "-m", &format!("wip {i}")]);
    }
    p
}

/// Every user ref (ralph's own aside) with its value, HEAD's target, and the stash entries.
fn user_refs(p: &Project) -> String {
    let refs = p.git_cmd(&["for-each-ref", "--format=%(refname) %(objectname)"]);
    let refs: Vec<&str> = refs
        .lines()
        .filter(|l| !l.starts_with("refs/ralph/"))
        .collect();
    format!(
        "{}\nHEAD -> {}\nstash:\n{}",
        refs.join("\n"),
        p.git_cmd(&["symbolic-ref", "-q", "HEAD"]).trim(),
        p.git_cmd(&["stash", "list", "--format=%H %gs"])
    )
}

fn ralph_refs(p: &Project) -> Vec<String> {
    p.git_cmd(&["for-each-ref", "--format=%(refname)", "refs/ralph/"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Item 5: whatever the spelling, deleted and rewritten refs come back, the stash included,
/// and the run stops saying so.
#[test]
fn refs_the_agent_deleted_or_rewrote_are_put_back() {
    let cases: &[(&str, &str)] = &[
        ("git stash clear", "refs/stash"),
        ("git stash drop -q", "refs/stash"),
        ("git stash drop -q stash@{1}", "refs/stash"),
        ("git branch -D feature", "refs/heads/feature"),
        ("git update-ref -d refs/heads/feature", "refs/heads/feature"),
        ("git tag -d v1 light", "refs/tags/v1"),
        ("git tag -f light HEAD~2", "refs/tags/light"),
        ("git reset -q --hard HEAD~1", "refs/heads/main"),
        (
            "echo amended >> a.txt && git commit -q -a --amend -m amended",
            "refs/heads/main",
        ),
        ("git checkout -q feature", "HEAD"),
        ("git checkout -q --detach HEAD~1", "HEAD"),
        ("rm -f .git/refs/heads/feature", "refs/heads/feature"),
        ("git pack-refs --all && rm -f .git/packed-refs", "refs/"),
        (
            "git for-each-ref --format='%(refname)' refs/ralph | xargs -n1 git update-ref -d",
            "refs/ralph/checkpoints/",
        ),
    ];
    let mut failures = Vec::new();
    for (command, named) in cases {
        let p = rich_repo();
        sh_agent(&p, command, "");
        let refs_before = user_refs(&p);
        let out = p.run(&["run"]);
        let run = p.latest_run_id();
        let checkpoint0 = format!("refs/ralph/checkpoints/{run}/0000");
        let ok = out.code == 6
            && user_refs(&p) == refs_before
            && ralph_refs(&p).contains(&checkpoint0)
            && out.summary().contains(named)
            && out.summary().contains("put back as they were");
        if !ok {
            failures.push(format!(
                "{command:?}: exit {}\n{}\nrefs now:\n{}\nrefs before:\n{refs_before}",
                out.code,
                out.summary(),
                user_refs(&p)
            ));
        }
        let verify = p.run(&["audit", "verify"]);
        if verify.code != 0 {
            failures.push(format!("{command:?}: audit verify: {}", verify.stderr));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Item 5: the agent's own work is not undone: new commits on the current branch, new
/// branches, tags and stash entries stay, and the run goes on normally.
#[test]
fn new_commits_branches_and_stash_entries_stay() {
    let p = rich_repo();
    sh_agent(
        &p,
        "echo work >> b.txt && git add b.txt && git commit -q -m 'agent work' && \
         git branch agent-branch && git tag agent-tag && \
         echo more >> b.txt && git stash push -q -m agent-stash",
        "",
    );
    let stash_before = p.git_cmd(&["stash", "list", "--format=%gs"]);
    let out = p.run(&["run"]);
    assert_ne!(out.code, 6, "{}", out.stderr);
    assert_eq!(
        p.git_cmd(&["log", "-1", "--format=%s", "main"]).trim(),
        "agent work"
    );
    let refs = user_refs(&p);
    assert!(refs.contains("refs/heads/agent-branch"), "{refs}");
    assert!(refs.contains("refs/tags/agent-tag"), "{refs}");
    let stash = p.git_cmd(&["stash", "list", "--format=%gs"]);
    assert!(stash.ends_with(&stash_before), "{stash}");
    assert!(stash.contains("agent-stash"), "{stash}");
}

/// Item 5: `[git] allow_ref_rewrites` lets the agent rewrite what the user says it may.
#[test]
fn allowed_ref_rewrites_are_left_alone() {
    let p = rich_repo();
    sh_agent(
        &p,
        "git branch -D feature",
        "[git]\nallow_ref_rewrites = [\"refs/heads/feature\"]\n",
    );
    let out = p.run(&["run"]);
    assert_ne!(out.code, 6, "{}", out.stderr);
    assert!(!user_refs(&p).contains("refs/heads/feature"));

    let bad = Project::git();
    sh_agent(
        &bad,
        "true",
        "[git]\nallow_ref_rewrites = [\"refs/ralph/**\"]\n",
    );
    let out = bad.run(&["run"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("allow_ref_rewrites"), "{}", out.stderr);
}

/// Item 7: ralph's own git (the checkpoint's `git add`, restores) never runs a filter, an
/// fsmonitor or a hook the agent configured, wherever it configured it.
#[test]
fn ralphs_git_never_runs_agent_configured_code() {
    let cases: &[(&str, &str)] = &[
        (
            ".git/config",
            "echo '* filter=evil' > .gitattributes && \
             git config filter.evil.clean \"touch $MARKER; cat\" && \
             git config filter.evil.smudge \"touch $MARKER; cat\"",
        ),
        (
            "global config",
            "echo '* filter=evil' > .gitattributes && \
             git config --global filter.evil.clean \"touch $MARKER; cat\"",
        ),
        (
            ".git/info/attributes",
            "mkdir -p .git/info && echo '* filter=evil' > .git/info/attributes && \
             git config --global filter.evil.clean \"touch $MARKER; cat\"",
        ),
        (
            "global attributes file",
            "mkdir -p \"$HOME/.config/git\" && echo '* filter=evil' > \"$HOME/.config/git/attributes\" && \
             git config --global filter.evil.process \"sh -c 'touch $MARKER'\"",
        ),
        (
            "fsmonitor",
            "git config --global core.fsmonitor \"touch $MARKER; false\"",
        ),
        (
            "hooks path",
            "mkdir -p \"$HOME/hooks\" && printf '#!/bin/sh\\ntouch %s\\n' \"$MARKER\" > \"$HOME/hooks/reference-transaction\" && \
             chmod +x \"$HOME/hooks/reference-transaction\" && git config --global core.hooksPath \"$HOME/hooks\"",
        ),
    ];
    let mut failures = Vec::new();
    for (what, body) in cases {
        let p = Project::git();
        let marker = p.aux_path("marker");
        sh_agent(
            &p,
            &format!(
                "MARKER={}\necho change >> README.md\n{body}",
                path_str(&marker)
            ),
            "",
        );
        let toml = p
            .read("ralph.toml")
            .replace("max_iterations = 1", "max_iterations = 2");
        p.write("ralph.toml", &toml);
        p.git_cmd(&["commit", "-q", "-a", "-m", "two iterations"]);
        let out = p.run(&["run"]);
        // Checked before any git of the test's own runs: it would honour the agent's config.
        if marker.exists() {
            failures.push(format!(
                "{what}: ralph ran the agent's code\n{}",
                out.stderr
            ));
        }
        let rollback = p.run(&["rollback", "0"]);
        if marker.exists() {
            failures.push(format!(
                "{what}: rollback ran the agent's code\n{}",
                rollback.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
