//! The seccomp filter against the real kernel: each denied syscall is tried in a forked child
//! under the filter (it must get EPERM) and in one without it (it must not, or the test would
//! pass with a filter that denies nothing). Arguments are bogus on purpose, so that the
//! unfiltered control fails harmlessly (EFAULT, EBADF, EINVAL) even though we run as root.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Instant;

use ralph_sandbox::seccomp::{Filter, DENIED};

#[derive(Debug, PartialEq, Eq)]
enum Exit {
    /// The child's exit code: 0 for success, else the errno it got.
    Code(i32),
    Signal(i32),
}

fn set_no_new_privs() -> std::io::Result<()> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integers only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Forks; the child installs `filter` (if any), runs `f` and exits with what it returns. The
/// child only makes syscalls: this test process has other threads.
fn in_child(filter: Option<&Filter>, f: fn() -> i32) -> Exit {
    // SAFETY: the child runs only async-signal-safe code and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = match filter.map(|f| set_no_new_privs().and_then(|()| f.install())) {
            Some(Err(_)) => 100,
            _ => f(),
        };
        // SAFETY: ends the child without running the parent's destructors or atexit hooks.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    if libc::WIFEXITED(status) {
        let code = libc::WEXITSTATUS(status);
        assert_ne!(code, 100, "the filter could not be installed");
        Exit::Code(code)
    } else {
        Exit::Signal(libc::WTERMSIG(status))
    }
}

/// 0 when a syscall's result says success, else its errno.
fn errno_of(rc: libc::c_long) -> i32 {
    if rc >= 0 {
        0
    } else {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(255)
    }
}

macro_rules! sys {
    ($nr:expr $(, $a:expr)*) => {{
        fn call() -> i32 {
            // SAFETY: bogus pointers are never valid addresses (1, or null); the kernel checks
            // them and fails with EFAULT, or the filter refuses the call before it runs.
            errno_of(unsafe { libc::syscall($nr $(, $a as libc::c_long)*) })
        }
        call as fn() -> i32
    }};
}

/// A syscall tried in a child: 0 on success, else its errno.
type Call = fn() -> i32;

