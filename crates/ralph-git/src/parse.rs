//! Parsers for git's output. Kept free of process handling so they can be unit-tested on
//! literal bytes.

use crate::{DiffStat, RefCommit};

/// `git version 2.47.3` → `2.47.3`; also accepts vendor suffixes such as
/// `2.39.2 (Apple Git-143)` or `2.45.1.windows.1`.
pub(crate) fn version(stdout: &str) -> Option<String> {
    let token = stdout
        .trim()
        .strip_prefix("git version ")?
        .split_whitespace()
        .next()?;
    major_minor(token)?;
    Some(token.to_owned())
}

/// The (major, minor) pair of a version string from [`version`].
pub(crate) fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// An object id printed by git (SHA-1 or SHA-256 repositories), without the trailing newline.
pub(crate) fn object_id(stdout: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(stdout).ok()?.trim_end_matches('\n');
    let valid = matches!(text.len(), 40 | 64)
        && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then(|| text.to_owned())
}

/// `git diff-tree -r --numstat -z -M` output. A normal record is `ADD\tDEL\tPATH\0`; a rename
/// or copy is `ADD\tDEL\t\0OLD\0NEW\0`. Binary files print `-` for both counts.
pub(crate) fn numstat(stdout: &[u8]) -> Option<DiffStat> {
    let mut stat = DiffStat::default();
    // Every field is NUL-terminated; drop the last terminator so no field is empty.
    let Some(body) = stdout.strip_suffix(b"\0") else {
        return stdout.is_empty().then_some(stat);
    };
    let mut fields = body.split(|&b| b == 0);
    while let Some(record) = fields.next() {
        let mut cols = record.splitn(3, |&b| b == b'\t');
        let added = count(cols.next()?)?;
        let deleted = count(cols.next()?)?;
        let path = cols.next()?;
        let path = if path.is_empty() {
            let _old = fields.next()?;
            fields.next()?
        } else {
            path
        };
        if path.is_empty() {
            return None;
        }
        stat.files_changed += 1;
        stat.insertions += added;
        stat.deletions += deleted;
        stat.paths.push(String::from_utf8_lossy(path).into_owned());
    }
    Some(stat)
}

fn count(field: &[u8]) -> Option<u64> {
    if field == b"-" {
        return Some(0);
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// `for-each-ref --format=%(objecttype)%00%(refname)%00%(objectname)%00%(tree)%00\
/// %(committerdate:unix)%00%(contents:subject)`: one line per ref; refs that are not commits
/// (no tree, no committer) are skipped.
pub(crate) fn ref_commits(stdout: &[u8]) -> Option<Vec<RefCommit>> {
    let mut out = Vec::new();
    for line in stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let text = String::from_utf8_lossy(line);
        let mut fields = text.splitn(6, '\0');
        let kind = fields.next()?;
        let refname = fields.next()?;
        let commit = fields.next()?;
        let tree = fields.next()?;
        let time = fields.next()?;
        let subject = fields.next()?;
        if kind != "commit" {
            continue;
        }
        out.push(RefCommit {
            refname: refname.to_owned(),
            commit: object_id(commit.as_bytes())?,
            tree: object_id(tree.as_bytes())?,
            time: time.parse().ok()?,
            subject: subject.to_owned(),
        });
    }
    Some(out)
}

/// One record of `git diff-tree -r -z --no-renames` raw output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawChange {
    /// Octal mode on each side; `0` where the path is absent.
    pub old_mode: u32,
    pub new_mode: u32,
    /// `A`, `D`, `M` or `T` (type change).
    pub status: u8,
    pub path: Vec<u8>,
}

