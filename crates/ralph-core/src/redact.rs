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
//!   password of a URL (`scheme://user:pass@host`) count as assignments too. To keep false
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
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Write};
use std::sync::{Arc, LazyLock};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::bytes::Regex;

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

/// A [`StreamRedactor`] holds back a line's end until the next line arrives when the line ends
/// with at least this many bytes of the start of a known value (or of one of its encodings).
const HOLD_MIN: usize = 4;

/// Least number of bytes of an unfinished line a [`StreamRedactor`] holds back: longer than the
/// shortest text any pattern needs to recognise its credential.
const MIN_WINDOW: usize = 512;

/// Upper-case words that make a variable's value a secret when its name contains them.
const NAME_WORDS: &[&str] = &[
    "KEY",
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "CREDENTIAL",
];

/// Upper-case name segments (between `_`, `-` or `.`) that make a variable's value a secret.
const NAME_SEGMENTS: &[&str] = &["PASS", "PWD", "PW"];

/// Last name segments of variables that name *about* a secret, not the secret itself
/// (`GITHUB_TOKEN_FILE`, `SSH_AUTH_SOCK`, `AWS_ACCESS_KEY_ID`, `OAUTH_TOKEN_URL` …).
const NOT_SECRET_LAST_SEGMENTS: &[&str] = &[
    "FILE", "PATH", "DIR", "SOCK", "SOCKET", "HOST", "PORT", "USER", "USERNAME", "NAME", "EMAIL",
    "URL", "ENDPOINT", "ID", "TYPE", "MODE", "METHOD", "PROVIDER", "REGION", "DOMAIN", "ISSUER",
    "AUDIENCE", "SCOPE", "SCOPES", "TIMEOUT", "TTL", "EXPIRY", "LENGTH", "SIZE", "ENABLED",
    "FORMAT", "VERSION", "HELPER", "COMMAND", "CMD",
];

/// Whether the value of the environment variable `name` is treated as a secret.
///
/// Case-insensitive. Yes when the name contains `KEY`, `TOKEN`, `SECRET`, `PASSWORD`, `PASSWD`,
/// `PASSPHRASE`, `CREDENTIAL` or `AUTH` (but not `AUTHOR`: `GIT_AUTHOR_NAME` is not a secret),
/// or has a segment `PASS`, `PWD` or `PW` (`DB_PASS`, `MYSQL_PWD`; not `PWD`/`OLDPWD`, the
/// working directory, nor `GIT_ASKPASS`); no when its last segment says it names something
/// *about* a secret: `_FILE`, `_PATH`, `_DIR`, `_SOCK`, `_URL`, `_ID`, `_HOST`, `_USER`,
/// `_TYPE`, `_TIMEOUT` … (`GITHUB_TOKEN_FILE`, `SSH_AUTH_SOCK`, `AWS_ACCESS_KEY_ID`, whose value
/// the `AKIA…` pattern covers anyway).
pub fn is_secret_name(name: &str) -> bool {
    let up = name.to_ascii_uppercase();
    if up == "PWD" || up == "OLDPWD" {
        return false;
    }
    let segments: Vec<&str> = up
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .collect();
    if segments.len() > 1 {
        if let Some(last) = segments.last() {
            if NOT_SECRET_LAST_SEGMENTS.contains(last) {
                return false;
            }
        }
    }
    let auth = up.contains("AUTH") && (!up.contains("AUTHOR") || up.contains("AUTHORI"));
    auth || NAME_WORDS.iter().any(|w| up.contains(w))
        || segments.iter().any(|s| NAME_SEGMENTS.contains(s))
}

/// What a pattern recognised; [`PatternKind::as_str`] is the `<kind>` in `[REDACTED:<kind>]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PatternKind {
    /// `sk-ant-…`
    AnthropicKey,
    /// `sk-…`, `sk-proj-…`
    OpenaiKey,
    /// `ghp_…`, `gho_…`, `ghu_…`, `ghs_…`, `ghr_…`, `github_pat_…`
    GithubToken,
    /// `AKIA…`, `ASIA…`
    AwsAccessKey,
    /// The value of `aws_secret_access_key = …`
    AwsSecret,
    /// `xoxb-…`, `xoxp-…` …
    SlackToken,
    /// `AIza…`
    GoogleApiKey,
    /// `eyJ….eyJ….…`
    Jwt,
    /// `-----BEGIN … PRIVATE KEY-----` through its END line.
    PrivateKey,
    /// A high-entropy value assigned to a password, secret, token or key (the key is kept);
    /// also bearer tokens, basic credentials and URL passwords.
    SecretAssignment,
}

impl PatternKind {
    /// Every kind.
    pub const ALL: [PatternKind; 10] = [
        PatternKind::AnthropicKey,
        PatternKind::OpenaiKey,
        PatternKind::GithubToken,
        PatternKind::AwsAccessKey,
        PatternKind::AwsSecret,
        PatternKind::SlackToken,
        PatternKind::GoogleApiKey,
        PatternKind::Jwt,
        PatternKind::PrivateKey,
        PatternKind::SecretAssignment,
    ];

    /// The name used in the replacement text.
    pub fn as_str(self) -> &'static str {
        match self {
            PatternKind::AnthropicKey => "anthropic_key",
            PatternKind::OpenaiKey => "openai_key",
            PatternKind::GithubToken => "github_token",
            PatternKind::AwsAccessKey => "aws_access_key",
            PatternKind::AwsSecret => "aws_secret",
            PatternKind::SlackToken => "slack_token",
            PatternKind::GoogleApiKey => "google_api_key",
            PatternKind::Jwt => "jwt",
            PatternKind::PrivateKey => "private_key",
            PatternKind::SecretAssignment => "secret_assignment",
        }
    }
}

impl fmt::Display for PatternKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Patterns
// ---------------------------------------------------------------------------------------------

/// A pattern rule: what is matched where a trigger was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    Anthropic,
    OpenAi,
    GithubClassic,
    GithubPat,
    AwsAccess,
    AwsSecret,
    Slack,
    Google,
    Jwt,
    PrivateKey,
    Assignment,
    Bearer,
    Authorization,
    UrlPassword,
}

/// How a rule continues past a [`StreamRedactor`]'s memory cap (what to keep dropping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cont {
    /// `[A-Za-z0-9_-]`
    Token,
    /// `[A-Za-z0-9._~+/=-]`
    Base64ish,
    /// Anything but whitespace, quotes, backslash, `,` and `;`.
    Value,
    /// PEM body: base64, whitespace and escaped line breaks.
    PemBody,
}

impl Cont {
    fn accepts(self, b: u8) -> bool {
        match self {
            Cont::Token => b.is_ascii_alphanumeric() || b == b'_' || b == b'-',
            Cont::Base64ish => {
                b.is_ascii_alphanumeric()
                    || matches!(b, b'.' | b'_' | b'~' | b'+' | b'/' | b'=' | b'-')
            }
            Cont::Value => b > b' ' && !matches!(b, b'"' | b'\'' | b'\\' | b'`' | b',' | b';'),
            Cont::PemBody => {
                b.is_ascii_alphanumeric()
                    || matches!(b, b'+' | b'/' | b'=' | b'\\' | b'\r' | b'\n' | b' ' | b'\t')
            }
        }
    }
}

