//! The stories mode's state: schema v5 migrated onto an older database, every record's round
//! trip, story state changes committed together with their event or not at all, the resume
//! queries, the gate cache and the transactional landing.

use std::path::Path;

use ralph_store::{
    migration_sql, AttemptRecord, CostGroup, EventRecord, GateResult, PlanRunRecord, QueueEntry,
    QueueState, RunState, Store, StoreError, StoryRecord, StoryState, Write, Writer,
    SCHEMA_VERSION, STORY_STATE_EVENT,
};
use rusqlite::Connection;

const NOW: &str = "2026-12-03T00:00:00.000Z";

pub(crate) fn plan_run(id: &str, name: &str) -> PlanRunRecord {
    PlanRunRecord {
        id: id.into(),
        plan_name: name.into(),
        plan_path: "stories.toml".into(),
        plan_hash: "sha256:abc".into(),
        integration_branch: format!("ralph/{name}"),
        base_commit: "1111111111111111111111111111111111111111".into(),
        user_branch: Some("main".into()),
        state: RunState::Running,
        started_at: NOW.into(),
        updated_at: NOW.into(),
        finished_at: None,
        stop_reason: None,
        options: serde_json::json!({"parallel": 4, "only": ["S1"]}),
    }
}

pub(crate) fn story(plan: &str, id: &str, deps: &[&str]) -> StoryRecord {
    StoryRecord::new(
        plan,
        id,
        Some("data".into()),
        deps.iter().map(|d| d.to_string()).collect(),
        NOW,
    )
}

pub(crate) fn state_event(plan: &str, story: &str, state: StoryState) -> EventRecord {
    EventRecord {
        run_id: plan.into(),
        iteration: None,
        ts: NOW.into(),
        kind: STORY_STATE_EVENT.into(),
        payload: serde_json::json!({
            "event": STORY_STATE_EVENT, "run_id": plan, "story_id": story,
            "state": state.as_str(),
        })
        .to_string(),
    }
}

/// A plan run `p` of plan `demo` with stories S1 and S2 (S2 depends on S1), all pending.
pub(crate) fn started(db: &Path) -> Store {
    let mut store = Store::open(db).unwrap();
    store
        .commit(&Write::SavePlanRun {
            plan_run: plan_run("p", "demo"),
            stories: vec![story("p", "S1", &[]), story("p", "S2", &["S1"])],
            events: vec![],
        })
        .unwrap();
    store
}

fn change(store: &mut Store, mut s: StoryRecord, to: StoryState) -> StoryRecord {
    s.state = to;
    let events = vec![state_event(&s.plan_run_id, &s.story_id, to)];
    store
        .commit(&Write::SaveStory {
            story: s.clone(),
            events,
        })
        .unwrap();
    s
}

fn events_of(store: &Store, run: &str) -> Vec<EventRecord> {
    store
        .events(run, 0)
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect()
}

/// The database an older ralph wrote: migrations 1-4 as shipped, and a finished run of story
/// S1 with one iteration and one event.
fn v4_database(db: &Path) {
    let conn = Connection::open(db).unwrap();
    for i in 0..4 {
        conn.execute_batch(migration_sql(i).unwrap()).unwrap();
    }
    conn.pragma_update(None, "user_version", 4).unwrap();
    conn.execute_batch(
        "INSERT INTO runs (id, state, backend, max_iterations, started_at, updated_at, \
             iteration, cost_usd, scope) VALUES ('old', 'completed', 'claude', 5, 't', 't', 1, \
             0.25, 'S1'); \
             INSERT INTO iterations (run_id, n, started_at, finished_at, duration_s, backend, \
             outcome, cost_usd, cost_source, completion_claimed) VALUES ('old', 1, 't', 't', \
             1.0, 'claude', 'completed', 0.25, 'reported', 1); \
             INSERT INTO events (run_id, ts, kind, payload) VALUES ('old', 't', 'run.finished', \
             '{}');",
    )
    .unwrap();
}

