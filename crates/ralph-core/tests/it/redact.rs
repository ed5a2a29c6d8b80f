//! Canary tests for `ralph_core::redact`: secrets printed raw, encoded, split across lines,
//! inside JSON and across stream chunks must not survive (no byte run of 8 or more of any form
//! of a canary), and ordinary text must come out unchanged. Every test first checks that the
//! canaries really are in its input (the positive control).

#![expect(
    clippy::unwrap_used,
    reason = "fixture helpers outside #[test] functions unwrap"
)]

use std::borrow::Cow;
use std::io::Write;

use ralph_core::redact::{Redactor, StreamRedactor, MAX_BLOCK_LEN};

const ANTHROPIC: &str = "sk-ant-api03-pTyGJMuHbEL31IeL2HPcHyGcFRl1SPnXNYvMIHa-2o76umfXfKm-r5kJP1VrT_1FJors-6ILi8IHn5kxsC7tVO-HbkQfyAA";
const OPENAI: &str = "sk-proj-Z63fFKcZjR4I0b3jRtaWr4Y9OJFLJOqOAf1lLQSAJaiXnkU8";
const GITHUB: &str = "ghp_Is2g8nprvDd53x83rzjZZZZGeoZDMENcKHVm";
const AWS_ID: &str = "AKIADGAJGXBENYJQWX6H";
const AWS_SECRET: &str = "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";
const SLACK: &str = "xoxb-957551313735-3799075116372-byoVFz8uZdZv8FuKKIBJl5dz";
const GOOGLE: &str = "AIzaS8sTQCBNR3YbDgbleph1QHt61QTC4XATWS8";
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjYW5hcnktODczMSIsImlhdCI6MTcwMDAwMDAwMH0.PHp9NHfYjFM5DI4pZj59fhZ5R1Py4oJe2JbmPTuSgR7";
const DB_PASSWORD: &str = "Ov8GZ4fKq1OKtbgZVaMWUFuX";
const ENV_KEY: &str = "BVjdctBYVhnSg9EH6yO4GFQRC5xLRwI0";
const ENV_TOKEN: &str = "2hzT/pLjHX2JiCLhKcIhP6Br1iQFeOUhGXZnnal5";
/// Short: found by the scanning automaton rather than by sampling, fragments of 7 bytes.
const ENV_SHORT: &str = "pw9Xk2mQ7z";
/// Needs escaping in JSON (`"`, `\`, `/`, `<`, `&`, `é`) and in URLs.
const ENV_WEIRD: &str = "Zq8/Lm+3\"Wx\\9&Tz<Kp>é!Rv~ok";
const PEM_BODY: [&str; 8] = [
    "WisCgEBCY8f5N3/ynbdrZRzsGQBJg3UHKwkflF6XUi5AhuqpfEnbtXAqwK8jZfAL",
    "hLSzFyCmmdKTxp/TkSF2RCdKDFRuNw5GCf+hA6ILI8gJhead6/wJ9kFZJSqgmRB9",
    "H+iMb+lk777PZnK8Cl6J5ixaaJLShuQjOud/+yDUA+5zmS1swoPqApryPZBlgvIy",
    "xJu2jGjNGkTfi3oYv2DzaKG05Rk+GQV81rkmghzem9yPVUJa/c5q52RYfLWrLoev",
    "hZC0x0awirH/juQbLifxz53nCQE28+AJy75fNcTTN6KFAQdEmQg3OMJmYxhcABm6",
    "jof8efD0nHCY/1Kgd2vd/Er1uyZAlIa/ZnYd7chlN/Xc+1HSyGbDS1GHXy5oOKVq",
    "YX7Enwvq4VNAKjKs1Pawtn3LG8Zv5Ypu8D0fzFwE7IHgYIruiqFhojmAIDdN87xg",
    "3/Q/XBmTepo6uKZyUf0IE9pU2NJhKaM1/5WdR16ePlljivghZ4fXfeTkYpIygfdM",
];

fn pem() -> String {
    format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----",
        PEM_BODY.join("\n")
    )
}

