//! Many loops in one process (`cargo bench -p ralph-core --bench many_loops`): what the stories
//! mode costs per loop.
//!
//! * overhead per iteration of each loop: 8 engines in one process, each running N iterations
//!   of an instant fake agent in its own directory, sharing one store writer; minus 8 bare
//!   loops (threads) running the same agent N times each, measured in the same run. Both run
//!   8 at once on the same cores, so the difference is ralph's own cost per iteration and
//!   loop, the serialised fsync'd commits included;
//! * peak RSS of the process running the 8 engines (a child process: VmHWM).
//!
//! Goals (issue "One engine, many loops"): ≤ 3 ms per iteration each, ≤ 20 MB RSS in total.
#![expect(clippy::unwrap_used, reason = "a benchmark fails by panicking")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ralph_agents::{builtin_backend, BackendConfig};
use ralph_core::{
    Agent, AgentSettings, Cancel, Deps, Engine, Handles, Limits, Loop, NullSink, PromptSource,
    RunScope, Settings, StopReason, SystemClock, TimeIds,
};
use ralph_store::Store;
use ralph_testkit::script::{Script, Step};

fn settings(root: &Path, script: &Path, n: u32) -> Settings {
    let agent = AgentSettings {
        backend: "custom".into(),
        model: None,
        args: Vec::new(),
        backend_config: backend_config(script),
    };
    let prompt = PromptSource::Text("Add a greeting to hello.txt.\nKeep it short.\n".into());
    let mut s = Settings::new(root.to_path_buf(), agent, prompt);
    s.limits = Limits {
        max_iterations: n,
        max_runtime: Duration::from_secs(3600),
        ..Limits::default()
    };
    s.checkpoint_every = 0;
    s.fresh = true;
    // As the CLI does: the environment's secrets are redacted on every sink.
    s.redactor = ralph_core::redact::Redactor::new(std::env::vars());
    s
}

fn backend_config(script: &Path) -> BackendConfig {
    BackendConfig {
        command: vec![
            ralph_testkit::fake_agent_path().display().to_string(),
            script.display().to_string(),
        ],
        ..BackendConfig::default()
    }
}

