//! The seccomp filter: a deny-list of the syscalls an agent never needs and a sandbox escape
//! usually does (debugging other processes, mounting, namespaces, kernel modules, eBPF,
//! io_uring, raw sockets...). Everything else is allowed: an agent runs compilers, package
//! managers and test suites, and an allow-list would break them one by one.
//!
//! The program is compiled in the parent ([`Filter::deny_escapes`] allocates) and installed in
//! the child between fork and exec ([`Filter::install`] makes one or two syscalls and nothing
//! else), as the crate's rules require.
//!
//! Shape of the program (classic BPF over `struct seccomp_data`):
//!
//! 1. the audit arch must be the native one, or the process is killed: on x86_64 an `int 0x80`
//!    enters the i386 table, where the numbers mean other syscalls and this list would not
//!    apply;
//! 2. on x86_64, x32 numbers (bit 30 set) are refused, for the same reason;
//! 3. a binary search over the syscall numbers named below (a few comparisons per syscall);
//!    each denied number returns `EPERM`;
//! 4. `clone3` returns `ENOSYS`: its flags are behind a pointer seccomp cannot read, and glibc
//!    falls back to `clone` on `ENOSYS` (what Docker and Chromium do);
//! 5. `clone` with a `CLONE_NEW*` bit, and `socket` for `AF_PACKET`, for netlink's netfilter
//!    protocol, or for `SOCK_RAW` outside netlink, return `EPERM`;
//! 6. everything else is allowed.
//!
//! Netlink is looked at by protocol, not by type: a netlink socket is the same with `SOCK_RAW`
//! or `SOCK_DGRAM`, so refusing `SOCK_RAW` there would protect nothing, and it would break
//! `getifaddrs` and `if_nameindex` (rtnetlink with `SOCK_RAW`: Node's `os.networkInterfaces()`,
//! glibc's `getaddrinfo` with `AI_ADDRCONFIG`). `NETLINK_NETFILTER` is refused instead: nf_tables
//! reached from a user namespace is where many recent kernel escapes start.
//!
//! Left allowed on purpose: `name_to_handle_at` (a handle is harmless until
//! `open_by_handle_at`, refused, opens it), `socketpair`.
//!
//! Every decision for an allowed syscall depends on its number alone, so the kernel's seccomp
//! action cache (Linux 5.11+) learns them and skips the program for those syscalls entirely;
//! only `clone` and `socket` run it on every call.

use std::io;

/// The syscalls denied outright with `EPERM`, by name, for `ralph doctor` and the docs. Besides
/// these, [`CONDITIONAL`] lists the ones denied for some arguments only.
pub const DENIED: &[&str] = &[
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "mount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "init_module",
    "finit_module",
    "delete_module",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "userfaultfd",
    "chroot",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "quotactl",
    "quotactl_fd",
    "lookup_dcookie",
    "open_by_handle_at",
];

/// The syscalls refused for some arguments only: (name, when, and what it returns).
pub const CONDITIONAL: &[(&str, &str)] = &[
    ("clone", "with any CLONE_NEW* namespace flag: EPERM"),
    (
        "clone3",
        "always ENOSYS (its flags are behind a pointer; glibc falls back to clone)",
    ),
    (
        "socket",
        "domain AF_PACKET, netlink protocol NETLINK_NETFILTER, or SOCK_RAW outside netlink: EPERM",
    ),
];

/// A compiled seccomp-BPF program, ready to install.
#[derive(Clone)]
pub struct Filter {
    prog: Vec<libc::sock_filter>,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("instructions", &self.prog.len())
            .finish()
    }
}

impl Filter {
    /// The deny-list filter for the target architecture (x86_64 and aarch64). On any other
    /// architecture the filter allows everything, and [`Filter::supported`] is false.
    pub fn deny_escapes() -> Filter {
        Filter {
            prog: if arch::SUPPORTED {
                build(
                    arch::AUDIT_ARCH,
                    arch::X32_BIT,
                    arch::denied(),
                    arch::special(),
                )
            } else {
                vec![ret(libc::SECCOMP_RET_ALLOW)]
            },
        }
    }

