//! Durations as users write them: `90s`, `30m`, `4h`, `1h30m`, `500ms`, `2d`.
//!
//! The accepted form is deliberately strict (a unit is required, no spaces, largest unit
//! first, each unit once) so that a value means one thing. When a value is rejected, a lenient
//! second reading (spaces, long unit names, any order, fractions) is tried only to suggest the
//! strict spelling of what the user probably meant.

use std::time::Duration;

const MS_PER_S: u128 = 1_000;
const MS_PER_M: u128 = 60 * MS_PER_S;
const MS_PER_H: u128 = 60 * MS_PER_M;
const MS_PER_D: u128 = 24 * MS_PER_H;
/// A bound well past any sensible run (100 years) that keeps `Instant + duration` from
/// overflowing in the engine.
const MAX_DAYS: u128 = 36_500;
const MAX_MS: u128 = MAX_DAYS * MS_PER_D;

/// Why a duration was rejected, and the strict spelling of what was probably meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DurationError {
    pub reason: String,
    pub fix: Option<String>,
}

/// Parse a duration such as `90s`, `30m`, `4h`, `1h30m`, `500ms` or `2d`.
///
/// The error is a short reason (with the corrected spelling when one can be guessed), meant to
/// follow "invalid value '…' for '--max-runtime <DUR>': " in a clap error.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_detailed(s).map_err(|e| match e.fix {
        Some(fix) => format!("{}; write \"{fix}\"", e.reason),
        None => e.reason,
    })
}

/// Format a duration the way [`parse_duration`] reads it (`1h30m`, `500ms`, `0s`), to the
/// millisecond.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", MS_PER_D),
        ("h", MS_PER_H),
        ("m", MS_PER_M),
        ("s", MS_PER_S),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    if ms > 0 {
        out.push_str(&format!("{ms}ms"));
    }
    out
}

pub(crate) fn parse_detailed(s: &str) -> Result<Duration, DurationError> {
    match scan(s, false) {
        Ok(ms) => Ok(to_duration(ms)),
        Err(reason) => {
            let fix = guess_fix(s);
            Err(DurationError { reason, fix })
        }
    }
}

fn to_duration(ms: u128) -> Duration {
    // `ms` is at most MAX_MS, which fits in u64.
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

fn guess_fix(s: &str) -> Option<String> {
    let t = s.trim();
    // A bare number is the most common mistake; seconds is the smallest unit people write
    // by hand, and the hint also names the unit so nobody is surprised.
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!("{t}s"));
    }
    let ms = scan(s, true).ok()?;
    Some(format_duration(to_duration(ms)))
}

/// Milliseconds per unit; long names only in lenient mode.
fn unit_ms(unit: &str, lenient: bool) -> Option<u128> {
    let strict = match unit {
        "ms" => Some(1),
        "s" => Some(MS_PER_S),
        "m" => Some(MS_PER_M),
        "h" => Some(MS_PER_H),
        "d" => Some(MS_PER_D),
        _ => None,
    };
    if strict.is_some() || !lenient {
        return strict;
    }
    match unit.to_ascii_lowercase().as_str() {
        "ms" | "msec" | "msecs" | "millis" | "millisecond" | "milliseconds" => Some(1),
        "s" | "sec" | "secs" | "second" | "seconds" => Some(MS_PER_S),
        "m" | "min" | "mins" | "minute" | "minutes" => Some(MS_PER_M),
        "h" | "hr" | "hrs" | "hour" | "hours" => Some(MS_PER_H),
        "d" | "day" | "days" => Some(MS_PER_D),
        _ => None,
    }
}

