//! Commands that kill ralph, the agent running the command, or every process the user owns:
//! `kill -9 -1`, `kill -- -1`, `pkill ralph`, `killall ralph`, `kill $(pgrep ralph)`,
//! `pgrep ralph | xargs kill`, `kill $PPID`.

use regex::RegexBuilder;

use super::super::syntax::{prog_name, Cmd, Script, Word};
use super::super::Blocked;
use super::shells::Upstream;
use super::unwrap::Inv;
use super::{block, Analyzer};

/// Names ralph's processes have, as `pkill`/`killall` patterns are matched against them
/// (process name, or with `-f` the full command line).
const RALPH_NAMES: &[&str] = &["ralph", "ralph run", "/usr/local/bin/ralph run"];

/// `pkill`/`pgrep` options that take a value.
const PGREP_VALUE_OPTS: &[&str] = &[
    "-d",
    "-g",
    "-G",
    "-P",
    "-s",
    "-t",
    "-u",
    "-U",
    "-F",
    "--signal",
    "--delimiter",
    "--pgroup",
    "--group",
    "--parent",
    "--session",
    "--terminal",
    "--euid",
    "--uid",
    "--pidfile",
    "--ns",
    "--nslist",
];

/// `killall` options that take a value.
const KILLALL_VALUE_OPTS: &[&str] = &[
    "-s",
    "-u",
    "-o",
    "-y",
    "-n",
    "--signal",
    "--user",
    "--older-than",
    "--younger-than",
    "--ns",
    "--context",
    "-Z",
];

impl Analyzer<'_> {
    pub(super) fn kill(&self, words: &[Word], up: &Upstream, depth: usize) -> Option<Blocked> {
        let args = &words[1..];
        let mut i = 0;
        // The signal: `-9`, `-KILL`, `-s KILL`, `-n 9`; `-l`/`-L` only list signals.
        if let Some(first) = args.first().map(|a| a.text.as_str()) {
            match first {
                "-l" | "-L" | "--list" | "--table" => return None,
                "-s" | "-n" | "--signal" => i = 2,
                "--" => {}
                t if t.starts_with('-') && t.len() > 1 && !t.starts_with("--") => i = 1,
                _ => {}
            }
        }
        if args.get(i).is_some_and(|a| a.text == "--") {
            i += 1;
        }
        let pids = args.get(i..).unwrap_or(&[]);
        if pids.iter().any(|p| p.text == "-1") {
            return Some(block("kill-all", words));
        }
        let targets_ralph = up.ralph_pids
            || pids.iter().any(|p| {
                matches!(p.text.as_str(), "$PPID" | "${PPID}")
                    || p.subs
                        .iter()
                        .any(|s| self.script_lists_ralph(&s.script, depth))
            });
        targets_ralph.then(|| block("kill-ralph", words))
    }

    /// `pkill PATTERN`, `killall NAME`: blocked when they would match ralph, or every process
    /// of a user (`pkill -u me`, `killall -u me`).
    pub(super) fn pkill(&self, words: &[Word]) -> Option<Blocked> {
        let killall = words.first().is_some_and(|w| prog_name(w) == "killall");
        match match_ralph(words, killall) {
            Match::Ralph => Some(block("kill-ralph", words)),
            Match::Everything => Some(block("kill-all", words)),
            Match::No => None,
        }
    }

    /// `pgrep ralph`, `pidof ralph`: the command prints the ids of ralph's processes.
    pub(super) fn lists_ralph_pids(&self, cmd: &Cmd) -> bool {
        let Ok(Inv::Exec(words)) = self.unwrap(&cmd.words, false) else {
            return false;
        };
        let Some(first) = words.first() else {
            return false;
        };
        match prog_name(first).as_str() {
            "pgrep" => matches!(match_ralph(words, false), Match::Ralph),
            "pidof" => words[1..].iter().any(|w| is_ralph_name(&w.text)),
            _ => false,
        }
    }

    fn script_lists_ralph(&self, script: &Script, depth: usize) -> bool {
        if depth > super::MAX_DEPTH {
            return false;
        }
        script
            .pipelines
            .iter()
            .flatten()
            .any(|c| self.lists_ralph_pids(c))
    }
}

fn is_ralph_name(t: &str) -> bool {
    super::super::syntax::basename(t) == "ralph"
}

enum Match {
    Ralph,
    Everything,
    No,
}

/// What a `pkill`/`pgrep`/`killall` command line selects.
fn match_ralph(words: &[Word], killall: bool) -> Match {
    let args = &words[1..];
    let value_opts = if killall {
        KILLALL_VALUE_OPTS
    } else {
        PGREP_VALUE_OPTS
    };
    let (mut full, mut exact, mut icase, mut regex, mut by_user) =
        (false, false, false, !killall, false);
    let mut patterns = Vec::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        i += 1;
        if value_opts.contains(&t) {
            by_user |= matches!(t, "-u" | "-U" | "--user" | "--uid" | "--euid");
            i += 1;
            continue;
        }
        if t.starts_with("--") {
            full |= t == "--full";
            exact |= t == "--exact";
            icase |= t == "--ignore-case";
            regex |= t == "--regexp";
            continue;
        }
        if let Some(c) = t.strip_prefix('-').filter(|c| !c.is_empty()) {
            if killall {
                regex |= c.contains('r');
                icase |= c.contains('I');
            } else {
                full |= c.contains('f');
                exact |= c.contains('x');
                icase |= c.contains('i');
            }
            by_user |= c.starts_with('u') || (!killall && c.starts_with('U'));
            continue;
        }
        patterns.push(t);
    }
    if patterns.is_empty() {
        return if by_user {
            Match::Everything
        } else {
            Match::No
        };
    }
    let hits = patterns.iter().any(|p| {
        if !regex {
            return if icase {
                is_ralph_name(&p.to_ascii_lowercase())
            } else {
                is_ralph_name(p)
            };
        }
        let anchored = if exact {
            format!("^(?:{p})$")
        } else {
            p.to_string()
        };
        let names: &[&str] = if full { RALPH_NAMES } else { &RALPH_NAMES[..1] };
        match RegexBuilder::new(&anchored).case_insensitive(icase).build() {
            Ok(re) => names.iter().any(|n| re.is_match(n)),
            Err(_) => names.iter().any(|n| n.contains(p)),
        }
    });
    if hits {
        Match::Ralph
    } else {
        Match::No
    }
}
