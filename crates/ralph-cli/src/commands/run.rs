//! `ralph run`: take the project lock, start the engine on a single-threaded runtime with the
//! resolved settings (see [`crate::settings`]), translate signals into engine controls; and
//! `--dry-run`, which prints what the first iteration would send.

use std::path::Path;

use ralph_agents::Backend;
use ralph_core::completion::marker_lines;
use ralph_core::{
    agent_command, prompt, Agent, CallKind, CallSpec, Cancel, Control, Deps, Engine, Handles, Loop,
    RunScope, Settings,
};
use ralph_types::exit_codes;
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::RunArgs;
use crate::error::CliError;
use crate::render::Renderer;
use crate::settings::{load_config, read_prompt, resolve, Resolved};
use crate::{lock, paths};

pub fn cmd_run(args: RunArgs) -> Result<i32, CliError> {
    let cwd = paths::cwd()?;
    let cfg = load_config(args.config.as_deref(), &cwd)?;
    let Resolved {
        settings, agents, ..
    } = resolve(&cfg, &args, &cwd)?;
    let user_prompt = read_prompt(&settings.prompt, &cwd)?;
    if user_prompt.trim().is_empty() {
        return Err(CliError::usage(
            "the prompt is empty",
            Some("describe the task in the prompt file (or pass --prompt TEXT)".into()),
        ));
    }
    if marker_lines(&user_prompt, &settings.completion_marker) > 0 {
        // An agent that echoes its prompt would end the run (CLI.md "Completion").
        return Err(CliError::usage(
            format!(
                "the prompt contains the completion marker {} on a line of its own",
                settings.completion_marker
            ),
            Some(format!(
                "an agent that echoes the prompt would end the run; mention {} inside a \
                 sentence instead",
                settings.completion_marker
            )),
        ));
    }
    let state_dir = cwd.join(".ralph");

    if args.dry_run {
        return dry_run(&settings, &agents[0], &user_prompt, &state_dir);
    }

    // Every agent the run may switch to must be there: finding out at 3 a.m. helps no one.
    for agent in &agents {
        check_installed(agent.backend.as_ref())?;
    }
    // Before any state exists (the engine checks again, for every caller).
    if !settings.limits.allow_unenforced {
        if let Some(problem) =
            ralph_core::engine::enforceable::unenforced(&settings.limits, &agents)
        {
            return Err(CliError::usage(
                problem,
                Some(ralph_core::engine::enforceable::UNENFORCED_HINT.to_string()),
            ));
        }
    }

    paths::ensure_state_dir(&state_dir)?;
    let _lock = lock::acquire(&state_dir)?;
    let mut warnings = Vec::new();
    let require_git = cfg.git.require.unwrap_or(false);
    // The repository is used for checkpoints and, whether or not they are on, to watch `.git`'s
    // config and hooks. Discovery costs nothing outside a repository (no process is started).
    let checkpoints = settings.checkpoint_every > 0;
    let git = {
        let found = ralph_git::Git::discover(&cwd);
        if require_git && !matches!(found, Ok(Some(_))) {
            let why = match &found {
                Err(e) => e.to_string(),
                _ => format!("{} is not inside a git repository", cwd.display()),
            };
            return Err(CliError::usage(
                format!("git.require = true, but {why}"),
                Some(
                    "run `git init` (and commit) first, or set git.require = false to run \
                      without checkpoints"
                        .into(),
                ),
            ));
        }
        match found {
            Ok(Some(g)) => Some(g),
            Ok(None) => {
                if checkpoints {
                    warnings.push("not a git repository: running without checkpoints".into());
                }
                None
            }
            Err(e) => {
                if checkpoints {
                    warnings.push(format!("running without checkpoints: {e}"));
                }
                None
            }
        }
    };
    // Before any warning: a database that cannot be opened is the one thing said (exit 1).
    let store = ralph_store::Store::open(&state_dir.join("ralph.db"))?;
    for w in &warnings {
        eprintln!("ralph: warning: {w}");
    }
    let lp = Loop {
        scope: RunScope::project(&settings.root),
        settings,
        agents,
        git,
        escalation: None,
    };
    Ok(run_loop(lp, store, &state_dir, args.json)?.exit_code)
}

/// One loop to its end on a single-threaded runtime, signals forwarded to it, its events
/// rendered (`json`: also on stdout), and whatever left its process groups swept after:
/// `ralph run`, and each call of `ralph plan` and `ralph skills run`.
pub(crate) fn run_loop(
    lp: Loop,
    store: ralph_store::Store,
    state_dir: &Path,
    json: bool,
) -> Result<ralph_core::RunSummary, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::new(
                exit_codes::INTERNAL_ERROR,
                format!("failed to start the async runtime: {e}"),
                None,
            )
        })?;
    runtime.block_on(async move {
        let cancel = Cancel::new();
        spawn_signal_forwarders(cancel.clone())?;
        let renderer = Renderer {
            json,
            human: true,
            tty: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            counting: false,
            colour: crate::style::get().stderr,
        };
        let ledger = lp.settings.ledger.clone();
        let handles = Handles::new(store, ledger, state_dir, Deps::system());
        let engine = Engine::new(lp, handles, cancel, Box::new(renderer))
            .map_err(|e| CliError::new(e.exit_code(), e.to_string(), None))?;
        let result = engine.run().await;
        // Nothing ralph started outlives it, not even what left its process group.
        ralph_core::orphans::sweep_all();
        result.map_err(|e| CliError::new(e.exit_code(), e.to_string(), None))
    })
}

