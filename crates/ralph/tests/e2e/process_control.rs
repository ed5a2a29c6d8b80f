//! Process groups, timeouts and signals: no agent process, child or grandchild, survives.

use std::time::{Duration, Instant};

use ralph_testkit::proc::{kill, wait_for_exit, wait_for_pid_file};
use ralph_testkit::script::{Script, SpawnGrandchild, Step};

use crate::harness::*;

const T: Duration = Duration::from_secs(30);

/// An agent that starts a grandchild holding its stdout, records both PIDs, and hangs,
/// optionally ignoring SIGTERM.
fn hanging(p: &Project, ignore_term: bool) -> Script {
    let mut steps = vec![];
    if ignore_term {
        steps.push(Step::ignore_sigterm());
    }
    let mut gc = SpawnGrandchild::new(p.aux_path("gc.pid")).hold_stdout();
    if ignore_term {
        gc = gc.ignore_sigterm();
    }
    steps.push(Step::spawn_grandchild(gc));
    steps.push(Step::pid_file(p.aux_path("agent.pid")));
    steps.push(Step::hang());
    Script::new().default_steps(steps)
}

fn pids(p: &Project) -> (i32, i32) {
    let agent = wait_for_pid_file(p.aux_path("agent.pid"), T).expect("agent pid");
    let gc = wait_for_pid_file(p.aux_path("gc.pid"), T).expect("grandchild pid");
    (agent, gc)
}

fn assert_all_gone(pids: &[i32]) {
    for &pid in pids {
        assert!(
            wait_for_exit(pid, Duration::from_secs(5)),
            "process {pid} survived ralph"
        );
    }
}

#[test]
fn sigint_stops_a_hanging_agent_and_its_grandchild_exit_130() {
    let p = Project::new();
    p.configure_text(&hanging(&p, false), "");
    let child = p.spawn(&["run"]);
    let ralph_pid = child.id() as i32;
    let (agent, gc) = pids(&p);
    kill(ralph_pid, libc::SIGINT).unwrap();
    let out = wait_child(child, T);
    assert_eq!(out.code, 130, "{}", out.stderr);
    assert!(out.summary().contains("interrupted"), "{}", out.stderr);
    assert!(out.summary().contains("0 iterations"), "{}", out.summary());
    assert_all_gone(&[agent, gc]);
    let status = p.status_json();
    assert_eq!(status["state"], "interrupted");
    assert_eq!(status["exit_code"], 130);
}

#[test]
fn sigint_with_an_agent_ignoring_sigterm_escalates_to_sigkill() {
    let p = Project::new();
    p.configure_text(&hanging(&p, true), "");
    let child = p.spawn(&["run"]);
    let (agent, gc) = pids(&p);
    kill(child.id() as i32, libc::SIGINT).unwrap();
    let out = wait_child(child, T);
    assert_eq!(out.code, 130, "{}", out.stderr);
    assert_all_gone(&[agent, gc]);
}

#[test]
fn a_second_ctrl_c_kills_at_once() {
    let p = Project::new();
    p.configure_text(&hanging(&p, true), "");
    let mut child = p.spawn(&["run"]);
    let (agent, gc) = pids(&p);
    let start = Instant::now();
    kill(child.id() as i32, libc::SIGINT).unwrap();
    // Like a person, press Ctrl-C again once ralph has said it is stopping (signals sent
    // back to back are coalesced by the OS into one).
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0,
            "{seen}"
        );
        seen.push_str(&line);
        if line.contains("press Ctrl-C again") {
            break;
        }
    }
    kill(child.id() as i32, libc::SIGINT).unwrap();
    let out = wait_child(child, T);
    assert_eq!(out.code, 130, "{}", out.stderr);
    // Well under the 3 s SIGTERM grace period the first Ctrl-C alone would wait.
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
    assert_all_gone(&[agent, gc]);
}

#[test]
fn sigterm_stops_gracefully_exit_143() {
    let p = Project::new();
    p.configure_text(&hanging(&p, false), "");
    let child = p.spawn(&["run"]);
    let (agent, gc) = pids(&p);
    kill(child.id() as i32, libc::SIGTERM).unwrap();
    let out = wait_child(child, T);
    assert_eq!(out.code, 143, "{}", out.stderr);
    assert!(out.summary().contains("terminated"), "{}", out.stderr);
    assert_all_gone(&[agent, gc]);
}