    /// Whether [`Filter::deny_escapes`] filters anything on this architecture.
    pub fn supported() -> bool {
        arch::SUPPORTED
    }

    /// The program's length in BPF instructions (the kernel takes at most 4096).
    pub fn instruction_count(&self) -> usize {
        self.prog.len()
    }

    /// The raw program, for tests and for inspection.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.prog
    }

    /// Installs the filter on the calling thread (and so on everything it execs and forks),
    /// with `seccomp(SECCOMP_SET_MODE_FILTER)`, or `prctl(PR_SET_SECCOMP)` on a kernel without
    /// the seccomp syscall.
    ///
    /// Async-signal-safe: one or two syscalls, no allocation, no lock, so it may run in a
    /// `pre_exec` hook. The caller must have set `no_new_privs` first
    /// (`prctl(PR_SET_NO_NEW_PRIVS, 1)`); this does not do it, because the child's other steps
    /// (Landlock) need it too and it belongs with them. Without it, and without
    /// `CAP_SYS_ADMIN`, the kernel refuses the filter with `EACCES`.
    pub fn install(&self) -> io::Result<()> {
        let Ok(len) = u16::try_from(self.prog.len()) else {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        };
        let fprog = libc::sock_fprog {
            len,
            filter: self.prog.as_ptr().cast_mut(),
        };
        let fprog_ptr: *const libc::sock_fprog = &fprog;
        // SAFETY: `fprog` points into `self.prog`, which outlives the call; the kernel copies
        // the program and writes nothing through the pointer.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0 as libc::c_uint,
                fprog_ptr,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ENOSYS) {
            return Err(err);
        }
        // SAFETY: as above; PR_SET_SECCOMP with SECCOMP_MODE_FILTER reads the program once.
        let rc = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::c_ulong::from(libc::SECCOMP_MODE_FILTER),
                fprog_ptr,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// The numbers of the syscalls whose arguments are looked at.
#[derive(Clone, Copy)]
struct Special {
    clone: u32,
    clone3: u32,
    socket: u32,
}

// Offsets in `struct seccomp_data`: nr (u32) at 0, arch (u32) at 4, instruction pointer at 8,
// then six u64 arguments.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

/// The offset of the low 32 bits of argument `i`: the flags looked at all fit in them (clone's
/// flags argument is an unsigned long, but every CLONE_NEW* bit is below bit 32).
const fn arg_lo(i: u32) -> u32 {
    let base = 16 + 8 * i;
    if cfg!(target_endian = "little") {
        base
    } else {
        base + 4
    }
}

/// Every CLONE_NEW* bit that `clone` honours. CLONE_NEWTIME (0x80) is left out: in `clone`'s
/// flags the low byte is the exit signal (CSIGNAL), so 0x80 there means signal 128 (which the
/// kernel refuses anyway); a new time namespace needs `unshare` or `clone3`, both refused.
const CLONE_NS_BITS: u32 = {
    let all = libc::CLONE_NEWNS
        | libc::CLONE_NEWUSER
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWCGROUP
        | libc::CLONE_NEWTIME;
    (all & !libc::CSIGNAL) as u32
};

const SOCK_TYPE_MASK: u32 = 0xf;

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        // BPF opcodes are u16 in the instruction; libc declares the parts as u32.
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(op: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: (libc::BPF_JMP | op | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    }
}

fn load(offset: u32) -> libc::sock_filter {
    stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset)
}

fn ret(action: u32) -> libc::sock_filter {
    stmt(libc::BPF_RET | libc::BPF_K, action)
}

fn errno(e: i32) -> u32 {
    // errno values are small and positive; the action keeps the low 16 bits as data.
    libc::SECCOMP_RET_ERRNO | (e as u32 & libc::SECCOMP_RET_DATA)
}

/// What the program does for one of the syscall numbers it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Deny,
    NoSys,
    /// EPERM when `clone`'s flags hold a namespace bit.
    Clone,
    /// EPERM for AF_PACKET, netlink's netfilter protocol, or SOCK_RAW outside netlink.
    Socket,
}

