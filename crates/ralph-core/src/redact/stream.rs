//! Streaming redaction: a [`Write`] that holds back just enough of what it is fed to match
//! secrets that straddle chunks and lines.

use std::io::{self, Write};

use super::patterns::{Cont, PatternKind};
use super::{contains, Label, Redactor, MAX_BLOCK_LEN};

/// Least number of bytes of an unfinished line a [`StreamRedactor`] holds back: longer than the
/// shortest text any pattern needs to recognise its credential.
const MIN_WINDOW: usize = 512;

/// Process buffered input once it holds a line end or this many bytes.
const PROCESS_AT: usize = 8 * 1024;

/// A [`Write`] that redacts what goes through it before passing it on (to an artifact file, a
/// log): fed arbitrary chunks, it catches secrets that straddle chunk boundaries.
///
/// Complete lines are passed on promptly (so `ralph logs --follow` and tailers see them), except
/// that
/// * a line ending with at least 4 bytes that begin a known value is held back from those
///   bytes until the next line arrives, so a value split across lines is matched whole;
/// * a private-key block is held until its END line, up to [`MAX_BLOCK_LEN`], beyond which it is
///   redacted wholesale and its further body lines are dropped.
///
/// A value split after its first 1 to 3 bytes keeps them (the rest is redacted as a fragment
/// starting a line): holding every line that ends like the start of some value would delay
/// ordinary output. Of an unfinished line, the last `max(512, longest known value + 4)` bytes
/// are held back (and any match running into them). [`Write::flush`] passes on what is safe and flushes the inner
/// writer; [`StreamRedactor::finish`] passes on everything. Dropping without `finish` passes on
/// everything too, ignoring errors.
pub struct StreamRedactor<W: Write> {
    redactor: Redactor,
    inner: Option<W>,
    pending: Vec<u8>,
    /// Whether `pending` starts a line.
    at_line_start: bool,
    /// Bytes continuing a span already redacted past the memory cap.
    cont: Option<Cont>,
    out: Vec<u8>,
}

impl<W: Write> StreamRedactor<W> {
    /// Wraps `inner`.
    pub fn new(redactor: Redactor, inner: W) -> Self {
        StreamRedactor {
            redactor,
            inner: Some(inner),
            pending: Vec::new(),
            at_line_start: true,
            cont: None,
            out: Vec::new(),
        }
    }

    /// The wrapped writer.
    pub fn get_ref(&self) -> Option<&W> {
        self.inner.as_ref()
    }

