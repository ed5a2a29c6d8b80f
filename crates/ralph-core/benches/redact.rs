//! Redaction throughput on typical agent output, in MB/s: stream-json lines (with escapes,
//! usage objects full of `"…_tokens"` keys), source code, and plain log lines, with 10 known
//! values, through `Redactor::redact_bytes` and through a `StreamRedactor` fed 64 KiB chunks.
//! Goal: ≥ 200 MB/s on clean text (agents can print hundreds of MB/s through ralph).
//!
//! Run with `cargo bench -p ralph-core --bench redact`.

#![expect(
    clippy::unwrap_used,
    reason = "a benchmark fails loudly on a writer error"
)]

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use ralph_core::redact::{Redactor, StreamRedactor};

const SIZE: usize = 16 * 1024 * 1024;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
    fn alnum(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n)
            .map(|_| A[(self.next() % A.len() as u64) as usize] as char)
            .collect()
    }
}

fn known(rng: &mut Rng) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = [
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "GITHUB_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "SLACK_BOT_TOKEN",
        "GOOGLE_API_KEY",
        "DB_PASSWORD",
        "NPM_TOKEN",
        "STRIPE_SECRET_KEY",
        "SENTRY_AUTH_TOKEN",
    ]
    .iter()
    .map(|n| (n.to_string(), rng.alnum(40)))
    .collect();
    // And the rest of a typical environment, which is not secret.
    for (n, val) in [
        ("HOME", "/home/dev"),
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("LANG", "en_US.UTF-8"),
        ("SHELL", "/bin/bash"),
    ] {
        v.push((n.to_string(), val.to_string()));
    }
    v
}

fn json_lines(rng: &mut Rng) -> Vec<u8> {
    let texts = [
        "I'll start by reading the configuration file to understand the structure.",
        "Let me run the tests:\\n\\n```\\ncargo test -p ralph-core\\n```",
        "The function `parse_line` returns `Option<Event>`; I'll change it to return a `Result`.",
        "Done. All 42 tests pass.\\n",
    ];
    let tools = [
        "fn main() {\\n    let args: Vec<String> = std::env::args().collect();\\n    println!(\\\"{:?}\\\", args);\\n}\\n",
        "   Compiling ralph-core v0.1.0 (/work/main/crates/ralph-core)\\n    Finished `test` profile [unoptimized + debuginfo] target(s) in 4.21s\\n",
        "src/lib.rs:12:5: warning: unused variable: `x`\\n",
        "diff --git a/src/main.rs b/src/main.rs\\nindex 3b18e51..a9c2f0d 100644\\n--- a/src/main.rs\\n+++ b/src/main.rs\\n@@ -1,3 +1,4 @@\\n",
    ];
    let mut out = Vec::with_capacity(SIZE + 4096);
    let mut i = 0u64;
    while out.len() < SIZE {
        i += 1;
        let line = match i % 4 {
            0 => format!(
                "{{\"type\":\"assistant\",\"message\":{{\"id\":\"msg_01{}\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[{{\"type\":\"text\",\"text\":\"{}\"}}],\"usage\":{{\"input_tokens\":{},\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":{},\"output_tokens\":{}}}}},\"session_id\":\"123e4567-e89b-12d3-a456-426614174000\"}}\n",
                rng.alnum(22),
                rng.pick(&texts),
                rng.next() % 5000,
                rng.next() % 100000,
                rng.next() % 2000
            ),
            1 => format!(
                "{{\"type\":\"user\",\"message\":{{\"role\":\"user\",\"content\":[{{\"tool_use_id\":\"toolu_01{}\",\"type\":\"tool_result\",\"content\":\"{}\"}}]}},\"session_id\":\"123e4567-e89b-12d3-a456-426614174000\"}}\n",
                rng.alnum(22),
                rng.pick(&tools)
            ),
            2 => format!(
                "{{\"type\":\"assistant\",\"message\":{{\"content\":[{{\"type\":\"tool_use\",\"id\":\"toolu_01{}\",\"name\":\"Bash\",\"input\":{{\"command\":\"git log --oneline -5 && git status --short\",\"description\":\"Show recent commits\"}}}}]}}}}\n",
                rng.alnum(22)
            ),
            _ => format!(
                "{{\"type\":\"system\",\"subtype\":\"status\",\"ts\":\"2025-01-0{}T12:00:00Z\",\"commit\":\"{:016x}{:016x}\"}}\n",
                i % 9 + 1,
                rng.next(),
                rng.next()
            ),
        };
        out.extend_from_slice(line.as_bytes());
    }
    out
}

