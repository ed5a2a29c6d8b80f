//! ralph-sandbox's integration tests: each one spawns real processes under the sandbox.

mod fs;
mod net;
mod proxy;
mod seccomp;
