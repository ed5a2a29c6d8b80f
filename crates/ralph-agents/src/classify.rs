//! Error classification from free text (stderr, error messages) and HTTP status codes.
//!
//! Agent CLIs report the same few failures with wildly different wording (see
//! `reference/agent-clis.md` §2 and §9). The signatures below are matched case-insensitively on
//! plain substrings; the order of the checks is what keeps them from stepping on each other.

use crate::event::ErrorClass;

/// Subscription limits that reset at a time ("Claude AI usage limit reached|1753441200",
/// "You've hit your session limit · resets 2:30pm", Codex "You’ve hit your usage limit").
/// Checked first: these messages often also say "rate limit" or "429".
const USAGE_LIMIT: &[&str] = &[
    "usage limit",
    "usage_limit",
    "weekly limit",
    "session limit",
    "monthly limit",
];

/// Exhausted money or quota: retrying later does not help until someone pays or waits a day.
/// Only unambiguous phrases here: Gemini's *rate*-limit message ends with "request a quota
/// increase", so a bare "quota" must not outrank "rate limit" (see `QUOTA_WEAK`).
const QUOTA_STRONG: &[&str] = &[
    "insufficient_quota",
    "exceeded your current quota",
    "quota exceeded",
    "exhausted your",
    "daily quota",
    "out of usage credits",
    "credit balance is too low",
    "billing_error",
    // Gemini CLI's class for a daily (non-retryable) quota.
    "terminalquotaerror",
    "quota metric",
    "insufficient credit",
    "servicequotaexceeded",
];

const CONTEXT_OVERFLOW: &[&str] = &[
    "prompt is too long",
    "context length",
    "context_length_exceeded",
    "context window",
    "maximum context",
    "input is too long",
    "context_window_exceeded",
    "exceeds the maximum number of tokens",
    "contextoverflow",
    "context overflow",
];

/// The agent's own turn limit (Claude `error_max_turns`, Gemini exit 53).
const MAX_TURNS: &[&str] = &[
    "maximum number of turns",
    "max session turns",
    "turn limit exceeded",
    "turnlimited",
];

/// The CLI refused to work in this directory (Gemini exit 55).
const PERMISSION_DENIED: &[&str] = &["not running in a trusted directory"];

const AUTH: &[&str] = &[
    "invalid api key",
    "invalid x-api-key",
    "invalid_api_key",
    "authentication",
    "unauthenticated",
    "unauthorized",
    "invalid auth method",
    "not logged in",
    "please run /login",
    "token has expired",
    "expiredtoken",
    "api key not valid",
    "not authenticated",
    "accessdeniedexception",
];

const RATE_LIMIT: &[&str] = &[
    "too many requests",
    // Gemini CLI's class for a per-minute quota that clears by itself.
    "retryablequotaerror",
    "throttlingexception",
    "throttled",
];

const QUOTA_WEAK: &[&str] = &["quota", "resource_exhausted", "billing"];

// Codex says "Selected model is at capacity" for a 503/529 (captured from Codex 0.169.0).
const OVERLOADED: &[&str] = &["overloaded", "high demand", "at capacity"];

const SERVER: &[&str] = &[
    "internal server error",
    "server_error",
    "server error",
    "bad gateway",
    "service unavailable",
    "gateway timeout",
    "internalserverexception",
    "serviceunavailableexception",
];

/// Classify an error text by the signatures agent CLIs print. `None` if nothing matches.
pub fn classify_text(text: &str) -> Option<ErrorClass> {
    if text.is_empty() {
        return None;
    }
    let t = text.to_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| t.contains(n));

    if has(USAGE_LIMIT) || hit_your_limit(&t) {
        return Some(ErrorClass::UsageLimit);
    }
    if has(QUOTA_STRONG) {
        return Some(ErrorClass::Quota);
    }
    if has(CONTEXT_OVERFLOW) {
        return Some(ErrorClass::ContextOverflow);
    }
    if has(MAX_TURNS) {
        return Some(ErrorClass::MaxTurns);
    }
    if has(PERMISSION_DENIED) {
        return Some(ErrorClass::PermissionDenied);
    }
    if has(AUTH) || has_number(&t, "401") {
        return Some(ErrorClass::Auth);
    }
    if rate_limit(&t) || has(RATE_LIMIT) || has_number(&t, "429") {
        return Some(ErrorClass::RateLimit);
    }
    if has(QUOTA_WEAK) {
        return Some(ErrorClass::Quota);
    }
    if has(OVERLOADED) || has_number(&t, "529") {
        return Some(ErrorClass::Overloaded);
    }
    if has(SERVER)
        || ["500", "502", "503", "504"]
            .iter()
            .any(|n| has_number(&t, n))
    {
        return Some(ErrorClass::Server);
    }
    None
}

