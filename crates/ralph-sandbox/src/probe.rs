//! What this kernel can enforce, probed once per process (cheap: two syscalls and one fork).

use std::sync::OnceLock;

/// The kernel's sandboxing features as seen by this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Support {
    /// Landlock ABI version (0: none, or disabled at boot).
    pub landlock_abi: u8,
    /// seccomp filters can be installed.
    pub seccomp: bool,
    /// An unprivileged user namespace (with a mount namespace in it) can be created.
    pub user_namespaces: bool,
    /// A network namespace can be created inside it.
    pub network_namespaces: bool,
}

/// Landlock ABI 1 has no REFER right (links and renames across directories are then always
/// denied, which breaks `git` and `cargo`), so ralph needs at least 2 to enforce a mode.
pub const MIN_LANDLOCK_ABI: u8 = 2;

impl Support {
    /// Whether the filesystem part of `workspace`/`strict` can be enforced.
    pub fn filesystem(&self) -> bool {
        self.landlock_abi >= MIN_LANDLOCK_ABI
    }

    /// Whether `network = "allowlist" | "off"` can be enforced.
    pub fn network(&self) -> bool {
        self.user_namespaces && self.network_namespaces
    }
}

/// Overrides for tests of the fail-closed path (the `RALPH_TEST_SANDBOX_LANDLOCK_ABI` hook read
/// by the CLI): the probe reports this ABI instead of the kernel's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeOverrides {
    pub landlock_abi: Option<u8>,
}

/// The kernel's support, probed on first use and cached, with `overrides` applied.
pub fn probe(overrides: ProbeOverrides) -> Support {
    probe_for(overrides, true)
}

/// [`probe`], trying a network namespace only when `network` is needed: creating one costs a
/// few milliseconds of start-up, and with `network = "on"` nothing uses the answer (it is then
/// reported as the user namespaces' answer, which it follows on every kernel ralph knows).
pub fn probe_for(overrides: ProbeOverrides, network: bool) -> Support {
    static REAL: OnceLock<Support> = OnceLock::new();
    static WITHOUT_NET: OnceLock<Support> = OnceLock::new();
    let mut s = if network {
        *REAL.get_or_init(|| probe_kernel(true))
    } else {
        *REAL
            .get()
            .unwrap_or_else(|| WITHOUT_NET.get_or_init(|| probe_kernel(false)))
    };
    if let Some(abi) = overrides.landlock_abi {
        s.landlock_abi = abi;
    }
    s
}

fn probe_kernel(network: bool) -> Support {
    let (user_namespaces, network_namespaces) = crate::child::probe_namespaces(network);
    Support {
        landlock_abi: landlock_abi(),
        seccomp: seccomp_available(),
        user_namespaces,
        network_namespaces: if network {
            network_namespaces
        } else {
            user_namespaces
        },
    }
}

fn landlock_abi() -> u8 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute, size 0 and the VERSION flag, landlock_create_ruleset only
    // returns the ABI version (or an error); it creates nothing.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    u8::try_from(v).unwrap_or(0)
}

fn seccomp_available() -> bool {
    // SAFETY: PR_GET_SECCOMP takes no pointers; it returns the calling thread's mode (0: none,
    // 2: filter) or fails with EINVAL when the kernel has no seccomp.
    let r = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    r >= 0
}
