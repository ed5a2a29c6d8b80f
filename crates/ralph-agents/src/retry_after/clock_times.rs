//! Times of day: "resets 4pm (Europe/Paris)", "try again at 11:37 AM", "resets Oct 9 at 10am",
//! "try again at Dec 3rd, 2026 12:19 AM" (Codex, when the reset is not today): the next such
//! moment after now, in the named zone or the local one.

use jiff::civil::Date;
use jiff::Timestamp;

use super::lex::{digits, is_word_byte, skip_ws};
use super::{Scan, TimeOfDay};
use crate::event::RetryAfter;

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

impl Scan<'_> {
    /// "resets 4pm (Europe/Paris)", "try again at 11:37 AM", "resets Oct 9 at 10am".
    pub(super) fn clock_phrase(&self) -> Option<RetryAfter> {
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
        if let Some(md) = month_day {
            i = md.end;
        }
        let (time, end) = clock_time(b, i)?;
        let zone = self.zone_after(end);
        let tz = self.tz(zone.as_deref());
        let now = Timestamp::from_second(self.now).ok()?.to_zoned(tz.clone());
        match month_day {
            Some(md) => {
                // A stated year is taken as said (a reset in the past is no reset time);
                // without one, the next such date.
                let (mut year, tries) = md.year.map_or((now.year(), 2), |y| (y, 1));
                for _ in 0..tries {
                    let date = Date::new(year, md.month, md.day).ok()?;
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

    /// "Oct 9 at ", "October 9, ", "oct. 9th ", "Dec 3rd, 2026 ".
    fn month_day(&self, i: usize) -> Option<MonthDay> {
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
        let mut year = None;
        if let Some((y, e)) = digits(b, k) {
            // Four digits and then a space: a year ("2026 12:19 AM"), not an hour ("12:19").
            if e - k == 4 && b.get(e).is_some_and(u8::is_ascii_whitespace) {
                year = Some(i16::try_from(y).ok()?);
                k = skip_ws(b, e);
            }
        }
        if self.lower[k..].starts_with("at ") {
            k = skip_ws(b, k + 3);
        }
        Some(MonthDay {
            month: i8::try_from(month + 1).ok()?,
            day: i8::try_from(day).ok()?,
            year,
            end: k,
        })
    }
}

/// A date without its time: the year only when the text gives one.
#[derive(Clone, Copy)]
struct MonthDay {
    month: i8,
    day: i8,
    year: Option<i16>,
    /// Where the time of day should start.
    end: usize,
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
