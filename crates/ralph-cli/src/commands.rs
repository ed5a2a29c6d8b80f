//! `init`, `status`, `stop`, `logs`, `doctor`, `completions`.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use clap::CommandFactory;
use ralph_store::{RunRecord, RunState, Store};

use crate::cli::{
    Cli, CompletionsArgs, DoctorArgs, InitArgs, LogsArgs, RunArgs, Shell, StatusArgs, StopArgs,
};
use crate::config;
use crate::error::CliError;
use crate::render::{fmt_secs, fmt_tokens, fmt_usd};
use crate::run::{load_config, read_prompt, resolve, runnable};
use crate::{lock, paths};

pub fn cmd_init(args: InitArgs) -> Result<i32, CliError> {
    let cwd = paths::cwd()?;
    let backend = config::normalize_backend(&args.backend)
        .map_err(|e| CliError::usage(format!("--backend {}: {e}", args.backend), None))?;
    let files = [
        ("ralph.toml", config::init_template(backend)),
        ("PROMPT.md", config::PROMPT_TEMPLATE.to_string()),
    ];
    if !args.force {
        let existing: Vec<&str> = files
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| cwd.join(n).exists())
            .collect();
        if !existing.is_empty() {
            return Err(CliError::usage(
                format!(
                    "{} already exist{}; nothing was written",
                    existing.join(" and "),
                    if existing.len() == 1 { "s" } else { "" }
                ),
                Some("pass --force to overwrite".into()),
            ));
        }
    }
    for (name, content) in &files {
        write_atomically(&cwd.join(name), content.as_bytes())
            .map_err(|e| CliError::new(1, format!("failed to write {name}: {e}"), None))?;
    }
    eprintln!("ralph: wrote ralph.toml (backend {backend}) and PROMPT.md");
    eprintln!("ralph: describe the task in PROMPT.md, then `ralph run`");
    Ok(0)
}

fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("ralph-tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

fn open_store(cwd: &Path) -> Result<Option<Store>, CliError> {
    let db = cwd.join(".ralph").join("ralph.db");
    if !db.exists() {
        return Ok(None);
    }
    Ok(Some(Store::open_read_only(&db)?))
}

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
        return Ok(0);
    };
    let (state, live) = effective_state(&run, &cwd);
    // The last committed iteration says what happened most recently (and why, on failure).
    let last = match &store {
        Some(store) => store.iterations(&run.id)?.pop(),
        None => None,
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
            "cost_usd": run.cost_usd,
            "budget_usd": run.budget_usd,
            "tokens": {"input": t.input, "output": t.output, "cache_read": t.cache_read, "cache_write": t.cache_write},
            "pid": if live { run.pid } else { None },
            "last_iteration": last.as_ref().map(|it| serde_json::json!({
                "iteration": it.n,
                "backend": it.backend,
                "outcome": it.outcome,
                "error_class": it.error_class,
                "error_message": it.error_message,
            })),
        });
        outln!("{v}");
        return Ok(0);
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
        (s, Some(r)) => format!("{} ({r}, exit {})", s.as_str(), run.exit_code.unwrap_or(0)),
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
    let budget = run
        .budget_usd
        .map(|b| format!(" of {}", fmt_usd(b)))
        .unwrap_or_default();
    let _ = writeln!(out, "cost       {}{budget}", fmt_usd(run.cost_usd));
    let t = run.tokens;
    let _ = writeln!(
        out,
        "tokens     {} (input {}, output {}, cache read {}, cache write {})",
        fmt_tokens(t.total()),
        t.input,
        t.output,
        t.cache_read,
        t.cache_write
    );
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
    Ok(0)
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

