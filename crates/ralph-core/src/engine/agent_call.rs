//! One agent call: the command line (built in one place, [`agent_command`], which `--dry-run`
//! prints), the process run under the iteration's limits with its output streamed to the
//! artifacts through the redactor, every tool use checked by the guard as it streams, and the
//! parsed, priced outcome.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ralph_agents::{AgentEvent, AgentOutcome, Backend, CommandContext, CommandSpec};

use super::{io_err, Engine, EngineError, Stop};
use crate::events::{EventBody, StopReason};
use crate::process::{self, Deadlines, SpawnError, Spec};
use crate::redact::StreamRedactor;
use crate::settings::Settings;

/// SIGTERM → SIGKILL grace period for agents and gates.
pub(super) const KILL_GRACE: Duration = Duration::from_secs(3);

/// Which call of an iteration this is; the agent sees it as `RALPH_CALL`, so a custom agent can
/// tell an iteration from a side call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Iteration,
    /// Summarising the notes on earlier iterations.
    Summary,
}

impl CallKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            CallKind::Iteration => "iteration",
            CallKind::Summary => "summary",
        }
    }
}

/// Everything about one call that its command line depends on.
#[derive(Debug, Clone, Copy)]
pub struct CallSpec<'a> {
    pub run_id: &'a str,
    pub iteration: u32,
    pub kind: CallKind,
    pub prompt: &'a str,
    /// The call's artifact directory; the prompt is archived in it as `prompt.md`.
    pub dir: &'a Path,
}

impl<'a> CallSpec<'a> {
    pub fn new(
        run_id: &'a str,
        iteration: u32,
        kind: CallKind,
        prompt: &'a str,
        dir: &'a Path,
    ) -> CallSpec<'a> {
        CallSpec {
            run_id,
            iteration,
            kind,
            prompt,
            dir,
        }
    }

    pub fn prompt_path(&self) -> PathBuf {
        self.dir.join("prompt.md")
    }
}

/// The exact command of one agent call: the backend's argv and environment, the deny list for
/// CLIs that take one, and ralph's `RALPH_*` variables. The engine runs what this returns and
/// `ralph run --dry-run` prints it, so the two cannot differ.
pub fn agent_command(
    settings: &Settings,
    work_root: &Path,
    story: Option<&str>,
    backend: &dyn Backend,
    model: Option<&str>,
    call: &CallSpec<'_>,
) -> CommandSpec {
    let prompt_path = call.prompt_path();
    let ctx = context(settings, model, call, &prompt_path);
    let mut spec = backend.command(&ctx);
    // Defense in depth: agents that take a deny list are told; the streaming check is what
    // enforces it.
    spec.args
        .extend(backend.deny_args(&crate::guard::default_deny_rules()));
    let mut env = vec![
        ("RALPH_RUN_ID".to_string(), call.run_id.to_string()),
        ("RALPH_ITERATION".to_string(), call.iteration.to_string()),
        ("RALPH_CALL".to_string(), call.kind.as_str().to_string()),
        (
            "RALPH_PROMPT_FILE".to_string(),
            prompt_path.display().to_string(),
        ),
        (
            "RALPH_WORKSPACE".to_string(),
            work_root.display().to_string(),
        ),
    ];
    if let Some(story) = story {
        env.push(("RALPH_STORY_ID".to_string(), story.to_string()));
    }
    // The model ralph asked for (a custom agent has no flag for it; `[routing]` picks it).
    if let Some(m) = model {
        env.push(("RALPH_MODEL".to_string(), m.to_string()));
    }
    spec.env.extend(env);
    spec
}

pub(super) fn context<'a>(
    settings: &'a Settings,
    model: Option<&'a str>,
    call: &CallSpec<'a>,
    prompt_path: &'a Path,
) -> CommandContext<'a> {
    CommandContext {
        prompt: call.prompt,
        prompt_path,
        model,
        extra_args: &settings.agent.args,
        is_root: is_root(),
        scratch_dir: call.dir,
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// An artifact created on its first byte: most agents write nothing on stderr, and each file
/// created is a measurable share of an iteration's cost (an inode, and on some file systems
/// much more), so `stderr.log` exists only when there was something to keep.
struct LazyArtifact {
    path: PathBuf,
    redactor: crate::redact::Redactor,
    open: Option<StreamRedactor<File>>,
}

impl LazyArtifact {
    fn new(path: PathBuf, redactor: crate::redact::Redactor) -> LazyArtifact {
        LazyArtifact {
            path,
            redactor,
            open: None,
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self.open {
            Some(w) => w.finish().map(drop),
            None => Ok(()),
        }
    }
}

impl std::io::Write for LazyArtifact {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let w = match &mut self.open {
            Some(w) => w,
            None => self.open.insert(StreamRedactor::new(
                self.redactor.clone(),
                File::create(&self.path)?,
            )),
        };
        w.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.open.as_mut().map_or(Ok(()), std::io::Write::flush)
    }
}

/// A writer whose bytes are also scanned for the sandbox's refusals (the agent's stderr), a
/// line at a time: a read can end mid-line, between a path and its error.
struct Scanned<'a, W> {
    inner: W,
    scanner: Option<&'a mut crate::sandbox::DenialScanner>,
    partial: Vec<u8>,
}

