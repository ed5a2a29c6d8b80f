//! Deletions and recursive permission changes: `rm -r`, `find -delete`/`-exec rm`,
//! `chmod`/`chown`/`chgrp -R`.

use super::super::syntax::{prog_name, Cmd, Word, Q};
use super::super::Blocked;
use super::shells::Upstream;
use super::targets::{Cwd, Danger};
use super::{block, Analyzer};

/// `find` tests (with a value) that select by type, age, size or owner, not by name.
const NON_SELECTING: &[&str] = &[
    "-type", "-xtype", "-mtime", "-mmin", "-atime", "-amin", "-ctime", "-cmin", "-size", "-newer",
    "-user", "-group", "-uid", "-gid", "-perm", "-links", "-fstype",
];

/// `-rf` (one cluster with both: `-fr`, `-Rf`, `-rfv`) or `--recursive --force`, before `--`:
/// what `rm` reads as a forced recursive delete. Separate `-r … -f` is left out: other
/// programs take those (`pip install -r req.txt -f url`).
pub(super) fn recursive_force(args: &[Word]) -> bool {
    let (mut r, mut f) = (false, false);
    for a in args {
        let t = a.text.as_str();
        if t == "--" {
            break;
        }
        if let Some(long) = t.strip_prefix("--") {
            r |= long == "recursive";
            f |= long == "force";
        } else if let Some(c) = t.strip_prefix('-') {
            if c.contains(['r', 'R']) && c.contains('f') {
                return true;
            }
        }
    }
    r && f
}

impl Analyzer<'_> {
    pub(super) fn rm(&self, words: &[Word], cwd: &Cwd) -> Option<Blocked> {
        let mut recursive = false;
        let mut targets = Vec::new();
        let mut opts = true;
        for a in &words[1..] {
            let t = a.text.as_str();
            if opts && t == "--" {
                opts = false;
            } else if opts && t.starts_with("--") {
                recursive |= t == "--recursive";
            } else if opts && t.starts_with('-') && t.len() > 1 {
                recursive |= t[1..].contains(['r', 'R']);
            } else {
                targets.push(a);
            }
        }
        if !recursive {
            return None;
        }
        targets.into_iter().find_map(|t| {
            self.danger(&self.resolve(t, cwd))
                .map(|d| block(d.rm_rule(), words))
        })
    }

    pub(super) fn chmod(&self, words: &[Word], cwd: &Cwd) -> Option<Blocked> {
        let args = &words[1..];
        let recursive = args.iter().any(|a| {
            a.text == "--recursive"
                || (a.text.starts_with('-') && !a.text.starts_with("--") && a.text.contains('R'))
        });
        if !recursive {
            return None;
        }
        let reference = args.iter().any(|a| a.text.starts_with("--reference"));
        let operands = args.iter().filter(|a| !a.text.starts_with('-'));
        operands.skip(if reference { 0 } else { 1 }).find_map(|t| {
            match self.danger(&self.resolve(t, cwd)) {
                Some(Danger::Root | Danger::Home | Danger::Parent) => {
                    Some(block("chmod-recursive-root", words))
                }
                _ => None,
            }
        })
    }

    pub(super) fn find(&self, words: &[Word], cwd: &Cwd, depth: usize) -> Option<Blocked> {
        let args = &words[1..];
        let mut i = 0;
        // Options before the start points.
        while let Some(a) = args.get(i) {
            match a.text.as_str() {
                "-H" | "-L" | "-P" => i += 1,
                "-D" => i += 2,
                t if t.starts_with("-O") => i += 1,
                _ => break,
            }
        }
        let mut starts = Vec::new();
        while let Some(a) = args.get(i) {
            if a.text.starts_with('-') || a.text == "(" || a.text == "!" {
                break;
            }
            starts.push(a);
            i += 1;
        }
        let mut deletes = false;
        let mut filtered = false;
        while let Some(a) = args.get(i) {
            let t = a.text.as_str();
            i += 1;
            match t {
                "-delete" => deletes = true,
                "-exec" | "-execdir" | "-ok" | "-okdir" => {
                    let start = i;
                    while args.get(i).is_some_and(|a| a.text != ";" && a.text != "+") {
                        i += 1;
                    }
                    let inner = args.get(start..i).unwrap_or(&[]);
                    i += 1;
                    if let Some(first) = inner.first() {
                        if matches!(prog_name(first).as_str(), "rm" | "shred" | "unlink") {
                            deletes = true;
                        }
                        let sub = Cmd {
                            words: inner.to_vec(),
                            ..Cmd::default()
                        };
                        found!(self.check_cmd(
                            &sub,
                            &mut cwd.clone(),
                            depth + 1,
                            &Upstream::default()
                        ));
                    }
                }
                "-depth"
                | "-d"
                | "-xdev"
                | "-mount"
                | "-print"
                | "-print0"
                | "-noleaf"
                | "-daystart"
                | "-follow"
                | "-nowarn"
                | "-warn"
                | "-ignore_readdir_race"
                | "-noignore_readdir_race" => {}
                "-mindepth" | "-maxdepth" => i += 1,
                // Tests of type, age, size or owner do not spare `.git`: `find . -type f
                // -delete` deletes every file in the repository too.
                "-readable" | "-writable" | "-executable" | "-nouser" | "-nogroup" => {}
                t if NON_SELECTING.contains(&t) => i += 1,
                t if t.starts_with('-') || t == "(" || t == "!" || t == "-o" => filtered = true,
                _ => {}
            }
        }
        if !deletes || filtered {
            return None;
        }
        let default_start = Word {
            text: ".".to_string(),
            q: vec![Q::Bare],
            ..Word::default()
        };
        let starts = if starts.is_empty() {
            vec![&default_start]
        } else {
            starts
        };
        starts
            .into_iter()
            .find_map(|s| self.danger(&self.resolve(s, cwd)))
            .map(|d| block(d.rm_rule(), words))
    }
}
