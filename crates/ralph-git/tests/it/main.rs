#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on an unexpected error"
)]
//! Integration tests against the real `git` in temporary repositories.

mod checkpoint;
mod diff;
mod discover;
mod env;
mod merge;
mod meta;
mod refsnap;
mod repo_lock;
mod restore;
mod revs;
mod rollback;
mod story_commit;
mod support;
mod worktree;
