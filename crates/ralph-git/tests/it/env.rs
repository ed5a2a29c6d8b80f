//! The library must behave the same when ralph is started from a git hook or alias (which
//! export `GIT_DIR`, `GIT_INDEX_FILE`, …), by a user with no git identity, and with hostile
//! global configuration. Changing the environment of this multi-threaded test process would
//! race with the other tests, so the whole suite is re-run in a child process instead.

use std::path::Path;
use std::process::Command;

const CHILD_MARKER: &str = "RALPH_GIT_IT_HOSTILE_CHILD";
const THIS_TEST: &str = "all_tests_pass_in_a_hostile_environment";

#[test]
fn all_tests_pass_in_a_hostile_environment() {
    if std::env::var_os(CHILD_MARKER).is_some() {
        // We are the child: the parent runs this check, we must not recurse.
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let hooks = dir.path().join("hooks");
    let marker = dir.path().join("hook-ran");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&hooks).unwrap();
    for hook in ["reference-transaction", "post-index-change"] {
        write_hook(&hooks.join(hook), &marker);
    }
    // No identity anywhere and a refusal to guess one: only the identity the library passes
    // itself can make commit-tree succeed. Signing and hooks would fail if they ran.
    let global = dir.path().join("gitconfig");
    std::fs::write(
        &global,
        format!(
            "[user]\n\tuseConfigOnly = true\n[commit]\n\tgpgSign = true\n[gpg]\n\tprogram = false\n\
             [core]\n\thooksPath = {}\n",
            hooks.display()
        ),
    )
    .unwrap();
    let garbage = dir.path().join("garbage");

    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--skip", THIS_TEST, "--test-threads", "2"])
        .env(CHILD_MARKER, "1")
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", &home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", &global)
        .env("GIT_DIR", garbage.join(".git"))
        .env("GIT_WORK_TREE", &garbage)
        .env("GIT_INDEX_FILE", garbage.join("index"))
        .env("GIT_OBJECT_DIRECTORY", garbage.join("objects"))
        .env("GIT_ALTERNATE_OBJECT_DIRECTORIES", garbage.join("alt"))
        .env("GIT_COMMON_DIR", garbage.join("common"))
        .env("GIT_NAMESPACE", "hostile")
        .env("GIT_CONFIG_PARAMETERS", "'core.bare'='true'")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "core.bare")
        .env("GIT_CONFIG_VALUE_0", "true")
        .env("GIT_AUTHOR_NAME", "")
        .env("GIT_COMMITTER_EMAIL", "")
        .env("GIT_LITERAL_PATHSPECS", "1")
        .env("LANG", "de_DE.UTF-8")
        .env("LC_ALL", "de_DE.UTF-8")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child suite failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Guard against a filter that silently matched nothing.
    let passed: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("test result: ok. "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        passed >= 10,
        "only {passed} tests ran in the child:\n{stdout}"
    );
    assert!(
        !marker.exists(),
        "a hook ran: {:?}",
        std::fs::read_to_string(&marker)
    );
    assert!(
        !garbage.exists(),
        "something was written to GIT_DIR/GIT_WORK_TREE"
    );
}

fn write_hook(path: &Path, marker: &Path) {
    std::fs::write(
        path,
        format!("#!/bin/sh\necho \"$0\" >> '{}'\nexit 1\n", marker.display()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

const FAKE_GIT_MARKER: &str = "RALPH_GIT_IT_FAKE_GIT";
const VERSION_TEST: &str = "env::old_or_missing_git_is_reported";

/// `git` is looked up once per process, so each case runs in a child with its own PATH.
#[test]
fn old_or_missing_git_is_reported() {
    if let Some(mode) = std::env::var_os(FAKE_GIT_MARKER) {
        let dir = tempfile::tempdir().unwrap();
        // Outside any repository git is not even asked.
        assert!(ralph_git::Git::discover(dir.path()).unwrap().is_none());
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        let err = ralph_git::Git::discover(dir.path()).unwrap_err();
        match mode.to_str().unwrap() {
            "old" => {
                assert!(
                    matches!(&err, ralph_git::GitError::TooOld { found, required }
                        if found == "2.20.1" && required == "2.25"),
                    "{err:?}"
                );
                assert_eq!(
                    err.to_string(),
                    "git 2.20.1 is too old; ralph needs git 2.25 or newer"
                );
            }
            _ => assert!(matches!(err, ralph_git::GitError::NotInstalled), "{err:?}"),
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old");
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::create_dir_all(&empty).unwrap();
    let fake = old.join("git");
    std::fs::write(&fake, "#!/bin/sh\necho 'git version 2.20.1'\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for (mode, path) in [("old", &old), ("missing", &empty)] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", VERSION_TEST])
            .env(FAKE_GIT_MARKER, mode)
            .env("PATH", path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("test result: ok. 1 passed"),
            "{mode}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
