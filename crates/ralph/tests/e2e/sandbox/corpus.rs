//! The escape corpus: 0 escapes, every refusal visible.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ralph_testkit::fake_agent_path;
use ralph_testkit::script::{Script, Step};

use crate::harness::*;

/// What must hold afterwards, checked from outside.
enum Check {
    /// The path must not exist.
    Absent(PathBuf),
    /// The file must be byte for byte, mode, mtime and owner as it was.
    Same(PathBuf),
    /// Only what the attempt itself says (it printed `ESCAPED …` if it got through).
    Said,
}

struct Attempt {
    name: &'static str,
    shell: String,
    check: Check,
    /// A fragment of the `sandbox.denied` record's `what` that names this attempt; `None` for
    /// the one refusal the kernel reports as an ordinary error (a connection refused).
    seen: Option<String>,
}

fn attempt(name: &'static str, shell: String, check: Check, seen: &str) -> Attempt {
    Attempt {
        name,
        shell,
        check,
        seen: Some(seen.to_string()),
    }
}

struct World {
    p: Project,
    out: PathBuf,
    tag: String,
    /// The state of every `Same` file before the run.
    before: Vec<(PathBuf, FileState)>,
}

/// Content, mode, mtime and owner.
type FileState = (Vec<u8>, u32, i64, u32);

fn meta(path: &Path) -> FileState {
    let m = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (
        std::fs::read(path).unwrap_or_default(),
        m.mode(),
        m.mtime(),
        m.uid(),
    )
}

