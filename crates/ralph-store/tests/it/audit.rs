//! The audit log's hash chain: every kind of tampering the issue names is detected, a torn last
//! line is repaired on open, and verification runs safely next to a writer.

use std::path::{Path, PathBuf};

use ralph_store::audit::{
    self, anchor_line, kinds, parse_anchors, verify, verify_with_anchor, verify_with_anchors,
    AuditLog, VerifyReport, GENESIS_PREV,
};
use serde_json::json;
use sha2::{Digest, Sha256};

const RECORDS: usize = 50;

fn sample_data(i: usize) -> serde_json::Value {
    match i % 5 {
        0 => json!({"iteration": i, "ok": true}),
        1 => {
            let command = format!("rm -rf /tmp/x{i}");
            json!({"command": command, "rule": "no-rm", "quote": "\"é\n\u{2028}"})
        }
        2 => json!({"gate": "tests", "exit_code": i as i64 - 25, "secs": 1.25 * i as f64}),
        3 => json!({"checkpoint": format!("refs/ralph/checkpoints/r1/{i}"), "files": ["a", "b/c"]}),
        _ => json!(null),
    }
}

fn kind(i: usize) -> &'static str {
    [
        kinds::RUN_STARTED,
        kinds::CHECKPOINT,
        kinds::GUARD_TRIPPED,
        kinds::COMMAND_BLOCKED,
        kinds::GATE_FINISHED,
        kinds::ROLLBACK,
        kinds::RUN_FINISHED,
    ][i % 7]
}

/// A log of `RECORDS` records; returns its bytes and head.
fn write_log(dir: &Path) -> (PathBuf, Vec<u8>, String) {
    let path = dir.join(".ralph").join(audit::AUDIT_FILE);
    let mut log = AuditLog::open(&path).unwrap();
    assert_eq!(log.head(), None);
    let mut head = String::new();
    for i in 0..RECORDS {
        head = log.append(kind(i), "run-1", sample_data(i)).unwrap();
        assert_eq!(log.head(), Some(head.as_str()));
        assert_eq!(log.seq(), i as u64 + 1);
    }
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes, head)
}

/// Start offsets of every line, plus the file length.
fn line_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' {
            starts.push(i + 1);
        }
    }
    starts
}

fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|&b| b == b'\n')
        .map(|l| l.to_vec())
        .collect()
}

/// 1-based line of the byte at `pos`.
fn line_of(bytes: &[u8], pos: usize) -> usize {
    bytes[..pos].iter().filter(|&&b| b == b'\n').count() + 1
}

fn check(path: &Path, bytes: &[u8], anchor: &str) -> (VerifyReport, VerifyReport) {
    std::fs::write(path, bytes).unwrap();
    (
        verify(path).unwrap(),
        verify_with_anchor(path, anchor).unwrap(),
    )
}

fn broken_line(report: &VerifyReport) -> Option<usize> {
    match report {
        VerifyReport::Broken { line, .. } => Some(*line),
        _ => None,
    }
}

/// A tiny deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn an_intact_log_verifies_and_reopens_where_it_left_off() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes, head) = write_log(dir.path());
    assert_eq!(line_starts(&bytes).len(), RECORDS + 1);
    assert_eq!(
        verify(&path).unwrap(),
        VerifyReport::Ok {
            records: RECORDS as u64,
            head: Some(head.clone())
        }
    );
    assert!(verify_with_anchor(&path, &head).unwrap().is_ok());
    // An anchor from the middle of the log is found too.
    let mid = serde_json::from_slice::<serde_json::Value>(&lines(&bytes)[9]).unwrap();
    let mid = mid["hash"].as_str().unwrap().to_owned();
    assert!(verify_with_anchors(&path, [&mid, &head]).unwrap().is_ok());

    let mut log = AuditLog::open(&path).unwrap();
    assert_eq!(log.head(), Some(head.as_str()));
    assert_eq!(log.seq(), RECORDS as u64);
    let new_head = log.append(kinds::RUN_FINISHED, "run-1", json!({})).unwrap();
    assert_eq!(
        verify(&path).unwrap(),
        VerifyReport::Ok {
            records: RECORDS as u64 + 1,
            head: Some(new_head)
        }
    );
    // Reopening appended nothing and rewrote nothing.
    assert!(std::fs::read(&path).unwrap().starts_with(&bytes));
}

