//! Canary secrets printed by the agent in every way it could leak them: zero hits in `.ralph/`
//! or in ralph's own output afterwards, with a positive control proving they were printed.

use ralph_testkit::script::{ClaudeResult, Script, Step};

use crate::harness::*;

/// Values only the environment knows; their variable names mark them secret (KEY, TOKEN,
/// SECRET, PASSWORD).
const ENV_CANARIES: &[(&str, &str)] = &[
    ("CANARY_SERVICE_API_KEY", "cnry-Zq8Xv2Lm4Tp7Wd1Rk9Hs3Bn6"),
    ("CANARY_AUTH_TOKEN", "tok_4fGh8JkL2mNp6QrS0tUv"),
    ("CANARY_CLIENT_SECRET", "sEcReT-9yX8wV7uT6sR5qP4"),
    ("CANARY_DB_PASSWORD", "hunter2-but-Much-Longer-77"),
];
const ENV_CANARY: &str = "cnry-Zq8Xv2Lm4Tp7Wd1Rk9Hs3Bn6";
/// Pattern canaries: shapes of real credentials, values invented.
const PATTERN_CANARIES: &[&str] = &[
    "sk-ant-api03-CANARYqR7vT2mW9xL4pZ8nK3sD6fH1jB5gC0",
    "ghp_CANARYa1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6",
    "AKIACANARY7Q2W3E4R5T",
    "xoxb-123456789012-CANARYabcdefghijKLMN",
    "AIzaSyCANARY-1234567890abcdefghijklmnopq",
];

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every file under `dir`, recursively, as bytes.
fn all_files(dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push((
                p.display().to_string(),
                std::fs::read(&p).unwrap_or_default(),
            ));
        }
    }
}

#[test]
fn canary_secrets_never_reach_any_sink() {
    let p = Project::new();
    let mut leaks: Vec<String> = ENV_CANARIES.iter().map(|(_, v)| v.to_string()).collect();
    let mut text = Vec::new();
    // Known values: every form, including encodings and a line break inside.
    for secret in &leaks {
        text.push(format!("raw: {secret}"));
        text.push(format!("base64: {}", b64(secret.as_bytes())));
        text.push(format!(
            "url: https://example.invalid/?token={}",
            url_encode(secret)
        ));
        let (a, b) = secret.split_at(secret.len() / 2);
        text.push(format!("split: {a}\n{b}"));
        text.push(format!("{{\"config\": {{\"api_key\": \"{secret}\"}}}}"));
    }
    // Credentials ralph cannot know (read from some file by the agent): found by their shape,
    // raw, inside JSON, and in assignments.
    for secret in PATTERN_CANARIES {
        text.push(format!("found in .env: {secret}"));
        text.push(format!(
            "{{\"headers\": {{\"authorization\": \"{secret}\"}}}}"
        ));
        text.push(format!("export SOME_CREDENTIAL={secret}"));
    }
    leaks.extend(PATTERN_CANARIES.iter().map(|s| s.to_string()));
    let printed = text.join("\n");
    let script = Script::new().default_steps(vec![
        // Positive control: the same text, written where ralph does not look.
        Step::write(p.aux_path("control.txt"), printed.clone()),
        Step::print(printed.clone()),
        Step::stderr(format!("error: auth failed with key {ENV_CANARY}")),
        Step::claude_result(
            ClaudeResult::error(format!(
                "Invalid API key {} · {ENV_CANARY}",
                PATTERN_CANARIES[0]
            ))
            .api_error_status(500),
        ),
        Step::exit(1),
    ]);
    p.configure(&script, "claude-stream-json", "max_iterations = 2", "[[gates]]\nname = \"leaky\"\nrun = \"echo leaked token ghp_CANARYa1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6; exit 1\"\nwhen = \"iteration\"\n");
    let out = Out::from(
        p.ralph()
            .args(["run", "--json"])
            .envs(ENV_CANARIES.iter().copied())
            .output()
            .unwrap(),
    );
    assert!(out.code != 0, "{}", out.stderr);

    // The control proves the canaries were really printed, in every form.
    let control = std::fs::read_to_string(p.aux_path("control.txt")).unwrap();
    for secret in &leaks {
        assert!(control.contains(secret.as_str()), "control lacks {secret}");
    }
    let output = p.artifact(1, "output.log");
    assert!(
        output.contains("[REDACTED"),
        "redaction markers expected: {}",
        &output[..output.len().min(400)]
    );

    // Zero hits: whole values and any 12-character piece of them, raw or encoded.
    let mut files = Vec::new();
    all_files(&p.path(".ralph"), &mut files);
    files.push(("ralph stdout".into(), out.stdout.clone().into_bytes()));
    files.push(("ralph stderr".into(), out.stderr.clone().into_bytes()));
    let mut hits = Vec::new();
    for (name, bytes) in &files {
        let hay = String::from_utf8_lossy(bytes);
        for secret in &leaks {
            let known = ENV_CANARIES.iter().any(|(_, v)| v == secret);
            let mut forms = vec![secret.clone()];
            if known {
                forms.push(b64(secret.as_bytes()).trim_end_matches('=').to_string());
                forms.push(url_encode(secret));
            }
            for form in forms {
                for start in (0..form.len().saturating_sub(12)).step_by(4) {
                    let piece = &form[start..start + 12];
                    if hay.contains(piece) {
                        hits.push(format!("{name}: {piece:?} of {secret}"));
                        break;
                    }
                }
            }
        }
    }
    hits.sort();
    hits.dedup();
    assert!(
        hits.is_empty(),
        "{} leaks:\n{}",
        hits.len(),
        hits.join("\n")
    );
}