/// Classify an HTTP status an agent reported for a failed API call. `text` is the agent's error
/// message, used where the status alone is ambiguous (a 429 may be a rate limit, a usage limit
/// or an exhausted quota; a 400 may be a usage limit or an oversized prompt). Always returns a
/// class: an unrecognised status is `Unknown`, never "no error".
pub fn classify_status(status: u16, text: &str) -> ErrorClass {
    let by_text = classify_text(text);
    match status {
        429 => match by_text {
            Some(c @ (ErrorClass::UsageLimit | ErrorClass::Quota)) => c,
            _ => ErrorClass::RateLimit,
        },
        401 | 403 => ErrorClass::Auth,
        402 => ErrorClass::Quota,
        408 => ErrorClass::Timeout,
        413 => ErrorClass::ContextOverflow,
        529 => ErrorClass::Overloaded,
        500..=599 => ErrorClass::Server,
        _ => by_text.unwrap_or(ErrorClass::Unknown),
    }
}

/// Gemini CLI exits with the HTTP status of a failed API call (`process.exit(status)`), which
/// the OS truncates to 8 bits: 429 → 173, 401 → 145, 403 → 147, 500 → 244, 503 → 247,
/// 529 → 17. Its own exit codes (1, 41, 42, 52, 53, 55, …) stay below 144.
pub(crate) fn gemini_exit_status(code: i32) -> Option<u16> {
    match code {
        144..=255 => u16::try_from(code + 256).ok(),
        17 => Some(529),
        _ => None,
    }
}

/// An HTTP status inside an error text: `"code":401` / `"code": 429` (Google and OpenAI error
/// bodies), `"statusCode":500`, `(HTTP 401)`.
pub(crate) fn embedded_status(text: &str) -> Option<u16> {
    const KEYS: &[&str] = &["\"code\":", "\"statuscode\":", "\"status\":", "(http "];
    let t = text.to_ascii_lowercase();
    KEYS.iter().find_map(|k| {
        t.match_indices(k).find_map(|(i, _)| {
            let rest = t[i + k.len()..].trim_start();
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let n: u16 = digits.parse().ok()?;
            (digits.len() == 3 && (400..=599).contains(&n)).then_some(n)
        })
    })
}

/// `rate.?limit`: "rate limit", "rate-limit", "rate_limit", "ratelimit", but not the tail of
/// a word ("a separate limit").
fn rate_limit(t: &str) -> bool {
    t.match_indices("rate").any(|(i, _)| {
        if i > 0 && t.as_bytes()[i - 1].is_ascii_alphabetic() {
            return false;
        }
        let rest = &t[i + 4..];
        rest.starts_with("limit")
            || rest
                .char_indices()
                .nth(1)
                .is_some_and(|(j, _)| rest[j..].starts_with("limit"))
    })
}

/// "You've hit your … limit" in its many variants (limit, session limit, weekly limit, monthly
/// spend limit), with straight or curly apostrophes. "limit" must follow within a few words so
/// that an unrelated "limit" later in a long text does not count.
fn hit_your_limit(t: &str) -> bool {
    t.match_indices("hit your").any(|(i, m)| {
        let rest = &t[i + m.len()..];
        let window = match rest.char_indices().nth(40) {
            Some((j, _)) => &rest[..j],
            None => rest,
        };
        window.contains("limit")
    })
}

