//! The sandbox of one agent or gate call, as ralph-core sees it: the policy built from the
//! settings, the project's layout (`layout.rs`) and the backend's declared state directories and
//! hosts; the call's private temp dir, removed when the call ends; and the denials the agent
//! reported (`denials.rs`). The kernel side is `ralph-sandbox`.

mod denials;
mod layout;

use std::path::{Path, PathBuf};

use ralph_agents::BackendDescriptor;
use ralph_sandbox::{Enforced, Mode, Network, Prepared, SandboxError, Support};

pub use denials::{Denial, DenialScanner};

/// What is enforced on one kind of call (agents, or gates) and its own lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSide {
    pub enforced: Enforced,
    /// `writable` from the config: absolute paths.
    pub writable: Vec<PathBuf>,
    /// `allow_hosts` from the config.
    pub allow_hosts: Vec<String>,
}

impl SandboxSide {
    /// No sandbox.
    pub fn off() -> SandboxSide {
        SandboxSide {
            enforced: Enforced {
                mode: Mode::Off,
                network: Network::On,
                namespaces: false,
                gaps: Vec::new(),
            },
            writable: Vec::new(),
            allow_hosts: Vec::new(),
        }
    }

    /// How the mode is shown: `workspace`, `workspace, network allowlist`, `off`.
    pub fn label(&self) -> String {
        let e = &self.enforced;
        match (e.mode, e.network) {
            (Mode::Off, _) => "off".into(),
            (m, Network::On) => m.as_str().into(),
            (m, n) => format!("{}, network {}", m.as_str(), n.as_str()),
        }
    }
}

/// `[sandbox]` resolved by the CLI against the kernel.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    pub agents: SandboxSide,
    pub gates: SandboxSide,
    pub support: Support,
    /// The environment ralph was started with, which agents and gates inherit: HOME, PATH and
    /// the backends' state-directory variables are read from it, and loopback URLs in it are
    /// forwarded into a network namespace. (The engine itself never reads the environment.)
    pub env: Vec<(String, String)>,
    /// Where the calls' private temp dirs are made (ralph's own temp dir).
    pub tmp_root: PathBuf,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            agents: SandboxSide::off(),
            gates: SandboxSide::off(),
            support: Support {
                landlock_abi: 0,
                seccomp: false,
                user_namespaces: false,
                network_namespaces: false,
            },
            env: Vec::new(),
            tmp_root: PathBuf::from("/tmp"),
        }
    }
}

/// Who a call runs.
#[derive(Debug, Clone, Copy)]
pub enum Who {
    Agent(&'static BackendDescriptor),
    Gate,
}

/// Where one call runs.
#[derive(Debug, Clone, Copy)]
pub struct CallPlace<'a> {
    /// The project root (where `.ralph/` and `ralph.toml` are).
    pub root: &'a Path,
    /// The project root or a story's worktree.
    pub work_root: &'a Path,
    /// `<run-id>-<iteration>-<call>`: names the private temp dir.
    pub tag: &'a str,
    /// The call's artifact directory, where a backend may be asked to write a file for ralph
    /// (Copilot's usage stats): writable to the agent, as it is without a sandbox.
    pub scratch: Option<&'a Path>,
}

/// The command a call runs, as its sandbox needs it: its own variables override the inherited
/// ones and may hold a local server's URL; in strict mode the program and the files its
/// arguments name are readable.
#[derive(Debug, Clone, Copy)]
pub struct CallCommand<'a> {
    pub program: &'a str,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
}

/// One call's sandbox: what to install in the command, and its temp dir, removed on drop.
#[derive(Debug)]
pub struct CallSandbox {
    pub prepared: Option<Prepared>,
    tmpdir: PathBuf,
}

impl Drop for CallSandbox {
    fn drop(&mut self) {
        // What the agent left in its temp dir is not the project's; remove_dir_all does not
        // follow symlinks.
        let _ = std::fs::remove_dir_all(&self.tmpdir);
    }
}

/// The sandbox for one call running `cmd`, or `None` when its side is off.
pub fn for_call(
    settings: &SandboxSettings,
    place: CallPlace<'_>,
    who: Who,
    cmd: CallCommand<'_>,
) -> Result<Option<CallSandbox>, SandboxError> {
    let Some(policy) = call_policy(settings, place, who, cmd) else {
        return Ok(None);
    };
    // Made before the sandbox is prepared, so that a failure still removes it (on drop).
    let mut sandbox = CallSandbox {
        prepared: None,
        tmpdir: make_tmpdir(&settings.tmp_root, place.tag)?,
    };
    sandbox.prepared = Some(ralph_sandbox::prepare(&policy, &settings.support)?);
    Ok(Some(sandbox))
}

/// The policy of one call (its temp dir named, not created), or `None` when its side is off.
fn call_policy(
    settings: &SandboxSettings,
    place: CallPlace<'_>,
    who: Who,
    cmd: CallCommand<'_>,
) -> Option<ralph_sandbox::Policy> {
    let side = match who {
        Who::Agent(_) => &settings.agents,
        Who::Gate => &settings.gates,
    };
    if side.enforced.mode == Mode::Off {
        return None;
    }
    let lookup = layout::Env::new(cmd.env, &settings.env);
    let tmpdir = tmpdir_path(&settings.tmp_root, place.tag);
    Some(layout::policy(
        side,
        place,
        who,
        &lookup,
        (cmd.program, cmd.args),
        tmpdir,
    ))
}

/// The name of call `call` (`agent`, `gate-<name>`) of iteration `n`: its temp dir's name.
pub fn call_tag(run_id: &str, n: u32, call: &str) -> String {
    format!("{run_id}-{n:04}-{call}")
}

/// The variables the call would get from its sandbox, with nothing created (`--dry-run`).
pub fn preview_env(
    settings: &SandboxSettings,
    place: CallPlace<'_>,
    who: Who,
    cmd: CallCommand<'_>,
) -> Vec<(String, String)> {
    call_policy(settings, place, who, cmd)
        .map(|policy| ralph_sandbox::env_for(&policy))
        .unwrap_or_default()
}

fn tmpdir_path(root: &Path, tag: &str) -> PathBuf {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    root.join(format!("ralph-sandbox-{uid}")).join(tag)
}

/// `<tmp_root>/ralph-sandbox-<uid>/<tag>`, private to the user (0700 on the parent).
fn make_tmpdir(root: &Path, tag: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = tmpdir_path(root, tag);
    let Some(parent) = dir.parent().map(Path::to_path_buf) else {
        return Err(std::io::Error::other(
            "no parent for the sandbox's temp dir",
        ));
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&parent) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Someone else's directory with our name (a shared /tmp) must not be used.
            let meta = std::fs::symlink_metadata(&parent)?;
            use std::os::unix::fs::MetadataExt;
            if !meta.is_dir() || meta.uid() != uid {
                return Err(std::io::Error::other(format!(
                    "{} is not a directory of this user",
                    parent.display()
                )));
            }
            std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o700))?;
        }
        Err(e) => return Err(e),
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}
