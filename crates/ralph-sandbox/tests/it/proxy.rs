//! The proxy and the port forwards against real TCP servers on 127.0.0.1.

#![expect(
    clippy::unwrap_used,
    reason = "server and client helpers outside #[test] functions unwrap"
)]

use std::net::SocketAddr;
use std::sync::Arc;

use ralph_sandbox::allow::AllowList;
use ralph_sandbox::proxy::{serve_forward, serve_proxy, Denied, ProxyHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

/// A server that echoes every byte back, on an ephemeral port.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A server that reads one request header, sends it back as the body of a 200, and closes.
async fn http_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if s.read(&mut byte).await.unwrap() == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", head.len());
                s.write_all(reply.as_bytes()).await.unwrap();
                s.write_all(&head).await.unwrap();
            });
        }
    });
    addr
}

struct Proxy {
    addr: SocketAddr,
    handle: ProxyHandle,
    denied: UnboundedReceiver<Denied>,
}

fn proxy(allow: &[&str]) -> Proxy {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, denied) = unbounded_channel();
    let allow = Arc::new(AllowList::new(allow).unwrap());
    let handle = serve_proxy(listener, allow, tx).unwrap();
    Proxy {
        addr,
        handle,
        denied,
    }
}

/// Send `request`, read until the proxy closes.
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Read a response header (up to the blank line).
async fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).await.unwrap(),
            1,
            "closed inside {head:?}"
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[tokio::test]
async fn connect_to_an_allowed_host_tunnels_both_ways() {
    let echo = echo_server().await;
    let p = proxy(&["127.0.0.1"]);
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    // The first tunnelled bytes right behind the request, as TLS clients do.
    let req = format!("CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\n\r\nearly");
    s.write_all(req.as_bytes()).await.unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    s.write_all(b" and late").await.unwrap();
    let mut got = [0u8; 14];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"early and late");
    s.shutdown().await.unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    let stats = p.handle.stats();
    assert_eq!((stats.accepted, stats.denied), (1, 0));
    // "early" came with the request, " and late" through the tunnel; all 14 came back.
    assert_eq!((stats.bytes_up, stats.bytes_down), (14, 14));
}

#[tokio::test]
async fn connect_to_a_host_not_listed_is_refused_and_reported() {
    let echo = echo_server().await;
    let mut p = proxy(&["example.com"]);
    let response = exchange(
        p.addr,
        format!("CONNECT {echo} HTTP/1.1\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(
        response.starts_with("HTTP/1.1 403 Forbidden\r\n"),
        "{response}"
    );
    assert!(response.contains(&echo.to_string()), "{response}");
    assert!(
        response.contains("[sandbox] allow_hosts in ralph.toml"),
        "{response}"
    );
    let denied = p.denied.recv().await.unwrap();
    assert_eq!(
        (denied.host.as_str(), denied.port),
        ("127.0.0.1", echo.port())
    );
    assert_eq!(p.handle.stats().denied, 1);
}

#[tokio::test]
async fn a_refused_name_that_does_not_exist_is_refused_by_name() {
    // If the proxy resolved before deciding, this would be a 502 (no such host) after a DNS
    // query carrying the name; it must be a 403 naming the host. (That the decision comes
    // before any dialling at all is the unit test in proxy.rs.)
    let name = format!("exfil-{}-{}.invalid", std::process::id(), rand_u32());
    let mut p = proxy(&["*.example.com"]);
    let response = exchange(
        p.addr,
        format!("CONNECT {name}:443 HTTP/1.1\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 403 "), "{response}");
    assert!(response.contains(&format!("{name}:443")), "{response}");
    let denied = p.denied.recv().await.unwrap();
    assert_eq!((denied.host, denied.port), (name, 443));
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) as u32
}

