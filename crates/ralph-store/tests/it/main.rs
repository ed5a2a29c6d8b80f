//! ralph-store's integration tests, one binary: the audit log, the machine-wide ledger, the
//! process's one writer, and the stories mode's state.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions fail the test by panicking"
)]

mod audit;
mod ledger;
mod stories;
mod story_report;
mod writer;