#[test]
fn the_documented_hash_recipe_reproduces_every_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (_path, bytes, _head) = write_log(dir.path());
    let mut prev = GENESIS_PREV.to_owned();
    for (i, line) in lines(&bytes).iter().enumerate() {
        let line = std::str::from_utf8(line)
            .unwrap()
            .strip_suffix('\n')
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["v"], 1);
        assert_eq!(v["seq"], i as u64 + 1);
        assert_eq!(v["prev"], prev.as_str());
        assert_eq!(v["data"], sample_data(i));
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 8);
        let hash = v["hash"].as_str().unwrap();
        // Canonical bytes: the line without `,"hash":"<hex>"`.
        let canonical = line.replace(&format!(r#","hash":"{hash}""#), "");
        assert!(canonical.starts_with(r#"{"v":1,"seq":"#) && canonical.ends_with("\"}"));
        let digest = Sha256::digest(format!("{prev}{canonical}").as_bytes());
        let recomputed: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(recomputed, hash, "line {}", i + 1);
        prev = hash.to_owned();
    }
}

#[test]
fn every_flipped_byte_is_detected_at_or_before_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes, _head) = write_log(dir.path());
    let copy = dir.path().join("copy.jsonl");
    let masks = [0x01u8, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff];
    let mut cases: Vec<(usize, u8)> = (0..bytes.len())
        .map(|pos| (pos, masks[pos % masks.len()]))
        .collect();
    // And every bit of every byte of the last record, which no later record vouches for.
    let last = line_starts(&bytes)[RECORDS - 1];
    for pos in last..bytes.len() {
        cases.extend((0..8).map(|bit| (pos, 1u8 << bit)));
    }
    let line_at: Vec<usize> = (0..bytes.len()).map(|pos| line_of(&bytes, pos)).collect();
    for (pos, mask) in cases {
        let mut tampered = bytes.clone();
        tampered[pos] ^= mask;
        std::fs::write(&copy, &tampered).unwrap();
        let plain = verify(&copy).unwrap();
        let line = broken_line(&plain).unwrap_or_else(|| {
            panic!(
                "flip {mask:#04x} at byte {pos} (line {}) went unnoticed: {plain:?}",
                line_at[pos]
            )
        });
        assert!(
            line <= line_at[pos],
            "flip at byte {pos}: reported line {line}, flipped line {}",
            line_at[pos]
        );
    }
    // The original is untouched by all this.
    assert!(verify(&path).unwrap().is_ok());
}

#[test]
fn a_fixed_seed_sample_of_random_byte_values_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (_path, bytes, head) = write_log(dir.path());
    let copy = dir.path().join("copy.jsonl");
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for _ in 0..600 {
        let pos = (rng.next() % bytes.len() as u64) as usize;
        let value = (rng.next() & 0xff) as u8;
        if value == bytes[pos] {
            continue;
        }
        let mut tampered = bytes.clone();
        tampered[pos] = value;
        let (plain, anchored) = check(&copy, &tampered, &head);
        let line = broken_line(&plain)
            .unwrap_or_else(|| panic!("byte {pos} set to {value:#04x} went unnoticed"));
        assert!(line <= line_of(&bytes, pos));
        assert!(!anchored.is_ok());
    }
}

#[test]
fn deleting_any_record_is_detected_trailing_ones_by_the_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let (_path, bytes, head) = write_log(dir.path());
    let copy = dir.path().join("copy.jsonl");
    let all = lines(&bytes);
    for i in 0..RECORDS {
        let mut kept = all.clone();
        kept.remove(i);
        let (plain, anchored) = check(&copy, &kept.concat(), &head);
        if i + 1 < RECORDS {
            assert_eq!(broken_line(&plain), Some(i + 1), "deleted record {}", i + 1);
            match &plain {
                VerifyReport::Broken { seq, reason, .. } => {
                    assert_eq!(*seq, Some(i as u64 + 2));
                    assert!(reason.contains("deleted"), "{reason}");
                }
                other => panic!("{other:?}"),
            }
        } else {
            // A shorter chain is still a chain: only the anchor can tell.
            assert!(plain.is_ok(), "{plain:?}");
            assert_eq!(
                anchored,
                VerifyReport::AnchorMissing {
                    records: RECORDS as u64 - 1,
                    head: serde_json::from_slice::<serde_json::Value>(&all[RECORDS - 2]).unwrap()
                        ["hash"]
                        .as_str()
                        .map(str::to_owned),
                    missing: vec![head.clone()],
                }
            );
        }
        assert!(!anchored.is_ok());
    }
    // Deleting the last several records, or all of them.
    for keep in 0..RECORDS {
        let (plain, anchored) = check(&copy, &all[..keep].concat(), &head);
        assert!(plain.is_ok());
        assert!(matches!(anchored, VerifyReport::AnchorMissing { .. }));
    }
}