/// SIGINT: first a graceful stop, then an immediate one. SIGTERM and SIGHUP: graceful (each
/// named in the summary).
/// SIGUSR1: `ralph stop --now`.
pub(crate) fn spawn_signal_forwarders(cancel: Cancel) -> Result<(), CliError> {
    let sig = |kind: SignalKind| {
        signal(kind).map_err(|e| {
            CliError::new(
                exit_codes::INTERNAL_ERROR,
                format!("failed to install a signal handler: {e}"),
                None,
            )
        })
    };
    let mut int = sig(SignalKind::interrupt())?;
    let mut term = sig(SignalKind::terminate())?;
    let mut hup = sig(SignalKind::hangup())?;
    let mut usr1 = sig(SignalKind::user_defined1())?;
    tokio::spawn(async move {
        let mut interrupts = 0u32;
        loop {
            let c = tokio::select! {
                _ = int.recv() => {
                    interrupts += 1;
                    if interrupts == 1 {
                        eprintln!("ralph: stopping (press Ctrl-C again to kill the agent at once)");
                        Control::Interrupt
                    } else {
                        Control::Kill
                    }
                }
                _ = term.recv() => Control::Terminate,
                _ = hup.recv() => Control::Hangup,
                _ = usr1.recv() => Control::StopNow,
            };
            cancel.request(c);
        }
    });
    Ok(())
}

fn dry_run(
    settings: &Settings,
    agent: &Agent,
    user_prompt: &str,
    state_dir: &Path,
) -> Result<i32, CliError> {
    // Show what the next iteration would get: a resumable run's next iteration and feedback.
    let db = state_dir.join("ralph.db");
    let mut n = 1;
    let mut feedback = None;
    let mut notes = None;
    let mut run_id = "<run-id>".to_string();
    if !settings.fresh && db.exists() {
        if let Ok(store) = ralph_store::Store::open_read_only(&db) {
            if let Ok(Some(run)) = store.resumable_run(None) {
                run_id = run.id.clone();
                n = run.iteration + 1;
                notes = ralph_core::notes::for_prompt(
                    run.notes.as_deref(),
                    run.iteration,
                    run.feedback.is_some(),
                );
                feedback = run.feedback;
            }
        }
    }
    let text = prompt::build(
        user_prompt,
        &settings.completion_marker,
        n,
        settings.limits.max_iterations,
        notes.as_deref(),
        feedback.as_deref(),
    );
    // Exactly what the engine will run: the same function builds both.
    let dir = state_dir.join("runs").join(&run_id).join(format!("{n:04}"));
    let call = CallSpec::new(&run_id, n, CallKind::Iteration, &text, &dir);
    let mut spec = agent_command(
        settings,
        &settings.root,
        None,
        agent.backend.as_ref(),
        agent.model.as_deref(),
        &call,
    );
    // The sandbox's own variables (its private TMPDIR, the proxy), as the call will get them.
    let tag = ralph_core::sandbox::call_tag(&run_id, n, "agent");
    let place = ralph_core::sandbox::CallPlace {
        root: &settings.root,
        work_root: &settings.root,
        tag: &tag,
        scratch: Some(&dir),
    };
    let who = ralph_core::sandbox::Who::Agent(agent.backend.descriptor());
    let sandbox_env = ralph_core::sandbox::preview_env(
        &settings.sandbox,
        place,
        who,
        ralph_core::sandbox::CallCommand {
            program: &spec.program,
            args: &spec.args,
            env: &spec.env,
        },
    );
    spec.env.extend(sandbox_env);
    // Added at spawn, one value per call (`ralph_core::orphans`): shown, not invented.
    spec.env.push((
        ralph_core::orphans::MARKER_VAR.to_string(),
        "<ralph-pid>:<call>".to_string(),
    ));
    let stdin_note = if spec.stdin.is_some() {
        " < prompt (on stdin)"
    } else {
        ""
    };
    // The terminal is a sink like any other: a secret in the prompt, in `agent.args` or in
    // `[agent.env]` is shown redacted (the byte count is the real prompt's).
    let redact = |s: &str| settings.redactor.redact(s).into_owned();
    outln!("--- prompt for iteration {n} ({} bytes) ---", text.len());
    out!("{}", redact(&text));
    outln!("--- agent command ({}) ---", settings.agent.backend);
    outln!("{}{stdin_note}", redact(&spec.display()));
    Ok(exit_codes::SUCCESS)
}

/// Exit 8, naming the agent and how to install it, when its program is missing.
pub(crate) fn check_installed(backend: &dyn Backend) -> Result<(), CliError> {
    if paths::find_program(backend.program()).is_some() {
        return Ok(());
    }
    let name = backend.name();
    Err(CliError::new(
        exit_codes::NEEDS_HUMAN,
        format!(
            "the {name} agent is not installed: `{}` was not found{}",
            backend.program(),
            if backend.program().contains('/') {
                ""
            } else {
                " on PATH"
            }
        ),
        Some(match ralph_agents::install_hint(name) {
            Some(how) => format!("install it with `{how}`, or set agent.command to its path"),
            None => "install it, or set agent.command to its path; `ralph doctor` shows what is \
                     installed"
                .to_string(),
        }),
    ))
}
