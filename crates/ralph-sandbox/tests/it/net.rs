//! `network = "allowlist"` and `"off"` against real sockets: a local server reachable only when
//! forwarded, the proxy letting through only listed hosts, and its refusals reported.

use std::io::{Read, Write};
use std::net::TcpListener;

use ralph_sandbox::{Mode, Network};

use crate::fs::{dirs, policy, run_program};

/// A server on the host's loopback that answers every connection with "hello".
fn hello_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"hello");
        }
    });
    addr
}

const CLIENT: &str = r#"
import os, socket, sys
def direct(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
        s.sendall(b"x"); print("direct", port, s.recv(5).decode())
    except OSError as e:
        print("direct", port, "refused", e.errno)
def via_proxy(host, port):
    p = os.environ.get("HTTPS_PROXY", "")
    if not p:
        print("proxy none"); return
    ph, pp = p.rsplit("/", 1)[-1].split(":")
    s = socket.create_connection((ph, int(pp)), timeout=3)
    s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    print("proxy", host, s.recv(12).decode())
for a in sys.argv[1:]:
    kind, rest = a.split("=")
    if kind == "direct": direct(int(rest))
    else:
        h, p = rest.rsplit(":", 1); via_proxy(h, int(p))
"#;

#[test]
fn allowlist_reaches_forwarded_servers_and_listed_hosts_only() {
    let d = dirs();
    let forwarded = hello_server();
    let other = hello_server();
    let mut p = policy(&d, Mode::Workspace, Network::Allowlist);
    p.forwards = vec![forwarded];
    p.allow_hosts = vec!["127.0.0.1".into()];
    let args = [
        "-c".to_string(),
        CLIENT.to_string(),
        format!("direct={}", forwarded.port()),
        format!("direct={}", other.port()),
        format!("proxy=127.0.0.1:{}", other.port()),
        "proxy=exfil.example.invalid:443".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, text, denied) = run_program(&p, &d.project, "python3", &args);
    assert!(
        text.contains(&format!("direct {} hello", forwarded.port())),
        "{text}"
    );
    assert!(
        text.contains(&format!("direct {} refused", other.port())),
        "{text}"
    );
    assert!(text.contains("proxy 127.0.0.1 HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("proxy exfil.example.invalid HTTP/1.1 403"),
        "{text}"
    );
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0].host, "exfil.example.invalid");
    assert_eq!(denied[0].port, 443);
}

#[test]
fn network_off_reaches_nothing() {
    let d = dirs();
    let server = hello_server();
    let p = policy(&d, Mode::Workspace, Network::Off);
    let args = [
        "-c".to_string(),
        CLIENT.to_string(),
        format!("direct={}", server.port()),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, text, _) = run_program(&p, &d.project, "python3", &args);
    assert!(
        text.contains(&format!("direct {} refused", server.port())),
        "{text}"
    );
    // The control: the same client outside the sandbox reaches it.
    let out = std::process::Command::new("python3")
        .args(&args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("direct {} hello", server.port())),
        "{text}"
    );
}
