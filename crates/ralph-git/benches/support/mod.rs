//! What the ralph-git benchmarks share: sample statistics and the setup's git, isolated from
//! the developer's configuration.
#![expect(dead_code, reason = "each benchmark includes this and uses part of it")]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

pub struct Stats {
    pub min: Duration,
    pub median: Duration,
    pub p95: Duration,
}

impl Stats {
    pub fn of(mut samples: Vec<Duration>) -> Stats {
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Stats {
            min: samples[0],
            median: at(0.5),
            p95: at(0.95),
        }
    }

    /// One line: `label`, then min, median and p95 in milliseconds.
    pub fn print(&self, label: &str) {
        self.line(label, |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0));
    }

    /// The same in microseconds.
    pub fn print_us(&self, label: &str) {
        self.line(label, |d| format!("{:.0} µs", d.as_secs_f64() * 1e6));
    }

    fn line(&self, label: &str, unit: impl Fn(Duration) -> String) {
        println!(
            "{label:<44} {:>9} {:>9} {:>9}",
            unit(self.min),
            unit(self.median),
            unit(self.p95)
        );
    }
}

/// A setup command, with a fixed identity and none of the caller's `GIT_*` variables.
pub fn git(dir: &Path, args: &[&str]) {
    let mut cmd = Command::new("git");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(name);
        }
    }
    let status = cmd
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@localhost")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@localhost")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?} failed");
}
