//! The stories mode through the real binary (`cargo bench -p ralph --bench stories`):
//!
//! * makespan: the 16-story sample plan (`ralph_stories::sample::mixed16`, seed 42) with
//!   sleeping fake agents of known durations (0.2–2 s), `--parallel 4`, against the lower
//!   bound max(critical path, total work / 4): printed as that ratio (goal <= 1.05);
//! * ralph's own cost per story in a 10,000-file repository, agent excluded (worktree, ralph's
//!   commit, candidate, merge, ref update, bookkeeping): (running → merged) minus the agent's
//!   own time, median (goal <= 250 ms);
//! * ralph's peak RSS (VmHWM) with 8 stories running at once (goal <= 25 MB);
//! * pre-merge gate runs per merged story with a slow gate and nothing failing (goal < 1).
#![expect(clippy::unwrap_used, reason = "a benchmark fails by panicking")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ralph_testkit::script::{Script, Step};

const RALPH: &str = env!("CARGO_BIN_EXE_ralph");

struct Proj {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    aux: PathBuf,
}

fn git(root: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args(["-c", "user.name=b", "-c", "user.email=b@b"])
        .args(args)
        .current_dir(root)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

/// A repository with `files` files and a ralph.toml whose agent runs `script`.
fn project(files: usize, script: &Script, gates: &str) -> Proj {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("p");
    let aux = tmp.path().join("aux");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&aux).unwrap();
    for i in 0..files {
        let dir = root.join(format!("d{:03}", i / 100));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{i}.txt")), format!("file {i}\n")).unwrap();
    }
    std::fs::write(root.join(".gitignore"), "/.ralph/\n").unwrap();
    let sp = aux.join("script.json");
    script.write_to(&sp).unwrap();
    std::fs::write(
        root.join("ralph.toml"),
        format!(
            "[agent]\nbackend = \"custom\"\ncommand = [{:?}, {:?}]\n\n[loop]\nmax_iterations = 3\n\n\
             {gates}\n[sandbox]\nwritable = [{:?}]\n",
            ralph_testkit::fake_agent_path().display().to_string(),
            sp.display().to_string(),
            aux.display().to_string()
        ),
    )
    .unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-qm", "init"]);
    Proj {
        _tmp: tmp,
        root,
        aux,
    }
}

/// The agent: records its own start and end, sleeps `dur-<story>` seconds if that file
/// exists, writes its story's file, claims completion.
fn agent(aux: &Path) -> Script {
    let a = aux.display();
    Script::new().default_steps(vec![
        Step::shell(format!(
            "date +%s.%N > {a}/$RALPH_STORY_ID.start; \
             [ -f {a}/dur-$RALPH_STORY_ID ] && sleep $(cat {a}/dur-$RALPH_STORY_ID); \
             mkdir -p src; echo $RALPH_STORY_ID > src/$RALPH_STORY_ID.txt; \
             date +%s.%N > {a}/$RALPH_STORY_ID.end"
        )),
        Step::print("LOOP_COMPLETE"),
    ])
}

fn plan_toml(plan: &ralph_stories::Plan) -> String {
    let mut t = format!("version = 1\nname = \"{}\"\n\n", plan.name);
    for s in &plan.stories {
        let deps: Vec<String> = s.depends_on.iter().map(|d| format!("{d:?}")).collect();
        let paths: Vec<String> = s.affected_paths.iter().map(|p| format!("{p:?}")).collect();
        t.push_str(&format!(
            "[[story]]\nid = {:?}\ntitle = {:?}\ndepends_on = [{}]\naffected_paths = [{}]\n\
             description = \"Write src/{}.txt.\"\n\n",
            s.id,
            s.id,
            deps.join(", "),
            paths.join(", "),
            s.id
        ));
    }
    t
}

fn plan_of(ids: &[String]) -> ralph_stories::Plan {
    let stories = ids
        .iter()
        .map(|id| ralph_stories::sample::story(id, &[], &[]))
        .collect();
    ralph_stories::sample::plan("bench", stories)
}

