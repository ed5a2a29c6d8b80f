//! `mock-llm`: the scripted model server as a process, for tests outside
//! Rust or for poking at a CLI by hand.
//!
//! ```text
//! mock-llm [--port N] [--port-file F] [--scenario-dir DIR] [--log requests.jsonl]
//!          [--default-scenario NAME]
//! ```
//!
//! Prints `mock-llm listening on http://127.0.0.1:PORT` and serves until
//! killed. `--port-file` is written atomically once the port is bound, so a
//! caller can wait for the file instead of parsing stdout.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use ralph_testkit::mockllm::{MockServer, Options, Scenario};

const USAGE: &str = "usage: mock-llm [--port N] [--port-file F] [--scenario-dir DIR] \
                     [--log FILE.jsonl] [--default-scenario NAME]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mock-llm: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut options = Options::default();
    let mut port_file: Option<PathBuf> = None;
    let mut scenario_dirs: Vec<PathBuf> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--port" => {
                let v = value("--port")?;
                options.port = v.parse().map_err(|_| format!("bad --port {v:?}"))?;
            }
            "--port-file" => port_file = Some(value("--port-file")?.into()),
            "--scenario-dir" => scenario_dirs.push(value("--scenario-dir")?.into()),
            "--log" => options.log_file = Some(value("--log")?.into()),
            "--default-scenario" | "--scenario" => {
                options.default_scenario = value("--default-scenario")?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let mut scenarios = HashMap::new();
    for dir in &scenario_dirs {
        let loaded = Scenario::load_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        scenarios.extend(loaded);
    }
    options.scenarios = scenarios;
    let server = MockServer::try_start(options).map_err(|e| format!("cannot start: {e}"))?;
    if let Some(path) = &port_file {
        // Written to a temporary name and renamed, so a reader never sees a
        // half-written port.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{}\n", server.port()))
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    println!("mock-llm listening on {}", server.base_url());
    loop {
        // The server runs on its own thread; this one only keeps the process
        // (and the server it owns) alive until a signal ends it.
        std::thread::park();
    }
}