/// The longest partial line kept for the scanner.
const SCAN_LINE_MAX: usize = 8 * 1024;

impl<W: std::io::Write> std::io::Write for Scanned<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(s) = &mut self.scanner {
            match memchr::memrchr(b'\n', buf) {
                Some(end) => {
                    self.partial.extend_from_slice(&buf[..=end]);
                    s.scan(&self.partial);
                    self.partial.clear();
                    self.partial.extend_from_slice(&buf[end + 1..]);
                }
                None => self.partial.extend_from_slice(buf),
            }
            if self.partial.len() > SCAN_LINE_MAX {
                s.scan(&self.partial);
                self.partial.clear();
            }
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A guard that tripped on a tool use while the agent ran.
#[derive(Debug, Clone)]
pub(super) struct GuardTrip {
    pub tool: String,
    /// The command or the paths.
    pub what: String,
    pub blocked: crate::guard::Blocked,
}

/// A finished call: how the process ended, what the parser made of it, and a guard trip.
pub(super) struct Call {
    pub finished: process::Finished,
    pub agent: AgentOutcome,
    pub trip: Option<GuardTrip>,
}

impl Engine {
    /// Run one agent call under the iteration's limits. `Ok(Err(stop))`: the agent could not
    /// be started (needs a human).
    pub(super) async fn call_agent(
        &mut self,
        call: &CallSpec<'_>,
        model: Option<String>,
    ) -> Result<Result<Call, Stop>, EngineError> {
        let backend = &self.agents[self.current].backend;
        let spec = agent_command(
            &self.settings,
            &self.scope.work_root,
            self.scope.story.as_deref(),
            backend.as_ref(),
            model.as_deref(),
            call,
        );
        let prompt_path = call.prompt_path();
        let mut parser = backend.parser_for(&context(
            &self.settings,
            model.as_deref(),
            call,
            &prompt_path,
        ));
        let reports_usage = backend.reports_usage();
        let backend_name = backend.name();
        let who = crate::sandbox::Who::Agent(backend.descriptor());
        let label = match call.kind {
            CallKind::Iteration => "agent",
            CallKind::Summary => "summary",
        };
        let mut sandbox = match self.call_sandbox(
            who,
            call.iteration,
            label,
            crate::sandbox::CallCommand {
                program: &spec.program,
                args: &spec.args,
                env: &spec.env,
            },
            Some(call.dir),
        ) {
            Ok(s) => s,
            Err(stop) => return Ok(Err(stop)),
        };
        let scanning = sandbox.is_some();
        let mut scanner = crate::sandbox::DenialScanner::default();
        let mut err_scanner = crate::sandbox::DenialScanner::default();

        let out_path = call.dir.join("output.log");
        let err_path = call.dir.join("stderr.log");
        // Secrets never reach the disk: the artifacts are written through the redactor.
        let redactor = self.settings.redactor.clone();
        let mut out = StreamRedactor::new(
            redactor.clone(),
            File::create(&out_path).map_err(io_err("create", &out_path))?,
        );
        let mut err = Scanned {
            inner: LazyArtifact::new(err_path.clone(), redactor.clone()),
            scanner: scanning.then_some(&mut err_scanner),
            partial: Vec::new(),
        };
        let mut scratch = Vec::new();
        let guard = &self.guards.guard;
        let root = self.scope.work_root.clone();
        let mut trip: Option<GuardTrip> = None;
        let mut sink = |line: &[u8], truncated: bool| {
            if scanning {
                scanner.scan(line);
            }
            scratch.clear();
            parser.line(line, truncated, &mut scratch);
            for ev in &scratch {
                if let (AgentEvent::ToolUse { name, input }, None) = (ev, &trip) {
                    if let Some(blocked) = guard.check_tool_use(name, input, &root) {
                        let what = crate::guard::command_of(name, input)
                            .unwrap_or_else(|| crate::guard::paths_of(name, input).join(", "));
                        let what = redactor.redact(&what).into_owned();
                        trip = Some(GuardTrip {
                            tool: name.clone(),
                            what,
                            blocked,
                        });
                        return true;
                    }
                }
            }
            false
        };
        let deadlines = self.deadlines(self.settings.limits.iteration_timeout, true);
        let mut pspec = Spec {
            program: &spec.program,
            args: &spec.args,
            env: &spec.env,
            cwd: &self.scope.work_root,
            stdin: spec.stdin.as_deref(),
            merge_stderr: false,
            max_output_bytes: Some(self.settings.safety.max_output_bytes),
            supervised: true,
            sandbox: sandbox.as_mut().and_then(|s| s.prepared.take()),
        };
        let ran = process::run(
            &mut pspec,
            deadlines,
            &mut out,
            Some(&mut err),
            &mut sink,
            &self.cancel,
        )
        .await;
        super::prompt::redact_archive(&prompt_path, &redactor)?;
        let finished = match ran {
            Ok(f) => f,
            Err(e @ (SpawnError::NotFound { .. } | SpawnError::NotExecutable { .. })) => {
                return Ok(Err(Stop::new(
                    StopReason::NeedsHuman,
                    format!(
                        "cannot start the {} agent: {e}; install it or point agent.command at \
                         it (`ralph doctor` shows what is installed)",
                        self.run.backend
                    ),
                )));
            }
            Err(SpawnError::Sandbox(e)) => {
                return Ok(Err(super::sandboxed::sandbox_stop(&e.to_string())));
            }
            Err(SpawnError::Artifact(source)) => {
                return Err(EngineError::Io {
                    action: "write",
                    path: out_path,
                    source,
                })
            }
            Err(SpawnError::Other { program, source }) => {
                return Err(EngineError::Io {
                    action: "start",
                    path: PathBuf::from(program),
                    source,
                })
            }
        };
        if let Some(s) = err.scanner.take() {
            s.scan(&err.partial);
        }
        out.finish()
            .and(err.inner.finish())
            .map_err(io_err("write", &out_path))?;
        drop(sandbox);
        let mut reported = scanner.take();
        reported.extend(err_scanner.take());
        self.record_denials(call.iteration, label, &finished.denied, reported)
            .await?;
        let mut agent = parser.finish(finished.exit, &finished.tail);
        // What the agent said travels on into the database, events, prompts and the terminal.
        agent.final_text = redactor.redact(&agent.final_text).into_owned();
        agent.error_message = agent
            .error_message
            .map(|m| redactor.redact(&m).into_owned());
        if !reports_usage && !self.acct.usage_warned.contains(&backend_name) {
            self.acct.usage_warned.push(backend_name);
            self.record(EventBody::Warning {
                message: format!(
                    "the {backend_name} agent does not report token usage: its tokens and cost \
                     are recorded as unknown; iteration and time limits still apply"
                ),
            })
            .await?;
        }
        let model = agent
            .model
            .clone()
            .or_else(|| self.agents[self.current].model.clone());
        // A reported figure is judged before pricing (so nonsense is not replaced by a
        // price), a computed one after.
        self.reject_implausible(&mut agent).await?;
        self.price(&mut agent, model).await?;
        self.reject_implausible(&mut agent).await?;
        self.warn_missing_usage(call.iteration, &agent).await?;
        self.tell_model_used(call.iteration, agent.model.as_deref())
            .await?;
        Ok(Ok(Call {
            finished,
            agent,
            trip,
        }))
    }

    /// The deadlines of a call whose own limit is `own_timeout`: whichever comes first of it
    /// and the run's remaining time (then hitting it means the runtime limit).
    pub(super) fn deadlines(&self, own_timeout: Duration, idle: bool) -> Deadlines {
        let now = Instant::now();
        let remaining = self.settings.limits.max_runtime.as_secs_f64() - self.elapsed();
        let remaining = Duration::from_secs_f64(remaining.max(0.0));
        let runtime_first = remaining < own_timeout;
        Deadlines {
            deadline: now + remaining.min(own_timeout),
            deadline_is_runtime: runtime_first,
            idle: idle.then_some(self.settings.limits.idle_timeout),
            grace: KILL_GRACE,
        }
    }
}
