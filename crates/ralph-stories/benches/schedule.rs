//! The scheduler's quality and cost.
//!
//! Quality: the makespan of the 16-story sample plan (`sample::mixed16`, seed 42) against the
//! lower bound `max(critical path, total work / parallel)` on 2, 4 and 8 slots, with exact
//! duration estimates and with none (1.0 each), then the mean and worst ratio over 200 seeds'
//! durations, with and without the plan's `affected_paths` (what the overlap rule costs).
//! Goal: ≤ 1.05 on 4 slots.
//!
//! Cost: a 500-story random plan (up to 3 dependencies each) run to its end on 8 slots, every
//! story merging in start order: the time of the scheduler's decisions (`next`, `start`,
//! `finish`) per story, and building the scheduler (the overlap cache is filled as asked).
//!
//! Run with `cargo bench -p ralph-stories`.

#![expect(clippy::unwrap_used, reason = "a benchmark stops at the first failure")]

use std::time::{Duration, Instant};

use ralph_stories::{sample, simulate, simulate_with, Dag, Outcome, Plan, Scheduler};

const SEEDS: u64 = 200;
const STORIES: usize = 500;
const RUNS: usize = 20;

fn main() {
    quality();
    cost();
}

fn quality() {
    let (plan, durations) = sample::mixed16(42);
    let dag = Dag::of(&plan).unwrap();
    println!(
        "16-story plan, seed 42 (total work {:.2})",
        durations.iter().sum::<f64>()
    );
    println!(
        "{:>9} {:>9} {:>9} {:>7} {:>14}",
        "parallel", "makespan", "bound", "ratio", "ratio (no est)"
    );
    for parallel in [2, 4, 8] {
        let r = simulate(&plan, &dag, &durations, parallel).unwrap();
        let u = simulate_with(&plan, &dag, &durations, None, parallel).unwrap();
        println!(
            "{parallel:>9} {:>9.3} {:>9.3} {:>7.4} {:>14.4}",
            r.makespan, r.lower_bound, r.ratio, u.ratio
        );
    }
    println!("\n16-story plan, {SEEDS} seeds' durations: ratio mean / worst");
    println!(
        "{:>9} {:>22} {:>22}",
        "parallel", "with affected_paths", "without"
    );
    for parallel in [2, 4, 8] {
        let with = sweep(parallel, false);
        let without = sweep(parallel, true);
        println!(
            "{parallel:>9} {:>13.4} / {:>6.4} {:>13.4} / {:>6.4}",
            with.0, with.1, without.0, without.1
        );
    }
}

/// Mean and worst ratio over the seeds.
fn sweep(parallel: usize, bare: bool) -> (f64, f64) {
    let (mut sum, mut worst) = (0.0, 0.0_f64);
    for seed in 0..SEEDS {
        let (mut plan, durations) = sample::mixed16(seed);
        if bare {
            for s in &mut plan.stories {
                s.affected_paths.clear();
            }
        }
        let dag = Dag::of(&plan).unwrap();
        let r = simulate(&plan, &dag, &durations, parallel).unwrap();
        sum += r.ratio;
        worst = worst.max(r.ratio);
    }
    (sum / SEEDS as f64, worst)
}

fn cost() {
    let (plan, durations) = sample::random_plan(7, STORIES, 3);
    let start = Instant::now();
    let dag = Dag::of(&plan).unwrap();
    let dag_time = start.elapsed();
    let mut build = Vec::with_capacity(RUNS);
    let mut decide = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let (b, d) = run(&plan, &dag, &durations, 8);
        build.push(b);
        decide.push(d);
    }
    build.sort_unstable();
    decide.sort_unstable();
    println!("\n{STORIES}-story plan on 8 slots ({RUNS} runs, median)");
    println!(
        "  Dag::of                        {:>10.1} µs",
        micros(dag_time)
    );
    println!(
        "  Scheduler::new                 {:>10.1} µs",
        micros(build[RUNS / 2])
    );
    println!(
        "  decisions per story            {:>10.2} µs  (next + start + finish; whole run {:.1} ms)",
        micros(decide[RUNS / 2]) / STORIES as f64,
        micros(decide[RUNS / 2]) / 1000.0
    );
}

/// Build time, then the time of every decision of a run where stories merge in start order.
fn run(plan: &Plan, dag: &Dag, durations: &[f64], parallel: usize) -> (Duration, Duration) {
    let start = Instant::now();
    let mut s = Scheduler::new(plan, dag, Some(durations)).unwrap();
    let build = start.elapsed();
    let start = Instant::now();
    let mut merged = 0;
    while !s.is_finished() {
        for i in s.next(parallel - s.running().len()) {
            s.start(i).unwrap();
        }
        let first = s.running()[0];
        s.finish(first, Outcome::Merged).unwrap();
        merged += 1;
    }
    let decide = start.elapsed();
    assert_eq!(merged, STORIES);
    (build, decide)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
