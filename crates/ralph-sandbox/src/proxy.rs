//! The HTTP proxy and the port forwards served into an agent's network namespace.
//!
//! The listeners are created inside the namespace (by the child, before `exec`) and handed
//! back; ralph serves them here, so what is accepted comes from the agent and what is dialled
//! goes out from the host. The proxy speaks just enough HTTP/1 to learn where a connection is
//! going: `CONNECT host:port` becomes a raw tunnel, an absolute-form `GET http://host/path`
//! is rewritten to origin form and then piped raw. The allow-list is consulted on the host
//! as written, before anything is resolved: a refused name never reaches DNS.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;

use crate::allow::AllowList;

/// The request line and headers must fit in this; a client that sends more is refused (431).
const HEADER_LIMIT: usize = 16 * 1024;
/// A dead upstream (SYNs dropped) must not hold the agent's connection forever.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A client that connects and sends nothing is dropped after this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(60);
/// Per direction; tokio's default (8 KiB) costs a third of the throughput on loopback.
const COPY_BUF: usize = 64 * 1024;
/// After an error response, what the client already sent is read and thrown away (up to
/// this much, for up to `DRAIN_TIMEOUT`) so that closing does not reset the connection and
/// lose the response.
const DRAIN_LIMIT: usize = 256 * 1024;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// A request the proxy refused: a host not on the allow-list, or (with `host` empty and
/// `port` 0) a request it could not understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub host: String,
    pub port: u16,
    pub reason: String,
}

/// Counts since the listener was served. Bytes are those tunnelled (or forwarded) after the
/// proxy's own request parsing, counted as they pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub accepted: u64,
    pub denied: u64,
    /// Agent to upstream.
    pub bytes_up: u64,
    /// Upstream to agent.
    pub bytes_down: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    denied: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

/// A served listener. Dropping it stops accepting and ends every connection in flight.
#[derive(Debug)]
pub struct ProxyHandle {
    task: JoinHandle<()>,
    counters: Arc<Counters>,
}

impl ProxyHandle {
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            accepted: c.accepted.load(Ordering::Relaxed),
            denied: c.denied.load(Ordering::Relaxed),
            bytes_up: c.bytes_up.load(Ordering::Relaxed),
            bytes_down: c.bytes_down.load(Ordering::Relaxed),
        }
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        // The accept task owns the JoinSet of connections: aborting it drops the set, which
        // aborts them all.
        self.task.abort();
    }
}

/// Serve the allow-list proxy on `listener` until the handle is dropped. Every refused
/// request is sent to `denied` (a closed receiver is fine). Must be called inside a tokio
/// runtime.
pub fn serve_proxy(
    listener: std::net::TcpListener,
    allow: Arc<AllowList>,
    denied: UnboundedSender<Denied>,
) -> io::Result<ProxyHandle> {
    let counters = Arc::new(Counters::default());
    let shared = Arc::new(Shared {
        allow,
        denied,
        counters: Arc::clone(&counters),
        dial: TcpDial,
    });
    serve(listener, counters, move |stream| {
        let shared = Arc::clone(&shared);
        async move { proxy_conn(stream, &shared).await }
    })
}

/// Pipe every connection accepted on `listener` to `target` (a model server on the host's
/// loopback) until the handle is dropped. Must be called inside a tokio runtime.
pub fn serve_forward(
    listener: std::net::TcpListener,
    target: SocketAddr,
) -> io::Result<ProxyHandle> {
    let counters = Arc::new(Counters::default());
    let shared = Arc::clone(&counters);
    serve(listener, counters, move |mut client| {
        let counters = Arc::clone(&shared);
        async move {
            // Nothing can be said to the client on failure (no protocol): closing is the
            // same refusal it would get from a server that is down.
            if let Ok(Ok(mut upstream)) = timeout(CONNECT_TIMEOUT, dial_addr(target)).await {
                tunnel(&mut client, &mut upstream, &counters).await;
            }
        }
    })
}

