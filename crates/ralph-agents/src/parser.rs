//! Tolerant line parsers for agent output.

use serde_json::Value;

use crate::classify::classify_text;
use crate::event::{
    AgentEvent, AgentOutcome, CostSource, ErrorClass, ExitInfo, RetryAfter, FINAL_TEXT_MAX,
};
use crate::retry_after::Clock;

/// Parses one agent call's stdout, line by line, as it streams. Memory must stay bounded
/// whatever the agent prints: keep only what the outcome needs.
pub trait StreamParser: Send {
    /// One line of stdout without its line terminator. Lines longer than the engine's cap arrive
    /// truncated, with `truncated` set. Push zero or more events.
    fn line(&mut self, line: &[u8], truncated: bool, events: &mut Vec<AgentEvent>);

    /// The agent has exited and its stdout is closed. `stderr_tail` is the last few KiB of
    /// stderr, for classifying failures that only show there.
    fn finish(&mut self, exit: ExitInfo, stderr_tail: &str) -> AgentOutcome;
}

/// Longest `error_message`: it is one line in a terminal summary and a database column.
pub(crate) const ERROR_MESSAGE_MAX: usize = 300;
/// How much of the end of stdout joins stderr when a text agent's failure is classified: enough
/// for a final error message, not so much that an old mention of "429" in the work log counts.
pub(crate) const STDOUT_CLASSIFY_TAIL: usize = 2048;
/// Cap on a non-JSON line kept from a JSON stream (an error the CLI printed to stdout).
pub(crate) const STRAY_MAX: usize = 1024;

/// The last `max` bytes of `s`, moved forward to a char boundary.
pub(crate) fn tail_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The first `max` bytes of `s`, moved back to a char boundary.
pub(crate) fn head_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Keeps the tail of a growing text in at most `2 * FINAL_TEXT_MAX` bytes. Trimming lazily (only
/// once the buffer doubles) keeps appending amortised O(1); trimming on every line would move
/// 64 KiB per line of output.
#[derive(Debug, Default)]
pub(crate) struct TailBuf {
    buf: String,
}

impl TailBuf {
    pub(crate) fn push(&mut self, s: &str) {
        if s.len() >= FINAL_TEXT_MAX {
            self.buf.clear();
            self.buf.push_str(tail_str(s, FINAL_TEXT_MAX));
            return;
        }
        self.buf.push_str(s);
        if self.buf.len() > 2 * FINAL_TEXT_MAX {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let start = self.buf.len() - tail_str(&self.buf, FINAL_TEXT_MAX).len();
        self.buf.drain(..start);
    }

    pub(crate) fn clear(&mut self) {
        self.buf.clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn take(&mut self) -> String {
        self.compact();
        std::mem::take(&mut self.buf)
    }
}

/// Whitespace (newlines included) collapsed to single spaces, cut to [`ERROR_MESSAGE_MAX`].
pub(crate) fn one_line(s: &str) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.len() <= ERROR_MESSAGE_MAX {
        joined
    } else {
        format!("{}…", head_str(&joined, ERROR_MESSAGE_MAX))
    }
}

pub(crate) fn last_nonempty_line(s: &str) -> Option<&str> {
    s.lines().map(str::trim).rfind(|l| !l.is_empty())
}

/// "exited with code 3", "killed by signal 9".
pub(crate) fn exit_summary(exit: ExitInfo) -> String {
    match (exit.code, exit.signal) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        (None, None) => "exited without an exit status".to_string(),
    }
}

pub(crate) fn with_detail(summary: String, detail: Option<&str>) -> String {
    match detail {
        Some(d) if !d.trim().is_empty() => one_line(&format!("{summary}: {d}")),
        _ => summary,
    }
}

/// Line counters every JSON parser keeps.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub(crate) lines: u64,
    pub(crate) unknown: u64,
    pub(crate) malformed: u64,
}

impl Counts {
    /// The line handling every JSON-lines parser shares: count the line, keep a plain-text line
    /// as `stray` (CLIs print some fatal errors that way), and return the JSON value, if any,
    /// for the parser's own handler.
    pub(crate) fn next_json(
        &mut self,
        line: &[u8],
        stray: &mut Option<String>,
        events: &mut Vec<AgentEvent>,
    ) -> Option<Value> {
        self.lines += 1;
        match json_line(line) {
            JsonLine::Empty => None,
            JsonLine::Malformed { stray: s } => {
                self.malformed += 1;
                if s.is_some() {
                    *stray = s;
                }
                events.push(AgentEvent::Malformed);
                None
            }
            JsonLine::Value(v) => Some(v),
        }
    }

