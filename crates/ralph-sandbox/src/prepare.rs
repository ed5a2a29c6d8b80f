//! The parent's side of one sandboxed spawn: lay out everything the child needs
//! ([`prepare`]), hook it into the command ([`Prepared::install`]), then either learn which
//! step failed ([`Prepared::failure`]) or start serving the network namespace's ports
//! ([`Prepared::start`]).

use std::ffi::CString;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::allow::AllowList;
use crate::child::{self, ChildPlan, Listener, MountOp, NsPlan, Step};
use crate::proxy::{Denied, ProxyHandle};
use crate::seccomp::Filter;
use crate::{Mode, Network, Policy, Support};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Rules(#[from] crate::landlock_rules::RulesError),
    #[error("[sandbox] allow_hosts: {0}")]
    BadHost(#[from] crate::allow::BadHost),
    #[error("path {0} contains a NUL byte")]
    Nul(String),
    #[error("sandbox setup: {0}")]
    Io(#[from] std::io::Error),
    #[error("sandbox setup failed while {}: {}", .step.describe(), std::io::Error::from_raw_os_error(*.errno))]
    Setup { step: Step, errno: i32 },
    #[error("sandbox setup: the child did not hand back its network namespace's ports")]
    NoListeners,
}

/// The port the proxy listens on inside the namespace (the squid default, so that tools that
/// guess see the usual number), moved up when a forwarded local server already uses it.
const PROXY_PORT: u16 = 3128;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Proxy,
    Forward(SocketAddr),
}

/// One spawn's sandbox, ready to be installed in a command.
#[derive(Debug)]
pub struct Prepared {
    child: Option<ChildPlan>,
    report: OwnedFd,
    env: Vec<(String, String)>,
    kinds: Option<Vec<Kind>>,
    allow: Arc<AllowList>,
}

/// The network side of a running sandboxed process: the proxy and the forwards, stopped when
/// this is dropped.
#[derive(Debug)]
pub struct Active {
    _handles: Vec<ProxyHandle>,
    denied: Option<tokio::sync::mpsc::UnboundedReceiver<Denied>>,
}

impl Active {
    /// Connections the proxy refused since the last call.
    pub fn take_denied(&mut self) -> Vec<Denied> {
        let mut out = Vec::new();
        if let Some(rx) = &mut self.denied {
            while let Ok(d) = rx.try_recv() {
                out.push(d);
            }
        }
        out
    }
}

fn tmp_env(tmpdir: &Path) -> Vec<(String, String)> {
    ["TMPDIR", "TMP", "TEMP"]
        .map(|k| (k.to_string(), tmpdir.display().to_string()))
        .to_vec()
}

/// The variables a process sandboxed under `policy` gets, without preparing anything (what
/// `ralph run --dry-run` shows).
pub fn env_for(policy: &Policy) -> Vec<(String, String)> {
    if policy.enforced.mode == Mode::Off {
        return Vec::new();
    }
    let mut env = tmp_env(&policy.tmpdir);
    if policy.enforced.namespaces && policy.enforced.network == Network::Allowlist {
        env.extend(listeners(&policy.forwards).2);
    }
    env
}

/// Lay out the sandbox for one spawn under `policy`. Nothing is applied yet.
pub fn prepare(policy: &Policy, support: &Support) -> Result<Prepared, SandboxError> {
    let (parent, child_end) = seqpacket_pair()?;
    let allow = Arc::new(AllowList::new(&policy.allow_hosts)?);
    let mut env = tmp_env(&policy.tmpdir);
    if policy.enforced.mode == Mode::Off {
        return Ok(Prepared {
            child: None,
            report: parent,
            env: Vec::new(),
            kinds: None,
            allow,
        });
    }
    let ruleset = if support.filesystem() {
        Some(crate::landlock_rules::build(policy, support.landlock_abi)?)
    } else {
        None
    };
    let seccomp = (support.seccomp && Filter::supported()).then(Filter::deny_escapes);
    let mut kinds = None;
    let ns = if policy.enforced.namespaces {
        let (listeners, k) = match policy.enforced.network {
            Network::On => (None, None),
            Network::Off => (Some(Vec::new()), Some(Vec::new())),
            Network::Allowlist => {
                let (l, k, proxy_env) = listeners(&policy.forwards);
                env.extend(proxy_env);
                (Some(l), Some(k))
            }
        };
        kinds = k;
        Some(ns_plan(policy, listeners)?)
    } else {
        None
    };
    let child = ChildPlan {
        ns,
        ruleset,
        seccomp,
        report: child_end,
        payload: vec![0u8; 1 + child::MAX_LISTENERS],
        // SAFETY: CMSG_SPACE is arithmetic on its argument.
        cmsg: vec![
            0u8;
            unsafe {
                libc::CMSG_SPACE((child::MAX_LISTENERS * std::mem::size_of::<libc::c_int>()) as u32)
            } as usize
        ],
    };
    Ok(Prepared {
        child: Some(child),
        report: parent,
        env,
        kinds,
        allow,
    })
}

impl Prepared {
    /// Variables the sandboxed process must get (TMPDIR, and the proxy's with allowlist).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Add the sandbox's pre-exec hook to `cmd` (after any other hooks: it must run last,
    /// since seccomp and Landlock restrict what later hooks could do).
    pub fn install(&mut self, cmd: &mut tokio::process::Command) {
        let Some(mut plan) = self.child.take() else {
            return;
        };
        // SAFETY: ChildPlan::run makes only syscalls on memory laid out before the fork.
        unsafe {
            cmd.pre_exec(move || plan.run());
        }
    }

    /// After a failed spawn (only then: it reads the report socket, where a successful child
    /// left its listeners): the sandbox step that failed, if it was the sandbox.
    pub fn failure(&self) -> Option<SandboxError> {
        let mut buf = [0u8; 64];
        // SAFETY: a non-blocking recv into a buffer we own.
        let n = unsafe {
            libc::recv(
                self.report.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n >= 6 && buf[0] == child::TAG_FAILED {
            let step = Step::from_u8(buf[1])?;
            let errno = i32::from_ne_bytes([buf[2], buf[3], buf[4], buf[5]]);
            return Some(SandboxError::Setup { step, errno });
        }
        None
    }

    /// After a successful spawn (inside a tokio runtime): serve the ports the child opened in
    /// its network namespace.
    pub fn start(self) -> Result<Active, SandboxError> {
        let Some(kinds) = self.kinds else {
            return Ok(Active {
                _handles: Vec::new(),
                denied: None,
            });
        };
        let (opened, fds) = recv_listeners(&self.report, kinds.len())?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut handles = Vec::new();
        let mut fds = fds.into_iter();
        for (kind, ok) in kinds.iter().zip(opened) {
            if !ok {
                continue;
            }
            let Some(fd) = fds.next() else {
                return Err(SandboxError::NoListeners);
            };
            let listener = TcpListener::from(fd);
            handles.push(match kind {
                Kind::Proxy => crate::proxy::serve_proxy(listener, self.allow.clone(), tx.clone())?,
                Kind::Forward(target) => crate::proxy::serve_forward(listener, *target)?,
            });
        }
        Ok(Active {
            _handles: handles,
            denied: Some(rx),
        })
    }
}

fn seqpacket_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two fds into the array we own.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn recv_listeners(
    report: &OwnedFd,
    count: usize,
) -> Result<(Vec<bool>, Vec<OwnedFd>), SandboxError> {
    let mut payload = [0u8; 1 + child::MAX_LISTENERS];
    // SAFETY: CMSG_SPACE is arithmetic.
    let space = unsafe {
        libc::CMSG_SPACE((child::MAX_LISTENERS * std::mem::size_of::<libc::c_int>()) as u32)
    } as usize;
    let mut cmsg = vec![0u8; space];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    // SAFETY: msghdr is plain data; every pointer in it points at buffers that outlive the call.
    let (n, msg) = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let n = libc::recvmsg(
            report.as_raw_fd(),
            &mut msg,
            libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
        );
        (n, msg)
    };
    if n < 1 || payload[0] != child::TAG_LISTENERS {
        return Err(SandboxError::NoListeners);
    }
    let opened: Vec<bool> = payload[1..1 + count.min(child::MAX_LISTENERS)]
        .iter()
        .map(|b| *b == 1)
        .collect();
    let mut fds = Vec::new();
    // SAFETY: walking the control messages recvmsg filled in, within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c).cast::<libc::c_int>();
                let len = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for i in 0..len / std::mem::size_of::<libc::c_int>() {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((opened, fds))
}

/// The listeners for `network = "allowlist"`: the proxy, then one per forwarded local server;
/// and the variables that point the agent at the proxy.
fn listeners(forwards: &[SocketAddr]) -> (Vec<Listener>, Vec<Kind>, Vec<(String, String)>) {
    let mut port = PROXY_PORT;
    while forwards
        .iter()
        .any(|f| f.port() == port && f.ip().is_loopback())
    {
        port += 1;
    }
    let proxy = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut l = vec![listener(proxy, false)];
    let mut k = vec![Kind::Proxy];
    for f in forwards.iter().take(child::MAX_LISTENERS - 1) {
        l.push(listener(*f, f.is_ipv6()));
        k.push(Kind::Forward(*f));
    }
    let url = format!("http://{proxy}");
    let no_proxy = "localhost,127.0.0.1,::1".to_string();
    let mut env = Vec::new();
    for name in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
        env.push((name.to_string(), url.clone()));
    }
    env.push(("NO_PROXY".into(), no_proxy.clone()));
    env.push(("no_proxy".into(), no_proxy));
    // Node 24+ reads the proxy variables in its built-in fetch only when asked.
    env.push(("NODE_USE_ENV_PROXY".into(), "1".into()));
    (l, k, env)
}

fn listener(addr: SocketAddr, optional: bool) -> Listener {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let (len, family) = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            (std::mem::size_of::<libc::sockaddr_in>(), libc::AF_INET)
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            (std::mem::size_of::<libc::sockaddr_in6>(), libc::AF_INET6)
        }
    };
    Listener {
        addr: storage,
        len: len as libc::socklen_t,
        family,
        optional,
    }
}

