//! Model routing's cost (`cargo bench -p ralph --bench routing`): a scripted 10-story plan run
//! twice through the real binary, once with `[routing]` (cheap, standard and strong tiers by
//! complexity, escalation on a plateau) and once with every story on the strong tier. The
//! agent is the fake agent standing in for Claude Code: it reports each call's tokens, the
//! model it ran on and the cost Claude Code would report for them at the list prices of
//! `crates/ralph-agents/src/prices.toml` (USD per million input/output tokens).
//! Five stories are low complexity, three medium (one of which passes only on the strong tier,
//! so it escalates), two high. Printed: both totals, the cost per merged story, the ratio
//! (goal: at least 40% lower with routing, the same number merged), once with today's Opus
//! prices and once with the older Opus 4.1's, which seed 004's 40–60% claim was made with.
#![expect(clippy::unwrap_used, reason = "a benchmark fails by panicking")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ralph_testkit::script::ClaudeResult;
use ralph_testkit::{Script, Step};

const RALPH: &str = env!("CARGO_BIN_EXE_ralph");
const CHEAP: &str = "claude-haiku-4-5";
const STANDARD: &str = "claude-sonnet-4-5";
/// Tokens of every call: a mid-sized iteration.
const TOKENS: (u64, u64) = (30_000, 3_000);

/// List prices (USD per million tokens, input and output), as in prices.toml.
fn price(model: &str) -> (f64, f64) {
    match model {
        "claude-haiku-4-5" => (1.0, 5.0),
        "claude-sonnet-4-5" => (3.0, 15.0),
        "claude-opus-4-5" => (5.0, 25.0),
        "claude-opus-4-1" => (15.0, 75.0),
        other => panic!("no price for {other}"),
    }
}

/// (id, complexity, passes only on the strong tier)
const STORIES: [(&str, &str, bool); 10] = [
    ("S01", "low", false),
    ("S02", "low", false),
    ("S03", "low", false),
    ("S04", "low", false),
    ("S05", "low", false),
    ("S06", "medium", false),
    ("S07", "medium", false),
    ("S08", "medium", true),
    ("S09", "high", true),
    ("S10", "high", false),
];

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

/// Run the plan with `routing` (TOML) in ralph.toml; (total cost, stories merged).
fn run(strong: &str, routing: &str) -> (f64, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("p");
    let aux = tmp.path().join("aux");
    let bin = aux.join("bin");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    for (id, _, hard) in STORIES {
        if hard {
            std::fs::write(aux.join(format!("needs-strong-{id}")), "").unwrap();
        }
    }
    // One script per model: the story's file written unless it needs the strong tier and
    // this is not it; the call's tokens and model reported as Claude Code reports them.
    for model in [CHEAP, STANDARD, strong] {
        let strong_case = if model == strong {
            "echo ok > src/$RALPH_STORY_ID.txt".to_string()
        } else {
            format!(
                "[ -f {}/needs-strong-$RALPH_STORY_ID ] || echo ok > src/$RALPH_STORY_ID.txt",
                aux.display()
            )
        };
        Script::new()
            .default_steps(vec![
                Step::shell(format!("mkdir -p src; {strong_case}")),
                Step::claude_result(
                    ClaudeResult::success("done\nLOOP_COMPLETE")
                        .tokens(TOKENS.0, TOKENS.1)
                        .cost_usd(
                            (TOKENS.0 as f64 * price(model).0 + TOKENS.1 as f64 * price(model).1)
                                / 1e6,
                        )
                        .model(model),
                ),
            ])
            .write_to(aux.join(format!("{model}.json")))
            .unwrap();
    }
    let wrapper = format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo '2.1.197 (Claude Code)'; exit 0; fi\n\
         FAKE_AGENT_SCRIPT={}/$RALPH_MODEL.json exec {} \"$@\"\n",
        aux.display(),
        ralph_testkit::fake_agent_path().display()
    );
    std::fs::write(bin.join("claude"), wrapper).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("claude"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(root.join(".gitignore"), "/.ralph/\n").unwrap();
    std::fs::write(
        root.join("ralph.toml"),
        format!(
            "[agent]\nbackend = \"claude\"\n\n[loop]\nmax_iterations = 8\n\n{routing}\n\
             [sandbox]\nwritable = [{:?}]\n",
            aux.display().to_string()
        ),
    )
    .unwrap();
    let mut plan = "version = 1\nname = \"bench\"\n\n".to_string();
    for (id, complexity, _) in STORIES {
        plan.push_str(&format!(
            "[[story]]\nid = \"{id}\"\ntitle = \"{id}\"\ncomplexity = \"{complexity}\"\n\
             description = \"Write src/{id}.txt.\"\n  [[story.criteria]]\n  id = \"AC-1\"\n  \
             text = \"it is there\"\n  run = \"test -f src/{id}.txt\"\n\n"
        ));
    }
    std::fs::write(root.join("stories.toml"), plan).unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-qm", "init"]);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let home: PathBuf = tmp.path().join("home");
    let ralph = |args: &[&str]| {
        Command::new(RALPH)
            .args(args)
            .current_dir(&root)
            .env("PATH", &path)
            .env("HOME", &home)
            .env("RALPH_HOME", home.join("ralph"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = ralph(&["stories", "run", "--parallel", "4"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = ralph(&["stories", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let merged = v["stories"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "merged")
        .count();
    (v["cost_usd"].as_f64().unwrap(), merged)
}

fn compare(strong: &str) -> f64 {
    let tiers = format!(
        "tier = [{{ name = \"cheap\", models = [\"claude:{CHEAP}\"] }}, \
         {{ name = \"standard\", models = [\"claude:{STANDARD}\"] }}, \
         {{ name = \"strong\", models = [\"claude:{strong}\"] }}]"
    );
    let routed = format!(
        "[routing]\nplateau_iterations = 2\n{tiers}\nrule = [{{ complexity = \"low\", tier = \"cheap\" }}, \
         {{ complexity = \"medium\", tier = \"standard\" }}, {{ complexity = \"high\", tier = \"strong\" }}]\n"
    );
    let strong_only = format!("[routing]\n{tiers}\ndefault_tier = \"strong\"\n");
    let (r_cost, r_merged) = run(strong, &routed);
    let (s_cost, s_merged) = run(strong, &strong_only);
    assert_eq!(r_merged, s_merged, "the same stories merge either way");
    let (r_per, s_per) = (r_cost / r_merged as f64, s_cost / s_merged as f64);
    let ratio = r_per / s_per;
    println!(
        "  strong = {strong}: routing ${r_cost:.3} for {r_merged} merged (${r_per:.4} each), \
         strong only ${s_cost:.3} for {s_merged} (${s_per:.4} each): ratio {ratio:.3}, \
         {:.0}% lower (goal >= 40%)",
        (1.0 - ratio) * 100.0
    );
    ratio
}

fn main() {
    println!(
        "ralph routing benchmark: 10 stories, {}k/{}k tokens a call",
        TOKENS.0 / 1000,
        TOKENS.1 / 1000
    );
    compare("claude-opus-4-5");
    compare("claude-opus-4-1");
}