fn code(rng: &mut Rng) -> Vec<u8> {
    let lines = [
        "use std::collections::HashMap;\n",
        "pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {\n",
        "    let token = self.next_token()?;\n",
        "    if password.len() < MIN_LEN { return Err(Error::TooShort); }\n",
        "    // Split the input on whitespace and count the words.\n",
        "    let url = format!(\"https://api.example.com/v1/items/{id}?page={page}\");\n",
        "    for (i, line) in text.lines().enumerate() {\n",
        "        map.insert(key.to_string(), value.clone());\n",
        "    }\n",
        "}\n",
        "#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]\n",
        "checksum = \"f020237b6c8eed93db2e2cb53c00c60a8e1bc73da7d073199a1180401450218d\"\n",
    ];
    let mut out = Vec::with_capacity(SIZE + 256);
    while out.len() < SIZE {
        out.extend_from_slice(rng.pick(&lines).as_bytes());
    }
    out
}

fn logs(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIZE + 256);
    while out.len() < SIZE {
        let line = format!(
            "2025-01-02T03:04:05.{:03}Z INFO  ralph::engine: iteration {} finished in {} ms (exit 0), {} files changed\n",
            rng.next() % 1000,
            rng.next() % 100,
            rng.next() % 100000,
            rng.next() % 20
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}

/// Sprinkles secrets (known values, a JWT, an assignment) every ~16 KiB.
fn with_secrets(clean: &[u8], env: &[(String, String)], rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::with_capacity(clean.len() + clean.len() / 100);
    for (i, chunk) in clean.chunks(16 * 1024).enumerate() {
        out.extend_from_slice(chunk);
        let secret = match i % 3 {
            0 => env[i % 10].1.clone(),
            1 => format!(
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.{}",
                rng.alnum(43)
            ),
            _ => format!("DB_PASSWORD={}", rng.alnum(24)),
        };
        out.extend_from_slice(format!(" {secret}\n").as_bytes());
    }
    out
}

fn measure(name: &str, data: &[u8], mut f: impl FnMut(&[u8]) -> usize) {
    // Warm up (and build the lazily compiled patterns).
    black_box(f(&data[..data.len().min(1 << 20)]));
    let mut best = Duration::MAX;
    let mut out = 0;
    let start = Instant::now();
    let mut runs = 0;
    while runs < 3 || (start.elapsed() < Duration::from_secs(2) && runs < 20) {
        let t = Instant::now();
        out = black_box(f(data));
        best = best.min(t.elapsed());
        runs += 1;
    }
    let mbps = data.len() as f64 / 1e6 / best.as_secs_f64();
    println!(
        "{name:<44} {:>7.1} MB/s  ({:.1} MB in {:.1} ms, best of {runs}; output {} bytes)",
        mbps,
        data.len() as f64 / 1e6,
        best.as_secs_f64() * 1e3,
        out
    );
}

fn stream_it(r: &Redactor, data: &[u8], chunk: usize) -> usize {
    let mut s = StreamRedactor::new(r.clone(), Vec::with_capacity(data.len() + 4096));
    for c in data.chunks(chunk) {
        s.write_all(c).unwrap();
    }
    s.finish().unwrap().len()
}

fn main() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let env = known(&mut rng);
    let built = Instant::now();
    let r = Redactor::new(env.clone());
    println!(
        "redactor with {} known values built in {:.2} ms",
        r.names().len(),
        built.elapsed().as_secs_f64() * 1e3
    );
    let none = Redactor::default();
    let json = json_lines(&mut rng);
    let code = code(&mut rng);
    let logs = logs(&mut rng);
    let dirty = with_secrets(&json, &env, &mut rng);

    for (what, data) in [("json lines", &json), ("code", &code), ("log lines", &logs)] {
        measure(&format!("redact_bytes, clean {what}"), data, |d| {
            r.redact_bytes(d).len()
        });
    }
    measure("redact_bytes, clean json, no known values", &json, |d| {
        none.redact_bytes(d).len()
    });
    measure("redact_bytes, json + a secret every 16 KiB", &dirty, |d| {
        r.redact_bytes(d).len()
    });
    measure("StreamRedactor 64 KiB chunks, clean json", &json, |d| {
        stream_it(&r, d, 64 * 1024)
    });
    measure("StreamRedactor 4 KiB chunks, clean json", &json, |d| {
        stream_it(&r, d, 4096)
    });
    measure("StreamRedactor, a write per line, clean json", &json, |d| {
        let mut s = StreamRedactor::new(r.clone(), Vec::with_capacity(d.len() + 4096));
        for line in d.split_inclusive(|&b| b == b'\n') {
            s.write_all(line).unwrap();
        }
        s.finish().unwrap().len()
    });
    measure("StreamRedactor 64 KiB chunks, clean code", &code, |d| {
        stream_it(&r, d, 64 * 1024)
    });
    measure(
        "StreamRedactor 64 KiB chunks, json + secrets",
        &dirty,
        |d| stream_it(&r, d, 64 * 1024),
    );
    // Line at a time, as a parser's input or events are redacted.
    let lines: Vec<&str> = std::str::from_utf8(&json).unwrap().lines().collect();
    measure("redact_line, clean json, line by line", &json, |_| {
        lines.iter().map(|l| r.redact_line(l).len()).sum()
    });
}