struct RuleSpec {
    rule: Rule,
    kind: PatternKind,
    /// Anchored at the trigger (`\A`); byte semantics (`(?-u)`).
    pattern: &'static str,
    /// The capture group redacted (0: the whole match).
    group: usize,
    /// The byte before the match must not be alphanumeric (escapes such as `\n` excepted).
    left_boundary: bool,
    cont: Cont,
}

const SEP: &str = r"(?:\\{0,3}[\x22'])?[ \t]*(?:=>|:=|==|=|:)[ \t]*(?:\\{0,3}[\x22'])?";

static RULE_SPECS: LazyLock<Vec<RuleSpec>> = LazyLock::new(|| {
    let assignment = format!(
        r"(?-u)\A(?i:password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)[A-Za-z0-9_.-]{{0,32}}{SEP}([^\x00-\x20\x22'\\`,;]{{12,}})"
    );
    let aws_secret = format!(
        r"(?-u)\A(?i:aws[_-]?secret[_-]?access[_-]?key)[A-Za-z0-9_.-]{{0,16}}{SEP}([A-Za-z0-9/+=]{{40}})"
    );
    let pem_sep = r"(?:\r?\n|\\{1,3}[rn]|[ \t])";
    let private_key = format!(
        r"(?-u)\A-----BEGIN[ A-Z0-9]{{0,40}}PRIVATE KEY(?: BLOCK)?-----(?:{pem_sep}+(?:[A-Za-z-]{{1,32}}:[ \t][^\r\n\\]{{0,200}}|(?:[A-Za-z0-9+/=]|\\{{1,3}}/)+))*(?:{pem_sep}*-----END[ A-Z0-9]{{0,40}}PRIVATE KEY(?: BLOCK)?-----)?"
    );
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    vec![
        RuleSpec {
            rule: Rule::Anthropic,
            kind: PatternKind::AnthropicKey,
            pattern: r"(?-u)\Ask-ant-[A-Za-z0-9_-]{20,}",
            group: 0,
            left_boundary: true,
            cont: Cont::Token,
        },
        RuleSpec {
            rule: Rule::OpenAi,
            kind: PatternKind::OpenaiKey,
            pattern: r"(?-u)\Ask-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
            group: 0,
            left_boundary: true,
            cont: Cont::Token,
        },
        RuleSpec {
            rule: Rule::GithubClassic,
            kind: PatternKind::GithubToken,
            pattern: r"(?-u)\Agh[pousr]_[A-Za-z0-9]{30,}",
            group: 0,
            left_boundary: true,
            cont: Cont::Token,
        },
        RuleSpec {
            rule: Rule::GithubPat,
            kind: PatternKind::GithubToken,
            pattern: r"(?-u)\Agithub_pat_[A-Za-z0-9_]{40,}",
            group: 0,
            left_boundary: true,
            cont: Cont::Token,
        },
        RuleSpec {
            rule: Rule::AwsAccess,
            kind: PatternKind::AwsAccessKey,
            pattern: r"(?-u)\A(?:AKIA|ASIA)[0-9A-Z]{16}",
            group: 0,
            left_boundary: true,
            cont: Cont::Token,
        },
        RuleSpec {
            rule: Rule::AwsSecret,
            kind: PatternKind::AwsSecret,
            pattern: leak(aws_secret),
            group: 1,
            left_boundary: false,
            cont: Cont::Base64ish,
        },
        RuleSpec {
            rule: Rule::Slack,
            kind: PatternKind::SlackToken,
            pattern: r"(?-u)\Axox[baprs]-[A-Za-z0-9-]{10,}",
            group: 0,
            left_boundary: true,
            cont: Cont::Token,
        },
        RuleSpec {
            rule: Rule::Google,
            kind: PatternKind::GoogleApiKey,
            pattern: r"(?-u)\AAIza[0-9A-Za-z_-]{35}",
            group: 0,
            left_boundary: true,
            cont: Cont::Token,
        },
        RuleSpec {
            rule: Rule::Jwt,
            kind: PatternKind::Jwt,
            pattern: r"(?-u)\AeyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
            group: 0,
            left_boundary: false,
            cont: Cont::Token,
        },
        RuleSpec {
            rule: Rule::PrivateKey,
            kind: PatternKind::PrivateKey,
            pattern: leak(private_key),
            group: 0,
            left_boundary: false,
            cont: Cont::PemBody,
        },
        RuleSpec {
            rule: Rule::Assignment,
            kind: PatternKind::SecretAssignment,
            pattern: leak(assignment),
            group: 1,
            left_boundary: false,
            cont: Cont::Value,
        },
        RuleSpec {
            rule: Rule::Bearer,
            kind: PatternKind::SecretAssignment,
            pattern: r"(?-u)\A(?i:bearer)[ \t]+([A-Za-z0-9._~+/-]{16,}=*)",
            group: 1,
            left_boundary: false,
            cont: Cont::Base64ish,
        },
        RuleSpec {
            rule: Rule::Authorization,
            kind: PatternKind::SecretAssignment,
            pattern: r"(?-u)\A(?i:authorization)(?:\\{0,3}[\x22'])?[ \t]*[:=][ \t]*(?:\\{0,3}[\x22'])?(?i:basic|token|bot|bearer)[ \t]+([A-Za-z0-9._~+/-]{8,}=*)",
            group: 1,
            left_boundary: false,
            cont: Cont::Base64ish,
        },
        RuleSpec {
            rule: Rule::UrlPassword,
            kind: PatternKind::SecretAssignment,
            pattern: r"(?-u)\A://[^\x00-\x20:/@\x22'\\]{1,128}:([^\x00-\x20/@\x22'\\]{3,128})@",
            group: 1,
            left_boundary: false,
            cont: Cont::Value,
        },
    ]
});

/// Literal triggers (matched ASCII case-insensitively, overlapping) and the rules tried, in
/// order, where they occur.
const TRIGGERS: &[(&str, &[Rule])] = &[
    ("sk-", &[Rule::Anthropic, Rule::OpenAi]),
    ("ghp_", &[Rule::GithubClassic]),
    ("gho_", &[Rule::GithubClassic]),
    ("ghu_", &[Rule::GithubClassic]),
    ("ghs_", &[Rule::GithubClassic]),
    ("ghr_", &[Rule::GithubClassic]),
    ("github_pat_", &[Rule::GithubPat]),
    ("akia", &[Rule::AwsAccess]),
    ("asia", &[Rule::AwsAccess]),
    ("aws_secret", &[Rule::AwsSecret]),
    ("aws-secret", &[Rule::AwsSecret]),
    ("awssecret", &[Rule::AwsSecret]),
    ("xox", &[Rule::Slack]),
    ("aiza", &[Rule::Google]),
    ("eyj", &[Rule::Jwt]),
    ("-----begin", &[Rule::PrivateKey]),
    ("password", &[Rule::Assignment]),
    ("passwd", &[Rule::Assignment]),
    ("secret", &[Rule::Assignment]),
    ("token", &[Rule::Assignment]),
    ("api_key", &[Rule::Assignment]),
    ("api-key", &[Rule::Assignment]),
    ("apikey", &[Rule::Assignment]),
    ("access_key", &[Rule::Assignment]),
    ("access-key", &[Rule::Assignment]),
    ("accesskey", &[Rule::Assignment]),
    ("private_key", &[Rule::Assignment]),
    ("private-key", &[Rule::Assignment]),
    ("privatekey", &[Rule::Assignment]),
    ("credential", &[Rule::Assignment]),
    ("bearer", &[Rule::Bearer]),
    ("authorization", &[Rule::Authorization]),
    ("://", &[Rule::UrlPassword]),
];

