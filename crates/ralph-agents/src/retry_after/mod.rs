//! When a limit lifts: reset times and retry delays in agents' error texts and headers.
//!
//! Agents say it in many ways: "resets 4pm (Europe/Paris)", "try again at 11:37 AM" (in the
//! machine's local time), "try again in 2 days 17 hours 14 minutes", "Claude AI usage limit
//! reached|1753441200", `retry-after: 30`, "You will regain access on 2026-04-01 at 00:00 UTC",
//! a Codex `usage_limit_reached` body with `resets_at` or `resets_in_seconds`, a Gemini
//! `RetryInfo` with `"retryDelay": "37s"`. [`parse_retry_after`] understands all of them; it is
//! pure (the current time and the local zone are arguments) so the result is deterministic.
//!
//! Time zones come from `jiff`: the system's tz database (`/usr/share/zoneinfo`), or a copy
//! bundled into the binary on machines without one.
//!
//! One file per kind of phrase, tried in this order: `fields` (an epoch after `reached|`, JSON
//! fields, `Retry-After` headers), `dates`, `clock_times`, `durations`; `lex` holds the byte
//! scanning they share.

mod clock_times;
mod dates;
mod durations;
mod fields;
mod lex;
#[cfg(test)]
mod tests;

use std::time::{SystemTime, UNIX_EPOCH};

use jiff::tz::TimeZone;

use crate::event::RetryAfter;
use lex::{is_word_byte, skip_ws};

/// Longest text looked at: error messages are short, and the parse must stay cheap whatever
/// an agent prints.
const SCAN_MAX: usize = 64 * 1024;

/// The time and zone a parser resolves "resets 4pm" against: the real clock by default, a fixed
/// one in tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Clock {
    now_unix: Option<i64>,
    local_tz: Option<String>,
}

impl Clock {
    /// The machine's clock and time zone (`TZ`, else `/etc/localtime`).
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A fixed instant and zone (an IANA name such as `Europe/Paris`; `None` = the system's).
    pub fn fixed(now_unix: i64, local_tz: Option<&str>) -> Clock {
        Clock {
            now_unix: Some(now_unix),
            local_tz: local_tz.map(str::to_string),
        }
    }

    /// Seconds since the Unix epoch.
    pub fn now_unix(&self) -> i64 {
        self.now_unix.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        })
    }

    /// The zone local times are read in; `None` = the system's.
    pub fn local_tz(&self) -> Option<&str> {
        self.local_tz.as_deref()
    }

    /// [`parse_retry_after`] at this clock's time and zone.
    pub fn retry_after(&self, text: &str) -> Option<RetryAfter> {
        parse_retry_after(text, self.now_unix(), self.local_tz())
    }
}

/// When to try again, as `text` says, relative to `now_unix` (seconds since the epoch).
/// Local times without a zone ("try again at 11:37 AM") are read in `local_tz` (an IANA name;
/// `None` = the system's zone) and mean their next occurrence after now. `None` when the text
/// names no time.
///
/// Understood, in this order of preference:
/// - `usage limit reached|1753441200` (epoch seconds after the pipe)
/// - `"resets_at": 1753441200` (epoch seconds, or milliseconds), `"resets_in_seconds": 3600`
/// - `retry-after: 30`, `"retry-after":"1"`, `Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`,
///   `retry-after-ms: 1500`
/// - `"retryDelay": "37s"` (Gemini `RetryInfo`)
/// - `regain access on 2026-04-01 at 00:00 UTC`, `resets at 2026-04-01T00:00:00Z`
/// - `resets 4pm (Europe/Paris)`, `resets 2:30pm (Pacific/Auckland)`, `resets Oct 9 at 10am`,
///   `try again at 11:37 AM`, `resets at 16:00 UTC`
/// - `try again in 2 days 17 hours 14 minutes`, `retry in 37.5s`, `resets in 3h 20m`
pub fn parse_retry_after(text: &str, now_unix: i64, local_tz: Option<&str>) -> Option<RetryAfter> {
    let text = head(text, SCAN_MAX);
    let lower = text.to_ascii_lowercase();
    let s = Scan {
        text,
        b: lower.as_bytes(),
        lower: &lower,
        now: now_unix,
        local_tz,
    };
    s.epoch_after_pipe()
        .or_else(|| s.json_epoch(&["resets_at", "reset_at"]))
        .or_else(|| {
            s.json_seconds(&[
                "resets_in_seconds",
                "reset_in_seconds",
                "reset_after_seconds",
            ])
        })
        .or_else(|| s.retry_after_header())
        .or_else(|| s.retry_delay_field())
        .or_else(|| s.date_phrase())
        .or_else(|| s.clock_phrase())
        .or_else(|| s.duration_phrase())
}

fn head(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The text and its ASCII-lowercased copy (same byte offsets, so a zone name can be cut from
/// the original with the positions found in the copy).
struct Scan<'a> {
    text: &'a str,
    lower: &'a str,
    b: &'a [u8],
    now: i64,
    local_tz: Option<&'a str>,
}

/// A time of day as written.
#[derive(Debug, Clone, Copy)]
struct TimeOfDay {
    hour: i8,
    minute: i8,
    second: i8,
}

impl Scan<'_> {
    /// Start offsets of `needle` where it begins a word.
    fn word_starts<'n>(&self, needle: &'n str) -> impl Iterator<Item = usize> + use<'_, 'n> {
        self.lower.match_indices(needle).filter_map(move |(i, _)| {
            let ok = i == 0 || !is_word_byte(self.b[i - 1]);
            ok.then_some(i)
        })
    }

    fn tz(&self, name: Option<&str>) -> TimeZone {
        if let Some(tz) = name.and_then(zone_by_name) {
            return tz;
        }
        match self.local_tz {
            Some(local) => zone_by_name(local).unwrap_or_else(TimeZone::system),
            None => TimeZone::system(),
        }
    }

    /// A zone written after a time: " UTC", " GMT", " (Europe/Paris)".
    fn zone_after(&self, i: usize) -> Option<String> {
        let j = skip_ws(self.b, i);
        let rest = &self.lower[j..];
        if rest.starts_with("utc") || rest.starts_with("gmt") {
            let end = j + 3;
            if !self.b.get(end).is_some_and(|c| is_word_byte(*c)) {
                return Some("UTC".to_string());
            }
        }
        if rest.starts_with('(') {
            let close = rest.find(')')?;
            let name = self.text[j + 1..j + close].trim();
            if !name.is_empty() && name.len() <= 64 {
                return Some(name.to_string());
            }
        }
        None
    }
}

fn zone_by_name(name: &str) -> Option<TimeZone> {
    let name = name.trim();
    if name.eq_ignore_ascii_case("utc") || name.eq_ignore_ascii_case("gmt") || name == "Z" {
        return Some(TimeZone::UTC);
    }
    // Only names that look like IANA identifiers: "PST" or "local time" would fail anyway.
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"/_-+".contains(&c))
    {
        return None;
    }
    TimeZone::get(name).ok()
}
