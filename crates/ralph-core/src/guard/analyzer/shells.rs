//! Shells and interpreters: the scripts they run (`sh -c`, here-documents, a pipe from
//! `echo`), and whether a download feeds them (`curl-pipe-shell`).

use super::super::lexer::{Lexer, MAX_DEPTH};
use super::super::syntax::{prog_name, words_text, Cmd, RedirOp, Script, Stdin, Word};
use super::super::Blocked;
use super::expand::norm_file;
use super::targets::Cwd;
use super::unwrap::Inv;
use super::{block, Analyzer};

pub(super) const SHELLS: &[&str] = &[
    "sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "yash", "posh",
    "rbash", "pdksh", "oksh", "loksh",
];

pub(super) const DOWNLOADERS: &[&str] = &[
    "curl", "wget", "fetch", "aria2c", "http", "https", "xh", "curlie", "wget2",
];

pub(super) fn is_interpreter(prog: &str) -> bool {
    prog.starts_with("python")
        || matches!(
            prog,
            "perl" | "ruby" | "node" | "nodejs" | "php" | "pypy" | "pypy3" | "bun" | "deno"
        )
}

/// Where the stdin of a command in a pipeline comes from.
#[derive(Default, Clone)]
pub(super) struct Upstream {
    /// A download (`curl …`) feeds this command.
    pub(super) download: bool,
    /// Literal text from `echo`/`printf` feeds it.
    pub(super) text: Option<String>,
    /// The words it feeds `xargs`, when they are known (literal text, `find` start points).
    pub(super) items: Option<Vec<Word>>,
    /// The upstream lists the ids of ralph's processes (`pgrep ralph`).
    pub(super) ralph_pids: bool,
    /// Not the first command of a pipeline: stdin is the previous command's output.
    pub(super) piped: bool,
}

impl Analyzer<'_> {
    pub(super) fn shell(
        &self,
        words: &[Word],
        cmd: &Cmd,
        cwd: &Cwd,
        depth: usize,
        up: &Upstream,
    ) -> Option<Blocked> {
        let args = &words[1..];
        let sa = shell_args(args);
        if sa.has_c {
            let script = sa.operand?;
            if self.word_downloads(script, depth) {
                return Some(block("curl-pipe-shell", words));
            }
            return self.check_source(&script.text, &mut cwd.clone(), depth + 1);
        }
        if let Some(file) = sa.operand {
            if self.word_downloads(file, depth) {
                return Some(block("curl-pipe-shell", words));
            }
        }
        let from_stdin = sa.stdin_flag || sa.operand.is_none_or(|f| is_stdin_path(&f.text));
        if !from_stdin {
            return None;
        }
        self.stdin_script(words, cmd, cwd, depth, up)
    }

    /// A shell or interpreter reading its program from stdin.
    fn stdin_script(
        &self,
        words: &[Word],
        cmd: &Cmd,
        cwd: &Cwd,
        depth: usize,
        up: &Upstream,
    ) -> Option<Blocked> {
        if up.download {
            return Some(block("curl-pipe-shell", words));
        }
        for r in &cmd.redirs {
            if r.op == RedirOp::In && self.word_downloads(&r.target, depth) {
                return Some(block("curl-pipe-shell", words));
            }
        }
        let is_shell = words
            .first()
            .is_some_and(|w| SHELLS.contains(&prog_name(w).as_str()));
        for s in &cmd.stdin {
            match s {
                Stdin::HereString(w) => {
                    if self.word_downloads(w, depth) {
                        return Some(block("curl-pipe-shell", words));
                    }
                    if is_shell {
                        found!(self.check_source(&w.text, &mut cwd.clone(), depth + 1));
                    }
                }
                Stdin::Heredoc { body, .. } => {
                    if is_shell {
                        found!(self.check_source(body, &mut cwd.clone(), depth + 1));
                    }
                }
            }
        }
        if let Some(text) = &up.text {
            if is_shell {
                found!(self.check_source(text, &mut cwd.clone(), depth + 1));
            }
        } else if up.piped {
            // Whatever a pipeline computes (`base64 -d`, `rev`, `cat x`) and runs as a script
            // cannot be checked before it runs.
            return Some(block("pipe-to-shell", words));
        }
        None
    }

    pub(super) fn interpreter(
        &self,
        words: &[Word],
        cmd: &Cmd,
        depth: usize,
        up: &Upstream,
    ) -> Option<Blocked> {
        let args = &words[1..];
        let inline = args.iter().any(|a| {
            matches!(
                a.text.as_str(),
                "-c" | "-e" | "-E" | "-m" | "-p" | "-r" | "--eval" | "--print"
            )
        });
        let operand = args
            .iter()
            .find(|a| !a.text.starts_with('-') || a.text == "-");
        if operand.is_some_and(|o| self.word_downloads(o, depth)) {
            return Some(block("curl-pipe-shell", words));
        }
        if inline || operand.is_some_and(|o| !is_stdin_path(&o.text)) {
            return None;
        }
        self.stdin_script(words, cmd, &Cwd::Unknown, depth, up)
    }

    /// Whether this runs a file a download in the same command wrote (`curl -o x.sh … &&
    /// sh x.sh`, `./x.sh`, `source x.sh`).
    pub(super) fn runs_download(&self, prog: &str, first: &Word, args: &[Word]) -> bool {
        let known = self.known.borrow();
        if known.downloads.is_empty() {
            return false;
        }
        let downloaded = |w: &Word| known.downloads.contains(norm_file(&w.text));
        if first.text.contains('/') && downloaded(first) {
            return true;
        }
        let script = if SHELLS.contains(&prog) {
            let sa = shell_args(args);
            if sa.has_c {
                None
            } else {
                sa.operand
            }
        } else if is_interpreter(prog) {
            args.iter().find(|a| !a.text.starts_with('-'))
        } else if matches!(prog, "source" | ".") {
            args.first()
        } else {
            None
        };
        script.is_some_and(downloaded)
    }

    /// Whether running `cmd` downloads something (its output may feed a shell).
    pub(super) fn cmd_downloads(&self, cmd: &Cmd, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        if cmd.all_words().any(|w| self.word_downloads(w, depth)) {
            return true;
        }
        match self.unwrap(&cmd.words, false) {
            Ok(Inv::Exec(words)) => {
                let Some(first) = words.first() else {
                    return false;
                };
                let prog = prog_name(first);
                if DOWNLOADERS.contains(&prog.as_str()) {
                    return true;
                }
                if SHELLS.contains(&prog.as_str()) {
                    let sa = shell_args(&words[1..]);
                    if let (true, Some(s)) = (sa.has_c, sa.operand) {
                        return self.text_downloads(&s.text, depth + 1);
                    }
                }
                false
            }
            Ok(Inv::Script(s)) => self.text_downloads(&s, depth + 1),
            _ => false,
        }
    }

    fn text_downloads(&self, text: &str, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        let mut lx = Lexer::new(text, depth);
        let script = lx.script(false);
        self.script_downloads(&script, depth)
    }

    fn script_downloads(&self, script: &Script, depth: usize) -> bool {
        script
            .pipelines
            .iter()
            .flatten()
            .any(|c| self.cmd_downloads(c, depth + 1))
    }

    pub(super) fn word_downloads(&self, w: &Word, depth: usize) -> bool {
        w.subs
            .iter()
            .any(|s| self.script_downloads(&s.script, depth + 1))
    }

    /// What `echo`/`printf` with literal arguments print, to check what a shell reads from them.
    pub(super) fn literal_output(&self, cmd: &Cmd) -> Option<String> {
        // Only what is known before it runs is literal: `echo $X` is not, unless X was set.
        let mut alternatives = self.expand_words(&cmd.words, 0).alternatives;
        let expanded = match alternatives.as_mut_slice() {
            [one] if !one.iter().any(Word::has_exp) => std::mem::take(one),
            _ => return None,
        };
        let Ok(Inv::Exec(words)) = self.unwrap(&expanded, false) else {
            return None;
        };
        let prog = prog_name(words.first()?);
        let args = &words[1..];
        match prog.as_str() {
            "echo" => {
                let i = args
                    .iter()
                    .position(|a| !matches!(a.text.as_str(), "-n" | "-e" | "-E" | "-ne" | "-en"))
                    .unwrap_or(args.len());
                Some(words_text(&args[i..]).replace("\\n", "\n"))
            }
            "printf" => {
                let rest = if args.first().is_some_and(|a| a.text == "--") {
                    &args[1..]
                } else {
                    args
                };
                Some(printf(rest).replace("\\n", "\n"))
            }
            "cat" if args.is_empty() => cmd.stdin.first().map(|s| match s {
                Stdin::Heredoc { body, .. } => body.clone(),
                Stdin::HereString(w) => w.text.clone(),
            }),
            _ => None,
        }
    }
}