fn serve<F, Fut>(
    listener: std::net::TcpListener,
    counters: Arc<Counters>,
    handler: F,
) -> io::Result<ProxyHandle>
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    // Outside a runtime, tokio would panic below; a caller's mistake is an error instead.
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other(
            "the proxy must be served inside a tokio runtime",
        ));
    }
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let task = tokio::spawn(accept_loop(listener, Arc::clone(&counters), handler));
    Ok(ProxyHandle { task, counters })
}

async fn accept_loop<F, Fut>(listener: TcpListener, counters: Arc<Counters>, handler: F)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    counters.accepted.fetch_add(1, Ordering::Relaxed);
                    // Small writes (a CONNECT reply, a TLS record) must not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    conns.spawn(handler(stream));
                }
                // Out of fds or memory: every retry would fail the same way at once, so
                // give the connections in flight a moment to end.
                Err(e) if is_resource_error(&e) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                // A connection reset before it was accepted, and the like: only that one.
                Err(_) => {}
            },
            // Reap finished connections so the set does not grow with every one served.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

fn is_resource_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// How the proxy reaches an allowed host; a trait so the tests can check that a refused host
/// is never dialled (which is where resolution would happen).
pub(crate) trait Dial: Send + Sync + 'static {
    type Conn: AsyncRead + AsyncWrite + Unpin + Send;
    fn dial(&self, host: &str, port: u16) -> impl Future<Output = io::Result<Self::Conn>> + Send;
}

struct TcpDial;

impl Dial for TcpDial {
    type Conn = TcpStream;
    async fn dial(&self, host: &str, port: u16) -> io::Result<TcpStream> {
        match host.parse::<IpAddr>() {
            Ok(ip) => dial_addr(SocketAddr::new(ip, port)).await,
            // Resolution happens here, and only here: after the allow-list said yes.
            Err(_) => {
                let stream = TcpStream::connect((host, port)).await?;
                stream.set_nodelay(true)?;
                Ok(stream)
            }
        }
    }
}

