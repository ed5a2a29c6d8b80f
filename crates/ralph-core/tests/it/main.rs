//! ralph-core's integration tests, one binary: the guard's command and tool-use corpus, and the
//! redaction canaries.

mod guard;
mod redact;
