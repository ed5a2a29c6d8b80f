use jiff::Timestamp;

use super::*;
use RetryAfter::{At, In};

/// 2026-11-21T09:37:00Z, a Saturday (the day the reference transcripts were captured).
const NOW: i64 = 1_795_253_820;

fn at(s: &str) -> i64 {
    s.parse::<Timestamp>().map(|t| t.as_second()).unwrap()
}

fn parse(text: &str, tz: &str) -> Option<RetryAfter> {
    parse_retry_after(text, NOW, Some(tz))
}

#[test]
fn now_constant_is_what_it_says() {
    assert_eq!(NOW, at("2026-11-21T09:37:00Z"));
}

#[test]
fn clock_times_with_a_zone() {
    // 09:37 UTC is 10:37 in Paris: 4pm Paris is today, 15:00 UTC.
    assert_eq!(
        parse("You've hit your limit · resets 4pm (Europe/Paris)", "UTC"),
        Some(At(at("2026-11-21T15:00:00Z")))
    );
    // 09:37 UTC is 22:37 in Auckland (NZDT, +13): 2:30pm there is tomorrow, 01:30 UTC.
    assert_eq!(
        parse(
            "You’ve hit your session limit · resets 2:30pm (Pacific/Auckland)",
            "Europe/Paris"
        ),
        Some(At(at("2026-11-22T01:30:00Z")))
    );
    assert_eq!(
        parse(
            "You've hit your limit · resets 4pm (Asia/Kuala_Lumpur)",
            "UTC"
        ),
        // 17:37 in Kuala Lumpur (+8): 4pm is tomorrow, 08:00 UTC.
        Some(At(at("2026-11-22T08:00:00Z")))
    );
}

#[test]
fn local_clock_times_are_the_next_occurrence() {
    let text = "You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at 11:37 AM.";
    assert_eq!(parse(text, "UTC"), Some(At(at("2026-11-21T11:37:00Z"))));
    // 10:37 in Paris: 11:37 Paris is 10:37 UTC, still today.
    assert_eq!(
        parse(text, "Europe/Paris"),
        Some(At(at("2026-11-21T10:37:00Z")))
    );
    // 04:37 in New York: 11:37 EST is 16:37 UTC.
    assert_eq!(
        parse(text, "America/New_York"),
        Some(At(at("2026-11-21T16:37:00Z")))
    );
    // Exactly now means the next day.
    assert_eq!(
        parse("try again at 9:37 AM", "UTC"),
        Some(At(at("2026-11-22T09:37:00Z")))
    );
    assert_eq!(
        parse("try again at 12:16 PM.", "UTC"),
        Some(At(at("2026-11-21T12:16:00Z")))
    );
    assert_eq!(
        parse("try again at 12:05 am", "UTC"),
        Some(At(at("2026-11-22T00:05:00Z")))
    );
    assert_eq!(
        parse("limit resets at 16:00 UTC", "Asia/Tokyo"),
        Some(At(at("2026-11-21T16:00:00Z")))
    );
    assert_eq!(
        parse("resets 7 a.m. (UTC)", "Asia/Tokyo"),
        Some(At(at("2026-11-22T07:00:00Z")))
    );
}

#[test]
fn clock_times_with_a_date() {
    assert_eq!(
        parse(
            "You've hit your weekly limit · resets Nov 25 at 10am (Europe/Berlin)",
            "UTC"
        ),
        Some(At(at("2026-11-25T09:00:00Z")))
    );
    assert_eq!(
        parse("resets October 9, 10am (UTC)", "UTC"),
        Some(At(at("2027-10-09T10:00:00Z")))
    );
    assert_eq!(
        parse("resets Dec. 1st at 3:15pm", "UTC"),
        Some(At(at("2026-12-01T15:15:00Z")))
    );
    // Codex names the date when the reset is not today (its CI failed on this at 23:19 UTC).
    assert_eq!(
        parse("or try again at Nov 22nd, 2026 12:19 AM.", "UTC"),
        Some(At(at("2026-11-22T00:19:00Z")))
    );
    assert_eq!(
        parse("try again at Jan 2nd, 2027 9:05 PM", "Europe/Paris"),
        Some(At(at("2027-01-02T20:05:00Z")))
    );
    // A stated year in the past is no reset time, not next year's.
    assert_eq!(parse("try again at Nov 1st, 2026 12:19 AM.", "UTC"), None);
}

#[test]
fn durations() {
    assert_eq!(
        parse("or try again in 2 days 17 hours 14 minutes.", "UTC"),
        Some(In(2 * 86_400 + 17 * 3600 + 14 * 60))
    );
    assert_eq!(parse("Please retry in 37.535s.", "UTC"), Some(In(38)));
    assert_eq!(parse("resets in 3h 20m", "UTC"), Some(In(3 * 3600 + 1200)));
    assert_eq!(parse("resets in 1h30m", "UTC"), Some(In(5400)));
    assert_eq!(
        parse("try again in 1 hour, 5 minutes and 10 seconds", "UTC"),
        Some(In(3910))
    );
    assert_eq!(parse("wait 30 seconds", "UTC"), Some(In(30)));
    assert_eq!(parse("retry after 1500ms", "UTC"), Some(In(2)));
}

