//! End-to-end tests: the real `ralph` binary, the scripted `fake-agent`, real git, real SQLite.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod harness;

mod budgets;
mod colour;
mod completion;
mod config_errors;
mod cost;
mod dry_run;
mod exit_codes;
mod git_integrity;
mod hostile;
mod notes;
mod plan_cmd;
mod policies;
mod process_control;
mod prompt_cmd;
mod real_clis;
mod replayed_agents;
mod resume;
mod rollback;
mod safety;
mod sandbox;
mod secrets;
mod spend;
mod state;
mod state_tamper;
mod stories_cmds;
mod stories_crash;
mod stories_layers;
mod stories_limits;
mod stories_plan;
mod stories_run;
