//! What a path word names once `~`, `$HOME`, `$PWD`, `..` and the tracked current directory
//! are applied, and which built-in rule deleting it would break.

use super::super::syntax::{Word, Q};
use super::{skip_opts, Analyzer};

/// An expansion that names the project root.
const TOPLEVEL: &str = "$(git rev-parse --show-toplevel)";

/// Top-level directories whose recursive deletion is as bad as deleting `/`.
const SYSTEM_DIRS: &[&str] = &[
    "bin",
    "boot",
    "dev",
    "etc",
    "home",
    "lib",
    "lib32",
    "lib64",
    "libx32",
    "media",
    "mnt",
    "opt",
    "proc",
    "root",
    "run",
    "sbin",
    "snap",
    "srv",
    "sys",
    "usr",
    "var",
    "nix",
    "Users",
    "System",
    "Library",
    "Applications",
    "private",
    "Volumes",
];

/// The current directory as far as ralph can tell.
#[derive(Debug, Clone)]
pub(super) enum Cwd {
    Abs(Vec<String>),
    Home(Vec<String>),
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Loc {
    Abs(Vec<String>),
    /// Relative to a home directory ralph does not know.
    Home(Vec<String>),
    /// Another user's home, or above a home.
    OtherHome,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GlobKind {
    None,
    /// The last component is `*` (everything in the directory).
    All,
    /// The last component is a glob starting with `.` (`.*`, `.??*`): hidden entries.
    Hidden,
    /// Another glob (`*.o`): a subset.
    Other,
}

#[derive(Debug, Clone)]
pub(super) struct Target {
    pub(super) loc: Loc,
    pub(super) glob: GlobKind,
    /// Written from `~` or `$HOME`.
    via_home: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Danger {
    Root,
    Home,
    Parent,
    Project,
    Git,
    Ralph,
}

impl Danger {
    pub(super) fn rm_rule(self) -> &'static str {
        match self {
            Danger::Root => "rm-rf-root",
            Danger::Home => "rm-rf-home",
            Danger::Parent => "rm-rf-parent",
            Danger::Project => "rm-rf-project",
            Danger::Git => "rm-rf-git",
            Danger::Ralph => "rm-rf-ralph",
        }
    }
}

impl Analyzer<'_> {
    /// Resolve a path word against the current directory.
    pub(super) fn resolve(&self, w: &Word, cwd: &Cwd) -> Target {
        let unknown = Target {
            loc: Loc::Unknown,
            glob: GlobKind::None,
            via_home: false,
        };
        let chars: Vec<(char, Q)> = w.chars().collect();
        let text = w.text.as_str();
        let exp_prefix = |p: &str| -> bool {
            text.starts_with(p)
                && chars.first().is_some_and(|(_, q)| *q == Q::Exp)
                && matches!(text[p.len()..].chars().next(), None | Some('/'))
        };
        let home_loc = || match &self.home {
            Some(h) => Loc::Abs(h.clone()),
            None => Loc::Home(Vec::new()),
        };
        let cwd_loc = || match cwd {
            Cwd::Abs(c) => Loc::Abs(c.clone()),
            Cwd::Home(c) => Loc::Home(c.clone()),
            Cwd::Unknown => Loc::Unknown,
        };
        let (base, skip) = if chars.first() == Some(&('~', Q::Bare)) {
            let end = text.find('/').unwrap_or(text.len());
            if end == 1 {
                (home_loc(), 1)
            } else if chars[1..text[..end].chars().count()]
                .iter()
                .all(|(c, q)| *q == Q::Bare && (c.is_alphanumeric() || "_-.".contains(*c)))
            {
                let user = &text[1..end];
                if self
                    .home
                    .as_ref()
                    .and_then(|h| h.last())
                    .map(String::as_str)
                    == Some(user)
                {
                    (home_loc(), end)
                } else {
                    (Loc::OtherHome, end)
                }
            } else {
                return unknown;
            }
        } else if exp_prefix("$HOME") {
            (home_loc(), "$HOME".len())
        } else if exp_prefix("${HOME}") {
            (home_loc(), "${HOME}".len())
        } else if exp_prefix("$PWD") {
            (cwd_loc(), "$PWD".len())
        } else if exp_prefix("${PWD}") {
            (cwd_loc(), "${PWD}".len())
        } else if exp_prefix("$(pwd)") {
            (cwd_loc(), "$(pwd)".len())
        } else if exp_prefix(TOPLEVEL) {
            (Loc::Abs(self.root.clone()), TOPLEVEL.len())
        } else if text.starts_with('/') {
            (Loc::Abs(Vec::new()), 0)
        } else {
            (cwd_loc(), 0)
        };
        let via_home = skip > 0 && (text.starts_with('~') || text.contains("HOME"));
        let rest: Vec<(char, Q)> = chars[text[..skip].chars().count()..].to_vec();
        if rest.iter().any(|(_, q)| *q == Q::Exp) {
            return unknown;
        }
        let mut comps: Vec<&[(char, Q)]> = rest.split(|(c, _)| *c == '/').collect();
        // `dir/*/` is `dir/*` (directories only).
        while comps.len() > 1 && comps.last().is_some_and(|c| c.is_empty()) {
            comps.pop();
        }
        let mut loc = base;
        let mut glob = GlobKind::None;
        let n = comps.len();
        for (i, comp) in comps.into_iter().enumerate() {
            let name: String = comp.iter().map(|(c, _)| *c).collect();
            let globby = comp
                .iter()
                .any(|(c, q)| *q == Q::Bare && matches!(c, '*' | '?' | '['));
            if globby {
                if i + 1 != n {
                    return unknown;
                }
                glob = if name.chars().all(|c| c == '*') {
                    GlobKind::All
                } else if name.starts_with('.') {
                    GlobKind::Hidden
                } else {
                    GlobKind::Other
                };
                break;
            }
            if name.is_empty() || name == "." {
                continue;
            }
            loc = match loc {
                Loc::Abs(mut c) => {
                    if name == ".." {
                        c.pop();
                    } else {
                        c.push(name);
                    }
                    Loc::Abs(c)
                }
                Loc::Home(mut c) => {
                    if name == ".." {
                        if c.pop().is_none() {
                            Loc::OtherHome
                        } else {
                            Loc::Home(c)
                        }
                    } else {
                        c.push(name);
                        Loc::Home(c)
                    }
                }
                other => other,
            };
        }
        Target {
            loc,
            glob,
            via_home,
        }
    }

    /// What deleting (or recursively changing) `t` would hit.
    pub(super) fn danger(&self, t: &Target) -> Option<Danger> {
        if t.glob == GlobKind::Other {
            return None;
        }
        match &t.loc {
            Loc::Unknown => None,
            Loc::OtherHome => Some(Danger::Home),
            Loc::Home(c) => c.is_empty().then_some(Danger::Home),
            Loc::Abs(c) => {
                let root = &self.root;
                let is_home = self.home.as_ref() == Some(c);
                if c.is_empty() {
                    Some(Danger::Root)
                } else if is_home && t.via_home {
                    Some(Danger::Home)
                } else if c == root {
                    Some(if t.glob == GlobKind::Hidden {
                        Danger::Git
                    } else {
                        Danger::Project
                    })
                } else if root.starts_with(c) {
                    Some(Danger::Parent)
                } else if is_home {
                    Some(Danger::Home)
                } else if c.len() == 1 && SYSTEM_DIRS.contains(&c[0].as_str()) {
                    Some(Danger::Root)
                } else if c.len() > root.len() && c.starts_with(root) {
                    match c[root.len()].as_str() {
                        ".git" => Some(Danger::Git),
                        ".ralph" => Some(Danger::Ralph),
                        _ => None,
                    }
                } else {
                    None
                }
            }
        }
    }

    pub(super) fn cd(&self, args: &[Word], cwd: &Cwd) -> Cwd {
        let i = skip_opts(args, &[]);
        let Some(dir) = args.get(i) else {
            return match &self.home {
                Some(h) => Cwd::Abs(h.clone()),
                None => Cwd::Home(Vec::new()),
            };
        };
        if dir.text == "-" {
            return Cwd::Unknown;
        }
        let t = self.resolve(dir, cwd);
        if t.glob != GlobKind::None {
            return Cwd::Unknown;
        }
        match t.loc {
            Loc::Abs(c) => Cwd::Abs(c),
            Loc::Home(c) => Cwd::Home(c),
            Loc::OtherHome | Loc::Unknown => Cwd::Unknown,
        }
    }
}
