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
             [loop]\nmax_iterations = 1\n\n[retry]\nbase_delay = \"0s\"\n\n{extra}\n\n\
             [sandbox]\nmode = \"off\"\n",
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
    let p = Project::git().without_sandbox();
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
        "{}\nHEAD: {}\nstash:\n{}",
        refs.join("\n"),
        std::fs::read_to_string(p.path(".git/HEAD"))
            .unwrap_or_default()
            .trim(),
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
        ("git switch -q -c elsewhere", "HEAD"),
        ("git symbolic-ref HEAD refs/heads/feature", "HEAD"),
        ("git branch -f feature HEAD~2", "refs/heads/feature"),
        (
            "git update-ref refs/heads/feature HEAD~2",
            "refs/heads/feature",
        ),
        ("git checkout -q -B main HEAD~1", "refs/heads/main"),
        ("git stash pop -q", "refs/stash"),
        ("git tag -d light", "refs/tags/light"),
        (
            "git rev-parse HEAD~1 > .git/refs/heads/feature.new && \
             mv .git/refs/heads/feature.new .git/refs/heads/main",
            "refs/heads/main",
        ),
        (
            "git checkout -q -b side HEAD~1 && echo x > side.txt && git add side.txt && \
             git commit -q -m side && git checkout -q main && git rebase -q side",
            "refs/heads/main",
        ),
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
        // With the refs back, the index is the user's again: nothing staged.
        let staged = p.git_cmd(&["diff", "--cached", "--name-status"]);
        // Branches the agent created stay: they are its own.
        let refs_now: String = user_refs(&p)
            .lines()
            .filter(|l| !l.starts_with("refs/heads/elsewhere") && !l.starts_with("refs/heads/side"))
            .map(|l| format!("{l}\n"))
            .collect();
        let refs_then: String = refs_before.lines().map(|l| format!("{l}\n")).collect();
        let ok = out.code == 6
            && refs_now == refs_then
            && staged.is_empty()
            && ralph_refs(&p).contains(&checkpoint0)
            && out.summary().contains(named)
            && out.summary().contains("put back as they were");
        if !ok {
            failures.push(format!(
                "{command:?}: exit {}\n{}\nstaged: {staged}\nrefs now:\n{}\nrefs before:\n{refs_before}",
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

    let bad = Project::git().without_sandbox();
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
        let p = Project::git().without_sandbox();
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

/// Item 4: damage to `.git` is found after the iteration, repaired where ralph can (never
/// through a symlink out of the repository), and where it cannot, said exactly so.
#[test]
fn damage_to_dot_git_is_repaired_or_told_truthfully() {
    let cases: &[(&str, &str, &str)] = &[
        ("truncate -s0 .git/HEAD", "damaged HEAD", "put back"),
        (
            ": > .git/HEAD && echo x > .git/refs/heads/main",
            "HEAD",
            "put back",
        ),
        (
            "git pack-refs --all && echo garbage >> .git/packed-refs",
            "packed-refs",
            "put back",
        ),
        (
            "git pack-refs --all && sed -i '/refs\\/heads\\/feature/d' .git/packed-refs",
            "deleted refs/heads/feature",
            "put back",
        ),
        (
            "echo '*.txt' >> .git/info/exclude",
            ".git/info/exclude",
            "restored",
        ),
        (
            "git pack-refs --all && mkdir -p ../outside-refs && rm -rf .git/refs && \
             ln -s \"$(cd ../outside-refs && pwd)\" .git/refs",
            "damaged refs/",
            "put back",
        ),
    ];
    let mut failures = Vec::new();
    for (command, named, fixed) in cases {
        let p = rich_repo();
        sh_agent(&p, command, "");
        let refs_before = user_refs(&p);
        let exclude_before = p.read(".git/info/exclude");
        let out = p.run(&["run"]);
        // Nothing is written through a symlinked `.git/refs`.
        let outside = p.root.parent().unwrap().join("outside-refs");
        let ok = out.code == 6
            && out.summary().contains(named)
            && out.summary().contains(fixed)
            && std::fs::read_dir(&outside).map_or(true, |mut d| d.next().is_none())
            && p.read(".git/HEAD") == "ref: refs/heads/main\n"
            && user_refs(&p) == refs_before
            && p.read(".git/info/exclude") == exclude_before;
        if !ok {
            failures.push(format!(
                "{command:?}: exit {}\n{}\n{}",
                out.code,
                out.summary(),
                user_refs(&p)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Item 4: `.git/hooks` replaced by a symlink to a directory outside the repository: the
/// symlink goes, the hooks come back, and nothing outside is touched.
#[test]
fn a_symlinked_hooks_directory_is_replaced_without_following_it() {
    let p = rich_repo();
    let outside = p.aux_path("evil-hooks");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("pre-commit"), "#!/bin/sh\ntouch /tmp/pwned\n").unwrap();
    std::fs::write(outside.join("victim.txt"), "keep\n").unwrap();
    p.write(".git/hooks/post-commit", "#!/bin/sh\nexit 0\n");
    sh_agent(
        &p,
        &format!(
            "rm -rf .git/hooks && ln -s {} .git/hooks",
            path_str(&outside)
        ),
        "",
    );
    let out = p.run(&["run"]);
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(out.summary().contains(".git/hooks"), "{}", out.summary());
    let hooks = p.path(".git/hooks");
    assert!(!hooks.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(p.read(".git/hooks/post-commit"), "#!/bin/sh\nexit 0\n");
    assert!(!p.exists(".git/hooks/pre-commit"));
    assert!(
        outside.join("pre-commit").exists(),
        "nothing outside is deleted"
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("victim.txt")).unwrap(),
        "keep\n"
    );
}

/// Item 4: a deleted or moved `.git` cannot be restored; ralph says what is lost, stops with
/// exit 6, and never claims it restored anything.
#[test]
fn a_deleted_or_moved_repository_is_told_as_lost() {
    for command in [
        "rm -rf .git",
        "python3 -c \"import shutil; shutil.rmtree('.git')\"",
        "mv .git ../moved-git",
    ] {
        let p = rich_repo();
        sh_agent(&p, command, "");
        let out = p.run(&["run"]);
        assert_eq!(out.code, 6, "{command}: {}", out.stderr);
        let summary = out.summary();
        assert!(
            summary.contains("deleted or moved the repository's git directory")
                && summary.contains("ralph cannot restore them"),
            "{command}: {summary}"
        );
        assert!(!summary.contains("put back"), "{command}: {summary}");
    }
}

/// Item 5: a deleted ref whose commit the agent also pruned cannot come back: ralph says so,
/// never "put back as they were".
#[test]
fn a_ref_whose_commit_is_gone_is_reported_not_restored() {
    let p = rich_repo();
    p.git_cmd(&["checkout", "-q", "--orphan", "lonely"]);
    p.write("lonely.txt", "alone\n");
    p.git_cmd(&["add", "lonely.txt"]);
    p.git_cmd(&["commit", "-q", "-m", "lonely"]);
    p.git_cmd(&["checkout", "-q", "-f", "main"]);
    p.git_cmd(&["clean", "-fdq"]);
    sh_agent(
        &p,
        "git branch -D lonely && git reflog expire --expire=now --all && \
         git -c gc.reflogExpire=now gc -q --prune=now",
        "",
    );
    let out = p.run(&["run"]);
    assert_eq!(out.code, 6, "{}", out.stderr);
    let summary = out.summary();
    assert!(
        summary.contains("refs/heads/lonely could NOT be put back")
            && summary.contains("is no longer in the repository"),
        "{summary}"
    );
    assert!(!summary.contains("put back as they were"), "{summary}");
    // The reflog expiry also pruned the older stash entry: said, and the list still works.
    assert!(
        summary.contains("stash entries' commits are no longer"),
        "{summary}"
    );
    p.git_cmd(&["stash", "list"]);
}

/// Item 18: an untracked file too large for checkpoints that the agent deleted or changed is
/// said on the iteration line and in the event, instead of "0 files changed".
#[test]
fn a_lost_file_too_large_for_checkpoints_is_said() {
    for (command, word) in [
        ("rm big.bin", "deleted"),
        ("echo more >> big.bin", "changed"),
    ] {
        let p = Project::git().without_sandbox();
        sh_agent(&p, command, "[git]\nmax_untracked_mb = 1\n");
        p.write("big.bin", &"x".repeat(2 * 1024 * 1024));
        let out = p.run(&["run"]);
        let line = out
            .stderr
            .lines()
            .find(|l| l.starts_with("[1/1]"))
            .unwrap_or_default()
            .to_string();
        assert!(
            line.contains("1 file cannot be restored") && line.contains("big.bin"),
            "{word}: {}",
            out.stderr
        );
        let json = p.run(&["logs", "--json"]);
        assert!(
            json.stdout.contains("\"unrestorable\":[\"big.bin\"]"),
            "{word}: {}",
            json.stdout
        );
    }
}

/// Item 16: a file whose name holds a newline (or a tab, or quotes) is checkpointed, counted
/// and restored like any other: every git output ralph parses for paths is NUL-separated.
#[test]
fn paths_with_newlines_are_checkpointed_and_restored() {
    let p = Project::git().without_sandbox();
    let tracked = "tracked\nname.txt";
    p.write(tracked, "before\n");
    p.write("say \"hi\"\tnow.txt", "before\n");
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-q", "-m", "odd names"]);
    sh_agent(
        &p,
        "printf 'after\\n' > \"$(printf 'tracked\\nname.txt')\" && \
         printf 'new\\n' > \"$(printf 'new\\nfile.txt')\" && \
         rm \"$(printf 'say \"hi\"\\tnow.txt')\"",
        "[git]\nmax_untracked_mb = 1\n",
    );
    p.write("big\nfile.bin", &"x".repeat(2 * 1024 * 1024));
    let out = p.run(&["run", "--json"]);
    let finished = out
        .events()
        .into_iter()
        .find(|e| e["event"] == "iteration.finished")
        .unwrap();
    assert_eq!(finished["files_changed"], 3, "{finished}");
    let run = p.latest_run_id();
    let listing = p.git_cmd(&[
        "ls-tree",
        "-r",
        "-z",
        "--name-only",
        &format!("refs/ralph/checkpoints/{run}/0001"),
    ]);
    let names: Vec<&str> = listing.split('\0').collect();
    assert!(names.contains(&"new\nfile.txt"), "{names:?}");
    assert!(
        !names.contains(&"big\nfile.bin"),
        "too large: left out, {names:?}"
    );
    assert_eq!(p.read(tracked), "after\n");
    // Listed one per line, the odd names quoted as git quotes them.
    let dry = p.run(&["rollback", "0", "--dry-run"]);
    for shown in [
        "would write   \"tracked\\nname.txt\"",
        "would write   \"say \\\"hi\\\"\\tnow.txt\"",
        "would delete  \"new\\nfile.txt\"",
    ] {
        assert!(dry.stdout.contains(shown), "{shown}: {}", dry.stdout);
    }
    let back = p.run(&["rollback", "0"]);
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert_eq!(p.read(tracked), "before\n");
    assert!(!p.exists("new\nfile.txt"), "the new file is deleted again");
    assert_eq!(p.read("say \"hi\"\tnow.txt"), "before\n");
}