/// Every denied syscall, with arguments that make it fail harmlessly when it is not filtered.
fn denied_calls() -> Vec<(&'static str, Call)> {
    const BAD: usize = 1; // an unmapped address: EFAULT
    vec![
        ("ptrace", sys!(libc::SYS_ptrace, 0xdead, 0x7fff_fff0, 0, 0)),
        (
            "process_vm_readv",
            sys!(libc::SYS_process_vm_readv, 0x7fff_fff0, BAD, 1, BAD, 1, 0),
        ),
        (
            "process_vm_writev",
            sys!(libc::SYS_process_vm_writev, 0x7fff_fff0, BAD, 1, BAD, 1, 0),
        ),
        ("pidfd_getfd", sys!(libc::SYS_pidfd_getfd, -1, 0, 0)),
        ("mount", sys!(libc::SYS_mount, BAD, BAD, BAD, 0, 0)),
        ("umount2", sys!(libc::SYS_umount2, BAD, 0)),
        ("pivot_root", sys!(libc::SYS_pivot_root, BAD, BAD)),
        (
            "move_mount",
            sys!(libc::SYS_move_mount, -1, BAD, -1, BAD, 0xffff_0000u32),
        ),
        (
            "open_tree",
            sys!(libc::SYS_open_tree, -1, BAD, 0xffff_0000u32),
        ),
        ("fsopen", sys!(libc::SYS_fsopen, BAD, 0xffff_0000u32)),
        ("fsmount", sys!(libc::SYS_fsmount, -1, 0xffff_0000u32, 0)),
        ("fsconfig", sys!(libc::SYS_fsconfig, -1, 0xffff, 0, 0, 0)),
        ("fspick", sys!(libc::SYS_fspick, -1, BAD, 0xffff_0000u32)),
        (
            "mount_setattr",
            sys!(libc::SYS_mount_setattr, -1, BAD, 0xffff_0000u32, 0, 0),
        ),
        // unshare(0) does nothing and succeeds unfiltered.
        ("unshare", sys!(libc::SYS_unshare, 0)),
        ("setns", sys!(libc::SYS_setns, -1, 0)),
        // Unknown flags: EINVAL, before any image is loaded or unloaded.
        (
            "kexec_load",
            sys!(libc::SYS_kexec_load, 0, 0, 0, 0xdead_0000u32),
        ),
        (
            "kexec_file_load",
            sys!(libc::SYS_kexec_file_load, -1, -1, 0, 0, 0xdead_0000u32),
        ),
        ("bpf", sys!(libc::SYS_bpf, 0xffff, 0, 0)),
        (
            "perf_event_open",
            sys!(libc::SYS_perf_event_open, BAD, 0, -1, -1, 0),
        ),
        ("keyctl", sys!(libc::SYS_keyctl, 0xffff, 0, 0, 0, 0)),
        ("add_key", sys!(libc::SYS_add_key, BAD, BAD, 0, 0, 0)),
        ("request_key", sys!(libc::SYS_request_key, BAD, BAD, 0, 0)),
        ("init_module", sys!(libc::SYS_init_module, BAD, 0, BAD)),
        ("finit_module", sys!(libc::SYS_finit_module, -1, BAD, 0)),
        ("delete_module", sys!(libc::SYS_delete_module, BAD, 0)),
        ("io_uring_setup", sys!(libc::SYS_io_uring_setup, 1, BAD)),
        (
            "io_uring_enter",
            sys!(libc::SYS_io_uring_enter, -1, 0, 0, 0, 0, 0),
        ),
        (
            "io_uring_register",
            sys!(libc::SYS_io_uring_register, -1, 0, 0, 0),
        ),
        ("userfaultfd", sys!(libc::SYS_userfaultfd, 0xffff_0000u32)),
        ("chroot", sys!(libc::SYS_chroot, BAD)),
        ("swapon", sys!(libc::SYS_swapon, BAD, 0)),
        ("swapoff", sys!(libc::SYS_swapoff, BAD)),
        // Wrong magic numbers: EINVAL, nothing reboots.
        ("reboot", sys!(libc::SYS_reboot, 0, 0, 0, 0)),
        ("acct", sys!(libc::SYS_acct, BAD)),
        ("quotactl", sys!(libc::SYS_quotactl, 0, BAD, 0, 0)),
        ("quotactl_fd", sys!(libc::SYS_quotactl_fd, -1, 0, 0, 0)),
        ("lookup_dcookie", sys!(libc::SYS_lookup_dcookie, 0, 0, 0)),
        (
            "open_by_handle_at",
            sys!(libc::SYS_open_by_handle_at, -1, BAD, 0),
        ),
    ]
}

#[test]
fn every_denied_syscall_gets_eperm_and_would_not_without_the_filter() {
    if !Filter::supported() {
        return;
    }
    let filter = Filter::deny_escapes();
    let calls = denied_calls();
    let names: Vec<_> = calls.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, DENIED, "the test's list and the filter's differ");
    for (name, call) in calls {
        let control = in_child(None, call);
        assert_ne!(
            control,
            Exit::Code(libc::EPERM),
            "{name} is refused even unfiltered"
        );
        assert!(
            matches!(control, Exit::Code(_)),
            "{name} unfiltered: {control:?}"
        );
        assert_eq!(
            in_child(Some(&filter), call),
            Exit::Code(libc::EPERM),
            "{name}"
        );
    }
}

fn clone_with(flags: libc::c_int) -> i32 {
    // SAFETY: without CLONE_VM the child gets a copy of this stack, like fork; it leaves at once.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD, 0, 0, 0, 0) };
    if pid == 0 {
        // SAFETY: the clone's child ends here.
        unsafe { libc::_exit(0) };
    }
    if pid > 0 {
        // SAFETY: reaps the child cloned above.
        unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0) };
    }
    errno_of(pid)
}