#[test]
fn a_v4_database_is_migrated_with_its_runs_kept() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ralph.db");
    v4_database(&db);
    let store = started(&db);
    let version: i64 = Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 5);
    let old = store.run("old").unwrap().unwrap();
    assert_eq!(
        (old.state, old.scope.as_deref(), old.plan_run_id),
        (RunState::Completed, Some("S1"), None)
    );
    assert_eq!(store.iterations("old").unwrap().len(), 1);
    assert_eq!(events_of(&store, "old").len(), 1);
    assert_eq!(store.stories("p").unwrap().len(), 2);
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[test]
fn a_v4_database_opened_read_only_reads_as_before_and_has_no_plan_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ralph.db");
    v4_database(&db);
    let store = Store::open_read_only(&db).unwrap();
    let old = store.latest_run_in(Some("S1")).unwrap().unwrap();
    assert_eq!((old.id.as_str(), old.plan_run_id), ("old", None));
    assert_eq!(store.latest_plan_run(None).unwrap(), None);
    assert_eq!(store.latest_unfinished_plan_run("demo").unwrap(), None);
    assert_eq!(store.gate_result("t", "g", "h").unwrap(), None);
    assert_eq!(store.resumable_story_run("p", "S1").unwrap(), None);
    let by_story = store.cost_report(CostGroup::Story, None).unwrap();
    assert_eq!(by_story.rows.len(), 1);
    assert_eq!(
        (by_story.rows[0].key.as_str(), by_story.rows[0].cost_usd),
        ("S1", 0.25)
    );
    drop(store);
    // Nothing was migrated by reading.
    let version: i64 = Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 4);
}

#[test]
fn a_database_from_a_newer_ralph_is_still_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ralph.db");
    drop(Store::open(&db).unwrap());
    Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    for opened in [Store::open(&db), Store::open_read_only(&db)] {
        match opened {
            Err(StoreError::TooNew { found, known }) => {
                assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION))
            }
            other => panic!("expected TooNew, got {:?}", other.err()),
        }
    }
}

#[test]
fn every_record_reads_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = started(&dir.path().join("ralph.db"));
    assert_eq!(store.plan_run("p").unwrap(), Some(plan_run("p", "demo")));
    assert_eq!(
        store.stories("p").unwrap(),
        vec![story("p", "S1", &[]), story("p", "S2", &["S1"])]
    );

    let mut finished_plan = plan_run("p", "demo");
    finished_plan.state = RunState::Completed;
    finished_plan.finished_at = Some(NOW.into());
    finished_plan.stop_reason = Some("completed".into());
    finished_plan.user_branch = None;
    store
        .commit(&Write::SavePlanRun {
            plan_run: finished_plan.clone(),
            stories: vec![],
            events: vec![],
        })
        .unwrap();
    assert_eq!(store.plan_run("p").unwrap(), Some(finished_plan));
}

#[test]
fn attempts_and_queue_entries_read_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = started(&dir.path().join("ralph.db"));
    let mut s1 = store.story("p", "S1").unwrap().unwrap();
    s1.state = StoryState::Running;
    s1.branch = Some("ralph/demo/S1".into());
    s1.worktree = Some(".ralph/worktrees/S1".into());
    s1.base_commit = Some("b".repeat(40));
    s1.head_commit = Some("c".repeat(40));
    s1.attempts = 1;
    s1.iterations = 3;
    s1.cost_usd = None;
    s1.reason = Some("why not".into());
    let attempt = AttemptRecord {
        plan_run_id: "p".into(),
        story_id: "S1".into(),
        n: 1,
        run_id: "run-1".into(),
        started_at: NOW.into(),
        finished_at: None,
        outcome: None,
        base_commit: Some("b".repeat(40)),
    };
    let events = vec![state_event("p", "S1", StoryState::Running)];
    store
        .commit(&Write::StartAttempt {
            attempt: attempt.clone(),
            story: s1.clone(),
            events,
        })
        .unwrap();
    assert_eq!(store.story("p", "S1").unwrap(), Some(s1.clone()));
    assert_eq!(store.attempts("p", "S1").unwrap(), vec![attempt.clone()]);
    let finished = AttemptRecord {
        finished_at: Some(NOW.into()),
        outcome: Some("completed".into()),
        ..attempt
    };
    store
        .commit(&Write::FinishAttempt {
            attempt: finished.clone(),
            story: None,
            events: vec![],
        })
        .unwrap();
    assert_eq!(store.attempts("p", "S1").unwrap(), vec![finished]);

    let entry = QueueEntry {
        plan_run_id: "p".into(),
        seq: 1,
        story_ids: vec!["S1".into()],
        state: QueueState::Checking,
        candidate_ref: Some("refs/ralph/candidates/p/1".into()),
        candidate_commit: Some("d".repeat(40)),
        built_on: Some("1".repeat(40)),
        detail: Some("gate `test` running".into()),
        created_at: NOW.into(),
        updated_at: NOW.into(),
    };
    let s1 = change(&mut store, s1, StoryState::Queued);
    let mut merging = s1.clone();
    merging.state = StoryState::Merging;
    store
        .commit(&Write::SaveQueueEntry {
            entry: entry.clone(),
            stories: vec![merging.clone()],
            events: vec![state_event("p", "S1", StoryState::Merging)],
        })
        .unwrap();
    assert_eq!(store.merge_queue("p").unwrap(), vec![entry]);
    assert_eq!(store.story("p", "S1").unwrap(), Some(merging));
    // Updated rows keep their place: the plan's order.
    let order: Vec<String> = store
        .stories("p")
        .unwrap()
        .into_iter()
        .map(|s| s.story_id)
        .collect();
    assert_eq!(order, ["S1", "S2"]);
}

