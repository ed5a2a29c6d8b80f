//! `ralph status`: the current or last run, as text or `--json` (CLI.md "`ralph status
//! --json`").

use std::io::Write;
use std::path::Path;

use ralph_store::{RunRecord, RunState};
use ralph_types::exit_codes;

use super::open_store;
use crate::cli::StatusArgs;
use crate::error::CliError;
use crate::render::{cost_text, fmt_secs, fmt_tokens, fmt_usd, tokens_text};
use crate::{lock, paths};

/// A run whose row says running but whose lock is free crashed: show it as interrupted.
fn effective_state(run: &RunRecord, cwd: &Path) -> (RunState, bool) {
    if run.state == RunState::Running && lock::holder(&cwd.join(".ralph")).is_none() {
        return (RunState::Interrupted, false);
    }
    (run.state, run.state == RunState::Running)
}

pub fn cmd_status(args: StatusArgs) -> Result<i32, CliError> {
    let cwd = paths::cwd()?;
    let store = open_store(&cwd)?;
    let run = match &store {
        Some(store) => store.latest_run()?,
        None => None,
    };
    let Some(run) = run else {
        if args.json {
            outln!(
                "{}",
                serde_json::json!({"version": 1, "run_id": null, "state": "none"})
            );
        } else {
            eprintln!("ralph: no runs in this project yet; start one with `ralph run`");
        }
        return Ok(exit_codes::SUCCESS);
    };
    let (state, live) = effective_state(&run, &cwd);
    // The last committed iteration says what happened most recently (and why, on failure).
    let last = match &store {
        Some(store) => store.iterations(&run.id)?.pop(),
        None => None,
    };
    // Iterations nobody reported a cost for: their cost is unknown, never $0.
    let unknown = match &store {
        Some(store) => store.unknown_cost_iterations(&run.id)?,
        None => 0,
    };
    let all_unknown = run.iteration > 0 && unknown >= run.iteration;
    let sandbox = match &store {
        Some(store) => sandbox_of(store, &run.id)?,
        None => Sandbox::default(),
    };
    let elapsed = run.elapsed_s
        + if live {
            seconds_since(&run.updated_at)
        } else {
            0.0
        };
    if args.json {
        let t = run.tokens;
        let v = serde_json::json!({
            "version": 1,
            "run_id": run.id,
            "state": state.as_str(),
            "stop_reason": run.stop_reason,
            "exit_code": run.exit_code,
            "backend": run.backend,
            "model": run.model,
            "iteration": run.iteration,
            "current_iteration": run.current_iteration,
            "max_iterations": run.max_iterations,
            "started_at": run.started_at,
            "updated_at": run.updated_at,
            "elapsed_s": (elapsed * 1000.0).round() / 1000.0,
            // `null` when no iteration's cost is known; a partial total otherwise, with the
            // count of iterations it leaves out.
            "cost_usd": if all_unknown { None } else { Some(run.cost_usd) },
            "cost_unknown_iterations": unknown,
            "budget_usd": run.budget_usd,
            "tokens": {"input": t.input, "output": t.output, "cache_read": t.cache_read, "cache_write": t.cache_write},
            "pid": if live { run.pid } else { None },
            // What the agent ran in, what of `[sandbox]` was not enforced, what it refused.
            "sandbox": sandbox.label,
            "sandbox_gaps": sandbox.gaps,
            "sandbox_denied": sandbox.denied,
            "last_iteration": last.as_ref().map(|it| serde_json::json!({
                "iteration": it.n,
                "backend": it.backend,
                "outcome": it.outcome,
                "error_class": it.error_class,
                "error_message": it.error_message,
            })),
        });
        outln!("{v}");
        return Ok(exit_codes::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "run        {}", run.id);
    let state_line = match (state, &run.stop_reason) {
        (RunState::Running, _) => match run.current_iteration {
            Some(n) => format!("running iteration {n} (PID {})", run.pid.unwrap_or(0)),
            None => format!("running (PID {})", run.pid.unwrap_or(0)),
        },
        (RunState::Interrupted, None) => {
            "interrupted (ralph exited unexpectedly); `ralph run` resumes".to_string()
        }
        (s, Some(r)) => format!(
            "{} ({r}, exit {})",
            s.as_str(),
            run.exit_code.unwrap_or(exit_codes::COMPLETED)
        ),
        (s, None) => s.as_str().to_string(),
    };
    let _ = writeln!(out, "state      {state_line}");
    let model = run
        .model
        .as_deref()
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    let _ = writeln!(out, "backend    {}{model}", run.backend);
    let _ = writeln!(
        out,
        "iterations {} of {}",
        run.iteration, run.max_iterations
    );
    let _ = writeln!(out, "elapsed    {}", fmt_secs(elapsed));
    if let Some(label) = &sandbox.label {
        let refused = match sandbox.denied {
            0 => String::new(),
            1 => " (1 refusal: `ralph logs` names it)".to_string(),
            n => format!(" ({n} refusals: `ralph logs` names them)"),
        };
        let _ = writeln!(out, "sandbox    {label}{refused}");
        for gap in &sandbox.gaps {
            let _ = writeln!(out, "           not enforced: {gap}");
        }
    }
    let budget = run
        .budget_usd
        .map(|b| format!(" of {}", fmt_usd(b)))
        .unwrap_or_default();
    let cost = if all_unknown {
        "unknown (the agent reports none)".to_string()
    } else {
        cost_text(run.cost_usd, unknown, run.iteration)
    };
    let _ = writeln!(out, "cost       {cost}{budget}");
    let t = run.tokens;
    if tokens_text(t.total(), unknown, run.iteration) == "tokens unknown" {
        let _ = writeln!(out, "tokens     unknown (the agent reports none)");
    } else {
        let _ = writeln!(
            out,
            "tokens     {} (input {}, output {}, cache read {}, cache write {})",
            fmt_tokens(t.total()),
            t.input,
            t.output,
            t.cache_read,
            t.cache_write
        );
    }
    if let Some(it) = last {
        let error = match (&it.error_class, &it.error_message) {
            (Some(c), Some(m)) => format!(": {c} ({})", m.lines().next().unwrap_or("")),
            (Some(c), None) => format!(": {c}"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "last       iteration {} ({}) {}{error}",
            it.n, it.backend, it.outcome
        );
    }
    Ok(exit_codes::SUCCESS)
}

fn seconds_since(rfc3339: &str) -> f64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                .num_milliseconds()
                .max(0) as f64
                / 1000.0
        })
        .unwrap_or(0.0)
}

/// The run's sandbox as its `run.started` event recorded it (runs from before the sandbox have
/// none).
#[derive(Debug, Default)]
struct Sandbox {
    label: Option<String>,
    gaps: Vec<String>,
    denied: u64,
}

fn sandbox_of(store: &ralph_store::Store, run_id: &str) -> Result<Sandbox, CliError> {
    let (started, _) = store.last_event(run_id, "run.started")?;
    let (_, denied) = store.last_event(run_id, "sandbox.denied")?;
    let payload: serde_json::Value = started
        .and_then(|e| serde_json::from_str(&e.payload).ok())
        .unwrap_or_default();
    Ok(Sandbox {
        label: payload["sandbox"].as_str().map(str::to_string),
        gaps: payload["sandbox_gaps"]
            .as_array()
            .map(|g| {
                g.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        denied,
    })
}
