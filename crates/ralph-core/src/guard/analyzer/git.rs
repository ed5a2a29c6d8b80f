//! git subcommands that destroy work or history: force and mirror pushes, remote deletes,
//! `reset --hard`, `clean -fd`, checkouts and restores of the whole tree, ralph's refs.

use super::super::lexer::{Lexer, MAX_DEPTH};
use super::super::syntax::{words_text, Word, Q};
use super::super::{excerpt, Blocked};
use super::targets::{Cwd, GlobKind, Loc};
use super::{block, Analyzer};
use ralph_agents::shell_quote as sh_quote;

/// Built-in commands ralph checks: an alias of the same name is ignored by git, so it is not
/// expanded either.
const BUILTINS_CHECKED: &[&str] = &[
    "push",
    "reset",
    "clean",
    "checkout",
    "restore",
    "switch",
    "config",
    "update-ref",
    "symbolic-ref",
    "branch",
    "tag",
    "replace",
    "reflog",
    "status",
    "log",
    "diff",
    "add",
    "commit",
    "show",
    "fetch",
    "pull",
    "stash",
    "rebase",
    "merge",
];

/// A git long option given as any prefix git accepts (`--har` is `--hard`: git takes every
/// unambiguous abbreviation; an ambiguous one fails, so counting it too is harmless).
pub(super) fn long(t: &str, name: &str) -> bool {
    long_min(t, name, 1)
}

/// As [`long`], with at least `min` letters of the name given.
pub(super) fn long_min(t: &str, name: &str, min: usize) -> bool {
    t.strip_prefix("--")
        .map(|b| b.split('=').next().unwrap_or(""))
        .is_some_and(|b| b.len() >= min && name.starts_with(b))
}

/// A value-taking long option written without `=value` (so the value is the next word).
fn long_value(t: &str, name: &str, min: usize) -> bool {
    long_min(t, name, min) && !t.contains('=')
}

/// `alias.NAME=VALUE` from `-c` (`VALUE` known) or `alias.NAME=VAR` from `--config-env`
/// (unknown).
fn inline_alias(kv: &str, known: bool) -> Option<(String, Option<String>)> {
    let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
    let (section, name) = key.split_once('.')?;
    if !section.eq_ignore_ascii_case("alias") || name.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), known.then(|| value.to_string())))
}

