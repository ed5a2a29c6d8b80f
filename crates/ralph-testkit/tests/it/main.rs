//! Integration tests of ralph-testkit, in one binary to keep link time down: the `fake-agent`
//! binary, the scripted model server, and the real agent CLIs run against it.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod fake_agent;
mod mockllm;
mod real_clis;