fn corpus(w: &World, server_port: u16) -> Vec<Attempt> {
    let (out, home, tag) = (w.out.display(), w.p.home.display(), &w.tag);
    let keep = w.out.join("keep.txt");
    let k = keep.display();
    let py = |name: &str, extra: &str| {
        format!(
            "python3 {} {name} {tag} \"$RALPH\" {extra}",
            w.p.aux_path("attempt.py").display()
        )
    };
    use Check::*;
    let home_p = |rel: &str| w.p.home.join(rel);
    let out_p = |rel: &str| w.out.join(rel);
    let etc = PathBuf::from(format!("/etc/ralph-escape-{tag}"));
    let tmp = PathBuf::from(format!("/tmp/ralph-escape-{tag}"));
    let parent = w.p.root.parent().unwrap().to_path_buf();
    vec![
        // HOME and its dotfiles.
        attempt(
            "append to ~/.bashrc",
            format!("echo evil >> {home}/.bashrc"),
            Same(home_p(".bashrc")),
            ".bashrc",
        ),
        attempt(
            "new dotfile in HOME",
            format!("echo evil > {home}/.profile-{tag}"),
            Absent(home_p(&format!(".profile-{tag}"))),
            ".profile-",
        ),
        attempt(
            "~/.ssh/authorized_keys",
            format!("mkdir -p {home}/.ssh; echo key >> {home}/.ssh/authorized_keys"),
            Absent(home_p(".ssh")),
            ".ssh",
        ),
        attempt(
            "existing ~/.config file",
            format!("echo evil >> {home}/.config/app.conf"),
            Same(home_p(".config/app.conf")),
            "app.conf",
        ),
        attempt(
            "autostart entry",
            format!(
                "mkdir -p {home}/.config/autostart && echo x > {home}/.config/autostart/e.desktop"
            ),
            Absent(home_p(".config/autostart")),
            "autostart",
        ),
        // System directories (the test runs as root in CI: only the sandbox stops these).
        attempt(
            "/etc file",
            format!("echo evil > {}", etc.display()),
            Absent(etc.clone()),
            "ralph-escape-",
        ),
        attempt(
            "/etc/cron.d",
            format!("mkdir -p /etc/cron.d-{tag} && echo '* * * * * root id' > /etc/cron.d-{tag}/x"),
            Absent(PathBuf::from(format!("/etc/cron.d-{tag}"))),
            "cron.d-",
        ),
        attempt(
            "append to /etc/passwd",
            "echo 'evil::0:0::/:/bin/sh' >> /etc/passwd".into(),
            Same("/etc/passwd".into()),
            "/etc/passwd",
        ),
        attempt(
            "/usr/local/bin",
            format!("echo evil > /usr/local/bin/ralph-escape-{tag}"),
            Absent(PathBuf::from(format!("/usr/local/bin/ralph-escape-{tag}"))),
            "/usr/local/bin",
        ),
        // /tmp outside the private TMPDIR, and /dev/shm.
        attempt(
            "/tmp file",
            format!("echo evil > {}", tmp.display()),
            Absent(tmp.clone()),
            "/tmp/ralph-escape-",
        ),
        attempt(
            "/tmp directory",
            format!("mkdir /tmp/ralph-escape-dir-{tag}"),
            Absent(PathBuf::from(format!("/tmp/ralph-escape-dir-{tag}"))),
            "ralph-escape-dir-",
        ),
        attempt(
            "python into /tmp",
            format!("python3 -c \"open('/tmp/ralph-py-{tag}','w').write('x')\""),
            Absent(PathBuf::from(format!("/tmp/ralph-py-{tag}"))),
            "ralph-py-",
        ),
        attempt(
            "/dev/shm",
            format!("echo evil > /dev/shm/ralph-escape-{tag}"),
            Absent(PathBuf::from(format!("/dev/shm/ralph-escape-{tag}"))),
            "/dev/shm/",
        ),
        // Beside the project.
        attempt(
            "sibling by ..",
            format!("echo evil > ../sibling-{tag}"),
            Absent(parent.join(format!("sibling-{tag}"))),
            "sibling-",
        ),
        attempt(
            "outside by path",
            format!("echo evil > {out}/abs-{tag}"),
            Absent(out_p(&format!("abs-{tag}"))),
            "abs-",
        ),
        attempt(
            "append outside",
            format!("echo evil >> {k}"),
            Same(keep.clone()),
            "keep.txt",
        ),
        attempt(
            "truncate outside",
            format!(": > {out}/other.txt"),
            Same(out_p("other.txt")),
            "other.txt",
        ),
        // Through links made inside the project.
        attempt(
            "symlink to a directory",
            format!("ln -s {out} dlink && echo evil > dlink/via-link-{tag}"),
            Absent(out_p(&format!("via-link-{tag}"))),
            "via-link-",
        ),
        attempt(
            "symlink to a file",
            format!("ln -s {out}/third.txt flink && echo evil >> flink"),
            Same(out_p("third.txt")),
            "flink",
        ),
        attempt(
            "symlink to /tmp",
            format!("ln -s /tmp tlink && echo evil > tlink/via-tmp-{tag}"),
            Absent(PathBuf::from(format!("/tmp/via-tmp-{tag}"))),
            "via-tmp-",
        ),
        attempt(
            "hardlink of an outside file",
            format!("ln {out}/fourth.txt hard && echo evil >> hard"),
            Same(out_p("fourth.txt")),
            "fourth.txt",
        ),
        attempt(
            "hardlink of /etc/passwd",
            "ln /etc/passwd pw && echo evil >> pw".into(),
            Same("/etc/passwd".into()),
            "/etc/passwd",
        ),
        // Renames across the boundary.
        attempt(
            "rename out",
            format!("echo x > moved && mv moved {out}/moved-{tag}"),
            Absent(out_p(&format!("moved-{tag}"))),
            "moved-",
        ),
        attempt(
            "rename in (steals the file)",
            format!("mv {out}/fifth.txt ./stolen"),
            Same(out_p("fifth.txt")),
            "fifth.txt",
        ),
        attempt(
            "rename a directory in",
            format!("mv {out}/dir ./stolen-dir"),
            Same(out_p("dir/f")),
            "/dir",
        ),
        attempt(
            "python rename",
            format!("python3 -c \"import os; os.rename('{out}/sixth.txt', 'x')\""),
            Same(out_p("sixth.txt")),
            "sixth.txt",
        ),
        // Through /proc.
        attempt(
            "/proc/self/root",
            format!("echo evil > /proc/self/root{out}/procroot-{tag}"),
            Absent(out_p(&format!("procroot-{tag}"))),
            "procroot-",
        ),
        attempt(
            "/proc/<ralph>/cwd",
            format!("echo evil > /proc/$RALPH/cwd/../ralphcwd-{tag}"),
            Absent(parent.join(format!("ralphcwd-{tag}"))),
            "ralphcwd-",
        ),
        attempt(
            "/proc/<ralph>/root",
            format!("echo evil > /proc/$RALPH/root{out}/ralphroot-{tag}"),
            Absent(out_p(&format!("ralphroot-{tag}"))),
            "ralphroot-",
        ),
        // Deleting and changing what is outside.
        attempt(
            "rm outside",
            format!("rm -f {out}/seventh.txt"),
            Same(out_p("seventh.txt")),
            "seventh.txt",
        ),
        attempt(
            "rm -rf a tree outside",
            format!("rm -rf {out}/tree"),
            Same(out_p("tree/leaf")),
            "tree",
        ),
        attempt(
            "python unlink",
            format!("python3 -c \"import os; os.unlink('{out}/eighth.txt')\""),
            Same(out_p("eighth.txt")),
            "eighth.txt",
        ),
        attempt(
            "chmod outside",
            format!("chmod 777 {out}/ninth.txt"),
            Same(out_p("ninth.txt")),
            "ninth.txt",
        ),
        attempt(
            "utime outside",
            format!("touch -d 2001-01-01 {out}/tenth.txt"),
            Same(out_p("tenth.txt")),
            "tenth.txt",
        ),
        attempt(
            "chown outside",
            format!("chown 4321 {out}/eleventh.txt"),
            Same(out_p("eleventh.txt")),
            "eleventh.txt",
        ),
        // ralph's own state and config.
        attempt(
            "write ralph.db",
            "echo garbage > .ralph/ralph.db".into(),
            Said,
            ".ralph/ralph.db",
        ),
        attempt(
            "delete ralph.db",
            "rm -f .ralph/ralph.db".into(),
            Said,
            ".ralph/ralph.db",
        ),
        attempt(
            "plant in .ralph",
            format!("echo x > .ralph/evil-{tag}"),
            Absent(w.p.path(&format!(".ralph/evil-{tag}"))),
            ".ralph/evil-",
        ),
        attempt(
            "move .ralph away",
            format!("mv .ralph .ralph-{tag}"),
            Absent(w.p.path(&format!(".ralph-{tag}"))),
            ".ralph",
        ),
        attempt(
            "append to ralph.toml",
            "echo '# evil' >> ralph.toml".into(),
            Same(w.p.path("ralph.toml")),
            "ralph.toml",
        ),
        attempt(
            "replace ralph.toml",
            "echo x > t.toml && mv t.toml ralph.toml".into(),
            Same(w.p.path("ralph.toml")),
            "ralph.toml",
        ),
        attempt(
            "plant a git hook",
            "echo 'touch /tmp/hooked' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit"
                .into(),
            Absent(w.p.path(".git/hooks/pre-commit")),
            ".git/hooks/pre-commit",
        ),
        attempt(
            "git config",
            "git config core.fsmonitor 'touch /tmp/fsmon'".into(),
            Same(w.p.path(".git/config")),
            ".git/config",
        ),
        // The kernel's other doors (seccomp, Landlock scopes, capabilities).
        attempt("ptrace ralph", py("ptrace", ""), Said, "attempt/ptrace"),
        attempt(
            "mount",
            py("mount", &out.to_string()),
            Said,
            "attempt/mount",
        ),
        attempt("umount /", py("umount", ""), Said, "attempt/umount"),
        attempt("unshare -r", "unshare -r true".into(), Said, ""),
        attempt(
            "unshare(CLONE_NEWUSER)",
            py("unshare_user", ""),
            Said,
            "attempt/unshare_user",
        ),
        attempt(
            "setns into ralph's namespace",
            py("setns", ""),
            Said,
            "attempt/setns",
        ),
        attempt(
            "pivot_root",
            py("pivot_root", ""),
            Said,
            "attempt/pivot_root",
        ),
        attempt("chroot", py("chroot", ""), Said, "attempt/chroot"),
        attempt(
            "kill -9 ralph",
            py("kill_ralph", ""),
            Said,
            "attempt/kill_ralph",
        ),
        attempt(
            "SIGSTOP ralph",
            py("stop_ralph", ""),
            Said,
            "attempt/stop_ralph",
        ),
        attempt(
            "raw socket",
            py("raw_socket", ""),
            Said,
            "attempt/raw_socket",
        ),
        attempt(
            "packet socket",
            py("packet_socket", ""),
            Said,
            "attempt/packet_socket",
        ),
        attempt("bpf", py("bpf", ""), Said, "attempt/bpf"),
        attempt(
            "perf_event_open",
            py("perf_event_open", ""),
            Said,
            "attempt/perf_event_open",
        ),
        attempt("add_key", py("keyctl", ""), Said, "attempt/keyctl"),
        attempt(
            "io_uring_setup",
            py("io_uring", ""),
            Said,
            "attempt/io_uring",
        ),
        attempt("kexec_load", py("kexec", ""), Said, "attempt/kexec"),
        attempt(
            "finit_module",
            py("init_module", ""),
            Said,
            "attempt/init_module",
        ),
        // The network, under allowlist.
        attempt(
            "a host not listed, by name",
            py("proxy_name", ""),
            Said,
            &format!("exfil-{tag}.invalid"),
        ),
        attempt(
            "a host not listed, by IP",
            py("proxy_ip", ""),
            Said,
            "203.0.113.7",
        ),
        attempt(
            "ralph's loopback through the proxy",
            py("proxy_loopback", &server_port.to_string()),
            Said,
            "127.0.0.1",
        ),
        attempt("DNS exfiltration", py("dns", ""), Said, "attempt/dns"),
        attempt(
            "HTTP without the proxy",
            py("http_without_proxy", ""),
            Said,
            "attempt/http_without_proxy",
        ),
        attempt(
            "a direct connection by IP",
            py("direct_ip", ""),
            Said,
            "attempt/direct_ip",
        ),
        Attempt {
            name: "the host's loopback directly",
            shell: py("direct_loopback", &server_port.to_string()),
            check: Said,
            seen: None,
        },
    ]
}

