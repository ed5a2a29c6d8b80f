//! Machine-readable forms: an epoch after `reached|`, JSON fields (`resets_at`,
//! `resets_in_seconds`, Gemini's `retryDelay`) and `Retry-After` headers.

use super::lex::{ceil_secs, decimal, digits, is_word_byte, key_separator, skip_ws};
use super::{head, Scan};
use crate::event::RetryAfter;

impl Scan<'_> {
    /// "usage limit reached|1753441200".
    pub(super) fn epoch_after_pipe(&self) -> Option<RetryAfter> {
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

    pub(super) fn json_epoch(&self, keys: &[&str]) -> Option<RetryAfter> {
        keys.iter()
            .find_map(|k| self.key_number(k).and_then(epoch))
            .map(RetryAfter::At)
    }

    pub(super) fn json_seconds(&self, keys: &[&str]) -> Option<RetryAfter> {
        keys.iter()
            .find_map(|k| self.key_number(k))
            .map(RetryAfter::In)
    }

    /// `Retry-After: 30`, `"retry-after":"1"`, `retry_after=30`, an HTTP date, or
    /// `retry-after-ms: 1500`.
    pub(super) fn retry_after_header(&self) -> Option<RetryAfter> {
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
    pub(super) fn retry_delay_field(&self) -> Option<RetryAfter> {
        self.word_starts("retrydelay").find_map(|i| {
            let j = key_separator(self.b, i + "retrydelay".len())?;
            let (v, end) = decimal(self.b, j)?;
            (self.b.get(end) == Some(&b's')).then(|| RetryAfter::In(ceil_secs(v)))
        })
    }
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
