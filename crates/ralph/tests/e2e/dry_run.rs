//! `ralph run --dry-run` prints exactly the command line and the environment that the real call
//! uses: both come from one function, and this checks it from the outside, against what the
//! agent recorded when it really ran.

use std::collections::BTreeMap;
use std::time::Duration;

use ralph_testkit::script::{ClaudeResult, Script, Step};
use ralph_testkit::Recording;

use crate::harness::*;

/// Split a line printed by `CommandSpec::display` back into words: POSIX single quotes and
/// `'\''` are the only quoting it writes.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut escaped = false;
    for c in line.chars() {
        if escaped {
            word.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            ' ' if !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            '\\' if !quoted => {
                escaped = true;
                in_word = true;
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[test]
fn shell_words_undo_the_quoting() {
    assert_eq!(
        shell_words("A='x y' prog -p 'it'\\''s' plain"),
        ["A=x y", "prog", "-p", "it's", "plain"]
    );
}

/// The environment assignments and the argv of the dry run's command line.
fn dry_run_command(stdout: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let line = stdout
        .lines()
        .skip_while(|l| !l.starts_with("--- agent command"))
        .nth(1)
        .expect("a command line after the header");
    let line = line.strip_suffix(" < prompt (on stdin)").unwrap_or(line);
    let mut env = BTreeMap::new();
    let mut argv = Vec::new();
    for w in shell_words(line) {
        match w.split_once('=') {
            Some((k, v))
                if argv.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c == '_') =>
            {
                env.insert(k.to_string(), v.to_string());
            }
            _ => argv.push(w),
        }
    }
    (env, argv)
}

#[test]
fn dry_run_prints_exactly_the_argv_and_environment_the_agent_gets() {
    let p = Project::new();
    p.write("PROMPT.md", "Make the tests pass.\n");
    p.write(
        "ralph.toml",
        &format!(
            "[agent]\nbackend = \"claude\"\nargs = [\"--extra\", \"two words\"]\n{}",
            p.sandbox_section()
        ),
    );
    let calls = p.aux_path("calls");
    let script = Script::new()
        .record(&calls)
        .default_steps(vec![Step::claude_result(ClaudeResult::success(
            "still working",
        ))])
        .on_call(
            1,
            vec![
                Step::wait_for_file(p.aux_path("go"), 20_000),
                Step::claude_result(ClaudeResult::success("one step done")),
            ],
        );
    let path = fake_claude(&p, &script);
    // A first run that stops on request after iteration 1, so the next one resumes it: the
    // dry run then knows the run id and iteration the real call will have.
    let child = p
        .ralph()
        .args(["run"])
        .env("PATH", &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the first agent call", Duration::from_secs(20), || {
        calls.join("1").exists()
    });
    assert_eq!(p.run(&["stop"]).code, 0);
    std::fs::write(p.aux_path("go"), "").unwrap();
    let first = wait_child(child, Duration::from_secs(30));
    assert_eq!(first.code, 9, "{}", first.stderr);

    let dry = p
        .ralph()
        .args(["run", "--dry-run", "--max-iterations", "2"])
        .env("PATH", &path)
        .output()
        .unwrap();
    let dry = Out::from(dry);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(!calls.join("2").exists(), "a dry run runs nothing");
    let (dry_env, dry_argv) = dry_run_command(&dry.stdout);

    let real = p
        .ralph()
        .args(["run", "--max-iterations", "2"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(Out::from(real).code, 3);
    let got = Recording::read(&calls.join("2")).unwrap();

    // The same program and every argument, in order: the deny list and agent.args included.
    assert_eq!(dry_argv[0], "claude");
    assert_eq!(&dry_argv[1..], got.args(), "argv");
    assert!(
        got.args().iter().any(|a| a == "--disallowedTools"),
        "{:?}",
        got.args()
    );
    // The same variables ralph sets, with the same values (run id, iteration, prompt file).
    // RALPH_HOME is the user's own setting (the harness sets it), passed through like the rest
    // of their environment, not something ralph adds.
    let mut real_env: BTreeMap<String, String> = got
        .ralph_env()
        .into_iter()
        .filter(|(k, _)| *k != "RALPH_HOME")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // And the sandbox's: the call's private temp dir, the same path the dry run named.
    for k in ["TMPDIR", "TMP", "TEMP"] {
        let v = got.env.get(k).cloned();
        real_env.insert(
            k.to_string(),
            v.unwrap_or_else(|| panic!("the call has no {k}")),
        );
    }
    // The supervision marker is one value per call: the dry run names it, the call has one.
    let marker = real_env
        .remove("RALPH_SUPERVISED")
        .expect("the call's marker");
    assert!(
        regex::Regex::new(r"^\d+:\d+$").unwrap().is_match(&marker),
        "{marker}"
    );
    let mut dry_env = dry_env;
    assert_eq!(
        dry_env.remove("RALPH_SUPERVISED").as_deref(),
        Some("<ralph-pid>:<call>")
    );
    assert_eq!(dry_env, real_env, "environment");
    assert_eq!(real_env["RALPH_ITERATION"], "2");
    assert_eq!(real_env["RALPH_RUN_ID"], p.latest_run_id());
    // And the prompt it printed is the one the agent read.
    let dry_prompt: String = dry
        .stdout
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("--- agent command"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(dry_prompt, got.stdin);
}
