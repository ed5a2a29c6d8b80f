//! Byte-level scanning shared by every phrase: words, spaces, numbers and `key: value`
//! separators in the lowercased text.

pub(super) fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// Digits at `i`: (value, end). At most 18 digits, so the value cannot overflow.
pub(super) fn digits(b: &[u8], i: usize) -> Option<(u64, usize)> {
    let mut j = i;
    let mut n: u64 = 0;
    while j < b.len() && b[j].is_ascii_digit() && j - i < 18 {
        n = n * 10 + u64::from(b[j] - b'0');
        j += 1;
    }
    (j > i).then_some((n, j))
}

/// A decimal number at `i` ("37", "37.5"): (value, end).
pub(super) fn decimal(b: &[u8], i: usize) -> Option<(f64, usize)> {
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

pub(super) fn ceil_secs(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        // Bounded: nobody waits 10^15 seconds.
        v.ceil().min(1e15) as u64
    } else {
        0
    }
}

/// `:` or `=` between a key and its value, with optional quotes and spaces around.
pub(super) fn key_separator(b: &[u8], mut i: usize) -> Option<usize> {
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
