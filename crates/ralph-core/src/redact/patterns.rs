//! The credential patterns: each rule's anchored regex, the literal triggers that say where to
//! try them (one case-insensitive Aho-Corasick pass), and the rule-specific checks on a match.

use std::fmt;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::bytes::Regex;

use super::assignment::{assignment_precheck, plausible_assignment};
use super::{Hit, Label};

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

/// A pattern rule: what is matched where a trigger was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Rule {
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

/// How a rule continues past a [`StreamRedactor`](super::StreamRedactor)'s memory cap (what to keep dropping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cont {
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
    pub(super) fn accepts(self, b: u8) -> bool {
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
            pattern: r"(?-u)\A://[^\x00-\x20:/@\x22'\\]{0,128}:([^\x00-\x20/?#\x22'\\]{1,256})@",
            group: 1,
            left_boundary: false,
            cont: Cont::Value,
        },
    ]
});

/// Literal triggers (matched ASCII case-insensitively, overlapping) and the rules tried, in
/// order, where they occur.
pub(super) const TRIGGERS: &[(&str, &[Rule])] = &[
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
pub(super) static TRIGGER_SCAN: LazyLock<Option<AhoCorasick>> =
    LazyLock::new(|| build_scan(std::iter::empty()));

/// One automaton for the triggers (case-insensitive) followed by `extra` literals (verified
/// exactly by the caller), reporting overlapping matches: a DFA, since this pass reads every
/// byte.
pub(super) fn build_scan<'a>(extra: impl Iterator<Item = &'a [u8]>) -> Option<AhoCorasick> {
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

/// Tries the rules of trigger `trigger` at `p` in the original text.
pub(super) fn try_rules(text: &[u8], trigger: usize, p: usize, hits: &mut Vec<Hit>) {
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
            // A URL's password is a credential whatever it looks like (`pass`, `hunter2`, all
            // digits); only templates and obvious placeholders are left alone.
            let v = value;
            let placeholder = v.starts_with(b"$")
                || v.starts_with(b"{")
                || v.starts_with(b"<")
                || v.starts_with(b"%s")
                || v.starts_with(b"[REDACTED")
                || v.iter().all(|&b| b == b'*');
            (!placeholder).then_some((s, e))
        }
        _ => Some((s, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
