//! A fault-injecting HTTP proxy on 127.0.0.1, in front of the MLflow server.
//!
//! Each request is matched against a scripted list of rules (method + path
//! substring, N times); a matching rule can answer a status itself, reset
//! the connection, delay, or — the important one — forward the request
//! upstream and then answer the client 502 (or reset), so that a create
//! happened but the client cannot know — or hold it past the client's
//! timeout and forward it only once a later request was answered (a create
//! that lands after the client sent it again). One request per connection
//! (`Connection: close`), which keeps the parsing trivial. An HTTPS
//! upstream ([`Proxy::start_tls`], the basic-auth + TLS server) is reached
//! through reqwest, verified against the test CA; the client side stays
//! plain HTTP on loopback.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What to do with a matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status (plain text), without forwarding.
    Status(u16),
    /// Answer this status with `Retry-After: secs`, without forwarding.
    StatusRetryAfter(u16, u64),
    /// Answer this status and body (JSON if it starts with `{`), without
    /// forwarding.
    Answer(u16, String),
    /// Forward with the first occurrence of `.0` in the request line
    /// replaced by `.1` (e.g. a smaller `max_results`, to force paging).
    Rewrite(String, String),
    /// Reset the connection without forwarding.
    Reset,
    /// Wait, then forward.
    Delay(Duration),
    /// Forward upstream, drop the answer, and answer this status.
    ForwardThenStatus(u16),
    /// Forward upstream, drop the answer, and reset the connection.
    ForwardThenReset,
    /// Forward, and answer with every `.0` in the body replaced by `.1`
    /// (e.g. a version status the real server never reports).
    RewriteAnswer(String, String),
    /// Hold the request (the client times out meanwhile) until upstream
    /// has answered a later request whose path contains `.0`, then forward
    /// it anyway: it lands after that one. Gives up holding after 120 s.
    HoldUntilAnswered(String),
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The request body (as text).
    pub body: String,
    /// The fault applied, if any.
    pub fault: Option<String>,
    /// When the proxy had read the whole request.
    pub at: Instant,
}

struct Rule {
    method: String,
    path_contains: String,
    /// Empty: any body.
    body_contains: String,
    fault: Fault,
    remaining: usize,
}

/// A request the proxy forwarded and upstream answered.
#[derive(Debug, Clone)]
pub struct Answered {
    pub method: String,
    pub path: String,
    /// Upstream's status code.
    pub status: u16,
    /// Held first ([`Fault::HoldUntilAnswered`]).
    pub held: bool,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
    answered: Vec<Answered>,
}

/// Where requests go.
enum Upstream {
    /// `host:port`, plain HTTP: the request's bytes are forwarded.
    Plain(String),
    /// `https://host:port`, through a client that trusts the test CA.
    Tls {
        base: String,
        client: reqwest::Client,
    },
}

/// A running proxy; it stops with the test's runtime.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

