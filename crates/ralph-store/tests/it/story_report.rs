//! The per-story report of a plan run: iterations and cost summed from the stories' loop runs
//! (all attempts), cost unknown (`None`, never 0) when any call's cost is unknown.

use ralph_store::{
    CostGroup, RunRecord, SideCall, Store, StoryReportRow, StoryState, Write, NO_STORY,
};

use crate::stories::{started, state_event};
use crate::writer::iteration;

const NOW: &str = "2026-12-03T00:00:00.000Z";

/// A loop run of `story` in plan run `plan` with iterations of the given costs.
fn loop_run(store: &mut Store, id: &str, plan: &str, story: &str, costs: &[Option<f64>]) {
    let mut run = RunRecord::new(id.into(), NOW, Some(story.into()));
    run.plan_run_id = Some(plan.into());
    store.save_run(&run, &[], false).unwrap();
    for (i, cost) in costs.iter().enumerate() {
        let mut it = iteration(id, i as u32 + 1);
        it.cost_usd = *cost;
        if cost.is_none() {
            it.cost_source = "unknown".into();
        }
        run.iteration = i as u32 + 1;
        store.commit_iteration(&run, &it, &[]).unwrap();
    }
}

fn row<'a>(rows: &'a [StoryReportRow], id: &str) -> &'a StoryReportRow {
    rows.iter().find(|r| r.story_id == id).unwrap()
}

/// Plan run p: S1 with two attempts of known cost and a side call, merged; S2 with one
/// iteration of unknown cost. Plan run q: its own S1. The single loop: one iteration.
fn populate(store: &mut Store) {
    // S1: two attempts, all costs known, plus a side call (a notes summary).
    loop_run(store, "a1", "p", "S1", &[Some(0.25), Some(0.5)]);
    loop_run(store, "a2", "p", "S1", &[Some(0.125)]);
    let a2 = store.run("a2").unwrap().unwrap();
    let call = SideCall {
        after_iteration: 1,
        kind: "summary".into(),
        ts: NOW.into(),
        backend: "custom".into(),
        model: None,
        cost_usd: Some(0.0625),
        cost_source: "reported".into(),
        tokens: None,
    };
    store.commit_side_call(&a2, &call, &[]).unwrap();
    // S2: one iteration of unknown cost among known ones.
    loop_run(store, "b1", "p", "S2", &[Some(1.0), None, Some(1.0)]);
    // The same story id in another plan run is not this plan run's.
    let mut other = ralph_store::PlanRunRecord {
        id: "q".into(),
        ..store.plan_run("p").unwrap().unwrap()
    };
    other.plan_name = "other".into();
    store
        .commit(&Write::SavePlanRun {
            plan_run: other,
            stories: vec![],
            events: vec![],
        })
        .unwrap();
    loop_run(store, "x1", "q", "S1", &[Some(100.0)]);
    // And the single loop's run neither.
    let mut single = RunRecord::new("solo".into(), NOW, None);
    store.save_run(&single, &[], false).unwrap();
    single.iteration = 1;
    store
        .commit_iteration(&single, &iteration("solo", 1), &[])
        .unwrap();

    let mut s1 = store.story("p", "S1").unwrap().unwrap();
    s1.state = StoryState::Merged;
    s1.attempts = 2;
    s1.branch = Some("ralph/demo/S1".into());
    store
        .commit(&Write::SaveStory {
            story: s1,
            events: vec![state_event("p", "S1", StoryState::Merged)],
        })
        .unwrap();
}

#[test]
fn story_costs_sum_every_attempt_and_are_unknown_when_any_call_is() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = started(&dir.path().join("ralph.db"));
    populate(&mut store);
    let rows = store.story_report("p").unwrap();
    assert_eq!(
        rows.iter().map(|r| r.story_id.as_str()).collect::<Vec<_>>(),
        ["S1", "S2"]
    );
    let s1 = row(&rows, "S1");
    assert_eq!(
        (s1.state, s1.iterations, s1.attempts, s1.branch.as_deref()),
        (StoryState::Merged, 3, 2, Some("ralph/demo/S1"))
    );
    assert_eq!(s1.cost_usd, Some(0.25 + 0.5 + 0.125 + 0.0625));
    let s2 = row(&rows, "S2");
    assert_eq!((s2.iterations, s2.cost_usd), (3, None));
    assert_eq!(s2.depends_on, ["S1"]);
    assert_eq!(s2.layer.as_deref(), Some("data"));
    // The plan's total is unknown as soon as one story's is.
    assert_eq!(store.plan_run_cost("p").unwrap(), None);
    assert_eq!(store.plan_run_cost("q").unwrap(), Some(100.0));

    // `ralph cost --by story`: every plan run's S1 together, the single loop apart.
    let by_story = store.cost_report(CostGroup::Story, None).unwrap();
    let keys: Vec<(&str, u32, u32)> = by_story
        .rows
        .iter()
        .map(|r| (r.key.as_str(), r.iterations, r.unknown_cost_iterations))
        .collect();
    assert_eq!(keys, [(NO_STORY, 1, 0), ("S1", 4, 0), ("S2", 3, 1)]);
    assert_eq!(
        by_story.rows[1].cost_usd,
        100.0 + 0.25 + 0.5 + 0.125 + 0.0625
    );
    assert_eq!(by_story.rows[1].side_calls, 1);
    assert_eq!(by_story.rows[2].cost_usd, 2.0);

    // The JSON shape of `ralph stories status --json`'s stories.
    let json = serde_json::to_value(s2).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"id": "S2", "state": "pending", "layer": "data",
            "depends_on": ["S1"], "iterations": 3, "cost_usd": null, "branch": null,
            "attempts": 0, "reason": null, "model": null, "escalated_to": null})
    );
}

#[test]
fn a_story_that_has_not_run_costs_nothing_and_an_implausible_cost_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = started(&dir.path().join("ralph.db"));
    let rows = store.story_report("p").unwrap();
    assert!(rows
        .iter()
        .all(|r| r.iterations == 0 && r.cost_usd == Some(0.0)));
    assert_eq!(store.plan_run_cost("p").unwrap(), Some(0.0));
    // A figure no call can have is not summed as if it were true.
    loop_run(&mut store, "a1", "p", "S1", &[Some(0.5), Some(1e12)]);
    let rows = store.story_report("p").unwrap();
    assert_eq!(row(&rows, "S1").cost_usd, None);
    assert_eq!(row(&rows, "S1").iterations, 2);
    assert_eq!(row(&rows, "S2").cost_usd, Some(0.0));
    assert_eq!(store.plan_run_cost("p").unwrap(), None);
    assert!(matches!(
        serde_json::to_value(StoryState::NeedsHuman).unwrap(),
        serde_json::Value::String(s) if s == "needs_human"
    ));
}
