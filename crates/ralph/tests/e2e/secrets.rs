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

/// A value whose variable is named like a personal access token (`*_PAT`, not `PATH`).
const PAT: &str = "pAt9Xq2Lm7Wd4Rk8Hs3B";

/// Every file under `.ralph/`, ralph's stdout and stderr, and the name of each hit of `secret`.
fn leaks_of(p: &Project, outs: &[&Out], secret: &str) -> Vec<String> {
    let mut files = Vec::new();
    all_files(&p.path(".ralph"), &mut files);
    for (i, out) in outs.iter().enumerate() {
        files.push((format!("stdout {i}"), out.stdout.clone().into_bytes()));
        files.push((format!("stderr {i}"), out.stderr.clone().into_bytes()));
    }
    files
        .iter()
        .filter(|(_, bytes)| String::from_utf8_lossy(bytes).contains(secret))
        .map(|(name, _)| name.clone())
        .collect()
}

/// The sinks that printed secrets: `run --dry-run` (the prompt and the agent's arguments), the
/// prompt archive of a `-p` prompt, `rollback --dry-run` (a file named like a secret); and the
/// spellings that got past: hex, a space between the characters, a space inside, a URL's
/// password.
#[test]
fn secrets_in_prompts_arguments_file_names_and_spellings_are_redacted() {
    let p = Project::git();
    let hex: String = PAT.bytes().map(|b| format!("{b:02x}")).collect();
    let spaced: Vec<String> = PAT.chars().map(String::from).collect();
    let spaced = spaced.join(" ");
    let split = format!("{} {}", &PAT[..7], &PAT[7..]);
    let url = "https://deploy:hunter2@git.example.invalid/x";
    let printed = format!("hex {hex}\nspaced {spaced}\nsplit {split}\nclone {url}\n");
    let script = Script::new().default_steps(vec![
        Step::write(p.aux_path("control.txt"), printed.clone()),
        Step::write(p.path(&format!("{PAT}.txt")), "named like the secret\n"),
        Step::print(printed),
        Step::exit(0),
    ]);
    p.configure_text(&script, "max_iterations = 1");
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-q", "-m", "config"]);
    let prompt = format!("Deploy with the token {PAT}.");
    let ralph = |args: &[&str]| {
        Out::from(
            p.ralph()
                .args(args)
                .env("GITHUB_PAT", PAT)
                .output()
                .unwrap(),
        )
    };
    let dry = ralph(&["run", "--dry-run", "-p", &prompt, "--", "--token", PAT]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout.contains("[REDACTED:GITHUB_PAT]"),
        "{}",
        dry.stdout
    );
    let run = ralph(&["run", "-p", &prompt]);
    let control = std::fs::read_to_string(p.aux_path("control.txt")).unwrap();
    assert!(
        control.contains(&hex) && control.contains("hunter2"),
        "{control}"
    );
    assert!(p.exists(&format!("{PAT}.txt")), "{}", run.stderr);
    let rollback = ralph(&["rollback", "0", "--dry-run"]);
    assert_eq!(rollback.code, 0, "{}", rollback.stderr);
    assert!(
        rollback.stdout.contains("[REDACTED:GITHUB_PAT].txt"),
        "{}",
        rollback.stdout
    );
    let rollback_json = ralph(&["rollback", "0", "--dry-run", "--json"]);
    let outs = [&dry, &run, &rollback, &rollback_json];
    for secret in [
        PAT,
        hex.as_str(),
        spaced.as_str(),
        split.as_str(),
        "hunter2",
    ] {
        let hits = leaks_of(&p, &outs, secret);
        assert!(hits.is_empty(), "{secret:?} leaked into {hits:?}");
    }
    let archived = p.artifact(1, "prompt.md");
    assert!(archived.contains("[REDACTED:GITHUB_PAT]"), "{archived}");
}
