//! `ralph prompt`: what ralph sent the agent each iteration, read back from the state database
//! and the prompt archive (`.ralph/runs/<run-id>/<NNNN>/prompt.md`).
//!
//! * `log`: prompt size per iteration, the bytes ralph added to the user's prompt, and which
//!   version of the user's prompt was sent (a new version each time PROMPT.md changed);
//! * `show N`: the archived prompt of iteration N, verbatim;
//! * `diff N M`: a unified diff of two archived prompts; exits 0 whether or not they differ
//!   (like `git diff` without `--exit-code`): a difference is an answer, not a failure;
//! * `stats`: ralph's overhead in bytes and exact tokens (o200k_base) and how much of each
//!   prompt is a byte-identical prefix of the previous one (what a provider's prompt cache can
//!   reuse). The tokenizer is loaded only here (0.2-0.5 s and ~55 MB of memory to build its
//!   tables): the loop itself never loads it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ralph_store::{IterationRecord, RunRecord, Store};
use ralph_types::exit_codes;
use serde_json::{json, Value};

use crate::cli::{PromptArgs, PromptCmd};
use crate::error::CliError;
use crate::paths;

/// The heading that ends the user's part of every prompt (see `ralph_core::prompt::build`);
/// used only for iterations recorded before the database kept the user part's size.
const LOOP_RULES: &str = "\n\n## Loop rules (ralph)\n";
const FEEDBACK: &str = "\n## Feedback from the previous iteration\n";

pub fn cmd_prompt(args: PromptArgs) -> Result<i32, CliError> {
    let ctx = Ctx::open(args.run.as_deref())?;
    match args.cmd {
        PromptCmd::Log => log(&ctx, args.json),
        PromptCmd::Show { n } => show(&ctx, n, args.json),
        PromptCmd::Diff { n, m } => diff(&ctx, n, m, args.json),
        PromptCmd::Stats => stats(&ctx, args.json),
    }
}

/// The selected run, its committed iterations and where its prompts are archived.
struct Ctx {
    run: RunRecord,
    iterations: Vec<IterationRecord>,
    run_dir: PathBuf,
}

fn no_runs() -> CliError {
    CliError::usage(
        "no runs in this project yet",
        Some("start one with `ralph run`".into()),
    )
}

impl Ctx {
    fn open(run_id: Option<&str>) -> Result<Ctx, CliError> {
        let cwd = paths::cwd()?;
        let state_dir = cwd.join(".ralph");
        let db = state_dir.join("ralph.db");
        if !db.exists() {
            return Err(no_runs());
        }
        let store = Store::open_read_only(&db)?;
        let run = match run_id {
            Some(id) => match store.run(id)? {
                Some(run) => run,
                None => {
                    let recent: Vec<String> = store.runs(5)?.into_iter().map(|r| r.id).collect();
                    let hint = if recent.is_empty() {
                        "this project has no runs yet; start one with `ralph run`".to_string()
                    } else {
                        format!(
                            "recent runs, newest first: {}; without --run the latest is used",
                            recent.join(", ")
                        )
                    };
                    return Err(CliError::usage(format!("no run with id {id}"), Some(hint)));
                }
            },
            None => store.latest_run()?.ok_or_else(no_runs)?,
        };
        let iterations = store.iterations(&run.id)?;
        let run_dir = state_dir.join("runs").join(&run.id);
        Ok(Ctx {
            run,
            iterations,
            run_dir,
        })
    }

    fn prompt_path(&self, n: u32) -> PathBuf {
        prompt_path(&self.run_dir, n)
    }

    /// The archived prompt of iteration `n`, or a usage error naming the iterations there are.
    fn read_prompt(&self, n: u32) -> Result<Vec<u8>, CliError> {
        let path = self.prompt_path(n);
        match fs::read(&path) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let available = archived_iterations(&self.run_dir);
                let hint = if available.is_empty() {
                    format!("run {} has no archived prompts", self.run.id)
                } else {
                    format!(
                        "run {} has archived prompts for iteration{} {}",
                        self.run.id,
                        if available.len() == 1 { "" } else { "s" },
                        ranges(&available)
                    )
                };
                Err(CliError::usage(
                    format!(
                        "run {} has no archived prompt for iteration {n}",
                        self.run.id
                    ),
                    Some(hint),
                ))
            }
            Err(e) => Err(CliError::new(
                exit_codes::INTERNAL_ERROR,
                format!("failed to read {}: {e}", path.display()),
                None,
            )),
        }
    }
}