#[test]
fn a_story_state_change_and_its_event_are_written_together_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ralph.db");
    let mut store = started(&db);
    let s1 = store.story("p", "S1").unwrap().unwrap();

    // Without its event the change is refused, and nothing of the write is kept.
    let mut ready = s1.clone();
    ready.state = StoryState::Ready;
    let other = state_event("p", "S2", StoryState::Ready);
    let refused = store.commit(&Write::SaveStory {
        story: ready.clone(),
        events: vec![other],
    });
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
    assert_eq!(store.story("p", "S1").unwrap(), Some(s1.clone()));
    assert!(events_of(&store, "p").is_empty());

    // The event's insert fails after the story's row was written: the row is rolled back.
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER no_events BEFORE INSERT ON events \
             BEGIN SELECT RAISE(ABORT, 'disk says no'); END;",
        )
        .unwrap();
    let failed = store.commit(&Write::SaveStory {
        story: ready.clone(),
        events: vec![state_event("p", "S1", StoryState::Ready)],
    });
    assert!(failed.is_err());
    assert_eq!(store.story("p", "S1").unwrap(), Some(s1));
    assert!(events_of(&store, "p").is_empty());

    // With the event, both are there.
    Connection::open(&db)
        .unwrap()
        .execute_batch("DROP TRIGGER no_events")
        .unwrap();
    let ready = change(&mut store, ready, StoryState::Ready);
    assert_eq!(store.story("p", "S1").unwrap(), Some(ready));
    let events = events_of(&store, "p");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, STORY_STATE_EVENT);
    // A write that changes no state needs no event.
    let mut same = store.story("p", "S2").unwrap().unwrap();
    same.reason = Some("waits for S1".into());
    store
        .commit(&Write::SaveStory {
            story: same,
            events: vec![],
        })
        .unwrap();
}

#[test]
fn through_the_writer_a_refused_state_change_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Writer::start(started(&dir.path().join("ralph.db")), None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut s1 = story("p", "S1", &[]);
    s1.state = StoryState::Ready;
    let mut s2 = story("p", "S2", &["S1"]);
    s2.state = StoryState::Blocked;
    rt.block_on(async {
        // Sent together, so committed in one batch.
        let good = writer.write(Write::SaveStory {
            story: s1.clone(),
            events: vec![state_event("p", "S1", StoryState::Ready)],
        });
        let bad = writer.write(Write::SaveStory {
            story: s2,
            events: vec![],
        });
        let (good, bad) = tokio::join!(good, bad);
        good.unwrap();
        assert!(matches!(bad, Err(StoreError::Invalid(_))));
    });
    let states = writer
        .read(|s| {
            Ok((
                s.story("p", "S1")?.map(|s| s.state),
                s.story("p", "S2")?.map(|s| s.state),
                s.events("p", 0)?.len(),
            ))
        })
        .unwrap();
    assert_eq!(
        states,
        (Some(StoryState::Ready), Some(StoryState::Pending), 1)
    );
}

#[test]
fn landing_merges_exactly_the_entrys_stories_in_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = started(&dir.path().join("ralph.db"));
    let entry = QueueEntry {
        plan_run_id: "p".into(),
        seq: 7,
        story_ids: vec!["S1".into(), "S2".into()],
        state: QueueState::Passed,
        candidate_ref: None,
        candidate_commit: Some("e".repeat(40)),
        built_on: None,
        detail: None,
        created_at: NOW.into(),
        updated_at: NOW.into(),
    };
    store
        .commit(&Write::SaveQueueEntry {
            entry: entry.clone(),
            stories: vec![],
            events: vec![],
        })
        .unwrap();
    let merged = |id: &str| {
        let mut s = story("p", id, &[]);
        s.state = StoryState::Merged;
        s.merged_commit = Some("e".repeat(40));
        s
    };
    let landed = QueueEntry {
        state: QueueState::Landed,
        ..entry.clone()
    };
    let events = vec![
        state_event("p", "S1", StoryState::Merged),
        state_event("p", "S2", StoryState::Merged),
    ];
    // One story short: refused, the entry and both stories as they were.
    let short = store.commit(&Write::Land {
        entry: landed.clone(),
        stories: vec![merged("S1")],
        events: events.clone(),
    });
    assert!(matches!(short, Err(StoreError::Invalid(_))), "{short:?}");
    // Both stories, but the entry not marked landed: refused too.
    let not_landed = store.commit(&Write::Land {
        entry: entry.clone(),
        stories: vec![merged("S1"), merged("S2")],
        events: events.clone(),
    });
    assert!(matches!(not_landed, Err(StoreError::Invalid(_))));
    assert_eq!(store.merge_queue("p").unwrap(), vec![entry]);
    assert!(store
        .stories("p")
        .unwrap()
        .iter()
        .all(|s| s.state == StoryState::Pending));
    assert!(events_of(&store, "p").is_empty());

    store
        .commit(&Write::Land {
            entry: landed.clone(),
            stories: vec![merged("S2"), merged("S1")],
            events,
        })
        .unwrap();
    assert_eq!(store.merge_queue("p").unwrap(), vec![landed]);
    let stories = store.stories("p").unwrap();
    assert!(stories.iter().all(|s| s.state == StoryState::Merged
        && s.merged_commit.as_deref() == Some("e".repeat(40).as_str())));
    assert_eq!(events_of(&store, "p").len(), 2);
}