#[test]
fn swapping_any_adjacent_pair_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (_path, bytes, head) = write_log(dir.path());
    let copy = dir.path().join("copy.jsonl");
    let all = lines(&bytes);
    for i in 0..RECORDS - 1 {
        let mut swapped = all.clone();
        swapped.swap(i, i + 1);
        let (plain, anchored) = check(&copy, &swapped.concat(), &head);
        assert_eq!(
            broken_line(&plain),
            Some(i + 1),
            "swapped {} and {}",
            i + 1,
            i + 2
        );
        assert!(!anchored.is_ok());
    }
    // Moving the first record to the end as well.
    let mut rotated = all.clone();
    rotated.rotate_left(1);
    let (plain, _) = check(&copy, &rotated.concat(), &head);
    assert_eq!(broken_line(&plain), Some(1));
}

#[test]
fn truncating_anywhere_in_the_last_two_records_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (_path, bytes, head) = write_log(dir.path());
    let copy = dir.path().join("copy.jsonl");
    let starts = line_starts(&bytes);
    let from = starts[RECORDS - 2];
    for len in from..bytes.len() {
        let (plain, anchored) = check(&copy, &bytes[..len], &head);
        assert!(!anchored.is_ok(), "truncated to {len} bytes: {anchored:?}");
        if starts.contains(&len) {
            // Whole records removed from the end: a valid, shorter chain.
            assert!(plain.is_ok());
            assert!(matches!(anchored, VerifyReport::AnchorMissing { .. }));
        } else {
            let line = line_of(&bytes, len);
            match &plain {
                VerifyReport::Broken {
                    line: l, reason, ..
                } => {
                    assert_eq!(*l, line);
                    assert!(reason.contains("no newline"), "{reason}");
                }
                other => panic!("truncated to {len} bytes: {other:?}"),
            }
        }
    }
}

fn forged_line(seq: u64, prev: &str, data: &str) -> String {
    let body = format!(
        concat!(
            r#"{{"v":1,"seq":{},"ts":"2030-01-01T00:00:00.000Z","kind":"run.finished","#,
            r#""run_id":"run-1","data":{},"prev":"{}""#
        ),
        seq, data, prev
    );
    let digest = Sha256::digest(format!("{prev}{body}}}").as_bytes());
    let hash: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{body},\"hash\":\"{hash}\"}}\n")
}

