#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests against the real `git` in temporary repositories.

mod checkpoint;
mod diff;
mod discover;
mod env;
mod meta;
mod restore;
mod rollback;
mod support;
