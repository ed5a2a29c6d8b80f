//! The sandbox's promises besides the corpus: fail-closed, the work root as a parameter, strict
//! mode, and gates.

use ralph_testkit::fake_agent_path;
use ralph_testkit::script::{Script, Step};

use crate::harness::*;

/// `ralph.toml` for the fake agent running `steps` on every call, text output, with `extra`.
fn config(p: &Project, steps: Vec<Step>, extra: &str) {
    let sp = p.script(&Script::new().default_steps(steps));
    p.write(
        "ralph.toml",
        &format!(
            "[agent]\nbackend = \"custom\"\ncommand = [{:?}, {:?}]\noutput = \"text\"\n\n\
             [loop]\nmax_iterations = 1\n\n{extra}\n",
            fake_agent_path().display().to_string(),
            sp.display().to_string()
        ),
    );
    p.write("PROMPT.md", "Work.\n");
}

#[test]
fn required_on_a_kernel_that_cannot_enforce_refuses_and_runs_nothing() {
    let p = Project::new();
    let ran = p.aux_path("agent-ran");
    config(
        &p,
        vec![Step::shell(format!("touch {}", ran.display()))],
        "[sandbox]\nmode = \"workspace\"\nrequired = true\n",
    );
    let out = Out::from(
        p.ralph()
            .arg("run")
            .env("RALPH_TEST_SANDBOX_LANDLOCK_ABI", "0")
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 8, "{}", out.stderr);
    assert!(out.stderr.contains("Landlock"), "{}", out.stderr);
    assert!(
        out.stderr.contains("hint:"),
        "the fix is given: {}",
        out.stderr
    );
    assert!(!ran.exists(), "the agent ran");
    assert!(!p.exists(".ralph/ralph.db"), "a run was recorded");
}