fn cstring(p: &Path) -> Result<CString, SandboxError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| SandboxError::Nul(p.display().to_string()))
}

/// The namespaces and the mounts in them: each read-only path bound onto itself and remounted
/// read-only (writable roots inside it bound first, so the recursive bind keeps them
/// writable), and each daemon socket covered by `/dev/null`.
fn ns_plan(policy: &Policy, listeners: Option<Vec<Listener>>) -> Result<NsPlan, SandboxError> {
    let maps = child::id_maps().map_err(|_| SandboxError::Nul("uid map".into()))?;
    let mut flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS;
    if listeners.is_some() {
        flags |= libc::CLONE_NEWNET;
    }
    let writable: Vec<&PathBuf> = std::iter::once(&policy.work_root)
        .chain(std::iter::once(&policy.tmpdir))
        .chain(&policy.writable)
        .collect();
    let mut mounts = Vec::new();
    // Every writable root bound onto itself, then every user-data mount read-only: the binds
    // are mounts of their own and stay writable.
    let roots: Vec<&Path> = writable
        .iter()
        .map(|p| p.as_path())
        .filter(|p| p.exists())
        .collect();
    for w in &roots {
        let p = cstring(w)?;
        mounts.push(MountOp {
            src: p.clone(),
            dst: p,
            flags: libc::MS_BIND | libc::MS_REC,
            step: Step::Bind,
            optional: false,
        });
    }
    for m in crate::mounts::user_data_mounts(&roots) {
        let p = cstring(&m.point)?;
        mounts.push(MountOp {
            src: p.clone(),
            dst: p,
            flags: libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | m.locked,
            step: Step::RemountReadOnly,
            // A mount this user may not remount (another user's FUSE mount) keeps Landlock's
            // protection only; that is not a reason to refuse to run.
            optional: true,
        });
    }
    for ro in &policy.read_only {
        let Ok(meta) = std::fs::symlink_metadata(ro) else {
            continue;
        };
        // A symlink would be followed by mount(2): protect only what is really there.
        if meta.file_type().is_symlink() {
            continue;
        }
        for w in writable.iter().filter(|w| w.starts_with(ro) && *w != &ro) {
            if w.exists() {
                let p = cstring(w)?;
                mounts.push(MountOp {
                    src: p.clone(),
                    dst: p,
                    flags: libc::MS_BIND | libc::MS_REC,
                    step: Step::Bind,
                    optional: false,
                });
            }
        }
        let p = cstring(ro)?;
        mounts.push(MountOp {
            src: p.clone(),
            dst: p.clone(),
            flags: libc::MS_BIND | libc::MS_REC,
            step: Step::Bind,
            optional: false,
        });
        mounts.push(MountOp {
            src: p.clone(),
            dst: p,
            flags: libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked_flags(ro),
            step: Step::RemountReadOnly,
            optional: false,
        });
    }
    let null = CString::new("/dev/null").map_err(|_| SandboxError::Nul("/dev/null".into()))?;
    for h in &policy.hidden {
        let Ok(meta) = std::fs::symlink_metadata(h) else {
            continue;
        };
        if meta.is_dir() || meta.file_type().is_symlink() {
            continue;
        }
        mounts.push(MountOp {
            src: null.clone(),
            dst: cstring(h)?,
            flags: libc::MS_BIND,
            step: Step::Hide,
            optional: true,
        });
    }
    Ok(NsPlan {
        flags,
        setgroups: maps.setgroups,
        uid_map: maps.uid,
        gid_map: maps.gid,
        mounts,
        listeners,
        cwd: vec![0u8; libc::PATH_MAX as usize + 1],
    })
}

/// The flags of the mount `path` is on that a user namespace may not clear (nosuid, nodev,
/// noexec, the atime mode): a read-only remount must repeat them or the kernel refuses it.
fn locked_flags(path: &Path) -> libc::c_ulong {
    let Ok(c) = cstring(path) else { return 0 };
    // SAFETY: statvfs fills the struct we own.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } < 0 {
        return 0;
    }
    let f = st.f_flag;
    let mut out = 0;
    for (st_bit, ms_bit) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if f & st_bit != 0 {
            out |= ms_bit;
        }
    }
    out
}
