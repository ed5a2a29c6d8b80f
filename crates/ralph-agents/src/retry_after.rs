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

use std::time::{SystemTime, UNIX_EPOCH};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::event::RetryAfter;

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

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// Digits at `i`: (value, end). At most 18 digits, so the value cannot overflow.
fn digits(b: &[u8], i: usize) -> Option<(u64, usize)> {
    let mut j = i;
    let mut n: u64 = 0;
    while j < b.len() && b[j].is_ascii_digit() && j - i < 18 {
        n = n * 10 + u64::from(b[j] - b'0');
        j += 1;
    }
    (j > i).then_some((n, j))
}

/// A decimal number at `i` ("37", "37.5"): (value, end).
fn decimal(b: &[u8], i: usize) -> Option<(f64, usize)> {
    let (whole, mut j) = digits(b, i)?;
    let mut value = whole as f64;
    if j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_digit() {
        let start = j + 1;
        let mut k = start;
        let mut scale = 0.1;
        while k < b.len() && b[k].is_ascii_digit() && k - start < 9 {
            value += f64::from(b[k] - b'0') * scale;
            scale /= 10.0;
            k += 1;
        }
        while k < b.len() && b[k].is_ascii_digit() {
            k += 1;
        }
        j = k;
    }
    Some((value, j))
}

fn ceil_secs(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        // Bounded: nobody waits 10^15 seconds.
        v.ceil().min(1e15) as u64
    } else {
        0
    }
}

