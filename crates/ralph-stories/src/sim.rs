//! The scheduler against a simulated clock: how long a plan takes with `parallel` slots when
//! every story merges after its duration, compared with what no schedule can beat.
//!
//! Event-driven: at each instant every story ending then finishes first, then the free slots
//! are filled from [`Scheduler::next`]. Stories ending at the same time finish in plan order.
//! The merge queue is not modelled (a merge takes no time).

use crate::schedule::{Outcome, ScheduleError, Scheduler};
use crate::{Dag, Plan};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimResult {
    /// When the last story merged.
    pub makespan: f64,
    /// `max(critical path, total work / parallel)`: no schedule does better.
    pub lower_bound: f64,
    /// `makespan / lower_bound` (1.0 for an empty plan).
    pub ratio: f64,
}

/// The plan with `durations` known in advance (the scheduler's estimates are exact).
/// `parallel` 0 counts as 1.
pub fn simulate(
    plan: &Plan,
    dag: &Dag,
    durations: &[f64],
    parallel: usize,
) -> Result<SimResult, ScheduleError> {
    simulate_with(plan, dag, durations, Some(durations), parallel)
}

/// The plan taking `actual` durations while the scheduler only knows `estimates` (1.0 each
/// when `None`).
pub fn simulate_with(
    plan: &Plan,
    dag: &Dag,
    actual: &[f64],
    estimates: Option<&[f64]>,
    parallel: usize,
) -> Result<SimResult, ScheduleError> {
    let parallel = parallel.max(1);
    let mut sched = Scheduler::new(plan, dag, estimates)?;
    if actual.len() != dag.len() {
        return Err(ScheduleError::WrongLength {
            expected: dag.len(),
            got: actual.len(),
        });
    }
    let mut now = 0.0_f64;
    // (end, story) of what runs.
    let mut ends: Vec<(f64, usize)> = Vec::with_capacity(parallel);
    loop {
        for i in sched.next(parallel - ends.len()) {
            sched.start(i)?;
            ends.push((now + actual[i], i));
        }
        let Some(&(first, _)) = ends.iter().min_by(|a, b| a.0.total_cmp(&b.0)) else {
            break;
        };
        now = first;
        let mut ending: Vec<usize> = ends
            .iter()
            .filter(|(t, _)| *t == first)
            .map(|&(_, i)| i)
            .collect();
        ending.sort_unstable();
        ends.retain(|(t, _)| *t != first);
        for i in ending {
            sched.finish(i, Outcome::Merged)?;
        }
    }
    let critical = dag
        .critical_paths(|i| actual[i])
        .into_iter()
        .fold(0.0, f64::max);
    let total: f64 = actual.iter().sum();
    let lower_bound = critical.max(total / parallel as f64);
    let ratio = if lower_bound > 0.0 {
        now / lower_bound
    } else {
        1.0
    };
    Ok(SimResult {
        makespan: now,
        lower_bound,
        ratio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;

    #[test]
    fn the_sixteen_story_plan_is_within_5_percent_of_the_bound_on_4_slots() {
        let (plan, durations) = sample::mixed16(42);
        let dag = Dag::of(&plan).unwrap();
        for parallel in [1, 2, 4, 8] {
            let r = simulate(&plan, &dag, &durations, parallel).unwrap();
            println!("parallel {parallel}: {r:?}");
            assert!(r.makespan >= r.lower_bound - 1e-9, "{r:?}");
        }
        let r = simulate(&plan, &dag, &durations, 4).unwrap();
        assert!(r.ratio <= 1.05, "{r:?}");
        // One slot: every story back to back, whatever the order.
        let one = simulate(&plan, &dag, &durations, 1).unwrap();
        assert!((one.ratio - 1.0).abs() < 1e-9, "{one:?}");
    }

    /// The fixed plan's durations from 200 seeds: the overlap rule costs a few percent on
    /// average (a story on the critical path waits for a running story it overlaps while a
    /// slot goes to another), longest-critical-path-first alone costs almost nothing.
    #[test]
    fn over_200_durations_the_mean_ratio_stays_low_on_4_slots() {
        let (mut with_paths, mut without) = (0.0, 0.0);
        for seed in 0..200 {
            let (plan, durations) = sample::mixed16(seed);
            let dag = Dag::of(&plan).unwrap();
            with_paths += simulate(&plan, &dag, &durations, 4).unwrap().ratio;
            let mut bare = plan.clone();
            for s in &mut bare.stories {
                s.affected_paths.clear();
            }
            without += simulate(&bare, &dag, &durations, 4).unwrap().ratio;
        }
        let (with_paths, without) = (with_paths / 200.0, without / 200.0);
        println!(
            "mean ratio on 4 slots: {with_paths:.4} with affected_paths, {without:.4} without"
        );
        assert!(with_paths <= 1.05, "{with_paths}");
        assert!(without <= 1.01, "{without}");
    }

    /// The scheduler never idles a slot while a story is ready, so Graham's bound for list
    /// schedules holds against the lower bound itself: makespan ≤ total / m + (1 − 1/m) ·
    /// critical path ≤ (2 − 1/m) · bound.
    #[test]
    fn random_plans_stay_within_grahams_bound() {
        let mut worst = 0.0_f64;
        for seed in 0..250 {
            let mut rng = sample::Rng::new(seed ^ 0x5eed);
            let n = 1 + rng.below(60);
            let (plan, durations) = sample::random_plan(seed, n, 1 + rng.below(4));
            let dag = Dag::of(&plan).unwrap();
            let m = 1 + rng.below(8);
            let r = simulate(&plan, &dag, &durations, m).unwrap();
            let graham = 2.0 - 1.0 / m as f64;
            assert!(r.makespan >= r.lower_bound - 1e-9, "seed {seed}: {r:?}");
            assert!(r.ratio <= graham + 1e-9, "seed {seed}, {m} slots: {r:?}");
            worst = worst.max(r.ratio);
        }
        println!("worst ratio over 250 random plans: {worst:.4}");
    }

    #[test]
    fn a_chain_takes_its_length_and_independent_stories_share_the_slots() {
        let chain = sample::plan(
            "chain",
            vec![
                sample::story("a", &[], &[]),
                sample::story("b", &["a"], &[]),
                sample::story("c", &["b"], &[]),
            ],
        );
        let dag = Dag::of(&chain).unwrap();
        let r = simulate(&chain, &dag, &[1.0, 2.0, 3.0], 4).unwrap();
        assert_eq!(r.makespan, 6.0);
        assert_eq!(r.ratio, 1.0);
        let flat = sample::plan(
            "flat",
            (0..4)
                .map(|i| sample::story(&format!("s{i}"), &[], &[]))
                .collect(),
        );
        let dag = Dag::of(&flat).unwrap();
        let r = simulate(&flat, &dag, &[3.0, 1.0, 1.0, 1.0], 2).unwrap();
        // Longest first: 3 on one slot, the three 1s on the other.
        assert_eq!(r.makespan, 3.0);
        assert!(simulate(&flat, &dag, &[1.0], 2).is_err());
    }
}
