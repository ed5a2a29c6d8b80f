//! Calendar dates: "regain access on 2026-04-01 at 00:00 UTC", "resets at
//! 2026-04-01T00:00:00Z", with a zone, an offset or the local zone.

use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::lex::{digits, skip_ws};
use super::{Scan, TimeOfDay};
use crate::event::RetryAfter;

impl Scan<'_> {
    /// "regain access on 2026-04-01 at 00:00 UTC", "resets at 2026-04-01T00:00:00Z".
    pub(super) fn date_phrase(&self) -> Option<RetryAfter> {
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