async fn dial_addr(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

struct Shared<D> {
    allow: Arc<AllowList>,
    denied: UnboundedSender<Denied>,
    counters: Arc<Counters>,
    dial: D,
}

impl<D> Shared<D> {
    fn report(&self, host: &str, port: u16, reason: impl Into<String>) {
        self.counters.denied.fetch_add(1, Ordering::Relaxed);
        let _ = self.denied.send(Denied {
            host: host.to_owned(),
            port,
            reason: reason.into(),
        });
    }
}

/// One client connection to the proxy, from the first byte to the end of its tunnel.
async fn proxy_conn<C, D>(mut client: C, shared: &Shared<D>)
where
    C: AsyncRead + AsyncWrite + Unpin + Send,
    D: Dial,
{
    let (buf, head_len) = match timeout(HEADER_TIMEOUT, read_head(&mut client)).await {
        Ok(Ok(Some(head))) => head,
        // Connected and closed without a word (a port probe), or never finished: nobody to
        // tell.
        Ok(Ok(None)) | Ok(Err(HeadError::Io)) | Err(_) => return,
        Ok(Err(HeadError::Malformed(why))) => {
            shared.report("", 0, why);
            respond(
                &mut client,
                400,
                "Bad Request",
                &format!("ralph sandbox: {why}\n"),
            )
            .await;
            return;
        }
        Ok(Err(HeadError::TooLarge)) => {
            let why = format!("request header larger than {} KiB", HEADER_LIMIT / 1024);
            shared.report("", 0, why.as_str());
            let body = format!("ralph sandbox: {why}\n");
            respond(&mut client, 431, "Request Header Fields Too Large", &body).await;
            return;
        }
    };
    let req = match parse_request(&buf[..head_len]) {
        Ok(req) => req,
        Err(why) => {
            shared.report("", 0, why);
            respond(
                &mut client,
                400,
                "Bad Request",
                &format!("ralph sandbox: {why}\n"),
            )
            .await;
            return;
        }
    };
    // The decision is made on the text of the request, before `dial` (which resolves).
    if !shared.allow.allows(&req.host, req.port) {
        let shown = show_host(&req.host, req.port);
        shared.report(
            &req.host,
            req.port,
            format!("{shown} is not on the allow-list"),
        );
        let body = format!(
            "ralph sandbox: {shown} is not on the allow-list; to allow it, add it to \
             [sandbox] allow_hosts in ralph.toml\n"
        );
        respond(&mut client, 403, "Forbidden", &body).await;
        return;
    }
    let Some(mut upstream) = connect(&mut client, shared, &req).await else {
        return;
    };
    let sent = match &req.forward {
        None => {
            let ok = client
                .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                .await;
            match ok {
                Ok(()) => upstream.write_all(&buf[head_len..]).await,
                Err(e) => Err(e),
            }
        }
        Some(head) => {
            let mut first = Vec::with_capacity(head.len() + buf.len() - head_len);
            first.extend_from_slice(head);
            first.extend_from_slice(&buf[head_len..]);
            upstream.write_all(&first).await
        }
    };
    if sent.is_ok() {
        let first = match &req.forward {
            None => buf.len() - head_len,
            Some(head) => head.len() + buf.len() - head_len,
        };
        let counters = &shared.counters;
        counters.bytes_up.fetch_add(first as u64, Ordering::Relaxed);
        tunnel(&mut client, &mut upstream, counters).await;
    }
}

/// Dial an allowed host, telling the client (502, 504) when that fails.
async fn connect<C, D>(client: &mut C, shared: &Shared<D>, req: &Request) -> Option<D::Conn>
where
    C: AsyncWrite + AsyncRead + Unpin,
    D: Dial,
{
    let shown = show_host(&req.host, req.port);
    match timeout(CONNECT_TIMEOUT, shared.dial.dial(&req.host, req.port)).await {
        Ok(Ok(upstream)) => Some(upstream),
        Ok(Err(e)) => {
            let body = format!("ralph sandbox: cannot connect to {shown}: {e}\n");
            respond(client, 502, "Bad Gateway", &body).await;
            None
        }
        Err(_) => {
            let secs = CONNECT_TIMEOUT.as_secs();
            let body = format!("ralph sandbox: no answer from {shown} in {secs} s\n");
            respond(client, 504, "Gateway Timeout", &body).await;
            None
        }
    }
}

fn show_host(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn tunnel<A, B>(a: &mut A, b: &mut B, counters: &Counters)
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut a = Counted { inner: a, counters };
    // How it ended does not matter to anyone: both sides are closed either way.
    let _ = tokio::io::copy_bidirectional_with_sizes(&mut a, b, COPY_BUF, COPY_BUF).await;
}

/// The agent's side of a tunnel, counting as it goes: a tunnel can live as long as the
/// agent, so adding its totals at the end would leave `stats` blind until then.
struct Counted<'a, S: ?Sized> {
    inner: &'a mut S,
    counters: &'a Counters,
}

impl<S: AsyncRead + Unpin + ?Sized> AsyncRead for Counted<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut *self.inner).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        self.counters.bytes_up.fetch_add(read, Ordering::Relaxed);
        polled
    }
}

impl<S: AsyncWrite + Unpin + ?Sized> AsyncWrite for Counted<'_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut *self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.counters
                .bytes_down
                .fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}

