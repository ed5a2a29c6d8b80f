//! The steps run in the child between fork and exec, in this order: user, mount and network
//! namespaces; read-only binds; loopback and the listeners handed back to ralph; capabilities
//! dropped; no_new_privs; Landlock; seccomp. Everything here was laid out by the parent
//! ([`ChildPlan::new`]): the child only makes syscalls, because the parent has other threads
//! and one of them may hold the allocator's lock at fork.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::seccomp::Filter;

/// The step that failed, sent to the parent before the spawn fails (the errno alone would not
/// say which of twenty calls it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Step {
    Unshare = 1,
    Setgroups,
    UidMap,
    GidMap,
    MountPrivate,
    Bind,
    RemountReadOnly,
    Hide,
    Loopback,
    Listen,
    SendListeners,
    Capabilities,
    NoNewPrivs,
    Landlock,
    Seccomp,
    Chdir,
}

impl Step {
    const ALL: [Step; 16] = [
        Step::Unshare,
        Step::Setgroups,
        Step::UidMap,
        Step::GidMap,
        Step::MountPrivate,
        Step::Bind,
        Step::RemountReadOnly,
        Step::Hide,
        Step::Loopback,
        Step::Listen,
        Step::SendListeners,
        Step::Capabilities,
        Step::NoNewPrivs,
        Step::Landlock,
        Step::Seccomp,
        Step::Chdir,
    ];

    /// The step a failure report names (its byte on the report socket).
    pub fn from_u8(b: u8) -> Option<Step> {
        Step::ALL.into_iter().find(|s| *s as u8 == b)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Step::Unshare => "creating the user, mount and network namespaces (unshare)",
            Step::Setgroups => "writing /proc/self/setgroups",
            Step::UidMap => "writing /proc/self/uid_map",
            Step::GidMap => "writing /proc/self/gid_map",
            Step::MountPrivate => "making the mount namespace private",
            Step::Bind => "bind-mounting a protected path",
            Step::RemountReadOnly => "making a protected path read-only",
            Step::Hide => "hiding a daemon socket",
            Step::Loopback => "bringing up loopback in the network namespace",
            Step::Listen => "opening the proxy's port in the network namespace",
            Step::SendListeners => "handing the proxy's port to ralph",
            Step::Capabilities => "dropping capabilities",
            Step::NoNewPrivs => "setting no_new_privs",
            Step::Landlock => "applying the Landlock ruleset",
            Step::Seccomp => "installing the seccomp filter",
            Step::Chdir => "re-entering the working directory",
        }
    }
}

/// Message tags on the report socket.
pub(crate) const TAG_FAILED: u8 = 0xff;
pub(crate) const TAG_LISTENERS: u8 = 0x01;
/// Most listeners one spawn gets (the proxy and the local model servers).
pub(crate) const MAX_LISTENERS: usize = 16;

#[derive(Debug)]
pub(crate) struct MountOp {
    pub src: CString,
    pub dst: CString,
    pub flags: libc::c_ulong,
    pub step: Step,
    /// A failure is ignored (what it adds is also enforced another way).
    pub optional: bool,
}

#[derive(Debug)]
pub(crate) struct Listener {
    pub addr: libc::sockaddr_storage,
    pub len: libc::socklen_t,
    pub family: libc::c_int,
    /// An IPv6 listener may fail (no IPv6 on loopback); it is then skipped, not fatal.
    pub optional: bool,
}

#[derive(Debug)]
pub(crate) struct NsPlan {
    pub flags: libc::c_int,
    pub setgroups: (CString, &'static [u8]),
    pub uid_map: (CString, Vec<u8>),
    pub gid_map: (CString, Vec<u8>),
    pub mounts: Vec<MountOp>,
    /// With a network namespace: the listeners to open in it.
    pub listeners: Option<Vec<Listener>>,
    /// Scratch space for the working directory, re-entered after the mounts: the directory
    /// the child was started in is on the mount that is now read-only beneath the bind.
    pub cwd: Vec<u8>,
}

/// Everything the child does, prepared by the parent.
#[derive(Debug)]
pub(crate) struct ChildPlan {
    pub ns: Option<NsPlan>,
    pub ruleset: Option<OwnedFd>,
    pub seccomp: Option<Filter>,
    /// The child's end of the report socket (close-on-exec).
    pub report: OwnedFd,
    /// Scratch space for the listeners message, allocated here so the child need not.
    pub payload: Vec<u8>,
    pub cmsg: Vec<u8>,
}

type Res = Result<(), (Step, i32)>;

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn check(step: Step, r: libc::c_int) -> Res {
    if r < 0 {
        Err((step, errno()))
    } else {
        Ok(())
    }
}

impl ChildPlan {
    /// Run every step; on failure, tell the parent which one and return the errno.
    ///
    /// # Safety
    /// Only between fork and exec, in the child.
    pub(crate) unsafe fn run(&mut self) -> std::io::Result<()> {
        match self.steps() {
            Ok(()) => Ok(()),
            Err((step, err)) => {
                let mut msg = [0u8; 6];
                msg[0] = TAG_FAILED;
                msg[1] = step as u8;
                msg[2..].copy_from_slice(&err.to_ne_bytes());
                libc::send(
                    self.report.as_raw_fd(),
                    msg.as_ptr().cast(),
                    msg.len(),
                    libc::MSG_NOSIGNAL,
                );
                Err(std::io::Error::from_raw_os_error(err))
            }
        }
    }

