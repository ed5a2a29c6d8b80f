//! ralph-cli's integration tests, one binary (ARCHITECTURE.md "Testing").

mod config_errors;
mod config_fuzz;
mod exit_codes;