/// Write a short text response and close, reading what the client already sent so the
/// close does not turn into a reset that would eat the response.
async fn respond<C>(client: &mut C, code: u16, status: &str, body: &str)
where
    C: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let response = format!(
        "HTTP/1.1 {code} {status}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if client.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    let _ = client.shutdown().await;
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut total = 0;
        while total < DRAIN_LIMIT {
            match client.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = timeout(DRAIN_TIMEOUT, drain).await;
}

#[derive(Debug)]
enum HeadError {
    Io,
    TooLarge,
    Malformed(&'static str),
}

impl From<io::Error> for HeadError {
    fn from(_: io::Error) -> Self {
        HeadError::Io
    }
}

/// Read until the blank line that ends the header. Returns the bytes read (which may go past
/// the header: a client may send its TLS hello or body right behind) and the header's length,
/// or `None` when the client closed before sending anything.
async fn read_head<C>(client: &mut C) -> Result<Option<(Vec<u8>, usize)>, HeadError>
where
    C: AsyncRead + Unpin + ?Sized,
{
    let mut buf = vec![0u8; HEADER_LIMIT];
    let mut len = 0;
    loop {
        if len == buf.len() {
            return Err(HeadError::TooLarge);
        }
        let n = client.read(&mut buf[len..]).await?;
        if n == 0 {
            return match len {
                0 => Ok(None),
                _ => Err(HeadError::Malformed(
                    "connection closed inside the request header",
                )),
            };
        }
        // The terminator may straddle the previous read.
        let from = len.saturating_sub(3);
        len += n;
        if let Some(at) = find(&buf[from..len], b"\r\n\r\n") {
            buf.truncate(len);
            return Ok(Some((buf, from + at + 4)));
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Where a request goes, and for plain HTTP the header to send there instead.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    /// Lowercase; an IPv6 literal without brackets.
    host: String,
    port: u16,
    /// `None` for CONNECT; the rewritten header (origin-form request line) otherwise.
    forward: Option<Vec<u8>>,
}

fn parse_request(head: &[u8]) -> Result<Request, &'static str> {
    let line_end = find(head, b"\r\n").ok_or("no request line")?;
    let line = std::str::from_utf8(&head[..line_end]).map_err(|_| "request line is not UTF-8")?;
    if line.bytes().any(|b| b.is_ascii_control()) {
        return Err("control character in the request line");
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("request line is not METHOD TARGET HTTP/1.x");
    };
    if !is_token(method) {
        return Err("bad method in the request line");
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err("not an HTTP/1.0 or HTTP/1.1 request");
    }
    if method == "CONNECT" {
        let (host, port) = parse_authority(target, None)?;
        return Ok(Request {
            host,
            port,
            forward: None,
        });
    }
    let lower = target.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err("https:// URLs go through CONNECT, not a plain request to the proxy");
    }
    if !lower.starts_with("http://") {
        return Err("not a proxy request: expected CONNECT host:port or an absolute http:// URL");
    }
    let rest = &target["http://".len()..];
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.contains('@') {
        return Err("user:password@ in a proxied URL is not supported");
    }
    let (host, port) = parse_authority(authority, Some(80))?;
    let mut out = Vec::with_capacity(head.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    if !path.starts_with('/') {
        out.push(b'/');
    }
    out.extend_from_slice(path.as_bytes());
    out.push(b' ');
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(b"\r\n");
    // The headers meant for the proxy stay here; the rest (Host included) go on as sent.
    for header in head[line_end + 2..].split_inclusive(|&b| b == b'\n') {
        if !is_proxy_header(header) {
            out.extend_from_slice(header);
        }
    }
    Ok(Request {
        host,
        port,
        forward: Some(out),
    })
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_proxy_header(line: &[u8]) -> bool {
    let name = line.split(|&b| b == b':').next().unwrap_or(&[]);
    name.eq_ignore_ascii_case(b"proxy-connection")
        || name.eq_ignore_ascii_case(b"proxy-authorization")
}

/// `host:port`, `[v6]:port`, and without the port when `default_port` is given.
fn parse_authority(text: &str, default_port: Option<u16>) -> Result<(String, u16), &'static str> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let close = v6.find(']').ok_or("unclosed '[' in the host")?;
        let host = &v6[..close];
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("not an IPv6 address inside [ ]");
        }
        (host, &v6[close + 1..])
    } else {
        match text.find(':') {
            Some(i) => (&text[..i], &text[i..]),
            None => (text, ""),
        }
    };
    let port = match (port.strip_prefix(':'), default_port) {
        (Some(p), _) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or("port out of range")?,
        (Some(_), _) => return Err("bad port"),
        (None, Some(default)) if port.is_empty() => default,
        (None, None) if port.is_empty() => return Err("CONNECT needs host:port"),
        (None, _) => return Err("junk after the host"),
    };
    let bracketed = text.starts_with('[');
    if !bracketed {
        let name = host.strip_suffix('.').unwrap_or(host);
        let valid = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !valid {
            return Err("bad host name");
        }
    }
    Ok((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::io::DuplexStream;

    /// Records every host it is asked to reach; a refused one must never show up here.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<(String, u16)>>,
    }

    impl Dial for Recorder {
        type Conn = DuplexStream;
        async fn dial(&self, host: &str, port: u16) -> io::Result<DuplexStream> {
            if let Ok(mut calls) = self.calls.lock() {
                calls.push((host.to_owned(), port));
            }
            Ok(tokio::io::duplex(64).0)
        }
    }

    /// Run one request through `proxy_conn` with the recorder; the response, what was
    /// dialled and what was reported.
    async fn run(allow: &[&str], request: &str) -> (String, Vec<(String, u16)>, Vec<Denied>) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let allow = match AllowList::new(allow) {
            Ok(a) => Arc::new(a),
            Err(e) => panic!("{e}"),
        };
        let shared = Arc::new(Shared {
            allow,
            denied: tx,
            counters: Arc::default(),
            dial: Recorder::default(),
        });
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let task = {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move { proxy_conn(server, &shared).await })
        };
        client.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        client.read_to_end(&mut response).await.unwrap();
        drop(client);
        task.await.unwrap();
        let calls = shared.dial.calls.lock().unwrap().clone();
        drop(shared);
        let mut denied = Vec::new();
        while let Some(d) = rx.recv().await {
            denied.push(d);
        }
        (
            String::from_utf8_lossy(&response).into_owned(),
            calls,
            denied,
        )
    }

    #[tokio::test]
    async fn a_refused_host_is_never_dialled_so_never_resolved() {
        for request in [
            "CONNECT exfil-secret.invalid:443 HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET http://exfil-secret.invalid/ HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            let (response, calls, denied) = run(&["example.com"], request).await;
            assert!(response.starts_with("HTTP/1.1 403 "), "{response}");
            assert!(response.contains("exfil-secret.invalid"), "{response}");
            assert!(calls.is_empty(), "dialled {calls:?}");
            assert_eq!(denied.len(), 1);
            assert_eq!(denied[0].host, "exfil-secret.invalid");
        }
    }

    #[tokio::test]
    async fn an_allowed_host_is_dialled_once_as_written() {
        let (response, calls, denied) = run(
            &["Example.com"],
            "CONNECT EXAMPLE.com:8443 HTTP/1.1\r\n\r\n",
        )
        .await;
        assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
        assert_eq!(calls, vec![("example.com".to_owned(), 8443)]);
        assert!(denied.is_empty());
    }

    #[test]
    fn requests_parse_to_where_they_go() {
        let r = parse_request(b"CONNECT [::1]:443 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((r.host.as_str(), r.port, r.forward), ("::1", 443, None));
        let r = parse_request(
            b"POST http://Api.Example.com:8080?x=1 HTTP/1.1\r\nHost: api\r\n\
              Proxy-Connection: keep-alive\r\nproxy-authorization: Basic x\r\nA: b\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.host.as_str(), r.port), ("api.example.com", 8080));
        let forward = String::from_utf8(r.forward.unwrap()).unwrap();
        assert_eq!(forward, "POST /?x=1 HTTP/1.1\r\nHost: api\r\nA: b\r\n\r\n");
        let r = parse_request(b"GET http://h HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(r.port, 80);
        assert_eq!(r.forward.unwrap(), b"GET / HTTP/1.0\r\n\r\n");
        for bad in [
            "GET /local HTTP/1.1\r\n\r\n",
            "GET https://h/ HTTP/1.1\r\n\r\n",
            "CONNECT h HTTP/1.1\r\n\r\n",
            "CONNECT h:0 HTTP/1.1\r\n\r\n",
            "CONNECT h:65536 HTTP/1.1\r\n\r\n",
            "CONNECT h:x HTTP/1.1\r\n\r\n",
            "CONNECT h:1:2 HTTP/1.1\r\n\r\n",
            "CONNECT ::1:443 HTTP/1.1\r\n\r\n",
            "CONNECT [zz]:443 HTTP/1.1\r\n\r\n",
            "CONNECT a%2eb:443 HTTP/1.1\r\n\r\n",
            "CONNECT h:443 HTTP/2\r\n\r\n",
            "CONNECT  h:443 HTTP/1.1\r\n\r\n",
            "GET http://u:p@h/ HTTP/1.1\r\n\r\n",
            "GET http://:80/ HTTP/1.1\r\n\r\n",
            "G\tT http://h/ HTTP/1.1\r\n\r\n",
        ] {
            assert!(parse_request(bad.as_bytes()).is_err(), "{bad:?} parsed");
        }
    }
}
