//! Real work under `workspace`: the sandbox must not get in the way of what agents do all day.
//! A scripted agent builds a crate with the machine's own cargo, installs a local npm package,
//! commits, and the gates run the test suites — all inside the default sandbox, with HOME (and
//! so `~/.npm`) not writable and the toolchains read-only where they live.

use ralph_testkit::fake_agent_path;
use ralph_testkit::script::{Script, Step};

use crate::harness::*;

/// The machine's real rustup and cargo homes: the harness gives ralph an empty HOME, where
/// rustup's proxies would find no toolchain.
fn toolchain_env() -> Vec<(&'static str, String)> {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let var = |name: &str, default: String| std::env::var(name).unwrap_or(default);
    vec![
        ("CARGO_HOME", var("CARGO_HOME", format!("{home}/.cargo"))),
        ("RUSTUP_HOME", var("RUSTUP_HOME", format!("{home}/.rustup"))),
    ]
}

fn small_projects(p: &Project) {
    p.write(
        "Cargo.toml",
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    p.write(
        "src/lib.rs",
        "pub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n\n#[cfg(test)]\nmod tests {\n    \
         #[test]\n    fn adds() {\n        assert_eq!(super::add(2, 3), 5);\n    }\n}\n",
    );
    p.write(
        "vendor/greet/package.json",
        "{\"name\": \"greet\", \"version\": \"1.0.0\", \"main\": \"index.js\"}\n",
    );
    p.write(
        "vendor/greet/index.js",
        "module.exports = (who) => `hello, ${who}`;\n",
    );
    p.write(
        "package.json",
        "{\"name\": \"app\", \"version\": \"1.0.0\", \"private\": true,\n \
         \"dependencies\": {\"greet\": \"file:vendor/greet\"}}\n",
    );
    p.write(
        "test.js",
        "const assert = require('assert');\nassert.strictEqual(require('greet')('ralph'), \
         'hello, ralph');\nconsole.log('node tests passed');\n",
    );
    p.write(".gitignore", "target/\nnode_modules/\n");
}

#[test]
fn cargo_build_npm_install_git_commit_and_test_suites_work_under_workspace() {
    let p = Project::git();
    small_projects(&p);
    let work = "set -e\n\
                cargo build --offline\n\
                test -f target/debug/libtiny.rlib\n\
                npm install --offline --no-audit --no-fund\n\
                node -e \"console.log(require('greet')('agent'))\"\n\
                git add -A\n\
                git -c user.name=agent -c user.email=agent@example.com commit -qm 'agent: work'\n\
                echo ok > work-ok.txt\n";
    let sp = p.script(
        &Script::new().default_steps(vec![Step::shell(work), Step::print("LOOP_COMPLETE")]),
    );
    p.write(
        "ralph.toml",
        &format!(
            "[agent]\nbackend = \"custom\"\ncommand = [{:?}, {:?}]\noutput = \"text\"\n\n\
             [loop]\nmax_iterations = 1\n\n\
             [[gates]]\nname = \"cargo-test\"\nrun = \"cargo test --offline -q\"\n\n\
             [[gates]]\nname = \"node-test\"\nrun = \"node test.js\"\n\n\
             [sandbox]\nmode = \"workspace\"\nrequired = true\n",
            fake_agent_path().display().to_string(),
            sp.display().to_string()
        ),
    );
    p.write("PROMPT.md", "Build it, install it, commit it.\n");
    p.git_cmd(&["add", "-A"]);
    p.git_cmd(&["commit", "-q", "-m", "projects"]);
    let out = Out::from(
        p.ralph()
            .args(["run", "--json"])
            .env("CARGO_TARGET_DIR", p.path("target"))
            .env_remove("RUSTC_WRAPPER")
            .envs(toolchain_env())
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stderr, out.stdout);
    assert!(out.stderr.contains("sandbox: workspace"), "{}", out.stderr);
    assert_eq!(p.read("work-ok.txt"), "ok\n", "{}", out.stderr);
    assert!(
        p.exists("node_modules/greet/index.js"),
        "npm installed the package"
    );
    let log = p.git_cmd(&["log", "--format=%s", "--all"]);
    assert!(log.contains("agent: work"), "the agent's commit: {log}");
    let events = out.events();
    let gates: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "gate.finished")
        .map(|e| (e["name"].as_str().unwrap_or(""), e["passed"].as_bool()))
        .collect();
    assert_eq!(
        gates,
        [("cargo-test", Some(true)), ("node-test", Some(true))],
        "{}",
        out.stdout
    );
    let denied: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "sandbox.denied")
        .collect();
    assert!(
        denied.is_empty(),
        "nothing it needed was refused: {denied:?}"
    );
}
