//! ralph-store's integration tests, one binary: the audit log, the machine-wide ledger, and
//! the process's one writer.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions fail the test by panicking"
)]

mod audit;
mod ledger;
mod writer;