struct CompiledRule {
    kind: PatternKind,
    regex: Regex,
    group: usize,
    left_boundary: bool,
    cont: Cont,
}

struct Patterns {
    /// Indexed by [`Rule`] as usize; `None` for a pattern that failed to compile (a unit test
    /// asserts none does).
    rules: Vec<Option<CompiledRule>>,
}

static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| {
    let specs = &*RULE_SPECS;
    let mut rules: Vec<Option<CompiledRule>> = Vec::new();
    for spec in specs {
        let idx = spec.rule as usize;
        if rules.len() <= idx {
            rules.resize_with(idx + 1, || None);
        }
        rules[idx] = Regex::new(spec.pattern).ok().map(|regex| CompiledRule {
            kind: spec.kind,
            regex,
            group: spec.group,
            left_boundary: spec.left_boundary,
            cont: spec.cont,
        });
    }
    Patterns { rules }
});

/// The scanner for the triggers alone (shared by every redactor without short known values).
static TRIGGER_SCAN: LazyLock<Option<AhoCorasick>> =
    LazyLock::new(|| build_scan(std::iter::empty()));

/// One automaton for the triggers (case-insensitive) followed by `extra` literals (verified
/// exactly by the caller), reporting overlapping matches: a DFA, since this pass reads every
/// byte.
fn build_scan<'a>(extra: impl Iterator<Item = &'a [u8]>) -> Option<AhoCorasick> {
    let patterns: Vec<&[u8]> = TRIGGERS
        .iter()
        .map(|(t, _)| t.as_bytes())
        .chain(extra)
        .collect();
    AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .ascii_case_insensitive(true)
        .kind(Some(AhoCorasickKind::DFA))
        .prefilter(false)
        .build(patterns)
        .ok()
}

// ---------------------------------------------------------------------------------------------
// Known values
// ---------------------------------------------------------------------------------------------

const B64_STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 without padding.
fn base64_encode(data: &[u8], alphabet: &[u8; 64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize]);
        }
    }
    out
}

/// The base64 characters determined by `value` alone when it starts `offset` (0..3) bytes into
/// a base64 stream, and whether a partial character precedes/follows them.
fn base64_core(value: &[u8], offset: usize, alphabet: &[u8; 64]) -> (Vec<u8>, bool, bool) {
    let mut buf = vec![0u8; offset];
    buf.extend_from_slice(value);
    buf.extend_from_slice(&[0, 0]);
    let enc = base64_encode(&buf, alphabet);
    let start_bits = 8 * offset;
    let end_bits = 8 * (offset + value.len());
    let first = start_bits.div_ceil(6);
    let last = end_bits / 6;
    let core = enc.get(first..last).map(<[u8]>::to_vec).unwrap_or_default();
    (
        core,
        !start_bits.is_multiple_of(6),
        !end_bits.is_multiple_of(6),
    )
}

