//! Secret redaction, applied on the write path of every sink: artifacts, the database, logs,
//! `--json` events and the terminal.
//!
//! Two kinds of rules, both always on:
//!
//! * **Known values.** [`Redactor::new`] takes `(name, value)` pairs (the engine passes the
//!   process environment: ralph-core never reads it) and keeps the values of the variables that
//!   [`is_secret_name`] accepts, when they are at least [`MIN_KNOWN_LEN`] bytes long. Every
//!   occurrence becomes `[REDACTED:<NAME>]`, printed raw or encoded:
//!   - base64, standard and URL-safe, padded or not, and at each of the three alignments a value
//!     can have inside a longer base64 stream (the characters that depend only on the value's own
//!     bits are matched, plus the partial character and `=` padding on either side);
//!   - URL-encoded (`%XX`, either case) and JSON-escaped (`\"`, `\\`, `\/`, `\uXXXX` including
//!     surrogate pairs): rather than guessing which characters an encoder escapes, the text is
//!     searched through a decoded *view* (see below), so every escaping style is covered at once;
//!   - split across lines: the view also drops line breaks (`\n`, `\r`, and the JSON escapes
//!     `\n`/`\r`, including doubly-escaped `\\n`), so a value broken at any position, or its base64
//!     wrapped at 76 columns, still matches whole;
//!   - hex (lower and upper case, and with a space between bytes), the characters with a
//!     space between each, and (values up to 64 (`known::MAX_SPLIT_LEN`) bytes) the value split
//!     in two by one space at any position: one needle each;
//!   - the password of a URL with credentials in *any* variable's value (`DATABASE_URL`), as a
//!     known value under that variable's name;
//!   - fragments: where only part of a value is visible (one line handed to
//!     [`Redactor::redact_line`], or a stream whose other half was written earlier), a prefix of
//!     a value (or of one of its base64 forms) that ends a line, or a suffix that starts a line, is
//!     redacted when it is at least [`FRAGMENT_MIN`] bytes long (a little shorter for values of 8
//!     to 10 bytes: `len - 3`, at least 5, so that any split leaves no unredacted half longer than
//!     3 bytes in a stream). Shorter fragments would match ordinary text.
//!
//! * **Patterns** for credentials that were never in ralph's environment, each replaced by
//!   `[REDACTED:<kind>]` (see [`PatternKind`]): Anthropic, OpenAI, GitHub, AWS, Slack and Google
//!   keys, JWTs, PEM private-key blocks, and *secret assignments*: a keyword (`password`,
//!   `passwd`, `secret`, `token`, `api_key`, `access_key`, `private_key`, `credentials`, possibly
//!   inside a longer name such as `DB_PASSWORD` or `"client_secret"`) followed by `=`, `:`, `:=`
//!   or `=>` and a value of at least 12 characters whose Shannon entropy is at least 3.5
//!   bits/char (`log2(len) - 0.5` for values under 16 characters, which cannot reach 3.5). The
//!   key is kept, only the value is replaced. Bearer tokens, `Authorization: Basic …` and the
//!   password of a URL (`scheme://user:pass@host`, whatever it looks like but a template or
//!   `***`) count as assignments too. To keep false
//!   positives low an assignment value is *not* redacted when it is hex only (git SHAs,
//!   checksums, UUIDs), has no digit and only letters, `_`, `.` and `-` (identifiers, words),
//!   looks like code (brackets, `::`, `->`), a path, a URL, a template (`$X`, `${X}`, `{{x}}`,
//!   `<x>`) or a placeholder (`xxxx`, `****`, `example`, `changeme`, `your_…`). Token patterns
//!   need a non-alphanumeric byte (or an escape such as `\n`) before them, and the OpenAI rule
//!   needs two of upper case, lower case and digits (so `sk-learn-style-names` pass).
//!
//! Matching is fast on clean text (see `benches/redact.rs`): the view is built with `memchr`
//! jumps between the bytes it decodes; one ASCII case-insensitive Aho-Corasick DFA pass over it
//! finds the literal triggers of the patterns (`sk-`, `ghp_`, `AKIA`, `eyJ`, `-----BEGIN`,
//! `password`, `token`, `://` …) and the known values shorter than 24 bytes; longer known values
//! are found by probing one 8-byte window every 17 bytes against a bloom filter of their
//! windows; the regexes run, anchored, only where a trigger was found (after a cheap check for
//! the keyword rules).
//!
//! Replacements keep line structure: the real line breaks inside a replaced span (a value split
//! across lines) are written after the marker, so line-oriented readers see as many lines as
//! before; a private-key block is the exception and becomes one marker. Replacements never
//! split an escape sequence, so redacted JSON stays valid JSON.
//!
//! [`StreamRedactor`] applies the same rules to an [`std::io::Write`] fed arbitrary chunks.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