    /// A JSON line of a shape the parser does not know: counted, never dropped silently.
    pub(crate) fn unknown(&mut self, events: &mut Vec<AgentEvent>) {
        self.unknown += 1;
        events.push(AgentEvent::Unknown);
    }

    /// An outcome carrying these counts and nothing else yet.
    pub(crate) fn outcome(&self) -> AgentOutcome {
        AgentOutcome {
            lines: self.lines,
            unknown_lines: self.unknown,
            malformed_lines: self.malformed,
            ..AgentOutcome::default()
        }
    }
}

/// One line of a JSON-lines stream.
pub(crate) enum JsonLine {
    /// Blank: not counted as anything but a line.
    Empty,
    Value(Value),
    /// Not JSON. `stray` is the line as text when it does not even start like JSON (CLIs print
    /// some fatal errors as plain text on stdout), bounded.
    Malformed {
        stray: Option<String>,
    },
}

pub(crate) fn json_line(line: &[u8]) -> JsonLine {
    let line = line.trim_ascii();
    if line.is_empty() {
        return JsonLine::Empty;
    }
    match serde_json::from_slice(line) {
        Ok(v) => JsonLine::Value(v),
        Err(_) => {
            let stray = (!line.starts_with(b"{")).then(|| {
                let text = String::from_utf8_lossy(head_bytes(line, STRAY_MAX + 4));
                head_str(&text, STRAY_MAX).to_string()
            });
            JsonLine::Malformed { stray }
        }
    }
}

/// Classes whose end an agent may announce ("resets 4pm", "retry-after: 30").
pub(crate) fn is_limit(class: Option<ErrorClass>) -> bool {
    matches!(
        class,
        Some(ErrorClass::RateLimit | ErrorClass::UsageLimit | ErrorClass::Quota)
    )
}

/// The first time any of `texts` names for the limit to lift, for limit classes only.
pub(crate) fn retry_hint(
    class: Option<ErrorClass>,
    clock: &Clock,
    texts: &[&str],
) -> Option<RetryAfter> {
    if !is_limit(class) {
        return None;
    }
    texts
        .iter()
        .filter(|t| !t.is_empty())
        .find_map(|t| clock.retry_after(t))
}

/// The most telling line of a stderr tail: the last one that mentions an error (stack frames
/// such as "at throwErrorIfNotOK (file:…)" aside), else the last non-empty one.
pub(crate) fn error_line(s: &str) -> Option<&str> {
    s.lines()
        .map(str::trim)
        .rfind(|l| !l.starts_with("at ") && l.to_ascii_lowercase().contains("error"))
        .or_else(|| last_nonempty_line(s))
}

/// A JSON value as compact text (`{}` when absent).
pub(crate) fn compact(v: Option<&Value>) -> String {
    match v {
        Some(v) => serde_json::to_string(v).unwrap_or_default(),
        None => "{}".to_string(),
    }
}

/// How a call that printed no final result ended: classified from the agent's own last error
/// message (if any), its stray stdout text and the stderr tail; `Crash` when nothing says more.
pub(crate) fn failure_without_result(
    exit: ExitInfo,
    stderr_tail: &str,
    agent_error: Option<&str>,
    stray: Option<&str>,
) -> (ErrorClass, String) {
    // After a clean exit only the agent's own words count; stderr is its usual noise.
    let stderr_part = if exit.success() { "" } else { stderr_tail };
    let haystack = format!(
        "{}\n{}\n{stderr_part}",
        agent_error.unwrap_or(""),
        stray.unwrap_or("")
    );
    let class = classify_text(&haystack).unwrap_or(ErrorClass::Crash);
    let agent_error = agent_error.filter(|e| !e.trim().is_empty());
    let message = if exit.success() {
        // A clean exit's stderr is the CLI's usual noise, not the cause.
        with_detail(
            "agent exited without a result".to_string(),
            agent_error.or(stray),
        )
    } else {
        let detail = agent_error.or_else(|| error_line(stderr_tail)).or(stray);
        with_detail(exit_summary(exit), detail)
    };
    (class, message)
}

/// Plain text output: the final answer is the tail of everything printed.
///
/// Every non-empty line is also pushed as [`AgentEvent::Text`], so that renderers treat text
/// agents like structured ones.
#[derive(Debug, Default)]
pub struct TextParser {
    tail: TailBuf,
    lines: u64,
    clock: Clock,
}

impl TextParser {
    /// Reset times in error texts are resolved against `clock` (the system clock by default).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }
}

impl StreamParser for TextParser {
    fn line(&mut self, line: &[u8], _truncated: bool, events: &mut Vec<AgentEvent>) {
        let text = String::from_utf8_lossy(line);
        if self.lines > 0 {
            self.tail.push("\n");
        }
        self.lines += 1;
        self.tail.push(&text);
        if !text.is_empty() {
            events.push(AgentEvent::Text {
                text: text.into_owned(),
            });
        }
    }

