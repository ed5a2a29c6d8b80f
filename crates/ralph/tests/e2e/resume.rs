//! Durable state and resume: `kill -9` at random moments never corrupts the database, never
//! loses a committed iteration, and repeats at most one iteration per crash.

use std::time::Duration;

use ralph_testkit::proc::kill;
use ralph_testkit::script::{ClaudeResult, Script, Step};

use crate::harness::*;

fn working(p: &Project) -> Script {
    Script::new()
        .log(p.aux_path("calls.log"))
        .default_steps(vec![
            Step::append("progress.txt", "step\n"),
            Step::sleep_ms(15),
            Step::claude_result(
                ClaudeResult::success("did a step")
                    .cost_usd(0.001)
                    .tokens(100, 10),
            ),
        ])
}

fn committed(p: &Project) -> Vec<u32> {
    p.iterations().into_iter().map(|i| i.0).collect()
}

/// A tiny deterministic generator; the seed is printed so a failure can be replayed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[test]
fn kill_9_at_random_moments_never_corrupts_or_loses_iterations() {
    let p = Project::git();
    p.configure(
        &working(&p),
        "claude-stream-json",
        "max_iterations = 100000",
        "",
    );
    let seed = std::env::var("RALPH_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::process::id() as u64 * 7919);
    eprintln!("seed {seed} (set RALPH_TEST_SEED to replay)");
    let mut rng = Lcg(seed);
    let kills = 25;
    let mut last_committed = 0usize;
    for round in 0..kills {
        let child = p.spawn(&["run"]);
        // Kill anywhere from start-up to several iterations in.
        std::thread::sleep(Duration::from_millis(rng.next(250)));
        kill(child.id() as i32, libc::SIGKILL).unwrap();
        let _ = wait_child(child, Duration::from_secs(30));
        if !p.exists(".ralph/ralph.db") {
            // Killed before it created its state: nothing to check this round.
            continue;
        }

        let db = p.db();
        let integrity: String = db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok", "round {round}");
        let runs: i64 = db
            .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
            .unwrap_or(0);
        assert!(
            runs <= 1,
            "round {round}: resume must continue the same run, found {runs} runs"
        );
        if runs == 0 {
            continue;
        }
        let ns = committed(&p);
        assert_eq!(
            ns,
            (1..=ns.len() as u32).collect::<Vec<_>>(),
            "round {round}: gaps in {ns:?}"
        );
        assert!(
            ns.len() >= last_committed,
            "round {round}: lost committed iterations"
        );
        last_committed = ns.len();
        // The run row agrees with its iterations.
        let (iteration, cost): (u32, f64) = db
            .query_row("SELECT iteration, cost_usd FROM runs", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert!(iteration as usize <= ns.len(), "round {round}");
        let _ = cost;
    }
    assert!(
        last_committed > 0,
        "no iteration was ever committed; the kills came too early"
    );

    // Let the run finish: the agent now completes at once.
    let done = Script::new()
        .log(p.aux_path("calls.log"))
        .default_steps(vec![Step::claude_result(
            ClaudeResult::success("finished\nLOOP_COMPLETE")
                .cost_usd(0.001)
                .tokens(100, 10),
        )]);
    p.script(&done);
    let out = p.run(&["run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let total = committed(&p).len();
    assert_eq!(total, last_committed + 1);
    let status = p.status_json();
    assert_eq!(status["iteration"], total);
    // A kill after the agent's result line and before the commit: that spend is recovered on
    // resume from the iteration's output, and counted once, as a side call.
    let recovered: i64 = p
        .db()
        .query_row(
            "SELECT COUNT(*) FROM side_calls WHERE kind LIKE 'interrupted.%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let recovered = recovered as usize;
    assert!(recovered <= kills);
    let cost = status["cost_usd"].as_f64().unwrap();
    assert!(
        (cost - 0.001 * (total + recovered) as f64).abs() < 1e-9,
        "cost {cost} for {total} iterations and {recovered} recovered"
    );
    assert_eq!(status["tokens"]["input"], 100 * (total + recovered));

    // Every agent call is either a committed iteration or one cut short by a kill.
    let calls = std::fs::read_to_string(p.aux_path("calls.log")).unwrap();
    let invocations = calls.lines().count();
    assert!(total + recovered <= invocations);
    assert!(
        invocations <= total + kills,
        "{invocations} agent calls for {total} iterations and {kills} kills"
    );
    // The progress file saw every call that got that far; no agent survived to write more.
    let steps = p.read("progress.txt").lines().count();
    assert!(steps <= invocations);
}

#[test]
fn resume_after_interrupt_carries_iteration_count_cost_and_time() {
    let p = Project::new();
    let script = Script::new()
        .default_steps(vec![Step::claude_result(
            ClaudeResult::success("step").cost_usd(0.01).tokens(10, 1),
        )])
        .on_call(
            3,
            vec![
                Step::pid_file(p.aux_path("agent.pid")),
                Step::sleep_ms(300),
                Step::hang(),
            ],
        )
        .on_call(
            4,
            vec![Step::claude_result(
                ClaudeResult::success("LOOP_COMPLETE")
                    .cost_usd(0.01)
                    .tokens(10, 1),
            )],
        );
    p.configure(&script, "claude-stream-json", "", "");
    let child = p.spawn(&["run"]);
    ralph_testkit::proc::wait_for_pid_file(p.aux_path("agent.pid"), Duration::from_secs(30))
        .unwrap();
    kill(child.id() as i32, libc::SIGINT).unwrap();
    let out = wait_child(child, Duration::from_secs(30));
    assert_eq!(out.code, 130, "{}", out.stderr);
    let before = p.status_json();
    assert_eq!(before["iteration"], 2);
    let run_id = before["run_id"].as_str().unwrap().to_string();
    let elapsed_before = before["elapsed_s"].as_f64().unwrap();
    assert!(elapsed_before > 0.0, "{elapsed_before}");

    // Iteration 3 was interrupted, so it runs again: this time the script's call 3 would hang
    // again, so point call 3 at completion.
    let script = Script::new().default_steps(vec![Step::claude_result(
        ClaudeResult::success("LOOP_COMPLETE")
            .cost_usd(0.01)
            .tokens(10, 1),
    )]);
    p.script(&script);
    let out = p.run(&["run", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let events = out.events();
    assert_eq!(events[0]["event"], "run.started");
    assert_eq!(events[0]["resumed"], true);
    assert_eq!(events[0]["iteration"], 2);
    let after = p.status_json();
    assert_eq!(after["run_id"], run_id.as_str());
    assert_eq!(after["iteration"], 3);
    assert!((after["cost_usd"].as_f64().unwrap() - 0.03).abs() < 1e-9);
    assert_eq!(after["tokens"]["input"], 30);
    assert!(after["elapsed_s"].as_f64().unwrap() >= elapsed_before);
    assert!(
        out.stderr
            .contains(&format!("resuming run {run_id} after iteration 2")),
        "{}",
        out.stderr
    );
}

#[test]
fn fresh_starts_a_new_run_and_finished_runs_are_not_resumed() {
    // The agent writes .ralph/STOP, which the sandbox keeps read-only to agents.
    let p = Project::new().without_sandbox();
    let script = Script::new().default_steps(vec![Step::print("step")]);
    p.configure_text(&script, "max_iterations = 2");
    assert_eq!(p.run(&["run"]).code, 3);
    let first = p.latest_run_id();
    // A run that hit its iteration limit is finished: the next `ralph run` starts a new one.
    assert_eq!(p.run(&["run"]).code, 3);
    let second = p.latest_run_id();
    assert_ne!(first, second);

    // An interrupted run is resumed unless --fresh.
    p.write(".ralph/STOP", "");
    let script = Script::new().default_steps(vec![Step::write(".ralph/STOP", "")]);
    p.script(&script);
    assert_eq!(p.run(&["run"]).code, 9);
    let stopped = p.latest_run_id();
    assert_eq!(p.run(&["run", "--max-iterations", "3"]).code, 9);
    assert_eq!(p.latest_run_id(), stopped, "a stopped run resumes");
    assert_eq!(p.status_json()["iteration"], 2);
    assert_eq!(p.run(&["run", "--fresh"]).code, 9);
    assert_ne!(p.latest_run_id(), stopped);
}

/// The crash-recovery test of the stories mode once saw a story run to its iteration limit:
/// each time ralph was killed after an iteration that completed the story but before the run's
/// end was written, the resumed run ran the agent again. A completed iteration is the end.
#[test]
fn a_run_killed_between_its_completing_iteration_and_its_end_resumes_as_completed() {
    let p = Project::git();
    let script = Script::new()
        .log(p.aux_path("calls.log"))
        .default_steps(vec![Step::print("done\nLOOP_COMPLETE")]);
    p.configure_text(&script, "max_iterations = 5");
    assert_eq!(p.run(&["run"]).code, 0);
    let run = p.latest_run_id();
    // The database as ralph leaves it when killed after the iteration's write and before the
    // run's: the iteration committed, the run still running.
    p.db()
        .execute(
            "UPDATE runs SET state = 'running', stop_reason = NULL, exit_code = NULL",
            [],
        )
        .unwrap();
    let out = p.run(&["run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("iteration 1 had finished the work"),
        "{}",
        out.stderr
    );
    assert_eq!(p.latest_run_id(), run, "the same run, resumed");
    let calls = std::fs::read_to_string(p.aux_path("calls.log")).unwrap();
    assert_eq!(calls.lines().count(), 1, "the agent ran again: {calls}");
    assert_eq!(p.status_json()["state"], "completed");
}