/// `:` or `=` between a key and its value, with optional quotes and spaces around.
fn key_separator(b: &[u8], mut i: usize) -> Option<usize> {
    if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
        i += 1;
    }
    i = skip_ws(b, i);
    if i < b.len() && (b[i] == b':' || b[i] == b'=') {
        i = skip_ws(b, i + 1);
        if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
            i += 1;
        }
        Some(skip_ws(b, i))
    } else {
        None
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

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

    /// "usage limit reached|1753441200".
    fn epoch_after_pipe(&self) -> Option<RetryAfter> {
        self.lower.match_indices('|').find_map(|(i, _)| {
            if !self.lower[..i].trim_end().ends_with("reached") {
                return None;
            }
            let (n, _) = digits(self.b, skip_ws(self.b, i + 1))?;
            epoch(n).map(RetryAfter::At)
        })
    }

    /// The numeric value of `key` (as a JSON field or `key=value`).
    fn key_number(&self, key: &str) -> Option<u64> {
        self.word_starts(key).find_map(|i| {
            let after = i + key.len();
            if self
                .b
                .get(after)
                .is_some_and(|c| is_word_byte(*c) || *c == b'-')
            {
                return None;
            }
            let j = key_separator(self.b, after)?;
            digits(self.b, j).map(|(n, _)| n)
        })
    }

    fn json_epoch(&self, keys: &[&str]) -> Option<RetryAfter> {
        keys.iter()
            .find_map(|k| self.key_number(k).and_then(epoch))
            .map(RetryAfter::At)
    }

    fn json_seconds(&self, keys: &[&str]) -> Option<RetryAfter> {
        keys.iter()
            .find_map(|k| self.key_number(k))
            .map(RetryAfter::In)
    }

    /// `Retry-After: 30`, `"retry-after":"1"`, `retry_after=30`, an HTTP date, or
    /// `retry-after-ms: 1500`.
    fn retry_after_header(&self) -> Option<RetryAfter> {
        for key in ["retry-after", "retry_after"] {
            for i in self.word_starts(key) {
                let mut after = i + key.len();
                let millis = self.lower[after..].starts_with("-ms")
                    || self.lower[after..].starts_with("_ms");
                if millis {
                    after += 3;
                }
                if self
                    .b
                    .get(after)
                    .is_some_and(|c| is_word_byte(*c) || *c == b'-')
                {
                    continue;
                }
                let Some(j) = key_separator(self.b, after) else {
                    continue;
                };
                if let Some(ts) = self.http_date(j) {
                    return Some(RetryAfter::At(ts));
                }
                if let Some((v, _)) = decimal(self.b, j) {
                    let secs = if millis { v / 1000.0 } else { v };
                    return Some(RetryAfter::In(ceil_secs(secs)));
                }
            }
        }
        None
    }

    /// An RFC 9110 HTTP date starting at `i` ("Wed, 21 Oct 2026 07:28:00 GMT").
    fn http_date(&self, i: usize) -> Option<i64> {
        let rest = &self.text[i..];
        let end = rest
            .find(['"', '\'', '\n', '\r', ';', '}'])
            .unwrap_or(rest.len());
        let candidate = head(&rest[..end], 64).trim();
        if !candidate.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return None;
        }
        static PARSER: jiff::fmt::rfc2822::DateTimeParser =
            jiff::fmt::rfc2822::DateTimeParser::new();
        PARSER
            .parse_timestamp(candidate)
            .ok()
            .map(|t| t.as_second())
    }

    /// Gemini `RetryInfo`: `"retryDelay": "37s"`.
    fn retry_delay_field(&self) -> Option<RetryAfter> {
        self.word_starts("retrydelay").find_map(|i| {
            let j = key_separator(self.b, i + "retrydelay".len())?;
            let (v, end) = decimal(self.b, j)?;
            (self.b.get(end) == Some(&b's')).then(|| RetryAfter::In(ceil_secs(v)))
        })
    }

    /// "regain access on 2026-04-01 at 00:00 UTC", "resets at 2026-04-01T00:00:00Z".
    fn date_phrase(&self) -> Option<RetryAfter> {
        const TRIGGERS: &[&str] = &[
            "regain access on",
            "resets on",
            "reset on",
            "resets at",
            "reset at",
            "available again on",
            "try again after",
            "until",
        ];
        for trigger in TRIGGERS {
            for i in self.word_starts(trigger) {
                let j = skip_ws(self.b, i + trigger.len());
                if let Some(t) = self.iso_datetime(j) {
                    return Some(RetryAfter::At(t));
                }
            }
        }
        None
    }

    /// `YYYY-MM-DD[( at |T| )HH:MM[:SS][.frac]][Z| UTC|±HH:MM| (Zone/Name)]` at `i`.
    fn iso_datetime(&self, i: usize) -> Option<i64> {
        let b = self.b;
        let (year, j) = digits(b, i)?;
        if j - i != 4 || b.get(j) != Some(&b'-') {
            return None;
        }
        let (month, k) = digits(b, j + 1)?;
        if k - j != 3 || b.get(k) != Some(&b'-') {
            return None;
        }
        let (day, mut p) = digits(b, k + 1)?;
        if p - k != 3 {
            return None;
        }
        let date = Date::new(
            i16::try_from(year).ok()?,
            i8::try_from(month).ok()?,
            i8::try_from(day).ok()?,
        )
        .ok()?;
        // The time: "T00:00", " 00:00", " at 00:00".
        let mut time = TimeOfDay {
            hour: 0,
            minute: 0,
            second: 0,
        };
        let q = if b.get(p) == Some(&b't') {
            p + 1
        } else {
            let q = skip_ws(b, p);
            if self.lower[q..].starts_with("at ") {
                skip_ws(b, q + 3)
            } else {
                q
            }
        };
        if let Some((t, end)) = hh_mm_ss(b, q) {
            time = t;
            p = end;
        }
        // Fractional seconds.
        if b.get(p) == Some(&b'.') {
            p += 1;
            while p < b.len() && b[p].is_ascii_digit() {
                p += 1;
            }
        }
        let dt = date.at(time.hour, time.minute, time.second, 0);
        // The zone.
        if b.get(p) == Some(&b'z') {
            return dt
                .to_zoned(TimeZone::UTC)
                .ok()
                .map(|z| z.timestamp().as_second());
        }
        if let Some(offset) = numeric_offset(b, p) {
            let utc = dt.to_zoned(TimeZone::UTC).ok()?.timestamp().as_second();
            return Some(utc - offset);
        }
        let zone = self.zone_after(p);
        let tz = self.tz(zone.as_deref());
        dt.to_zoned(tz).ok().map(|z| z.timestamp().as_second())
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

    /// "resets 4pm (Europe/Paris)", "try again at 11:37 AM", "resets Oct 9 at 10am".
    fn clock_phrase(&self) -> Option<RetryAfter> {
        const TRIGGERS: &[&str] = &[
            "try again at",
            "resets at",
            "reset at",
            "resets",
            "reset",
            "available at",
            "again at",
        ];
        for trigger in TRIGGERS {
            for i in self.word_starts(trigger) {
                let end = i + trigger.len();
                if self.b.get(end).is_some_and(|c| is_word_byte(*c)) {
                    continue;
                }
                if let Some(t) = self.clock_time_at(skip_ws(self.b, end)) {
                    return Some(RetryAfter::At(t));
                }
            }
        }
        None
    }

    fn clock_time_at(&self, mut i: usize) -> Option<i64> {
        let b = self.b;
        if self.lower[i..].starts_with("at ") {
            i = skip_ws(b, i + 3);
        }
        let month_day = self.month_day(i);
        if let Some((_, _, end)) = month_day {
            i = end;
        }
        let (time, end) = clock_time(b, i)?;
        let zone = self.zone_after(end);
        let tz = self.tz(zone.as_deref());
        let now = Timestamp::from_second(self.now).ok()?.to_zoned(tz.clone());
        match month_day {
            Some((month, day, _)) => {
                let mut year = now.year();
                for _ in 0..2 {
                    let date = Date::new(year, month, day).ok()?;
                    let at = date
                        .at(time.hour, time.minute, time.second, 0)
                        .to_zoned(tz.clone())
                        .ok()?
                        .timestamp()
                        .as_second();
                    if at > self.now {
                        return Some(at);
                    }
                    year = year.checked_add(1)?;
                }
                None
            }
            None => {
                let mut date = now.date();
                for _ in 0..3 {
                    let at = date
                        .at(time.hour, time.minute, time.second, 0)
                        .to_zoned(tz.clone())
                        .ok()?
                        .timestamp()
                        .as_second();
                    if at > self.now {
                        return Some(at);
                    }
                    date = date.tomorrow().ok()?;
                }
                None
            }
        }
    }

    /// "Oct 9 at ", "October 9, ", "oct. 9th ": (month, day, end of the phrase).
    fn month_day(&self, i: usize) -> Option<(i8, i8, usize)> {
        let b = self.b;
        let word_end = (i..b.len())
            .find(|&j| !b[j].is_ascii_alphabetic())
            .unwrap_or(b.len());
        let word = &self.lower[i..word_end];
        if word.len() < 3 {
            return None;
        }
        let month = MONTHS
            .iter()
            .position(|m| word.starts_with(m) && (word.len() == 3 || full_month(word)))?;
        let mut j = word_end;
        if b.get(j) == Some(&b'.') {
            j += 1;
        }
        j = skip_ws(b, j);
        let (day, mut k) = digits(b, j)?;
        if !(1..=31).contains(&day) || k - j > 2 {
            return None;
        }
        for suffix in ["st", "nd", "rd", "th"] {
            if self.lower[k..].starts_with(suffix) {
                k += 2;
                break;
            }
        }
        if b.get(k) == Some(&b',') {
            k += 1;
        }
        k = skip_ws(b, k);
        if self.lower[k..].starts_with("at ") {
            k = skip_ws(b, k + 3);
        }
        Some((i8::try_from(month + 1).ok()?, i8::try_from(day).ok()?, k))
    }

    /// "try again in 2 days 17 hours 14 minutes", "retry in 37.5s", "resets in 3h 20m".
    fn duration_phrase(&self) -> Option<RetryAfter> {
        const TRIGGERS: &[&str] = &[
            "try again in",
            "retry in",
            "retrying in",
            "resets in",
            "reset in",
            "retry after",
            "try again after",
            "available in",
            "again in",
            "wait",
        ];
        for trigger in TRIGGERS {
            for i in self.word_starts(trigger) {
                let end = i + trigger.len();
                if self.b.get(end).is_some_and(|c| is_word_byte(*c)) {
                    continue;
                }
                if let Some(secs) = duration(self.lower, skip_ws(self.b, end)) {
                    return Some(RetryAfter::In(secs));
                }
            }
        }
        None
    }
}