/// `:OLDMODE NEWMODE OLDOID NEWOID STATUS\0PATH\0`, repeated. Renames and copies (which carry
/// two paths) cannot occur with `--no-renames` and are refused.
pub(crate) fn raw_diff(stdout: &[u8]) -> Option<Vec<RawChange>> {
    let mut out = Vec::new();
    let Some(body) = stdout.strip_suffix(b"\0") else {
        return stdout.is_empty().then_some(out);
    };
    let mut fields = body.split(|&b| b == 0);
    while let Some(meta) = fields.next() {
        let meta = std::str::from_utf8(meta.strip_prefix(b":")?).ok()?;
        let mut cols = meta.split(' ');
        let old_mode = u32::from_str_radix(cols.next()?, 8).ok()?;
        let new_mode = u32::from_str_radix(cols.next()?, 8).ok()?;
        let _old_oid = cols.next()?;
        let _new_oid = cols.next()?;
        let status = match cols.next()?.as_bytes() {
            [s @ (b'A' | b'D' | b'M' | b'T')] => *s,
            _ => return None,
        };
        if cols.next().is_some() {
            return None;
        }
        let path = fields.next()?;
        if path.is_empty() {
            return None;
        }
        out.push(RawChange {
            old_mode,
            new_mode,
            status,
            path: path.to_vec(),
        });
    }
    Some(out)
}

/// Output of `rev-parse --is-inside-work-tree --show-toplevel --git-path index --git-dir
/// --git-common-dir`.
pub(crate) enum RevParse<'a> {
    /// A bare repository, or a directory inside `.git`.
    NotWorkTree,
    WorkTree {
        toplevel: &'a [u8],
        index: &'a [u8],
        git_dir: &'a [u8],
        common_dir: &'a [u8],
        /// `sha1` or `sha256`; `None` when git was too old to be asked.
        format: Option<&'a [u8]>,
    },
}

