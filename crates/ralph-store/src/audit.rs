//! The audit log, `.ralph/audit.jsonl`: an append-only, hash-chained record of security-relevant
//! events (a run starts or finishes, a checkpoint, a rollback, a guardrail trips, a command is
//! blocked, a gate finishes).
//!
//! # Format
//!
//! One record per line, UTF-8, each line ended by `\n`. The writer produces the line itself, with
//! the keys always in this order and no whitespace (shown on two lines here):
//!
//! ```text
//! {"v":1,"seq":7,"ts":"2025-01-31T09:00:00.000Z","kind":"checkpoint","run_id":"r1",⏎
//!  "data":{…},"prev":"<64 hex>","hash":"<64 hex>"}
//! ```
//!
//! - `v`: the format version, 1.
//! - `seq`: 1 for the first record, then +1 per record; record `n` is on line `n`.
//! - `ts`: RFC3339 UTC with milliseconds. `kind`: see [`kinds`]. `run_id`: `""` when the event
//!   belongs to no run (e.g. `audit.recovered`). `data`: any JSON value, compact as
//!   `serde_json` writes it.
//! - `prev`: the previous record's `hash`; 64 `0`s for the first record.
//! - `hash`: lowercase hex SHA-256 of `prev` (its 64 ASCII hex characters) followed by the
//!   record's *canonical bytes*: the exact bytes of the line (without its `\n`) with the final
//!   `,"hash":"<64 hex>"` removed, i.e. the line up to and including the `prev` value's closing
//!   quote, then `}`. In shell terms, `printf '%s%s' "$prev" "$canonical" | sha256sum`.
//!
//! Verification hashes the bytes exactly as they are in the file (it never re-serialises), so any
//! changed byte before the `hash` field changes the hash, and the `hash` field itself must be the
//! last key and 64 lowercase hex digits, so any changed byte there is noticed too.
//!
//! # What verification catches, and what it cannot
//!
//! [`verify`] reports the first line that is not valid JSON, has another version, whose `seq` is
//! not the previous one + 1 (a record deleted, inserted or moved), whose `prev` is not the
//! previous record's hash, whose hash does not match its bytes (a modified record), or that has
//! no trailing newline (a truncated file or a torn write).
//!
//! A hash chain alone cannot tell that records were removed *from the end*: what remains is a
//! valid, shorter chain. Nor can it tell a log rewritten from scratch by someone who recomputes
//! every hash. Both need the head stored somewhere else: the engine writes it into every
//! checkpoint commit message as a line `ralph-audit-head: <hex>` ([`anchor_line`]), and
//! [`verify_with_anchors`] checks that a record with each anchored hash exists (`ralph audit
//! verify` reads the anchors from the commits under `refs/ralph/checkpoints`). The log is never
//! rolled back, so every anchor ever written must still be found.
//!
//! # Writing
//!
//! One writer per project (the run lock). [`AuditLog::append`] writes each line with one
//! `write` on a file opened with `O_APPEND`, then `fsync`s it (`sync_data`). Writes take an
//! exclusive `flock` on the file; a reader that meets a line without a newline at the end of
//! the file takes a shared one and reads on, so [`verify`] running during an append sees either
//! the whole record or none of it.
//!
//! A crash in the middle of a write can leave an incomplete last line (no `\n`: the newline is
//! the last byte written). [`AuditLog::open`] removes exactly that incomplete line, and nothing
//! else, and records what it removed (offset, length, SHA-256 and the first bytes) in an
//! `audit.recovered` record. If the incomplete line is in fact a complete, valid next record
//! that only lacks its newline, the newline is added instead. Complete records are never
//! rewritten; `open` refuses to extend a log whose last complete record is damaged.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The audit log's file name inside `.ralph/`.
pub const AUDIT_FILE: &str = "audit.jsonl";

/// The record format version this ralph writes and reads.
pub const VERSION: u64 = 1;

/// `prev` of the first record.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The key of the line in a checkpoint commit message that carries the audit log's head.
pub const ANCHOR_KEY: &str = "ralph-audit-head";

/// Longest line (without its newline) ralph writes or accepts: 1 MiB.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Bytes of a removed torn line kept (as text) in the `audit.recovered` record.
const RECOVERED_EXCERPT_BYTES: usize = 1024;

