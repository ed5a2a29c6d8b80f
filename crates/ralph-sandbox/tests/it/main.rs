#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on an unexpected error"
)]
//! ralph-sandbox's integration tests: each one spawns real processes under the sandbox.

mod fs;
mod net;
mod proxy;
mod seccomp;
