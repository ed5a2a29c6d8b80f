//! The steps run in the child between fork and exec. Only syscalls: no allocation, no locks.

/// Whether a user namespace with a mount namespace, and a network namespace in it, can be
/// created (tried in a forked child, which exits at once).
pub(crate) fn probe_namespaces() -> (bool, bool) {
    (false, false)
}
