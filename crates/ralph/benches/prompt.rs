//! ralph's share of every prompt (`cargo bench -p ralph --bench prompt`).
//!
//! The real `ralph` binary runs an instant fake agent for 5 iterations, once with a 3-line task
//! prompt and once with a ~4 KB one; the bench then reads the archived prompts
//! (`.ralph/runs/<run>/<NNNN>/prompt.md`) and prints, per iteration:
//!
//! * the bytes ralph added to the user's prompt, and the same in tokens (exact, o200k_base, as
//!   `ralph prompt stats --json` counts them: the bench does not link a tokenizer itself);
//! * the share of each prompt that is a byte-identical prefix of the previous one: what a
//!   provider's prompt cache can reuse.
//!
//! Goals: ≤ 600 bytes and ≤ 150 tokens added per iteration without feedback (ralph-orchestrator
//! v2 adds ~20 KB ≈ 5,000 tokens), and ≥ 95% of each prompt shared with the previous one. The
//! same numbers with a failing gate (feedback and notes in the prompt) are printed for
//! information. The measurements are deterministic; full mode (`--bench`) only samples the
//! time `ralph prompt stats` takes (dominated by loading the tokenizer) more often.
#![expect(clippy::unwrap_used, reason = "a benchmark fails by panicking")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use ralph_testkit::script::{Script, Step};
use serde_json::Value;

const RALPH: &str = env!("CARGO_BIN_EXE_ralph");
const ITERATIONS: u32 = 5;
const GOAL_BYTES: u64 = 600;
const GOAL_TOKENS: u64 = 150;
const GOAL_SHARE: f64 = 0.95;

const TASK_3_LINES: &str = "Add a greeting to hello.txt.\nKeep it short.\nRun the tests.\n";

/// A realistic task prompt of about 4 KB (several paragraphs, lists, a code block).
const TASK_4K: &str = include_str!("../tests/fixtures/task_4k.md");

struct Proj {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

/// A project running the instant fake agent; `failing_gate` adds a gate that fails every
/// iteration, so every prompt after the first carries feedback (and notes).
fn project(task: &str, failing_gate: bool) -> Proj {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("p");
    let aux = tmp.path().join("aux");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&aux).unwrap();
    let sp = aux.join("script.json");
    // Default settings (max_iterations = 100, as the README's figure assumes): the run ends by
    // completing at the last iteration measured.
    Script::new()
        .default_steps(vec![Step::print("did a step")])
        .on_call(ITERATIONS, vec![Step::print("LOOP_COMPLETE")])
        .write_to(&sp)
        .unwrap();
    std::fs::write(root.join("PROMPT.md"), task).unwrap();
    let gate = if failing_gate {
        // Fails until the last iteration measured, so every prompt after the first carries
        // feedback; passes there, so the claim completes the run.
        "\n[[gates]]\nname = \"tests\"\nrun = \"test -f .ralph/runs/*/0005/prompt.md || { echo \
         'test limiter::burst failed: expected 429, got 200'; exit 1; }\"\nwhen = \"iteration\"\n"
    } else {
        ""
    };
    std::fs::write(
        root.join("ralph.toml"),
        format!(
            "[agent]\nbackend = \"custom\"\ncommand = [{:?}, {:?}]\n\n\
             [retry]\nbase_delay = \"0s\"\n{gate}",
            ralph_testkit::fake_agent_path().display().to_string(),
            sp.display().to_string()
        ),
    )
    .unwrap();
    Proj { _tmp: tmp, root }
}

