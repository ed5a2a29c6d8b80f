//! The view: the text with escapes decoded and line breaks dropped, as the known-value matcher
//! searches it, mapped back to the original offsets.

use std::borrow::Cow;

/// A replaced run of the original text: `olen` bytes at `o` became `vlen` bytes at `v`.
#[derive(Clone, Copy, Debug)]
struct Esc {
    v: usize,
    o: usize,
    vlen: usize,
    olen: usize,
}

/// The text as the known-value matcher sees it: JSON escapes (`\"`, `\\`, `\/`, `\uXXXX`) and
/// URL escapes (`%XX` of a non-alphanumeric byte) decoded; real and escaped line breaks removed,
/// their positions kept as line boundaries; with a map back to the original offsets.
pub(super) struct View<'a> {
    pub(super) bytes: Cow<'a, [u8]>,
    escapes: Vec<Esc>,
    /// View offsets of line boundaries, increasing, without duplicates.
    pub(super) breaks: Vec<usize>,
}

fn hex_val(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

fn hex4(text: &[u8], at: usize) -> Option<u32> {
    let h = text.get(at..at + 4)?;
    h.iter()
        .try_fold(0u32, |acc, &b| Some((acc << 4) | hex_val(b)?))
}

/// Finds the bytes the view treats specially: `\\`, `%`, `\n` and `\r` (the last one searched
/// separately and remembered, as it is usually absent).
struct Specials<'a> {
    text: &'a [u8],
    next_cr: usize,
}

impl<'a> Specials<'a> {
    fn new(text: &'a [u8]) -> Self {
        let next_cr = memchr::memchr(b'\r', text).unwrap_or(text.len());
        Specials { text, next_cr }
    }

    fn next(&mut self, from: usize) -> usize {
        let text = self.text;
        if self.next_cr < from {
            self.next_cr = memchr::memchr(b'\r', &text[from..]).map_or(text.len(), |x| from + x);
        }
        let end = self.next_cr.min(text.len());
        match memchr::memchr3(b'\\', b'%', b'\n', &text[from..end]) {
            Some(x) => from + x,
            None => end,
        }
    }
}

