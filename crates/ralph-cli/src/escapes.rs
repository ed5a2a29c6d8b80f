//! Agent output shown on a terminal is shown, not obeyed: an escape sequence in it could move
//! the cursor, rewrite what the user already read (`\r`, CSI), set the window title, write the
//! clipboard (OSC 52) or plant a link (OSC 8). Control characters other than newline and tab
//! are written in caret notation (`^[`, `^M`, `^?`) and C1 controls as `<U+009B>`, so the user
//! sees that they were there. `ralph logs --raw` writes the bytes as they are; so does any
//! output that is not a terminal (a file or a pipe keeps the artifact exact).

use std::io::{self, Read, Write};

/// Whether to neutralise: on a terminal, unless `--raw`.
pub fn wanted(raw: bool) -> bool {
    !raw && io::IsTerminal::is_terminal(&io::stdout())
}

/// `text` with its control characters made visible.
pub fn neutralise_str(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut pending = None;
    neutralise(text.as_bytes(), &mut pending, &mut out);
    flush_pending(&mut pending, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Copy `src` to `dst`, control characters made visible, in bounded memory.
pub fn copy(src: &mut dyn Read, dst: &mut dyn Write) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(buf.len() * 2);
    // A UTF-8 lead byte of a possible C1 control at the end of one read.
    let mut pending = None;
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.clear();
        neutralise(&buf[..n], &mut pending, &mut out);
        dst.write_all(&out)?;
    }
    out.clear();
    flush_pending(&mut pending, &mut out);
    dst.write_all(&out)
}

fn flush_pending(pending: &mut Option<u8>, out: &mut Vec<u8>) {
    if let Some(b) = pending.take() {
        out.push(b);
    }
}

fn neutralise(bytes: &[u8], pending: &mut Option<u8>, out: &mut Vec<u8>) {
    for &b in bytes {
        if let Some(lead) = pending.take() {
            // U+0080..U+009F are 0xC2 0x80..0x9F in UTF-8.
            if (0x80..=0x9f).contains(&b) {
                out.extend_from_slice(format!("<U+{:04X}>", u32::from(b)).as_bytes());
                continue;
            }
            out.push(lead);
        }
        match b {
            b'\n' | b'\t' => out.push(b),
            0xc2 => *pending = Some(b),
            0x00..=0x1f => {
                out.push(b'^');
                out.push(b + 0x40);
            }
            0x7f => out.extend_from_slice(b"^?"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_shown_not_obeyed() {
        assert_eq!(
            neutralise_str("ok\x1b[2J\x1b]52;c;aGk=\x07done\r\n"),
            "ok^[[2J^[]52;c;aGk=^Gdone^M\n"
        );
        assert_eq!(
            neutralise_str("a\u{9b}31mb\u{e9}\t"),
            "a<U+009B>31mb\u{e9}\t"
        );
        assert_eq!(neutralise_str("del\x7f"), "del^?");
    }

    #[test]
    fn a_c1_control_split_across_reads_is_still_seen() {
        let mut src: &[u8] = "x\u{9b}y".as_bytes();
        let mut out = Vec::new();
        // One byte per read: the lead byte arrives alone.
        struct OneByte<'a>(&'a mut &'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.split_first() {
                    Some((b, rest)) => {
                        buf[0] = *b;
                        *self.0 = rest;
                        Ok(1)
                    }
                    None => Ok(0),
                }
            }
        }
        copy(&mut OneByte(&mut src), &mut out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(String::from_utf8_lossy(&out), "x<U+009B>y");
    }
}
