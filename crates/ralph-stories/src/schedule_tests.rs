use super::*;
use crate::sample::{self, Rng};

type Spec<'a> = &'a [(&'a str, &'a [&'a str], &'a [&'a str])];

fn setup(spec: Spec) -> (Plan, Dag) {
    let plan = sample::plan(
        "t",
        spec.iter()
            .map(|(id, d, p)| sample::story(id, d, p))
            .collect(),
    );
    let dag = Dag::of(&plan).unwrap();
    (plan, dag)
}

fn ids(s: &Scheduler, v: &[usize]) -> Vec<String> {
    v.iter().map(|&i| s.dag.id(i).to_string()).collect()
}

#[test]
fn longest_critical_path_first_then_more_dependents_then_plan_order() {
    // a → x (long tail); b, c, d: no tail; c has a dependent, d none.
    let (plan, dag) = setup(&[
        ("b", &[], &[]),
        ("a", &[], &[]),
        ("x", &["a"], &[]),
        ("d", &[], &[]),
        ("c", &[], &[]),
        ("y", &["c"], &[]),
    ]);
    let w = [2.0, 1.0, 1.0, 2.0, 1.0, 1.0];
    let s = Scheduler::new(&plan, &dag, Some(&w)).unwrap();
    // a: 2, b: 2, d: 2, c: 2 (with y): c and a have a dependent; a is earlier.
    assert_eq!(ids(&s, &s.ready()), ["b", "a", "d", "c"]);
    assert_eq!(ids(&s, &s.next(4)), ["a", "c", "b", "d"]);
    assert_eq!(ids(&s, &s.next(1)), ["a"]);
    assert_eq!(s.priority(1), 2.0);
    // Unit durations: a and c (2.0) before b and d (1.0).
    let s = Scheduler::new(&plan, &dag, None).unwrap();
    assert_eq!(ids(&s, &s.next(2)), ["a", "c"]);
}

#[test]
fn an_overlapping_story_waits_while_another_can_start_but_never_idles_a_slot() {
    let (plan, dag) = setup(&[
        ("run", &[], &["src/db/**"]),
        ("db", &[], &["src/db/x.rs"]),
        ("db2", &[], &["src/db/y.rs"]),
        ("api", &[], &["src/api/**"]),
        ("none", &[], &[]),
    ]);
    let w = [1.0, 5.0, 4.0, 1.0, 0.5];
    let mut s = Scheduler::new(&plan, &dag, Some(&w)).unwrap();
    s.start(0).unwrap();
    // db and db2 are the longest but overlap the running story.
    assert_eq!(ids(&s, &s.next(1)), ["api"]);
    assert_eq!(ids(&s, &s.next(2)), ["api", "none"]);
    // Only overlapping ones left: the best starts anyway.
    assert_eq!(ids(&s, &s.next(4)), ["api", "none", "db", "db2"]);
    s.finish(0, Outcome::Merged).unwrap();
    // Chosen in the same call counts as running: db2 overlaps nothing of db's.
    assert_eq!(ids(&s, &s.next(2)), ["db", "db2"]);
}

#[test]
fn a_failure_blocks_every_descendant_and_the_run_still_finishes() {
    let (plan, dag) = setup(&[
        ("a", &[], &[]),
        ("b", &["a"], &[]),
        ("c", &["b"], &[]),
        ("d", &[], &[]),
        ("e", &["c", "d"], &[]),
    ]);
    let mut s = Scheduler::new(&plan, &dag, None).unwrap();
    s.start(0).unwrap();
    s.start(3).unwrap();
    assert!(s.next(2).is_empty());
    assert_eq!(s.finish(0, Outcome::Merged).unwrap(), Vec::<usize>::new());
    assert_eq!(s.ready(), [1]);
    s.start(1).unwrap();
    assert_eq!(s.finish(1, Outcome::Failed).unwrap(), [2, 4]);
    assert_eq!(s.state(2), State::Blocked);
    assert!(!s.is_finished(), "d still runs");
    assert_eq!(s.finish(3, Outcome::Merged).unwrap(), Vec::<usize>::new());
    assert!(s.is_finished());
    assert_eq!(
        s.states(),
        [
            State::Done,
            State::Failed,
            State::Blocked,
            State::Done,
            State::Blocked
        ]
    );
}

#[test]
fn only_runs_the_named_stories_and_their_unmerged_ancestors() {
    let (plan, dag) = setup(&[
        ("a", &[], &[]),
        ("b", &["a"], &[]),
        ("c", &["b"], &[]),
        ("d", &["c"], &[]),
        ("e", &[], &[]),
    ]);
    let mut s = Scheduler::new(&plan, &dag, None).unwrap();
    s.start(0).unwrap();
    s.finish(0, Outcome::Merged).unwrap();
    s.restrict(&[2]).unwrap();
    assert!(!s.in_scope(0), "already merged");
    assert!(s.in_scope(1) && s.in_scope(2));
    assert!(!s.in_scope(3) && !s.in_scope(4));
    assert_eq!(s.next(8), [1]);
    assert!(matches!(s.start(4), Err(ScheduleError::NotReady { .. })));
    s.start(1).unwrap();
    s.finish(1, Outcome::Merged).unwrap();
    s.start(2).unwrap();
    s.finish(2, Outcome::Merged).unwrap();
    assert!(s.is_finished());
    assert_eq!(s.state(3), State::Pending);
    assert!(s.restrict(&[9]).is_err());
}

#[test]
fn resume_keeps_what_was_done_and_derives_blocked() {
    let (plan, dag) = setup(&[
        ("a", &[], &[]),
        ("b", &["a"], &[]),
        ("c", &["a"], &[]),
        ("d", &["c"], &[]),
        ("e", &["b"], &[]),
        ("f", &[], &[]),
    ]);
    use State::*;
    // d was blocked by c, and c has been reset to pending (a retry): d is pending again.
    // e is stored pending but b failed: blocked.
    let stored = [Done, Failed, Pending, Blocked, Pending, Running];
    let s = Scheduler::resume(&plan, &dag, None, &stored).unwrap();
    assert_eq!(
        s.states(),
        [Done, Failed, Pending, Pending, Blocked, Running]
    );
    assert_eq!(s.running(), [5]);
    assert_eq!(s.ready(), [2]);
    assert!(!s.is_finished());

    let bad = [Pending, Done, Pending, Pending, Pending, Pending];
    let e = Scheduler::resume(&plan, &dag, None, &bad).unwrap_err();
    assert_eq!(
        e.to_string(),
        "story b is done but its dependency a is pending"
    );
    assert!(Scheduler::resume(&plan, &dag, None, &[Pending]).is_err());
}

#[test]
fn refuses_what_rule_3_forbids() {
    let (plan, dag) = setup(&[("a", &[], &[]), ("b", &["a"], &[])]);
    let mut s = Scheduler::new(&plan, &dag, None).unwrap();
    let e = s.start(1).unwrap_err();
    assert_eq!(e.to_string(), "story b cannot start: waits for a");
    assert!(matches!(
        s.finish(0, Outcome::Merged),
        Err(ScheduleError::NotRunning { .. })
    ));
    assert!(matches!(
        s.start(7),
        Err(ScheduleError::NoSuchStory { index: 7, len: 2 })
    ));
    s.start(0).unwrap();
    assert_eq!(
        s.start(0).unwrap_err().to_string(),
        "story a cannot start: it is running"
    );
    assert!(matches!(
        Scheduler::new(&plan, &dag, Some(&[1.0])),
        Err(ScheduleError::WrongLength { .. })
    ));
    assert!(matches!(
        Scheduler::new(&plan, &dag, Some(&[1.0, f64::NAN])),
        Err(ScheduleError::BadDuration { .. })
    ));
    let other = sample::plan("o", vec![sample::story("a", &[], &[])]);
    assert!(matches!(
        Scheduler::new(&other, &dag, None),
        Err(ScheduleError::PlanMismatch { .. })
    ));
}

/// Random plans driven to their end with random failures, slots, `--only` and resumes: the
/// scheduler never starts a story before its dependencies merged, never fills more than the
/// slots, never leaves a slot idle while a story is ready, and always finishes with every
/// story in a state that follows from the outcomes.
#[test]
fn random_plans_respect_dependencies_and_slots_and_finish() {
    for seed in 0..300 {
        let mut rng = Rng::new(seed);
        let n = 1 + rng.below(40);
        let (plan, durations) = sample::random_plan(seed, n, 1 + rng.below(4));
        let dag = Dag::of(&plan).unwrap();
        let parallel = 1 + rng.below(8);
        let fail_rate = [0.0, 0.1, 0.3][rng.below(3)];
        let mut s = Scheduler::new(&plan, &dag, Some(&durations)).unwrap();
        if rng.below(4) == 0 {
            let only: Vec<usize> = (0..1 + rng.below(3)).map(|_| rng.below(n)).collect();
            s.restrict(&only).unwrap();
        }
        let mut steps = 0;
        while !s.is_finished() {
            steps += 1;
            assert!(steps <= 2 * n + 2, "seed {seed}: no progress");
            let free = parallel - s.running().len();
            let chosen = s.next(free);
            assert_eq!(chosen.len(), free.min(s.ready().len()), "seed {seed}");
            for &i in &chosen {
                assert!(dag.deps(i).iter().all(|&d| s.state(d) == State::Done));
                s.start(i).unwrap();
            }
            assert!(s.running().len() <= parallel, "seed {seed}");
            assert!(!s.running().is_empty(), "seed {seed}: stuck");
            let i = s.running()[rng.below(s.running().len())];
            let outcome = if rng.unit() < fail_rate {
                Outcome::Failed
            } else {
                Outcome::Merged
            };
            s.finish(i, outcome).unwrap();
            if rng.below(10) == 0 {
                // A crash and a resume from the stored states.
                let wanted: Vec<usize> = (0..n).filter(|&i| s.in_scope(i)).collect();
                let restricted = wanted.len() < n;
                s = Scheduler::resume(&plan, &dag, Some(&durations), s.states()).unwrap();
                if restricted {
                    s.restrict(&wanted).unwrap();
                }
            }
        }
        check_final_states(&s, &dag, seed);
    }
}

fn check_final_states(s: &Scheduler, dag: &Dag, seed: u64) {
    for i in 0..dag.len() {
        let failed_above = dag
            .ancestors(i)
            .iter()
            .any(|&a| s.state(a) == State::Failed);
        match s.state(i) {
            State::Blocked => assert!(failed_above, "seed {seed}: {i} blocked for nothing"),
            State::Pending => assert!(
                !s.in_scope(i) || failed_above,
                "seed {seed}: {i} left pending"
            ),
            State::Running => panic!("seed {seed}: {i} still running"),
            State::Done => assert!(dag.deps(i).iter().all(|&d| s.state(d) == State::Done)),
            State::Failed => {}
        }
    }
}

#[test]
fn a_slot_is_held_for_a_better_story_whose_dependencies_are_in_a_quick_merge() {
    // f → g → h (the long chain); o: one story, ready now.
    let (plan, dag) = setup(&[
        ("f", &[], &[]),
        ("g", &["f"], &[]),
        ("h", &["g"], &[]),
        ("o", &[], &[]),
    ]);
    let mut s = Scheduler::new(&plan, &dag, None).unwrap();
    s.start(0).unwrap();
    // f left its slot and waits in the merge queue.
    let quick = |i: usize| i == 0;
    let slow = |_: usize| false;
    assert_eq!(ids(&s, &s.next(1)), ["o"]);
    // g (2 left) outranks o (1): the one slot waits for g.
    let (chosen, held) = s.next_holding(1, quick);
    assert_eq!((ids(&s, &chosen), held), (vec![], 1));
    // Two slots: o takes the second.
    let (chosen, held) = s.next_holding(2, quick);
    assert_eq!((ids(&s, &chosen), held), (vec!["o".to_string()], 1));
    // A merge with checks to run may take minutes: nothing waits for it.
    let (chosen, held) = s.next_holding(1, slow);
    assert_eq!((ids(&s, &chosen), held), (vec!["o".to_string()], 0));
    // Once f merged, g is simply the best ready story.
    s.finish(0, Outcome::Merged).unwrap();
    let (chosen, held) = s.next_holding(1, quick);
    assert_eq!((ids(&s, &chosen), held), (vec!["g".to_string()], 0));
}

#[test]
fn no_slot_is_held_for_a_story_that_does_not_outrank_the_ready_one() {
    // f → g (short); o → p → q: o is the longer path.
    let (plan, dag) = setup(&[
        ("f", &[], &[]),
        ("g", &["f"], &[]),
        ("o", &[], &[]),
        ("p", &["o"], &[]),
        ("q", &["p"], &[]),
    ]);
    let mut s = Scheduler::new(&plan, &dag, None).unwrap();
    s.start(0).unwrap();
    let (chosen, held) = s.next_holding(1, |i| i == 0);
    assert_eq!((ids(&s, &chosen), held), (vec!["o".to_string()], 0));
}
