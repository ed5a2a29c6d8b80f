//! The file steps: write, append, delete, pid files, timestamps, waiting for a file, and
//! environment dumps. Files a test polls for are written atomically.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ralph_testkit::script::{EnvToFile, WaitForFile};
use serde_json::Value;

use crate::{Failure, EXIT_TIMEOUT};

fn create_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => std::fs::create_dir_all(parent),
        _ => Ok(()),
    }
}

pub(crate) fn write_file(path: &Path, content: &[u8], append: bool) -> Result<(), Failure> {
    let result = create_parent(path).and_then(|()| {
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)?;
        file.write_all(content)
    });
    result.map_err(|e| Failure::io(format_args!("cannot write {}", path.display()), &e))
}

/// Missing paths are fine: default steps repeat on every call.
pub(crate) fn delete(path: &Path) -> Result<(), Failure> {
    let result = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    result.map_err(|e| Failure::io(format_args!("cannot delete {}", path.display()), &e))
}

/// Write to a temporary sibling then rename, so a reader polling for the
/// file never sees it empty or half-written.
pub(crate) fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    create_parent(path)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)
}

pub(crate) fn append_timestamp(path: &Path) -> Result<(), Failure> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| writeln!(f, "{nanos}"))
        .map_err(|e| Failure::io(format_args!("cannot append to {}", path.display()), &e))
}

pub(crate) fn write_pid_file(path: &Path, pid: u32) -> Result<(), Failure> {
    write_atomically(path, format!("{pid}\n").as_bytes())
        .map_err(|e| Failure::io(format_args!("cannot write pid file {}", path.display()), &e))
}

pub(crate) fn wait_for_file(wait: &WaitForFile) -> Result<(), Failure> {
    let deadline = Instant::now() + Duration::from_millis(wait.timeout_ms);
    while !wait.path.exists() {
        if Instant::now() >= deadline {
            return Err(Failure {
                code: EXIT_TIMEOUT,
                message: format!(
                    "wait_for_file: {} did not appear within {} ms",
                    wait.path.display(),
                    wait.timeout_ms
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

pub(crate) fn env_to_file(spec: &EnvToFile) -> Result<(), Failure> {
    let map: serde_json::Map<String, Value> = spec
        .vars
        .iter()
        .map(|name| {
            let value = std::env::var_os(name).map_or(Value::Null, |v| {
                Value::String(v.to_string_lossy().into_owned())
            });
            (name.clone(), value)
        })
        .collect();
    let mut text = Value::Object(map).to_string();
    text.push('\n');
    write_atomically(&spec.path, text.as_bytes())
        .map_err(|e| Failure::io(format_args!("cannot write {}", spec.path.display()), &e))
}