    fn finish(&mut self, exit: ExitInfo, stderr_tail: &str) -> AgentOutcome {
        let final_text = self.tail.take();
        let mut out = AgentOutcome {
            lines: self.lines,
            cost_source: CostSource::Unknown,
            ..AgentOutcome::default()
        };
        if !exit.success() {
            let stdout_end = tail_str(&final_text, STDOUT_CLASSIFY_TAIL);
            let haystack = format!("{stderr_tail}\n{stdout_end}");
            out.error = Some(classify_text(&haystack).unwrap_or(ErrorClass::Crash));
            let detail = last_nonempty_line(stderr_tail).or_else(|| last_nonempty_line(stdout_end));
            out.error_message = Some(with_detail(exit_summary(exit), detail));
            out.retry_after = retry_hint(out.error, &self.clock, &[stderr_tail, stdout_end]);
        }
        out.final_text = final_text;
        out
    }
}

pub(crate) fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

pub(crate) fn u64_field(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

pub(crate) fn u16_field(v: &Value, key: &str) -> Option<u16> {
    v.get(key)
        .and_then(Value::as_u64)
        .and_then(|n| u16::try_from(n).ok())
}

pub(crate) fn head_bytes(b: &[u8], max: usize) -> &[u8] {
    &b[..b.len().min(max)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: i32) -> ExitInfo {
        ExitInfo {
            code: Some(code),
            signal: None,
        }
    }

    fn feed(p: &mut dyn StreamParser, lines: &[&str]) -> Vec<AgentEvent> {
        let mut ev = Vec::new();
        for l in lines {
            p.line(l.as_bytes(), false, &mut ev);
        }
        ev
    }

    #[test]
    fn tail_str_respects_char_boundaries() {
        assert_eq!(tail_str("héllo", 4), "llo");
        assert_eq!(tail_str("héllo", 5), "éllo");
        assert_eq!(tail_str("héllo", 6), "héllo");
        assert_eq!(head_str("héllo", 2), "h");
    }

    #[test]
    fn tailbuf_stays_bounded_and_keeps_the_end() {
        let mut t = TailBuf::default();
        let chunk = "é".repeat(1000);
        for _ in 0..1000 {
            t.push(&chunk);
            assert!(t.buf.len() <= 2 * FINAL_TEXT_MAX + chunk.len());
        }
        t.push("END");
        let s = t.take();
        assert!(s.len() <= FINAL_TEXT_MAX);
        assert!(s.ends_with("éEND"));
    }

    #[test]
    fn text_parser_success() {
        let mut p = TextParser::default();
        let ev = feed(&mut p, &["first", "", "LOOP_COMPLETE"]);
        assert_eq!(ev.len(), 2);
        let out = p.finish(exit(0), "some warning");
        assert_eq!(out.final_text, "first\n\nLOOP_COMPLETE");
        assert_eq!(out.lines, 3);
        assert_eq!(out.error, None);
        assert_eq!(out.usage, None);
        assert_eq!(out.cost_source, CostSource::Unknown);
    }

    #[test]
    fn text_parser_failure_classified_from_stderr() {
        let mut p = TextParser::default();
        feed(&mut p, &["working"]);
        let out = p.finish(exit(3), "boom\nError: 429 Too Many Requests\n\n");
        assert_eq!(out.error, Some(ErrorClass::RateLimit));
        assert_eq!(
            out.error_message.as_deref(),
            Some("exited with code 3: Error: 429 Too Many Requests")
        );
    }

    #[test]
    fn text_parser_failure_classified_from_stdout_end() {
        let mut p = TextParser::default();
        feed(&mut p, &["Invalid API key"]);
        let out = p.finish(exit(1), "");
        assert_eq!(out.error, Some(ErrorClass::Auth));
        assert_eq!(
            out.error_message.as_deref(),
            Some("exited with code 1: Invalid API key")
        );
    }

    #[test]
    fn text_parser_signal_is_a_crash() {
        let mut p = TextParser::default();
        let out = p.finish(
            ExitInfo {
                code: None,
                signal: Some(9),
            },
            "",
        );
        assert_eq!(out.error, Some(ErrorClass::Crash));
        assert_eq!(out.error_message.as_deref(), Some("killed by signal 9"));
    }

    #[test]
    fn one_line_collapses_and_bounds() {
        assert_eq!(one_line("a\n  b\tc "), "a b c");
        let long = "x".repeat(1000);
        let s = one_line(&long);
        assert!(s.len() <= ERROR_MESSAGE_MAX + "…".len());
        assert!(s.ends_with('…'));
    }
}