#[test]
fn resume_finds_the_newest_unfinished_plan_run_of_the_plan_and_its_story_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("ralph.db")).unwrap();
    assert_eq!(store.latest_unfinished_plan_run("demo").unwrap(), None);
    let mut done = plan_run("p1", "demo");
    done.finished_at = Some(NOW.into());
    done.state = RunState::Completed;
    for p in [plan_run("p0", "demo"), done, plan_run("q", "other")] {
        store
            .commit(&Write::SavePlanRun {
                plan_run: p,
                stories: vec![],
                events: vec![],
            })
            .unwrap();
    }
    // p1 is newer but finished; q is another plan.
    let found = store.latest_unfinished_plan_run("demo").unwrap().unwrap();
    assert_eq!(found.id, "p0");
    assert_eq!(
        store.latest_plan_run(Some("demo")).unwrap().unwrap().id,
        "p1"
    );
    assert_eq!(store.latest_plan_run(None).unwrap().unwrap().id, "q");

    // The same story id in two plan runs: each plan run resumes its own loop run.
    for (run_id, plan) in [("r-p0", "p0"), ("r-q", "q")] {
        let mut run = ralph_store::RunRecord::new(run_id.into(), NOW, Some("S1".into()));
        run.plan_run_id = Some(plan.into());
        store.save_run(&run, &[], false).unwrap();
    }
    let mut finished = ralph_store::RunRecord::new("r-p0-done".into(), NOW, Some("S1".into()));
    finished.plan_run_id = Some("p0".into());
    finished.state = RunState::Completed;
    store.save_run(&finished, &[], false).unwrap();
    let resumed = store.resumable_story_run("p0", "S1").unwrap().unwrap();
    assert_eq!(resumed.id, "r-p0");
    assert_eq!(resumed.plan_run_id.as_deref(), Some("p0"));
    assert_eq!(
        store.resumable_story_run("q", "S1").unwrap().unwrap().id,
        "r-q"
    );
    assert_eq!(store.resumable_story_run("p0", "S2").unwrap(), None);
    // A later write without the link keeps it.
    let mut unlinked = resumed.clone();
    unlinked.plan_run_id = None;
    store.save_run(&unlinked, &[], false).unwrap();
    assert_eq!(
        store.run("r-p0").unwrap().unwrap().plan_run_id.as_deref(),
        Some("p0")
    );
}

#[test]
fn the_gate_cache_hits_only_on_the_same_tree_gate_and_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("ralph.db")).unwrap();
    let result = GateResult {
        tree: "t1".into(),
        gate: "test".into(),
        command_hash: "h1".into(),
        passed: false,
        exit_code: Some(101),
        duration_s: 12.5,
        output_tail: Some("test failed".into()),
        created_at: NOW.into(),
    };
    store
        .commit(&Write::RecordGateResult {
            result: result.clone(),
        })
        .unwrap();
    assert_eq!(
        store.gate_result("t1", "test", "h1").unwrap(),
        Some(result.clone())
    );
    for (tree, gate, hash) in [
        ("t2", "test", "h1"),
        ("t1", "lint", "h1"),
        ("t1", "test", "h2"),
    ] {
        assert_eq!(store.gate_result(tree, gate, hash).unwrap(), None);
    }
    // A newer result of the same key replaces the old one.
    let passed = GateResult {
        passed: true,
        exit_code: Some(0),
        output_tail: None,
        ..result
    };
    store
        .commit(&Write::RecordGateResult {
            result: passed.clone(),
        })
        .unwrap();
    assert_eq!(store.gate_result("t1", "test", "h1").unwrap(), Some(passed));
}
