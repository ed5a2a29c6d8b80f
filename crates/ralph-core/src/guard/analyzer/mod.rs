//! The built-in command rules applied to a lexed command: walks scripts, pipelines and
//! simple commands (substitutions first), tracks the current directory, and dispatches each
//! command by the program it runs once wrappers are stripped. What it knows about each
//! program lives in the submodules: [`unwrap`] (prefix commands), [`shells`] (scripts run by
//! shells and interpreters, and downloads fed to them), [`targets`] (what a path word names and
//! how dangerous deleting it is), [`rm`] (deletion and recursive permission changes) and
//! [`git`].

use std::cell::RefCell;

use super::commands::CommandGuard;
use super::lexer::{is_fork_bomb, Lexer, MAX_DEPTH};
use super::paths::{protected, PathGuard};
use super::rules::description;
use super::syntax::{prog_name, words_text, Cmd, RedirOp, Script, Stdin, Word, Q};
use super::{excerpt, Blocked};

use shells::{is_interpreter, is_stdin_path, Upstream, SHELLS};
use targets::{Cwd, GlobKind, Loc};
use unwrap::Inv;

mod expand;
mod git;
mod kill;
mod rm;
mod shells;
mod targets;
mod unwrap;

/// One check in progress: the rules, and the project root and home directory as path components.
pub(super) struct Analyzer<'g> {
    pub(super) guard: &'g CommandGuard,
    pub(super) paths: Option<&'g PathGuard>,
    pub(super) root: Vec<String>,
    pub(super) home: Option<Vec<String>>,
    /// Variables and downloads seen in the command so far ([`expand`]).
    pub(super) known: RefCell<expand::Known>,
}

const PRIVILEGE: &[&str] = &["sudo", "doas", "su", "pkexec", "run0"];

fn is_mkfs(prog: &str) -> bool {
    prog == "mkfs"
        || prog.starts_with("mkfs.")
        || matches!(prog, "mke2fs" | "mkswap" | "wipefs" | "mkdosfs" | "mkntfs")
}

/// Devices that are fine to write to.
fn is_safe_device(path: &str) -> bool {
    let Some(dev) = path.strip_prefix("/dev/") else {
        return true;
    };
    matches!(
        dev,
        "null"
            | "zero"
            | "full"
            | "random"
            | "urandom"
            | "stdin"
            | "stdout"
            | "stderr"
            | "tty"
            | "console"
            | "ptmx"
    ) || ["fd/", "pts/", "shm/", "tcp/", "udp/", "mqueue/"]
        .iter()
        .any(|p| dev.starts_with(p))
}

/// The index of the first operand: options (`-x`, `--long`, and those in `with_value` together
/// with their value) skipped; after `--` the next word.
fn skip_opts(args: &[Word], with_value: &[&str]) -> usize {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        if t == "--" {
            return i + 1;
        }
        if t.starts_with('-') && t.len() > 1 {
            i += if with_value.contains(&t) { 2 } else { 1 };
        } else {
            return i;
        }
    }
    i
}

/// Whether the program a word names is only known when it runs: its base name comes from an
/// expansion (`$G`, `$(…)`); `$SHELL` is taken for a shell, `$DIR/git` is git.
fn unknown_program(w: &Word) -> bool {
    if matches!(w.text.as_str(), "$SHELL" | "${SHELL}") {
        return false;
    }
    let chars: Vec<char> = w.text.chars().collect();
    let last_slash = chars.iter().rposition(|c| *c == '/').map_or(0, |i| i + 1);
    w.q.get(last_slash..).is_some_and(|q| q.contains(&Q::Exp))
}

fn block(rule: &str, words: &[Word]) -> Blocked {
    Blocked {
        rule: rule.to_string(),
        reason: format!("`{}` {}", excerpt(&words_text(words)), description(rule)),
    }
}