/// The child: run `loops` engines of `n` iterations in one process; print the wall time (ms).
fn child(dir: &Path, loops: usize, n: u32) {
    let script = dir.join("script.json");
    let state = dir.join(".ralph");
    std::fs::create_dir_all(&state).unwrap();
    let store = Store::open(&state.join("ralph.db")).unwrap();
    let deps = Deps {
        clock: Arc::new(SystemClock),
        ids: Arc::new(TimeIds::default()),
        seed: 1,
    };
    let handles = Handles::new(store, None, &state, deps);
    let rt = if std::env::var_os("BENCH_MT").is_some() {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let elapsed = rt.block_on(async {
        let cancel = Cancel::new();
        let start = Instant::now();
        let cpu_start = cpu_ms();
        let tasks: Vec<_> = (0..loops)
            .map(|i| {
                let work = dir.join(format!("w{i}"));
                let s = settings(dir, &script, n);
                let agent = Agent {
                    backend: builtin_backend("custom", &s.agent.backend_config).unwrap(),
                    model: None,
                };
                let lp = Loop {
                    settings: s,
                    agents: vec![agent],
                    scope: RunScope {
                        work_root: work,
                        story: Some(format!("S{i}")),
                        artifacts: None,
                        plan_run: None,
                        clean_at: None,
                        git_aliases: None,
                    },
                    git: None,
                    escalation: None,
                };
                let engine =
                    Engine::new(lp, handles.clone(), cancel.child(), Box::new(NullSink)).unwrap();
                tokio::spawn(engine.run())
            })
            .collect();
        for t in tasks {
            let s = t.await.unwrap().unwrap();
            assert_eq!(s.stop_reason, StopReason::MaxIterations, "{}", s.message);
            assert_eq!(s.run.iteration, n);
        }
        (start.elapsed(), cpu_ms() - cpu_start)
    });
    let (elapsed, cpu) = elapsed;
    println!("{} {cpu}", elapsed.as_secs_f64() * 1e3);
}

/// ralph's own CPU so far (ms): every thread of this process, not the agents. What each
/// iteration costs the machine, whatever else the machine is doing.
fn cpu_ms() -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

/// `loops` bare loops, one thread each, running the agent `n` times: the baseline.
fn bare(dir: &Path, loops: usize, n: u32) -> Duration {
    let script = dir.join("script.json");
    let start = Instant::now();
    let threads: Vec<_> = (0..loops)
        .map(|i| {
            let script = script.clone();
            let work = dir.join(format!("w{i}"));
            std::thread::spawn(move || {
                for it in 1..=n {
                    let st = Command::new(ralph_testkit::fake_agent_path())
                        .arg(&script)
                        .env("RALPH_ITERATION", it.to_string())
                        .current_dir(&work)
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .status()
                        .unwrap();
                    assert!(st.success());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    start.elapsed()
}

/// Run the child; its wall time (ms), its CPU time (ms) and peak RSS (KiB).
fn engines(dir: &Path, loops: usize, n: u32) -> (f64, f64, u64) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--child",
            &dir.display().to_string(),
            &loops.to_string(),
            &n.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut hwm = 0;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status) {
            if let Some(v) = s.lines().find(|l| l.starts_with("VmHWM:")) {
                hwm = v.split_whitespace().nth(1).unwrap().parse().unwrap();
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().unwrap());
    let (ms, cpu) = (fields.next().unwrap(), fields.next().unwrap());
    (ms, cpu, hwm)
}

fn project(tmp: &Path, loops: usize) -> PathBuf {
    let dir = tmp.join("p");
    for i in 0..loops {
        std::fs::create_dir_all(dir.join(format!("w{i}"))).unwrap();
    }
    Script::new()
        .default_steps(vec![
            Step::append("progress.txt", "step\n"),
            Step::print("did a step"),
        ])
        .write_to(dir.join("script.json"))
        .unwrap();
    dir
}

/// For `loops` loops of `n` iterations: the overhead per iteration of each loop (median of
/// `rounds`), ralph's CPU per iteration (median) and the peak RSS (KiB).
fn measure(loops: usize, n: u32, rounds: usize) -> (f64, f64, u64) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = project(tmp.path(), loops);
    // Warm the agent binary's pages and the file system outside the measurement.
    let _ = bare(&dir, loops, 2);
    let mut overheads = Vec::new();
    let mut cpus = Vec::new();
    let mut peak = 0;
    for _ in 0..rounds {
        let baseline = bare(&dir, loops, n).as_secs_f64() * 1e3;
        let (ms, cpu, hwm) = engines(&dir, loops, n);
        overheads.push((ms - baseline) / f64::from(n));
        cpus.push(cpu / f64::from(n) / loops as f64);
        peak = peak.max(hwm);
        println!(
            "  {loops} loop(s), one round: bare {:.2} ms, ralph {:.2} ms per iteration of each \
             loop; ralph's own CPU {:.2} ms per iteration",
            baseline / f64::from(n),
            ms / f64::from(n),
            cpu / f64::from(n) / loops as f64
        );
    }
    (median(&mut overheads), median(&mut cpus), peak)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        child(
            Path::new(&args[2]),
            args[3].parse().unwrap(),
            args[4].parse().unwrap(),
        );
        return;
    }
    // `cargo bench` passes --bench; `cargo test --benches` runs this too: keep that quick.
    let quick = !args.iter().any(|a| a == "--bench");
    let (n, rounds) = if quick { (5, 1) } else { (100, 3) };
    println!(
        "ralph many-loops benchmark ({} mode, {n} iterations per loop)",
        if quick { "quick" } else { "full" }
    );
    let (one, one_cpu, one_rss) = measure(1, n, rounds);
    let (eight, eight_cpu, eight_rss) = measure(8, n, rounds);
    println!(
        "  1 loop in one process:  ralph overhead {one:.2} ms per iteration (median of {rounds}), \
         ralph's CPU {one_cpu:.2} ms per iteration, peak RSS {:.1} MB",
        one_rss as f64 / 1024.0
    );
    println!(
        "  8 loops in one process: ralph overhead {eight:.2} ms per iteration of each loop \
         (median of {rounds}; goal <= 3 ms), ralph's CPU {eight_cpu:.2} ms per iteration, peak \
         RSS {:.1} MB in total (goal <= 20 MB)",
        eight_rss as f64 / 1024.0
    );
}