mod assignment;
mod known;
mod patterns;
mod stream;
mod url;
mod view;

pub use assignment::shannon_entropy;
pub use known::is_secret_name;
pub use patterns::PatternKind;
pub use stream::StreamRedactor;

use known::{bloom_index, pack, Inner, STRIDE};
use patterns::{try_rules, Cont, TRIGGERS};
use view::View;

/// Known values shorter than this many bytes are not redacted: they would match ordinary words
/// and numbers (`true`, `8080`, `main`).
pub const MIN_KNOWN_LEN: usize = 8;

/// Known values longer than this are matched by their first `MAX_KNOWN_LEN` bytes (and the
/// encodings of those), which bounds the memory a [`StreamRedactor`] holds back.
pub const MAX_KNOWN_LEN: usize = 16 * 1024;

/// Longest private-key block a [`StreamRedactor`] holds back waiting for its END line; past it
/// the block is redacted wholesale and its remaining body lines are dropped as they arrive.
pub const MAX_BLOCK_LEN: usize = 16 * 1024;

/// Shortest fragment of a known value redacted at a line start or end (see the module docs).
pub const FRAGMENT_MIN: usize = 8;

/// Redacts secrets from text. Cheap to clone (an `Arc`), `Send + Sync`.
#[derive(Clone)]
pub struct Redactor {
    inner: Arc<Inner>,
}

impl Default for Redactor {
    /// A redactor with the patterns only and no known values.
    fn default() -> Self {
        Redactor::new(std::iter::empty())
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the values.
        f.debug_struct("Redactor")
            .field("names", &self.inner.names)
            .field("needles", &self.inner.needles.len())
            .finish()
    }
}

/// Where a replaced span's label comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Label {
    Known(u32),
    Kind(PatternKind),
}

