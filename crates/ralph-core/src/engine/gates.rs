//! Gates: `when = "iteration"` gates after every iteration, `when = "complete"` gates when the
//! agent claims completion. Each runs `sh -c` in the work root in its own process group, under
//! its timeout and the run's remaining time, its output streamed (redacted) to
//! `gate-<name>.log`. A claim is accepted only when every gate that ran passed.

use std::fs::File;
use std::path::Path;

use super::outcome::Outcome;
use super::{io_err, Engine, EngineError, Stop};
use crate::events::{EventBody, RunEvent};
use crate::process::{self, EndReason, SpawnError, Spec};
use crate::redact::StreamRedactor;
use crate::settings::GateWhen;

/// Result of one gate command.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct GateOutcome {
    pub name: String,
    pub passed: bool,
    pub when: GateWhen,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// The end of its output (redacted), for the next prompt.
    pub tail: String,
}

/// The gates of one iteration.
#[derive(Debug, Default)]
pub(super) struct Gates {
    pub outcomes: Vec<GateOutcome>,
    /// `gate.finished` events, committed with the iteration.
    pub events: Vec<RunEvent>,
}

impl Gates {
    /// Every gate that ran passed (CLI.md "Completion": iteration gates count too).
    pub fn all_passed(&self) -> bool {
        self.outcomes.iter().all(|g| g.passed)
    }

    /// Whether a completion gate ran (for the completion message).
    pub fn any_completion_gate(&self) -> bool {
        self.outcomes.iter().any(|g| g.when.on_completion(true))
    }
}

impl Engine {
    /// Run the gates due after this call. `Ok(Err(stop))`: a signal ended a gate.
    pub(super) async fn run_gates(
        &mut self,
        n: u32,
        dir: &Path,
        outcome: &Outcome,
    ) -> Result<Result<Gates, Stop>, EngineError> {
        let mut gates = Gates::default();
        // Nothing to verify after a guard stopped the agent, and no time left at the limit.
        if outcome.runtime_limit || outcome.trip.is_some() {
            return Ok(Ok(gates));
        }
        let story = self.scope.story.is_some();
        let due: Vec<_> = self
            .settings
            .gates
            .iter()
            .filter(|g| {
                g.when == GateWhen::Iteration || (outcome.claimed && g.when.on_completion(story))
            })
            .cloned()
            .collect();
        for gate in due {
            let path = dir.join(format!("gate-{}.log", gate.name));
            let mut log = StreamRedactor::new(
                self.settings.redactor.clone(),
                File::create(&path).map_err(io_err("create", &path))?,
            );
            let deadlines = self.deadlines(gate.timeout, false);
            let args = vec!["-c".to_string(), gate.run.clone()];
            let mut env = vec![
                ("RALPH_RUN_ID".to_string(), self.run.id.clone()),
                ("RALPH_ITERATION".to_string(), n.to_string()),
            ];
            if let Some(story) = &self.scope.story {
                env.push(("RALPH_STORY_ID".to_string(), story.clone()));
            }
            let call = format!("gate-{}", gate.name);
            let sandbox = self.call_sandbox(
                crate::sandbox::Who::Gate,
                n,
                &call,
                crate::sandbox::CallCommand {
                    program: "sh",
                    args: &args,
                    env: &env,
                },
                None,
            );
            let mut sandbox = match sandbox {
                Ok(s) => s,
                Err(stop) => return Ok(Err(stop)),
            };
            let mut scanner = crate::sandbox::DenialScanner::default();
            let scanning = sandbox.is_some();
            let mut spec = Spec {
                program: "sh",
                args: &args,
                env: &env,
                cwd: &self.scope.work_root,
                stdin: None,
                merge_stderr: true,
                max_output_bytes: Some(self.settings.safety.max_output_bytes),
                supervised: true,
                sandbox: sandbox.as_mut().and_then(|s| s.prepared.take()),
            };
            let mut scan = |line: &[u8], _: bool| {
                if scanning {
                    scanner.scan(line);
                }
                false
            };
            let ran = process::run(
                &mut spec,
                deadlines,
                &mut log,
                None,
                &mut scan,
                &self.cancel,
            )
            .await;
            if let Err(SpawnError::Sandbox(e)) = &ran {
                return Ok(Err(super::sandboxed::sandbox_stop(&e.to_string())));
            }
            drop(sandbox);
            let res = ran
                .and_then(|res| {
                    log.finish().map_err(SpawnError::Artifact)?;
                    Ok(res)
                })
                .map_err(|e| EngineError::Io {
                    action: "run gate",
                    path: path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?;
            let label = format!("gate:{}", gate.name);
            self.record_denials(n, &label, &res.denied, scanner.take())
                .await?;
            if let EndReason::Control(c) = res.reason {
                return Ok(Err(super::decision::control_stop(c)));
            }
            let timed_out = matches!(res.reason, EndReason::Timeout | EndReason::RuntimeLimit);
            let passed = res.reason == EndReason::Exited && res.exit.code == Some(0);
            self.audit_record(
                ralph_store::audit::kinds::GATE_FINISHED,
                serde_json::json!({
                    "iteration": n, "name": gate.name, "passed": passed,
                    "exit_code": res.exit.code, "timed_out": timed_out,
                }),
            );
            gates.events.push(self.event(EventBody::GateFinished {
                iteration: n,
                name: gate.name.clone(),
                passed,
                exit_code: res.exit.code,
                timed_out,
                duration_s: res.duration.as_secs_f64(),
            }));
            gates.outcomes.push(GateOutcome {
                name: gate.name.clone(),
                passed,
                when: gate.when,
                exit_code: res.exit.code,
                timed_out,
                tail: self.settings.redactor.redact(&res.tail).into_owned(),
            });
        }
        Ok(Ok(gates))
    }
}
