//! ralph-sandbox's integration tests: each one spawns real processes under the sandbox.
mod seccomp;