/// The shared state and a wake-up for held requests.
#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<State>>,
    answered: Arc<tokio::sync::Notify>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Proxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        Proxy::listen(Upstream::Plain(upstream)).await
    }

    /// Starts a proxy to an HTTPS `upstream` (`https://host:port`) whose
    /// certificate `ca` (PEM) signed.
    pub async fn start_tls(upstream: &str, ca: &std::path::Path) -> Proxy {
        let pem = std::fs::read(ca).expect("read the CA");
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA pem"))
            .build()
            .expect("http client");
        let base = upstream.trim_end_matches('/').to_owned();
        Proxy::listen(Upstream::Tls { base, client }).await
    }

    async fn listen(upstream: Upstream) -> Proxy {
        let upstream = Arc::new(upstream);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Shared {
            state: state.clone(),
            answered: Arc::default(),
        };
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(handle(conn, upstream.clone(), shared.clone()));
            }
        });
        Proxy { url, state }
    }

    /// Applies `fault` to the next `times` requests with this method whose
    /// path contains `path_contains`. Rules apply in the order added.
    pub fn fail(&self, method: &str, path_contains: &str, fault: Fault, times: usize) {
        self.fail_body(method, path_contains, "", fault, times);
    }

    /// Like [`Proxy::fail`], only for requests whose body also contains
    /// `body_contains` (e.g. one tag key).
    pub fn fail_body(
        &self,
        method: &str,
        path_contains: &str,
        body_contains: &str,
        fault: Fault,
        times: usize,
    ) {
        self.state.lock().expect("proxy state").rules.push(Rule {
            method: method.to_owned(),
            path_contains: path_contains.to_owned(),
            body_contains: body_contains.to_owned(),
            fault,
            remaining: times,
        });
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().expect("proxy state").seen.clone()
    }

    /// Writes (any method but GET) seen so far, leaving out the applier
    /// lease's (whose bodies name `lease`).
    pub fn writes_except_lease(&self, lease: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method != "GET" && !s.body.contains(lease))
            .count()
    }

    /// The requests forwarded and answered by upstream whose path contains
    /// `path_contains`, in the order answered.
    pub fn answered(&self, path_contains: &str) -> Vec<Answered> {
        let st = self.state.lock().expect("proxy state");
        st.answered
            .iter()
            .filter(|a| a.path.contains(path_contains))
            .cloned()
            .collect()
    }

    /// How many requests with this method and path substring were seen.
    pub fn count(&self, method: &str, path_contains: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == method && s.path.contains(path_contains))
            .count()
    }

    /// Requests seen, by `METHOD endpoint` (`GET registered-models/get`),
    /// leaving out the applier lease's (whose query or body names the
    /// lease model `lease`); and the lease's count.
    pub fn by_endpoint(&self, lease: &str) -> (BTreeMap<String, usize>, usize) {
        let mut out = BTreeMap::new();
        let mut lease_requests = 0;
        for s in self.seen() {
            if s.path.contains(lease) || s.body.contains(lease) {
                lease_requests += 1;
                continue;
            }
            let endpoint = s
                .path
                .split('?')
                .next()
                .unwrap_or_default()
                .trim_start_matches("/api/2.0/mlflow/")
                .to_string();
            *out.entry(format!("{} {endpoint}", s.method)).or_default() += 1;
        }
        (out, lease_requests)
    }
}

/// Expected counts by `METHOD endpoint`, as [`Proxy::by_endpoint`] has them.
pub fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

async fn handle(mut client: TcpStream, upstream: Arc<Upstream>, shared: Shared) {
    let state = &shared.state;
    let Some((head, body)) = read_request(&mut client).await else {
        return;
    };
    let first = head.lines().next().unwrap_or_default().to_owned();
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let text = String::from_utf8_lossy(&body).into_owned();
    let fault = {
        let mut st = state.lock().expect("proxy state");
        let fault = st
            .rules
            .iter_mut()
            .find(|r| {
                r.remaining > 0
                    && r.method == method
                    && path.contains(&r.path_contains)
                    && text.contains(&r.body_contains)
            })
            .map(|r| {
                r.remaining -= 1;
                r.fault.clone()
            });
        st.seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            body: text.clone(),
            fault: fault.as_ref().map(|f| format!("{f:?}")),
            at: Instant::now(),
        });
        fault
    };
    let forward = |upstream: &Arc<Upstream>, head: &str, body: &[u8]| {
        let (upstream, head, body) = (upstream.clone(), head.to_owned(), body.to_vec());
        let (method, path, shared) = (method.clone(), path.clone(), shared.clone());
        let held = matches!(fault, Some(Fault::HoldUntilAnswered(_)));
        async move {
            let resp = forward_raw(&upstream, &head, &body).await;
            if let Some(status) = resp.as_deref().and_then(status_of) {
                shared
                    .state
                    .lock()
                    .expect("proxy state")
                    .answered
                    .push(Answered {
                        method,
                        path,
                        status,
                        held,
                    });
                shared.answered.notify_waiters();
            }
            resp
        }
    };
    match fault.clone() {
        None => {
            if let Some(resp) = forward(&upstream, &head, &body).await {
                let _ = client.write_all(&resp).await;
            }
        }
        Some(Fault::Status(code)) => {
            respond(&mut client, code, None, &format!("proxy says {code}")).await
        }
        Some(Fault::StatusRetryAfter(code, secs)) => {
            respond(&mut client, code, Some(secs), &format!("proxy says {code}")).await
        }
        Some(Fault::Answer(code, body)) => respond(&mut client, code, None, &body).await,
        Some(Fault::Rewrite(from, to)) => {
            let (line, rest) = head.split_once("\r\n").unwrap_or((&head, ""));
            let head = format!("{}\r\n{rest}", line.replacen(&from, &to, 1));
            if let Some(resp) = forward(&upstream, &head, &body).await {
                let _ = client.write_all(&resp).await;
            }
        }
        Some(Fault::Reset) => reset(client),
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            if let Some(resp) = forward(&upstream, &head, &body).await {
                let _ = client.write_all(&resp).await;
            }
        }
        Some(Fault::ForwardThenStatus(code)) => {
            let _ = forward(&upstream, &head, &body).await;
            respond(&mut client, code, None, &format!("proxy says {code}")).await;
        }
        Some(Fault::ForwardThenReset) => {
            let _ = forward(&upstream, &head, &body).await;
            reset(client);
        }
        Some(Fault::RewriteAnswer(from, to)) => {
            if let Some(resp) = forward(&upstream, &head, &body).await {
                let _ = client.write_all(&rewrite_body(&resp, &from, &to)).await;
            }
        }
        Some(Fault::HoldUntilAnswered(later)) => {
            let since = state.lock().expect("proxy state").answered.len();
            let answered = || {
                state.lock().expect("proxy state").answered[since..]
                    .iter()
                    .any(|a| a.path.contains(&later))
            };
            let held = async {
                loop {
                    let wake = shared.answered.notified();
                    tokio::pin!(wake);
                    wake.as_mut().enable();
                    if answered() {
                        return;
                    }
                    wake.await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(120), held).await;
            if let Some(resp) = forward(&upstream, &head, &body).await {
                let _ = client.write_all(&resp).await;
            }
        }
    }
}