/// Length of `,"hash":"` + 64 hex digits + `"}`.
const HASH_SUFFIX_LEN: usize = 9 + 64 + 2;

/// Record kinds ralph writes. Any string is accepted; these are the ones the engine uses.
pub mod kinds {
    pub const RUN_STARTED: &str = "run.started";
    pub const RUN_FINISHED: &str = "run.finished";
    pub const CHECKPOINT: &str = "checkpoint";
    pub const ROLLBACK: &str = "rollback";
    pub const GUARD_TRIPPED: &str = "guard.tripped";
    pub const COMMAND_BLOCKED: &str = "command.blocked";
    /// ralph's own files in `.ralph/` were changed during an iteration (and what was restored).
    pub const STATE_TAMPERED: &str = "state.tampered";
    pub const GATE_FINISHED: &str = "gate.finished";
    /// The OS sandbox refused a connection or a write (the host or path).
    pub const SANDBOX_DENIED: &str = "sandbox.denied";
    /// `[sandbox]` asked for more than the kernel could enforce, and the run went on
    /// (`required = false`): what was not enforced.
    pub const SANDBOX_UNENFORCED: &str = "sandbox.unenforced";
    /// Written by [`super::AuditLog::open`] after it repaired a torn last line.
    pub const AUDIT_RECOVERED: &str = "audit.recovered";
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("failed to {action} the audit log {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "the last record of the audit log {path} is damaged ({reason}); ralph does not extend a \
         damaged chain: run `ralph audit verify`, then move the file aside to start a new one"
    )]
    Damaged { path: PathBuf, reason: String },
    #[error("an audit record would be {size} bytes; the limit is {max}")]
    TooLarge { size: usize, max: usize },
    #[error("failed to encode an audit record: {0}")]
    Json(#[from] serde_json::Error),
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> AuditError {
    let path = path.to_path_buf();
    move |source| AuditError::Io {
        action,
        path,
        source,
    }
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyReport {
    /// Every record checks out (and every anchor was found). `head` is `None` for an empty log.
    Ok { records: u64, head: Option<String> },
    /// The first record that does not check out. `line` is 1-based; `seq` is the record's own
    /// `seq` when the line could be read as a record.
    Broken {
        line: usize,
        seq: Option<u64>,
        reason: String,
    },
    /// The chain is intact but no record has these anchored hashes (sorted): records were
    /// removed from the end, or the log was replaced.
    AnchorMissing {
        records: u64,
        head: Option<String>,
        missing: Vec<String>,
    },
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        matches!(self, VerifyReport::Ok { .. })
    }
}

/// The writer. See the module documentation for the format and the guarantees.
#[derive(Debug)]
pub struct AuditLog {
    pub(crate) file: File,
    pub(crate) path: PathBuf,
    /// The file's length after our last write; anything else means someone else wrote.
    pub(crate) end: u64,
    seq: u64,
    head: Option<String>,
    /// The whole log as ralph holds it to be (`None` above `MAX_AUDIT_COPY_BYTES`): what a
    /// damaged log is restored from (`tamper.rs`).
    pub(crate) copy: Option<Vec<u8>>,
    /// The file as it was after ralph's last write.
    pub(crate) sig: Option<crate::tamper::FileSig>,
}

impl AuditLog {
    /// Open (creating it and its directory if needed) the log for appending. Reads only the
    /// end of the file to find the last record; repairs a torn last line (see the module
    /// documentation).
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = parent {
            std::fs::create_dir_all(dir).map_err(io_err("create the directory of", path))?;
        }
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io_err("open", path))?;
        if !existed {
            // The new directory entry must survive a power cut too.
            if let Some(dir) = parent {
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io_err("sync the directory of", path))?;
            }
        }
        let mut log = AuditLog {
            file,
            path: path.to_path_buf(),
            end: 0,
            seq: 0,
            head: None,
            copy: None,
            sig: None,
        };
        log.locked(|log| log.load_tail())?;
        log.load_copy();
        Ok(log)
    }

    /// Append one record and wait for the disk; returns the new head (the record's hash).
    pub fn append(
        &mut self,
        kind: &str,
        run_id: &str,
        data: serde_json::Value,
    ) -> Result<String, AuditError> {
        self.locked(|log| {
            let len = log.len()?;
            if len != log.end {
                // Another process wrote (or a write of ours failed half-way): start again from
                // what is on disk.
                log.load_tail()?;
                log.load_copy();
            }
            log.write_record(kind, run_id, &data)
        })
    }

    /// Read the whole log into `copy` (if it is not too large) and remember the file.
    fn load_copy(&mut self) {
        let len = self.len().unwrap_or(u64::MAX);
        self.copy = None;
        if len <= crate::tamper::MAX_AUDIT_COPY_BYTES {
            let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            let mut file = &self.file;
            if file.seek(io::SeekFrom::Start(0)).is_ok() && file.read_to_end(&mut bytes).is_ok() {
                self.copy = Some(bytes);
            }
        }
        self.sig = self.file_sig();
    }

    fn file_sig(&self) -> Option<crate::tamper::FileSig> {
        self.file
            .metadata()
            .ok()
            .map(|m| crate::tamper::FileSig::from_meta(&m))
    }

    /// The hash of the last record; `None` for an empty log.
    pub fn head(&self) -> Option<&str> {
        self.head.as_deref()
    }

    /// The `seq` of the last record; 0 for an empty log.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` holding the exclusive lock readers wait on. The lock only keeps readers from
    /// seeing half a record (one writer per project is the run lock's job), so a file system
    /// without `flock` support is not an error.
    fn locked<T>(
        &mut self,
        f: impl FnOnce(&mut AuditLog) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        let locked = self.file.lock().is_ok();
        let result = f(self);
        if locked {
            let _ = self.file.unlock();
        }
        result
    }

    fn len(&self) -> Result<u64, AuditError> {
        Ok(self
            .file
            .metadata()
            .map_err(io_err("read the size of", &self.path))?
            .len())
    }

    /// Find the last record from the end of the file and repair a torn last line. Until this
    /// succeeds, `end` is unknown and the next append calls it again.
    fn load_tail(&mut self) -> Result<(), AuditError> {
        self.end = u64::MAX;
        let path = self.path.clone();
        let len = self.len()?;
        if len == 0 {
            self.seq = 0;
            self.head = None;
            self.end = 0;
            return Ok(());
        }
        let mut last = [0u8; 1];
        self.file
            .read_exact_at(&mut last, len - 1)
            .map_err(io_err("read", &path))?;
        // `complete_end`: offset of the newline ending the last complete line, if any.
        let (complete_end, torn_start) = if last[0] == b'\n' {
            (Some(len - 1), None)
        } else {
            let nl = rfind_newline(&self.file, len).map_err(io_err("read", &path))?;
            (nl, Some(nl.map_or(0, |p| p + 1)))
        };
        let (mut seq, mut head) = (0, None);
        if let Some(end) = complete_end {
            let start = rfind_newline(&self.file, end)
                .map_err(io_err("read", &path))?
                .map_or(0, |p| p + 1);
            let damaged = |reason: String| AuditError::Damaged {
                path: path.clone(),
                reason,
            };
            let line_len = usize::try_from(end - start).unwrap_or(usize::MAX);
            if line_len > MAX_LINE_BYTES {
                return Err(damaged(format!(
                    "the last line is longer than {MAX_LINE_BYTES} bytes"
                )));
            }
            let mut line = vec![0u8; line_len];
            self.file
                .read_exact_at(&mut line, start)
                .map_err(io_err("read", &path))?;
            let rec = parse_line(&line).map_err(damaged)?;
            if line_hash(&rec.prev, &line) != rec.hash {
                return Err(damaged(
                    "its hash does not match its contents: it was modified".into(),
                ));
            }
            seq = rec.seq;
            head = Some(rec.hash);
        }
        self.seq = seq;
        self.head = head;
        match torn_start {
            Some(start) => self.recover_torn(start, len),
            None => {
                self.end = len;
                Ok(())
            }
        }
    }

    /// The bytes from `start` to `len` are a last line without its newline. `end` stays unknown
    /// until the file is repaired.
    fn recover_torn(&mut self, start: u64, len: u64) -> Result<(), AuditError> {
        let path = self.path.clone();
        let torn_len = len - start;
        if let Some(n) = usize::try_from(torn_len)
            .ok()
            .filter(|&n| n <= MAX_LINE_BYTES)
        {
            let mut line = vec![0u8; n];
            self.file
                .read_exact_at(&mut line, start)
                .map_err(io_err("read", &path))?;
            let prev = self.head.clone().unwrap_or_else(|| GENESIS_PREV.to_owned());
            if let Ok(rec) = parse_line(&line) {
                if rec.seq == self.seq + 1
                    && rec.prev == prev
                    && line_hash(&rec.prev, &line) == rec.hash
                {
                    // A whole record that only lacks its newline: complete it, rewrite nothing.
                    (&self.file)
                        .write_all(b"\n")
                        .map_err(io_err("write", &path))?;
                    self.file.sync_data().map_err(io_err("sync", &path))?;
                    self.end = len + 1;
                    self.seq = rec.seq;
                    self.head = Some(rec.hash);
                    let data = serde_json::json!({
                        "action": "newline_added",
                        "seq": rec.seq,
                        "offset": len,
                    });
                    self.write_record(kinds::AUDIT_RECOVERED, "", &data)?;
                    return Ok(());
                }
            }
        }
        // Keep a fingerprint and the start of what is removed.
        let mut hasher = Sha256::new();
        let mut excerpt = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut offset = start;
        while offset < len {
            let want = usize::try_from(len - offset)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let chunk = &mut buf[..want];
            self.file
                .read_exact_at(chunk, offset)
                .map_err(io_err("read", &path))?;
            hasher.update(&chunk[..]);
            if excerpt.len() < RECOVERED_EXCERPT_BYTES {
                let take = (RECOVERED_EXCERPT_BYTES - excerpt.len()).min(chunk.len());
                excerpt.extend_from_slice(&chunk[..take]);
            }
            offset += want as u64;
        }
        self.file
            .set_len(start)
            .map_err(io_err("truncate the torn last line of", &path))?;
        self.file.sync_data().map_err(io_err("sync", &path))?;
        self.end = start;
        let data = serde_json::json!({
            "action": "torn_line_removed",
            "offset": start,
            "bytes": torn_len,
            "sha256": hex(&hasher.finalize()),
            "excerpt": String::from_utf8_lossy(&excerpt),
        });
        self.write_record(kinds::AUDIT_RECOVERED, "", &data)?;
        Ok(())
    }

    /// Write the next record; the caller holds the lock and has checked `end`.
    fn write_record(
        &mut self,
        kind: &str,
        run_id: &str,
        data: &serde_json::Value,
    ) -> Result<String, AuditError> {
        let seq = self.seq + 1;
        let prev = self.head.as_deref().unwrap_or(GENESIS_PREV);
        let ts = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        // The canonical bytes without their closing brace; `hash` goes after them.
        let mut line = String::with_capacity(256);
        // Writing to a String cannot fail.
        let _ = write!(
            line,
            concat!(
                r#"{{"v":{},"seq":{},"ts":{},"kind":{},"#,
                r#""run_id":{},"data":{},"prev":"{}""#
            ),
            VERSION,
            seq,
            serde_json::to_string(&ts)?,
            serde_json::to_string(kind)?,
            serde_json::to_string(run_id)?,
            serde_json::to_string(data)?,
            prev,
        );
        let hash = chain_hash(prev, line.as_bytes());
        let _ = write!(line, r#","hash":"{hash}"}}"#);
        if line.len() > MAX_LINE_BYTES {
            return Err(AuditError::TooLarge {
                size: line.len(),
                max: MAX_LINE_BYTES,
            });
        }
        line.push('\n');
        // One write on an O_APPEND file: the record lands whole at the end, or (crash, full
        // disk) as a torn last line that the next `open` removes.
        let written = (&self.file).write_all(line.as_bytes());
        if let Err(e) = written {
            // Whatever reached the file is found by the next append's size check.
            self.end = u64::MAX;
            return Err(io_err("append to", &self.path)(e));
        }
        self.file.sync_data().map_err(io_err("sync", &self.path))?;
        self.end = self.end.saturating_add(line.len() as u64);
        if let Some(copy) = &mut self.copy {
            if copy.len() as u64 + line.len() as u64 <= crate::tamper::MAX_AUDIT_COPY_BYTES {
                copy.extend_from_slice(line.as_bytes());
            } else {
                self.copy = None;
            }
        }
        self.sig = self.file_sig();
        self.seq = seq;
        self.head = Some(hash.clone());
        Ok(hash)
    }
}