fn full_month(word: &str) -> bool {
    const FULL: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    FULL.contains(&word) || word == "sept"
}

/// Epoch seconds, or milliseconds (13 digits and more), as seconds; `None` for numbers too
/// small to be a date.
fn epoch(n: u64) -> Option<i64> {
    let secs = if n >= 100_000_000_000 { n / 1000 } else { n };
    if secs < 1_000_000_000 {
        return None;
    }
    i64::try_from(secs).ok()
}

/// `HH:MM[:SS]` (24-hour) at `i`.
fn hh_mm_ss(b: &[u8], i: usize) -> Option<(TimeOfDay, usize)> {
    let (h, j) = digits(b, i)?;
    if j - i > 2 || b.get(j) != Some(&b':') {
        return None;
    }
    let (m, mut k) = digits(b, j + 1)?;
    if k - j != 3 {
        return None;
    }
    let mut s = 0;
    if b.get(k) == Some(&b':') {
        if let Some((sec, e)) = digits(b, k + 1) {
            if e - k == 3 {
                s = sec;
                k = e;
            }
        }
    }
    if h > 23 || m > 59 || s > 59 {
        return None;
    }
    Some((
        TimeOfDay {
            hour: i8::try_from(h).ok()?,
            minute: i8::try_from(m).ok()?,
            second: i8::try_from(s).ok()?,
        },
        k,
    ))
}

