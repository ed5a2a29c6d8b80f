//! ralph-core's integration tests, one binary: the guard's command and tool-use corpus, the
//! redaction canaries, and many engines in one process.

mod guard;
mod guard_spellings;
mod many_loops;
mod redact;