/// A record as read back. `deny_unknown_fields` and serde's duplicate-key check keep the fields
/// read here the only ones the line has.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    v: u64,
    seq: u64,
    // Checked for type only: the hash covers their bytes.
    #[serde(rename = "ts")]
    _ts: String,
    #[serde(rename = "kind")]
    _kind: String,
    #[serde(rename = "run_id")]
    _run_id: String,
    #[serde(rename = "data")]
    _data: serde::de::IgnoredAny,
    prev: String,
    hash: String,
}

/// The checks that need nothing but the line: JSON, version, form of `prev` and `hash`, and
/// `hash` as the last key. Err: the reason (the record's seq is in the Ok value only).
fn parse_line(line: &[u8]) -> Result<RawRecord, String> {
    let rec: RawRecord =
        serde_json::from_slice(line).map_err(|e| format!("not a valid record: {e}"))?;
    if rec.v != VERSION {
        return Err(format!(
            "record version {} (this ralph reads version {VERSION})",
            rec.v
        ));
    }
    if !is_hex_hash(&rec.prev) {
        return Err("`prev` is not 64 lowercase hex digits".into());
    }
    if !is_hex_hash(&rec.hash) {
        return Err("`hash` is not 64 lowercase hex digits".into());
    }
    if !has_hash_suffix(line, &rec.hash) {
        return Err("not in canonical form: `hash` must be the last key".into());
    }
    Ok(rec)
}

