//! Errors the CLI reports: a message, an optional hint, and the documented exit code.

use std::fmt;

use ralph_types::exit_codes;

#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub hint: Option<String>,
    pub code: i32,
}

impl CliError {
    /// A usage or config problem: nothing ran ([`exit_codes::USAGE`]).
    pub fn usage(message: impl Into<String>, hint: impl Into<Option<String>>) -> CliError {
        CliError {
            message: message.into(),
            hint: hint.into(),
            code: exit_codes::USAGE,
        }
    }

    pub fn new(code: i32, message: impl Into<String>, hint: impl Into<Option<String>>) -> CliError {
        CliError {
            message: message.into(),
            hint: hint.into(),
            code,
        }
    }

    /// Already formatted (config errors render their own location and hint).
    pub fn preformatted(code: i32, text: String) -> CliError {
        CliError {
            message: text,
            hint: None,
            code,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.starts_with("error:") {
            write!(f, "{}", self.message)?;
        } else {
            write!(f, "error: {}", self.message)?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl From<ralph_store::StoreError> for CliError {
    fn from(e: ralph_store::StoreError) -> Self {
        let hint = match &e {
            ralph_store::StoreError::TooNew { .. } => None,
            _ => Some(
                "check that .ralph/ is writable and the disk is not full; if .ralph/ralph.db is \
                 damaged, move it aside (ralph starts a new one)"
                    .to_string(),
            ),
        };
        CliError::new(exit_codes::INTERNAL_ERROR, e.to_string(), hint)
    }
}