pub fn cmd_stop(args: StopArgs) -> Result<i32, CliError> {
    let cwd = paths::cwd()?;
    let state_dir = cwd.join(".ralph");
    let Some(pid) = lock::holder(&state_dir) else {
        eprintln!("ralph: no run is active in this project; nothing to stop");
        return Ok(0);
    };
    if args.now {
        // SAFETY: kill(2) on a PID read from our own lock file, which the OS keeps locked only
        // while that process lives.
        let rc = unsafe { libc::kill(pid as i32, libc::SIGUSR1) };
        if rc != 0 {
            return Err(CliError::new(
                1,
                format!(
                    "failed to signal ralph (PID {pid}): {}",
                    std::io::Error::last_os_error()
                ),
                None,
            ));
        }
        eprintln!("ralph: stopping the run now (PID {pid}); the agent is being killed");
    } else {
        fs::write(state_dir.join("STOP"), b"stop\n")
            .map_err(|e| CliError::new(1, format!("failed to write .ralph/STOP: {e}"), None))?;
        eprintln!("ralph: the run (PID {pid}) will stop after the current iteration");
    }
    Ok(0)
}

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
    if let Some(n) = args.iteration {
        return show_iteration(&cwd, &run, n);
    }
    if args.json || args.follow {
        let mut last = 0i64;
        let print_new = |last: &mut i64| -> Result<bool, CliError> {
            let mut finished = false;
            for (id, e) in store.events(&run.id, *last)? {
                *last = id;
                finished |= e.kind == "run.finished";
                if args.json {
                    outln!("{}", e.payload);
                } else {
                    outln!("{}", follow_line(&e));
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
        return Ok(0);
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
        let cost = it.cost_usd.map(fmt_usd).unwrap_or_else(|| "cost ?".into());
        let tokens = it
            .tokens
            .map(|t| format!("{} tok", fmt_tokens(t.total())))
            .unwrap_or_else(|| "tokens ?".into());
        let files = it
            .files_changed
            .map(|f| format!(" · {f} files"))
            .unwrap_or_default();
        let err = match (&it.error_class, &it.error_message) {
            (Some(c), Some(m)) => format!(" · {c}: {}", m.lines().next().unwrap_or("")),
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
    Ok(0)
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

fn show_iteration(cwd: &Path, run: &RunRecord, n: u32) -> Result<i32, CliError> {
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
        .map_err(|e| CliError::new(1, format!("failed to read {}: {e}", dir.display()), None))?
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
            let _ = std::io::copy(&mut f, &mut out);
        }
        let _ = writeln!(out);
    }
    Ok(0)
}

pub fn cmd_doctor(args: DoctorArgs) -> Result<i32, CliError> {
    let cwd = paths::cwd()?;
    let mut out = std::io::stdout().lock();
    let mut code = 0;
    let _ = writeln!(out, "ralph      {}", env!("CARGO_PKG_VERSION"));
    let cfg = match load_config(args.config.as_deref(), &cwd) {
        Ok(c) => {
            let shown = if c.file.as_os_str().is_empty() {
                "none (defaults)".to_string()
            } else {
                format!("{} ok", c.file.display())
            };
            let _ = writeln!(out, "config     {shown}");
            Some(c)
        }
        Err(e) => {
            let _ = writeln!(out, "config     INVALID\n{e}");
            code = 2;
            None
        }
    };
    match ralph_git::git_version() {
        Ok(v) => {
            let repo = match ralph_git::Git::discover(&cwd) {
                Ok(Some(_)) => "inside a repository: checkpoints on",
                Ok(None) => "not a repository: checkpoints off",
                Err(_) => "repository check failed",
            };
            let _ = writeln!(out, "git        {v} ({repo})");
        }
        Err(e) => {
            let _ = writeln!(out, "git        {e}; checkpoints off");
        }
    }
    let _ = writeln!(out, "backends");
    let probe_config = cfg
        .as_ref()
        .map(|c| ralph_agents::BackendConfig {
            command: c.agent.command.clone().unwrap_or_default(),
            ..Default::default()
        })
        .unwrap_or_default();
    for name in config::DEFAULT_PRIORITY
        .iter()
        .chain(std::iter::once(&"custom"))
    {
        if !runnable(name) {
            let _ = writeln!(out, "  {name:<9} not supported by this version yet");
            continue;
        }
        let Some(be) = ralph_agents::builtin_backend(name, &probe_config) else {
            continue;
        };
        if *name == "custom" && probe_config.command.is_empty() {
            let _ = writeln!(out, "  {name:<9} not configured (set agent.command)");
            continue;
        }
        let auth: Vec<String> = be
            .auth_env()
            .iter()
            .map(|v| {
                let set = if std::env::var_os(v).is_some() {
                    "set"
                } else {
                    "unset"
                };
                format!("{v} {set}")
            })
            .collect();
        let auth = if auth.is_empty() {
            String::new()
        } else {
            format!(" · {}", auth.join(", "))
        };
        match paths::find_program(be.program()) {
            Some(path) => {
                let version = program_version(&path, be.version_args());
                let _ = writeln!(out, "  {name:<9} {version} ({}){auth}", path.display());
            }
            None => {
                let _ = writeln!(
                    out,
                    "  {name:<9} not installed (`{}` not found){auth}",
                    be.program()
                );
            }
        }
    }
    if let Some(cfg) = &cfg {
        match resolve(cfg, &RunArgs::default(), &cwd) {
            Ok(r) => {
                for (i, agent) in r.agents.iter().enumerate() {
                    let installed = paths::find_program(agent.backend.program()).is_some();
                    let model = agent
                        .model
                        .as_deref()
                        .map(|m| format!(" {m}"))
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "{}{}{model} ({})",
                        if i == 0 { "selected   " } else { "fallback   " },
                        agent.backend.name(),
                        if installed { "ready" } else { "NOT INSTALLED" }
                    );
                    if !installed && code == 0 {
                        code = 8;
                    }
                }
                match read_prompt(&r.settings.prompt, &cwd) {
                    Ok(p) => {
                        let _ = writeln!(out, "prompt     {} bytes", p.len());
                    }
                    Err(e) => {
                        let _ = writeln!(out, "prompt     {}", e.message);
                        if code == 0 {
                            code = 2;
                        }
                    }
                }
            }
            Err(e) => {
                let _ = writeln!(out, "selected   {}", e.message);
                if code == 0 {
                    code = e.code;
                }
            }
        }
    }
    let state = match open_store(&cwd) {
        Ok(Some(store)) => match store.runs(1000) {
            Ok(runs) => format!(
                ".ralph/ralph.db ({} run{})",
                runs.len(),
                if runs.len() == 1 { "" } else { "s" }
            ),
            Err(e) => format!(".ralph/ralph.db unreadable: {e}"),
        },
        Ok(None) => "no state yet".to_string(),
        Err(e) => format!(".ralph/ralph.db unreadable: {}", e.message),
    };
    let _ = writeln!(out, "state      {state}");
    Ok(code)
}

fn program_version(path: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(path)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
        Err(e) => format!("version unknown ({e})"),
    }
}

pub fn cmd_completions(args: CompletionsArgs) -> Result<i32, CliError> {
    use clap_complete::Shell as S;
    let shell = match args.shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Elvish => S::Elvish,
        Shell::Powershell => S::PowerShell,
    };
    clap_complete::generate(shell, &mut Cli::command(), "ralph", &mut std::io::stdout());
    Ok(0)
}