/// The known values: what the engine would pass from the environment.
fn env() -> Vec<(String, String)> {
    [
        ("ANTHROPIC_API_KEY", ANTHROPIC),
        ("OPENAI_API_KEY", OPENAI),
        ("GITHUB_TOKEN", GITHUB),
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET),
        ("SLACK_BOT_TOKEN", SLACK),
        ("GOOGLE_API_KEY", GOOGLE),
        ("DB_PASSWORD", DB_PASSWORD),
        ("MY_API_KEY", ENV_KEY),
        ("SERVICE_TOKEN", ENV_TOKEN),
        ("WEIRD_SECRET", ENV_WEIRD),
        ("SMTP_PASS", ENV_SHORT),
        // Not secrets:
        ("HOME", "/home/canary-user"),
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("LANG", "en_US.UTF-8"),
        ("GIT_AUTHOR_NAME", "Canary Author"),
        ("SHORT_TOKEN", "abc123"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect()
}

fn redactor() -> Redactor {
    Redactor::new(env())
}

/// Known values printed encoded in the tests below.
const ENV_CANARIES: [(&str, &str); 5] = [
    ("MY_API_KEY", ENV_KEY),
    ("SERVICE_TOKEN", ENV_TOKEN),
    ("WEIRD_SECRET", ENV_WEIRD),
    ("DB_PASSWORD", DB_PASSWORD),
    ("SMTP_PASS", ENV_SHORT),
];

// --- helpers -----------------------------------------------------------------------------------

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64(data: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        if pad {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

/// The base64 characters that depend on `value` alone at `offset` bytes into a stream.
fn b64_core(value: &[u8], offset: usize, alphabet: &[u8; 64]) -> String {
    let mut buf = vec![0u8; offset];
    buf.extend_from_slice(value);
    buf.extend_from_slice(&[0, 0]);
    let enc = b64(&buf, alphabet, false);
    let first = (8 * offset).div_ceil(6);
    let last = 8 * (offset + value.len()) / 6;
    enc[first..last].to_string()
}

fn url_encode(v: &str, lower: bool) -> String {
    let mut out = String::new();
    for &b in v.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else if lower {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// JSON string contents escaping everything but letters and digits: `\/` for `/`, `\u00xx`
/// for other ASCII, `\uxxxx` for the rest.
fn json_escape_all(v: &str) -> String {
    let mut out = String::new();
    for c in v.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if c == '/' {
            out.push_str("\\/");
        } else {
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

fn json_string(v: &str) -> String {
    serde_json::to_string(v).unwrap()
}

/// Every form of `value` whose 8-byte runs must not survive.
fn forms(value: &str) -> Vec<Vec<u8>> {
    let mut out = vec![value.as_bytes().to_vec()];
    for alphabet in [STD, URL] {
        for offset in 0..3 {
            out.push(b64_core(value.as_bytes(), offset, alphabet).into_bytes());
        }
    }
    out.push(url_encode(value, false).into_bytes());
    out.push(json_string(value).trim_matches('"').as_bytes().to_vec());
    out.push(json_escape_all(value).into_bytes());
    out
}

fn all_canaries() -> Vec<String> {
    let mut v: Vec<String> = [
        ANTHROPIC,
        OPENAI,
        GITHUB,
        AWS_ID,
        AWS_SECRET,
        SLACK,
        GOOGLE,
        JWT,
        DB_PASSWORD,
        ENV_KEY,
        ENV_TOKEN,
        ENV_WEIRD,
        ENV_SHORT,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(PEM_BODY.iter().map(|s| s.to_string()));
    v
}

/// Runs of 8 bytes of any form of any canary found in `out`.
fn leaks(out: &[u8], canaries: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for c in canaries {
        for form in forms(c) {
            for w in form.windows(8) {
                if memchr::memmem::find(out, w).is_some() {
                    found.push(format!(
                        "{:?} (of {c:?}) in {:?}",
                        String::from_utf8_lossy(w),
                        String::from_utf8_lossy(out)
                    ));
                    break;
                }
            }
        }
    }
    found
}

fn assert_clean(out: &[u8], canaries: &[String]) {
    let l = leaks(out, canaries);
    assert!(l.is_empty(), "leaked:\n{}", l.join("\n"));
}

/// Positive control: the input does carry the canaries.
fn assert_present(input: &[u8], canaries: &[String]) {
    assert!(
        !leaks(input, canaries).is_empty(),
        "the input carries no canary: {:?}",
        String::from_utf8_lossy(input)
    );
}

fn stream(r: &Redactor, chunks: &[&[u8]]) -> Vec<u8> {
    let mut s = StreamRedactor::new(r.clone(), Vec::new());
    for c in chunks {
        s.write_all(c).unwrap();
    }
    s.finish().unwrap()
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

// --- tests -------------------------------------------------------------------------------------

#[test]
fn patterns_catch_canaries_without_known_values() {
    let r = Redactor::default();
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!("export KEY={ANTHROPIC}"),
            ANTHROPIC,
            "anthropic_key",
        ),
        (format!("using {OPENAI} now"), OPENAI, "openai_key"),
        (
            format!("git clone https://{GITHUB}@github.com/x/y"),
            GITHUB,
            "github_token",
        ),
        (format!("id={AWS_ID}"), AWS_ID, "aws_access_key"),
        (
            format!("aws_secret_access_key = {AWS_SECRET}"),
            AWS_SECRET,
            "aws_secret",
        ),
        (
            format!("AWS_SECRET_ACCESS_KEY=\"{AWS_SECRET}\""),
            AWS_SECRET,
            "aws_secret",
        ),
        (format!("token: {SLACK}"), SLACK, "slack_token"),
        (format!("<key>{GOOGLE}</key>"), GOOGLE, "google_api_key"),
        (format!("Authorization: Bearer {JWT}"), JWT, "jwt"),
        (
            format!("DB_PASSWORD={DB_PASSWORD}"),
            DB_PASSWORD,
            "secret_assignment",
        ),
        (
            format!("{{\"password\": \"{DB_PASSWORD}\"}}"),
            DB_PASSWORD,
            "secret_assignment",
        ),
        (
            format!("client_secret: '{DB_PASSWORD}'"),
            DB_PASSWORD,
            "secret_assignment",
        ),
        (
            format!("curl -H 'x-api-key: {ENV_KEY}'"),
            ENV_KEY,
            "secret_assignment",
        ),
        (
            format!("postgres://app:{DB_PASSWORD}@db:5432/x"),
            DB_PASSWORD,
            "secret_assignment",
        ),
        (
            format!(
                "Authorization: Basic {}",
                b64(b"user:hunter2hunter2", STD, true)
            ),
            "dXNlcjpodW50ZXIyaHVudGVyMg",
            "secret_assignment",
        ),
    ];
    for (text, canary, kind) in &cases {
        let canaries = vec![canary.to_string()];
        assert_present(text.as_bytes(), &canaries);
        let out = r.redact(text);
        assert!(
            out.contains(&format!("[REDACTED:{kind}]")),
            "{text} -> {out}"
        );
        assert_clean(out.as_bytes(), &canaries);
        // Inside a JSON string, as an agent's event carries it.
        let json = format!(
            "{{\"type\":\"text\",\"text\":{}}}",
            json_string(&format!("{text}\nnext line"))
        );
        let out = r.redact(&json);
        assert_clean(out.as_bytes(), &canaries);
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
    }
    // The key of an assignment is kept.
    assert_eq!(
        r.redact(&format!("DB_PASSWORD={DB_PASSWORD} # prod")),
        "DB_PASSWORD=[REDACTED:secret_assignment] # prod"
    );
}

#[test]
fn private_key_blocks() {
    let r = Redactor::default();
    let body: Vec<String> = PEM_BODY.iter().map(|s| s.to_string()).collect();
    let text = format!("key:\n{}\ndone\n", pem());
    assert_present(text.as_bytes(), &body);
    assert_eq!(r.redact(&text), "key:\n[REDACTED:private_key]\ndone\n");
    // Inside JSON (escaped line breaks).
    let json = format!("{{\"content\":{}}}", json_string(&text));
    let out = r.redact(&json);
    assert_clean(out.as_bytes(), &body);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["content"],
        "key:\n[REDACTED:private_key]\ndone\n"
    );
    // Unterminated (a truncated print): the body lines still go.
    let cut = format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n{}\n",
        PEM_BODY[0], PEM_BODY[1]
    );
    let out = r.redact(&cut);
    assert_clean(out.as_bytes(), &body);
    // Other kinds, and encrypted ones with headers.
    let enc = format!(
        "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0011\n\n{}\n-----END EC PRIVATE KEY-----",
        PEM_BODY[2]
    );
    assert_eq!(r.redact(&enc), "[REDACTED:private_key]");
    // Public keys and certificates are not secrets.
    let public = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----",
        PEM_BODY[3]
    );
    assert_eq!(r.redact(&public), public);
}

#[test]
fn known_values_raw_and_encoded() {
    let r = redactor();
    for (name, v) in ENV_CANARIES {
        let canaries = vec![v.to_string()];
        let marker = format!("[REDACTED:{name}]");
        let mut texts: Vec<String> = vec![
            format!("value {v} end"),
            format!("{v}"),
            url_encode(v, false),
            url_encode(v, true),
            format!("https://x.test/cb?k={}&x=1", url_encode(v, false)),
            format!("{{\"v\":{}}}", json_string(v)),
            format!("{{\"v\":\"{}\"}}", json_escape_all(v)),
            // JSON inside JSON (an agent's tool result carrying a printed JSON document).
            format!(
                "{{\"r\":{}}}",
                json_string(&format!("{{\"v\":{}}}", json_string(v)))
            ),
        ];
        for alphabet in [STD, URL] {
            for pad in [true, false] {
                texts.push(format!("b64: {} ok", b64(v.as_bytes(), alphabet, pad)));
                // `echo $V | base64`: a trailing newline inside the encoded data.
                texts.push(b64(format!("{v}\n").as_bytes(), alphabet, pad));
                // Inside a longer blob, at each of the three alignments.
                for offset in 0..3 {
                    let mut rng = Rng(0x5eed + offset as u64);
                    let mut blob = rng.bytes(30 + offset);
                    blob.extend_from_slice(v.as_bytes());
                    blob.extend(rng.bytes(29));
                    texts.push(format!("data={}", b64(&blob, alphabet, pad)));
                }
            }
        }
        for text in &texts {
            assert_present(text.as_bytes(), &canaries);
            let out = r.redact(text);
            assert!(out.contains(&marker), "{text} -> {out}");
            assert_clean(out.as_bytes(), &canaries);
            if text.starts_with('{') {
                serde_json::from_str::<serde_json::Value>(&out)
                    .unwrap_or_else(|e| panic!("{out}: {e}"));
            }
        }
    }
    // Exact replacements.
    assert_eq!(
        r.redact(&format!(
            "a {ENV_KEY} b {} c",
            b64(ENV_TOKEN.as_bytes(), STD, true)
        )),
        "a [REDACTED:MY_API_KEY] b [REDACTED:SERVICE_TOKEN] c"
    );
}

#[test]
fn known_values_split_across_two_lines_at_every_position() {
    let r = redactor();
    for (name, v) in ENV_CANARIES {
        let canaries = vec![v.to_string()];
        let marker = format!("[REDACTED:{name}]");
        for i in 1..v.len() {
            if !v.is_char_boundary(i) {
                continue;
            }
            let (a, b) = v.split_at(i);
            for nl in ["\n", "\r\n"] {
                let text = format!("left {a}{nl}{b} right");
                // Whole text: the value matches whole and the line structure is kept.
                assert_eq!(
                    r.redact(&text),
                    format!("left {marker}{nl} right"),
                    "{text:?}"
                );
                // Line by line: each half on its own.
                let (left, right) = (format!("left {a}"), format!("{b} right"));
                let l1 = r.redact_line(&left);
                let l2 = r.redact_line(&right);
                assert_clean(format!("{l1}\n{l2}").as_bytes(), &canaries);
                // Streamed a line at a time.
                let first = format!("left {a}{nl}");
                let second = format!("{b} right");
                let out = stream(&r, &[first.as_bytes(), second.as_bytes()]);
                assert_clean(&out, &canaries);
                if a.len() >= 4 {
                    assert_eq!(
                        String::from_utf8_lossy(&out),
                        format!("left {marker}{nl} right")
                    );
                }
            }
            // Inside a JSON string: the line break is an escape.
            let json = format!("{{\"t\":{}}}", json_string(&format!("left {a}\n{b} right")));
            let out = r.redact(&json);
            assert_eq!(out, format!("{{\"t\":\"left {marker} right\"}}"), "{json}");
        }
    }
}

#[test]
fn base64_wrapped_at_76_columns() {
    let r = redactor();
    for (_, v) in ENV_CANARIES {
        let canaries = vec![v.to_string()];
        for lead in 0..80 {
            let mut rng = Rng(0xb64 + lead as u64);
            let mut blob = rng.bytes(lead);
            blob.extend_from_slice(v.as_bytes());
            blob.extend(rng.bytes(40));
            let enc = b64(&blob, STD, true);
            let lines: Vec<&str> = enc
                .as_bytes()
                .chunks(76)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            let text = lines.join("\n") + "\n";
            assert_present(enc.as_bytes(), &canaries);
            assert_clean(r.redact(&text).as_bytes(), &canaries);
            let chunks: Vec<String> = lines.iter().map(|l| format!("{l}\n")).collect();
            let chunks: Vec<&[u8]> = chunks.iter().map(|c| c.as_bytes()).collect();
            assert_clean(&stream(&r, &chunks), &canaries);
        }
    }
}

/// A corpus with every canary in every form.
fn corpus() -> String {
    let mut s = String::new();
    s.push_str("{\"type\":\"system\",\"session_id\":\"123e4567-e89b-12d3-a456-426614174000\"}\n");
    s.push_str(&format!("export ANTHROPIC_API_KEY={ANTHROPIC}\n"));
    s.push_str(&format!(
        "{{\"type\":\"assistant\",\"text\":{}}}\n",
        json_string(&format!(
            "keys: {OPENAI} {GITHUB}\n{AWS_ID} {SLACK}\n{GOOGLE}"
        ))
    ));
    s.push_str(&format!("aws_secret_access_key = {AWS_SECRET}\n"));
    s.push_str(&format!("Authorization: Bearer {JWT}\n"));
    s.push_str(&pem());
    s.push('\n');
    s.push_str(&format!("DB_PASSWORD={DB_PASSWORD}\n"));
    for (_, v) in ENV_CANARIES {
        s.push_str(&format!(
            "raw {v} | b64 {} | url {}\n",
            b64(v.as_bytes(), STD, true),
            url_encode(v, false)
        ));
        s.push_str(&format!("{{\"v\":\"{}\"}}\n", json_escape_all(v)));
        let (a, b) = v.split_at(v.len() / 2);
        s.push_str(&format!("split {a}\n{b} here\n"));
    }
    s.push_str("tail without newline ");
    s.push_str(ENV_KEY);
    s
}

#[test]
fn stream_split_at_every_byte_position() {
    let r = redactor();
    let text = corpus();
    let canaries = all_canaries();
    assert_present(text.as_bytes(), &canaries);
    let expected = r.redact(&text).into_owned();
    assert_clean(expected.as_bytes(), &canaries);
    let bytes = text.as_bytes();
    for p in 0..=bytes.len() {
        let out = stream(&r, &[&bytes[..p], &bytes[p..]]);
        assert_eq!(String::from_utf8_lossy(&out), expected, "split at {p}");
    }
    // A byte at a time.
    let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(String::from_utf8_lossy(&stream(&r, &chunks)), expected);
}

#[test]
fn stream_passes_lines_on_promptly() {
    let r = redactor();
    let mut s = StreamRedactor::new(r, Vec::new());
    s.write_all(format!("{{\"a\":\"{ENV_KEY}\"}}\n{{\"b\":1}}\n").as_bytes())
        .unwrap();
    assert_eq!(
        s.get_ref().unwrap().as_slice(),
        b"{\"a\":\"[REDACTED:MY_API_KEY]\"}\n{\"b\":1}\n"
    );
    assert_eq!(s.pending_len(), 0);
    // An unfinished line is held back until its end, or finish().
    s.write_all(b"partial").unwrap();
    s.flush().unwrap();
    assert_eq!(s.pending_len(), 7);
    let out = s.finish().unwrap();
    assert!(out.ends_with(b"}\npartial"));
}

#[test]
fn stream_memory_is_bounded() {
    let r = redactor();
    // A private key that never ends, and a token that never ends.
    let mut s = StreamRedactor::new(r.clone(), Vec::new());
    s.write_all(b"-----BEGIN PRIVATE KEY-----\n").unwrap();
    for i in 0..4000 {
        s.write_all(format!("{}\n", PEM_BODY[i % 8]).as_bytes())
            .unwrap();
        assert!(
            s.pending_len() <= 2 * MAX_BLOCK_LEN + 4096,
            "{}",
            s.pending_len()
        );
    }
    s.write_all(b"-----END PRIVATE KEY-----\nafter\n").unwrap();
    let out = s.finish().unwrap();
    let body: Vec<String> = PEM_BODY.iter().map(|s| s.to_string()).collect();
    assert_clean(&out, &body);
    assert!(out.starts_with(b"[REDACTED:private_key]"));
    assert!(out.ends_with(b"after\n"));

    let mut s = StreamRedactor::new(r, Vec::new());
    s.write_all(b"sk-ant-").unwrap();
    for _ in 0..2000 {
        s.write_all(&[b'x'; 100]).unwrap();
        assert!(
            s.pending_len() <= 2 * MAX_BLOCK_LEN + 4096,
            "{}",
            s.pending_len()
        );
    }
    s.write_all(b" done\n").unwrap();
    let out = s.finish().unwrap();
    assert_eq!(out, b"[REDACTED:anthropic_key] done\n");
}

#[test]
fn non_secret_text_survives() {
    let r = redactor();
    let texts = [
        "The quick brown fox jumps over the lazy dog. Passwords should be rotated often.",
        "commit da39a3ee5e6b4b0d3255bfef95601890afd80709\nAuthor: Canary Author <a@b.c>",
        "token = da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "session_id=123e4567-e89b-12d3-a456-426614174000 request 550e8400-e29b-41d4-a716-446655440000",
        "checksum = \"f020237b6c8eed93db2e2cb53c00c60a8e1bc73da7d073199a1180401450218d\"",
        "[[package]]\nname = \"regex\"\nversion = \"1.13.1\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"",
        "see https://docs.rs/regex/latest/regex/ and http://localhost:8080/api/v1/tokens?page=2",
        "{\"type\":\"result\",\"usage\":{\"input_tokens\":123456,\"cache_read_input_tokens\":9876543210,\"output_tokens\":4321},\"total_cost_usd\":0.123456}",
        "let token = self.next_token_from_stream();\nlet api_key = config.get_api_key()?;\nif password == expected {",
        "fn secret_key(&self) -> Option<&SecretKey> { self.secret_key.as_ref() }",
        "password: ${DB_PASSWORD}\napi_key: <your-api-key>\ntoken: xxxxxxxxxxxxxxxxxxxx\nsecret = \"changeme-changeme\"",
        "max_tokens: 4096, temperature: 0.7, tokenizer: o200k_base, secret_name: prod_db_credentials",
        "numbers 3.14159265358979 1700000000000 0xdeadbeefcafebabe 12345678901234567890",
        "ask-questions-before-acting and disk-usage-report-for-the-server and sk-learn-style-names-here",
        "base64 of a greeting: SGVsbG8sIFdvcmxkISBUaGlzIGlzIGEgdGVzdC4=",
        "path /home/canary-user/.config and PATH=/usr/local/bin:/usr/bin:/bin, LANG=en_US.UTF-8",
        "ssh git@github.com:org/repo.git; AKIA is a prefix; eyJ alone; -----BEGIN PUBLIC KEY-----",
        "Bearer tokens are described in RFC 6750; Authorization: Bearer $TOKEN",
        "[REDACTED:MY_API_KEY] and DB_PASSWORD=[REDACTED:secret_assignment]",
        "Token(mark, TokenType::BlockEnd) => {\nuse crate::token::{self, Token};",
        "pub const DOT11_WPS_PASSWORD_ID_DEFAULT: DOT11_WPS_PASSWORD_ID = 0i32;",
        "#password_encryption = scram-sha-256\nlet tokens = quote_spanned! {span=>",
        "https://user:${PASSWORD}@example.com/ and postgres://app:${DB_PASS}@db/x",
    ];
    for t in texts {
        let out = r.redact(t);
        assert!(matches!(out, Cow::Borrowed(_)), "{t}\n-> {out}");
    }
}

#[test]
fn redaction_is_idempotent() {
    let r = redactor();
    let once = r.redact(&corpus()).into_owned();
    assert_eq!(r.redact(&once), once);
}

#[test]
fn bytes_are_kept_outside_secrets() {
    let r = redactor();
    let mut input = vec![0xff, 0xfe, b'a', 0x80, b' '];
    input.extend_from_slice(ENV_KEY.as_bytes());
    input.extend_from_slice(&[b' ', 0xc3, 0x28, 0x00, b'\n']);
    let out = r.redact_bytes(&input);
    let mut expected = vec![0xff, 0xfe, b'a', 0x80, b' '];
    expected.extend_from_slice(b"[REDACTED:MY_API_KEY]");
    expected.extend_from_slice(&[b' ', 0xc3, 0x28, 0x00, b'\n']);
    assert_eq!(out.as_ref(), expected.as_slice());
    let clean = [0xffu8, 0x00, 0x80, b'x'];
    assert!(matches!(r.redact_bytes(&clean), Cow::Borrowed(_)));
}

#[test]
fn only_secret_variables_are_known() {
    let r = redactor();
    let mut names = r.names().to_vec();
    names.sort();
    assert_eq!(
        names,
        [
            "ANTHROPIC_API_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "DB_PASSWORD",
            "GITHUB_TOKEN",
            "GOOGLE_API_KEY",
            "MY_API_KEY",
            "OPENAI_API_KEY",
            "SERVICE_TOKEN",
            "SLACK_BOT_TOKEN",
            "SMTP_PASS",
            "WEIRD_SECRET",
        ]
    );
    let text = "HOME=/home/canary-user LANG=en_US.UTF-8 by Canary Author, abc123";
    assert!(matches!(r.redact(text), Cow::Borrowed(_)));
}

#[test]
fn multi_line_known_values_and_explicit_secrets() {
    let key = pem();
    let r = Redactor::new([("DEPLOY_PRIVATE_KEY".to_string(), key.clone())]);
    let body: Vec<String> = PEM_BODY.iter().map(|s| s.to_string()).collect();
    for text in [
        format!("cat key:\n{key}\nok"),
        format!("{{\"out\":{}}}", json_string(&key)),
        b64(key.as_bytes(), STD, true),
    ] {
        assert_present(text.as_bytes(), &body);
        let out = r.redact(&text);
        assert!(out.contains("[REDACTED:DEPLOY_PRIVATE_KEY]"), "{out}");
        assert_clean(out.as_bytes(), &body);
    }
    // Secrets named by the caller, whatever the names.
    let r = Redactor::with_secrets([("webhook".to_string(), "hooks-Zx81kQ2m".to_string())]);
    assert_eq!(r.redact("POST hooks-Zx81kQ2m"), "POST [REDACTED:webhook]");
}

#[test]
fn redactor_is_shareable() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Redactor>();
    let r = redactor();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let r = r.clone();
            std::thread::spawn(move || r.redact(&format!("x {ENV_KEY}")).into_owned())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), "x [REDACTED:MY_API_KEY]");
    }
}

