//! ralph's own cost, measured against an instant fake agent (`cargo bench -p ralph`).
//!
//! * overhead per iteration: (ralph's wall time for N iterations − N × the agent's own run
//!   time measured in the same process) / N, with and without a git checkpoint per iteration;
//!   it includes the durable (fsync'd) SQLite commit of every iteration;
//! * start to first agent spawn: when the agent started under ralph, minus when the bench
//!   started ralph, minus the agent's own exec-to-first-step time measured directly;
//! * peak RSS of the ralph process (VmHWM) while the agent prints 10 MB and 1 GB.
//!
//! Goals (issue #2): ≤ 10 ms per iteration, ≤ 5 ms to the first spawn, ≤ 10 MB peak RSS and
//! flat with output volume.
#![expect(clippy::unwrap_used, reason = "a benchmark fails by panicking")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ralph_testkit::script::{Script, Step};

const RALPH: &str = env!("CARGO_BIN_EXE_ralph");

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

struct Proj {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    aux: PathBuf,
}

fn project(git: bool, script: &Script, extra_loop: &str) -> Proj {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("p");
    let aux = tmp.path().join("aux");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&aux).unwrap();
    let sp = aux.join("script.json");
    script.write_to(&sp).unwrap();
    std::fs::write(
        root.join("PROMPT.md"),
        "Add a greeting to hello.txt.\nKeep it short.\nRun the tests.\n",
    )
    .unwrap();
    std::fs::write(
        root.join("ralph.toml"),
        format!(
            "[agent]\nbackend = \"custom\"\ncommand = [{:?}, {:?}]\n\n[loop]\n{extra_loop}\n\n\
             [sandbox]\nwritable = [{:?}]\n",
            ralph_testkit::fake_agent_path().display().to_string(),
            sp.display().to_string(),
            // The agent's timestamps go beside the project.
            aux.display().to_string()
        ),
    )
    .unwrap();
    if git {
        for args in [
            &["init", "-q"][..],
            &["add", "-A"],
            &[
                "-c",
                "user.name=b",
                "-c",
                "user.email=b@b",
                "commit",
                "-qm",
                "init",
            ],
        ] {
            assert!(Command::new("git")
                .args(args)
                .current_dir(&root)
                .status()
                .unwrap()
                .success());
        }
    }
    Proj {
        _tmp: tmp,
        root,
        aux,
    }
}