#[test]
fn not_required_warns_once_records_it_and_runs_unsandboxed() {
    let p = Project::new();
    let outside = p.aux_path("written-outside");
    config(
        &p,
        vec![Step::shell(format!("echo x > {}", outside.display()))],
        "[sandbox]\nmode = \"workspace\"\n",
    );
    let toml = p
        .read("ralph.toml")
        .replace("max_iterations = 1", "max_iterations = 2");
    p.write("ralph.toml", &toml);
    let out = Out::from(
        p.ralph()
            .arg("run")
            .env("RALPH_TEST_SANDBOX_LANDLOCK_ABI", "0")
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    let warnings: Vec<_> = out
        .stderr
        .lines()
        .filter(|l| l.contains("warning: sandbox:"))
        .collect();
    assert_eq!(warnings.len(), 1, "warned once, loudly: {}", out.stderr);
    assert!(warnings[0].contains("without a sandbox"), "{}", warnings[0]);
    assert!(outside.exists(), "unsandboxed, as the warning says");
    let audit = p.read(".ralph/audit.jsonl");
    let rec = audit
        .lines()
        .find(|l| l.contains("\"sandbox.unenforced\""))
        .unwrap_or_else(|| panic!("no sandbox.unenforced record: {audit}"));
    assert!(rec.contains("Landlock"), "{rec}");
    let status = p.status_json();
    assert_eq!(status["sandbox"], "off", "{status}");
    assert!(
        status["sandbox_gaps"]
            .as_array()
            .is_some_and(|g| g.len() == 1),
        "{status}"
    );
}

#[test]
fn a_linked_worktree_as_the_root_is_writable_and_its_main_checkout_is_not() {
    let p = Project::git();
    let wt = p.aux_path("wt");
    p.git_cmd(&["worktree", "add", "-q", "-b", "story", wt.to_str().unwrap()]);
    let main_readme = p.path("README.md");
    let before = std::fs::read(&main_readme).unwrap();
    let cmds = [
        "echo done > work.txt".to_string(),
        format!("echo evil >> {}", main_readme.display()),
        format!("echo evil > {}/planted.txt", p.root.display()),
        format!("rm -f {}", main_readme.display()),
        "git add work.txt && git -c user.name=a -c user.email=a@a commit -qm work".to_string(),
    ];
    let steps = cmds.iter().map(Step::shell).collect();
    let sp = p.script(&Script::new().default_steps(steps));
    std::fs::write(
        wt.join("ralph.toml"),
        format!(
            "[agent]\nbackend = \"custom\"\ncommand = [{:?}, {:?}]\noutput = \"text\"\n\n\
             [loop]\nmax_iterations = 1\n\n[git]\ncheckpoint_every = 0\n\n\
             [sandbox]\nmode = \"workspace\"\nrequired = true\n",
            fake_agent_path().display().to_string(),
            sp.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(wt.join("PROMPT.md"), "Work.\n").unwrap();
    let out = Out::from(p.ralph().current_dir(&wt).arg("run").output().unwrap());
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(wt.join("work.txt")).unwrap(),
        "done\n"
    );
    assert_eq!(
        std::fs::read(&main_readme).unwrap(),
        before,
        "the main checkout changed"
    );
    assert!(
        !p.exists("planted.txt"),
        "a file was planted in the main checkout"
    );
    // Commits in the worktree still work: its git dir, objects and refs are its own to write.
    let log = p.git_cmd(&["log", "--format=%s", "story", "-1"]);
    assert_eq!(log.trim(), "work", "{}", out.stderr);
}

#[test]
fn strict_limits_reads_and_keeps_git_read_only() {
    let p = Project::git();
    std::fs::write(p.home.join("secret.txt"), "the user's secret\n").unwrap();
    std::fs::write(p.aux_path("other-project.txt"), "another project\n").unwrap();
    let leak = "leaked.txt";
    let cmds = [
        format!("cat {}/secret.txt >> {leak}", p.home.display()),
        format!(
            "cat {} >> {leak}",
            p.aux_path("other-project.txt").display()
        ),
        "cat README.md > copy.txt".to_string(),
        "git -c user.name=a -c user.email=a@a commit -qam agent".to_string(),
        "ls /usr/bin > /dev/null && echo tools-ok > tools.txt".to_string(),
    ];
    config(
        &p,
        cmds.iter().map(Step::shell).collect(),
        "[git]\ncheckpoint_every = 0\n\n[sandbox]\nmode = \"strict\"\nrequired = true\n",
    );
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-q", "-m", "config"]);
    let head = p.git_cmd(&["rev-parse", "HEAD"]);
    let out = p.run(&["run"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("sandbox: strict"), "{}", out.stderr);
    assert_eq!(p.read("copy.txt"), "hello\n", "the project is readable");
    assert_eq!(
        p.read("tools.txt"),
        "tools-ok\n",
        "system directories are readable"
    );
    let leaked = std::fs::read_to_string(p.path(leak)).unwrap_or_default();
    assert!(
        !leaked.contains("secret") && !leaked.contains("another"),
        "{leaked}"
    );
    assert_eq!(p.git_cmd(&["rev-parse", "HEAD"]), head, ".git was written");
}

#[test]
fn gates_run_sandboxed_and_their_refusals_are_named() {
    let p = Project::new();
    let outside = p.aux_path("gate-wrote-here");
    config(
        &p,
        vec![Step::print("LOOP_COMPLETE")],
        &format!(
            "[sandbox]\nmode = \"workspace\"\n\n\
             [[gates]]\nname = \"escape\"\nrun = \"echo x > {} ; echo ok > gate-ran.txt\"\n",
            outside.display()
        ),
    );
    let out = p.run(&["run", "--json"]);
    assert!(p.exists("gate-ran.txt"), "{}", out.stderr);
    assert!(!outside.exists(), "the gate wrote outside the project");
    let denied: Vec<_> = out
        .events()
        .into_iter()
        .filter(|e| e["event"] == "sandbox.denied")
        .collect();
    assert!(
        denied.iter().any(|e| e["call"] == "gate:escape"
            && e["what"].as_str().unwrap_or("").contains("gate-wrote-here")),
        "{denied:?}"
    );
}

/// The implicit default (no `mode`) is the workspace sandbox plus the system's temp directory,
/// as Codex's workspace-write: scripts that write `/tmp` by name keep working. Asked for by
/// name, `mode = "workspace"` keeps `/tmp` out (the escape corpus checks that).
#[test]
fn the_default_sandbox_lets_the_agent_write_tmp_and_nothing_else_outside() {
    let p = Project::new();
    let tag = std::process::id();
    let in_tmp = std::path::PathBuf::from(format!("/tmp/ralph-default-tmp-{tag}"));
    // Not under /tmp (the tests' HOME is): outside the project and the temp dirs.
    let elsewhere = std::path::PathBuf::from(format!("/var/tmp/ralph-default-{tag}"));
    let _ = std::fs::remove_file(&in_tmp);
    config(
        &p,
        vec![
            Step::shell(format!("echo x > {}", in_tmp.display())),
            Step::shell(format!("echo x > {} || true", elsewhere.display())),
            Step::print("LOOP_COMPLETE"),
        ],
        "",
    );
    let out = p.run(&["run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        in_tmp.exists(),
        "the agent could not write /tmp: {}",
        out.stderr
    );
    let _ = std::fs::remove_file(&in_tmp);
    let escaped = elsewhere.exists();
    let _ = std::fs::remove_file(&elsewhere);
    assert!(
        !escaped,
        "the agent wrote /var/tmp under the default sandbox"
    );
}

/// The outside-in `safety-git` check found this: with the sandbox on, an agent deleting
/// `ralph.toml` was refused by the kernel and the loop simply went on to its iteration limit
/// (exit 3); the attempt on a protected path is a safety stop, as the change would have been.
#[test]
fn an_attempt_on_a_protected_path_that_the_sandbox_refused_is_a_safety_stop() {
    let p = Project::git();
    config(
        &p,
        vec![
            Step::shell("rm -f -- ralph.toml || true"),
            Step::print("LOOP_COMPLETE"),
        ],
        "",
    );
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-q", "-m", "config"]);
    let before = p.read("ralph.toml");
    let out = p.run(&["run"]);
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("tried to change protected path ralph.toml")
            && out.stderr.contains("the sandbox refused it"),
        "{}",
        out.stderr
    );
    assert_eq!(p.read("ralph.toml"), before);
}
