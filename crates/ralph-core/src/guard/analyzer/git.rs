//! git subcommands that destroy work or history: force and mirror pushes, remote deletes,
//! `reset --hard`, `clean -fd`, checkouts and restores of the whole tree, ralph's refs.

use super::super::syntax::{Word, Q};
use super::super::Blocked;
use super::targets::{Cwd, GlobKind, Loc};
use super::{block, Analyzer};

impl Analyzer<'_> {
    pub(super) fn git(&self, words: &[Word], cwd: &Cwd) -> Option<Blocked> {
        let args = &words[1..];
        let mut i = 0;
        let mut cwd = cwd.clone();
        while let Some(a) = args.get(i) {
            let t = a.text.as_str();
            match t {
                "-C" => {
                    if let Some(dir) = args.get(i + 1) {
                        cwd = self.cd(std::slice::from_ref(dir), &cwd);
                    }
                    i += 2;
                }
                "-c" | "--git-dir" | "--work-tree" | "--namespace" | "--super-prefix"
                | "--config-env" | "--list-cmds" | "--attr-source" => i += 2,
                _ if t.starts_with('-') => i += 1,
                _ => break,
            }
        }
        let sub = args.get(i)?.text.as_str();
        let rest = &args[i + 1..];
        if matches!(
            sub,
            "update-ref" | "symbolic-ref" | "branch" | "tag" | "push" | "replace" | "reflog"
        ) && rest.iter().any(|a| a.text.contains("refs/ralph"))
        {
            return Some(block("git-ralph-refs", words));
        }
        let rule = match sub {
            "push" => git_push(rest),
            "reset" => rest
                .iter()
                .any(|a| a.text == "--hard")
                .then_some("git-reset-hard"),
            "clean" => git_clean(rest),
            "checkout" => self.git_checkout(rest, &cwd),
            "restore" => self.git_restore(rest, &cwd),
            "switch" => rest
                .iter()
                .any(|a| {
                    matches!(a.text.as_str(), "-f" | "--force" | "--discard-changes")
                        || short_cluster(&a.text).is_some_and(|c| c.contains('f'))
                })
                .then_some("git-discard-changes"),
            _ => None,
        };
        rule.map(|r| block(r, words))
    }

    /// A pathspec naming the whole working tree.
    fn whole_tree(&self, w: &Word, cwd: &Cwd) -> bool {
        if matches!(
            w.text.as_str(),
            ":/" | ":/*" | ":/." | ":(top)" | ":(top)*" | ":(top)." | ":*"
        ) {
            return true;
        }
        // Git expands globs in pathspecs itself: a quoted `*` is still a glob.
        let mut unquoted = w.clone();
        for q in &mut unquoted.q {
            if *q == Q::Quoted {
                *q = Q::Bare;
            }
        }
        let t = self.resolve(&unquoted, cwd);
        matches!(&t.loc, Loc::Abs(c) if *c == self.root)
            && matches!(t.glob, GlobKind::None | GlobKind::All)
    }

    fn git_checkout(&self, args: &[Word], cwd: &Cwd) -> Option<&'static str> {
        let mut force = false;
        let mut paths = Vec::new();
        let mut opts = true;
        let mut i = 0;
        while let Some(a) = args.get(i) {
            let t = a.text.as_str();
            i += 1;
            if !opts {
                paths.push(a);
                continue;
            }
            match t {
                "--" => opts = false,
                "-f" | "--force" => force = true,
                "-b" | "-B" | "--orphan" | "--conflict" => i += 1,
                _ if t.starts_with("--") => {}
                _ => match short_cluster(t) {
                    Some(cluster) => {
                        force |= cluster.contains('f');
                        if cluster.ends_with(['b', 'B']) {
                            i += 1;
                        }
                    }
                    None => paths.push(a),
                },
            }
        }
        if force || paths.iter().any(|p| self.whole_tree(p, cwd)) {
            Some("git-discard-changes")
        } else {
            None
        }
    }

    fn git_restore(&self, args: &[Word], cwd: &Cwd) -> Option<&'static str> {
        let (mut staged, mut worktree) = (false, false);
        let mut paths = Vec::new();
        let mut opts = true;
        let mut i = 0;
        while let Some(a) = args.get(i) {
            let t = a.text.as_str();
            i += 1;
            if !opts {
                paths.push(a);
                continue;
            }
            match t {
                "--" => opts = false,
                "--staged" => staged = true,
                "--worktree" => worktree = true,
                "-s" | "--source" => i += 1,
                _ if t.starts_with("--") => {}
                _ => match short_cluster(t) {
                    Some(cluster) => {
                        staged |= cluster.contains('S');
                        worktree |= cluster.contains('W');
                        if cluster.ends_with('s') {
                            i += 1;
                        }
                    }
                    None => paths.push(a),
                },
            }
        }
        let touches_worktree = worktree || !staged;
        (touches_worktree && paths.iter().any(|p| self.whole_tree(p, cwd)))
            .then_some("git-discard-changes")
    }
}

/// The letters of a single-dash option cluster (`-fdx` → `fdx`).
fn short_cluster(t: &str) -> Option<&str> {
    t.strip_prefix('-')
        .filter(|c| !c.is_empty() && !c.starts_with('-'))
}

fn git_push(args: &[Word]) -> Option<&'static str> {
    let mut positional = Vec::new();
    let mut opts = true;
    let mut rule = None;
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        i += 1;
        if !opts {
            positional.push(t);
            continue;
        }
        match t {
            "--" => opts = false,
            "--force" | "--force-with-lease" => return Some("git-push-force"),
            _ if t.starts_with("--force-with-lease=") => return Some("git-push-force"),
            "--mirror" => rule = rule.or(Some("git-push-mirror")),
            "--delete" | "--prune" => rule = rule.or(Some("git-push-delete")),
            "--repo" | "--receive-pack" | "--exec" | "--push-option" => i += 1,
            _ if t.starts_with("--") => {}
            _ => match short_cluster(t) {
                Some(cluster) => {
                    for c in cluster.chars() {
                        match c {
                            'f' => return Some("git-push-force"),
                            'd' => rule = rule.or(Some("git-push-delete")),
                            'o' => {
                                if cluster.ends_with('o') {
                                    i += 1;
                                }
                                break;
                            }
                            _ => {}
                        }
                    }
                }
                None => positional.push(t),
            },
        }
    }
    if positional.iter().any(|p| p.starts_with('+')) {
        return Some("git-push-force");
    }
    if positional
        .iter()
        .skip(1)
        .any(|p| p.starts_with(':') && p.len() > 1)
    {
        return Some("git-push-delete");
    }
    rule
}

fn git_clean(args: &[Word]) -> Option<&'static str> {
    let (mut force, mut dirs, mut ignored, mut dry) = (false, false, false, false);
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        i += 1;
        match t {
            "--" => break,
            "--force" => force = true,
            "--dry-run" => dry = true,
            "-e" | "--exclude" => i += 1,
            _ if t.starts_with("--") => {}
            _ => {
                if let Some(cluster) = short_cluster(t) {
                    for c in cluster.chars() {
                        match c {
                            'f' => force = true,
                            'd' => dirs = true,
                            'x' | 'X' => ignored = true,
                            'n' => dry = true,
                            'e' => {
                                if cluster.ends_with('e') {
                                    i += 1;
                                }
                                break;
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    (force && (dirs || ignored) && !dry).then_some("git-clean-force")
}