/// The instructions run once the number matched; each block ends in a `ret`, since the
/// argument tests overwrite the accumulator that held the number.
fn block(action: Action) -> Vec<libc::sock_filter> {
    let eperm = ret(errno(libc::EPERM));
    let allow = ret(libc::SECCOMP_RET_ALLOW);
    match action {
        Action::Deny => vec![eperm],
        Action::NoSys => vec![ret(errno(libc::ENOSYS))],
        Action::Clone => vec![
            load(arg_lo(0)),
            jump(libc::BPF_JSET, CLONE_NS_BITS, 0, 1),
            eperm,
            allow,
        ],
        Action::Socket => vec![
            load(arg_lo(0)),
            jump(libc::BPF_JEQ, libc::AF_PACKET as u32, 6, 0),
            jump(libc::BPF_JEQ, libc::AF_NETLINK as u32, 0, 2),
            load(arg_lo(2)),
            jump(libc::BPF_JEQ, libc::NETLINK_NETFILTER as u32, 3, 4),
            load(arg_lo(1)),
            stmt(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, SOCK_TYPE_MASK),
            jump(libc::BPF_JEQ, libc::SOCK_RAW as u32, 0, 1),
            eperm,
            allow,
        ],
    }
}

/// A jump offset. The program is a few hundred instructions at most, so every offset fits;
/// the unit tests run every syscall number through the program to hold that.
fn skip(n: usize) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

/// Numbers per leaf of the search tree: below this a linear scan is as short.
const LEAF: usize = 4;

/// A binary search over the sorted numbers, the accumulator holding the syscall number: a few
/// comparisons per syscall rather than one per denied number. That matters twice: the kernel
/// runs the program for every number when the filter is installed (to fill its action cache),
/// and on every `clone` and `socket`, whose verdict depends on arguments and is never cached.
fn tree(keys: &[(u32, Action)]) -> Vec<libc::sock_filter> {
    if keys.len() <= LEAF {
        let mut out = Vec::new();
        for &(nr, action) in keys {
            let body = block(action);
            out.push(jump(libc::BPF_JEQ, nr, 0, skip(body.len())));
            out.extend(body);
        }
        out.push(ret(libc::SECCOMP_RET_ALLOW));
        return out;
    }
    let (left, right) = keys.split_at(keys.len() / 2);
    let (l, r) = (tree(left), tree(right));
    let mut out = vec![jump(libc::BPF_JGE, right[0].0, skip(l.len()), 0)];
    out.extend(l);
    out.extend(r);
    out
}

fn build(
    audit_arch: u32,
    x32_bit: Option<u32>,
    denied: &[libc::c_long],
    sp: Special,
) -> Vec<libc::sock_filter> {
    let mut prog = vec![
        load(OFF_ARCH),
        jump(libc::BPF_JEQ, audit_arch, 1, 0),
        ret(libc::SECCOMP_RET_KILL_PROCESS),
        load(OFF_NR),
    ];
    if let Some(bit) = x32_bit {
        prog.push(jump(libc::BPF_JGE, bit, 0, 1));
        prog.push(ret(errno(libc::EPERM)));
    }
    // Syscall numbers are small and positive; the program compares the u32 `nr` field.
    let mut keys: Vec<(u32, Action)> = denied.iter().map(|&n| (n as u32, Action::Deny)).collect();
    keys.push((sp.clone3, Action::NoSys));
    keys.push((sp.clone, Action::Clone));
    keys.push((sp.socket, Action::Socket));
    keys.sort_unstable_by_key(|&(nr, _)| nr);
    prog.extend(tree(&keys));
    prog
}