/// Random text with canaries in random forms at random places, streamed in random chunks.
#[test]
fn property_random_text_random_chunks() {
    const ROUNDS: usize = 300;
    let r = redactor();
    let canaries = all_canaries();
    let fillers = [
        "the quick brown fox ",
        "fn main() { println!(\"hi\"); }\n",
        "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"ok\\n\"}]}}\n",
        "commit da39a3ee5e6b4b0d3255bfef95601890afd80709\n",
        "id 123e4567-e89b-12d3-a456-426614174000 ",
        "\"input_tokens\":1234,",
        "https://example.com/path?q=1 ",
        "\n",
        "\r\n",
        "    ",
        "x=1; y = 2;\n",
    ];
    let mut rng = Rng(0x00c0_ffee_1234_5678);
    for _ in 0..ROUNDS {
        let mut text = String::new();
        let mut inserted = 0;
        for _ in 0..(10 + rng.below(40)) {
            if rng.below(5) == 0 {
                let (_, v) = ENV_CANARIES[rng.below(ENV_CANARIES.len())];
                let form = match rng.below(13) {
                    8 => {
                        // Inside a longer base64 blob, wrapped at 76 columns.
                        let (lead, trail) = (rng.below(7), rng.below(7));
                        let mut blob = rng.bytes(lead);
                        blob.extend_from_slice(v.as_bytes());
                        blob.extend(rng.bytes(trail));
                        let enc = b64(&blob, STD, true);
                        let lines: Vec<&str> = enc
                            .as_bytes()
                            .chunks(76)
                            .map(|c| std::str::from_utf8(c).unwrap())
                            .collect();
                        lines.join("\n")
                    }
                    9 => {
                        // Split inside a JSON string (an escaped line break), CRLF or not.
                        let mut i = 1 + rng.below(v.len() - 1);
                        while !v.is_char_boundary(i) {
                            i -= 1;
                        }
                        let nl = if rng.below(2) == 0 { "\n" } else { "\r\n" };
                        format!(
                            "{{\"t\":{}}}",
                            json_string(&format!("{}{nl}{}", &v[..i], &v[i..]))
                        )
                    }
                    10 => {
                        let mut i = 1 + rng.below(v.len() - 1);
                        while !v.is_char_boundary(i) {
                            i -= 1;
                        }
                        format!("{}\r\n{}", &v[..i], &v[i..])
                    }
                    11 => format!(
                        "{{\"r\":{}}}",
                        json_string(&format!("{{\"v\":{}}}", json_string(v)))
                    ),
                    12 => pem(),
                    0 => v.to_string(),
                    1 => b64(v.as_bytes(), STD, true),
                    2 => b64(v.as_bytes(), URL, false),
                    3 => url_encode(v, rng.below(2) == 0),
                    4 => json_string(v),
                    5 => json_escape_all(v),
                    6 => {
                        let mut i = 1 + rng.below(v.len() - 1);
                        while !v.is_char_boundary(i) {
                            i -= 1;
                        }
                        format!("{}\n{}", &v[..i], &v[i..])
                    }
                    _ => {
                        let pattern = [ANTHROPIC, OPENAI, GITHUB, SLACK, GOOGLE, JWT];
                        pattern[rng.below(pattern.len())].to_string()
                    }
                };
                text.push(' ');
                text.push_str(&form);
                text.push(' ');
                inserted += 1;
            } else {
                text.push_str(fillers[rng.below(fillers.len())]);
            }
        }
        if inserted == 0 {
            text.push_str(ENV_KEY);
        }
        let joined = text.replace("\\r", "").replace("\\n", "");
        assert_present(joined.replace(['\n', '\r'], "").as_bytes(), &canaries);
        let whole = r.redact(&text).into_owned();
        assert_clean(whole.as_bytes(), &canaries);
        let bytes = text.as_bytes();
        let mut chunks = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let n = 1 + rng.below(64.min(bytes.len() - at));
            chunks.push(&bytes[at..at + n]);
            at += n;
        }
        // Streamed, a value split after its first 1 to 3 bytes keeps them (see the module docs):
        // the output may differ from the whole text's, but no 8-byte run survives.
        let out = stream(&r, &chunks);
        assert_clean(&out, &canaries);
    }
}

