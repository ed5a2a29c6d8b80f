//! Every exit code ralph uses, with its meaning: the one table the commands, the engine's stop
//! reasons and the documentation are built from (CLI.md "Exit codes"; a test checks the
//! README's and docs' tables against [`TABLE`]). Modelled on nextest's `exit_codes`.

/// The run completed: the marker was seen and every completion gate passed (stories: every
/// story merged).
pub const COMPLETED: i32 = 0;
/// Every command other than `run`: it did what was asked. The same code as [`COMPLETED`], so
/// it is not a row of its own in [`TABLE`].
pub const SUCCESS: i32 = COMPLETED;
/// ralph's own failure: a bug, or state it cannot use (an unreadable database).
pub const INTERNAL_ERROR: i32 = 1;
/// A usage or config error; nothing ran.
pub const USAGE: i32 = 2;
/// The iteration limit was reached without completion.
pub const MAX_ITERATIONS: i32 = 3;
/// The runtime limit was reached.
pub const MAX_RUNTIME: i32 = 4;
/// A budget was reached: cost or tokens, per run, per plan, per day or per month.
pub const BUDGET: i32 = 5;
/// Stopped by a safety guard (blocked command, protected path, too many files changed, a broken
/// audit log).
pub const SAFETY: i32 = 6;
/// Gave up: consecutive failures or no progress (the circuit breaker opened).
pub const GAVE_UP: i32 = 7;
/// Needs a human: agent not installed, authentication failed, quota, a usage limit with no
/// reset time, an unreadable cost ledger that a cap depends on.
pub const NEEDS_HUMAN: i32 = 8;
/// Stopped on request (`ralph stop`, `.ralph/STOP`, `ralph stop --now`).
pub const STOP_REQUESTED: i32 = 9;
/// Interrupted by SIGINT, after a graceful shutdown.
pub const INTERRUPTED: i32 = 130;
/// Terminated by SIGTERM (or SIGHUP), after a graceful shutdown.
pub const TERMINATED: i32 = 143;

/// One row of the exit-code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitCode {
    pub code: i32,
    /// The constant's name in lower case (`needs_human`).
    pub name: &'static str,
    /// What it means, as the docs say it.
    pub meaning: &'static str,
}

/// Every exit code in ascending order.
pub const TABLE: &[ExitCode] = &[
    ExitCode {
        code: COMPLETED,
        name: "completed",
        meaning: "completed (marker seen, completion gates passed)",
    },
    ExitCode {
        code: INTERNAL_ERROR,
        name: "internal_error",
        meaning: "ralph's own failure (a bug, or state it cannot use)",
    },
    ExitCode {
        code: USAGE,
        name: "usage",
        meaning: "usage or config error; nothing ran",
    },
    ExitCode {
        code: MAX_ITERATIONS,
        name: "max_iterations",
        meaning: "iteration limit reached",
    },
    ExitCode {
        code: MAX_RUNTIME,
        name: "max_runtime",
        meaning: "runtime limit reached",
    },
    ExitCode {
        code: BUDGET,
        name: "budget",
        meaning: "budget reached (cost or tokens, run or daily/monthly)",
    },
    ExitCode {
        code: SAFETY,
        name: "safety",
        meaning: "stopped by a safety guard (protected path, blocked command, too many files changed)",
    },
    ExitCode {
        code: GAVE_UP,
        name: "gave_up",
        meaning: "gave up: consecutive failures or no progress (circuit breaker open)",
    },
    ExitCode {
        code: NEEDS_HUMAN,
        name: "needs_human",
        meaning: "needs a human: agent not installed, authentication failed, quota, usage limit with no reset time",
    },
    ExitCode {
        code: STOP_REQUESTED,
        name: "stop_requested",
        meaning: "stopped on request (`ralph stop` / `.ralph/STOP`)",
    },
    ExitCode {
        code: INTERRUPTED,
        name: "interrupted",
        meaning: "interrupted (SIGINT), after a graceful shutdown",
    },
    ExitCode {
        code: TERMINATED,
        name: "terminated",
        meaning: "terminated (SIGTERM), after a graceful shutdown",
    },
];

/// The row for `code`, if ralph uses it.
pub fn describe(code: i32) -> Option<&'static ExitCode> {
    TABLE.iter().find(|e| e.code == code)
}

/// The table as the docs print it (a Markdown table).
pub fn markdown_table() -> String {
    let mut out = String::from("| code | meaning |\n|---|---|\n");
    for e in TABLE {
        out.push_str(&format!("| {} | {} |\n", e.code, e.meaning));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_complete() {
        let codes: Vec<i32> = TABLE.iter().map(|e| e.code).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(codes, sorted, "ascending and unique");
        for c in [
            COMPLETED,
            INTERNAL_ERROR,
            USAGE,
            MAX_ITERATIONS,
            MAX_RUNTIME,
            BUDGET,
            SAFETY,
            GAVE_UP,
            NEEDS_HUMAN,
            STOP_REQUESTED,
            INTERRUPTED,
            TERMINATED,
        ] {
            assert!(describe(c).is_some(), "{c} is in the table");
        }
        assert!(describe(42).is_none());
        assert!(markdown_table().contains("| 8 | needs a human"));
    }
}
