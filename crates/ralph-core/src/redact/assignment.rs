//! Secret assignments (`password = …`, `"client_secret": …`): whether the value looks like a
//! real secret rather than code, a path, an identifier, a hash or a placeholder.

use super::contains;
use super::patterns::Cont;

/// Whether `hay` (starting with a keyword of `kw` bytes) can match the assignment rule: looser
/// than the regex, which decides.
pub(super) fn assignment_precheck(hay: &[u8], kw: usize) -> bool {
    let at = |i: usize| hay.get(i).copied().unwrap_or(0);
    let mut i = kw;
    while i < hay.len()
        && i - kw <= 32
        && (at(i).is_ascii_alphanumeric() || matches!(at(i), b'_' | b'.' | b'-'))
    {
        i += 1;
    }
    while at(i) == b'\\' || at(i) == b'"' || at(i) == b'\'' || at(i) == b' ' || at(i) == b'\t' {
        i += 1;
    }
    if !matches!(at(i), b'=' | b':') {
        return false;
    }
    i += 1;
    while matches!(at(i), b'=' | b'>' | b' ' | b'\t' | b'\\' | b'"' | b'\'') {
        i += 1;
    }
    let rest = &hay[i.min(hay.len())..];
    let mut run = &rest[..rest.iter().take_while(|&&b| Cont::Value.accepts(b)).count()];
    // As `accept` and `plausible_assignment` will: trailing punctuation trimmed, code rejected.
    while let [head @ .., b'.' | b')' | b']' | b'}'] = run {
        run = head;
    }
    run.len() >= 12
        && !run
            .iter()
            .any(|&b| matches!(b, b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'<' | b'>'))
}

/// Whether an assignment's value looks like a real secret (see the module docs).
pub(super) fn plausible_assignment(v: &[u8]) -> bool {
    if v.len() < 12 {
        return false;
    }
    if v.starts_with(b"[REDACTED")
        || matches!(v[0], b'$' | b'%' | b'{' | b'<' | b'=' | b'*' | b'&' | b':')
    {
        return false;
    }
    if word_like(v) {
        return false;
    }
    // Hex only: git SHAs, checksums, UUIDs.
    if v.iter().all(|&b| b.is_ascii_hexdigit() || b == b'-') {
        return false;
    }
    // Identifiers and words.
    if !v.iter().any(u8::is_ascii_digit)
        && v.iter()
            .all(|&b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'.' | b'-'))
    {
        return false;
    }
    // Code.
    if v.iter()
        .any(|&b| matches!(b, b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'<' | b'>'))
        || contains(v, b"::")
        || contains(v, b"->")
        || contains(v, b"://")
    {
        return false;
    }
    // Paths.
    let pathy = v.starts_with(b"/")
        || v.starts_with(b"./")
        || v.starts_with(b"../")
        || v.starts_with(b"~/");
    if pathy
        && v.iter().filter(|&&b| b == b'/').count() >= 2
        && v.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-' | b'~'))
    {
        return false;
    }
    let lower = v.to_ascii_lowercase();
    const PLACEHOLDERS: &[&[u8]] = &[
        b"xxxx",
        b"****",
        b"....",
        b"example",
        b"placeholder",
        b"changeme",
        b"your_",
        b"your-",
        b"redacted",
    ];
    if PLACEHOLDERS.iter().any(|p| contains(&lower, p)) {
        return false;
    }
    let threshold = (v.len() as f64).log2().min(4.0) - 0.5;
    shannon_entropy(v) >= threshold.min(3.5)
}

/// Whether `v` reads as identifiers or words rather than random characters: its letter and
/// digit runs (a capital starting a lower-case run counts with it) average 3 characters or
/// more, and it has separators (`_`, `-`, `.`) or capitals to mark them:
/// `DOT11_WPS_PASSWORD_ID`, `MsV1_0ChangePassword`, `quote_spanned!`, `scram-sha-256`. Random
/// strings average under 2 (`Ov8GZ4fKq1OKtbgZVaMWUFuX`: 1.7); random lower-case-and-digit
/// strings average about 2.5 but have neither separators nor capitals.
fn word_like(v: &[u8]) -> bool {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Class {
        Upper,
        Lower,
        Digit,
    }
    let (mut chars, mut runs, mut marked) = (0usize, 0usize, false);
    let mut prev: Option<(Class, usize)> = None;
    for &b in v {
        let class = if b.is_ascii_uppercase() {
            Class::Upper
        } else if b.is_ascii_lowercase() {
            Class::Lower
        } else if b.is_ascii_digit() {
            Class::Digit
        } else {
            marked |= matches!(b, b'_' | b'-' | b'.');
            prev = None;
            continue;
        };
        marked |= class == Class::Upper;
        chars += 1;
        prev = match prev {
            Some((c, n)) if c == class => Some((c, n + 1)),
            Some((Class::Upper, 1)) if class == Class::Lower => Some((Class::Lower, 2)),
            _ => {
                runs += 1;
                Some((class, 1))
            }
        };
    }
    marked && runs > 0 && chars >= 3 * runs
}

/// Shannon entropy of `bytes`, in bits per byte.
pub fn shannon_entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy() {
        assert_eq!(shannon_entropy(b""), 0.0);
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
    }

    #[test]
    fn assignment_values() {
        for v in ["Zx9qLmP2vR7tW4kB", "hG7#kL2@pQ9!mN4z", "k9Vq2LmZ8xTe"] {
            assert!(plausible_assignment(v.as_bytes()), "{v}");
        }
        for v in [
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "123e4567-e89b-12d3-a456-426614174000",
            "self.next_token_from_stream",
            "get_token(config,",
            "Option<String>",
            "/etc/ssl/private/key.pem",
            "https://example.com/a",
            "${GITHUB_TOKEN}",
            "xxxxxxxxxxxxxxxx",
            "your_api_key_here1",
            "[REDACTED:DB_PASSWORD]",
            "1234567890123456",
            "aaaaaaaaaaaa1",
            "DOT11_WPS_PASSWORD_ID",
            ":FlowEntry)",
            "quote_spanned!",
            "scram-sha-256",
            "MsV1_0ChangePassword",
        ] {
            assert!(!plausible_assignment(v.as_bytes()), "{v}");
        }
    }

    #[test]
    fn word_like_values() {
        for v in [
            "DOT11_WPS_PASSWORD_ID",
            "quote_spanned!",
            "scram-sha-256",
            "TokenStreamBuilder",
        ] {
            assert!(word_like(v.as_bytes()), "{v}");
        }
        for v in [
            "Ov8GZ4fKq1OKtbgZVaMWUFuX",
            "x7k2m9p4q8w3z5n1abc",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "2YotnFZFEjr1zCsicMWpAA",
        ] {
            assert!(!word_like(v.as_bytes()), "{v}");
        }
    }
}