    unsafe fn steps(&mut self) -> Res {
        if let Some(ns) = &mut self.ns {
            let cwd = ns.cwd.as_mut_ptr().cast::<libc::c_char>();
            if libc::getcwd(cwd, ns.cwd.len()).is_null() {
                return Err((Step::Chdir, errno()));
            }
            check(Step::Unshare, libc::unshare(ns.flags))?;
            write_file(Step::Setgroups, &ns.setgroups.0, ns.setgroups.1)?;
            write_file(Step::UidMap, &ns.uid_map.0, &ns.uid_map.1)?;
            write_file(Step::GidMap, &ns.gid_map.0, &ns.gid_map.1)?;
            check(
                Step::MountPrivate,
                libc::mount(
                    c"none".as_ptr(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ),
            )?;
            for m in &ns.mounts {
                let r = libc::mount(
                    m.src.as_ptr(),
                    m.dst.as_ptr(),
                    std::ptr::null(),
                    m.flags,
                    std::ptr::null(),
                );
                if !m.optional {
                    check(m.step, r)?;
                }
            }
            check(Step::Chdir, libc::chdir(cwd))?;
        }
        if let Some(listeners) = self.ns.as_ref().and_then(|ns| ns.listeners.as_ref()) {
            loopback_up()?;
            self.open_and_send(listeners)?;
        }
        drop_capabilities()?;
        check(
            Step::NoNewPrivs,
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
        )?;
        if let Some(fd) = &self.ruleset {
            let r = libc::syscall(libc::SYS_landlock_restrict_self, fd.as_raw_fd(), 0u32);
            if r < 0 {
                return Err((Step::Landlock, errno()));
            }
        }
        if let Some(filter) = &self.seccomp {
            filter
                .install()
                .map_err(|e| (Step::Seccomp, e.raw_os_error().unwrap_or(libc::EIO)))?;
        }
        Ok(())
    }

    /// Open each listener in the new network namespace and send them to the parent in one
    /// message: the tag, one byte per listener (1: opened, 0: skipped), and the fds.
    unsafe fn open_and_send(&self, listeners: &[Listener]) -> Res {
        let mut fds = [-1 as libc::c_int; MAX_LISTENERS];
        let mut n = 0usize;
        let payload = self.payload.as_ptr().cast_mut();
        *payload = TAG_LISTENERS;
        for (i, l) in listeners.iter().enumerate().take(MAX_LISTENERS) {
            match listen(l) {
                Ok(fd) => {
                    fds[n] = fd;
                    n += 1;
                    *payload.add(1 + i) = 1;
                }
                Err(e) if l.optional => {
                    let _ = e;
                    *payload.add(1 + i) = 0;
                }
                Err(e) => return Err(e),
            }
        }
        let mut iov = libc::iovec {
            iov_base: payload.cast(),
            iov_len: 1 + listeners.len().min(MAX_LISTENERS),
        };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if n > 0 {
            let bytes = n * std::mem::size_of::<libc::c_int>();
            msg.msg_control = self.cmsg.as_ptr().cast_mut().cast();
            msg.msg_controllen = libc::CMSG_SPACE(bytes as u32) as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(bytes as u32) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr().cast::<u8>(), libc::CMSG_DATA(c), bytes);
        }
        let r = libc::sendmsg(self.report.as_raw_fd(), &msg, libc::MSG_NOSIGNAL);
        for fd in fds.iter().take(n) {
            libc::close(*fd);
        }
        if r < 0 {
            return Err((Step::SendListeners, errno()));
        }
        Ok(())
    }
}

unsafe fn write_file(step: Step, path: &CString, data: &[u8]) -> Res {
    let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return Err((step, errno()));
    }
    let r = libc::write(fd, data.as_ptr().cast(), data.len());
    let err = errno();
    libc::close(fd);
    if r < 0 || r as usize != data.len() {
        return Err((step, if r < 0 { err } else { libc::EIO }));
    }
    Ok(())
}