/// What `printf FORMAT ARGS…` prints, for a format whose only directives are `%s`.
fn printf(args: &[Word]) -> String {
    let Some((format, rest)) = args.split_first() else {
        return String::new();
    };
    if !format.text.contains("%s") {
        return words_text(args);
    }
    let mut values = rest.iter().map(|w| w.text.as_str());
    let mut out = String::new();
    let mut parts = format.text.split("%s").peekable();
    while let Some(p) = parts.next() {
        out.push_str(p);
        if parts.peek().is_some() {
            out.push_str(values.next().unwrap_or(""));
        }
    }
    out
}

pub(super) fn is_stdin_path(t: &str) -> bool {
    matches!(t, "-" | "/dev/stdin" | "/dev/fd/0" | "/proc/self/fd/0")
}

struct ShellArgs<'a> {
    has_c: bool,
    stdin_flag: bool,
    /// The script (with `-c`) or the script file.
    operand: Option<&'a Word>,
}

fn shell_args(args: &[Word]) -> ShellArgs<'_> {
    let mut sa = ShellArgs {
        has_c: false,
        stdin_flag: false,
        operand: None,
    };
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        if t == "--" || t == "-" {
            sa.operand = args.get(i + 1);
            return sa;
        }
        if t.starts_with("--") {
            i += if matches!(t, "--rcfile" | "--init-file") {
                2
            } else {
                1
            };
            continue;
        }
        if (t.starts_with('-') || t.starts_with('+')) && t.len() > 1 {
            let cluster = &t[1..];
            if t.starts_with('-') && cluster.contains('c') {
                sa.has_c = true;
            }
            if cluster.contains('s') {
                sa.stdin_flag = true;
            }
            i += if cluster.contains(['o', 'O']) { 2 } else { 1 };
            continue;
        }
        sa.operand = Some(a);
        return sa;
    }
    sa
}