#[test]
fn more_secret_names_hex_spaced_and_split_values() {
    let v = "Zx81kQ2mVb7Tq4Lp";
    for name in [
        "GITHUB_PAT",
        "MY_PAT_TOKEN",
        "API_BEARER",
        "SESSION_COOKIE",
        "RELEASE_SIGNING",
        "SLACK_WEBHOOK_URL",
        "NPM_AUTH",
        "SOME_CREDENTIAL",
        "DEPLOY_PRIVATE",
    ] {
        let r = Redactor::new([(name.to_string(), v.to_string())]);
        assert_eq!(
            r.redact(&format!("x {v} y")),
            format!("x [REDACTED:{name}] y")
        );
    }
    let r = Redactor::new([("PATH".to_string(), v.to_string())]);
    assert!(r.names().is_empty());

    let r = Redactor::new([("GITHUB_PAT".to_string(), v.to_string())]);
    let hex: String = v.bytes().map(|b| format!("{b:02x}")).collect();
    let hex_spaced: Vec<String> = v.bytes().map(|b| format!("{b:02x}")).collect();
    let spaced: Vec<String> = v.chars().map(String::from).collect();
    let mut forms = vec![
        hex.clone(),
        hex.to_ascii_uppercase(),
        hex_spaced.join(" "),
        spaced.join(" "),
    ];
    for at in 1..v.len() {
        forms.push(format!("{} {}", &v[..at], &v[at..]));
    }
    for form in forms {
        let out = r.redact(&format!("leak: {form} end")).into_owned();
        assert_eq!(out, "leak: [REDACTED:GITHUB_PAT] end", "{form}");
    }
}

#[test]
fn url_credentials_are_redacted_in_text_and_from_any_variable() {
    let r = Redactor::default();
    for (text, want) in [
        (
            "git clone https://user:pass@host/x",
            "git clone https://user:[REDACTED:secret_assignment]@host/x",
        ),
        (
            "postgres://app:12345678@db:5432/x",
            "postgres://app:[REDACTED:secret_assignment]@db:5432/x",
        ),
        (
            "https://u:p@ss@host/",
            "https://u:[REDACTED:secret_assignment]@host/",
        ),
        (
            "https://:hunter2@host",
            "https://:[REDACTED:secret_assignment]@host",
        ),
    ] {
        assert_eq!(r.redact(text), want);
    }
    // A variable not named like a secret: its URL's password is still known, and found alone.
    let r = Redactor::new([(
        "DATABASE_URL".to_string(),
        "postgres://app:Pg-pw-7781x@db/x".to_string(),
    )]);
    assert_eq!(
        r.redact("pw is Pg-pw-7781x"),
        "pw is [REDACTED:DATABASE_URL]"
    );
}
