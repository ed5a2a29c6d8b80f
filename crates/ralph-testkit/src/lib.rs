//! Test support for ralph's end-to-end tests.
//!
//! * [`script`]: the JSON script format of the scripted `fake-agent` binary
//!   (a stand-in for an AI coding agent CLI), with type-safe builders.
//! * [`fake_agent_path`]: where the built `fake-agent` binary is, building it
//!   on demand.
//! * [`recording`]: what the fake agent received on each invocation (argv,
//!   environment, stdin, cwd), when its script or `FAKE_AGENT_RECORD_DIR`
//!   asks it to record.
//! * [`proc`]: small process helpers (pid files, liveness, signals) for tests
//!   that check what happens to the agent's processes.
//! * [`mockllm`]: a scripted model server speaking the Anthropic, OpenAI
//!   (Chat Completions and Responses) and Gemini APIs, so the real agent
//!   CLIs can run offline against a script (also the `mock-llm` binary).
//! * [`clis`]: installs the pinned real agent CLIs from npm and sets up an
//!   isolated, offline environment for each, pointed at a [`mockllm`] server.

pub mod clis;
pub mod mockllm;
pub mod proc;
pub mod recording;
pub mod script;

pub use recording::Recording;
pub use script::{Script, Step};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const FAKE_AGENT_NAME: &str = "fake-agent";

/// Path of the built `fake-agent` binary, building it once per process if it
/// is missing.
///
/// Test executables live in `<target>/<profile>/deps/` (or `examples/`), and
/// cargo puts binaries in `<target>/<profile>/`, so the binary is looked for
/// in the ancestors of [`std::env::current_exe`]; this follows whatever
/// `CARGO_TARGET_DIR` (or `--target` triple directory) the tests were built
/// with. Tests of other crates need this because cargo only builds a
/// package's own binaries for its integration tests, not those of
/// dependencies.
///
/// # Panics
///
/// If the binary is missing and `cargo build -p ralph-testkit --bin
/// fake-agent` fails or does not produce it: a test cannot run without it.
pub fn fake_agent_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(locate_or_build).clone()
}

fn binary_name() -> String {
    format!("{FAKE_AGENT_NAME}{}", std::env::consts::EXE_SUFFIX)
}

fn locate_or_build() -> PathBuf {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => panic!("fake_agent_path: cannot determine the current executable: {e}"),
    };
    if let Some(found) = find_in_ancestors(&exe) {
        if !older_than_sources(&found) {
            return found;
        }
    }
    let profile_dir = profile_dir_of(&exe);
    let expected = profile_dir.join(binary_name());
    build_fake_agent(&profile_dir);
    if expected.is_file() {
        expected
    } else {
        panic!(
            "fake_agent_path: `{}` does not exist even after building it; run \
             `cargo build -p ralph-testkit --bin fake-agent` (with the same profile and \
             CARGO_TARGET_DIR as the tests)",
            expected.display()
        )
    }
}

/// A binary older than any of this crate's sources is stale: a test run against it would test
/// yesterday's fake agent, so it is rebuilt.
fn older_than_sources(binary: &Path) -> bool {
    fn newest(dir: &Path) -> Option<std::time::SystemTime> {
        let mut newest = None;
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let path = entry.path();
            let t = if path.is_dir() {
                newest_opt(&path)
            } else {
                entry.metadata().and_then(|m| m.modified()).ok()
            };
            newest = newest.max(t);
        }
        newest
    }
    fn newest_opt(dir: &Path) -> Option<std::time::SystemTime> {
        newest(dir)
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let built = std::fs::metadata(binary).and_then(|m| m.modified()).ok();
    match (built, newest(&src)) {
        (Some(built), Some(src)) => src > built,
        _ => false,
    }
}

/// The nearest ancestor directory of `exe` that holds the binary.
fn find_in_ancestors(exe: &Path) -> Option<PathBuf> {
    let name = binary_name();
    exe.ancestors()
        .skip(1)
        .map(|dir| dir.join(&name))
        .find(|candidate| candidate.is_file())
}

/// `<target>/<profile>` for an executable in `<target>/<profile>/deps` (or
/// `examples`, `build/...`); the executable's own directory otherwise.
fn profile_dir_of(exe: &Path) -> PathBuf {
    let dir = exe.parent().unwrap_or(exe);
    for ancestor in dir.ancestors() {
        let name = ancestor.file_name().and_then(|n| n.to_str());
        if matches!(name, Some("deps" | "examples" | "build")) {
            if let Some(profile) = ancestor.parent() {
                return profile.to_path_buf();
            }
        }
    }
    dir.to_path_buf()
}

/// Builds the binary into `profile_dir` with a nested cargo. Cargo releases
/// its build-directory lock before it runs test executables, so this does not
/// deadlock with the `cargo test` that started us.
fn build_fake_agent(profile_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "-p",
        "ralph-testkit",
        "--bin",
        FAKE_AGENT_NAME,
    ])
    // Run inside this workspace whatever the test's cwd is.
    .current_dir(env!("CARGO_MANIFEST_DIR"));
    // Cargo names the profile directory after the profile, except `dev`
    // (and `test`), which use `debug`.
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
    }
    // The profile dir's parent is the target dir (or `<target>/<triple>`,
    // which as a target dir also yields `<it>/<profile>/fake-agent`).
    if let Some(target_dir) = profile_dir.parent() {
        cmd.env("CARGO_TARGET_DIR", target_dir);
    }
    match cmd.status() {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("fake_agent_path: `{cmd:?}` failed with {status}"),
        Err(e) => panic!("fake_agent_path: cannot run `{cmd:?}`: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_dir_is_parent_of_deps() {
        assert_eq!(
            profile_dir_of(Path::new("/t/debug/deps/foo-123")),
            PathBuf::from("/t/debug")
        );
        assert_eq!(
            profile_dir_of(Path::new("/t/x86_64-unknown-linux-gnu/release/examples/ex")),
            PathBuf::from("/t/x86_64-unknown-linux-gnu/release")
        );
        assert_eq!(
            profile_dir_of(Path::new("/t/debug/fake-agent")),
            PathBuf::from("/t/debug")
        );
    }

    #[test]
    fn finds_the_binary_next_to_the_deps_dir() {
        // `cargo test -p ralph-testkit` builds the bin for the integration
        // tests, so this exercises the lookup, not the build.
        let path = fake_agent_path();
        assert!(path.is_file(), "{}", path.display());
        assert!(path.ends_with(binary_name()));
    }
}
