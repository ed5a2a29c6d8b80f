//! The OS sandbox from outside (issue 10): a scripted agent under `mode = "workspace"` and
//! `network = "allowlist"` tries 60 ways out — writes to HOME, `~/.ssh`, `/etc`, `/tmp`, a
//! sibling directory, through symlinks, hardlinks, renames and `/proc`, deletions, metadata
//! changes, ralph's own state, ptrace, mount, namespaces, signals to ralph, raw sockets, the
//! kernel's other doors, and the network by name, by IP, by DNS and around the proxy. Each is
//! checked afterwards from outside the sandbox, and each refusal must be in the audit log.

mod corpus;
mod policy;
mod work;
