//! What the agent reported the sandbox refused: error texts in its output ("Permission
//! denied", "Read-only file system", …) with the path they name. The kernel tells the process,
//! not ralph, so this is how a denied write becomes a `sandbox.denied` event. Refused
//! connections come from the proxy itself and are exact.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// One refusal the agent reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The path (or host) it named; empty when the text named none.
    pub what: String,
    /// The error, as the sandbox causes it.
    pub error: &'static str,
}

const PHRASES: &[(&str, &str)] = &[
    ("permission denied", "permission denied"),
    ("read-only file system", "read-only file system"),
    ("operation not permitted", "operation not permitted"),
    ("network is unreachable", "network unreachable"),
    (
        "invalid cross-device link",
        "cross-directory link or rename refused",
    ),
    ("device or resource busy", "protected path (mount point)"),
    (
        "temporary failure in name resolution",
        "name resolution failed (no network)",
    ),
];

/// At most this many denials are kept per call: a looping agent must not fill the database.
const MAX_PER_CALL: usize = 32;
/// How far around the phrase a path is looked for.
const WINDOW: usize = 240;

static MATCHER: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostFirst)
        .build(PHRASES.iter().map(|(p, _)| p))
        .ok()
});

/// Collects denials from lines of output (stdout lines, stderr chunks).
#[derive(Debug, Default)]
pub struct DenialScanner {
    found: Vec<Denial>,
}

impl DenialScanner {
    pub fn scan(&mut self, text: &[u8]) {
        let Some(m) = MATCHER.as_ref() else { return };
        if self.found.len() >= MAX_PER_CALL {
            return;
        }
        for hit in m.find_iter(text) {
            let error = PHRASES[hit.pattern().as_usize()].1;
            let what = path_near(text, hit.start(), hit.end());
            let d = Denial { what, error };
            if !self.found.contains(&d) {
                self.found.push(d);
                if self.found.len() >= MAX_PER_CALL {
                    return;
                }
            }
        }
    }

    pub fn take(&mut self) -> Vec<Denial> {
        std::mem::take(&mut self.found)
    }
}

/// The path-like token nearest the phrase at `start..end`: quoted right after it (Python,
/// Node: `Permission denied: '/x'`), else the last one before it (`cannot create /x:`).
fn path_near(text: &[u8], start: usize, end: usize) -> String {
    let after = &text[end..text.len().min(end + WINDOW)];
    let after = String::from_utf8_lossy(after);
    let after_line = after.split(['\n', '\r']).next().unwrap_or("");
    if let Some(p) = tokens(after_line).find(|t| is_path(t)) {
        return p.to_string();
    }
    let before = &text[start.saturating_sub(WINDOW)..start];
    let before = String::from_utf8_lossy(before);
    let before_line = before.rsplit(['\n', '\r']).next().unwrap_or("");
    if let Some(found) = tokens(before_line).rev().find(|t| is_path(t)) {
        return found.to_string();
    }
    // A bare name in the working directory: `sh: 1: cannot create notes.txt: Read-only…`,
    // `mv: cannot move 'a' to 'ralph.toml': …` (the last name the tool quoted or named).
    named_by_tool(before_line).unwrap_or_default()
}

/// The operand a coreutils-style message names last before the error: after `cannot <verb>`
/// (or `to` for a move), quoted or up to the colon.
fn named_by_tool(line: &str) -> Option<String> {
    let (_, rest) = line.rsplit_once("cannot ")?;
    let operand = match rest.rsplit_once(" to ") {
        Some((_, to)) => to,
        // Past the verb.
        None => rest.split_once(' ').map_or(rest, |(_, o)| o),
    };
    let operand = operand.trim().trim_end_matches(':').trim_matches(QUOTES);
    let operand = operand
        .rsplit(' ')
        .next()
        .unwrap_or(operand)
        .trim_matches(QUOTES);
    (!operand.is_empty()).then(|| operand.to_string())
}

const QUOTES: &[char] = &[
    '\'', '"', '`', '\u{2018}', '\u{2019}', '\u{201c}', '\u{201d}',
];

fn tokens(s: &str) -> impl DoubleEndedIterator<Item = &str> {
    s.split(|c: char| {
        c.is_whitespace() || QUOTES.contains(&c) || matches!(c, ',' | '(' | ')' | '[' | ']')
    })
    .map(|t| t.trim_end_matches([':', ';', '.']).trim_start_matches(':'))
    .filter(|t| !t.is_empty())
}

fn is_path(t: &str) -> bool {
    (t.contains('/') || t.starts_with('~'))
        && !t.contains("://")
        // Not text from a JSON string or markup around a path (`\n`, `</tag>`), nor "I/O".
        && !t.contains(['\\', '<', '>'])
        && !t.eq_ignore_ascii_case("i/o")
        && t.len() <= 4096
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Denial {
        let mut s = DenialScanner::default();
        s.scan(line.as_bytes());
        let found = s.take();
        assert_eq!(found.len(), 1, "{line}: {found:?}");
        found[0].clone()
    }

    #[test]
    fn paths_of_common_error_texts() {
        let d = one("sh: 1: cannot create /root/.bashrc-x: Permission denied");
        assert_eq!(d.what, "/root/.bashrc-x");
        let d = one("PermissionError: [Errno 13] Permission denied: '/tmp/py-1.txt'");
        assert_eq!(d.what, "/tmp/py-1.txt");
        let d = one("touch: cannot touch '/etc/cron.d/x': Read-only file system");
        assert_eq!(
            (d.what.as_str(), d.error),
            ("/etc/cron.d/x", "read-only file system")
        );
        let d =
            one(r#"{"error":"EACCES: permission denied, open '/home/u/.ssh/authorized_keys'"}"#);
        assert_eq!(d.what, "/home/u/.ssh/authorized_keys");
        let d = one("unshare: unshare failed: Operation not permitted");
        assert_eq!(d.what, "");
        let d = one("Error: Persistence error: I/O error: Read-only file system (os error 30)");
        assert_eq!(d.what, "");
        let d = one(r#"{"text":"<now>2026</now>\n\nCreate it: Read-only file system"}"#);
        assert_eq!(d.what, "");
        let d = one("sh: 1: cannot create flink: Read-only file system");
        assert_eq!(d.what, "flink");
        let d = one("mv: cannot move 't.toml' to 'ralph.toml': Device or resource busy");
        assert_eq!(d.what, "ralph.toml");
        let d = one("mkdir: cannot create directory \u{2018}/etc/x\u{2019}: Read-only file system");
        assert_eq!(d.what, "/etc/x");
    }

    #[test]
    fn bounded_and_deduplicated() {
        let mut s = DenialScanner::default();
        for i in 0..100 {
            s.scan(format!("cannot create /x/{i}: Permission denied").as_bytes());
            s.scan(b"cannot create /x/0: Permission denied");
        }
        assert_eq!(s.take().len(), MAX_PER_CALL);
    }
}
