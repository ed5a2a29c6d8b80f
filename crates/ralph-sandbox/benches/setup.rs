//! What the sandbox costs per spawn: `/bin/true` spawned and waited for, bare and under each
//! level of the sandbox. Prints the median and p95 of each and the difference to bare.
//!
//! `cargo bench -p ralph-sandbox --bench setup`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ralph_sandbox::{probe, Enforced, Mode, Network, Policy, ProbeOverrides};

const RUNS: usize = 300;

fn main() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let project = tmp.path().join("proj");
    let private = tmp.path().join("tmp");
    for d in [&project, &private, &project.join(".ralph")] {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("mkdir: {e}"));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let support = probe(ProbeOverrides::default());
    println!("kernel: {support:?}");
    let policy = |mode, network, namespaces| Policy {
        enforced: Enforced {
            mode,
            network,
            namespaces,
            gaps: Vec::new(),
        },
        work_root: project.clone(),
        writable: vec![tmp.path().join("state")],
        tmpdir: private.clone(),
        read_only: vec![project.join(".ralph")],
        readable: Vec::new(),
        hidden: ralph_sandbox::policy::DAEMON_SOCKETS
            .iter()
            .map(PathBuf::from)
            .collect(),
        allow_hosts: vec!["example.com".into()],
        forwards: vec!["127.0.0.1:9".parse().unwrap_or_else(|e| panic!("{e}"))],
    };
    let cases: Vec<(&str, Option<Policy>)> = vec![
        ("bare spawn", None),
        (
            "Landlock + seccomp",
            Some(policy(Mode::Workspace, Network::On, false)),
        ),
        (
            "+ user/mount namespace (read-only binds)",
            Some(policy(Mode::Workspace, Network::On, true)),
        ),
        (
            "+ network namespace and proxy (allowlist)",
            Some(policy(Mode::Workspace, Network::Allowlist, true)),
        ),
    ];
    let mut bare = Duration::ZERO;
    for (name, p) in cases {
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let t = Instant::now();
            rt.block_on(async {
                let mut cmd = tokio::process::Command::new("/bin/true");
                let prepared = p.as_ref().map(|p| {
                    let mut prep = ralph_sandbox::prepare(p, &support)
                        .unwrap_or_else(|e| panic!("prepare: {e}"));
                    cmd.envs(prep.env().iter().map(|(k, v)| (k, v)));
                    prep.install(&mut cmd);
                    prep
                });
                let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn: {e}"));
                let active = prepared.map(|p| p.start().unwrap_or_else(|e| panic!("start: {e}")));
                child.wait().await.unwrap_or_else(|e| panic!("wait: {e}"));
                drop(active);
            });
            times.push(t.elapsed());
        }
        times.sort();
        let median = times[RUNS / 2];
        let p95 = times[RUNS * 95 / 100];
        if bare.is_zero() {
            bare = median;
        }
        println!(
            "{name:<44} median {:>7.3} ms  p95 {:>7.3} ms  added {:>7.3} ms",
            ms(median),
            ms(p95),
            ms(median.saturating_sub(bare))
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