#[tokio::test]
async fn absolute_form_get_is_forwarded_in_origin_form() {
    let server = http_server().await;
    let p = proxy(&[&format!("127.0.0.1:{}", server.port())]);
    let port = server.port();
    let request = format!(
        "GET http://127.0.0.1:{port}/v1/models?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Proxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n"
    );
    let response = exchange(p.addr, request.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    let body = response.split_once("\r\n\r\n").unwrap().1;
    assert_eq!(
        body,
        format!("GET /v1/models?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\n\r\n")
    );
    // The same host on another port is not the listed one.
    let other = exchange(p.addr, b"GET http://127.0.0.1:1/ HTTP/1.1\r\n\r\n").await;
    assert!(other.starts_with("HTTP/1.1 403 "), "{other}");
}

#[tokio::test]
async fn malformed_requests_get_400_and_are_reported() {
    let mut p = proxy(&["127.0.0.1"]);
    for request in [
        &b"hello\r\n\r\n"[..],
        b"GET /not-a-proxy-request HTTP/1.1\r\n\r\n",
        b"CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n",
        b"CONNECT 127.0.0.1:80\r\n\r\n",
        b"GET http://127.0.0.1/ HTTP/1.1\r\n", // closed before the blank line
    ] {
        let response = exchange_half_closed(p.addr, request).await;
        assert!(
            response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{request:?}: {response}"
        );
        let denied = p.denied.recv().await.unwrap();
        assert_eq!((denied.host.as_str(), denied.port), ("", 0));
        assert!(!denied.reason.is_empty());
    }
}

/// Like `exchange`, but closes the sending side after the request.
async fn exchange_half_closed(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    s.shutdown().await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn an_oversize_header_is_refused() {
    let mut p = proxy(&["127.0.0.1"]);
    let mut request = b"GET http://127.0.0.1/ HTTP/1.1\r\n".to_vec();
    for i in 0..400 {
        request.extend_from_slice(format!("X-Padding-{i}: {}\r\n", "y".repeat(40)).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    assert!(request.len() > 16 * 1024);
    let response = exchange(p.addr, &request).await;
    assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
    let denied = p.denied.recv().await.unwrap();
    assert!(denied.reason.contains("16 KiB"), "{denied:?}");
}

#[tokio::test]
async fn an_upstream_that_refuses_gives_502_not_a_denial() {
    // A port nothing listens on: bind, note it, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut p = proxy(&["127.0.0.1"]);
    let response = exchange(
        p.addr,
        format!("CONNECT {dead} HTTP/1.1\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 502 "), "{response}");
    assert!(response.contains("refused"), "{response}");
    drop(p.handle);
    assert!(p.denied.recv().await.is_none(), "a 502 is not a denial");
}

#[tokio::test]
async fn ip_literals_pass_only_when_listed() {
    let echo = echo_server().await;
    let port = echo.port();
    let listed = proxy(&["[::1]", "127.0.0.1"]);
    let by_name = proxy(&["localhost"]);
    let request = format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n");
    let mut s = TcpStream::connect(listed.addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    assert!(read_head(&mut s).await.starts_with("HTTP/1.1 200 "));
    let refused = exchange(by_name.addr, request.as_bytes()).await;
    assert!(refused.starts_with("HTTP/1.1 403 "), "{refused}");
    let mapped = format!("CONNECT [::ffff:127.0.0.1]:{port} HTTP/1.1\r\n\r\n");
    let refused = exchange(by_name.addr, mapped.as_bytes()).await;
    assert!(refused.starts_with("HTTP/1.1 403 "), "{refused}");
}

#[tokio::test]
async fn wildcards_cover_subdomains_only() {
    let mut p = proxy(&["*.example.com"]);
    let bare = exchange(p.addr, b"CONNECT example.com:443 HTTP/1.1\r\n\r\n").await;
    assert!(bare.starts_with("HTTP/1.1 403 "), "{bare}");
    assert_eq!(p.denied.recv().await.unwrap().host, "example.com");
    let lookalike = exchange(p.addr, b"CONNECT evilexample.com:443 HTTP/1.1\r\n\r\n").await;
    assert!(lookalike.starts_with("HTTP/1.1 403 "), "{lookalike}");
}

#[tokio::test]
async fn allow_list_errors_name_the_entry() {
    let err = AllowList::new(&["example.com", "https://x.com/"]).unwrap_err();
    assert_eq!(err.entry, "https://x.com/");
    assert!(err.to_string().contains("https://x.com/"), "{err}");
    assert!(err.to_string().contains("example.com"), "{err}");
}

#[tokio::test]
async fn a_forward_port_pipes_to_its_target() {
    let echo = echo_server().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = serve_forward(listener, echo).unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"ping").await.unwrap();
    let mut got = [0u8; 4];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"ping");
    s.shutdown().await.unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await.unwrap();
    assert_eq!(handle.stats().accepted, 1);
}

#[tokio::test]
async fn dropping_the_handle_ends_tunnels_in_flight() {
    let echo = echo_server().await;
    let p = proxy(&["127.0.0.1"]);
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(format!("CONNECT {echo} HTTP/1.1\r\n\r\n").as_bytes())
        .await
        .unwrap();
    assert!(read_head(&mut s).await.starts_with("HTTP/1.1 200 "));
    drop(p.handle);
    // The tunnel task is gone, so its end of the connection closes.
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    assert!(TcpStream::connect(p.addr).await.is_err(), "still accepting");
}

#[test]
fn serving_outside_a_runtime_is_an_error_not_a_panic() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    let err = serve_forward(listener, target).unwrap_err();
    assert!(err.to_string().contains("tokio runtime"), "{err}");
}