fn prompt_path(run_dir: &Path, n: u32) -> PathBuf {
    run_dir.join(format!("{n:04}")).join("prompt.md")
}

/// Iterations of the run with an archived prompt, ascending.
fn archived_iterations(run_dir: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir(run_dir) else {
        return Vec::new();
    };
    let mut found: Vec<u32> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let n: u32 = name.parse().ok()?;
            (format!("{n:04}") == name && n > 0).then_some(n)
        })
        .filter(|n| prompt_path(run_dir, *n).is_file())
        .collect();
    found.sort_unstable();
    found
}

/// `[1, 2, 3, 5, 7, 8]` → `1-3, 5, 7-8`.
fn ranges(ns: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ns.len() {
        let start = ns[i];
        let mut end = start;
        while i + 1 < ns.len() && ns[i + 1] == end + 1 {
            i += 1;
            end = ns[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(", ")
}

/// Length of the longest common prefix of `a` and `b`, in bytes.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Share of `cur` that is a byte-identical prefix of `prev`.
fn prefix_share(prev: &[u8], cur: &[u8]) -> Option<f64> {
    (!cur.is_empty()).then(|| common_prefix(prev, cur) as f64 / cur.len() as f64)
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Where the user's part of `prompt` ends: the recorded size when it falls on a character
/// boundary, else the start of ralph's fixed instructions.
fn user_part_len(prompt: &str, recorded: Option<u64>) -> Option<usize> {
    if let Some(n) = recorded.and_then(|n| usize::try_from(n).ok()) {
        if n <= prompt.len() && prompt.is_char_boundary(n) {
            return Some(n);
        }
    }
    prompt.find(LOOP_RULES)
}

/// User-prompt versions: `v1`, `v2`… numbered by distinct hash in order of first appearance.
#[derive(Default)]
struct Versions {
    seen: Vec<String>,
}

impl Versions {
    fn number(&mut self, sha: &str) -> usize {
        match self.seen.iter().position(|s| s == sha) {
            Some(i) => i + 1,
            None => {
                self.seen.push(sha.to_string());
                self.seen.len()
            }
        }
    }
}

fn short(sha: &str) -> &str {
    sha.get(..8).unwrap_or(sha)
}

struct LogRow {
    n: u32,
    prompt_bytes: Option<u64>,
    user_bytes: Option<u64>,
    ralph_bytes: Option<u64>,
    version: Option<usize>,
    sha: Option<String>,
    edited: bool,
    outcome: String,
}

fn log_rows(iterations: &[IterationRecord]) -> (Vec<LogRow>, usize) {
    let mut versions = Versions::default();
    let mut prev_sha: Option<&str> = None;
    let mut rows = Vec::with_capacity(iterations.len());
    for it in iterations {
        let sha = it.prompt_sha256.as_deref();
        let edited = matches!((prev_sha, sha), (Some(a), Some(b)) if a != b);
        if sha.is_some() {
            prev_sha = sha;
        }
        rows.push(LogRow {
            n: it.n,
            prompt_bytes: it.prompt_bytes,
            user_bytes: it.user_prompt_bytes,
            ralph_bytes: match (it.prompt_bytes, it.user_prompt_bytes) {
                (Some(p), Some(u)) => Some(p.saturating_sub(u)),
                _ => None,
            },
            version: sha.map(|s| versions.number(s)),
            sha: sha.map(str::to_string),
            edited,
            outcome: it.outcome.clone(),
        });
    }
    (rows, versions.seen.len())
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "?".to_string(), |v| v.to_string())
}

fn log(ctx: &Ctx, json: bool) -> Result<i32, CliError> {
    let (rows, n_versions) = log_rows(&ctx.iterations);
    if json {
        let arr: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "iteration": r.n,
                    "outcome": r.outcome,
                    "prompt_bytes": r.prompt_bytes,
                    "user_prompt_bytes": r.user_bytes,
                    "ralph_bytes": r.ralph_bytes,
                    "prompt_version": r.version,
                    "prompt_sha256": r.sha,
                    "prompt_edited": r.edited,
                })
            })
            .collect();
        outln!("{}", Value::Array(arr));
        return Ok(exit_codes::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "run {} · {} iteration{} · {} prompt version{}",
        ctx.run.id,
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        n_versions,
        if n_versions == 1 { "" } else { "s" }
    );
    if rows.is_empty() {
        let _ = writeln!(out, "no committed iterations yet");
        return Ok(exit_codes::SUCCESS);
    }
    let _ = writeln!(out, "iter    prompt B  ralph B  user prompt");
    for r in &rows {
        let version = match (&r.version, &r.sha) {
            (Some(v), Some(sha)) => format!("v{v} {}", short(sha)),
            _ => "?".to_string(),
        };
        let edited = if r.edited { "  prompt edited" } else { "" };
        let _ = writeln!(
            out,
            "{:>4}  {:>10}  {:>7}  {version}{edited}",
            r.n,
            opt(r.prompt_bytes),
            opt(r.ralph_bytes),
        );
    }
    Ok(exit_codes::SUCCESS)
}