impl<'a> View<'a> {
    pub(super) fn build(text: &'a [u8]) -> View<'a> {
        let mut specials = Specials::new(text);
        let first = specials.next(0);
        if first == text.len() {
            return View {
                bytes: Cow::Borrowed(text),
                escapes: Vec::new(),
                breaks: Vec::new(),
            };
        }
        let mut out: Vec<u8> = Vec::with_capacity(text.len());
        let mut escapes: Vec<Esc> = Vec::new();
        let mut breaks: Vec<usize> = Vec::new();
        let mut i = 0;
        let mut j = first;
        loop {
            out.extend_from_slice(&text[i..j]);
            if j >= text.len() {
                break;
            }
            let b = text[j];
            // (consumed original bytes, decoded bytes, is a line break)
            let mut decoded = [0u8; 4];
            let (olen, vlen, is_break) = match b {
                b'\n' | b'\r' => (1, 0, true),
                b'\\' => {
                    let run = text[j..].iter().take_while(|&&c| c == b'\\').count();
                    let next = text.get(j + run);
                    if run % 2 == 0 && matches!(next, Some(b'n' | b'r')) {
                        // `\\n`: a line break escaped twice (JSON inside a JSON string).
                        (run + 1, 0, true)
                    } else if run >= 2 {
                        // `\\`: one backslash.
                        decoded[0] = b'\\';
                        (2, 1, false)
                    } else {
                        match next {
                            Some(b'n' | b'r') => (2, 0, true),
                            Some(&c @ (b'/' | b'"' | b'\'')) => {
                                decoded[0] = c;
                                (2, 1, false)
                            }
                            Some(b'u') => match decode_u(text, j + 1) {
                                Some((ch, used)) => {
                                    let s = ch.encode_utf8(&mut decoded).len();
                                    (1 + used, s, false)
                                }
                                None => (1, 1, false),
                            },
                            _ => (1, 1, false),
                        }
                    }
                }
                b'%' => {
                    let v = text
                        .get(j + 1..j + 3)
                        .and_then(|h| Some(hex_val(h[0])? * 16 + hex_val(h[1])?));
                    match v {
                        Some(v) if !(v as u8).is_ascii_alphanumeric() => {
                            decoded[0] = v as u8;
                            (3, 1, false)
                        }
                        _ => (1, 1, false),
                    }
                }
                _ => (1, 1, false),
            };
            if olen == 1 && vlen == 1 && !is_break && decoded[0] == 0 {
                // Not an escape after all: the byte stands for itself.
                out.push(b);
            } else {
                let v = out.len();
                match escapes.last_mut() {
                    // Merge runs of line breaks.
                    Some(last)
                        if is_break && last.vlen == 0 && last.v == v && last.o + last.olen == j =>
                    {
                        last.olen += olen;
                    }
                    _ => escapes.push(Esc {
                        v,
                        o: j,
                        vlen,
                        olen,
                    }),
                }
                out.extend_from_slice(&decoded[..vlen]);
                if is_break && breaks.last() != Some(&v) {
                    breaks.push(v);
                }
            }
            i = j + olen;
            j = specials.next(i);
        }
        View {
            bytes: Cow::Owned(out),
            escapes,
            breaks,
        }
    }

    /// Original offset of the view byte at `p` (or of the end, for `p == len`).
    pub(super) fn map_start(&self, p: usize) -> usize {
        let idx = self.escapes.partition_point(|e| e.v <= p);
        match idx.checked_sub(1).and_then(|i| self.escapes.get(i)) {
            None => p,
            Some(e) if e.vlen > 0 && p < e.v + e.vlen => e.o,
            Some(e) => e.o + e.olen + (p - (e.v + e.vlen)),
        }
    }

    /// Original offset just after the view byte at `q - 1`.
    pub(super) fn map_end(&self, q: usize) -> usize {
        if q == 0 {
            return self.map_start(0);
        }
        let p = q - 1;
        let idx = self.escapes.partition_point(|e| e.v <= p);
        match idx.checked_sub(1).and_then(|i| self.escapes.get(i)) {
            None => q,
            Some(e) if e.vlen > 0 && p < e.v + e.vlen => e.o + e.olen,
            Some(e) => e.o + e.olen + (p - (e.v + e.vlen)) + 1,
        }
    }

    /// The view offset of the line boundary made by the line break at original offset `o`.
    pub(super) fn break_at(&self, o: usize) -> Option<usize> {
        let idx = self.escapes.partition_point(|e| e.o <= o);
        let e = self.escapes.get(idx.checked_sub(1)?)?;
        (e.vlen == 0 && o < e.o + e.olen).then_some(e.v)
    }
}

/// Decodes `\uXXXX` (and a following low surrogate) at `at` (pointing at the `u`): the char and
/// the bytes consumed from `at`.
fn decode_u(text: &[u8], at: usize) -> Option<(char, usize)> {
    let hi = hex4(text, at + 1)?;
    if (0xD800..0xDC00).contains(&hi) {
        if text.get(at + 5) == Some(&b'\\') && text.get(at + 6) == Some(&b'u') {
            let lo = hex4(text, at + 7)?;
            if (0xDC00..0xE000).contains(&lo) {
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return char::from_u32(c).map(|ch| (ch, 11));
            }
        }
        return None;
    }
    char::from_u32(hi).map(|ch| (ch, 5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_decodes_and_maps_back() {
        let text = br#"a\/b\u0041c%2Fd\ne\\f"#;
        let v = View::build(text);
        assert_eq!(&*v.bytes, b"a/bAc/de\\f");
        assert_eq!(v.breaks, vec![7]);
        // "A" (view 3) came from `\u0041` (orig 4..10).
        assert_eq!(v.map_start(3), 4);
        assert_eq!(v.map_end(4), 10);
        // "e" (view 7) is right after the escaped line break.
        assert_eq!(v.map_start(7), 17);
        assert_eq!(v.map_end(7), 15);
        assert_eq!(v.map_end(v.bytes.len()), text.len());
        let v = View::build(b"ab\r\ncd\n\nef");
        assert_eq!(&*v.bytes, b"abcdef");
        assert_eq!(v.breaks, vec![2, 4]);
        assert_eq!(v.map_start(2), 4);
        assert_eq!(v.break_at(2), Some(2));
        assert_eq!(v.break_at(3), Some(2));
        assert_eq!(v.break_at(1), None);
        let v = View::build(b"\\uD83D\\uDE00x");
        assert_eq!(&*v.bytes, "😀x".as_bytes());
        // Not escapes: kept.
        let v = View::build(b"50%zz \\t \\q %41");
        assert_eq!(&*v.bytes, b"50%zz \\t \\q %41");
    }
}
