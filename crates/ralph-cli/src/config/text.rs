//! Small text helpers for error messages: positions, value descriptions, suggestions.

use toml_edit::{Item, Value};

/// 1-based (line, column) of a byte offset; the column counts characters, as editors do.
///
/// An offset at the very end of a file that ends with a newline is moved back onto that
/// newline: "unexpected end of file" then points at the end of the last line rather than at
/// an empty line that editors do not show.
pub(crate) fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    if offset == src.len() && offset > 0 && src.ends_with('\n') {
        offset -= 1;
    }
    while offset > 0 && !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = src.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).unwrap_or_default().chars().count() + 1;
    (line, column)
}

/// A string as it appears in messages: quoted, escaped, shortened when long.
pub(crate) fn quote(s: &str) -> String {
    const MAX: usize = 40;
    let mut t: String = s.chars().take(MAX).collect();
    if s.chars().count() > MAX {
        t.push('…');
    }
    format!("{t:?}")
}

/// A string written as a TOML basic string (for hints that show a corrected line).
pub(crate) fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// "a string \"x\"", "an integer 5", "a table", … for "expected …, found …" messages.
pub(crate) fn found(item: &Item) -> String {
    match item {
        Item::None => "nothing".into(),
        Item::Value(v) => found_value(v),
        Item::Table(_) => "a table".into(),
        Item::ArrayOfTables(_) => "an array of tables".into(),
    }
}

pub(crate) fn found_value(v: &Value) -> String {
    match v {
        Value::String(s) if s.value().is_empty() => "an empty string".into(),
        Value::String(s) => format!("a string {}", quote(s.value())),
        Value::Integer(i) => format!("an integer {}", i.value()),
        Value::Float(f) => format!("a float {}", float(*f.value())),
        Value::Boolean(b) => format!("a boolean {}", b.value()),
        Value::Datetime(d) => format!("a date-time {}", d.value()),
        Value::Array(a) if a.is_empty() => "an empty array".into(),
        Value::Array(_) => "an array".into(),
        Value::InlineTable(_) => "an inline table".into(),
    }
}

/// A float as TOML spells it (`10.0`, `nan`, `inf`).
pub(crate) fn float(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.into()
    } else if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// The closest candidate to `word`, if it is close enough to be a plausible typo.
pub(crate) fn suggest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let word = word.to_lowercase();
    let mut best: Option<(usize, &'c str)> = None;
    for &c in candidates {
        let d = distance(&word, c);
        let limit = (word.chars().count().max(c.chars().count()) / 3).max(1);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Edit distance counting insertions, deletions, substitutions and swaps of neighbours
/// (optimal string alignment), the usual shapes of a typo.
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = v;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let src = "ab\ncdé f\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 3), (2, 1));
        // After the two-byte 'é', the column counts characters.
        assert_eq!(line_col(src, 8), (2, 5));
        // Inside a multi-byte character: the character's own column.
        assert_eq!(line_col(src, 6), (2, 3));
        // End of file after a final newline: end of the last line.
        assert_eq!(line_col(src, src.len()), (2, 6));
        assert_eq!(line_col(src, 999), (2, 6));
        assert_eq!(line_col("", 0), (1, 1));
    }

    #[test]
    fn suggestions() {
        let keys = ["max_iterations", "max_runtime", "idle_timeout"];
        assert_eq!(suggest("max_iteration", &keys), Some("max_iterations"));
        assert_eq!(suggest("max_itreations", &keys), Some("max_iterations"));
        assert_eq!(suggest("MAX_RUNTIME", &keys), Some("max_runtime"));
        assert_eq!(suggest("colour", &keys), None);
        assert_eq!(distance("ab", "ba"), 1);
        assert_eq!(distance("", "abc"), 3);
    }

    #[test]
    fn strings() {
        assert_eq!(quote("a\"b\n"), "\"a\\\"b\\n\"");
        assert_eq!(quote(&"x".repeat(50)), format!("\"{}…\"", "x".repeat(40)));
        assert_eq!(toml_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(float(10.0), "10.0");
        assert_eq!(float(2.5), "2.5");
        assert_eq!(float(f64::NAN), "nan");
        assert_eq!(float(f64::NEG_INFINITY), "-inf");
    }
}