    /// Bytes written but not yet passed on.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Passes on everything still held back, flushes and returns the wrapped writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.process(true)?;
        let mut inner = self
            .inner
            .take()
            .ok_or_else(|| io::Error::other("stream redactor already finished"))?;
        inner.flush()?;
        Ok(inner)
    }

    fn emit(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let inner = self
            .inner
            .as_mut()
            .ok_or_else(|| io::Error::other("stream redactor already finished"))?;
        inner.write_all(&self.out)?;
        self.out.clear();
        Ok(())
    }

    fn process(&mut self, last: bool) -> io::Result<()> {
        loop {
            if let Some(cont) = self.cont {
                let n = self
                    .pending
                    .iter()
                    .take_while(|&&b| cont.accepts(b))
                    .count();
                self.pending.drain(..n);
                if self.pending.is_empty() && !last {
                    return Ok(());
                }
                self.cont = None;
                self.at_line_start = false;
            }
            if self.pending.is_empty() {
                return Ok(());
            }
            let more = self.step(last);
            self.emit()?;
            if !more {
                return Ok(());
            }
        }
    }

    /// Passes on what is safe; `true` when called again it could pass on more.
    fn step(&mut self, last: bool) -> bool {
        let text = &self.pending;
        let len = text.len();
        let (hits, view) = self.redactor.find(text, self.at_line_start, last);
        let mut forced = false;
        let cut = if last {
            len
        } else {
            let window = self.redactor.window();
            let line_end = memchr::memrchr(b'\n', text).map(|i| i + 1);
            let tail_start = line_end.unwrap_or(0);
            let mut cut = tail_start.max(len.saturating_sub(window));
            // A line ending with the start of a known value: hold it back.
            if cut == tail_start && tail_start > 0 {
                if let Some(view) = &view {
                    if let Some(b) = view.break_at(tail_start - 1) {
                        if let Some(s) = self.redactor.needle_prefix_before(&view.bytes, b) {
                            cut = cut.min(view.map_start(s));
                        }
                    }
                }
            }
            // Never cut a match, nor pass on the start of one that may grow.
            loop {
                let mut changed = false;
                for h in &hits {
                    let grows = h.end == len
                        || (h.label == Label::Kind(PatternKind::PrivateKey)
                            && pem_may_continue(&text[h.start..h.end], &text[h.end..]));
                    if h.start < cut && (h.end > cut || grows) {
                        cut = h.start;
                        changed = true;
                    }
                }
                if !changed {
                    break;
                }
            }
            if len - cut > window + MAX_BLOCK_LEN {
                // Holding too much: a match running on. Pass it on, redacted, up to where it has
                // reached, and keep dropping what continues it.
                if let Some(h) = hits.iter().find(|h| h.start == cut) {
                    cut = h.end;
                    self.cont = h.cont;
                    forced = true;
                } else {
                    cut = len.saturating_sub(window);
                }
            }
            cut
        };
        if cut == 0 {
            return false;
        }
        // No match spans the cut: the ones before it are a prefix.
        let used = hits.partition_point(|h| h.end <= cut);
        self.redactor
            .render(&text[..cut], &hits[..used], &mut self.out);
        self.at_line_start = text[cut - 1] == b'\n';
        self.pending.drain(..cut);
        forced && !self.pending.is_empty()
    }
}

/// Whether a private-key block `block` followed by `rest` (the end of what was written) may
/// still grow: it has no END line yet and `rest` is at most the start of one more line.
fn pem_may_continue(block: &[u8], rest: &[u8]) -> bool {
    if block.ends_with(b"-----") && contains(block, b"-----END") {
        return false;
    }
    let mut rest = rest;
    loop {
        match rest {
            [b'\\', b'n' | b'r', tail @ ..] => rest = tail,
            [b, tail @ ..] if b.is_ascii_whitespace() || *b == b'\\' => rest = tail,
            _ => break,
        }
    }
    rest.len() < 128 && !rest.contains(&b'\n')
}

impl<W: Write> Write for StreamRedactor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if memchr::memchr(b'\n', buf).is_some()
            || self.pending.len() >= PROCESS_AT.max(2 * self.redactor.window())
        {
            self.process(false)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.process(false)?;
        match self.inner.as_mut() {
            Some(inner) => inner.flush(),
            None => Ok(()),
        }
    }
}

impl<W: Write> Drop for StreamRedactor<W> {
    fn drop(&mut self) {
        if self.inner.is_some() {
            let _ = self.process(true);
            if let Some(inner) = self.inner.as_mut() {
                let _ = inner.flush();
            }
        }
    }
}

impl Redactor {
    /// Bytes of an unfinished line a [`StreamRedactor`] holds back.
    fn window(&self) -> usize {
        MIN_WINDOW.max(self.inner.max_needle + 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_holds_line_end_prefix_and_flushes_lines() {
        let r = Redactor::new([("MY_API_KEY".to_string(), "Qw3rTy-uIoP-7890zz".to_string())]);
        let mut s = StreamRedactor::new(r, Vec::new());
        s.write_all(b"hello\nworld\n").unwrap_or_default();
        assert_eq!(s.get_ref().map(Vec::as_slice), Some(&b"hello\nworld\n"[..]));
        s.write_all(b"begins Qw3r\n").unwrap_or_default();
        assert_eq!(
            s.get_ref().map(Vec::as_slice),
            Some(&b"hello\nworld\nbegins "[..])
        );
        s.write_all(b"Ty-uIoP-7890zz end\n").unwrap_or_default();
        let out = s.finish().unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&out),
            "hello\nworld\nbegins [REDACTED:MY_API_KEY]\n end\n"
        );
    }
}
