//! `config::parse` must never panic, whatever it is given: random bytes, and random
//! mutations of a valid config (which reach far deeper into validation than noise does).

use std::path::Path;

use ralph_cli::config::{init_template, parse};

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const VALID: &str = r#"[agent]
backend = "custom"
model = "m"
args = ["--x"]
priority = ["claude", "q"]
command = ["./agent", "{prompt_file}"]
prompt_via = "file"
output = "claude-stream-json"
permissions = "allowlist"
allowed_tools = ["Read", "Bash(git diff *)"]

[loop]
prompt_file = "PROMPT.md"
completion_marker = "LOOP_COMPLETE"
max_iterations = 100
max_runtime = "1h30m"
iteration_timeout = "30m"
idle_timeout = "10m"
max_consecutive_failures = 5

[budget]
max_cost_usd = 25.0
max_tokens = 5000000

[git]
checkpoint_every = 1

[retry]
strategy = "exponential"
base_delay = "5s"
max_delay = "10m"

[[gates]]
name = "tests"
run = "cargo test"
when = "complete"
timeout = "10m"
"#;

/// Fragments that are meaningful to TOML or to the validator, so mutations hit interesting
/// paths rather than just making strings longer.
const FRAGMENTS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "\"",
    "'",
    "\"\"\"",
    "=",
    ",",
    "{",
    "}",
    ".",
    "#",
    "\n",
    "\\",
    "0",
    "-1",
    "1.5",
    "nan",
    "inf",
    "true",
    "1979-05-27",
    "\"0s\"",
    "\"\"",
    "[]",
    "é",
    "\u{0}",
    "\r\n",
    "gates",
    "agent",
    "loop",
    "[safety]",
    "daily_usd = 1",
    "ms",
    "99999999999999999999",
];

fn mutate(rng: &mut Rng, src: &str) -> String {
    let mut bytes = src.as_bytes().to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(5) {
            0 if !bytes.is_empty() => {
                let len = rng.below(8).min(bytes.len() - at.min(bytes.len()));
                bytes.drain(at.min(bytes.len())..at.min(bytes.len()) + len);
            }
            1 if at < bytes.len() => bytes[at] = (rng.next() & 0xff) as u8,
            2 => {
                let f = FRAGMENTS[rng.below(FRAGMENTS.len())];
                bytes.splice(at..at, f.bytes());
            }
            3 if !bytes.is_empty() => {
                // Duplicate a random line somewhere else: duplicate keys and sections.
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let lines: Vec<&str> = text.lines().collect();
                let line = lines[rng.below(lines.len())].to_string();
                let at = rng.below(lines.len() + 1);
                let mut lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                lines.insert(at, line);
                bytes = lines.join("\n").into_bytes();
            }
            _ => {
                let f = FRAGMENTS[rng.below(FRAGMENTS.len())];
                bytes.splice(at..at, f.bytes());
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn parse_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let template = init_template("custom");
    let seeds = [VALID, template.as_str()];
    let (mut ok, mut err) = (0, 0);
    // RALPH_FUZZ_ITERATIONS=200000 runs a deeper search locally; CI uses the default.
    let iterations = std::env::var("RALPH_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000usize);
    for i in 0..iterations {
        let src = if i % 4 == 0 {
            let len = rng.below(200);
            let bytes: Vec<u8> = (0..len).map(|_| (rng.next() & 0xff) as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            mutate(&mut rng, seeds[i % 2])
        };
        match parse(&src, Path::new("ralph.toml")) {
            Ok(_) => ok += 1,
            Err(e) => {
                // Whatever went wrong, the error must be presentable.
                let text = e.to_string();
                assert!(text.starts_with("error: ralph.toml"), "{text}");
                if let (Some(line), Some(column)) = (e.line, e.column) {
                    assert!(line >= 1 && column >= 1);
                    assert!(line <= src.lines().count().max(1) + 1, "{text}\n---\n{src}");
                }
                err += 1;
            }
        }
    }
    // Both outcomes must be exercised, or the mutations are too weak (or too strong).
    assert!(
        ok > iterations / 40 && err > iterations / 4,
        "ok={ok} err={err}"
    );
    eprintln!("ok={ok} err={err}");
}
