//! The mounts the agent sees, read from `/proc/self/mountinfo` in the parent: in the agent's
//! mount namespace each of them is remounted read-only, and only the writable roots are bound
//! back read-write over them. That is what makes `chmod`, `chown` and `utime` outside the
//! project fail too: Landlock does not cover them, a read-only mount does.

use std::path::{Path, PathBuf};

/// File systems left as they are: their files are not the user's data (and `/dev/null`, the
/// terminal and `/proc/self` must stay usable). Landlock still limits writes to them.
const SKIPPED: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "fusectl",
    "configfs",
    "hugetlbfs",
    "binfmt_misc",
    "autofs",
    "nsfs",
    "efivarfs",
    "selinuxfs",
    "rpc_pipefs",
];

/// One mount to remount read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub point: PathBuf,
    /// `MS_NOSUID | MS_NODEV | …` from its per-mount options: a user namespace must repeat
    /// them in a remount.
    pub locked: libc::c_ulong,
}

/// The mounts of this process that hold user data, outermost first; none under or at
/// `writable` roots (those are bound read-write and stay so).
pub fn user_data_mounts(writable: &[&Path]) -> Vec<Mount> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    parse(&text, writable)
}

pub(crate) fn parse(text: &str, writable: &[&Path]) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(point), Some(opts), Some(fstype)) =
            (fields.get(4), fields.get(5), fields.get(sep + 1))
        else {
            continue;
        };
        if SKIPPED.contains(fstype) {
            continue;
        }
        let point = PathBuf::from(unescape(point));
        if writable.iter().any(|w| point.starts_with(w)) {
            continue;
        }
        let mut locked = 0;
        for o in opts.split(',') {
            locked |= match o {
                "nosuid" => libc::MS_NOSUID,
                "nodev" => libc::MS_NODEV,
                "noexec" => libc::MS_NOEXEC,
                "noatime" => libc::MS_NOATIME,
                "nodiratime" => libc::MS_NODIRATIME,
                "relatime" => libc::MS_RELATIME,
                _ => 0,
            };
        }
        out.retain(|m: &Mount| m.point != point);
        out.push(Mount { point, locked });
    }
    out
}

/// mountinfo writes space, tab, newline and backslash as `\040`-style octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
28 27 0:25 / /mnt/my\\040disk ro,nosuid,nodev,relatime - tmpfs t ro
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw
40 27 0:40 / /work/proj/sub rw - ext4 /dev/vdb rw
";

    #[test]
    fn user_data_mounts_only_with_their_locked_flags() {
        let m = parse(INFO, &[Path::new("/work/proj")]);
        let points: Vec<_> = m.iter().map(|m| m.point.display().to_string()).collect();
        assert_eq!(points, ["/", "/mnt/my disk", "/dev/shm"]);
        assert_eq!(
            m[1].locked,
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_RELATIME
        );
    }
}