pub(crate) fn discover(stdout: &[u8]) -> Option<RevParse<'_>> {
    let body = stdout.strip_suffix(b"\n").unwrap_or(stdout);
    let mut lines = body.split(|&b| b == b'\n');
    match lines.next()? {
        b"false" => Some(RevParse::NotWorkTree),
        b"true" => {
            let toplevel = lines.next()?;
            let index = lines.next()?;
            let git_dir = lines.next()?;
            let common_dir = lines.next()?;
            // Only asked of git 2.29 and newer.
            let format = lines.next();
            // A newline inside the path would shift the lines; refuse rather than guess.
            let empty = [toplevel, index, git_dir, common_dir]
                .iter()
                .any(|p| p.is_empty());
            let known = format.is_none_or(|f| f == b"sha1" || f == b"sha256");
            if lines.next().is_some() || empty || !known {
                return None;
            }
            Some(RevParse::WorkTree {
                toplevel,
                index,
                git_dir,
                common_dir,
                format,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(version("git version 2.47.3\n").as_deref(), Some("2.47.3"));
        assert_eq!(
            version("git version 2.39.2 (Apple Git-143)\n").as_deref(),
            Some("2.39.2")
        );
        assert_eq!(
            version("git version 2.45.1.windows.1").as_deref(),
            Some("2.45.1.windows.1")
        );
        assert_eq!(version("hub version 1"), None);
        assert_eq!(version("git version x.y"), None);
        assert_eq!(major_minor("2.25.0"), Some((2, 25)));
        assert_eq!(major_minor("2.9"), Some((2, 9)));
    }

    #[test]
    fn parses_object_ids() {
        let sha1 = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            object_id(format!("{sha1}\n").as_bytes()).as_deref(),
            Some(sha1)
        );
        let sha256 = "a".repeat(64);
        assert_eq!(object_id(sha256.as_bytes()), Some(sha256));
        assert_eq!(object_id(b"fatal: nope\n"), None);
        assert_eq!(object_id(b"0123456789ABCDEF0123456789abcdef01234567"), None);
    }

    #[test]
    fn parses_numstat_with_renames_binaries_and_odd_names() {
        let out = b"3\t1\tsrc/a.rs\0-\t-\timg.png\0\
0\t0\t\0old name.txt\0new\nname.txt\0\
0\t4\tgone.txt\0";
        let stat = numstat(out).unwrap();
        assert_eq!(stat.files_changed, 4);
        assert_eq!(stat.insertions, 3);
        assert_eq!(stat.deletions, 5);
        assert_eq!(
            stat.paths,
            ["src/a.rs", "img.png", "new\nname.txt", "gone.txt"]
        );
        assert_eq!(numstat(b"").unwrap(), DiffStat::default());
        assert!(numstat(b"x\t1\tp\0").is_none());
        assert!(numstat(b"1\t1\t\0only-old\0").is_none());
    }

    #[test]
    fn parses_ref_commits() {
        let c = "1".repeat(40);
        let t = "2".repeat(40);
        let text = format!(
            "commit\0refs/ralph/checkpoints/r/0001\0{c}\0{t}\01700000000\0ralph checkpoint: run r iteration 1\n\
             tag\0refs/ralph/x\0{c}\0\0\0\n\
             commit\0refs/ralph/checkpoints/r/0002\0{c}\0{t}\01700000001\0\n"
        );
        let refs = ref_commits(text.as_bytes()).unwrap();
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0].refname, "refs/ralph/checkpoints/r/0001");
        assert_eq!(refs[0].commit, c);
        assert_eq!(refs[0].tree, t);
        assert_eq!(refs[0].time, 1_700_000_000);
        assert_eq!(refs[0].subject, "ralph checkpoint: run r iteration 1");
        assert_eq!(refs[1].subject, "");
        assert!(ref_commits(b"").unwrap().is_empty());
        assert!(ref_commits(b"commit\0refs/x\0nope\0\0\0\n").is_none());
    }

    #[test]
    fn parses_raw_diffs() {
        let z = "0".repeat(40);
        let a = "a".repeat(40);
        let out = format!(
            ":000000 100644 {z} {a} A\0new file.txt\0\
             :100755 000000 {a} {z} D\0gone\nline\0\
             :100644 100755 {a} {a} M\0mode.sh\0\
             :100644 120000 {a} {a} T\0link\0"
        );
        let changes = raw_diff(out.as_bytes()).unwrap();
        assert_eq!(
            changes,
            [
                RawChange {
                    old_mode: 0,
                    new_mode: 0o100644,
                    status: b'A',
                    path: b"new file.txt".to_vec()
                },
                RawChange {
                    old_mode: 0o100755,
                    new_mode: 0,
                    status: b'D',
                    path: b"gone\nline".to_vec()
                },
                RawChange {
                    old_mode: 0o100644,
                    new_mode: 0o100755,
                    status: b'M',
                    path: b"mode.sh".to_vec()
                },
                RawChange {
                    old_mode: 0o100644,
                    new_mode: 0o120000,
                    status: b'T',
                    path: b"link".to_vec()
                },
            ]
        );
        assert_eq!(raw_diff(b"").unwrap(), []);
        let rename = format!(":100644 100644 {a} {a} R100\0old\0new\0");
        assert!(raw_diff(rename.as_bytes()).is_none());
        assert!(raw_diff(b":100644 100644 x y M\0").is_none());
    }

    #[test]
    fn parses_discover_output() {
        match discover(b"true\n/repo\n.git/index\n/repo/.git\n.git\n") {
            Some(RevParse::WorkTree {
                toplevel,
                index,
                git_dir,
                common_dir,
                format: None,
            }) => {
                assert_eq!(toplevel, b"/repo");
                assert_eq!(index, b".git/index");
                assert_eq!(git_dir, b"/repo/.git");
                assert_eq!(common_dir, b".git");
            }
            _ => panic!("expected a work tree"),
        }
        assert!(matches!(discover(b"false\n"), Some(RevParse::NotWorkTree)));
        assert!(discover(b"true\n/re\npo\n.git/index\n/repo/.git\n.git\n").is_none());
        assert!(discover(b"true\n/repo\n.git/index\n").is_none());
        assert!(discover(b"true\n/repo\n.git/index\n\n.git\n").is_none());
        assert!(discover(b"").is_none());
        assert!(matches!(
            discover(b"true\n/repo\n.git/index\n/repo/.git\n.git\nsha256\n"),
            Some(RevParse::WorkTree {
                format: Some(b"sha256"),
                ..
            })
        ));
    }
}