/// The value as `JSON.stringify`/serde_json write it inside a string (without the quotes).
fn json_escape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 8);
    for &b in raw {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

fn is_b64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

#[derive(Debug)]
struct Needle {
    bytes: Vec<u8>,
    secret: u32,
    /// A base64 form: extend a match over a partial character before/after it and `=` padding.
    lead_partial: bool,
    trail_partial: bool,
    base64: bool,
    /// Fragment length for the line-boundary rule.
    frag: usize,
}

fn fragment_len(len: usize) -> usize {
    len.saturating_sub(3).clamp(5, FRAGMENT_MIN)
}

/// Cheap hasher for the fragment map's `u64` keys (keys are packed bytes, not attacker-chosen
/// in a way that matters: a collision only costs a comparison).
#[derive(Default)]
struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FragMap = HashMap<u64, Vec<(u32, u32)>, BuildHasherDefault<FastHasher>>;

fn pack(bytes: &[u8]) -> u64 {
    let mut k = [0u8; 8];
    let n = bytes.len().min(8);
    k[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(k)
}

/// Known values at least this long are found by sampling (see [`Inner::grams`]); shorter ones
/// by the scanning automaton.
const LONG_NEEDLE: usize = 24;
/// Sampling stride: every needle of [`LONG_NEEDLE`] bytes or more has a whole 8-byte window
/// starting at a multiple of it.
const STRIDE: usize = LONG_NEEDLE - 8 + 1;
const BLOOM_BITS: u32 = 16;

struct Inner {
    names: Vec<String>,
    needles: Vec<Needle>,
    /// Triggers, then the short needles (pattern `TRIGGERS.len() + i` is needle `short[i]`).
    scan: Option<AhoCorasick>,
    short: Vec<u32>,
    /// Every 8-byte window of every long needle → (needle, offset); probed every [`STRIDE`]
    /// bytes, behind a bloom filter of the windows.
    grams: FragMap,
    bloom: Vec<u64>,
    /// For each fragment length 5..=8 (index `len - 5`): every window of that length of every
    /// needle using it → (needle, offset).
    frags: [FragMap; 4],
    /// Every [`HOLD_MIN`]-byte window of every needle.
    quads: HashSet<u64, BuildHasherDefault<FastHasher>>,
    max_needle: usize,
}

fn bloom_index(gram: u64) -> usize {
    (gram.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - BLOOM_BITS)) as usize
}

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
    pub fn new(known: impl IntoIterator<Item = (String, String)>) -> Redactor {
        let mut pairs: Vec<(String, String)> = known
            .into_iter()
            .filter(|(name, value)| is_secret_name(name) && value.len() >= MIN_KNOWN_LEN)
            .collect();
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

    fn from_secrets(pairs: Vec<(String, String)>) -> Redactor {
        let mut names: Vec<String> = Vec::new();
        let mut needles: Vec<Needle> = Vec::new();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        for (name, value) in pairs {
            let mut cut = value.len().min(MAX_KNOWN_LEN);
            while !value.is_char_boundary(cut) {
                cut -= 1;
            }
            let raw = value.as_bytes()[..cut].to_vec();
            let secret = names.len() as u32;
            let mut added = false;
            let mut add = |bytes: Vec<u8>, lead: bool, trail: bool, base64: bool| {
                if bytes.len() < MIN_KNOWN_LEN || !seen.insert(bytes.clone()) {
                    return;
                }
                let frag = fragment_len(bytes.len());
                needles.push(Needle {
                    bytes,
                    secret,
                    lead_partial: lead,
                    trail_partial: trail,
                    base64,
                    frag,
                });
                added = true;
            };
            // The view decodes escapes and drops line breaks: match the value as the view shows
            // it, and as is (for text the view leaves alone).
            let viewed = View::build(&raw).bytes.into_owned();
            if viewed != raw {
                add(viewed, false, false, false);
            }
            // The view decodes one level of escapes: JSON inside a JSON string still shows the
            // value escaped once.
            let escaped = json_escape(&raw);
            if escaped != raw {
                add(escaped, false, false, false);
            }
            if raw.contains(&b' ') {
                let plus: Vec<u8> = raw
                    .iter()
                    .map(|&b| if b == b' ' { b'+' } else { b })
                    .collect();
                add(plus, false, false, false);
            }
            add(raw.clone(), false, false, false);
            for alphabet in [B64_STD, B64_URL] {
                for offset in 0..3 {
                    let (core, lead, trail) = base64_core(&raw, offset, alphabet);
                    add(core, lead, trail, true);
                }
            }
            if added {
                names.push(name);
            }
        }
        let short: Vec<u32> = (0..needles.len() as u32)
            .filter(|&i| needles[i as usize].bytes.len() < LONG_NEEDLE)
            .collect();
        let scan = if short.is_empty() {
            TRIGGER_SCAN.clone()
        } else {
            build_scan(short.iter().map(|&i| needles[i as usize].bytes.as_slice()))
        };
        let mut grams = FragMap::default();
        let mut bloom = Vec::new();
        for (i, n) in needles.iter().enumerate() {
            if n.bytes.len() < LONG_NEEDLE {
                continue;
            }
            if bloom.is_empty() {
                bloom = vec![0u64; (1 << BLOOM_BITS) / 64];
            }
            for off in 0..=(n.bytes.len() - 8) {
                let g = pack(&n.bytes[off..off + 8]);
                let b = bloom_index(g);
                bloom[b / 64] |= 1 << (b % 64);
                grams.entry(g).or_default().push((i as u32, off as u32));
            }
        }
        let mut frags: [FragMap; 4] = Default::default();
        for (i, n) in needles.iter().enumerate() {
            let f = n.frag;
            let map = &mut frags[f - 5];
            for off in 0..=(n.bytes.len() - f) {
                map.entry(pack(&n.bytes[off..off + f]))
                    .or_default()
                    .push((i as u32, off as u32));
            }
        }
        let quads = needles
            .iter()
            .flat_map(|n| n.bytes.windows(HOLD_MIN).map(pack))
            .collect();
        let max_needle = needles.iter().map(|n| n.bytes.len()).max().unwrap_or(0);
        Redactor {
            inner: Arc::new(Inner {
                names,
                needles,
                scan,
                short,
                grams,
                bloom,
                frags,
                quads,
                max_needle,
            }),
        }
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

    /// The long needles whose window `g` is at view offset `p`.
    #[cold]
    fn probe(&self, view: &View<'_>, p: usize, g: u64, hits: &mut Vec<Hit>) {
        let inner = &*self.inner;
        let v: &[u8] = &view.bytes;
        let Some(cands) = inner.grams.get(&g) else {
            return;
        };
        for &(ni, off) in cands {
            let Some(n) = inner.needles.get(ni as usize) else {
                continue;
            };
            let Some(s) = p.checked_sub(off as usize) else {
                continue;
            };
            let e = s + n.bytes.len();
            if e <= v.len() && v[s..e] == n.bytes {
                let dup = hits.last().is_some_and(|h: &Hit| {
                    h.label == Label::Known(n.secret) && h.start == view.map_start(s)
                });
                if !dup {
                    self.push_known(view, ni, s, e, hits);
                }
            }
        }
    }

    /// A known needle at view offsets `s..e`, extended over the partial base64 characters
    /// and padding around it.
    fn push_known(&self, view: &View<'_>, ni: u32, s: usize, e: usize, hits: &mut Vec<Hit>) {
        let Some(n) = self.inner.needles.get(ni as usize) else {
            return;
        };
        let v: &[u8] = &view.bytes;
        let (mut s, mut e) = (s, e);
        if n.base64 {
            if n.lead_partial && s > 0 && is_b64_byte(v[s - 1]) {
                s -= 1;
            }
            if n.trail_partial && e < v.len() && is_b64_byte(v[e]) {
                e += 1;
            }
            let mut pad = 0;
            while pad < 2 && e < v.len() && v[e] == b'=' {
                e += 1;
                pad += 1;
            }
        }
        hits.push(Hit {
            start: view.map_start(s),
            end: view.map_end(e),
            label: Label::Known(n.secret),
            cont: None,
        });
    }

    /// Fragments of known values ending or starting at view offset `b` (a line boundary).
    fn fragments_at(&self, view: &View<'_>, b: usize, hits: &mut Vec<Hit>) {
        let inner = &*self.inner;
        let v: &[u8] = &view.bytes;
        for (fi, map) in inner.frags.iter().enumerate() {
            if map.is_empty() {
                continue;
            }
            let f = fi + 5;
            // A prefix of a needle ending at b.
            if b >= f {
                if let Some(cands) = map.get(&pack(&v[b - f..b])) {
                    for &(ni, off) in cands {
                        let Some(n) = inner.needles.get(ni as usize) else {
                            continue;
                        };
                        let k = off as usize + f;
                        if k <= b && v[b - k..b] == n.bytes[..k] {
                            hits.push(Hit {
                                start: view.map_start(b - k),
                                end: view.map_end(b),
                                label: Label::Known(n.secret),
                                cont: None,
                            });
                        }
                    }
                }
            }
            // A suffix of a needle starting at b.
            if b + f <= v.len() {
                if let Some(cands) = map.get(&pack(&v[b..b + f])) {
                    for &(ni, off) in cands {
                        let Some(n) = inner.needles.get(ni as usize) else {
                            continue;
                        };
                        let rest = &n.bytes[off as usize..];
                        if v.len() - b >= rest.len() && &v[b..b + rest.len()] == rest {
                            hits.push(Hit {
                                start: view.map_start(b),
                                end: view.map_end(b + rest.len()),
                                label: Label::Known(n.secret),
                                cont: None,
                            });
                        }
                    }
                }
            }
        }
    }

    /// The view offset where the longest (≥ [`HOLD_MIN`]) suffix of `v[..b]` that is a proper
    /// prefix of a needle starts.
    fn needle_prefix_before(&self, v: &[u8], b: usize) -> Option<usize> {
        // Such a prefix ends with 4 bytes of some needle: most lines end otherwise.
        let last4 = v.get(b.checked_sub(HOLD_MIN)?..b)?;
        if !self.inner.quads.contains(&pack(last4)) {
            return None;
        }
        let mut best: Option<usize> = None;
        for n in &self.inner.needles {
            let maxk = (n.bytes.len() - 1).min(b);
            if maxk < HOLD_MIN {
                continue;
            }
            let window = &v[b - maxk..b];
            let first = n.bytes[0];
            for s in memchr::memchr_iter(first, &window[..=maxk - HOLD_MIN]) {
                let k = maxk - s;
                if window[s..] == n.bytes[..k] {
                    let at = b - k;
                    best = Some(best.map_or(at, |x: usize| x.min(at)));
                    break;
                }
            }
        }
        best
    }

    /// Bytes of an unfinished line a [`StreamRedactor`] holds back.
    fn window(&self) -> usize {
        MIN_WINDOW.max(self.inner.max_needle + 4)
    }
}

fn left_boundary_ok(text: &[u8], p: usize) -> bool {
    if p == 0 || !text[p - 1].is_ascii_alphanumeric() {
        return true;
    }
    // An escape before the token: `\n`, `\\n`, `\u0022`, `%22`.
    if p >= 2 && text[p - 2] == b'\\' {
        return true;
    }
    if p >= 6 && text[p - 6] == b'\\' && text[p - 5] == b'u' {
        return text[p - 4..p].iter().all(u8::is_ascii_hexdigit);
    }
    p >= 3 && text[p - 3] == b'%' && text[p - 2..p].iter().all(u8::is_ascii_hexdigit)
}

/// Tries the rules of trigger `trigger` at `p` in the original text.
fn try_rules(text: &[u8], trigger: usize, p: usize, hits: &mut Vec<Hit>) {
    let Some((_, rules)) = TRIGGERS.get(trigger) else {
        return;
    };
    let patterns = &*PATTERNS;
    for &rule in *rules {
        let Some(Some(cr)) = patterns.rules.get(rule as usize) else {
            continue;
        };
        if cr.left_boundary && !left_boundary_ok(text, p) {
            continue;
        }
        let hay = &text[p..];
        // Capturing is slow: rule out most keyword and URL hits cheaply first.
        let plausible = match rule {
            Rule::Assignment => assignment_precheck(hay, TRIGGERS[trigger].0.len()),
            Rule::UrlPassword => url_password_precheck(hay),
            _ => true,
        };
        if !plausible {
            continue;
        }
        let range = if cr.group == 0 {
            cr.regex.find(hay).map(|m| (m.start(), m.end()))
        } else {
            cr.regex
                .captures(hay)
                .and_then(|c| c.get(cr.group))
                .map(|m| (m.start(), m.end()))
        };
        let Some((s, e)) = range else {
            continue;
        };
        let Some((s, e)) = accept(rule, hay, s, e) else {
            continue;
        };
        hits.push(Hit {
            start: p + s,
            end: p + e,
            label: Label::Kind(cr.kind),
            cont: Some(cr.cont),
        });
        return;
    }
}

/// Whether `hay` (starting with a keyword of `kw` bytes) can match the assignment rule: looser
/// than the regex, which decides.
fn assignment_precheck(hay: &[u8], kw: usize) -> bool {
    let at = |i: usize| hay.get(i).copied().unwrap_or(0);
    let mut i = kw;
    while i < hay.len()
        && i - kw <= 32
        && (at(i).is_ascii_alphanumeric() || matches!(at(i), b'_' | b'.' | b'-'))
    {
        i += 1;
    }
    while at(i) == b'\\' || at(i) == b'"' || at(i) == b'\'' || at(i) == b' ' || at(i) == b'\t' {
        i += 1;
    }
    if !matches!(at(i), b'=' | b':') {
        return false;
    }
    i += 1;
    while matches!(at(i), b'=' | b'>' | b' ' | b'\t' | b'\\' | b'"' | b'\'') {
        i += 1;
    }
    let rest = &hay[i.min(hay.len())..];
    let mut run = &rest[..rest.iter().take_while(|&&b| Cont::Value.accepts(b)).count()];
    // As `accept` and `plausible_assignment` will: trailing punctuation trimmed, code rejected.
    while let [head @ .., b'.' | b')' | b']' | b'}'] = run {
        run = head;
    }
    run.len() >= 12
        && !run
            .iter()
            .any(|&b| matches!(b, b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'<' | b'>'))
}

/// Whether `hay` (starting with `://`) has a userinfo with a password.
fn url_password_precheck(hay: &[u8]) -> bool {
    let rest = &hay[3.min(hay.len())..];
    let stop = rest
        .iter()
        .take(260)
        .position(|&b| matches!(b, b'/' | b'@' | b'"' | b'\'' | b'\\') || b <= b' ');
    matches!(stop.and_then(|i| rest.get(i)), Some(b'@'))
}

/// Rule-specific checks on a regex match `hay[s..e]`; the span to redact.
fn accept(rule: Rule, hay: &[u8], s: usize, e: usize) -> Option<(usize, usize)> {
    let value = &hay[s..e];
    match rule {
        Rule::OpenAi => {
            let body = &value[3..];
            let classes = [
                body.iter().any(u8::is_ascii_uppercase),
                body.iter().any(u8::is_ascii_lowercase),
                body.iter().any(u8::is_ascii_digit),
            ];
            (classes.iter().filter(|c| **c).count() >= 2).then_some((s, e))
        }
        Rule::AwsAccess => {
            let next_ok = hay.get(e).is_none_or(|b| !b.is_ascii_alphanumeric());
            next_ok.then_some((s, e))
        }
        Rule::AwsSecret => {
            let next_ok = hay
                .get(e)
                .is_none_or(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+' | b'=')));
            next_ok.then_some((s, e))
        }
        Rule::Assignment => {
            let mut e = e;
            while e > s && matches!(hay[e - 1], b'.' | b')' | b']' | b'}') {
                e -= 1;
            }
            plausible_assignment(&hay[s..e]).then_some((s, e))
        }
        Rule::Bearer => {
            let v = value;
            (v.iter().any(u8::is_ascii_digit) && !v.starts_with(b"[REDACTED")).then_some((s, e))
        }
        Rule::UrlPassword => {
            let v = value;
            const WORDS: &[&[u8]] = &[
                b"password",
                b"passwd",
                b"pass",
                b"pwd",
                b"pw",
                b"secret",
                b"changeme",
                b"example",
                b"test",
            ];
            let lower = v.to_ascii_lowercase();
            let placeholder = v.starts_with(b"$")
                || v.starts_with(b"{")
                || v.starts_with(b"<")
                || v.starts_with(b"[REDACTED")
                || v.iter().all(|&b| b == b'*' || b == b'x' || b == b'X')
                || v.iter().all(u8::is_ascii_digit)
                || WORDS.contains(&lower.as_slice());
            (!placeholder).then_some((s, e))
        }
        _ => Some((s, e)),
    }
}

/// Shannon entropy of `bytes`, in bits per byte.
pub fn shannon_entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Whether an assignment's value looks like a real secret (see the module docs).
fn plausible_assignment(v: &[u8]) -> bool {
    if v.len() < 12 {
        return false;
    }
    if v.starts_with(b"[REDACTED")
        || matches!(v[0], b'$' | b'%' | b'{' | b'<' | b'=' | b'*' | b'&' | b':')
    {
        return false;
    }
    if word_like(v) {
        return false;
    }
    // Hex only: git SHAs, checksums, UUIDs.
    if v.iter().all(|&b| b.is_ascii_hexdigit() || b == b'-') {
        return false;
    }
    // Identifiers and words.
    if !v.iter().any(u8::is_ascii_digit)
        && v.iter()
            .all(|&b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'.' | b'-'))
    {
        return false;
    }
    // Code.
    if v.iter()
        .any(|&b| matches!(b, b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'<' | b'>'))
        || contains(v, b"::")
        || contains(v, b"->")
        || contains(v, b"://")
    {
        return false;
    }
    // Paths.
    let pathy = v.starts_with(b"/")
        || v.starts_with(b"./")
        || v.starts_with(b"../")
        || v.starts_with(b"~/");
    if pathy
        && v.iter().filter(|&&b| b == b'/').count() >= 2
        && v.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-' | b'~'))
    {
        return false;
    }
    let lower = v.to_ascii_lowercase();
    const PLACEHOLDERS: &[&[u8]] = &[
        b"xxxx",
        b"****",
        b"....",
        b"example",
        b"placeholder",
        b"changeme",
        b"your_",
        b"your-",
        b"redacted",
    ];
    if PLACEHOLDERS.iter().any(|p| contains(&lower, p)) {
        return false;
    }
    let threshold = (v.len() as f64).log2().min(4.0) - 0.5;
    shannon_entropy(v) >= threshold.min(3.5)
}

/// Whether `v` reads as identifiers or words rather than random characters: its letter and
/// digit runs (a capital starting a lower-case run counts with it) average 3 characters or
/// more, and it has separators (`_`, `-`, `.`) or capitals to mark them:
/// `DOT11_WPS_PASSWORD_ID`, `MsV1_0ChangePassword`, `quote_spanned!`, `scram-sha-256`. Random
/// strings average under 2 (`Ov8GZ4fKq1OKtbgZVaMWUFuX`: 1.7); random lower-case-and-digit
/// strings average about 2.5 but have neither separators nor capitals.
fn word_like(v: &[u8]) -> bool {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Class {
        Upper,
        Lower,
        Digit,
    }
    let (mut chars, mut runs, mut marked) = (0usize, 0usize, false);
    let mut prev: Option<(Class, usize)> = None;
    for &b in v {
        let class = if b.is_ascii_uppercase() {
            Class::Upper
        } else if b.is_ascii_lowercase() {
            Class::Lower
        } else if b.is_ascii_digit() {
            Class::Digit
        } else {
            marked |= matches!(b, b'_' | b'-' | b'.');
            prev = None;
            continue;
        };
        marked |= class == Class::Upper;
        chars += 1;
        prev = match prev {
            Some((c, n)) if c == class => Some((c, n + 1)),
            Some((Class::Upper, 1)) if class == Class::Lower => Some((Class::Lower, 2)),
            _ => {
                runs += 1;
                Some((class, 1))
            }
        };
    }
    marked && runs > 0 && chars >= 3 * runs
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
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

// ---------------------------------------------------------------------------------------------
// The view: escapes decoded, line breaks dropped
// ---------------------------------------------------------------------------------------------

/// A replaced run of the original text: `olen` bytes at `o` became `vlen` bytes at `v`.
#[derive(Clone, Copy, Debug)]
struct Esc {
    v: usize,
    o: usize,
    vlen: usize,
    olen: usize,
}

/// The text as the known-value matcher sees it: JSON escapes (`\"`, `\\`, `\/`, `\uXXXX`) and
/// URL escapes (`%XX` of a non-alphanumeric byte) decoded; real and escaped line breaks removed,
/// their positions kept as line boundaries; with a map back to the original offsets.
struct View<'a> {
    bytes: Cow<'a, [u8]>,
    escapes: Vec<Esc>,
    /// View offsets of line boundaries, increasing, without duplicates.
    breaks: Vec<usize>,
}

fn hex_val(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

fn hex4(text: &[u8], at: usize) -> Option<u32> {
    let h = text.get(at..at + 4)?;
    h.iter()
        .try_fold(0u32, |acc, &b| Some((acc << 4) | hex_val(b)?))
}

/// Finds the bytes the view treats specially: `\\`, `%`, `\n` and `\r` (the last one searched
/// separately and remembered, as it is usually absent).
struct Specials<'a> {
    text: &'a [u8],
    next_cr: usize,
}

impl<'a> Specials<'a> {
    fn new(text: &'a [u8]) -> Self {
        let next_cr = memchr::memchr(b'\r', text).unwrap_or(text.len());
        Specials { text, next_cr }
    }

    fn next(&mut self, from: usize) -> usize {
        let text = self.text;
        if self.next_cr < from {
            self.next_cr = memchr::memchr(b'\r', &text[from..]).map_or(text.len(), |x| from + x);
        }
        let end = self.next_cr.min(text.len());
        match memchr::memchr3(b'\\', b'%', b'\n', &text[from..end]) {
            Some(x) => from + x,
            None => end,
        }
    }
}

impl<'a> View<'a> {
    fn build(text: &'a [u8]) -> View<'a> {
        let mut specials = Specials::new(text);
        let first = specials.next(0);
        if first == text.len() {
            return View {
                bytes: Cow::Borrowed(text),
                escapes: Vec::new(),
                breaks: Vec::new(),
            };
        }
        let mut out: Vec<u8> = Vec::with_capacity(text.len());
        let mut escapes: Vec<Esc> = Vec::new();
        let mut breaks: Vec<usize> = Vec::new();
        let mut i = 0;
        let mut j = first;
        loop {
            out.extend_from_slice(&text[i..j]);
            if j >= text.len() {
                break;
            }
            let b = text[j];
            // (consumed original bytes, decoded bytes, is a line break)
            let mut decoded = [0u8; 4];
            let (olen, vlen, is_break) = match b {
                b'\n' | b'\r' => (1, 0, true),
                b'\\' => {
                    let run = text[j..].iter().take_while(|&&c| c == b'\\').count();
                    let next = text.get(j + run);
                    if run % 2 == 0 && matches!(next, Some(b'n' | b'r')) {
                        // `\\n`: a line break escaped twice (JSON inside a JSON string).
                        (run + 1, 0, true)
                    } else if run >= 2 {
                        // `\\`: one backslash.
                        decoded[0] = b'\\';
                        (2, 1, false)
                    } else {
                        match next {
                            Some(b'n' | b'r') => (2, 0, true),
                            Some(&c @ (b'/' | b'"' | b'\'')) => {
                                decoded[0] = c;
                                (2, 1, false)
                            }
                            Some(b'u') => match decode_u(text, j + 1) {
                                Some((ch, used)) => {
                                    let s = ch.encode_utf8(&mut decoded).len();
                                    (1 + used, s, false)
                                }
                                None => (1, 1, false),
                            },
                            _ => (1, 1, false),
                        }
                    }
                }
                b'%' => {
                    let v = text
                        .get(j + 1..j + 3)
                        .and_then(|h| Some(hex_val(h[0])? * 16 + hex_val(h[1])?));
                    match v {
                        Some(v) if !(v as u8).is_ascii_alphanumeric() => {
                            decoded[0] = v as u8;
                            (3, 1, false)
                        }
                        _ => (1, 1, false),
                    }
                }
                _ => (1, 1, false),
            };
            if olen == 1 && vlen == 1 && !is_break && decoded[0] == 0 {
                // Not an escape after all: the byte stands for itself.
                out.push(b);
            } else {
                let v = out.len();
                match escapes.last_mut() {
                    // Merge runs of line breaks.
                    Some(last)
                        if is_break && last.vlen == 0 && last.v == v && last.o + last.olen == j =>
                    {
                        last.olen += olen;
                    }
                    _ => escapes.push(Esc {
                        v,
                        o: j,
                        vlen,
                        olen,
                    }),
                }
                out.extend_from_slice(&decoded[..vlen]);
                if is_break && breaks.last() != Some(&v) {
                    breaks.push(v);
                }
            }
            i = j + olen;
            j = specials.next(i);
        }
        View {
            bytes: Cow::Owned(out),
            escapes,
            breaks,
        }
    }

    /// Original offset of the view byte at `p` (or of the end, for `p == len`).
    fn map_start(&self, p: usize) -> usize {
        let idx = self.escapes.partition_point(|e| e.v <= p);
        match idx.checked_sub(1).and_then(|i| self.escapes.get(i)) {
            None => p,
            Some(e) if e.vlen > 0 && p < e.v + e.vlen => e.o,
            Some(e) => e.o + e.olen + (p - (e.v + e.vlen)),
        }
    }

    /// Original offset just after the view byte at `q - 1`.
    fn map_end(&self, q: usize) -> usize {
        if q == 0 {
            return self.map_start(0);
        }
        let p = q - 1;
        let idx = self.escapes.partition_point(|e| e.v <= p);
        match idx.checked_sub(1).and_then(|i| self.escapes.get(i)) {
            None => q,
            Some(e) if e.vlen > 0 && p < e.v + e.vlen => e.o + e.olen,
            Some(e) => e.o + e.olen + (p - (e.v + e.vlen)) + 1,
        }
    }

    /// The view offset of the line boundary made by the line break at original offset `o`.
    fn break_at(&self, o: usize) -> Option<usize> {
        let idx = self.escapes.partition_point(|e| e.o <= o);
        let e = self.escapes.get(idx.checked_sub(1)?)?;
        (e.vlen == 0 && o < e.o + e.olen).then_some(e.v)
    }
}

/// Decodes `\uXXXX` (and a following low surrogate) at `at` (pointing at the `u`): the char and
/// the bytes consumed from `at`.
fn decode_u(text: &[u8], at: usize) -> Option<(char, usize)> {
    let hi = hex4(text, at + 1)?;
    if (0xD800..0xDC00).contains(&hi) {
        if text.get(at + 5) == Some(&b'\\') && text.get(at + 6) == Some(&b'u') {
            let lo = hex4(text, at + 7)?;
            if (0xDC00..0xE000).contains(&lo) {
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return char::from_u32(c).map(|ch| (ch, 11));
            }
        }
        return None;
    }
    char::from_u32(hi).map(|ch| (ch, 5))
}

// ---------------------------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------------------------

/// Process buffered input once it holds a line end or this many bytes.
const PROCESS_AT: usize = 8 * 1024;

/// A [`Write`] that redacts what goes through it before passing it on (to an artifact file, a
/// log): fed arbitrary chunks, it catches secrets that straddle chunk boundaries.
///
/// Complete lines are passed on promptly (so `ralph logs --follow` and tailers see them), except
/// that
/// * a line ending with at least 4 bytes that begin a known value is held back from those
///   bytes until the next line arrives, so a value split across lines is matched whole;
/// * a private-key block is held until its END line, up to [`MAX_BLOCK_LEN`], beyond which it is
///   redacted wholesale and its further body lines are dropped.
///
/// A value split after its first 1 to 3 bytes keeps them (the rest is redacted as a fragment
/// starting a line): holding every line that ends like the start of some value would delay
/// ordinary output. Of an unfinished line, the last `max(512, longest known value + 4)` bytes
/// are held back (and any match running into them). [`Write::flush`] passes on what is safe and flushes the inner
/// writer; [`StreamRedactor::finish`] passes on everything. Dropping without `finish` passes on
/// everything too, ignoring errors.
pub struct StreamRedactor<W: Write> {
    redactor: Redactor,
    inner: Option<W>,
    pending: Vec<u8>,
    /// Whether `pending` starts a line.
    at_line_start: bool,
    /// Bytes continuing a span already redacted past the memory cap.
    cont: Option<Cont>,
    out: Vec<u8>,
}

impl<W: Write> StreamRedactor<W> {
    /// Wraps `inner`.
    pub fn new(redactor: Redactor, inner: W) -> Self {
        StreamRedactor {
            redactor,
            inner: Some(inner),
            pending: Vec::new(),
            at_line_start: true,
            cont: None,
            out: Vec::new(),
        }
    }

    /// The wrapped writer.
    pub fn get_ref(&self) -> Option<&W> {
        self.inner.as_ref()
    }

    /// Bytes written but not yet passed on.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Passes on everything still held back, flushes and returns the wrapped writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.process(true)?;
        let mut inner = self
            .inner
            .take()
            .ok_or_else(|| io::Error::other("stream redactor already finished"))?;
        inner.flush()?;
        Ok(inner)
    }

    fn emit(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let inner = self
            .inner
            .as_mut()
            .ok_or_else(|| io::Error::other("stream redactor already finished"))?;
        inner.write_all(&self.out)?;
        self.out.clear();
        Ok(())
    }

    fn process(&mut self, last: bool) -> io::Result<()> {
        loop {
            if let Some(cont) = self.cont {
                let n = self
                    .pending
                    .iter()
                    .take_while(|&&b| cont.accepts(b))
                    .count();
                self.pending.drain(..n);
                if self.pending.is_empty() && !last {
                    return Ok(());
                }
                self.cont = None;
                self.at_line_start = false;
            }
            if self.pending.is_empty() {
                return Ok(());
            }
            let more = self.step(last);
            self.emit()?;
            if !more {
                return Ok(());
            }
        }
    }

    /// Passes on what is safe; `true` when called again it could pass on more.
    fn step(&mut self, last: bool) -> bool {
        let text = &self.pending;
        let len = text.len();
        let (hits, view) = self.redactor.find(text, self.at_line_start, last);
        let mut forced = false;
        let cut = if last {
            len
        } else {
            let window = self.redactor.window();
            let line_end = memchr::memrchr(b'\n', text).map(|i| i + 1);
            let tail_start = line_end.unwrap_or(0);
            let mut cut = tail_start.max(len.saturating_sub(window));
            // A line ending with the start of a known value: hold it back.
            if cut == tail_start && tail_start > 0 {
                if let Some(view) = &view {
                    if let Some(b) = view.break_at(tail_start - 1) {
                        if let Some(s) = self.redactor.needle_prefix_before(&view.bytes, b) {
                            cut = cut.min(view.map_start(s));
                        }
                    }
                }
            }
            // Never cut a match, nor pass on the start of one that may grow.
            loop {
                let mut changed = false;
                for h in &hits {
                    let grows = h.end == len
                        || (h.label == Label::Kind(PatternKind::PrivateKey)
                            && pem_may_continue(&text[h.start..h.end], &text[h.end..]));
                    if h.start < cut && (h.end > cut || grows) {
                        cut = h.start;
                        changed = true;
                    }
                }
                if !changed {
                    break;
                }
            }
            if len - cut > window + MAX_BLOCK_LEN {
                // Holding too much: a match running on. Pass it on, redacted, up to where it has
                // reached, and keep dropping what continues it.
                if let Some(h) = hits.iter().find(|h| h.start == cut) {
                    cut = h.end;
                    self.cont = h.cont;
                    forced = true;
                } else {
                    cut = len.saturating_sub(window);
                }
            }
            cut
        };
        if cut == 0 {
            return false;
        }
        // No match spans the cut: the ones before it are a prefix.
        let used = hits.partition_point(|h| h.end <= cut);
        self.redactor
            .render(&text[..cut], &hits[..used], &mut self.out);
        self.at_line_start = text[cut - 1] == b'\n';
        self.pending.drain(..cut);
        forced && !self.pending.is_empty()
    }
}

/// Whether a private-key block `block` followed by `rest` (the end of what was written) may
/// still grow: it has no END line yet and `rest` is at most the start of one more line.
fn pem_may_continue(block: &[u8], rest: &[u8]) -> bool {
    if block.ends_with(b"-----") && contains(block, b"-----END") {
        return false;
    }
    let mut rest = rest;
    loop {
        match rest {
            [b'\\', b'n' | b'r', tail @ ..] => rest = tail,
            [b, tail @ ..] if b.is_ascii_whitespace() || *b == b'\\' => rest = tail,
            _ => break,
        }
    }
    rest.len() < 128 && !rest.contains(&b'\n')
}

impl<W: Write> Write for StreamRedactor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if memchr::memchr(b'\n', buf).is_some()
            || self.pending.len() >= PROCESS_AT.max(2 * self.redactor.window())
        {
            self.process(false)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.process(false)?;
        match self.inner.as_mut() {
            Some(inner) => inner.flush(),
            None => Ok(()),
        }
    }
}

impl<W: Write> Drop for StreamRedactor<W> {
    fn drop(&mut self) {
        if self.inner.is_some() {
            let _ = self.process(true);
            if let Some(inner) = self.inner.as_mut() {
                let _ = inner.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red(known: &[(&str, &str)]) -> Redactor {
        Redactor::new(known.iter().map(|(n, v)| (n.to_string(), v.to_string())))
    }

    #[test]
    fn every_pattern_compiles() {
        for spec in RULE_SPECS.iter() {
            assert!(
                Regex::new(spec.pattern).is_ok(),
                "{:?}: {}",
                spec.rule,
                spec.pattern
            );
        }
        let p = &*PATTERNS;
        assert!(TRIGGER_SCAN.is_some());
        for (_, rules) in TRIGGERS {
            for rule in *rules {
                assert!(
                    matches!(p.rules.get(*rule as usize), Some(Some(_))),
                    "{rule:?}"
                );
            }
        }
    }

    #[test]
    fn secret_names() {
        for n in [
            "ANTHROPIC_API_KEY",
            "openai_api_key",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "DB_PASSWORD",
            "PGPASSWORD",
            "DB_PASS",
            "MYSQL_PWD",
            "SMTP_PASSWD",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "NPM_AUTH",
            "HTTP_AUTHORIZATION",
            "SSH_PASSPHRASE",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "PATH",
            "HOME",
            "PWD",
            "OLDPWD",
            "GIT_AUTHOR_NAME",
            "GIT_AUTHOR_EMAIL",
            "SSH_AUTH_SOCK",
            "GITHUB_TOKEN_FILE",
            "AWS_ACCESS_KEY_ID",
            "GIT_ASKPASS",
            "OAUTH_TOKEN_URL",
            "PASSWORD_STORE_DIR",
            "LANG",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn base64_matches_std() {
        assert_eq!(base64_encode(b"", B64_STD), b"");
        assert_eq!(base64_encode(b"f", B64_STD), b"Zg");
        assert_eq!(base64_encode(b"fo", B64_STD), b"Zm8");
        assert_eq!(base64_encode(b"foo", B64_STD), b"Zm9v");
        assert_eq!(base64_encode(b"foobar", B64_STD), b"Zm9vYmFy");
        assert_eq!(base64_encode(&[0xfb, 0xff], B64_STD), b"+/8");
        assert_eq!(base64_encode(&[0xfb, 0xff], B64_URL), b"-_8");
    }

    #[test]
    fn base64_cores_are_inside_every_alignment() {
        let value = b"hunter2-is-a-password!";
        for offset in 0..3 {
            for trail in 0..3 {
                let mut data = b"xyz"[..offset].to_vec();
                data.extend_from_slice(value);
                data.extend_from_slice(&b"uvw"[..trail]);
                let enc = base64_encode(&data, B64_STD);
                let (core, _, _) = base64_core(value, offset, B64_STD);
                assert!(core.len() >= value.len());
                assert!(contains(&enc, &core), "offset {offset} trail {trail}");
            }
        }
    }

    #[test]
    fn view_decodes_and_maps_back() {
        let text = br#"a\/b\u0041c%2Fd\ne\\f"#;
        let v = View::build(text);
        assert_eq!(&*v.bytes, b"a/bAc/de\\f");
        assert_eq!(v.breaks, vec![7]);
        // "A" (view 3) came from `\u0041` (orig 4..10).
        assert_eq!(v.map_start(3), 4);
        assert_eq!(v.map_end(4), 10);
        // "e" (view 7) is right after the escaped line break.
        assert_eq!(v.map_start(7), 17);
        assert_eq!(v.map_end(7), 15);
        assert_eq!(v.map_end(v.bytes.len()), text.len());
        let v = View::build(b"ab\r\ncd\n\nef");
        assert_eq!(&*v.bytes, b"abcdef");
        assert_eq!(v.breaks, vec![2, 4]);
        assert_eq!(v.map_start(2), 4);
        assert_eq!(v.break_at(2), Some(2));
        assert_eq!(v.break_at(3), Some(2));
        assert_eq!(v.break_at(1), None);
        let v = View::build(b"\\uD83D\\uDE00x");
        assert_eq!(&*v.bytes, "😀x".as_bytes());
        // Not escapes: kept.
        let v = View::build(b"50%zz \\t \\q %41");
        assert_eq!(&*v.bytes, b"50%zz \\t \\q %41");
    }

    #[test]
    fn entropy() {
        assert_eq!(shannon_entropy(b""), 0.0);
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
    }

    #[test]
    fn assignment_values() {
        for v in ["Zx9qLmP2vR7tW4kB", "hG7#kL2@pQ9!mN4z", "k9Vq2LmZ8xTe"] {
            assert!(plausible_assignment(v.as_bytes()), "{v}");
        }
        for v in [
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "123e4567-e89b-12d3-a456-426614174000",
            "self.next_token_from_stream",
            "get_token(config,",
            "Option<String>",
            "/etc/ssl/private/key.pem",
            "https://example.com/a",
            "${GITHUB_TOKEN}",
            "xxxxxxxxxxxxxxxx",
            "your_api_key_here1",
            "[REDACTED:DB_PASSWORD]",
            "1234567890123456",
            "aaaaaaaaaaaa1",
            "DOT11_WPS_PASSWORD_ID",
            ":FlowEntry)",
            "quote_spanned!",
            "scram-sha-256",
            "MsV1_0ChangePassword",
        ] {
            assert!(!plausible_assignment(v.as_bytes()), "{v}");
        }
    }

    #[test]
    fn word_like_values() {
        for v in [
            "DOT11_WPS_PASSWORD_ID",
            "quote_spanned!",
            "scram-sha-256",
            "TokenStreamBuilder",
        ] {
            assert!(word_like(v.as_bytes()), "{v}");
        }
        for v in [
            "Ov8GZ4fKq1OKtbgZVaMWUFuX",
            "x7k2m9p4q8w3z5n1abc",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "2YotnFZFEjr1zCsicMWpAA",
        ] {
            assert!(!word_like(v.as_bytes()), "{v}");
        }
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

    #[test]
    fn stream_holds_line_end_prefix_and_flushes_lines() {
        let r = red(&[("MY_API_KEY", "Qw3rTy-uIoP-7890zz")]);
        let mut s = StreamRedactor::new(r, Vec::new());
        s.write_all(b"hello\nworld\n").unwrap_or_default();
        assert_eq!(s.get_ref().map(Vec::as_slice), Some(&b"hello\nworld\n"[..]));
        s.write_all(b"begins Qw3r\n").unwrap_or_default();
        assert_eq!(
            s.get_ref().map(Vec::as_slice),
            Some(&b"hello\nworld\nbegins "[..])
        );
        s.write_all(b"Ty-uIoP-7890zz end\n").unwrap_or_default();
        let out = s.finish().unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&out),
            "hello\nworld\nbegins [REDACTED:MY_API_KEY]\n end\n"
        );
    }
}
