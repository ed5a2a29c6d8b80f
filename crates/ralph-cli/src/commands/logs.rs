//! `ralph logs`: a run's iterations, one iteration's artifacts (`--iteration N`), or its events
//! as JSON lines (`--json`), optionally following a live run (`--follow`).

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use ralph_store::RunRecord;
use ralph_types::exit_codes;

use super::open_store;
use crate::cli::LogsArgs;
use crate::error::CliError;
use crate::render::{fmt_secs, fmt_tokens, fmt_usd};
use crate::{lock, paths};

pub fn cmd_logs(args: LogsArgs) -> Result<i32, CliError> {
    let cwd = paths::cwd()?;
    let Some(store) = open_store(&cwd)? else {
        return Err(CliError::usage(
            "no runs in this project yet",
            Some("start one with `ralph run`".into()),
        ));
    };
    let run = match &args.run {
        Some(id) => store.run(id)?.ok_or_else(|| {
            CliError::usage(
                format!("no run with id {id}"),
                Some("`ralph status` shows the latest run id".into()),
            )
        })?,
        None => store.latest_run()?.ok_or_else(|| {
            CliError::usage(
                "no runs in this project yet",
                Some("start one with `ralph run`".into()),
            )
        })?,
    };
    // What the agent wrote is shown, not obeyed, on a terminal (`escapes.rs`).
    let safe = crate::escapes::wanted(args.raw);
    let shown = |text: String| {
        if safe {
            crate::escapes::neutralise_str(&text)
        } else {
            text
        }
    };
    if let Some(n) = args.iteration {
        return show_iteration(&cwd, &run, n, safe);
    }
    if args.json || args.follow {
        let mut last = 0i64;
        let print_new = |last: &mut i64| -> Result<bool, CliError> {
            let mut finished = false;
            for (id, e) in store.events(&run.id, *last)? {
                *last = id;
                finished |= e.kind == "run.finished";
                if args.json {
                    outln!("{}", shown(e.payload));
                } else {
                    outln!("{}", shown(follow_line(&e)));
                }
            }
            let _ = std::io::stdout().flush();
            Ok(finished)
        };
        loop {
            if print_new(&mut last)? || !args.follow {
                break;
            }
            if lock::holder(&cwd.join(".ralph")).is_none() {
                // The writer is gone; whatever it wrote before exiting is on disk now.
                print_new(&mut last)?;
                break;
            }
            // Polling a read-only view is the simplest follower that cannot block the writer.
            std::thread::sleep(Duration::from_millis(200));
        }
        return Ok(exit_codes::SUCCESS);
    }
    let iterations = store.iterations(&run.id)?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "run {} · {} · {} iterations",
        run.id,
        run.backend,
        iterations.len()
    );
    for it in iterations {
        let cost = match it.cost_usd {
            Some(c) => fmt_usd(c),
            None if it.cost_source == "invalid" => "cost invalid".into(),
            None => "cost ?".into(),
        };
        let tokens = it
            .tokens
            .map(|t| format!("{} tok", fmt_tokens(t.total())))
            .unwrap_or_else(|| "tokens ?".into());
        let files = it
            .files_changed
            .map(|f| format!(" · {f} files"))
            .unwrap_or_default();
        let err = match (&it.error_class, &it.error_message) {
            (Some(c), Some(m)) => format!(
                " · {c}: {}",
                shown(m.lines().next().unwrap_or("").to_string())
            ),
            (Some(c), None) => format!(" · {c}"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:>4}  {:<12} {:>7}  {:>9}  {:>10}  ({}){files}{err}",
            it.n,
            it.outcome,
            fmt_secs(it.duration_s),
            cost,
            tokens,
            it.cost_source
        );
    }
    Ok(exit_codes::SUCCESS)
}

fn follow_line(e: &ralph_store::EventRecord) -> String {
    let mut fields = Vec::new();
    if let Ok(serde_json::Value::Object(map)) =
        serde_json::from_str::<serde_json::Value>(&e.payload)
    {
        for (k, v) in map {
            if matches!(k.as_str(), "event" | "run_id" | "ts") || v.is_null() {
                continue;
            }
            fields.push(format!("{k}={v}"));
        }
    }
    format!("{} {} {}", e.ts, e.kind, fields.join(" "))
}

fn show_iteration(cwd: &Path, run: &RunRecord, n: u32, safe: bool) -> Result<i32, CliError> {
    let dir = cwd
        .join(".ralph")
        .join("runs")
        .join(&run.id)
        .join(format!("{n:04}"));
    if !dir.is_dir() {
        return Err(CliError::usage(
            format!("run {} has no iteration {n}", run.id),
            Some(format!(
                "iterations so far: 1..={}",
                run.iteration.max(run.current_iteration.unwrap_or(0))
            )),
        ));
    }
    let mut names: Vec<String> = fs::read_dir(&dir)
        .map_err(|e| {
            CliError::new(
                exit_codes::INTERNAL_ERROR,
                format!("failed to read {}: {e}", dir.display()),
                None,
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    // prompt, output, stderr, then gates.
    let rank = |n: &str| match n {
        "prompt.md" => 0,
        "output.log" => 1,
        "stderr.log" => 2,
        _ => 3,
    };
    names.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    let mut out = std::io::stdout().lock();
    for name in names {
        let path = dir.join(&name);
        let _ = writeln!(
            out,
            "=== {} ===",
            path.strip_prefix(cwd).unwrap_or(&path).display()
        );
        if let Ok(mut f) = fs::File::open(&path) {
            let _ = if safe {
                crate::escapes::copy(&mut f, &mut out)
            } else {
                std::io::copy(&mut f, &mut out).map(|_| ())
            };
        }
        let _ = writeln!(out);
    }
    Ok(exit_codes::SUCCESS)
}
