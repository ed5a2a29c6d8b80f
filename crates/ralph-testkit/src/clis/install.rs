//! Installing the pinned CLIs from npm once into a cache shared by every test process, and the
//! PATH they run with.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::{Cli, PACKAGES};

/// Where the CLIs are installed: `$RALPH_AGENT_CLIS` if set, else
/// `<cargo target dir>/agent-clis`. Installs them on first use.
///
/// Parallel test processes install once: the install runs under an
/// exclusive file lock, and a marker file records the installed package
/// list, so later callers (and later runs) skip npm entirely.
///
/// # Panics
///
/// If the install fails, with npm's output. Tests that need the real CLIs
/// must fail, never skip, when they are unavailable.
pub fn install_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = cache_dir();
        if let Err(e) = install_locked(&dir) {
            panic!("clis::install_dir: {e}");
        }
        dir
    })
    .clone()
}

/// `<install_dir>/node_modules/.bin/<cli>`.
pub fn bin(cli: Cli) -> PathBuf {
    install_dir()
        .join("node_modules")
        .join(".bin")
        .join(cli.bin_name())
}

fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RALPH_AGENT_CLIS").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => panic!("clis::install_dir: cannot determine the current executable: {e}"),
    };
    let profile = crate::profile_dir_of(&exe);
    let target = profile.parent().map_or(profile.clone(), Path::to_path_buf);
    target.join("agent-clis")
}

/// The marker's content: the package list, so a changed pin reinstalls.
fn marker_text() -> String {
    let mut text = PACKAGES.join("\n");
    text.push('\n');
    text
}

/// The unpacked Copilot runtime shared by every test home (see [`setup`]).
pub(super) fn copilot_shared_pkg(dir: &Path) -> PathBuf {
    dir.join("copilot-home")
        .join(".cache")
        .join("copilot")
        .join("pkg")
}

fn installed(dir: &Path) -> bool {
    let marker_ok =
        std::fs::read_to_string(dir.join(".installed")).is_ok_and(|text| text == marker_text());
    let bins_ok = Cli::ALL.iter().all(|cli| {
        dir.join("node_modules")
            .join(".bin")
            .join(cli.bin_name())
            .exists()
    });
    let copilot_ok = std::fs::read_dir(copilot_shared_pkg(dir))
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    marker_ok && bins_ok && copilot_ok
}

fn install_locked(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let lock_path = dir.join(".install.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    // Blocks while another test process installs; released on drop.
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    if installed(dir) {
        return Ok(());
    }
    let _ = std::fs::remove_file(dir.join(".installed"));
    let mut npm = Command::new("npm");
    npm.arg("install")
        .arg("--prefix")
        .arg(dir)
        .args(["--no-audit", "--no-fund"])
        .args(PACKAGES)
        .env("npm_config_update_notifier", "false")
        .stdin(Stdio::null());
    let out = npm
        .output()
        .map_err(|e| format!("cannot run `npm install` (is Node.js installed?): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`npm install --prefix {} {}` failed with {}\n--- stdout\n{}\n--- stderr\n{}",
            dir.display(),
            PACKAGES.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    unpack_copilot_runtime(dir)?;
    std::fs::write(dir.join(".installed"), marker_text())
        .map_err(|e| format!("writing the install marker: {e}"))?;
    Ok(())
}

/// Copilot CLI unpacks a ~235 MB runtime into `$XDG_CACHE_HOME/copilot/pkg`
/// of every new home on first start. Do it once here (any command unpacks
/// it, `--version` is the cheapest), and let [`setup`] symlink each test
/// home's cache to this copy.
fn unpack_copilot_runtime(dir: &Path) -> Result<(), String> {
    let home = dir.join("copilot-home");
    let bin = dir.join("node_modules").join(".bin").join("copilot");
    let out = Command::new(&bin)
        .arg("--version")
        .env_clear()
        .env("PATH", base_path(dir))
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("COPILOT_HOME", home.join(".copilot"))
        .env("COPILOT_OFFLINE", "true")
        .env("COPILOT_AUTO_UPDATE", "false")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let pkg = copilot_shared_pkg(dir);
    let unpacked = std::fs::read_dir(&pkg)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if !out.status.success() || !unpacked {
        return Err(format!(
            "`copilot --version` did not unpack its runtime into {} ({})\n--- stdout\n{}\n--- stderr\n{}",
            pkg.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// PATH for the CLIs: their `.bin` first, then the directory of the `node`
/// the tests run with (Codex and Gemini are Node launchers), then the
/// system directories their shell tools need.
pub(super) fn base_path(install: &Path) -> String {
    let mut parts = vec![install
        .join("node_modules")
        .join(".bin")
        .display()
        .to_string()];
    if let Some(node_dir) = find_in_path("node").and_then(|p| p.parent().map(Path::to_path_buf)) {
        parts.push(node_dir.display().to_string());
    }
    for dir in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        if !parts.iter().any(|p| p == dir) {
            parts.push(dir.to_string());
        }
    }
    parts.join(":")
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
