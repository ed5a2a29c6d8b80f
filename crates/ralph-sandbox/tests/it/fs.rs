//! The filesystem policy against real writes from a real shell.

use std::path::{Path, PathBuf};

use ralph_sandbox::{probe, Enforced, Mode, Network, Policy, ProbeOverrides};

pub struct Dirs {
    pub _tmp: tempfile::TempDir,
    pub project: PathBuf,
    pub private_tmp: PathBuf,
    pub outside: PathBuf,
}

pub fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let project = root.join("proj");
    let private_tmp = root.join("ptmp");
    let outside = root.join("outside");
    for d in [&project, &private_tmp, &outside, &project.join(".ralph")] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(project.join("ralph.toml"), "x").unwrap();
    Dirs {
        _tmp: tmp,
        project,
        private_tmp,
        outside,
    }
}

pub fn policy(d: &Dirs, mode: Mode, network: Network) -> Policy {
    Policy {
        enforced: Enforced {
            mode,
            network,
            namespaces: true,
            gaps: Vec::new(),
        },
        work_root: d.project.clone(),
        writable: Vec::new(),
        tmpdir: d.private_tmp.clone(),
        read_only: vec![d.project.join(".ralph"), d.project.join("ralph.toml")],
        readable: ralph_sandbox::policy::SYSTEM_READABLE
            .iter()
            .map(PathBuf::from)
            .collect(),
        hidden: Vec::new(),
        allow_hosts: Vec::new(),
        forwards: Vec::new(),
    }
}

/// Run `script` with `sh -c` under `policy`; returns (exit code, stdout+stderr).
pub fn run(policy: &Policy, cwd: &Path, script: &str) -> (i32, String) {
    let (code, text, _) = run_program(policy, cwd, "/bin/sh", &["-c", script]);
    (code, text)
}

/// Run `program` under `policy`; returns (exit code, stdout+stderr, refused connections).
pub fn run_program(
    policy: &Policy,
    cwd: &Path,
    program: &str,
    args: &[&str],
) -> (i32, String, Vec<ralph_sandbox::Denied>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let support = probe(ProbeOverrides::default());
        let mut prepared = ralph_sandbox::prepare(policy, &support).unwrap();
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args).current_dir(cwd);
        cmd.envs(prepared.env().iter().map(|(k, v)| (k, v)));
        prepared.install(&mut cmd);
        let child = match cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => panic!("spawn: {e}; {:?}", prepared.failure()),
        };
        let mut active = prepared.start().unwrap();
        let out = child.wait_with_output().await.unwrap();
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), text, active.take_denied())
    })
}

#[test]
fn workspace_writes_the_project_and_nothing_else() {
    let d = dirs();
    let p = policy(&d, Mode::Workspace, Network::On);
    let script = format!(
        "echo in > inside.txt && echo ok-inside; \
         echo t > \"$TMPDIR/t\" && echo ok-tmpdir; \
         echo x > {out}/escape.txt && echo ESCAPED-outside; \
         echo x > /tmp/escape-$$ && echo ESCAPED-tmp; \
         echo x > .ralph/evil && echo ESCAPED-ralph; \
         echo x >> ralph.toml && echo ESCAPED-toml; \
         rm -f ralph.toml && echo ESCAPED-rm-toml; \
         echo x > /dev/null && echo ok-devnull; \
         echo x > /dev/stdout >/dev/null && echo ok-stdout; \
         cat /etc/hostname >/dev/null && echo ok-read",
        out = d.outside.display()
    );
    let (_, text) = run(&p, &d.project, &script);
    for ok in [
        "ok-inside",
        "ok-tmpdir",
        "ok-devnull",
        "ok-stdout",
        "ok-read",
    ] {
        assert!(text.contains(ok), "{ok} missing:\n{text}");
    }
    assert!(!text.contains("ESCAPED"), "{text}");
    assert!(d.project.join("inside.txt").exists());
    assert!(!d.outside.join("escape.txt").exists());
    assert_eq!(
        std::fs::read_to_string(d.project.join("ralph.toml")).unwrap(),
        "x"
    );
}

#[test]
fn metadata_outside_is_read_only_too_with_namespaces() {
    let d = dirs();
    let keep = d.outside.join("keep.txt");
    std::fs::write(&keep, "keep").unwrap();
    let before = std::fs::metadata(&keep).unwrap();
    let p = policy(&d, Mode::Workspace, Network::On);
    let k = keep.display();
    let script = format!(
        "chmod 777 {k} && echo ESCAPED-chmod; touch -d 2001-01-01 {k} && echo ESCAPED-utime; \
         chown 1234 {k} && echo ESCAPED-chown; touch inside && chmod 600 inside && echo ok-inside"
    );
    let (_, text) = run(&p, &d.project, &script);
    assert!(text.contains("ok-inside"), "{text}");
    assert!(!text.contains("ESCAPED"), "{text}");
    let after = std::fs::metadata(&keep).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (before.mode(), before.mtime(), before.uid()),
        (after.mode(), after.mtime(), after.uid())
    );
}

#[test]
fn landlock_alone_still_confines_writes() {
    let d = dirs();
    let mut p = policy(&d, Mode::Workspace, Network::On);
    p.enforced.namespaces = false;
    let script = format!(
        "echo in > inside.txt && echo ok-inside; echo x > {out}/escape.txt && echo ESCAPED",
        out = d.outside.display()
    );
    let (_, text) = run(&p, &d.project, &script);
    assert!(
        text.contains("ok-inside") && !text.contains("ESCAPED"),
        "{text}"
    );
    assert!(!d.outside.join("escape.txt").exists());
}