fn ralph(p: &Proj, args: &[&str]) -> Command {
    let mut c = Command::new(RALPH);
    c.args(args)
        .current_dir(&p.root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// Time to run the agent directly (spawn, run the script, exit), per call.
fn agent_alone(p: &Proj, n: u32) -> Duration {
    let sp = p.aux.join("script.json");
    let start = Instant::now();
    for i in 1..=n {
        let st = Command::new(ralph_testkit::fake_agent_path())
            .arg(&sp)
            .env("RALPH_ITERATION", i.to_string())
            .current_dir(&p.root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    }
    start.elapsed() / n
}

fn loop_overhead(git: bool, n: u32, sandbox: &str) -> (f64, f64) {
    // A real step of work each time: an agent that changes nothing would (rightly) be stopped
    // by the stuck detector long before the iteration limit.
    let script = Script::new().default_steps(vec![
        Step::append("progress.txt", "step\n"),
        Step::print("did a step"),
    ]);
    let checkpoint = if git { 1 } else { 0 };
    let p = project(git, &script, &format!("max_iterations = {n}"));
    // Warm caches (binary pages, git objects) outside the measurement.
    let _ = agent_alone(&p, 5);
    let per_agent = agent_alone(&p, n);
    let start = Instant::now();
    let st = ralph(
        &p,
        &[
            "run",
            "--fresh",
            "--checkpoint-every",
            &checkpoint.to_string(),
            "--sandbox",
            sandbox,
        ],
    )
    .status()
    .unwrap();
    let total = start.elapsed();
    assert_eq!(st.code(), Some(3), "expected the iteration limit");
    let per_iter = total / n;
    let overhead = per_iter.as_secs_f64() - per_agent.as_secs_f64();
    (per_iter.as_secs_f64() * 1e3, overhead * 1e3)
}

/// `warm`: measure a later run in the project (its state database already exists) rather than
/// the very first one, which also creates `.ralph/` and the database schema.
fn first_spawn(git: bool, warm: bool, runs: u32) -> f64 {
    let mut samples = Vec::new();
    for _ in 0..runs {
        let p = project(git, &Script::new(), "");
        let ts = tempfile::NamedTempFile::new_in(&p.aux).unwrap();
        let script = Script::new().default_steps(vec![
            Step::timestamp(ts.path()),
            Step::print("LOOP_COMPLETE"),
        ]);
        script.write_to(p.aux.join("script.json")).unwrap();
        // The agent's own exec-to-first-step time, measured the same way.
        let t0 = now_nanos();
        Command::new(ralph_testkit::fake_agent_path())
            .arg(p.aux.join("script.json"))
            .current_dir(&p.root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        let direct = read_last(ts.path()) - t0;
        if warm {
            assert_eq!(ralph(&p, &["run"]).status().unwrap().code(), Some(0));
        }
        let t0 = now_nanos();
        let st = ralph(&p, &["run", "--fresh"]).status().unwrap();
        assert_eq!(st.code(), Some(0));
        let via_ralph = read_last(ts.path()) - t0;
        samples.push((via_ralph as f64 - direct as f64) / 1e6);
    }
    median(&mut samples)
}

fn read_last(p: &Path) -> u128 {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Peak RSS (KiB) of the ralph process while the agent prints `bytes`, and the wall time.
fn peak_rss(bytes: u64) -> (u64, f64) {
    let script = Script::new().default_steps(vec![
        Step::print_bytes(bytes, 100),
        Step::print("LOOP_COMPLETE"),
    ]);
    let p = project(false, &script, "");
    let start = Instant::now();
    let mut child = ralph(&p, &["run"]).spawn().unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut hwm = 0;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_path) {
            if let Some(v) = s.lines().find(|l| l.starts_with("VmHWM:")) {
                hwm = v.split_whitespace().nth(1).unwrap().parse().unwrap();
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            assert_eq!(st.code(), Some(0));
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let secs = start.elapsed().as_secs_f64();
    let out = std::fs::metadata(p.root.join(".ralph/runs")).is_ok();
    assert!(out);
    (hwm, secs)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this too: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = if quick { 10 } else { 200 };
    println!(
        "ralph loop benchmark ({} mode, {n} iterations)",
        if quick { "quick" } else { "full" }
    );

    let (per_iter, overhead) = loop_overhead(false, n, "workspace");
    println!("  no git:     {per_iter:7.2} ms per iteration, ralph overhead {overhead:6.2} ms (goal <= 10 ms)");
    let (_, overhead_off) = loop_overhead(false, n, "off");
    println!(
        "  no git, --sandbox off: ralph overhead {overhead_off:6.2} ms: the sandbox costs {:.2} ms per iteration",
        overhead - overhead_off
    );
    let (per_iter_git, overhead_git) = loop_overhead(true, n, "workspace");
    println!("  checkpoint: {per_iter_git:7.2} ms per iteration, ralph overhead {overhead_git:6.2} ms (incl. a git checkpoint each)");

    let runs = if quick { 3 } else { 15 };
    let fs = first_spawn(false, false, runs);
    println!("  start to first agent spawn: {fs:6.2} ms, median of {runs} (goal <= 5 ms; first run in a project: creates the database; no git)");
    let fs_warm = first_spawn(false, true, runs);
    println!("  start to first agent spawn: {fs_warm:6.2} ms, median of {runs} (a later run in the same project; no git)");
    let fs_git = first_spawn(true, true, runs);
    println!("  start to first agent spawn: {fs_git:6.2} ms, median of {runs} (git repository: incl. the iteration-0 checkpoint)");

    let (rss_small, _) = peak_rss(10_000_000);
    let big = if quick { 100_000_000 } else { 1_000_000_000 };
    let (rss_big, secs) = peak_rss(big);
    println!(
        "  peak RSS: {:.1} MB with 10 MB of agent output, {:.1} MB with {} MB ({:.0} MB/s through ralph) (goal <= 10 MB, flat)",
        rss_small as f64 / 1024.0,
        rss_big as f64 / 1024.0,
        big / 1_000_000,
        big as f64 / 1e6 / secs
    );
}