#[test]
fn a_forged_record_with_a_wrong_prev_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes, head) = write_log(dir.path());
    let copy = dir.path().join("copy.jsonl");
    let next = RECORDS as u64 + 1;

    // Self-consistent hash, but chained to something else.
    let wrong_prev = "ab".repeat(32);
    let mut forged = bytes.clone();
    forged.extend_from_slice(forged_line(next, &wrong_prev, "{}").as_bytes());
    let (plain, _) = check(&copy, &forged, &head);
    match plain {
        VerifyReport::Broken { line, seq, reason } => {
            assert_eq!(line, RECORDS + 1);
            assert_eq!(seq, Some(next));
            assert!(reason.contains("prev"), "{reason}");
        }
        other => panic!("{other:?}"),
    }

    // Right prev, but the hash was not recomputed after editing the data.
    let line = forged_line(next, &head, r#"{"ok":true}"#).replace("true", "false");
    let mut forged = bytes.clone();
    forged.extend_from_slice(line.as_bytes());
    let (plain, _) = check(&copy, &forged, &head);
    assert_eq!(broken_line(&plain), Some(RECORDS + 1));

    // A record replaced in the middle with a self-consistent one whose prev is right: the
    // next record's prev no longer matches.
    let all = lines(&bytes);
    let prev_of_10 = serde_json::from_slice::<serde_json::Value>(&all[8]).unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut replaced = all.clone();
    replaced[9] = forged_line(10, &prev_of_10, r#"{"forged":1}"#).into_bytes();
    let (plain, _) = check(&copy, &replaced.concat(), &head);
    assert_eq!(broken_line(&plain), Some(11));

    // Extra whitespace or another key order is not canonical, even with a matching hash.
    let mut spaced = bytes.clone();
    spaced.extend_from_slice(
        forged_line(next, &head, "{}")
            .replacen("\"hash\":", "\"hash\" :", 1)
            .as_bytes(),
    );
    let (plain, _) = check(&copy, &spaced, &head);
    assert_eq!(broken_line(&plain), Some(RECORDS + 1));

    // A genuine-looking forged record (hash and prev right) verifies: only a secret or an
    // anchor could tell, which is why anchors exist.
    let mut appended = bytes.clone();
    appended.extend_from_slice(forged_line(next, &head, "{}").as_bytes());
    let (plain, _) = check(&copy, &appended, &head);
    assert!(plain.is_ok());

    assert!(verify(&path).unwrap().is_ok());
}

#[test]
fn a_first_record_must_start_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jsonl");
    std::fs::write(&path, forged_line(1, &"11".repeat(32), "{}")).unwrap();
    match verify(&path).unwrap() {
        VerifyReport::Broken { line, seq, reason } => {
            assert_eq!((line, seq), (1, Some(1)));
            assert!(reason.contains("all zeros"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    std::fs::write(&path, forged_line(2, GENESIS_PREV, "{}")).unwrap();
    assert_eq!(broken_line(&verify(&path).unwrap()), Some(1));
    std::fs::write(
        &path,
        forged_line(1, GENESIS_PREV, "{}").replace("\"v\":1", "\"v\":2"),
    )
    .unwrap();
    match verify(&path).unwrap() {
        VerifyReport::Broken { reason, .. } => assert!(reason.contains("version"), "{reason}"),
        other => panic!("{other:?}"),
    }
    std::fs::write(&path, "not json\n").unwrap();
    assert_eq!(broken_line(&verify(&path).unwrap()), Some(1));
    std::fs::write(&path, "").unwrap();
    assert_eq!(
        verify(&path).unwrap(),
        VerifyReport::Ok {
            records: 0,
            head: None
        }
    );
}

#[test]
fn a_torn_last_line_is_removed_on_open_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes, head) = write_log(dir.path());
    let next = forged_line(RECORDS as u64 + 1, &head, r#"{"x":1}"#);
    for cut in [1, 10, next.len() / 2, next.len() - 2] {
        let mut torn = bytes.clone();
        torn.extend_from_slice(&next.as_bytes()[..cut]);
        std::fs::write(&path, &torn).unwrap();
        assert!(!verify(&path).unwrap().is_ok());

        let log = AuditLog::open(&path).unwrap();
        let after = std::fs::read(&path).unwrap();
        // Every complete record is kept byte for byte; one recovery record follows.
        assert!(after.starts_with(&bytes));
        let added = &after[bytes.len()..];
        let rec: serde_json::Value = serde_json::from_slice(added).unwrap();
        assert_eq!(rec["kind"], kinds::AUDIT_RECOVERED);
        assert_eq!(rec["seq"], RECORDS as u64 + 1);
        assert_eq!(rec["prev"], head.as_str());
        assert_eq!(rec["data"]["action"], "torn_line_removed");
        assert_eq!(rec["data"]["offset"], bytes.len() as u64);
        assert_eq!(rec["data"]["bytes"], cut as u64);
        assert_eq!(rec["data"]["excerpt"], &next[..cut]);
        assert_eq!(log.head(), rec["hash"].as_str());
        assert_eq!(
            verify_with_anchor(&path, &head).unwrap(),
            VerifyReport::Ok {
                records: RECORDS as u64 + 1,
                head: log.head().map(str::to_owned)
            }
        );
    }
}

#[test]
fn a_whole_last_record_missing_only_its_newline_is_completed_not_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes, head) = write_log(dir.path());
    let next = forged_line(RECORDS as u64 + 1, &head, r#"{"x":1}"#);
    let mut torn = bytes.clone();
    torn.extend_from_slice(next.trim_end().as_bytes());
    std::fs::write(&path, &torn).unwrap();
    let log = AuditLog::open(&path).unwrap();
    let after = std::fs::read(&path).unwrap();
    assert!(after.starts_with(format!("{}{next}", String::from_utf8_lossy(&bytes)).as_bytes()));
    assert_eq!(log.seq(), RECORDS as u64 + 2);
    let last: serde_json::Value = serde_json::from_slice(lines(&after).last().unwrap()).unwrap();
    assert_eq!(last["data"]["action"], "newline_added");
    assert!(verify(&path).unwrap().is_ok());
}

#[test]
fn a_torn_first_line_leaves_a_fresh_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, r#"{"v":1,"seq":1,"ts":"2025"#).unwrap();
    let mut log = AuditLog::open(&path).unwrap();
    assert_eq!(log.seq(), 1);
    log.append(kinds::RUN_STARTED, "r", json!({})).unwrap();
    assert_eq!(
        verify(&path).unwrap(),
        VerifyReport::Ok {
            records: 2,
            head: log.head().map(str::to_owned)
        }
    );
}

#[test]
fn open_refuses_to_extend_a_damaged_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut bytes, _head) = write_log(dir.path());
    let n = bytes.len();
    bytes[n - 20] ^= 0x01; // inside the last record's hash
    std::fs::write(&path, &bytes).unwrap();
    let err = AuditLog::open(&path).unwrap_err();
    assert!(matches!(err, audit::AuditError::Damaged { .. }), "{err}");
    // Nothing was written.
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn append_notices_records_written_by_someone_else() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _bytes, _head) = write_log(dir.path());
    let mut a = AuditLog::open(&path).unwrap();
    let mut b = AuditLog::open(&path).unwrap();
    a.append(kinds::CHECKPOINT, "r", json!({"by": "a"}))
        .unwrap();
    b.append(kinds::CHECKPOINT, "r", json!({"by": "b"}))
        .unwrap();
    a.append(kinds::CHECKPOINT, "r", json!({"by": "a"}))
        .unwrap();
    assert_eq!(a.seq(), RECORDS as u64 + 3);
    assert!(verify(&path).unwrap().is_ok());
}

