//! Error classification from free text (stderr, error messages).

use crate::event::ErrorClass;

/// Classify an error text by the signatures agent CLIs print. `None` if nothing matches.
pub fn classify_text(_text: &str) -> Option<ErrorClass> {
    None
}