impl Analyzer<'_> {
    pub(super) fn check_command(&self, command: &str) -> Option<Blocked> {
        let mut cwd = Cwd::Abs(self.root.clone());
        // Files downloaded by earlier commands of this guard (`curl -o x.sh …` in one tool
        // call, `sh x.sh` in the next) are remembered across checks.
        let remembered = self.guard.downloads();
        self.known.borrow_mut().downloads.extend(remembered);
        let found = self.check_source(command, &mut cwd, 0);
        self.guard
            .remember_downloads(&self.known.borrow().downloads);
        found
    }

    fn nesting_limit(&self, text: &str) -> Blocked {
        Blocked {
            rule: "nesting-limit".to_string(),
            reason: format!("`{}` {}", excerpt(text), description("nesting-limit")),
        }
    }

    /// Check a script given as text.
    fn check_source(&self, text: &str, cwd: &mut Cwd, depth: usize) -> Option<Blocked> {
        if depth > MAX_DEPTH {
            return Some(self.nesting_limit(text));
        }
        found!(self.guard.user_regex_raw(text));
        let mut lx = Lexer::new(text, depth);
        let script = lx.script(false);
        if lx.too_deep {
            return Some(self.nesting_limit(text));
        }
        if is_fork_bomb(&lx.skel) {
            return Some(Blocked {
                rule: "fork-bomb".to_string(),
                reason: format!("`{}` {}", excerpt(text), description("fork-bomb")),
            });
        }
        self.learn(&script, depth);
        self.check_script(&script, cwd, depth)
    }

    fn check_script(&self, script: &Script, cwd: &mut Cwd, depth: usize) -> Option<Blocked> {
        if depth > MAX_DEPTH {
            return Some(self.nesting_limit(""));
        }
        for pipeline in &script.pipelines {
            let mut up = Upstream::default();
            let single = pipeline.len() == 1;
            for cmd in pipeline {
                if single {
                    found!(self.check_cmd(cmd, cwd, depth, &up));
                } else {
                    // Each part of a pipeline runs in a subshell: a `cd` there does not last.
                    found!(self.check_cmd(cmd, &mut cwd.clone(), depth, &up));
                }
                up = Upstream {
                    download: up.download || self.cmd_downloads(cmd, depth),
                    text: self.literal_output(cmd),
                    items: self.output_items(cmd, cwd),
                    ralph_pids: self.lists_ralph_pids(cmd),
                    piped: true,
                };
            }
        }
        None
    }

    fn check_cmd(&self, cmd: &Cmd, cwd: &mut Cwd, depth: usize, up: &Upstream) -> Option<Blocked> {
        if depth > MAX_DEPTH {
            return Some(self.nesting_limit(&words_text(&cmd.words)));
        }
        // Substitutions run first, in a subshell.
        for w in cmd.all_words() {
            for sub in &w.subs {
                found!(self.check_script(&sub.script, &mut cwd.clone(), depth + 1));
            }
        }
        for s in &cmd.stdin {
            if let Stdin::Heredoc { body, expand: true } = s {
                found!(self.check_expansions(body, cwd, depth));
            }
        }
        for r in &cmd.redirs {
            if r.op == RedirOp::Out {
                found!(self.check_write(&r.target, cwd, &cmd.words));
            }
        }
        // Each value the words may have once known variables and literal substitutions are
        // in place (`G=git; $G push -f` is `git push -f`).
        let expanded = self.expand_words(&cmd.words, depth).alternatives;
        let single = expanded.len() == 1;
        for words in &expanded {
            if single {
                found!(self.check_words(words, cmd, cwd, depth, up));
            } else {
                found!(self.check_words(words, cmd, &mut cwd.clone(), depth, up));
            }
        }
        // A program computed when the command runs (`$(echo rm) -rf x`, `$R -rf x`) is judged
        // by its arguments too, even where ralph could work out what it probably is — unless
        // every value it may have is a program those arguments are harmless for.
        if let Ok(Inv::Exec(words)) = self.unwrap(&cmd.words, false) {
            if words.first().is_some_and(unknown_program)
                && expanded.iter().any(|alt| self.may_be_destructive(alt))
            {
                return self.unresolved(words, cwd, depth);
            }
        }
        None
    }

    /// Whether the program of one expansion is unknown, or one that deletes or rewrites
    /// history.
    fn may_be_destructive(&self, words: &[Word]) -> bool {
        match self.unwrap(words, false) {
            Ok(Inv::Exec(w)) => w.first().is_some_and(|first| {
                unknown_program(first)
                    || matches!(
                        prog_name(first).as_str(),
                        "rm" | "unlink" | "shred" | "find" | "git" | "rmdir"
                    )
            }),
            _ => false,
        }
    }

    /// Check a simple command's words (expanded): prefixes stripped, then by program.
    fn check_words(
        &self,
        words: &[Word],
        cmd: &Cmd,
        cwd: &mut Cwd,
        depth: usize,
        up: &Upstream,
    ) -> Option<Blocked> {
        if depth > MAX_DEPTH {
            return Some(self.nesting_limit(&words_text(words)));
        }
        let inv = match self.unwrap(words, true) {
            Ok(inv) => inv,
            Err(b) => return Some(b),
        };
        match inv {
            Inv::Nothing => None,
            Inv::Script(s) => self.check_source(&s, &mut cwd.clone(), depth + 1),
            Inv::Exec(words) => {
                if words.first().is_some_and(unknown_program) {
                    return self.unresolved(words, cwd, depth);
                }
                self.check_exec(words, cmd, cwd, depth, up)
            }
            Inv::Xargs { command, replace } => {
                self.xargs(command, replace.as_deref(), cmd, cwd, depth, up)
            }
        }
    }

    /// `xargs CMD`: CMD with the items the pipeline feeds it, when they are known (`echo / |
    /// xargs rm -rf`, `find .git | xargs rm -rf`).
    fn xargs(
        &self,
        command: &[Word],
        replace: Option<&str>,
        cmd: &Cmd,
        cwd: &mut Cwd,
        depth: usize,
        up: &Upstream,
    ) -> Option<Blocked> {
        let plain = Cmd {
            words: command.to_vec(),
            ..Cmd::default()
        };
        let Some(items) = up.items.as_ref().filter(|i| !i.is_empty()) else {
            return self.check_words(command, &plain, cwd, depth + 1, up);
        };
        let _ = cmd;
        let runs: Vec<Vec<Word>> = match replace {
            None => vec![command.iter().chain(items.iter()).cloned().collect()],
            Some(r) => items
                .iter()
                .map(|item| {
                    command
                        .iter()
                        .map(|w| {
                            if w.text == r {
                                item.clone()
                            } else if w.text.contains(r) {
                                Word::literal(&w.text.replace(r, &item.text))
                            } else {
                                w.clone()
                            }
                        })
                        .collect()
                })
                .collect(),
        };
        for words in runs {
            found!(self.check_words(&words, &plain, &mut cwd.clone(), depth + 1, up));
        }
        None
    }

    /// A program ralph cannot know before it runs (`$CMD`, `$(…)` that does more than print
    /// literal text): blocked when its arguments would be destructive for a program that
    /// takes them (`-rf`, `push -f`, `reset --hard`).
    fn unresolved(&self, words: &[Word], cwd: &Cwd, depth: usize) -> Option<Blocked> {
        let args = &words[1..];
        let as_prog = |p: &str| {
            let mut w = vec![Word::bare(p)];
            w.extend_from_slice(args);
            w
        };
        let what = if rm::recursive_force(args) {
            Some(("rm".to_string(), description("rm-rf-root").to_string()))
        } else {
            // Only programs whose dangerous arguments are unlikely elsewhere: `-r` alone is
            // `grep -r` as often as `rm -r`.
            ["git", "find"].iter().find_map(|p| {
                let w = as_prog(p);
                let b = match *p {
                    "git" => self.git(&w, cwd, depth),
                    _ => self.find(&w, cwd, depth),
                };
                b.map(|b| (p.to_string(), description(&b.rule).to_string()))
            })
        };
        let (prog, effect) = what?;
        let effect = if prog == "rm" && rm::recursive_force(args) {
            "deletes recursively and without asking".to_string()
        } else {
            effect
        };
        Some(Blocked {
            rule: "unresolved-program".to_string(),
            reason: format!(
                "`{}` runs a program computed when it runs (`{}`), which cannot be known \
                 before, with arguments that would be destructive: as `{prog}` it {effect} \
                 (unresolvable program with dangerous arguments)",
                excerpt(&words_text(words)),
                excerpt(&words[0].text),
            ),
        })
    }

    /// The substitutions in an unquoted here-document body run even if nothing reads it.
    fn check_expansions(&self, body: &str, cwd: &Cwd, depth: usize) -> Option<Blocked> {
        if depth + 1 > MAX_DEPTH {
            return Some(self.nesting_limit(body));
        }
        let mut lx = Lexer::new(body, depth + 1);
        let mut w = Word::default();
        lx.dquote(&mut w, None);
        if lx.too_deep {
            return Some(self.nesting_limit(body));
        }
        for sub in &w.subs {
            found!(self.check_script(&sub.script, &mut cwd.clone(), depth + 1));
        }
        None
    }

    fn check_exec(
        &self,
        words: &[Word],
        cmd: &Cmd,
        cwd: &mut Cwd,
        depth: usize,
        up: &Upstream,
    ) -> Option<Blocked> {
        let first = words.first()?;
        let prog = prog_name(first);
        let args = &words[1..];
        if self.runs_download(&prog, first, args) {
            return Some(block("curl-pipe-shell", words));
        }
        match prog.as_str() {
            p if PRIVILEGE.contains(&p) => Some(block("sudo", words)),
            "kill" => self.kill(words, up, depth),
            "pkill" | "killall" => self.pkill(words),
            "killall5" | "shutdown" | "reboot" | "poweroff" | "halt" => {
                Some(block("kill-all", words))
            }
            "cd" | "pushd" => {
                *cwd = self.cd(args, cwd);
                None
            }
            "rm" => self.rm(words, cwd),
            "git" => self.git(words, cwd, depth),
            "chmod" | "chown" | "chgrp" => self.chmod(words, cwd),
            "dd" => args
                .iter()
                .filter_map(|a| a.text.strip_prefix("of="))
                .any(|of| !is_safe_device(of))
                .then(|| block("write-device", words)),
            p if is_mkfs(p) => Some(block("mkfs", words)),
            "find" => self.find(words, cwd, depth),
            "tee" => {
                for a in args.iter().filter(|a| !a.text.starts_with('-')) {
                    found!(self.check_write(a, cwd, words));
                }
                None
            }
            "eval" => {
                if args.iter().any(|a| self.word_downloads(a, depth)) {
                    return Some(block("curl-pipe-shell", words));
                }
                self.check_source(&words_text(args), cwd, depth + 1)
            }
            "source" | "." => {
                let file = args.first();
                if file.is_some_and(|f| self.word_downloads(f, depth)) {
                    return Some(block("curl-pipe-shell", words));
                }
                let stdin = file.is_none_or(|f| is_stdin_path(&f.text));
                if stdin && up.download {
                    return Some(block("curl-pipe-shell", words));
                }
                None
            }
            p if SHELLS.contains(&p) => self.shell(words, cmd, cwd, depth, up),
            p if is_interpreter(p) => self.interpreter(words, cmd, depth, up),
            _ => None,
        }
    }

    /// A redirection or `tee` target: devices, and protected paths when checking with a
    /// [`PathGuard`].
    fn check_write(&self, target: &Word, cwd: &Cwd, words: &[Word]) -> Option<Blocked> {
        let t = target.text.as_str();
        if t.starts_with("/dev/") && !is_safe_device(t) {
            let mut b = block("write-device", words);
            b.reason = format!("{} (writes to {t})", b.reason);
            return Some(b);
        }
        let paths = self.paths?;
        let resolved = self.resolve(target, cwd);
        let (Loc::Abs(c), GlobKind::None) = (&resolved.loc, resolved.glob) else {
            return None;
        };
        let rel = c.strip_prefix(self.root.as_slice())?;
        if rel.is_empty() {
            return None;
        }
        let rel = rel.join("/");
        paths.matches(&rel).map(|glob| protected(&rel, glob))
    }
}