/// A server on the host's loopback that counts connections: the agent must not reach it.
fn counting_server() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for _ in l.incoming() {
            c.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, count)
}

fn setup() -> World {
    let p = Project::git().without_sandbox();
    let tag = format!(
        "{}-{}",
        std::process::id(),
        p.root.display().to_string().len()
    );
    let out = p.aux_path("outside");
    for d in [out.join("dir"), out.join("tree"), p.home.join(".config")] {
        std::fs::create_dir_all(d).unwrap();
    }
    for f in [
        "keep.txt",
        "other.txt",
        "third.txt",
        "fourth.txt",
        "fifth.txt",
        "sixth.txt",
        "seventh.txt",
        "eighth.txt",
        "ninth.txt",
        "tenth.txt",
        "eleventh.txt",
        "dir/f",
        "tree/leaf",
    ] {
        std::fs::write(out.join(f), format!("{f}: the user's\n")).unwrap();
    }
    std::fs::write(p.home.join(".bashrc"), "# the user's\n").unwrap();
    std::fs::write(p.home.join(".config/app.conf"), "the user's\n").unwrap();
    std::fs::write(p.aux_path("attempt.py"), include_str!("attempt.py")).unwrap();
    World {
        p,
        out,
        tag,
        before: Vec::new(),
    }
}

