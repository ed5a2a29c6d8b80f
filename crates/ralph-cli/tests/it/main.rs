//! ralph-cli's integration tests, one binary (ARCHITECTURE.md "Testing").

mod exit_codes;
