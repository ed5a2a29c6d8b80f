//! The OS sandbox in the loop: each agent or gate call gets its own (`crate::sandbox`), a
//! sandbox that cannot be set up stops the run before the call (never a retry without it), and
//! what it refused is recorded as `sandbox.denied` events and audit records.

use ralph_sandbox::Denied;

use super::{Engine, EngineError, Stop};
use crate::events::{EventBody, StopReason};
use crate::sandbox::{CallCommand, CallPlace, CallSandbox, Denial, Who};

impl Engine {
    /// The sandbox of call `call` (`agent`, `gate-<name>`) of iteration `n`, or `None` when
    /// off. `Err`: it could not be prepared; the call must not run.
    pub(super) fn call_sandbox(
        &self,
        who: Who,
        n: u32,
        call: &str,
        cmd: CallCommand<'_>,
        scratch: Option<&std::path::Path>,
    ) -> Result<Option<CallSandbox>, Stop> {
        let tag = crate::sandbox::call_tag(&self.run.id, n, call);
        let place = CallPlace {
            root: &self.settings.root,
            work_root: &self.scope.work_root,
            tag: &tag,
            scratch,
        };
        crate::sandbox::for_call(&self.settings.sandbox, place, who, cmd)
            .map_err(|e| sandbox_stop(&e.to_string()))
    }

    /// Record what the sandbox refused during one call.
    pub(super) async fn record_denials(
        &mut self,
        n: u32,
        call: &str,
        denied: &[Denied],
        reported: Vec<Denial>,
    ) -> Result<(), EngineError> {
        let network = denied
            .iter()
            .map(|d| ("network", d.host.clone(), Some(d.port), d.reason.clone()));
        if call == "agent" {
            // The agent's own attempts on protected paths: a safety stop after the iteration
            // (guardrails.rs), as a change that got through would be. Not `.git`: strict mode
            // makes it read-only on purpose (an agent's `git commit` fails there, and says so),
            // and ralph's own `.git` checks judge what happened to it.
            for d in &reported {
                let root = &self.scope.work_root;
                let hit = !d.what.is_empty()
                    && !in_git_dir(&d.what, root)
                    && self.guards.guard.paths.check_path(&d.what, root).is_some();
                if hit && !self.guards.refused_protected.contains(&d.what) {
                    self.guards.refused_protected.push(d.what.clone());
                }
            }
        }
        let files = reported
            .into_iter()
            .map(|d| ("file", d.what, None, d.error.to_string()));
        let all: Vec<_> = network.chain(files).collect();
        for (kind, what, port, reason) in all {
            let what = self.settings.redactor.redact(&what).into_owned();
            self.audit_record(
                ralph_store::audit::kinds::SANDBOX_DENIED,
                serde_json::json!({
                    "iteration": n, "call": call, "kind": kind, "what": what,
                    "port": port, "reason": reason,
                }),
            );
            self.record(EventBody::SandboxDenied {
                iteration: n,
                call: call.to_string(),
                kind: kind.to_string(),
                what,
                port,
                reason,
            })
            .await?;
        }
        Ok(())
    }
}

/// `path` (as the agent named it: relative to `root`, or absolute) is in `root`'s `.git`.
fn in_git_dir(path: &str, root: &std::path::Path) -> bool {
    let p = std::path::Path::new(path);
    let rel = p.strip_prefix(root).unwrap_or(p);
    let rel = rel.strip_prefix("./").unwrap_or(rel);
    rel.starts_with(".git")
}

/// The stop for a sandbox that could not be set up: exit 8, with what to do.
pub(super) fn sandbox_stop(error: &str) -> Stop {
    Stop::new(
        StopReason::NeedsHuman,
        format!(
            "the sandbox could not be set up ({error}); ralph does not run the agent without \
             it: fix the cause, or set [sandbox] mode = \"off\" in ralph.toml to run unsandboxed"
        ),
    )
}