/// A run stopped by SIGHUP (the terminal closed) says SIGHUP, not SIGTERM.
#[test]
fn sighup_is_named_sighup() {
    let p = Project::new();
    p.configure_text(&hanging(&p, false), "");
    let child = p.spawn(&["run"]);
    let (agent, gc) = pids(&p);
    kill(child.id() as i32, libc::SIGHUP).unwrap();
    let out = wait_child(child, T);
    assert_eq!(out.code, 143, "{}", out.stderr);
    assert!(out.stderr.contains("SIGHUP"), "{}", out.stderr);
    assert!(!out.stderr.contains("SIGTERM"), "{}", out.stderr);
    assert_all_gone(&[agent, gc]);
}

#[test]
fn the_iteration_timeout_kills_the_whole_group() {
    let p = Project::new();
    p.configure_text(
        &hanging(&p, true),
        "max_iterations = 1\niteration_timeout = \"500ms\"",
    );
    let child = p.spawn(&["run"]);
    let (agent, gc) = pids(&p);
    let out = wait_child(child, T);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_all_gone(&[agent, gc]);
    assert_eq!(p.iterations()[0].2.as_deref(), Some("timeout"));
    assert!(
        out.stderr
            .contains("timeout (killed after the iteration timeout (500ms))"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_idle_timeout_kills_a_silent_agent() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![
        Step::print("thinking..."),
        Step::pid_file(p.aux_path("agent.pid")),
        Step::hang(),
    ]);
    p.configure_text(&script, "max_iterations = 1\nidle_timeout = \"400ms\"");
    let out = p.run(&["run"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(p.iterations()[0].2.as_deref(), Some("idle"));
    let agent = ralph_testkit::proc::read_pid_file(p.aux_path("agent.pid")).unwrap();
    assert_all_gone(&[agent]);
    let prompt2_feedback = p
        .db()
        .query_row("SELECT feedback FROM runs", [], |r| r.get::<_, String>(0))
        .unwrap();
    assert!(
        prompt2_feedback.contains("idle timeout"),
        "{prompt2_feedback}"
    );
}

#[test]
fn a_grandchild_holding_stdout_does_not_hang_the_iteration() {
    let p = Project::new();
    // The agent exits at once, but its grandchild keeps the stdout pipe open forever.
    let script = Script::new().default_steps(vec![
        Step::spawn_grandchild(
            SpawnGrandchild::new(p.aux_path("gc.pid"))
                .hold_stdout()
                .ignore_sigterm(),
        ),
        Step::print("LOOP_COMPLETE"),
    ]);
    p.configure_text(&script, "");
    let start = Instant::now();
    let out = p.run(&["run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let gc = ralph_testkit::proc::read_pid_file(p.aux_path("gc.pid")).unwrap();
    assert_all_gone(&[gc]);
}

#[test]
fn kill_9_of_ralph_takes_the_agent_and_its_grandchild_down_with_it() {
    for _ in 0..5 {
        let p = Project::new();
        p.configure_text(&hanging(&p, true), "");
        let child = p.spawn(&["run"]);
        let (agent, gc) = pids(&p);
        kill(child.id() as i32, libc::SIGKILL).unwrap();
        let _ = wait_child(child, T);
        assert_all_gone(&[agent, gc]);
    }
}

#[test]
fn kill_9_during_a_gate_takes_the_gate_down_too() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![Step::print("LOOP_COMPLETE")]);
    let gate = format!(
        "[[gates]]\nname = \"slow\"\nrun = \"sh -c 'echo $$ > {}; exec sleep 600' & echo $! > {}; wait\"\n",
        p.aux_path("inner.pid").display(),
        p.aux_path("outer.pid").display()
    );
    p.configure(&script, "text", "", &gate);
    let child = p.spawn(&["run"]);
    let inner = wait_for_pid_file(p.aux_path("inner.pid"), T).unwrap();
    kill(child.id() as i32, libc::SIGKILL).unwrap();
    let _ = wait_child(child, T);
    assert_all_gone(&[inner]);
}

#[test]
fn agent_output_artifacts_and_environment() {
    let p = Project::new();
    let script = Script::new().default_steps(vec![
        Step::print("to stdout"),
        Step::stderr("to stderr"),
        Step::env_to_file(
            p.aux_path("env.json"),
            &[
                "RALPH_RUN_ID",
                "RALPH_ITERATION",
                "RALPH_PROMPT_FILE",
                "RALPH_WORKSPACE",
            ],
        ),
        Step::print("LOOP_COMPLETE"),
    ]);
    p.configure_text(&script, "");
    let out = p.run(&["run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(p.artifact(1, "output.log"), "to stdout\nLOOP_COMPLETE\n");
    assert_eq!(p.artifact(1, "stderr.log"), "to stderr\n");
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.aux_path("env.json")).unwrap()).unwrap();
    let run = p.latest_run_id();
    assert_eq!(env["RALPH_RUN_ID"], run.as_str());
    assert_eq!(env["RALPH_ITERATION"], "1");
    let prompt_file = env["RALPH_PROMPT_FILE"].as_str().unwrap();
    assert!(
        prompt_file.ends_with(&format!(".ralph/runs/{run}/0001/prompt.md")),
        "{prompt_file}"
    );
    assert_eq!(
        std::fs::read_to_string(prompt_file).unwrap(),
        p.artifact(1, "prompt.md")
    );
    assert_eq!(env["RALPH_WORKSPACE"], path_str(&p.root).as_str());
}

/// Issue 9, item 11: a descendant that called `setsid` left the agent's process group, so
/// killing the group missed it; it outlived the iteration and ralph.
#[test]
fn a_setsid_descendant_dies_with_its_iteration() {
    let p = Project::new();
    let pid_file = path_str(&p.aux_path("setsid.pid"));
    let seen = path_str(&p.aux_path("seen-in-2"));
    let script = Script::new()
        .on_call(
            1,
            vec![
                Step::shell(format!(
                    "setsid sh -c 'echo $$ > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; exec sleep 300' \
                     </dev/null >/dev/null 2>&1 &"
                )),
                Step::wait_for_file(p.aux_path("setsid.pid"), 10_000),
                Step::print("started a server"),
            ],
        )
        .on_call(
            2,
            vec![
                // What iteration 2 sees of iteration 1's daemon.
                Step::shell(format!(
                    "if kill -0 $(cat {pid_file}) 2>/dev/null; then echo alive > {seen}; \
                     else echo gone > {seen}; fi"
                )),
                Step::print("LOOP_COMPLETE"),
            ],
        );
    p.configure_text(&script, "max_iterations = 3");
    let out = p.run(&["run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(p.aux_path("seen-in-2"))
            .unwrap()
            .trim(),
        "gone",
        "iteration 1's setsid daemon was still running in iteration 2"
    );
    let pid: i32 = p.read_aux("setsid.pid").trim().parse().unwrap();
    assert_all_gone(&[pid]);
}

/// A descendant that also cleared its environment carries no marker: it may outlive its
/// iteration, but never ralph (which, as a child subreaper, became its parent).
#[test]
fn a_setsid_descendant_without_an_environment_dies_with_ralph() {
    let p = Project::new();
    let pid_file = path_str(&p.aux_path("bare.pid"));
    let script = Script::new().on_call(
        1,
        vec![
            Step::shell(format!(
                "env -i /usr/bin/setsid /bin/sh -c 'echo $$ > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; exec sleep 300' \
                 </dev/null >/dev/null 2>&1 &"
            )),
            Step::wait_for_file(p.aux_path("bare.pid"), 10_000),
            Step::print("LOOP_COMPLETE"),
        ],
    );
    p.configure_text(&script, "max_iterations = 2");
    let out = p.run(&["run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let pid: i32 = p.read_aux("bare.pid").trim().parse().unwrap();
    assert_all_gone(&[pid]);
}

/// Even when ralph is SIGKILLed, its guardian ends what left the agent's process group.
#[test]
fn a_setsid_descendant_dies_when_ralph_is_killed() {
    let p = Project::new();
    let pid_file = path_str(&p.aux_path("daemon.pid"));
    let script = Script::new().on_call(
        1,
        vec![
            Step::shell(format!(
                "setsid sh -c 'echo $$ > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; exec sleep 300' \
                 </dev/null >/dev/null 2>&1 &"
            )),
            Step::wait_for_file(p.aux_path("daemon.pid"), 10_000),
            Step::pid_file(p.aux_path("agent.pid")),
            Step::hang(),
        ],
    );
    p.configure_text(&script, "");
    let child = p.spawn(&["run"]);
    let ralph = child.id() as i32;
    let agent = wait_for_pid_file(p.aux_path("agent.pid"), T).expect("agent pid");
    let daemon: i32 = p.read_aux("daemon.pid").trim().parse().unwrap();
    kill(ralph, libc::SIGKILL).unwrap();
    let _ = wait_child(child, T);
    assert_all_gone(&[agent, daemon]);
}