fn has_hash_suffix(line: &[u8], hash: &str) -> bool {
    let Some(suffix) = line
        .len()
        .checked_sub(HASH_SUFFIX_LEN)
        .and_then(|at| line.get(at..))
    else {
        return false;
    };
    suffix.starts_with(br#","hash":""#)
        && &suffix[9..73] == hash.as_bytes()
        && &suffix[73..] == br#""}"#
}

fn is_hex_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `hash` of a record: SHA-256 of `prev` followed by the canonical bytes, which are `body` (the
/// line up to the end of the `prev` value) and `}`.
fn chain_hash(prev: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(body);
    hasher.update(b"}");
    hex(&hasher.finalize())
}

/// [`chain_hash`] of a whole line (without its newline) that [`parse_line`] accepted.
fn line_hash(prev: &str, line: &[u8]) -> String {
    chain_hash(prev, &line[..line.len().saturating_sub(HASH_SUFFIX_LEN)])
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// Offset of the last `\n` before `before`, reading backwards in blocks.
fn rfind_newline(file: &File, before: u64) -> io::Result<Option<u64>> {
    const BLOCK: u64 = 64 * 1024;
    let mut buf = vec![0u8; BLOCK as usize];
    let mut end = before;
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let chunk = &mut buf[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(start + i as u64));
        }
        end = start;
    }
    Ok(None)
}

/// The line to add to a checkpoint commit message to anchor the log's head there.
pub fn anchor_line(head: &str) -> String {
    format!("{ANCHOR_KEY}: {head}")
}

/// The heads anchored in a commit message: every `ralph-audit-head: <64 hex>` line.
pub fn parse_anchors(message: &str) -> Vec<String> {
    message
        .lines()
        .filter_map(|l| l.trim().strip_prefix(ANCHOR_KEY)?.strip_prefix(':'))
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| is_hex_hash(v))
        .collect()
}