fn denied_records(p: &Project) -> Vec<serde_json::Value> {
    p.read(".ralph/audit.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["kind"] == "sandbox.denied")
        .map(|r| r["data"].clone())
        .collect()
}

fn agent_stderr(p: &Project) -> String {
    let mut all = String::new();
    let runs = p.path(".ralph/runs");
    for run in std::fs::read_dir(runs).unwrap().flatten() {
        for it in std::fs::read_dir(run.path()).unwrap().flatten() {
            all.push_str(
                &std::fs::read_to_string(it.path().join("stderr.log")).unwrap_or_default(),
            );
        }
    }
    all
}

#[test]
fn sixty_ways_out_of_the_workspace_sandbox_all_fail_and_are_all_recorded() {
    let mut w = setup();
    let (port, connections) = counting_server();
    let mut attempts = corpus(&w, port);
    assert!(attempts.len() >= 60, "{} attempts", attempts.len());
    // An attempt on a protected path (ralph's state, ralph.toml) that the sandbox refused
    // stops the run after its iteration, as a change that got through would: those go last,
    // so every other attempt runs first.
    attempts.sort_by_key(|a| a.shell.contains(".ralph") || a.shell.contains("ralph.toml"));
    // Three iterations of about twenty attempts; each command finds ralph's pid itself (the
    // agent's parent).
    let mut script = Script::new();
    for (i, chunk) in attempts.chunks(attempts.len().div_ceil(3)).enumerate() {
        let steps = chunk
            .iter()
            .map(|a| {
                Step::shell(format!(
                    "RALPH=$(cut -d' ' -f4 /proc/$PPID/stat); {}",
                    a.shell
                ))
            })
            .collect();
        script = script.on_call(i as u32 + 1, steps);
    }
    let sp = w.p.script(&script);
    w.p.write(
        "ralph.toml",
        &format!(
            "[agent]\nbackend = \"custom\"\ncommand = [{:?}, {:?}]\noutput = \"text\"\n\n\
             [loop]\nmax_iterations = 3\n\n[sandbox]\nmode = \"workspace\"\nrequired = true\n\
             network = \"allowlist\"\n",
            fake_agent_path().display().to_string(),
            sp.display().to_string()
        ),
    );
    w.p.write("PROMPT.md", "Escape.\n");
    w.p.git_cmd(&["add", "-A"]);
    w.p.git_cmd(&["commit", "-q", "-m", "config"]);
    for a in &attempts {
        if let Check::Same(path) = &a.check {
            w.before.push((path.clone(), meta(path)));
        }
    }
    let out = w.p.run(&["run"]);

    let mut escapes = Vec::new();
    for a in &attempts {
        match &a.check {
            Check::Absent(path) if std::fs::symlink_metadata(path).is_ok() => {
                escapes.push(format!("{}: {} exists", a.name, path.display()));
                let _ = std::fs::remove_dir_all(path).or_else(|_| std::fs::remove_file(path));
            }
            Check::Same(path) => {
                let before = &w.before.iter().find(|(p, _)| p == path).unwrap().1;
                if std::fs::symlink_metadata(path).is_err() || &meta(path) != before {
                    escapes.push(format!("{}: {} changed", a.name, path.display()));
                }
            }
            _ => {}
        }
    }
    let stderr = agent_stderr(&w.p);
    for line in stderr.lines().filter(|l| l.contains("ESCAPED")) {
        escapes.push(line.to_string());
    }
    if connections.load(Ordering::SeqCst) > 0 {
        escapes.push("the agent reached a server on the host's loopback".into());
    }
    assert!(
        escapes.is_empty(),
        "escapes:\n{}\n{}",
        escapes.join("\n"),
        out.stderr
    );
    // Nothing got as far as ralph's after-the-fact checks; the refused attempts on protected
    // paths in the last iteration are a safety stop.
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("stopped by a safety guard: the agent tried to change protected paths")
            && out.stderr.contains("the sandbox refused it"),
        "{}",
        out.stderr
    );
    assert_eq!(w.p.iterations().len(), 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("sandbox: workspace, network allowlist"),
        "{}",
        out.stderr
    );
    let audit = w.p.read(".ralph/audit.jsonl");
    assert!(!audit.contains("\"state.tampered\""), "{audit}");
    assert_eq!(w.p.run(&["audit", "verify"]).code, 0);

    let records = denied_records(&w.p);
    let mut unseen = Vec::new();
    for a in &attempts {
        let Some(needle) = &a.seen else { continue };
        let found = records.iter().any(|r| {
            let what = r["what"].as_str().unwrap_or("");
            if needle.is_empty() {
                what.is_empty()
            } else {
                what.contains(needle.as_str())
            }
        });
        if !found {
            unseen.push(format!("{} ({needle})", a.name));
        }
    }
    assert!(
        unseen.is_empty(),
        "refusals missing from the audit log: {unseen:?}\nrecords: {records:#?}\nagent stderr:\n{stderr}"
    );
}