fn run(p: &Proj, args: &[&str]) -> (i32, String) {
    let out = Command::new(RALPH)
        .args(args)
        .current_dir(&p.root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn read_f64(path: &Path) -> f64 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// RFC 3339 with fractional seconds to seconds since the epoch (UTC, as ralph writes them).
fn ts(s: &str) -> f64 {
    let out = Command::new("date")
        .args(["-d", s, "+%s.%N"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Each story's (running, merged) moments from `--json` events.
fn story_spans(events: &str) -> Vec<(String, f64, f64)> {
    let mut start = std::collections::HashMap::new();
    let mut out = Vec::new();
    for line in events.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["event"] != "story.state" {
            continue;
        }
        let id = v["story_id"].as_str().unwrap().to_string();
        match v["state"].as_str().unwrap() {
            "running" => {
                start
                    .entry(id)
                    .or_insert_with(|| ts(v["ts"].as_str().unwrap()));
            }
            "merged" => {
                let t0 = start[&id];
                out.push((id, t0, ts(v["ts"].as_str().unwrap())));
            }
            _ => {}
        }
    }
    out
}

fn makespan(parallel: usize) -> (f64, f64, f64) {
    let (plan, durations) = ralph_stories::sample::mixed16(42);
    let p = project(10, &Script::new(), "");
    agent(&p.aux).write_to(p.aux.join("script.json")).unwrap();
    for (s, d) in plan.stories.iter().zip(&durations) {
        std::fs::write(p.aux.join(format!("dur-{}", s.id)), format!("{d:.3}")).unwrap();
    }
    std::fs::write(p.root.join("stories.toml"), plan_toml(&plan)).unwrap();
    // RALPH_BENCH_TRACE=<dir>: the run's --json events and the agents' own start and end
    // times are kept there, to see where a link of the critical chain spends its time.
    let trace = std::env::var_os("RALPH_BENCH_TRACE").map(PathBuf::from);
    let mut args = vec!["stories", "run", "--parallel"];
    let n = parallel.to_string();
    args.push(&n);
    if trace.is_some() {
        args.push("--json");
    }
    let start = Instant::now();
    let spawned = std::time::SystemTime::now();
    let (code, events) = run(&p, &args);
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(code, 0, "the plan did not merge");
    if let Some(dir) = &trace {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("events.jsonl"), &events).unwrap();
        // When ralph was spawned and when it had exited, as the agents' stamps are written.
        let epoch = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64()
        };
        let exited = epoch(spawned) + wall;
        std::fs::write(
            dir.join("ralph.times"),
            format!("{} {exited}", epoch(spawned)),
        )
        .unwrap();
        for e in std::fs::read_dir(&p.aux).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    // The lower bound from what the agents really took (sleep plus process start).
    let actual: Vec<f64> = plan
        .stories
        .iter()
        .map(|s| {
            read_f64(&p.aux.join(format!("{}.end", s.id)))
                - read_f64(&p.aux.join(format!("{}.start", s.id)))
        })
        .collect();
    let dag = ralph_stories::Dag::of(&plan).unwrap();
    let critical = dag
        .critical_paths(|i| actual[i])
        .into_iter()
        .fold(0.0, f64::max);
    let work: f64 = actual.iter().sum();
    let bound = critical.max(work / parallel as f64);
    (wall, bound, wall / bound)
}

fn per_story_overhead(files: usize, stories: usize) -> (f64, f64) {
    let p = project(files, &Script::new(), "");
    agent(&p.aux).write_to(p.aux.join("script.json")).unwrap();
    let ids: Vec<String> = (1..=stories).map(|i| format!("S{i}")).collect();
    std::fs::write(p.root.join("stories.toml"), plan_toml(&plan_of(&ids))).unwrap();
    let (code, events) = run(&p, &["stories", "run", "--parallel", "1", "--json"]);
    assert_eq!(code, 0);
    let mut own: Vec<f64> = story_spans(&events)
        .into_iter()
        .map(|(id, t0, t1)| {
            let agent = read_f64(&p.aux.join(format!("{id}.end")))
                - read_f64(&p.aux.join(format!("{id}.start")));
            (t1 - t0 - agent) * 1e3
        })
        .collect();
    own.sort_by(f64::total_cmp);
    (own[own.len() / 2], own[own.len() - 1])
}

fn peak_rss(stories: usize, sleep_s: f64) -> u64 {
    let p = project(10, &Script::new(), "");
    agent(&p.aux).write_to(p.aux.join("script.json")).unwrap();
    let ids: Vec<String> = (1..=stories).map(|i| format!("S{i}")).collect();
    for id in &ids {
        std::fs::write(p.aux.join(format!("dur-{id}")), format!("{sleep_s}")).unwrap();
    }
    std::fs::write(p.root.join("stories.toml"), plan_toml(&plan_of(&ids))).unwrap();
    let mut child = Command::new(RALPH)
        .args(["stories", "run", "--parallel", &stories.to_string()])
        .current_dir(&p.root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
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
        if let Some(st) = child.try_wait().unwrap() {
            assert_eq!(st.code(), Some(0));
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    hwm
}

fn gate_runs_per_story(stories: usize) -> f64 {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("gate-runs");
    let gates = format!(
        "[[gates]]\nname = \"slow\"\nrun = \"echo x >> {}; sleep 0.3\"\nwhen = \"pre-merge\"\n",
        runs.display()
    );
    let p = project(10, &Script::new(), &gates);
    // The gate's counter is outside the project: writable to gates like the agent's aux.
    let toml = std::fs::read_to_string(p.root.join("ralph.toml"))
        .unwrap()
        .replace(
            &format!("writable = [{:?}]", p.aux.display().to_string()),
            &format!(
                "writable = [{:?}, {:?}]",
                p.aux.display().to_string(),
                tmp.path().display().to_string()
            ),
        );
    std::fs::write(p.root.join("ralph.toml"), toml).unwrap();
    agent(&p.aux).write_to(p.aux.join("script.json")).unwrap();
    let ids: Vec<String> = (1..=stories).map(|i| format!("S{i}")).collect();
    std::fs::write(p.root.join("stories.toml"), plan_toml(&plan_of(&ids))).unwrap();
    let (code, _) = run(&p, &["stories", "run", "--parallel", "4"]);
    assert_eq!(code, 0);
    let n = std::fs::read_to_string(&runs).unwrap().lines().count();
    n as f64 / stories as f64
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    // `-- --bench makespan` (or overhead, rss, gates): only those parts.
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let part = |name: &str| parts.is_empty() || parts.iter().any(|p| p == name);
    println!(
        "ralph stories benchmark ({} mode)",
        if quick { "quick" } else { "full" }
    );
    if !quick && part("makespan") {
        let (wall, bound, ratio) = makespan(4);
        println!(
            "  makespan, 16 stories, --parallel 4: {wall:.2} s against a lower bound of \
             {bound:.2} s: ratio {ratio:.3} (goal <= 1.05)"
        );
    }
    let (files, n) = if quick { (1_000, 3) } else { (10_000, 9) };
    if part("overhead") {
        let (median, worst) = per_story_overhead(files, n);
        println!(
            "  ralph's own cost per story in a {files}-file repository: median {median:.0} ms, \
         worst {worst:.0} ms over {n} stories (goal <= 250 ms)"
        );
    }
    let (stories, sleep) = if quick { (3, 0.3) } else { (8, 1.5) };
    if part("rss") {
        let kib = peak_rss(stories, sleep);
        println!(
            "  peak RSS with {stories} stories running: {:.1} MB (goal <= 25 MB)",
            kib as f64 / 1024.0
        );
    }
    let n = if quick { 4 } else { 12 };
    if part("gates") {
        let g = gate_runs_per_story(n);
        println!(
            "  pre-merge gate runs per merged story ({n} stories, batching on): {g:.2} (goal < 1)"
        );
    }
}