/// Total milliseconds of `s`, or the reason it is not a duration. `lenient` accepts spaces,
/// long or upper-case unit names, any unit order and fractions (used only to guess a fix).
fn scan(s: &str, lenient: bool) -> Result<u128, String> {
    if s.trim().is_empty() {
        return Err("empty duration".into());
    }
    if !lenient && s.trim() != s {
        return Err("unexpected space".into());
    }
    let chars: Vec<char> = s.trim().chars().collect();
    if chars.first() == Some(&'-') {
        return Err("a duration cannot be negative".into());
    }
    let mut i = 0;
    let mut total: u128 = 0;
    let mut previous_unit: Option<u128> = None;
    while i < chars.len() {
        if lenient {
            while chars.get(i).is_some_and(|c| c.is_whitespace()) {
                i += 1;
            }
        }
        let start = i;
        while chars.get(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        if i == start {
            let rest: String = chars[i..].iter().collect();
            return Err(if i == 0 {
                format!("expected a number at \"{rest}\"")
            } else if rest.starts_with(char::is_whitespace) {
                "unexpected space".into()
            } else {
                format!("unexpected \"{rest}\"")
            });
        }
        let whole: String = chars[start..i].iter().collect();
        let mut fraction = String::new();
        if chars.get(i) == Some(&'.') {
            if !lenient {
                return Err("fractions are not supported".into());
            }
            i += 1;
            while let Some(c) = chars.get(i).filter(|c| c.is_ascii_digit()) {
                fraction.push(*c);
                i += 1;
            }
        }
        let spaces = i;
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        let unit_start = i;
        while chars.get(i).is_some_and(|c| c.is_ascii_alphabetic()) {
            i += 1;
        }
        let unit: String = chars[unit_start..i].iter().collect();
        if unit.is_empty() {
            return Err(match chars.get(i) {
                None => "missing unit (ms, s, m, h or d)".into(),
                Some(c) => format!("unexpected character '{c}'"),
            });
        }
        let Some(size) = unit_ms(&unit, lenient) else {
            return Err(format!("unknown unit \"{unit}\" (use ms, s, m, h or d)"));
        };
        if !lenient && spaces != unit_start {
            return Err("unexpected space".into());
        }
        if !lenient && previous_unit.is_some_and(|p| size >= p) {
            return Err(
                "units must go from largest to smallest, each once, as in \"1h30m\"".into(),
            );
        }
        previous_unit = Some(size);
        let n: u128 = whole.parse().map_err(|_| "number too large".to_string())?;
        let mut ms = n.checked_mul(size).ok_or_else(too_long)?;
        if !fraction.is_empty() {
            let digits = u32::try_from(fraction.len()).map_err(|_| too_long())?;
            let denominator = 10u128.checked_pow(digits).ok_or_else(too_long)?;
            let numerator: u128 = fraction.parse().map_err(|_| too_long())?;
            let part = numerator.checked_mul(size).ok_or_else(too_long)?;
            if part % denominator != 0 {
                return Err("finer than a millisecond".into());
            }
            ms += part / denominator;
        }
        total = total.checked_add(ms).ok_or_else(too_long)?;
        if total > MAX_MS {
            return Err(too_long());
        }
    }
    Ok(total)
}

fn too_long() -> String {
    format!("too long (at most {MAX_DAYS}d)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_durations() {
        let cases = [
            ("90s", 90_000),
            ("30m", 1_800_000),
            ("4h", 14_400_000),
            ("1h30m", 5_400_000),
            ("500ms", 500),
            ("2d", 172_800_000),
            ("0s", 0),
            ("1d2h3m4s5ms", 93_784_005),
            ("1m30s", 90_000),
            ("007s", 7_000),
        ];
        for (s, ms) in cases {
            assert_eq!(parse_duration(s), Ok(Duration::from_millis(ms)), "{s}");
        }
    }

    #[test]
    fn invalid_durations_say_why_and_suggest() {
        let cases = [
            ("", "empty duration"),
            ("10", "missing unit (ms, s, m, h or d); write \"10s\""),
            ("-3s", "a duration cannot be negative"),
            ("5 minutes", "unknown unit \"minutes\" (use ms, s, m, h or d); write \"5m\""),
            ("5 m", "unexpected space; write \"5m\""),
            (" 5m", "unexpected space; write \"5m\""),
            ("1h 30m", "unexpected space; write \"1h30m\""),
            ("1.5h", "fractions are not supported; write \"1h30m\""),
            ("0.5s", "fractions are not supported; write \"500ms\""),
            ("30m1h", "units must go from largest to smallest, each once, as in \"1h30m\"; write \"1h30m\""),
            ("1m1m", "units must go from largest to smallest, each once, as in \"1h30m\"; write \"2m\""),
            ("30M", "unknown unit \"M\" (use ms, s, m, h or d); write \"30m\""),
            ("h", "expected a number at \"h\""),
            ("5s!", "unexpected \"!\""),
            ("5s 3", "unexpected space"),
            ("4hours", "unknown unit \"hours\" (use ms, s, m, h or d); write \"4h\""),
            ("99999999999999999999999999999999999999999d", "number too large"),
            ("36501d", "too long (at most 36500d)"),
            ("1x", "unknown unit \"x\" (use ms, s, m, h or d)"),
        ];
        for (s, want) in cases {
            assert_eq!(parse_duration(s), Err(want.to_string()), "{s:?}");
        }
    }

    #[test]
    fn format_round_trips() {
        for s in ["0s", "500ms", "1h30m", "2d", "1d2h3m4s5ms", "10m"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
