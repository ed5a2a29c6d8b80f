//! The OS sandbox around every agent and gate ralph spawns.
//!
//! Everything that needs memory or can fail in an interesting way happens in the parent, in
//! [`prepare`]: the Landlock ruleset is built there (an fd), the seccomp program is compiled
//! there, every path and string the child needs is laid out there. The child, between `fork`
//! and `exec` (a `pre_exec` hook), only makes syscalls: it may not allocate, because the parent
//! has other threads.
//!
//! | file | what |
//! |---|---|
//! | `config.rs` | `[sandbox]` as the user wrote it |
//! | `probe.rs` | what the kernel supports |
//! | `policy.rs` | the paths an agent may write and read, and its network, for one spawn |
//! | `landlock_rules.rs` | the policy as a Landlock ruleset |
//! | `seccomp.rs` | the syscall filter |
//! | `child.rs` | the steps run in the child before `exec` |
//! | `allow.rs` | host allow-list matching |
//! | `proxy.rs` | the HTTP CONNECT proxy and the port forwards served into the namespace |

pub mod allow;
pub mod config;
pub mod probe;
pub mod proxy;
pub mod resolve;
pub mod seccomp;

pub mod child;
mod landlock_rules;
pub mod mounts;
pub mod policy;
mod prepare;

pub use config::{Config, Mode, Network};
pub use policy::Policy;
pub use prepare::{env_for, prepare, Active, Prepared, SandboxError};
pub use probe::{probe, probe_for, ProbeOverrides, Support};
pub use proxy::Denied;
pub use resolve::{resolve, Enforced, Resolution};