impl Label {
    fn priority(self) -> u8 {
        match self {
            Label::Known(_) => 3,
            Label::Kind(PatternKind::SecretAssignment) => 1,
            Label::Kind(_) => 2,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Hit {
    start: usize,
    end: usize,
    label: Label,
    cont: Option<Cont>,
}

impl Redactor {
    /// Builds a redactor from `(name, value)` pairs, typically the process environment; pairs
    /// whose name [`is_secret_name`] rejects or whose value is shorter than [`MIN_KNOWN_LEN`]
    /// bytes are ignored. A value under several names is labelled with the smallest name.
    ///
    /// The password of a URL in any variable's value (`DATABASE_URL=postgres://app:pw@db/x`) is
    /// a known value too, under that variable's name, so it is found even printed on its own.
    pub fn new(known: impl IntoIterator<Item = (String, String)>) -> Redactor {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in known {
            for password in url::passwords(&value) {
                pairs.push((name.clone(), password.to_string()));
            }
            if is_secret_name(&name) {
                pairs.push((name, value));
            }
        }
        pairs.retain(|(_, value)| value.len() >= MIN_KNOWN_LEN);
        pairs.sort();
        Redactor::from_secrets(pairs)
    }

    /// Builds a redactor from `(label, value)` pairs taken as secrets whatever their names (values
    /// shorter than [`MIN_KNOWN_LEN`] bytes are still ignored).
    pub fn with_secrets(secrets: impl IntoIterator<Item = (String, String)>) -> Redactor {
        let pairs: Vec<(String, String)> = secrets
            .into_iter()
            .filter(|(_, value)| value.len() >= MIN_KNOWN_LEN)
            .collect();
        Redactor::from_secrets(pairs)
    }

    /// Names of the known values (for diagnostics; never the values).
    pub fn names(&self) -> &[String] {
        &self.inner.names
    }

    /// Redacts `text`; borrowed when nothing was found.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.redact_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            Cow::Owned(bytes) => Cow::Owned(match String::from_utf8(bytes) {
                Ok(s) => s,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            }),
        }
    }

    /// Redacts one line (an event, a parser's input). The same rules as [`Redactor::redact`]:
    /// the line's start and end count as line boundaries for fragments of known values.
    pub fn redact_line<'a>(&self, line: &'a str) -> Cow<'a, str> {
        self.redact(line)
    }

    /// Redacts bytes that need not be UTF-8; the bytes outside replaced spans are kept as they
    /// are.
    pub fn redact_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let (hits, _) = self.find(bytes, true, true);
        if hits.is_empty() {
            return Cow::Borrowed(bytes);
        }
        let mut out = Vec::with_capacity(bytes.len());
        self.render(bytes, &hits, &mut out);
        Cow::Owned(out)
    }

    /// Whether `bytes` contain anything [`Redactor::redact_bytes`] would replace.
    pub fn contains_secret(&self, bytes: &[u8]) -> bool {
        !self.find(bytes, true, true).0.is_empty()
    }

    fn label_text(&self, label: Label) -> &str {
        match label {
            Label::Known(i) => self
                .inner
                .names
                .get(i as usize)
                .map(String::as_str)
                .unwrap_or("secret"),
            Label::Kind(k) => k.as_str(),
        }
    }

    fn render(&self, text: &[u8], hits: &[Hit], out: &mut Vec<u8>) {
        let mut pos = 0;
        for h in hits {
            out.extend_from_slice(&text[pos..h.start]);
            out.extend_from_slice(b"[REDACTED:");
            out.extend_from_slice(self.label_text(h.label).as_bytes());
            out.push(b']');
            if h.label != Label::Kind(PatternKind::PrivateKey) {
                // Keep the line structure: the real line breaks inside the span.
                for &b in &text[h.start..h.end] {
                    if b == b'\n' || b == b'\r' {
                        out.push(b);
                    }
                }
            }
            pos = h.end;
        }
        out.extend_from_slice(&text[pos..]);
    }

    /// Every span to replace, sorted and merged; plus the view when one was built.
    fn find<'t>(
        &self,
        text: &'t [u8],
        start_boundary: bool,
        end_boundary: bool,
    ) -> (Vec<Hit>, Option<View<'t>>) {
        let inner = &*self.inner;
        let mut hits = Vec::new();
        if inner.needles.is_empty() {
            if let Some(scan) = &inner.scan {
                for m in scan.find_overlapping_iter(text) {
                    try_rules(text, m.pattern().as_usize(), m.start(), &mut hits);
                }
            }
            return (merge(hits), None);
        }
        // Known values are searched in the view; the triggers too (one pass over the bytes),
        // their rules then run on the original text.
        let view = View::build(text);
        let v: &[u8] = &view.bytes;
        if let Some(scan) = &inner.scan {
            for m in scan.find_overlapping_iter(v) {
                let idx = m.pattern().as_usize();
                if idx < TRIGGERS.len() {
                    try_rules(text, idx, view.map_start(m.start()), &mut hits);
                } else if let Some(&ni) = inner.short.get(idx - TRIGGERS.len()) {
                    // The automaton ignores case: check the bytes.
                    if inner.needles[ni as usize].bytes == v[m.start()..m.end()] {
                        self.push_known(&view, ni, m.start(), m.end(), &mut hits);
                    }
                }
            }
        }
        if !inner.bloom.is_empty() && v.len() >= 8 {
            let mut p = 0;
            while p + 8 <= v.len() {
                let g = pack(&v[p..p + 8]);
                let b = bloom_index(g);
                if inner.bloom[b / 64] & (1 << (b % 64)) != 0 {
                    self.probe(&view, p, g, &mut hits);
                }
                p += STRIDE;
            }
        }
        // Fragments at line boundaries.
        if start_boundary {
            self.fragments_at(&view, 0, &mut hits);
        }
        for &b in &view.breaks {
            self.fragments_at(&view, b, &mut hits);
        }
        if end_boundary && view.breaks.last() != Some(&v.len()) {
            self.fragments_at(&view, v.len(), &mut hits);
        }
        (merge(hits), Some(view))
    }
}