impl Analyzer<'_> {
    pub(super) fn git(&self, words: &[Word], cwd: &Cwd, depth: usize) -> Option<Blocked> {
        if depth > MAX_DEPTH {
            return Some(self.nesting_limit(&words_text(words)));
        }
        let args = &words[1..];
        let mut i = 0;
        let mut cwd = cwd.clone();
        // `-c alias.x=…` and `--config-env alias.x=VAR` on this command line.
        let mut inline: Vec<(String, Option<String>)> = Vec::new();
        while let Some(a) = args.get(i) {
            let t = a.text.as_str();
            match t {
                "-C" => {
                    if let Some(dir) = args.get(i + 1) {
                        cwd = self.cd(std::slice::from_ref(dir), &cwd);
                    }
                    i += 2;
                }
                "-c" | "--config-env" => {
                    if let Some(kv) = args.get(i + 1) {
                        inline.extend(inline_alias(&kv.text, t == "-c"));
                    }
                    i += 2;
                }
                "--git-dir" | "--work-tree" | "--namespace" | "--super-prefix" | "--list-cmds"
                | "--attr-source" => i += 2,
                _ if t.starts_with("--config-env=") => {
                    inline.extend(inline_alias(&t["--config-env=".len()..], false));
                    i += 1;
                }
                _ if t.starts_with('-') => i += 1,
                _ => break,
            }
        }
        let sub = args.get(i)?.text.as_str();
        let rest = &args[i + 1..];
        // A git alias never shadows a built-in command: only other names are looked up.
        if !BUILTINS_CHECKED.contains(&sub) {
            if let Some(value) = self.git_alias(sub, &inline) {
                return self.git_alias_run(words, &words[..=i], sub, value, rest, &cwd, depth);
            }
        }
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
                .any(|a| long(&a.text, "hard"))
                .then_some("git-reset-hard"),
            "clean" => git_clean(rest),
            "checkout" => self.git_checkout(rest, &cwd),
            "restore" => self.git_restore(rest, &cwd),
            "switch" => rest
                .iter()
                .any(|a| {
                    long(&a.text, "force")
                        || long_min(&a.text, "discard-changes", 2)
                        || short_cluster(&a.text).is_some_and(|c| c.contains('f'))
                })
                .then_some("git-discard-changes"),
            "config" => return self.git_config(words, rest, &cwd, depth),
            _ => None,
        };
        rule.map(|r| block(r, words))
    }

    /// The value of the git alias `name`: from this command line, else from the repository's
    /// configuration. `Some(None)`: an alias whose value cannot be known (`--config-env`).
    fn git_alias(&self, name: &str, inline: &[(String, Option<String>)]) -> Option<Option<String>> {
        let name = name.to_ascii_lowercase();
        if let Some((_, v)) = inline.iter().rev().find(|(n, _)| *n == name) {
            return Some(v.clone());
        }
        self.guard
            .git_aliases()
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| Some(v.clone()))
    }

    /// Check what running the alias `name` (`value`, with `rest` appended) does. `prefix` is
    /// `git` and its global options.
    #[expect(
        clippy::too_many_arguments,
        reason = "the alias, where it came from and the check's context"
    )]
    fn git_alias_run(
        &self,
        words: &[Word],
        prefix: &[Word],
        name: &str,
        value: Option<String>,
        rest: &[Word],
        cwd: &Cwd,
        depth: usize,
    ) -> Option<Blocked> {
        let Some(value) = value else {
            return Some(Blocked {
                rule: "unresolved-program".to_string(),
                reason: format!(
                    "`{}` runs the git alias `{name}`, whose value comes from the environment \
                     and cannot be checked before it runs (unresolvable program)",
                    excerpt(&words_text(words))
                ),
            });
        };
        let found = if let Some(script) = value.strip_prefix('!') {
            // A shell alias runs from the top of the working tree, with the arguments appended.
            let mut script = script.to_string();
            for a in rest {
                script.push(' ');
                script.push_str(&sh_quote(&a.text));
            }
            self.check_source(&script, &mut Cwd::Abs(self.root.clone()), depth + 1)
        } else {
            let mut lx = Lexer::new(&value, depth + 1);
            let script = lx.script(false);
            let expansion: Vec<Word> = script
                .pipelines
                .first()
                .and_then(|p| p.first())
                .map(|c| c.words.clone())
                .unwrap_or_default();
            let mut full = prefix.to_vec();
            full.extend(expansion);
            full.extend_from_slice(rest);
            self.git(&full, cwd, depth + 1)
        };
        found.map(|b| Blocked {
            reason: format!(
                "`{}` runs the git alias `{name}` = `{}`: {}",
                excerpt(&words_text(words)),
                excerpt(&value),
                b.reason
            ),
            ..b
        })
    }

    /// `git config [set] alias.x VALUE`: defining an alias that would be blocked is blocked, so
    /// a later `git x` (in this command or the next) cannot hide it.
    fn git_config(
        &self,
        words: &[Word],
        rest: &[Word],
        cwd: &Cwd,
        depth: usize,
    ) -> Option<Blocked> {
        let mut operands = Vec::new();
        let mut i = 0;
        while let Some(a) = rest.get(i) {
            let t = a.text.as_str();
            i += 1;
            match t {
                "-f" | "--file" | "--blob" | "--type" | "--default" | "--comment" | "--value" => {
                    i += 1
                }
                "--get" | "--get-all" | "--get-regexp" | "--unset" | "--unset-all" | "-l"
                | "--list" | "--remove-section" | "--rename-section" | "-e" | "--edit" => {
                    return None
                }
                _ if t.starts_with('-') && t.len() > 1 => {}
                _ => operands.push(t),
            }
        }
        if operands.first() == Some(&"set") {
            operands.remove(0);
        }
        let (Some(key), Some(value)) = (operands.first(), operands.get(1)) else {
            return None;
        };
        let name = key
            .split_once('.')
            .filter(|(section, _)| section.eq_ignore_ascii_case("alias"))
            .map(|(_, name)| name)?;
        let git = &words[..1];
        let b = self.git_alias_run(
            &[git[0].clone(), Word::literal(name)],
            git,
            name,
            Some(value.to_string()),
            &[],
            cwd,
            depth,
        )?;
        Some(Blocked {
            reason: format!(
                "`{}` defines a git alias that would be blocked: {}",
                excerpt(&words_text(words)),
                b.reason
            ),
            ..b
        })
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
                "-f" => force = true,
                "-b" | "-B" => i += 1,
                _ if long(t, "force") => force = true,
                _ if long_value(t, "orphan", 3) || long_value(t, "conflict", 3) => i += 1,
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
                "-s" => i += 1,
                _ if long_min(t, "staged", 3) => staged = true,
                _ if long(t, "worktree") => worktree = true,
                _ if long_value(t, "source", 2) => i += 1,
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
            _ if long(t, "force") || long(t, "force-with-lease") => return Some("git-push-force"),
            _ if long(t, "mirror") => rule = rule.or(Some("git-push-mirror")),
            _ if long_min(t, "delete", 2) || long_min(t, "prune", 3) => {
                rule = rule.or(Some("git-push-delete"))
            }
            _ if ["repo", "receive-pack", "exec", "push-option"]
                .iter()
                .any(|o| long_value(t, o, 3)) =>
            {
                i += 1
            }
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
            "-e" => i += 1,
            _ if long(t, "force") => force = true,
            _ if long(t, "dry-run") => dry = true,
            _ if long_value(t, "exclude", 2) => i += 1,
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