/// Check the whole chain; see the module documentation for what this cannot catch.
pub fn verify(path: &Path) -> Result<VerifyReport, AuditError> {
    verify_with_anchors(path, std::iter::empty::<&str>())
}

/// [`verify`], and check that a record with hash `anchor` exists.
pub fn verify_with_anchor(path: &Path, anchor: &str) -> Result<VerifyReport, AuditError> {
    verify_with_anchors(path, [anchor])
}

/// [`verify`], and check that a record exists for every anchored hash (e.g. the heads written
/// into checkpoint commits). A broken chain is reported before a missing anchor.
pub fn verify_with_anchors<I, S>(path: &Path, anchors: I) -> Result<VerifyReport, AuditError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut wanted: HashSet<String> = anchors
        .into_iter()
        .map(|a| a.as_ref().trim().to_ascii_lowercase())
        .collect();
    let file = File::open(path).map_err(io_err("open", path))?;
    let mut reader = BufReader::with_capacity(64 * 1024, &file);
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    let mut records = 0u64;
    let mut head: Option<String> = None;
    loop {
        buf.clear();
        let n = read_line(&mut reader, &mut buf).map_err(io_err("read", path))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') && buf.len() <= MAX_LINE_BYTES {
            // The end of the file without a newline: perhaps a write in progress. Wait for the
            // writer's lock, then read on.
            // Without `flock` support, read on at once.
            let locked = file.lock_shared().is_ok();
            let more = read_line(&mut reader, &mut buf);
            if locked {
                let _ = file.unlock();
            }
            more.map_err(io_err("read", path))?;
        }
        let broken = |seq, reason: String| VerifyReport::Broken {
            line: line_no,
            seq,
            reason,
        };
        let Some(line) = buf.strip_suffix(b"\n") else {
            if buf.len() > MAX_LINE_BYTES {
                return Ok(broken(
                    None,
                    format!("the line is longer than {MAX_LINE_BYTES} bytes"),
                ));
            }
            return Ok(broken(
                None,
                "the last line is incomplete (no newline at the end of the file): the log was \
                 truncated, or a write was torn by a crash"
                    .into(),
            ));
        };
        let rec = match parse_line(line) {
            Ok(rec) => rec,
            Err(reason) => return Ok(broken(None, reason)),
        };
        let expected = records + 1;
        if rec.seq != expected {
            return Ok(broken(
                Some(rec.seq),
                format!(
                    "seq {} where {expected} was expected: a record was deleted, inserted or moved",
                    rec.seq
                ),
            ));
        }
        let prev = head.as_deref().unwrap_or(GENESIS_PREV);
        if rec.prev != prev {
            let what = if records == 0 {
                "the first record's `prev` is not all zeros".to_owned()
            } else {
                format!("`prev` is not the hash of record {records}")
            };
            return Ok(broken(
                Some(rec.seq),
                format!("{what}: the chain was cut or a record was forged"),
            ));
        }
        if line_hash(&rec.prev, line) != rec.hash {
            return Ok(broken(
                Some(rec.seq),
                "the hash does not match the record's contents: the record was modified".into(),
            ));
        }
        wanted.remove(&rec.hash);
        records = expected;
        head = Some(rec.hash);
    }
    if !wanted.is_empty() {
        let missing: BTreeSet<String> = wanted.into_iter().collect();
        return Ok(VerifyReport::AnchorMissing {
            records,
            head,
            missing: missing.into_iter().collect(),
        });
    }
    Ok(VerifyReport::Ok { records, head })
}