#[test]
fn epochs_and_fields() {
    assert_eq!(
        parse("Claude AI usage limit reached|1753441200", "UTC"),
        Some(At(1_753_441_200))
    );
    assert_eq!(
        parse(
            r#"{"error":{"type":"usage_limit_reached","plan_type":"plus","resets_at":1795260000}}"#,
            "UTC"
        ),
        Some(At(1_795_260_000))
    );
    assert_eq!(
        parse(r#"{"resets_at": 1795260000123}"#, "UTC"),
        Some(At(1_795_260_000))
    );
    assert_eq!(
        parse(
            r#"{"error":{"type":"usage_limit_reached","resets_in_seconds":3600}}"#,
            "UTC"
        ),
        Some(In(3600))
    );
    assert_eq!(parse(r#""retryDelay": "37s""#, "UTC"), Some(In(37)));
}

#[test]
fn retry_after_headers() {
    assert_eq!(parse("retry-after: 30", "UTC"), Some(In(30)));
    assert_eq!(parse("Retry-After: 30", "UTC"), Some(In(30)));
    assert_eq!(
        parse(r#"{"retry-after":"1","server":"x"}"#, "UTC"),
        Some(In(1))
    );
    assert_eq!(parse("retry-after-ms: 1500", "UTC"), Some(In(2)));
    assert_eq!(parse(r#""retry_after": 12"#, "UTC"), Some(In(12)));
    assert_eq!(
        parse("Retry-After: Sat, 21 Nov 2026 10:00:00 GMT", "UTC"),
        Some(At(at("2026-11-21T10:00:00Z")))
    );
    assert_eq!(
        parse(r#"{"retry-after":"Sat, 21 Nov 2026 10:00:00 GMT"}"#, "UTC"),
        Some(At(at("2026-11-21T10:00:00Z")))
    );
}

#[test]
fn dates() {
    assert_eq!(
        parse("You have reached your specified API usage limits. You will regain access on 2026-04-01 at 00:00 UTC.", "Europe/Paris"),
        Some(At(at("2026-04-01T00:00:00Z")))
    );
    assert_eq!(
        parse("quota resets at 2026-12-01T00:00:00Z", "Europe/Paris"),
        Some(At(at("2026-12-01T00:00:00Z")))
    );
    assert_eq!(
        parse("available again on 2026-12-01 08:00 +02:00", "UTC"),
        Some(At(at("2026-12-01T06:00:00Z")))
    );
    // No zone: local.
    assert_eq!(
        parse("resets on 2026-12-01", "Europe/Paris"),
        Some(At(at("2026-11-30T23:00:00Z")))
    );
}

#[test]
fn nothing_to_find() {
    for text in [
        "",
        "Please wait and try again later.",
        "API Error: Request rejected (429) · Number of request tokens has exceeded your per-minute rate limit (mock)",
        "exceeded retry limit, last status: 429 Too Many Requests",
        "resets 4",
        "reset the counter",
        "try again in a moment",
        "Quota exceeded. Check your plan and billing details.",
        r#"{"type":"result","timestamp":"2026-11-21T09:38:42.735Z"}"#,
        "retry-after: soon",
        "usage limit reached|12",
        "resets 13pm",
        "resets 25:00",
    ] {
        assert_eq!(parse(text, "UTC"), None, "{text}");
    }
}

#[test]
fn unknown_zone_falls_back_to_local() {
    assert_eq!(
        parse("resets 4pm (Not/AZone)", "UTC"),
        Some(At(at("2026-11-21T16:00:00Z")))
    );
    assert_eq!(
        parse("resets 4pm (PST)", "UTC"),
        Some(At(at("2026-11-21T16:00:00Z")))
    );
    // A bad local zone falls back to the system's, which may be anything: just no panic.
    assert!(parse_retry_after("resets 4pm", NOW, Some("Nope/Nope")).is_some());
}

#[test]
fn odd_input_never_panics() {
    for text in [
        "resets",
        "try again at",
        "retry-after:",
        "retry-after",
        "resets Oct",
        "resets Oct 99 at 4pm",
        "regain access on 2026-13-45 at 99:99 UTC",
        "regain access on 9999-12-31 at 23:59 UTC",
        "until 2026-",
        "İİİ resets 4pm (Europe/Paris) ß",
        "try again in 99999999999999999999 days",
        "resets 4pm (",
        "\u{1b}[31mresets 4pm\u{1b}[0m",
    ] {
        let _ = parse(text, "UTC");
        let _ = parse_retry_after(text, i64::MAX, None);
        let _ = parse_retry_after(text, i64::MIN, Some("UTC"));
    }
    let long = "resets ".repeat(20_000);
    assert_eq!(parse(&long, "UTC"), None);
}

#[test]
fn clock_uses_fixed_time() {
    let c = Clock::fixed(NOW, Some("UTC"));
    assert_eq!(c.now_unix(), NOW);
    assert_eq!(c.local_tz(), Some("UTC"));
    assert_eq!(
        c.retry_after("try again at 11:37 AM"),
        Some(At(at("2026-11-21T11:37:00Z")))
    );
    let sys = Clock::system();
    assert!(sys.now_unix() > 1_700_000_000);
    assert_eq!(sys.local_tz(), None);
}
