//! Prefix commands and keywords (`env`, `nohup`, `xargs`, `timeout`, `VAR=1`, `if` …) stripped
//! to find what a simple command really runs.

use super::super::syntax::{prog_name, words_text, Word};
use super::super::Blocked;
use super::{skip_opts, Analyzer};
use ralph_agents::shell_quote as sh_quote;

/// Cap on unwrapping prefixes such as `env nohup nice …`.
const MAX_UNWRAP: usize = 32;

/// Shell keywords that may precede a command.
const PREFIX_KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "while", "until", "do", "!", "{", "}", "time", "coproc",
];

/// What a simple command runs once prefixes are stripped.
pub(super) enum Inv<'a> {
    Exec(&'a [Word]),
    /// A command line to parse again (`env -S`, `watch`, `flock -c`).
    Script(String),
    /// `xargs [opts] CMD…`: CMD runs with what stdin holds; `replace` is the `-I` string.
    Xargs {
        command: &'a [Word],
        replace: Option<String>,
    },
    Nothing,
}

impl Analyzer<'_> {
    /// Strip assignments, keywords and prefix commands (`env`, `nohup`, `xargs`, …). Each level
    /// is also checked against the user's rules.
    pub(super) fn unwrap<'a>(&self, words: &'a [Word], user: bool) -> Result<Inv<'a>, Blocked> {
        let mut words = words;
        for _ in 0..MAX_UNWRAP {
            while let Some(first) = words.first() {
                let keyword = first.all_bare() && PREFIX_KEYWORDS.contains(&first.text.as_str());
                if keyword || first.is_assignment() {
                    words = &words[1..];
                } else {
                    break;
                }
            }
            let Some(first) = words.first() else {
                return Ok(Inv::Nothing);
            };
            if user {
                if let Some(b) = self.guard.user_match(words) {
                    return Err(b);
                }
            }
            let prog = prog_name(first);
            let args = &words[1..];
            let rest = |i: usize| args.get(i..).unwrap_or(&[]);
            words = match prog.as_str() {
                "for" | "select" | "case" | "[[" | "[" | "test" | "fi" | "done" | "esac" | "]]" => {
                    return Ok(Inv::Nothing)
                }
                "function" => rest(1),
                "env" => match env_operand(args) {
                    EnvOperand::Cmd(i) => rest(i),
                    EnvOperand::Split(s) => return Ok(Inv::Script(s)),
                    EnvOperand::None => return Ok(Inv::Nothing),
                },
                "command" => {
                    let i = skip_opts(args, &[]);
                    if args[..i.min(args.len())]
                        .iter()
                        .any(|a| a.text.starts_with('-') && a.text.contains(['v', 'V']))
                    {
                        return Ok(Inv::Nothing);
                    }
                    rest(i)
                }
                "builtin" | "nohup" | "unbuffer" | "setsid" | "busybox" => {
                    rest(skip_opts(args, &[]))
                }
                "exec" => rest(skip_opts(args, &["-a"])),
                "time" => rest(skip_opts(args, &["-f", "--format", "-o", "--output"])),
                "nice" => rest(skip_opts(args, &["-n", "--adjustment"])),
                "ionice" => rest(skip_opts(args, &["-c", "-n", "--class", "--classdata"])),
                "stdbuf" => rest(skip_opts(args, &["-i", "-o", "-e"])),
                "timeout" => rest(skip_opts(args, &["-s", "-k", "--signal", "--kill-after"]) + 1),
                "taskset" | "chrt" => rest(skip_opts(args, &[]) + 1),
                "xargs" => {
                    let i = skip_opts(args, XARGS_VALUE_OPTS);
                    return Ok(Inv::Xargs {
                        command: rest(i),
                        replace: xargs_replace(&args[..i.min(args.len())]),
                    });
                }
                "watch" => {
                    let i = skip_opts(args, &["-n", "--interval", "-q", "--equexit"]);
                    return Ok(Inv::Script(words_text(rest(i))));
                }
                "flock" => {
                    let i = skip_opts(args, &["-w", "-E", "--timeout", "--conflict-exit-code"]);
                    match args.get(i + 1).map(|w| w.text.as_str()) {
                        Some("-c" | "--command") => {
                            return Ok(args
                                .get(i + 2)
                                .map_or(Inv::Nothing, |w| Inv::Script(w.text.clone())))
                        }
                        _ => rest(i + 1),
                    }
                }
                _ => return Ok(Inv::Exec(words)),
            };
        }
        Ok(Inv::Nothing)
    }
}

/// `xargs` options that take a value.
const XARGS_VALUE_OPTS: &[&str] = &[
    "-I",
    "-L",
    "-n",
    "-P",
    "-s",
    "-d",
    "-E",
    "-a",
    "--max-args",
    "--max-procs",
    "--delimiter",
    "--arg-file",
    "--eof",
    "--replace",
    "--max-lines",
    "--max-chars",
];

/// The replace string of `xargs -I X`, `-i`, `--replace[=X]`.
fn xargs_replace(opts: &[Word]) -> Option<String> {
    let mut it = opts.iter();
    while let Some(o) = it.next() {
        let t = o.text.as_str();
        match t {
            "-I" | "--replace" => return it.next().map(|w| w.text.clone()),
            "-i" => return Some("{}".to_string()),
            _ => {
                if let Some(r) = t
                    .strip_prefix("--replace=")
                    .or_else(|| t.strip_prefix("-I"))
                {
                    return Some(r.to_string());
                }
                if let Some(r) = t.strip_prefix("-i") {
                    return Some(if r.is_empty() { "{}" } else { r }.to_string());
                }
            }
        }
    }
    None
}

enum EnvOperand {
    Cmd(usize),
    Split(String),
    None,
}

fn env_operand(args: &[Word]) -> EnvOperand {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        let split = |first: &str, from: usize| {
            let mut s = first.to_string();
            for w in args.get(from..).unwrap_or(&[]) {
                s.push(' ');
                s.push_str(&sh_quote(&w.text));
            }
            EnvOperand::Split(s)
        };
        if t == "-S" || t == "--split-string" {
            return match args.get(i + 1) {
                Some(s) => split(&s.text, i + 2),
                None => EnvOperand::None,
            };
        }
        if let Some(s) = t.strip_prefix("--split-string=") {
            return split(s, i + 1);
        }
        if let Some(s) = t.strip_prefix("-S").filter(|s| !s.is_empty()) {
            return split(s, i + 1);
        }
        if matches!(t, "-u" | "--unset" | "-C" | "--chdir" | "-a" | "--argv0") {
            i += 2;
        } else if t == "--" {
            i += 1;
            while args.get(i).is_some_and(Word::is_assignment) {
                i += 1;
            }
            return if i < args.len() {
                EnvOperand::Cmd(i)
            } else {
                EnvOperand::None
            };
        } else if t.starts_with('-') || a.is_assignment() {
            i += 1;
        } else {
            return EnvOperand::Cmd(i);
        }
    }
    EnvOperand::None
}
