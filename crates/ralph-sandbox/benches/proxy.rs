//! The allow-list proxy (`cargo bench -p ralph-sandbox --bench proxy`): what it costs an agent.
//!
//! * added latency per connection: connect + `CONNECT` + one byte echoed through the tunnel,
//!   minus connect + one byte echoed directly, over 2000 connections of each, interleaved so
//!   both see the same machine load;
//! * throughput: 512 MiB one way through a `CONNECT` tunnel into a server that discards it,
//!   timed until the server has counted the last byte (and the same directly, for scale).
//!
//! Goals: ≤ 1 ms added per connection, ≥ 100 MB/s.
#![expect(clippy::unwrap_used, reason = "a benchmark fails by panicking")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ralph_sandbox::allow::AllowList;
use ralph_sandbox::proxy::serve_proxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CONNECTIONS: usize = 2000;
const BULK: u64 = 512 * 1024 * 1024;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let echo = spawn_server(echo_one).await;
    let sink = spawn_server(sink).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = listener.local_addr().unwrap();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let allow = Arc::new(AllowList::new(&["127.0.0.1"]).unwrap());
    let handle = serve_proxy(listener, allow, tx).unwrap();

    let mut direct = Vec::with_capacity(CONNECTIONS);
    let mut proxied = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        direct.push(round_trip(echo, None).await);
        proxied.push(round_trip(proxy, Some(echo)).await);
    }
    direct.sort();
    proxied.sort();
    let (d50, d95) = (pct(&direct, 50), pct(&direct, 95));
    let (p50, p95) = (pct(&proxied, 50), pct(&proxied, 95));
    println!("connections: {CONNECTIONS} direct, {CONNECTIONS} through the proxy");
    println!("  direct  connect+byte: median {d50:?}, p95 {d95:?}");
    println!("  proxied connect+CONNECT+byte: median {p50:?}, p95 {p95:?}");
    println!(
        "  added per connection: median {:?}, p95 {:?} (goal <= 1 ms)",
        p50.saturating_sub(d50),
        p95.saturating_sub(d95)
    );

    let direct_rate = bulk(sink, None).await;
    let proxied_rate = bulk(proxy, Some(sink)).await;
    println!("throughput of 512 MiB one way:");
    println!("  direct: {direct_rate:.0} MB/s");
    println!("  through a CONNECT tunnel: {proxied_rate:.0} MB/s (goal >= 100 MB/s)");
    let stats = handle.stats();
    println!(
        "proxy stats: {} accepted, {} denied, {} bytes up, {} bytes down",
        stats.accepted, stats.denied, stats.bytes_up, stats.bytes_down
    );
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

async fn spawn_server<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            tokio::spawn(serve(s));
        }
    });
    addr
}

/// Echo one byte, then close.
async fn echo_one(mut s: TcpStream) {
    let mut b = [0u8; 1];
    if s.read_exact(&mut b).await.is_ok() {
        let _ = s.write_all(&b).await;
    }
}

/// Count everything until EOF, then answer with the count.
async fn sink(mut s: TcpStream) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total: u64 = 0;
    while total < BULK {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n as u64,
        }
    }
    let _ = s.write_all(&total.to_be_bytes()).await;
}

/// Open a connection (to `addr`, through the proxy there when `via` names the target),
/// CONNECT if proxied, and round-trip one byte.
async fn round_trip(addr: SocketAddr, via: Option<SocketAddr>) -> Duration {
    let start = Instant::now();
    let mut s = open(addr, via).await;
    s.write_all(b"x").await.unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.unwrap();
    start.elapsed()
}

async fn open(addr: SocketAddr, via: Option<SocketAddr>) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    if let Some(target) = via {
        let req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut head = Vec::with_capacity(64);
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).await.unwrap();
            head.push(b[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 200 "), "{head:?}");
    }
    s
}

/// MB/s (10^6 bytes) of `BULK` bytes written one way.
async fn bulk(addr: SocketAddr, via: Option<SocketAddr>) -> f64 {
    let mut s = open(addr, via).await;
    let chunk = vec![0xa5u8; 256 * 1024];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < BULK {
        s.write_all(&chunk).await.unwrap();
        sent += chunk.len() as u64;
    }
    let mut count = [0u8; 8];
    s.read_exact(&mut count).await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(u64::from_be_bytes(count), BULK);
    BULK as f64 / elapsed.as_secs_f64() / 1e6
}
