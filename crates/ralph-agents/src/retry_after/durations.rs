//! Relative delays: "try again in 2 days 17 hours 14 minutes", "retry in 37.5s", "resets in
//! 3h 20m".

use super::lex::{ceil_secs, decimal, is_word_byte, skip_ws};
use super::Scan;
use crate::event::RetryAfter;

impl Scan<'_> {
    /// "try again in 2 days 17 hours 14 minutes", "retry in 37.5s", "resets in 3h 20m".
    pub(super) fn duration_phrase(&self) -> Option<RetryAfter> {
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