/// The syscall numbers of the target, in [`DENIED`]'s order.
#[cfg(any(
    all(target_arch = "x86_64", target_endian = "little"),
    all(target_arch = "aarch64", target_endian = "little")
))]
macro_rules! denied_numbers {
    ($kexec_file_load:expr) => {
        [
            libc::SYS_ptrace,
            libc::SYS_process_vm_readv,
            libc::SYS_process_vm_writev,
            libc::SYS_pidfd_getfd,
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_pivot_root,
            libc::SYS_move_mount,
            libc::SYS_open_tree,
            libc::SYS_fsopen,
            libc::SYS_fsmount,
            libc::SYS_fsconfig,
            libc::SYS_fspick,
            libc::SYS_mount_setattr,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_kexec_load,
            $kexec_file_load,
            libc::SYS_bpf,
            libc::SYS_perf_event_open,
            libc::SYS_keyctl,
            libc::SYS_add_key,
            libc::SYS_request_key,
            libc::SYS_init_module,
            libc::SYS_finit_module,
            libc::SYS_delete_module,
            libc::SYS_io_uring_setup,
            libc::SYS_io_uring_enter,
            libc::SYS_io_uring_register,
            libc::SYS_userfaultfd,
            libc::SYS_chroot,
            libc::SYS_swapon,
            libc::SYS_swapoff,
            libc::SYS_reboot,
            libc::SYS_acct,
            libc::SYS_quotactl,
            libc::SYS_quotactl_fd,
            libc::SYS_lookup_dcookie,
            libc::SYS_open_by_handle_at,
        ]
    };
}

#[cfg(all(target_arch = "x86_64", target_endian = "little"))]
mod arch {
    pub(super) const SUPPORTED: bool = true;
    /// AUDIT_ARCH_X86_64: EM_X86_64 (62) | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
    pub(super) const AUDIT_ARCH: u32 = 0xC000_003E;
    /// __X32_SYSCALL_BIT: x32 syscalls arrive with the native audit arch and this bit set.
    pub(super) const X32_BIT: Option<u32> = Some(0x4000_0000);
    const DENIED_NRS: [libc::c_long; super::DENIED.len()] =
        denied_numbers!(libc::SYS_kexec_file_load);

    pub(super) fn denied() -> &'static [libc::c_long] {
        &DENIED_NRS
    }

    pub(super) fn special() -> super::Special {
        super::Special {
            clone: libc::SYS_clone as u32,
            clone3: libc::SYS_clone3 as u32,
            socket: libc::SYS_socket as u32,
        }
    }
}

#[cfg(all(target_arch = "aarch64", target_endian = "little"))]
mod arch {
    pub(super) const SUPPORTED: bool = true;
    /// AUDIT_ARCH_AARCH64: EM_AARCH64 (183) | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
    pub(super) const AUDIT_ARCH: u32 = 0xC000_00B7;
    pub(super) const X32_BIT: Option<u32> = None;
    /// 294 in the generic table; libc's musl aarch64 module lacks SYS_kexec_file_load.
    const KEXEC_FILE_LOAD: libc::c_long = 294;
    const DENIED_NRS: [libc::c_long; super::DENIED.len()] = denied_numbers!(KEXEC_FILE_LOAD);

    pub(super) fn denied() -> &'static [libc::c_long] {
        &DENIED_NRS
    }

    pub(super) fn special() -> super::Special {
        super::Special {
            clone: libc::SYS_clone as u32,
            clone3: libc::SYS_clone3 as u32,
            socket: libc::SYS_socket as u32,
        }
    }
}

#[cfg(not(any(
    all(target_arch = "x86_64", target_endian = "little"),
    all(target_arch = "aarch64", target_endian = "little")
)))]
mod arch {
    pub(super) const SUPPORTED: bool = false;
    pub(super) const AUDIT_ARCH: u32 = 0;
    pub(super) const X32_BIT: Option<u32> = None;