/// The status code of an HTTP answer.
fn status_of(resp: &[u8]) -> Option<u16> {
    let line = resp.split(|b| *b == b'\n').next()?;
    std::str::from_utf8(line)
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Reads one request: the head (up to the blank line) and a
/// `Content-Length` body.
async fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

/// Sends the request upstream with `Connection: close` and returns the whole
/// answer.
async fn forward_raw(upstream: &Upstream, head: &str, body: &[u8]) -> Option<Vec<u8>> {
    let upstream = match upstream {
        Upstream::Plain(addr) => addr,
        Upstream::Tls { base, client } => return forward_tls(base, client, head, body).await,
    };
    let mut up = TcpStream::connect(upstream).await.ok()?;
    let mut out = String::new();
    for line in head.trim_end().lines() {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    up.write_all(out.as_bytes()).await.ok()?;
    up.write_all(body).await.ok()?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp).await.ok()?;
    Some(resp)
}

/// [`forward_raw`] to an HTTPS server: the request re-sent through reqwest, its
/// answer written back as HTTP/1.1 bytes.
async fn forward_tls(
    base: &str,
    client: &reqwest::Client,
    head: &str,
    body: &[u8],
) -> Option<Vec<u8>> {
    let mut lines = head.trim_end().lines();
    let mut first = lines.next()?.split_whitespace();
    let method = reqwest::Method::from_bytes(first.next()?.as_bytes()).ok()?;
    let path = first.next()?;
    let mut req = client.request(method, format!("{base}{path}"));
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let k = k.trim();
        if !["host", "connection", "content-length"].contains(&k.to_ascii_lowercase().as_str()) {
            req = req.header(k, v.trim());
        }
    }
    let resp = req.body(body.to_vec()).send().await.ok()?;
    let status = resp.status();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for (k, v) in resp.headers() {
        let skip = ["connection", "content-length", "transfer-encoding"];
        if !skip.contains(&k.as_str()) {
            out.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap_or_default()));
        }
    }
    let bytes = resp.bytes().await.ok()?;
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        bytes.len()
    ));
    let mut raw = out.into_bytes();
    raw.extend_from_slice(&bytes);
    Some(raw)
}

/// `resp` with `from` replaced by `to` in its body, and the
/// `Content-Length` header fixed accordingly.
fn rewrite_body(resp: &[u8], from: &str, to: &str) -> Vec<u8> {
    let Some(end) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        return resp.to_vec();
    };
    let head = String::from_utf8_lossy(&resp[..end]);
    let body = String::from_utf8_lossy(&resp[end + 4..]).replace(from, to);
    let mut out = String::new();
    for line in head.lines() {
        if line.to_ascii_lowercase().starts_with("content-length:") {
            out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        } else {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
}

async fn respond(conn: &mut TcpStream, code: u16, retry_after: Option<u64>, body: &str) {
    let kind = if body.starts_with('{') {
        "application/json"
    } else {
        "text/plain"
    };
    let extra = retry_after
        .map(|s| format!("Retry-After: {s}\r\n"))
        .unwrap_or_default();
    let resp = format!(
        "HTTP/1.1 {code} Fault\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(resp.as_bytes()).await;
    let _ = conn.shutdown().await;
}

fn reset(conn: TcpStream) {
    let _ = conn.set_zero_linger();
    drop(conn);
}