#[test]
fn verify_runs_safely_next_to_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _bytes, _head) = write_log(dir.path());
    let writer_path = path.clone();
    let writer = std::thread::spawn(move || {
        let mut log = AuditLog::open(&writer_path).unwrap();
        for i in 0..300 {
            // Large records make a reader more likely to meet a write in progress.
            let data = json!({"i": i, "pad": "x".repeat(20_000 + i * 37)});
            log.append(kinds::GATE_FINISHED, "r", data).unwrap();
        }
    });
    let mut checks = 0;
    while !writer.is_finished() {
        let report = verify(&path).unwrap();
        assert!(report.is_ok(), "{report:?}");
        checks += 1;
    }
    writer.join().unwrap();
    assert!(checks > 0);
    assert!(matches!(
        verify(&path).unwrap(),
        VerifyReport::Ok { records, .. } if records == RECORDS as u64 + 300
    ));
}

#[test]
fn oversized_records_are_refused_and_leave_the_log_intact() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes, head) = write_log(dir.path());
    let mut log = AuditLog::open(&path).unwrap();
    let err = log
        .append(
            kinds::RUN_FINISHED,
            "r",
            json!({"pad": "x".repeat(audit::MAX_LINE_BYTES)}),
        )
        .unwrap_err();
    assert!(matches!(err, audit::AuditError::TooLarge { .. }), "{err}");
    assert_eq!(log.head(), Some(head.as_str()));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn anchors_round_trip_through_a_commit_message() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _bytes, head) = write_log(dir.path());
    let message = format!(
        "ralph: checkpoint after iteration 3\n\n{}\n",
        anchor_line(&head)
    );
    let anchors = parse_anchors(&message);
    assert_eq!(anchors, vec![head]);
    assert!(verify_with_anchors(&path, &anchors).unwrap().is_ok());
    let unknown = "cd".repeat(32);
    assert_eq!(
        verify_with_anchors(&path, [unknown.as_str()]).unwrap(),
        VerifyReport::AnchorMissing {
            records: RECORDS as u64,
            head: Some(anchors[0].clone()),
            missing: vec![unknown],
        }
    );
}

#[test]
fn append_refuses_to_chain_onto_a_damaged_record_written_by_someone_else() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _bytes, _head) = write_log(dir.path());
    let mut log = AuditLog::open(&path).unwrap();
    let mut junk = std::fs::read(&path).unwrap();
    junk.extend_from_slice(b"{\"junk\":1}\n");
    std::fs::write(&path, &junk).unwrap();
    for _ in 0..2 {
        let err = log.append(kinds::CHECKPOINT, "r", json!({})).unwrap_err();
        assert!(matches!(err, audit::AuditError::Damaged { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), junk);
    }
}
