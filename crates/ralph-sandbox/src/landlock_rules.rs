//! The policy as a Landlock ruleset, built in the parent. The child only calls
//! `landlock_restrict_self` on the returned fd.

use std::os::fd::OwnedFd;
use std::path::Path;

use landlock::{
    Access, AccessFs, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, Scope, ABI,
};

use crate::{Mode, Policy};

/// Device files every program writes (`> /dev/null`, the terminal).
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
];

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot build the Landlock ruleset: {0}")]
    Ruleset(#[from] landlock::RulesetError),
    #[error("cannot open {path} for a Landlock rule: {source}")]
    Path {
        path: String,
        source: landlock::PathFdError,
    },
    #[error("the kernel gave no Landlock ruleset")]
    NoFd,
}

/// The ruleset fd for `policy` under Landlock ABI `abi` (≥ 2, see
/// [`crate::probe::MIN_LANDLOCK_ABI`]).
pub fn build(policy: &Policy, abi: u8) -> Result<OwnedFd, RulesError> {
    let abi = ABI::from(i32::from(abi));
    // Device ioctls stay allowed: terminals need them, and a device the agent may open is one
    // it may already write.
    let handled = AccessFs::from_all(abi) & !AccessFs::IoctlDev;
    let read = AccessFs::from_read(abi) & handled;
    let file_rw = AccessFs::from_file(abi) & handled;
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(handled)?;
    // Signals to processes outside the sandbox (ralph itself, the user's shell) and abstract
    // UNIX sockets bound outside it (ABI 6).
    if abi >= ABI::V6 {
        ruleset = ruleset.scope(Scope::from_all(abi))?;
    }
    let mut rules: Vec<(&Path, BitFlags<AccessFs>)> = Vec::new();
    match policy.enforced.mode {
        Mode::Strict => rules.extend(policy.readable.iter().map(|p| (p.as_path(), read))),
        _ => rules.push((Path::new("/"), read)),
    }
    let dev = file_rw & !AccessFs::Execute;
    rules.extend(DEVICES.iter().map(|d| (Path::new(*d), dev)));
    rules.push((Path::new("/dev/pts"), dev));
    for p in std::iter::once(&policy.work_root)
        .chain(std::iter::once(&policy.tmpdir))
        .chain(&policy.writable)
    {
        rules.push((p.as_path(), handled));
    }
    let mut created = ruleset.create()?;
    for (path, access) in rules {
        let fd = match PathFd::new(path) {
            Ok(fd) => fd,
            // A path that does not exist grants nothing; the caller created those it needs.
            Err(_) if std::fs::symlink_metadata(path).is_err() => continue,
            Err(source) => {
                return Err(RulesError::Path {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let access = if is_dir(path) {
            access
        } else {
            access & file_rw
        };
        (&mut created).add_rule(PathBeneath::new(fd, access))?;
    }
    Option::<OwnedFd>::from(created).ok_or(RulesError::NoFd)
}

fn is_dir(path: &Path) -> bool {
    std::fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false)
}