/// `n` as a whole number: not part of a longer number ("14290"), a decimal ("0.429") or an
/// identifier ("req_429x"), so ports, timestamps and costs do not trigger status signatures.
fn has_number(t: &str, n: &str) -> bool {
    let b = t.as_bytes();
    t.match_indices(n).any(|(i, _)| {
        let end = i + n.len();
        let before_ok = i == 0 || {
            let p = b[i - 1];
            !(p.is_ascii_alphanumeric() || p == b'.' || p == b'_')
        };
        let after_ok = match b.get(end) {
            None => true,
            Some(c) if c.is_ascii_alphanumeric() || *c == b'_' => false,
            // "429." ends a sentence, "429.5" is a number.
            Some(b'.') => !b.get(end + 1).is_some_and(u8::is_ascii_digit),
            Some(_) => true,
        };
        before_ok && after_ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorClass::*;

    #[test]
    fn claude_signatures() {
        let cases: &[(&str, ErrorClass)] = &[
            ("API Error: Request rejected (429) · Number of request tokens has exceeded your per-minute rate limit (mock)", RateLimit),
            ("Invalid API key · Fix external API key", Auth),
            ("API Error: 529 Overloaded (mock). This is a server-side issue, usually temporary", Overloaded),
            ("API Error: 500 Internal server error (mock). This is a server-side issue", Server),
            ("Claude AI usage limit reached|1753441200", UsageLimit),
            ("You've hit your limit · resets 4pm (Asia/Kuala_Lumpur)", UsageLimit),
            ("You’ve hit your session limit · resets 2:30pm (Pacific/Auckland)", UsageLimit),
            ("You've hit your weekly limit", UsageLimit),
            ("You've hit your monthly spend limit", UsageLimit),
            ("You're out of usage credits", Quota),
            ("You have reached your specified API usage limits. You will regain access on 2026-04-01 at 00:00 UTC.", UsageLimit),
            ("Prompt is too long", ContextOverflow),
            ("input length and `max_tokens` exceed context limit; the context window is 200000", ContextOverflow),
            ("Invalid auth method", Auth),
            ("OAuth token has expired. Please obtain a new token", Auth),
            ("Not logged in · Please run /login", Auth),
            ("Your credit balance is too low to access the Anthropic API", Quota),
        ];
        for (text, want) in cases {
            assert_eq!(classify_text(text), Some(*want), "{text}");
        }
    }

    #[test]
    fn other_agent_signatures() {
        let cases: &[(&str, ErrorClass)] = &[
            ("unexpected status 401 Unauthorized: invalid x-api-key (mock), url: http://127.0.0.1:34287/v1/responses", Auth),
            ("Quota exceeded. Check your plan and billing details.", Quota),
            ("exceeded retry limit, last status: 429 Too Many Requests", RateLimit),
            ("We’re currently experiencing high demand, which may cause temporary errors.", Overloaded),
            ("Selected model is at capacity. Please try a different model.", Overloaded),
            ("You’ve hit your usage limit. Upgrade to Pro, visit https://chatgpt.com/settings/usage to purchase more credits or try again at 11:37 AM.", UsageLimit),
            (r#"[API Error: {"error":{"code":401,"message":"invalid x-api-key (mock)","status":"UNAUTHENTICATED"}}]"#, Auth),
            // Gemini's rate-limit text mentions a quota increase: still a rate limit.
            ("[API Error: Number of request tokens has exceeded your per-minute rate limit (mock)]\nPlease wait and try again later. To increase your limits, request a quota increase through AI Studio, or switch to another /auth method", RateLimit),
            ("[API Error: You have exhausted your daily quota on this model.]\nPlease wait and try again later. To increase your limits, request a quota increase through AI Studio, or switch to another /auth method", Quota),
            (r#"[API Error: {"error":{"code":500,"message":"Internal server error (mock)","status":"INTERNAL"}}]"#, Server),
            ("You exceeded your current quota, please check your plan and billing details.", Quota),
            (r#"{"code":"insufficient_quota"}"#, Quota),
            ("RESOURCE_EXHAUSTED", Quota),
            ("rate_limit_exceeded", RateLimit),
            ("Ratelimited, slow down", RateLimit),
            ("HTTP 502 Bad Gateway", Server),
            ("status: 503", Server),
            ("error 429.", RateLimit),
        ];
        for (text, want) in cases {
            assert_eq!(classify_text(text), Some(*want), "{text}");
        }
    }

    #[test]
    fn no_false_positives() {
        for text in [
            "",
            "all good",
            "connect ECONNREFUSED 127.0.0.1:14290",
            "cost 0.429 USD",
            "wrote 15000 bytes",
            "request id req_4291",
            "Error: When using --print, --output-format=stream-json requires --verbose",
            "the retry limit was reached", // not "rate limit"
            "use a separate limit for each job",
            "switch to another /auth method",
            "I hit your build target",
        ] {
            assert_eq!(classify_text(text), None, "{text}");
        }
    }

    #[test]
    fn non_ascii_text_does_not_panic() {
        assert_eq!(classify_text("ÄÖÜ rate·limit ß"), Some(RateLimit));
        assert_eq!(
            classify_text("hit your 限制限制限制限制限制限制限制限制限制限制限制限制限制限制"),
            None
        );
        assert_eq!(classify_text("İİİ 429"), Some(RateLimit));
    }

    #[test]
    fn status_codes() {
        assert_eq!(
            classify_status(429, "Request rejected (429) · rate limit"),
            RateLimit
        );
        assert_eq!(
            classify_status(429, "You've hit your limit · resets 4pm"),
            UsageLimit
        );
        assert_eq!(
            classify_status(429, "You exceeded your current quota"),
            Quota
        );
        assert_eq!(classify_status(401, ""), Auth);
        assert_eq!(classify_status(403, "forbidden"), Auth);
        assert_eq!(classify_status(529, "Overloaded"), Overloaded);
        assert_eq!(classify_status(500, "Internal server error"), Server);
        assert_eq!(classify_status(503, ""), Server);
        assert_eq!(
            classify_status(400, "You have reached your specified API usage limits."),
            UsageLimit
        );
        assert_eq!(
            classify_status(400, "prompt is too long: 210000 tokens"),
            ContextOverflow
        );
        assert_eq!(classify_status(400, "invalid_request_error"), Unknown);
        assert_eq!(classify_status(404, "model not found"), Unknown);
    }
    #[test]
    fn more_agent_signatures() {
        let cases: &[(&str, ErrorClass)] = &[
            (r#"{"error":{"type":"usage_limit_reached","plan_type":"plus","resets_at":1795260000}}"#, UsageLimit),
            ("TerminalQuotaError: You have exhausted your daily quota on this model.", Quota),
            ("RetryableQuotaError: Number of request tokens has exceeded your per-minute limit", RateLimit),
            ("Quota exceeded for quota metric 'Gemini 2.5 Pro Requests' and limit 'Gemini 2.5 Pro Requests per day'", Quota),
            ("Your input exceeds the context window of this model.", ContextOverflow),
            ("The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", ContextOverflow),
            ("Reached max session turns for this session.", MaxTurns),
            ("Gemini CLI is not running in a trusted directory. To proceed, either use `--skip-trust`", PermissionDenied),
            ("Invalid auth method selected.", Auth),
            ("API key not valid. Please pass a valid API key.", Auth),
            ("ThrottlingException: Rate exceeded", RateLimit),
            ("ServiceQuotaExceededException: monthly request count exhausted", Quota),
            ("ExpiredTokenException: The security token included in the request is expired", Auth),
            ("AccessDeniedException: not authorized", Auth),
            ("InternalServerException: something broke", Server),
            ("Authentication failed with provider at http://127.0.0.1:39095/v1 (HTTP 401).", Auth),
            ("Failed to get response from the AI model; retried 5 times (total retry wait time: 16.76 seconds) Last error: 500 Internal server error (mock)", Server),
        ];
        for (text, want) in cases {
            assert_eq!(classify_text(text), Some(*want), "{text}");
        }
        assert_eq!(classify_status(408, ""), Timeout);
    }

    #[test]
    fn gemini_exit_codes_are_http_statuses() {
        assert_eq!(gemini_exit_status(173), Some(429));
        assert_eq!(gemini_exit_status(145), Some(401));
        assert_eq!(gemini_exit_status(147), Some(403));
        assert_eq!(gemini_exit_status(244), Some(500));
        assert_eq!(gemini_exit_status(247), Some(503));
        assert_eq!(gemini_exit_status(17), Some(529));
        for own in [0, 1, 41, 42, 52, 53, 55, 130, 143] {
            assert_eq!(gemini_exit_status(own), None, "{own}");
        }
    }

    #[test]
    fn embedded_statuses() {
        assert_eq!(
            embedded_status(
                r#"[API Error: {"error":{"code":401,"message":"x","status":"UNAUTHENTICATED"}}]"#
            ),
            Some(401)
        );
        assert_eq!(embedded_status(r#"{"statusCode": 429}"#), Some(429));
        assert_eq!(embedded_status("failed (HTTP 401)."), Some(401));
        assert_eq!(embedded_status(r#"{"code":"insufficient_quota"}"#), None);
        assert_eq!(embedded_status(r#"{"code":4290}"#), None);
        assert_eq!(embedded_status(r#"{"code":200}"#), None);
        assert_eq!(embedded_status(""), None);
    }
}
