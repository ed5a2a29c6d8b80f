//! The iteration's prompt: the user's prompt (re-read every iteration, so edits apply), ralph's
//! fixed instructions, then the volatile part (iteration number, notes, feedback); archived as
//! `prompt.md` before the agent sees it, with the facts `ralph prompt` reports. Once the call
//! is over the archive is rewritten with secrets redacted (a prompt may quote one, `-p "use
//! $TOKEN"` expanded by the shell); until then it is the agent's input (`prompt_via = "file"`,
//! `RALPH_PROMPT_FILE`) and must be what was sent.

use std::fs;
use std::path::PathBuf;

use ralph_store::Write;

use super::{io_err, Engine, EngineError};
use crate::events::EventBody;
use crate::settings::PromptSource;
use crate::{notes, prompt};

/// One iteration's prompt, archived.
pub(super) struct PreparedPrompt {
    pub text: String,
    /// The iteration's artifact directory (`prompt.md` is in it).
    pub dir: PathBuf,
    /// SHA-256 of the user's part: a change marks a new prompt version.
    pub user_sha256: String,
    pub user_bytes: u64,
    /// When the iteration started (RFC 3339).
    pub started_at: String,
}

impl Engine {
    pub(super) fn prepare_prompt(&mut self, n: u32) -> Result<PreparedPrompt, EngineError> {
        let started_at = self.now();
        let user_prompt = match &self.settings.prompt {
            PromptSource::Text(t) => t.clone(),
            // Re-read every iteration, bounded like the first read (a file swapped for a FIFO
            // or a link to /dev/zero mid-run stops the run instead of hanging it).
            PromptSource::File(p) => {
                crate::bounded::read_bounded(p, crate::bounded::PROMPT_MAX_BYTES)
                    .and_then(|b| {
                        String::from_utf8(b).map_err(|e| {
                            std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
                        })
                    })
                    .map_err(|source| EngineError::Prompt {
                        path: p.clone(),
                        source,
                    })?
            }
        };
        let notes = notes::for_prompt(
            self.run.notes.as_deref(),
            n.saturating_sub(1),
            self.run.feedback.is_some(),
        );
        let text = prompt::build(
            &user_prompt,
            &self.settings.completion_marker,
            n,
            self.settings.limits.max_iterations,
            notes.as_deref(),
            self.run.feedback.as_deref(),
        );
        let user_part = user_prompt.trim_end();
        let dir = self.iteration_dir(n);
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let path = dir.join("prompt.md");
        fs::write(&path, &text).map_err(io_err("write", &path))?;
        Ok(PreparedPrompt {
            user_sha256: sha256_hex(user_part.as_bytes()),
            user_bytes: user_part.len() as u64,
            text,
            dir,
            started_at,
        })
    }

    /// `iteration.started`: cheap to lose in a crash (the iteration is re-run on resume).
    pub(super) fn mark_started(&mut self, n: u32) {
        self.run.current_iteration = Some(n);
        self.touch();
        let ev = self.event(EventBody::IterationStarted {
            iteration: n,
            backend: self.run.backend.clone(),
        });
        let write = Write::IterationStarted {
            run: self.run.clone(),
            events: vec![ev.to_record()],
        };
        // Not waited for: a failure surfaces at the iteration's commit.
        self.handles.store.post(write);
        self.emit(&[ev]);
    }
}

/// Rewrites the archived prompt at `path` with secrets redacted, when it has any.
pub(super) fn redact_archive(
    path: &std::path::Path,
    redactor: &crate::redact::Redactor,
) -> Result<(), EngineError> {
    let text = match fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("read", path)(e)),
    };
    if let std::borrow::Cow::Owned(redacted) = redactor.redact_bytes(&text) {
        fs::write(path, redacted).map_err(io_err("write", path))?;
    }
    Ok(())
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