fn show(ctx: &Ctx, n: u32, json: bool) -> Result<i32, CliError> {
    let bytes = ctx.read_prompt(n)?;
    if json {
        outln!(
            "{}",
            json!({
                "run_id": ctx.run.id,
                "iteration": n,
                "prompt": String::from_utf8_lossy(&bytes),
            })
        );
        return Ok(exit_codes::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    // Verbatim, even if not UTF-8; a closed pipe (`| head`) is not an error.
    let _ = out.write_all(&bytes);
    let _ = out.flush();
    Ok(exit_codes::SUCCESS)
}

fn diff(ctx: &Ctx, n: u32, m: u32, json: bool) -> Result<i32, CliError> {
    let a = String::from_utf8_lossy(&ctx.read_prompt(n)?).into_owned();
    let b = String::from_utf8_lossy(&ctx.read_prompt(m)?).into_owned();
    let text = if a == b {
        String::new()
    } else {
        similar::TextDiff::from_lines(&a, &b)
            .unified_diff()
            .context_radius(3)
            .header(&format!("iteration {n}"), &format!("iteration {m}"))
            .to_string()
    };
    if json {
        outln!(
            "{}",
            json!({
                "run_id": ctx.run.id,
                "from": n,
                "to": m,
                "identical": a == b,
                "common_prefix_bytes": common_prefix(a.as_bytes(), b.as_bytes()),
                "diff": text,
            })
        );
    } else if a == b {
        eprintln!("ralph: the prompts of iterations {n} and {m} are identical");
    } else {
        out!("{text}");
    }
    Ok(exit_codes::SUCCESS)
}

/// One iteration's numbers for `stats`.
struct StatRow {
    n: u32,
    archived: bool,
    prompt_bytes: Option<u64>,
    ralph_bytes: Option<u64>,
    prompt_tokens: Option<u64>,
    ralph_tokens: Option<u64>,
    /// Common prefix with the previous iteration's prompt: bytes and share of this prompt.
    prefix: Option<(usize, f64)>,
    feedback: bool,
}

fn stat_rows(ctx: &Ctx, count_tokens: &dyn Fn(&str) -> u64) -> Result<Vec<StatRow>, CliError> {
    let mut rows = Vec::with_capacity(ctx.iterations.len());
    let mut prev: Option<(u32, Vec<u8>)> = None;
    for it in &ctx.iterations {
        let path = ctx.prompt_path(it.n);
        let bytes = match fs::read(&path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(CliError::new(
                    exit_codes::INTERNAL_ERROR,
                    format!("failed to read {}: {e}", path.display()),
                    None,
                ))
            }
        };
        let Some(bytes) = bytes else {
            rows.push(StatRow {
                n: it.n,
                archived: false,
                prompt_bytes: it.prompt_bytes,
                ralph_bytes: match (it.prompt_bytes, it.user_prompt_bytes) {
                    (Some(p), Some(u)) => Some(p.saturating_sub(u)),
                    _ => None,
                },
                prompt_tokens: None,
                ralph_tokens: None,
                prefix: None,
                feedback: false,
            });
            prev = None;
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let user_len = user_part_len(&text, it.user_prompt_bytes);
        let prompt_tokens = count_tokens(&text);
        // What ralph's additions cost: the whole prompt's tokens minus the user's part alone.
        let ralph_tokens = user_len.map(|u| prompt_tokens.saturating_sub(count_tokens(&text[..u])));
        let prefix = match &prev {
            Some((pn, pb)) if *pn + 1 == it.n => {
                prefix_share(pb, &bytes).map(|s| (common_prefix(pb, &bytes), s))
            }
            _ => None,
        };
        rows.push(StatRow {
            n: it.n,
            archived: true,
            prompt_bytes: Some(bytes.len() as u64),
            ralph_bytes: user_len.map(|u| (text.len() - u) as u64),
            prompt_tokens: Some(prompt_tokens),
            ralph_tokens,
            prefix,
            feedback: user_len.is_some_and(|u| text[u..].contains(FEEDBACK)),
        });
        prev = Some((it.n, bytes));
    }
    Ok(rows)
}

fn sum(values: impl Iterator<Item = Option<u64>>) -> (u64, usize) {
    values.flatten().fold((0, 0), |(s, c), v| (s + v, c + 1))
}

fn mean(values: impl Iterator<Item = Option<u64>>) -> Option<f64> {
    let (s, c) = sum(values);
    (c > 0).then(|| s as f64 / c as f64)
}

fn stats(ctx: &Ctx, json: bool) -> Result<i32, CliError> {
    let bpe = tiktoken_rs::o200k_base().map_err(|e| {
        CliError::new(
            exit_codes::INTERNAL_ERROR,
            format!("failed to load the o200k_base tokenizer: {e}"),
            None,
        )
    })?;
    let count = |s: &str| bpe.encode_ordinary(s).len() as u64;
    let rows = stat_rows(ctx, &count)?;

    let total_prompt = sum(rows.iter().map(|r| r.prompt_bytes)).0;
    let total_ralph = sum(rows.iter().map(|r| r.ralph_bytes)).0;
    let total_prompt_tok = sum(rows.iter().map(|r| r.prompt_tokens)).0;
    let total_ralph_tok = sum(rows.iter().map(|r| r.ralph_tokens)).0;
    let shares: Vec<(u32, f64)> = rows
        .iter()
        .filter_map(|r| r.prefix.map(|(_, s)| (r.n, s)))
        .collect();
    let avg_share =
        (!shares.is_empty()).then(|| shares.iter().map(|s| s.1).sum::<f64>() / shares.len() as f64);
    let min_share = shares.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1));
    let avg = |f: fn(&StatRow) -> Option<u64>| mean(rows.iter().map(f));

    if json {
        let per: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "iteration": r.n,
                    "archived": r.archived,
                    "prompt_bytes": r.prompt_bytes,
                    "ralph_bytes": r.ralph_bytes,
                    "prompt_tokens": r.prompt_tokens,
                    "ralph_tokens": r.ralph_tokens,
                    "prefix_bytes": r.prefix.map(|p| p.0),
                    "prefix_share": r.prefix.map(|p| round4(p.1)),
                    "feedback": r.feedback,
                })
            })
            .collect();
        let v = json!({
            "run_id": ctx.run.id,
            "tokenizer": "o200k_base",
            "iterations": per,
            "total": {
                "prompt_bytes": total_prompt,
                "ralph_bytes": total_ralph,
                "prompt_tokens": total_prompt_tok,
                "ralph_tokens": total_ralph_tok,
            },
            "average": {
                "prompt_bytes": avg(|r| r.prompt_bytes).map(round4),
                "ralph_bytes": avg(|r| r.ralph_bytes).map(round4),
                "prompt_tokens": avg(|r| r.prompt_tokens).map(round4),
                "ralph_tokens": avg(|r| r.ralph_tokens).map(round4),
                "prefix_share": avg_share.map(round4),
            },
            "min_prefix_share": min_share.map(|(n, s)| json!({"iteration": n, "share": round4(s)})),
        });
        outln!("{v}");
        return Ok(exit_codes::SUCCESS);
    }

    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "run {} · {} iteration{} · tokens counted with o200k_base",
        ctx.run.id,
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
    if rows.is_empty() {
        let _ = writeln!(out, "no committed iterations yet");
        return Ok(exit_codes::SUCCESS);
    }
    let _ = writeln!(
        out,
        "iter     prompt B  prompt tok   ralph B  ralph tok  same prefix"
    );
    let pct = |s: Option<f64>| s.map_or_else(|| "-".to_string(), |s| format!("{:.1}%", s * 100.0));
    for r in &rows {
        let mut note = String::new();
        if !r.archived {
            note.push_str("  (prompt not archived)");
        }
        if r.feedback {
            note.push_str("  (with feedback)");
        }
        let _ = writeln!(
            out,
            "{:>4}  {:>11}  {:>10}  {:>8}  {:>9}  {:>11}{note}",
            r.n,
            opt(r.prompt_bytes),
            opt(r.prompt_tokens),
            opt(r.ralph_bytes),
            opt(r.ralph_tokens),
            pct(r.prefix.map(|p| p.1)),
        );
    }
    let _ = writeln!(
        out,
        "total {:>11}  {:>10}  {:>8}  {:>9}",
        total_prompt, total_prompt_tok, total_ralph, total_ralph_tok
    );
    let f1 = |v: Option<f64>| v.map_or_else(|| "?".to_string(), |v| format!("{v:.1}"));
    let _ = writeln!(
        out,
        "avg   {:>11}  {:>10}  {:>8}  {:>9}  {:>11}",
        f1(avg(|r| r.prompt_bytes)),
        f1(avg(|r| r.prompt_tokens)),
        f1(avg(|r| r.ralph_bytes)),
        f1(avg(|r| r.ralph_tokens)),
        pct(avg_share),
    );
    match min_share {
        Some((n, s)) => {
            let _ = writeln!(
                out,
                "lowest same-prefix share: {} (iteration {n} vs {})",
                pct(Some(s)),
                n - 1
            );
        }
        None => {
            let _ = writeln!(
                out,
                "same-prefix share: needs two consecutive archived prompts"
            );
        }
    }
    Ok(exit_codes::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_compress_consecutive_iterations() {
        assert_eq!(ranges(&[]), "");
        assert_eq!(ranges(&[4]), "4");
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "1-3, 5, 7-8");
    }

    #[test]
    fn prefix_share_is_relative_to_the_newer_prompt() {
        assert_eq!(common_prefix(b"abcd", b"abxd"), 2);
        assert_eq!(prefix_share(b"abcd", b"abcd"), Some(1.0));
        assert_eq!(prefix_share(b"ab", b"abcd"), Some(0.5));
        assert_eq!(prefix_share(b"abcd", b""), None);
    }

    #[test]
    fn user_part_uses_the_recorded_size_then_the_heading() {
        let p = "Task.\n\n## Loop rules (ralph)\nrules";
        assert_eq!(user_part_len(p, Some(5)), Some(5));
        assert_eq!(user_part_len(p, None), Some(5));
        assert_eq!(user_part_len(p, Some(999)), Some(5));
        assert_eq!(user_part_len("é", Some(1)), None);
    }

    fn it(n: u32, sha: Option<&str>) -> IterationRecord {
        IterationRecord {
            run_id: "r".into(),
            n,
            started_at: String::new(),
            finished_at: String::new(),
            duration_s: 0.0,
            backend: "custom".into(),
            model: None,
            outcome: "progressed".into(),
            error_class: None,
            error_message: None,
            exit_code: Some(0),
            signal: None,
            cost_usd: None,
            cost_source: "unknown".into(),
            tokens: None,
            files_changed: None,
            insertions: None,
            deletions: None,
            checkpoint: None,
            completion_claimed: false,
            gates_passed: None,
            output_lines: 0,
            unknown_lines: 0,
            prompt_sha256: sha.map(str::to_string),
            prompt_bytes: Some(500),
            user_prompt_bytes: Some(40),
            context_tokens: None,
            context_window: None,
        }
    }

    #[test]
    fn versions_number_distinct_hashes_and_mark_edits() {
        let its = [
            it(1, Some("aaaaaaaaaa")),
            it(2, Some("aaaaaaaaaa")),
            it(3, Some("bbbbbbbbbb")),
            it(4, None),
            it(5, Some("aaaaaaaaaa")),
        ];
        let (rows, versions) = log_rows(&its);
        assert_eq!(versions, 2);
        let v: Vec<_> = rows.iter().map(|r| (r.version, r.edited)).collect();
        assert_eq!(
            v,
            [
                (Some(1), false),
                (Some(1), false),
                (Some(2), true),
                (None, false),
                (Some(1), true)
            ]
        );
        assert_eq!(rows[0].ralph_bytes, Some(460));
        assert_eq!(short("aaaaaaaaaa"), "aaaaaaaa");
        assert_eq!(short("ab"), "ab");
    }
}