#[test]
fn clone_into_a_new_namespace_is_refused_plain_clone_is_not() {
    if !Filter::supported() {
        return;
    }
    let filter = Filter::deny_escapes();
    let new_user: fn() -> i32 = || clone_with(libc::CLONE_NEWUSER);
    let new_net: fn() -> i32 = || clone_with(libc::CLONE_NEWNET);
    let plain: fn() -> i32 = || clone_with(0);
    for call in [new_user, new_net] {
        assert_eq!(in_child(None, call), Exit::Code(0), "control");
        assert_eq!(in_child(Some(&filter), call), Exit::Code(libc::EPERM));
    }
    assert_eq!(in_child(Some(&filter), plain), Exit::Code(0));
}

#[test]
fn clone3_gets_enosys() {
    if !Filter::supported() {
        return;
    }
    // A bad pointer: EFAULT unfiltered, so the control tells the filter's answer apart.
    let call = sys!(libc::SYS_clone3, 1usize, 88usize);
    assert_eq!(in_child(None, call), Exit::Code(libc::EFAULT));
    assert_eq!(
        in_child(Some(&Filter::deny_escapes()), call),
        Exit::Code(libc::ENOSYS)
    );
}

#[test]
fn packet_and_raw_sockets_are_refused() {
    if !Filter::supported() {
        return;
    }
    let filter = Filter::deny_escapes();
    const RAW_FLAGS: i32 = libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    let refused = [
        sys!(libc::SYS_socket, libc::AF_PACKET, libc::SOCK_DGRAM, 0),
        sys!(
            libc::SYS_socket,
            libc::AF_NETLINK,
            libc::SOCK_DGRAM,
            libc::NETLINK_NETFILTER
        ),
        sys!(
            libc::SYS_socket,
            libc::AF_INET,
            libc::SOCK_RAW,
            libc::IPPROTO_ICMP
        ),
        sys!(
            libc::SYS_socket,
            libc::AF_INET6,
            RAW_FLAGS,
            libc::IPPROTO_ICMPV6
        ),
    ];
    for call in refused {
        assert_eq!(
            in_child(None, call),
            Exit::Code(0),
            "control: root may open it"
        );
        assert_eq!(in_child(Some(&filter), call), Exit::Code(libc::EPERM));
    }
    let allowed = [
        sys!(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0),
        sys!(
            libc::SYS_socket,
            libc::AF_NETLINK,
            libc::SOCK_RAW,
            libc::NETLINK_ROUTE
        ),
        sys!(
            libc::SYS_socket,
            libc::AF_INET6,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            0
        ),
        sys!(libc::SYS_socket, libc::AF_UNIX, libc::SOCK_SEQPACKET, 0),
    ];
    for call in allowed {
        assert_eq!(in_child(Some(&filter), call), Exit::Code(0));
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn x32_syscalls_are_refused_and_the_i386_table_kills() {
    const X32_GETPID: libc::c_long = 0x4000_0000 | libc::SYS_getpid;
    let filter = Filter::deny_escapes();
    let x32 = sys!(X32_GETPID);
    // Unfiltered: the pid (x32 built in) or ENOSYS; never EPERM.
    assert_ne!(in_child(None, x32), Exit::Code(libc::EPERM));
    assert_eq!(in_child(Some(&filter), x32), Exit::Code(libc::EPERM));

    let int80_getpid: fn() -> i32 = || {
        let ret: i64;
        // SAFETY: `int 0x80` with eax = 20 is the i386 getpid; it reads and writes no memory.
        unsafe {
            std::arch::asm!("int 0x80", inlateout("rax") 20i64 => ret, options(nostack));
        }
        // SAFETY: getpid has no preconditions.
        i32::from(ret != i64::from(unsafe { libc::getpid() }))
    };
    if in_child(None, int80_getpid) != Exit::Code(0) {
        eprintln!("no ia32 emulation in this kernel: the i386 check is not exercised");
        return;
    }
    assert_eq!(
        in_child(Some(&filter), int80_getpid),
        Exit::Signal(libc::SIGSYS)
    );
}

/// `cmd` with no_new_privs set and the filter installed just before exec.
fn filtered(cmd: &mut Command) -> &mut Command {
    let filter = Filter::deny_escapes();
    // SAFETY: the hook makes two syscalls and nothing else (no allocation, no lock).
    unsafe {
        cmd.pre_exec(move || {
            set_no_new_privs()?;
            filter.install()
        })
    }
}

#[test]
fn unshare_r_fails_under_the_filter_and_succeeds_without() {
    let control = Command::new("unshare")
        .args(["-r", "true"])
        .status()
        .unwrap();
    assert!(
        control.success(),
        "control: unshare -r true failed unfiltered"
    );
    let out = filtered(Command::new("unshare").args(["-r", "true"]))
        .output()
        .unwrap();
    assert_eq!(out.status.success(), !Filter::supported(), "{out:?}");
}

#[test]
fn ordinary_work_runs_under_the_filter() {
    let out = filtered(Command::new("sh").args(["-c", "echo hi; (echo sub)"]))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\nsub\n");

    let out = filtered(Command::new("git").arg("--version"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("git version"));
}

const PYTHON_WORK: &str = r#"
import socket, subprocess, threading
got = []
t = threading.Thread(target=lambda: got.append(1)); t.start(); t.join()
assert got == [1]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.bind(("127.0.0.1", 0)); s.close()
a, b = socket.socketpair(socket.AF_UNIX); a.sendall(b"x"); assert b.recv(1) == b"x"
assert subprocess.run(["true"]).returncode == 0
# AI_ADDRCONFIG makes glibc ask rtnetlink which addresses exist.
assert socket.getaddrinfo("localhost", 80, flags=socket.AI_ADDRCONFIG)
# rtnetlink (SOCK_RAW) is allowed: listing interfaces works.
assert socket.if_nameindex()
for dom, ty in [(socket.AF_PACKET, socket.SOCK_DGRAM), (socket.AF_INET, socket.SOCK_RAW)]:
    try:
        socket.socket(dom, ty)
        raise SystemExit("opened %r %r" % (dom, ty))
    except PermissionError:
        pass
print("ok")
"#;

#[test]
fn python_threads_sockets_and_subprocesses_run_under_the_filter() {
    if !Filter::supported() {
        return;
    }
    let out = filtered(Command::new("python3").args(["-c", PYTHON_WORK]))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(stdout.ends_with("ok\n"), "{stdout}");
}

/// Not an assertion on time: prints how long building and installing take, for the record.
#[test]
fn build_and_install_cost() {
    let start = Instant::now();
    let rounds = 1000u32;
    let mut len = 0;
    for _ in 0..rounds {
        len = std::hint::black_box(Filter::deny_escapes()).instruction_count();
    }
    let build = start.elapsed() / rounds;

    let filter = Filter::deny_escapes();
    let mut fds = [0; 2];
    // SAFETY: fills the two-element array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only makes syscalls (Instant::now is clock_gettime) and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // no_new_privs outside the timing: install alone is measured.
        let nnp = set_no_new_privs().is_ok();
        let t = Instant::now();
        let ok = nnp && filter.install().is_ok();
        let ns = if ok {
            t.elapsed().as_nanos() as u64
        } else {
            u64::MAX
        };
        // SAFETY: writes eight bytes from a local to the pipe, then ends the child.
        unsafe {
            libc::write(fds[1], (&ns as *const u64).cast(), 8);
            libc::_exit(0);
        }
    }
    // SAFETY: closes the write end this process no longer needs.
    unsafe { libc::close(fds[1]) };
    // SAFETY: the read end is ours; File takes it over and closes it.
    let mut pipe = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[0]) };
    let mut buf = [0u8; 8];
    pipe.read_exact(&mut buf).unwrap();
    // SAFETY: reaps the child forked above.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    let install_ns = u64::from_ne_bytes(buf);
    assert_ne!(install_ns, u64::MAX, "install failed");
    println!("seccomp: {len} instructions, build {build:?}, install {install_ns} ns");
}