/// Sorts spans and merges overlapping ones; the label of the highest-priority constituent wins
/// (a known value's name over a specific pattern over a generic assignment).
fn merge(mut hits: Vec<Hit>) -> Vec<Hit> {
    if hits.len() <= 1 {
        return hits;
    }
    hits.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out: Vec<Hit> = Vec::with_capacity(hits.len());
    for h in hits {
        if let Some(last) = out.last_mut() {
            if h.start < last.end {
                if h.end > last.end {
                    last.end = h.end;
                    last.cont = h.cont;
                }
                if h.label.priority() > last.label.priority() {
                    last.label = h.label;
                }
                continue;
            }
        }
        out.push(h);
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red(known: &[(&str, &str)]) -> Redactor {
        Redactor::new(known.iter().map(|(n, v)| (n.to_string(), v.to_string())))
    }

    #[test]
    fn merge_prefers_known_names() {
        let hits = vec![
            Hit {
                start: 5,
                end: 10,
                label: Label::Kind(PatternKind::SecretAssignment),
                cont: None,
            },
            Hit {
                start: 0,
                end: 6,
                label: Label::Known(0),
                cont: None,
            },
            Hit {
                start: 12,
                end: 14,
                label: Label::Kind(PatternKind::Jwt),
                cont: None,
            },
        ];
        let m = merge(hits);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].start, m[0].end, m[0].label), (0, 10, Label::Known(0)));
        assert_eq!(m[1].label, Label::Kind(PatternKind::Jwt));
    }

    #[test]
    fn short_and_non_secret_values_are_ignored() {
        let r = red(&[
            ("API_KEY", "short"),
            ("HOME", "/home/someone"),
            ("EDITOR_TOKEN_FILE", "/run/secrets/token"),
        ]);
        assert!(r.names().is_empty());
        let text = "short /home/someone /run/secrets/token";
        assert!(matches!(r.redact(text), Cow::Borrowed(_)));
    }

    #[test]
    fn known_value_basic_and_debug_hides_values() {
        let r = red(&[("MY_API_KEY", "Qw3rTy-uIoP-7890zz")]);
        assert_eq!(
            r.redact("key is Qw3rTy-uIoP-7890zz."),
            "key is [REDACTED:MY_API_KEY]."
        );
        assert!(!format!("{r:?}").contains("Qw3rTy"));
    }

    #[test]
    fn fragments_at_line_boundaries() {
        let v = "Qw3rTy-uIoP-7890zz-AbCdEf";
        let r = red(&[("MY_API_KEY", v)]);
        // A prefix ending a line, a suffix starting one: 8 bytes or more.
        assert_eq!(r.redact_line("tail Qw3rTy-u"), "tail [REDACTED:MY_API_KEY]");
        assert_eq!(
            r.redact("a Qw3rTy-u\nb\n7890zz-AbCdEf c"),
            "a [REDACTED:MY_API_KEY]\nb\n[REDACTED:MY_API_KEY] c"
        );
        // Shorter fragments, and fragments not at a line boundary, are ordinary text.
        assert_eq!(r.redact_line("tail Qw3rTy-"), "tail Qw3rTy-");
        assert_eq!(r.redact_line("Qw3rTy-u more"), "Qw3rTy-u more");
        assert_eq!(r.redact_line("more 7890zz-AbCdEf"), "more 7890zz-AbCdEf");
        // In JSON, an escaped line break is a line boundary too.
        assert_eq!(
            r.redact(r#"{"t":"x Qw3rTy-uIo\nNEXT"}"#),
            r#"{"t":"x [REDACTED:MY_API_KEY]\nNEXT"}"#
        );
        // Short values: fragments of len - 3.
        let r = red(&[("SMTP_PASS", "pw9Xk2mQ7z")]);
        assert_eq!(r.redact_line("pass pw9Xk2m"), "pass [REDACTED:SMTP_PASS]");
        assert_eq!(r.redact_line("pass pw9Xk2"), "pass pw9Xk2");
    }
}
