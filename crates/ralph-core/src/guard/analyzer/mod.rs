//! The built-in command rules applied to a lexed command: walks scripts, pipelines and
//! simple commands (substitutions first), tracks the current directory, and dispatches each
//! command by the program it runs once wrappers are stripped. What it knows about each
//! program lives in the submodules: [`unwrap`] (prefix commands), [`shells`] (scripts run by
//! shells and interpreters, and downloads fed to them), [`targets`] (what a path word names and
//! how dangerous deleting it is), [`rm`] (deletion and recursive permission changes) and
//! [`git`].

use super::commands::CommandGuard;
use super::lexer::{is_fork_bomb, Lexer, MAX_DEPTH};
use super::paths::{protected, PathGuard};
use super::rules::description;
use super::syntax::{prog_name, words_text, Cmd, RedirOp, Script, Stdin, Word};
use super::{excerpt, Blocked};

use shells::{is_interpreter, is_stdin_path, Upstream, SHELLS};
use targets::{Cwd, GlobKind, Loc};
use unwrap::Inv;

mod git;
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

fn block(rule: &str, words: &[Word]) -> Blocked {
    Blocked {
        rule: rule.to_string(),
        reason: format!("`{}` {}", excerpt(&words_text(words)), description(rule)),
    }
}

impl Analyzer<'_> {
    pub(super) fn check_command(&self, command: &str) -> Option<Blocked> {
        let mut cwd = Cwd::Abs(self.root.clone());
        self.check_source(command, &mut cwd, 0)
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
        let inv = match self.unwrap(&cmd.words, true) {
            Ok(inv) => inv,
            Err(b) => return Some(b),
        };
        match inv {
            Inv::Nothing => None,
            Inv::Script(s) => self.check_source(&s, &mut cwd.clone(), depth + 1),
            Inv::Exec(words) => self.check_exec(words, cmd, cwd, depth, up),
        }
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
        match prog.as_str() {
            p if PRIVILEGE.contains(&p) => Some(block("sudo", words)),
            "cd" | "pushd" => {
                *cwd = self.cd(args, cwd);
                None
            }
            "rm" => self.rm(words, cwd),
            "git" => self.git(words, cwd),
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