    pub(super) fn denied() -> &'static [libc::c_long] {
        &[]
    }

    pub(super) fn special() -> super::Special {
        super::Special {
            clone: u32::MAX,
            clone3: u32::MAX,
            socket: u32::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic-BPF interpreter for the few opcodes the program uses, over one
    /// `seccomp_data` (nr, arch, args): what the kernel would return.
    fn run(prog: &[libc::sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let mut data = Vec::with_capacity(64);
        data.extend_from_slice(&nr.to_ne_bytes());
        data.extend_from_slice(&arch.to_ne_bytes());
        data.extend_from_slice(&0u64.to_ne_bytes());
        for a in args {
            data.extend_from_slice(&a.to_ne_bytes());
        }
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let ins = prog[pc];
            let code = u32::from(ins.code);
            pc += 1;
            match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    let o = ins.k as usize;
                    acc = u32::from_ne_bytes(data[o..o + 4].try_into().unwrap());
                }
                c if c == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => acc &= ins.k,
                c if c == libc::BPF_RET | libc::BPF_K => return ins.k,
                c if c & 0x07 == libc::BPF_JMP => {
                    let taken = match c & 0xf0 {
                        op if op == libc::BPF_JEQ => acc == ins.k,
                        op if op == libc::BPF_JGE => acc >= ins.k,
                        op if op == libc::BPF_JSET => acc & ins.k != 0,
                        op => panic!("unexpected jump {op:#x}"),
                    };
                    pc += usize::from(if taken { ins.jt } else { ins.jf });
                }
                c => panic!("unexpected opcode {c:#x}"),
            }
            assert!(pc < prog.len(), "jumped past the end");
        }
    }

    fn eval(nr: i64, args: [u64; 6]) -> u32 {
        run(
            Filter::deny_escapes().instructions(),
            nr as u32,
            arch::AUDIT_ARCH,
            args,
        )
    }

    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

    #[test]
    fn the_program_fits_the_kernel_limit_and_ends_in_a_return() {
        let f = Filter::deny_escapes();
        assert!(f.instruction_count() < 4096, "{}", f.instruction_count());
        let last = f.instructions()[f.instruction_count() - 1];
        assert_eq!(u32::from(last.code), libc::BPF_RET | libc::BPF_K);
        assert_eq!(Filter::supported(), arch::SUPPORTED);
        println!("seccomp program: {} instructions", f.instruction_count());
    }

    #[test]
    fn every_denied_name_has_a_number_and_each_number_is_refused() {
        if !Filter::supported() {
            return;
        }
        let nrs = arch::denied();
        assert_eq!(nrs.len(), DENIED.len());
        let mut sorted = nrs.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            nrs.len(),
            "a number twice: a name mapped wrong"
        );
        for (name, &nr) in DENIED.iter().zip(nrs) {
            assert_eq!(eval(nr, [0; 6]), EPERM, "{name}");
        }
    }

    #[cfg(all(target_arch = "x86_64", target_endian = "little"))]
    #[test]
    fn x86_64_numbers_are_the_kernel_ones() {
        // A few spot checks against the kernel's syscall_64.tbl, in case a name is mistyped.
        let by_name = |n: &str| arch::denied()[DENIED.iter().position(|d| *d == n).unwrap()];
        assert_eq!(by_name("ptrace"), 101);
        assert_eq!(by_name("kexec_file_load"), 320);
        assert_eq!(by_name("open_by_handle_at"), 304);
        assert_eq!(by_name("io_uring_setup"), 425);
    }

    #[test]
    fn ordinary_syscalls_are_allowed_and_a_foreign_arch_is_killed() {
        if !Filter::supported() {
            return;
        }
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_openat,
            libc::SYS_execve,
        ] {
            assert_eq!(eval(nr, [0; 6]), ALLOW, "{nr}");
        }
        let prog = Filter::deny_escapes();
        // AUDIT_ARCH_I386, what an `int 0x80` reports on x86_64; AUDIT_ARCH_ARM on aarch64.
        for foreign in [0x4000_0003, 0x4000_0028] {
            let got = run(prog.instructions(), 0, foreign, [0; 6]);
            assert_eq!(got, libc::SECCOMP_RET_KILL_PROCESS);
        }
        if let Some(bit) = arch::X32_BIT {
            let got = run(prog.instructions(), bit | 39, arch::AUDIT_ARCH, [0; 6]);
            assert_eq!(got, EPERM, "an x32 getpid");
        }
    }

    fn bad_socket(domain: u32, ty: u32, protocol: u32) -> bool {
        let netlink = domain == libc::AF_NETLINK as u32;
        domain == libc::AF_PACKET as u32
            || (netlink && protocol == libc::NETLINK_NETFILTER as u32)
            || (!netlink && ty & 0xf == libc::SOCK_RAW as u32)
    }

    /// What the filter should answer, written plainly, to check the search tree against.
    fn reference(nr: u32, args: [u64; 6]) -> u32 {
        let sp = arch::special();
        let lo = |i: usize| args[i] as u32;
        let deny = arch::X32_BIT.is_some_and(|bit| nr >= bit)
            || arch::denied().contains(&(nr as i64))
            || (nr == sp.clone && lo(0) & CLONE_NS_BITS != 0)
            || (nr == sp.socket && bad_socket(lo(0), lo(1), lo(2)));
        if nr == sp.clone3 {
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
        } else if deny {
            EPERM
        } else {
            ALLOW
        }
    }

    #[test]
    fn every_syscall_number_gets_the_reference_answer() {
        if !Filter::supported() {
            return;
        }
        let prog = Filter::deny_escapes();
        let arg_sets = [
            [0; 6],
            [u64::MAX; 6],
            [
                libc::CLONE_NEWUSER as u64,
                libc::SOCK_RAW as u64,
                0,
                0,
                0,
                0,
            ],
            [libc::AF_PACKET as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0],
            [libc::AF_INET as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0],
            [libc::AF_NETLINK as u64, libc::SOCK_RAW as u64, 0, 0, 0, 0],
            [
                libc::AF_NETLINK as u64,
                libc::SOCK_DGRAM as u64,
                12,
                0,
                0,
                0,
            ],
            [libc::AF_INET6 as u64, libc::SOCK_RAW as u64, 12, 0, 0, 0],
        ];
        let x32 = (0x4000_0000..0x4000_0400).chain([u32::MAX]);
        for nr in (0..1024).chain(x32) {
            for args in arg_sets {
                let got = run(prog.instructions(), nr, arch::AUDIT_ARCH, args);
                assert_eq!(got, reference(nr, args), "nr {nr} args {args:?}");
            }
        }
    }

    #[test]
    fn clone_is_refused_with_a_namespace_bit_and_clone3_gets_enosys() {
        if !Filter::supported() {
            return;
        }
        let sigchld = libc::SIGCHLD as u64;
        let thread = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        assert_eq!(eval(libc::SYS_clone, [sigchld, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(eval(libc::SYS_clone, [thread, 0, 0, 0, 0, 0]), ALLOW);
        for ns in [
            libc::CLONE_NEWNS,
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWCGROUP,
        ] {
            // High bits set too: only the low word is looked at, and it still sees the bit.
            let flags = (ns as u64) | sigchld | 0xffff_ffff_0000_0000;
            assert_eq!(
                eval(libc::SYS_clone, [flags, 0, 0, 0, 0, 0]),
                EPERM,
                "{ns:#x}"
            );
        }
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        assert_eq!(eval(libc::SYS_clone3, [0; 6]), enosys);
    }

    #[test]
    fn packet_and_raw_sockets_are_refused_others_allowed() {
        if !Filter::supported() {
            return;
        }
        let s =
            |domain: i32, ty: i32| eval(libc::SYS_socket, [domain as u64, ty as u64, 0, 0, 0, 0]);
        assert_eq!(s(libc::AF_INET, libc::SOCK_STREAM), ALLOW);
        assert_eq!(
            s(libc::AF_INET6, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC),
            ALLOW
        );
        assert_eq!(s(libc::AF_UNIX, libc::SOCK_SEQPACKET), ALLOW);
        assert_eq!(s(libc::AF_PACKET, libc::SOCK_DGRAM), EPERM);
        assert_eq!(s(libc::AF_INET, libc::SOCK_RAW), EPERM);
        let flagged = libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        assert_eq!(s(libc::AF_INET6, flagged), EPERM);
        // rtnetlink, what getifaddrs opens; netfilter's netlink, refused whatever the type.
        assert_eq!(s(libc::AF_NETLINK, libc::SOCK_RAW), ALLOW);
        let nf = [
            libc::AF_NETLINK as u64,
            libc::SOCK_DGRAM as u64,
            12,
            0,
            0,
            0,
        ];
        assert_eq!(eval(libc::SYS_socket, nf), EPERM);
        assert_eq!(eval(libc::SYS_socketpair, [1, 1, 0, 0, 0, 0]), ALLOW);
    }
}