fn ralph(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new(RALPH)
        .args(args)
        .current_dir(root)
        .env("NO_COLOR", "1")
        .env_remove("RALPH_RUN_ID")
        .env_remove("RALPH_ITERATION")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

struct Row {
    n: u32,
    prompt_bytes: u64,
    ralph_bytes: u64,
    ralph_tokens: u64,
    share: Option<f64>,
    feedback: bool,
}

/// Run the loop, then measure every archived prompt. Also returns the wall time of each
/// `ralph prompt stats` sample, in milliseconds.
fn measure(task: &str, failing_gate: bool, stats_samples: u32) -> (Vec<Row>, Vec<f64>) {
    let p = project(task, failing_gate);
    let out = ralph(&p.root, &["run"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "expected a completion at the last iteration: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Vec<PathBuf> = std::fs::read_dir(p.root.join(".ralph/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1);
    let user = task.trim_end();

    let mut timings = Vec::new();
    let mut stats = Value::Null;
    for _ in 0..stats_samples.max(1) {
        let start = Instant::now();
        let out = ralph(&p.root, &["prompt", "stats", "--json"]);
        timings.push(start.elapsed().as_secs_f64() * 1e3);
        assert!(
            out.status.success(),
            "ralph prompt stats: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stats = serde_json::from_slice(&out.stdout).unwrap();
    }

    let mut rows = Vec::new();
    let mut prev: Option<Vec<u8>> = None;
    for n in 1..=ITERATIONS {
        let prompt = std::fs::read(runs[0].join(format!("{n:04}")).join("prompt.md")).unwrap();
        assert!(
            prompt.starts_with(user.as_bytes()),
            "the user's prompt comes first"
        );
        let ralph_bytes = (prompt.len() - user.len()) as u64;
        let share = prev.as_ref().map(|prev| {
            let common = prev.iter().zip(&prompt).take_while(|(a, b)| a == b).count();
            common as f64 / prompt.len() as f64
        });
        let s = &stats["iterations"][(n - 1) as usize];
        assert_eq!(s["iteration"], n);
        assert_eq!(
            s["ralph_bytes"].as_u64(),
            Some(ralph_bytes),
            "ralph prompt stats agrees on the bytes"
        );
        rows.push(Row {
            n,
            prompt_bytes: prompt.len() as u64,
            ralph_bytes,
            ralph_tokens: s["ralph_tokens"].as_u64().unwrap(),
            share,
            feedback: s["feedback"].as_bool().unwrap(),
        });
        prev = Some(prompt);
    }
    (rows, timings)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "goal met"
    } else {
        "GOAL MISSED"
    }
}

fn report(title: &str, task: &str, rows: &[Row], goals: bool) {
    println!(
        "\n  {title} ({} B task prompt, {ITERATIONS} iterations)",
        task.trim_end().len()
    );
    println!("    iter  prompt B  ralph B  ralph tok  same prefix");
    for r in rows {
        let share = r
            .share
            .map_or_else(|| "-".to_string(), |s| format!("{:.1}%", s * 100.0));
        println!(
            "    {:>4}  {:>8}  {:>7}  {:>9}  {:>11}{}",
            r.n,
            r.prompt_bytes,
            r.ralph_bytes,
            r.ralph_tokens,
            share,
            if r.feedback { "  (feedback)" } else { "" }
        );
    }
    let max_bytes = rows.iter().map(|r| r.ralph_bytes).max().unwrap_or(0);
    let max_tokens = rows.iter().map(|r| r.ralph_tokens).max().unwrap_or(0);
    let min_share = rows
        .iter()
        .filter_map(|r| r.share)
        .fold(f64::INFINITY, f64::min);
    if goals {
        println!(
            "    ralph adds at most {max_bytes} B / {max_tokens} tokens per iteration (goal <= \
             {GOAL_BYTES} B / <= {GOAL_TOKENS} tokens; ralph-orchestrator v2 adds ~20 KB ≈ 5,000 \
             tokens): {}",
            verdict(max_bytes <= GOAL_BYTES && max_tokens <= GOAL_TOKENS)
        );
        println!(
            "    same prefix as the previous prompt: at least {:.1}% (goal >= {:.0}%): {}",
            min_share * 100.0,
            GOAL_SHARE * 100.0,
            verdict(min_share >= GOAL_SHARE)
        );
    } else {
        println!(
            "    for information: ralph adds up to {max_bytes} B / {max_tokens} tokens (the gate's \
             output and notes on earlier iterations); same prefix at least {:.1}%",
            min_share * 100.0
        );
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this too: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let samples = if quick { 1 } else { 5 };
    println!(
        "ralph prompt benchmark ({} mode): the real binary, an instant fake agent",
        if quick { "quick" } else { "full" }
    );
    let mut timings = Vec::new();
    for (title, task) in [
        ("3-line task prompt, no feedback", TASK_3_LINES),
        ("~4 KB task prompt, no feedback", TASK_4K),
    ] {
        let (rows, t) = measure(task, false, samples);
        timings.extend(t);
        report(title, task, &rows, true);
    }
    for (title, task) in [
        (
            "3-line task prompt, a gate failing every iteration",
            TASK_3_LINES,
        ),
        ("~4 KB task prompt, a gate failing every iteration", TASK_4K),
    ] {
        let (rows, _) = measure(task, true, 1);
        report(title, task, &rows, false);
    }
    println!(
        "\n  `ralph prompt stats` ({ITERATIONS} iterations, loads the o200k_base tokenizer): \
         {:.0} ms, median of {}",
        median(&mut timings),
        timings.len()
    );
}