/// Read up to and including the next `\n`, appending to `buf`, but never let `buf` grow past
/// `MAX_LINE_BYTES + 1` bytes. Returns the bytes read.
fn read_line<R: BufRead>(reader: &mut R, buf: &mut Vec<u8>) -> io::Result<usize> {
    let room = (MAX_LINE_BYTES + 1).saturating_sub(buf.len()) as u64;
    reader.take(room).read_until(b'\n', buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_are_parsed_from_a_message() {
        let h = "ab".repeat(32);
        let msg = format!("ralph checkpoint 3\n\n{}\nother: x\n", anchor_line(&h));
        assert_eq!(parse_anchors(&msg), vec![h.clone()]);
        assert!(parse_anchors("ralph-audit-head: nothex").is_empty());
        assert_eq!(
            parse_anchors(&format!("  ralph-audit-head:{}  ", h.to_uppercase())),
            vec![h]
        );
    }

    #[test]
    fn line_hash_cuts_the_hash_field() {
        let body = br#"{"v":1,"seq":1,"ts":"t","kind":"k","run_id":"","data":{},"prev":"0""#;
        let h = chain_hash(GENESIS_PREV, body);
        let mut line = body.to_vec();
        line.extend_from_slice(format!(r#","hash":"{h}"}}"#).as_bytes());
        assert_eq!(line_hash(GENESIS_PREV, &line), h);
    }
}