/// "4pm", "2:30pm", "11:37 AM", "10 a.m.", "16:00": a time of day at `i`. A bare number ("4")
/// is not a time.
fn clock_time(b: &[u8], i: usize) -> Option<(TimeOfDay, usize)> {
    let (h, j) = digits(b, i)?;
    if j - i > 2 {
        return None;
    }
    let mut minute = 0;
    let mut end = j;
    let mut has_minutes = false;
    if b.get(j) == Some(&b':') {
        let (m, k) = digits(b, j + 1)?;
        if k - j != 3 || m > 59 {
            return None;
        }
        minute = m;
        end = k;
        has_minutes = true;
    }
    let k = skip_ws(b, end);
    let meridiem = if b[k..].starts_with(b"am") || b[k..].starts_with(b"a.m.") {
        Some(false)
    } else if b[k..].starts_with(b"pm") || b[k..].starts_with(b"p.m.") {
        Some(true)
    } else {
        None
    };
    let hour = match meridiem {
        Some(pm) => {
            if !(1..=12).contains(&h) {
                return None;
            }
            end = if b[k..].starts_with(b"a.m.") || b[k..].starts_with(b"p.m.") {
                k + 4
            } else {
                k + 2
            };
            if b.get(end).is_some_and(|c| c.is_ascii_alphanumeric()) {
                return None;
            }
            (h % 12) + if pm { 12 } else { 0 }
        }
        None if has_minutes && h <= 23 => {
            if b.get(end).is_some_and(|c| c.is_ascii_digit()) {
                return None;
            }
            h
        }
        None => return None,
    };
    Some((
        TimeOfDay {
            hour: i8::try_from(hour).ok()?,
            minute: i8::try_from(minute).ok()?,
            second: 0,
        },
        end,
    ))
}

/// `+02:00`, `-0500` right at `i` (after optional spaces): seconds east of UTC.
fn numeric_offset(b: &[u8], i: usize) -> Option<i64> {
    let i = skip_ws(b, i);
    let sign = match b.get(i) {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return None,
    };
    let (hh, j) = digits(b, i + 1)?;
    let (h, m) = match j - (i + 1) {
        2 => {
            let m = if b.get(j) == Some(&b':') {
                let (m, k) = digits(b, j + 1)?;
                if k - j != 3 {
                    return None;
                }
                m
            } else {
                0
            };
            (hh, m)
        }
        4 => (hh / 100, hh % 100),
        _ => return None,
    };
    if h > 14 || m > 59 {
        return None;
    }
    Some(sign * i64::try_from(h * 3600 + m * 60).ok()?)
}

/// "2 days 17 hours 14 minutes", "37.5s", "1h30m", "3h 20m and 5s": total seconds (rounded
/// up). At least one number with a unit.
fn duration(lower: &str, mut i: usize) -> Option<u64> {
    let b = lower.as_bytes();
    let mut total = 0.0_f64;
    let mut parts = 0;
    loop {
        // Separators between parts.
        let mut j = skip_ws(b, i);
        if b.get(j) == Some(&b',') {
            j = skip_ws(b, j + 1);
        }
        if parts > 0 && lower[j..].starts_with("and ") {
            j = skip_ws(b, j + 4);
        }
        let Some((n, after_n)) = decimal(b, j) else {
            break;
        };
        let u = skip_ws(b, after_n);
        let unit_end = (u..b.len())
            .find(|&k| !b[k].is_ascii_alphabetic())
            .unwrap_or(b.len());
        let unit = &lower[u..unit_end];
        let mult = match unit {
            "ms" | "msec" | "millisecond" | "milliseconds" => 0.001,
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86_400.0,
            "w" | "wk" | "wks" | "week" | "weeks" => 604_800.0,
            _ => break,
        };
        total += n * mult;
        parts += 1;
        i = unit_end;
        if parts >= 8 {
            break;
        }
    }
    (parts > 0).then(|| ceil_secs(total))
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

#[cfg(test)]
mod tests {
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
}
