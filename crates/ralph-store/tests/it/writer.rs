//! The writer thread: writes from many loops are committed in order, together, each with its
//! own result; reads see every write sent before them; ledger entries go to the ledger.

use ralph_store::{
    EventRecord, IterationRecord, Ledger, LedgerEntry, RunRecord, Store, Tokens, Write, Writer,
};

pub(crate) fn run(id: &str) -> RunRecord {
    RunRecord::new(
        id.into(),
        "2026-12-02T00:00:00.000Z",
        Some(format!("story-{id}")),
    )
}

pub(crate) fn iteration(run: &str, n: u32) -> IterationRecord {
    IterationRecord {
        run_id: run.into(),
        n,
        started_at: "2026-12-02T00:00:00.000Z".into(),
        finished_at: "2026-12-02T00:00:01.000Z".into(),
        duration_s: 1.0,
        backend: "custom".into(),
        model: None,
        outcome: "progressed".into(),
        error_class: None,
        error_message: None,
        exit_code: Some(0),
        signal: None,
        cost_usd: Some(0.01),
        cost_source: "reported".into(),
        tokens: Some(Tokens::new(10, 1, 0, 0)),
        files_changed: None,
        insertions: None,
        deletions: None,
        checkpoint: None,
        completion_claimed: false,
        gates_passed: None,
        output_lines: 1,
        unknown_lines: 0,
        prompt_sha256: None,
        prompt_bytes: None,
        user_prompt_bytes: None,
        context_tokens: None,
        context_window: None,
    }
}

fn event(run: &str, n: u32) -> EventRecord {
    EventRecord {
        run_id: run.into(),
        iteration: Some(n),
        ts: "2026-12-02T00:00:01.000Z".into(),
        kind: "iteration.finished".into(),
        payload: "{}".into(),
    }
}

fn commit(r: &RunRecord, n: u32) -> Write {
    let mut run = r.clone();
    run.iteration = n;
    Write::CommitIteration {
        run,
        iteration: Box::new(iteration(&r.id, n)),
        events: vec![event(&r.id, n)],
    }
}

#[test]
fn writes_from_many_tasks_are_all_committed_in_order_and_one_failure_stays_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ralph.db");
    let writer = Writer::start(Store::open(&db).unwrap(), None);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let w = writer.clone();
                tokio::spawn(async move {
                    let r = run(&format!("r{i}"));
                    let save = Write::SaveRun {
                        run: r.clone(),
                        events: vec![],
                        durable: false,
                    };
                    w.write(save).await.unwrap();
                    for n in 1..=25 {
                        w.write(commit(&r, n)).await.unwrap();
                    }
                })
            })
            .collect();
        // A write that cannot succeed (its run does not exist) while the others go on.
        let orphan = writer.write(commit(&run("nobody"), 1)).await;
        assert!(orphan.is_err(), "a foreign-key violation is reported");
        for t in tasks {
            t.await.unwrap();
        }
    });
    // A read runs after every write sent before it, on the writer's own connection.
    let counts = writer
        .read(|s| {
            (0..8)
                .map(|i| s.iterations(&format!("r{i}")).map(|its| its.len()))
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    assert_eq!(counts, vec![25; 8]);
    let latest = writer
        .read(|s| s.latest_run_in(Some("story-r3")))
        .unwrap()
        .unwrap();
    assert_eq!(latest.iteration, 25);
    assert!(writer.read(|s| s.run("nobody")).unwrap().is_none());
    // Another connection sees the same, with nothing half-written.
    let other = Store::open_read_only(&db).unwrap();
    assert_eq!(other.iterations("r7").unwrap().len(), 25);
    assert_eq!(other.integrity_check().unwrap(), "ok");
}

#[test]
fn ledger_entries_go_to_the_ledger_and_its_failure_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("l/ledger.db");
    let writer = Writer::start(
        Store::open(&dir.path().join("ralph.db")).unwrap(),
        Some(ledger.clone()),
    );
    let entry = |n: u32| LedgerEntry {
        ts: "2026-12-02T00:00:01.000Z".into(),
        project: "/p".into(),
        run_id: "r".into(),
        iteration: n,
        backend: "custom".into(),
        model: None,
        cost_usd: Some(0.5),
        cost_source: "reported".into(),
        tokens: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        for n in 1..=3 {
            writer.write(Write::Ledger(entry(n))).await.unwrap();
        }
        let spent = writer
            .read_ledger(|l| l.spent_between("2026-12-01T00:00:00Z", "2026-12-03T00:00:00Z"))
            .await
            .unwrap();
        assert_eq!(spent, Some(1.5));
    });
    assert_eq!(
        Ledger::open_read_only(&ledger)
            .unwrap()
            .rows(None)
            .unwrap()
            .len(),
        3
    );

    // A ledger that cannot be opened fails its writes and reads, the same way every time.
    std::fs::create_dir_all(dir.path().join("bad/ledger.db")).unwrap();
    let broken = Writer::start(
        Store::open(&dir.path().join("other.db")).unwrap(),
        Some(dir.path().join("bad/ledger.db")),
    );
    rt.block_on(async {
        assert!(broken.write(Write::Ledger(entry(1))).await.is_err());
        assert!(broken.read_ledger(|l| l.rows(None)).await.is_err());
        // The state database is not affected.
        let save = Write::SaveRun {
            run: run("fine"),
            events: vec![],
            durable: true,
        };
        broken.write(save).await.unwrap();
    });
}

#[test]
fn a_posted_write_that_fails_is_reported_by_the_next_write_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Writer::start(Store::open(&dir.path().join("ralph.db")).unwrap(), None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let save = |id: &str| Write::SaveRun {
            run: run(id),
            events: vec![],
            durable: false,
        };
        writer.post(save("a"));
        // A commit for a run that does not exist fails; nobody waits for it.
        writer.post(commit(&run("nobody"), 1));
        let next = writer.write(save("b")).await;
        assert!(next.is_err(), "the posted failure is not lost");
        writer.write(save("c")).await.unwrap();
    });
    // Each write still stands or falls alone.
    let ids = writer
        .read(|s| {
            Ok((
                s.run("a")?.is_some(),
                s.run("b")?.is_some(),
                s.run("c")?.is_some(),
            ))
        })
        .unwrap();
    assert_eq!(ids, (true, true, true));
}