unsafe fn loopback_up() -> Res {
    let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
    if fd < 0 {
        return Err((Step::Loopback, errno()));
    }
    let mut req: libc::ifreq = std::mem::zeroed();
    for (i, b) in b"lo".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    let r = libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
    let err = errno();
    libc::close(fd);
    if r < 0 {
        return Err((Step::Loopback, err));
    }
    Ok(())
}

unsafe fn listen(l: &Listener) -> Result<libc::c_int, (Step, i32)> {
    let fd = libc::socket(l.family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
    if fd < 0 {
        return Err((Step::Listen, errno()));
    }
    let one: libc::c_int = 1;
    libc::setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_REUSEADDR,
        (&one as *const libc::c_int).cast(),
        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
    );
    if libc::bind(fd, (&l.addr as *const libc::sockaddr_storage).cast(), l.len) < 0
        || libc::listen(fd, 512) < 0
    {
        let err = errno();
        libc::close(fd);
        return Err((Step::Listen, err));
    }
    Ok(fd)
}

/// No capabilities survive into the agent, even when ralph runs as root: the bounding set is
/// emptied (so exec cannot give them back) and every set cleared. Without this a root agent
/// could remount its way out of a read-only bind.
unsafe fn drop_capabilities() -> Res {
    for cap in 0..64 {
        // EINVAL past the last capability, EPERM without CAP_SETPCAP (an unprivileged ralph
        // outside a user namespace, whose agent has no capabilities to drop).
        libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
    }
    let header = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [CapData::default(); 2];
    let r = libc::syscall(libc::SYS_capset, &header, data.as_ptr());
    if r < 0 {
        return Err((Step::Capabilities, errno()));
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Whether a user namespace with a mount namespace, and a network namespace in it, can be
/// created (tried in a forked child, which exits at once).
pub(crate) fn probe_namespaces(network: bool) -> (bool, bool) {
    let Ok(maps) = id_maps() else {
        return (false, false);
    };
    // SAFETY: the child makes only syscalls on data prepared before the fork, then _exits.
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            return (false, false);
        }
        if pid == 0 {
            let code = probe_child(&maps, network);
            libc::_exit(code);
        }
        let mut status = 0;
        if libc::waitpid(pid, &mut status, 0) < 0 || !libc::WIFEXITED(status) {
            return (false, false);
        }
        match libc::WEXITSTATUS(status) {
            0 => (true, true),
            2 => (true, false),
            _ => (false, false),
        }
    }
}

/// 0: both; 2: user and mount only; 1: neither.
unsafe fn probe_child(maps: &IdMaps, network: bool) -> i32 {
    if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) < 0
        || write_file(Step::Setgroups, &maps.setgroups.0, maps.setgroups.1).is_err()
        || write_file(Step::UidMap, &maps.uid.0, &maps.uid.1).is_err()
        || write_file(Step::GidMap, &maps.gid.0, &maps.gid.1).is_err()
        || libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) < 0
    {
        return 1;
    }
    if network && (libc::unshare(libc::CLONE_NEWNET) < 0 || loopback_up().is_err()) {
        return 2;
    }
    0
}

pub(crate) struct IdMaps {
    pub setgroups: (CString, &'static [u8]),
    pub uid: (CString, Vec<u8>),
    pub gid: (CString, Vec<u8>),
}

/// The agent keeps its own uid and gid inside the user namespace (not root: root would be
/// mapped only if ralph is root).
pub(crate) fn id_maps() -> Result<IdMaps, std::ffi::NulError> {
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    Ok(IdMaps {
        setgroups: (CString::new("/proc/self/setgroups")?, b"deny"),
        uid: (
            CString::new("/proc/self/uid_map")?,
            format!("{uid} {uid} 1\n").into_bytes(),
        ),
        gid: (
            CString::new("/proc/self/gid_map")?,
            format!("{gid} {gid} 1\n").into_bytes(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::Step;

    #[test]
    fn every_step_round_trips_through_its_byte() {
        for (i, s) in Step::ALL.iter().enumerate() {
            assert_eq!(*s as u8, i as u8 + 1);
            assert_eq!(Step::from_u8(*s as u8), Some(*s));
        }
        assert_eq!(Step::from_u8(0), None);
        assert_eq!(Step::from_u8(Step::ALL.len() as u8 + 1), None);
    }
}
