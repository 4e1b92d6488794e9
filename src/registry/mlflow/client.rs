//! The HTTP client: one request to one MLflow endpoint, with auth, TLS,
//! retries (backoff + jitter, `Retry-After`), error classification and
//! request counters.
//!
//! A request that is not idempotent (creates) is never re-sent here after a
//! failure that may have reached the server: it comes back as
//! [`CallError::Ambiguous`] and the caller re-reads before deciding. This
//! module never logs secrets: headers are not logged, and the base URL has
//! its userinfo removed.

mod streamed;
mod workspace;

use streamed::Streamed;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;

use super::config::{Auth, MlflowConfig, RetryPolicy, TlsVerify};
use super::endpoints::Endpoint;
use super::errors::{CallError, classify_error, snippet};
use crate::registry::error_chain;
use crate::registry::{RegistryError, RegistryUri, RequestStats, Result};
use crate::secret::Secret;
use crate::uri::percent_decode;

/// What a password in the registry URI is called in leak errors.
const URI_PASSWORD: &str = "the password in the registry URI";

/// What to send.
pub enum Payload<'a> {
    /// GET query parameters; repeated keys are repeated.
    Query(&'a [(&'a str, String)]),
    /// A JSON body (POST, PATCH, DELETE).
    Json(&'a serde_json::Value),
}

/// The HTTP side of [`super::MlflowRegistry`].
pub struct Client {
    http: reqwest::Client,
    /// `…/api/2.0/mlflow/`, without userinfo.
    api: Url,
    /// `…/api/3.0/mlflow/` (the basic-auth app's roles and grants).
    api3: Url,
    /// The server URL as given, without userinfo.
    display: String,
    auth: Option<Auth>,
    policy: RetryPolicy,
    /// Sent as `X-MLFLOW-WORKSPACE` on every request.
    workspace: Option<String>,
    /// Set once the server confirmed it has that workspace.
    workspace_ok: tokio::sync::OnceCell<()>,
    /// Which API grants permissions here (from the capability probe), for
    /// the hint in permission errors.
    permission_api: std::sync::OnceLock<crate::state::capabilities::PermissionApi>,
    reads: AtomicU64,
    writes: AtomicU64,
    errors: AtomicU64,
    retries: AtomicU64,
}

/// How a failed attempt may be retried.
enum Retry {
    /// Never (a definite answer, or a failure retrying cannot fix).
    No,
    /// The request did not reach the server: always safe to re-send.
    Safe(Option<Duration>),
    /// The request may have been applied: re-send only if idempotent.
    Unknown(Option<Duration>),
}

impl Client {
    /// Builds the client for `base_url` (credentials in the URL are used as
    /// Basic auth when the environment sets none, then removed).
    pub fn new(base_url: &str, config: MlflowConfig) -> Result<Self> {
        let mut url = Url::parse(base_url.trim())
            .map_err(|e| RegistryError::Invalid(format!("invalid MLflow URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(RegistryError::Invalid(format!(
                "MLflow URL must be http(s), not {}:",
                url.scheme()
            )));
        }
        let mut auth = config.auth.clone();
        let workspace = RegistryUri::new(base_url)
            .workspace()
            .or_else(|| config.workspace.clone());
        if !url.username().is_empty() {
            if auth.is_none() {
                let username = percent_decode(url.username());
                let password =
                    Secret::named(URI_PASSWORD, percent_decode(url.password().unwrap_or("")));
                auth = Some(Auth::Basic { username, password });
            }
            // Both calls only fail for URLs that cannot have credentials.
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        url.set_query(None);
        url.set_fragment(None);
        let display = url.as_str().trim_end_matches('/').to_owned();
        let api = Url::parse(&format!("{display}/api/2.0/mlflow/"))
            .map_err(|e| RegistryError::Invalid(format!("invalid MLflow URL: {e}")))?;
        let api3 = Url::parse(&format!("{display}/api/3.0/mlflow/"))
            .map_err(|e| RegistryError::Invalid(format!("invalid MLflow URL: {e}")))?;
        let http = build_http(&config)?;
        Ok(Client {
            http,
            api,
            api3,
            display,
            auth,
            policy: config.retry,
            workspace,
            workspace_ok: tokio::sync::OnceCell::new(),
            permission_api: std::sync::OnceLock::new(),
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        })
    }

    /// `req` with the credentials (the one place they are sent).
    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Some(Auth::Basic { username, password }) => {
                req.basic_auth(username, Some(password.expose()))
            }
            Some(Auth::Bearer(token)) => req.bearer_auth(token.expose()),
            None => req,
        }
    }

    /// The server URL without credentials.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// What identifies this registry in saved plans and messages: the
    /// server URL, with `#workspace=NAME` when a workspace is named.
    pub fn identity(&self) -> String {
        match &self.workspace {
            Some(w) => format!("{}#workspace={w}", self.display),
            None => self.display.clone(),
        }
    }

    /// The user name modelsync authenticates as (HTTP Basic), if any: its
    /// principal on MLflow's basic-auth app.
    pub fn username(&self) -> Option<&str> {
        match &self.auth {
            Some(Auth::Basic { username, .. }) => Some(username),
            _ => None,
        }
    }

    /// The workspace named for this registry, if any.
    pub fn workspace(&self) -> Option<&str> {
        self.workspace.as_deref()
    }

    /// `GET {server}/api/3.0/mlflow/{segments...}` once, without retries
    /// (segments percent-encoded): the status and body (MLflow 3's
    /// server-info and workspace APIs).
    pub async fn get_v3(&self, segments: &[&str]) -> Result<(u16, String)> {
        let mut url = Url::parse(&format!("{}/api/3.0/mlflow", self.display))
            .map_err(|e| RegistryError::Invalid(format!("invalid MLflow URL: {e}")))?;
        if let Ok(mut path) = url.path_segments_mut() {
            path.extend(segments);
        }
        let path = segments.join("/");
        let mut req = self.http.get(url);
        req = self.authorize(req);
        self.reads.fetch_add(1, Ordering::Relaxed);
        let resp = req.send().await.map_err(|e| self.send_error(&e))?;
        let status = resp.status().as_u16();
        tracing::debug!(
            method = "GET",
            endpoint = path.as_str(),
            status,
            "mlflow request"
        );
        let body = resp.text().await.unwrap_or_default();
        Ok((status, body))
    }

    /// A request that could not be sent (or answered), counted as an
    /// error: unreachable, a TLS problem, a timeout.
    pub fn send_error(&self, e: &reqwest::Error) -> RegistryError {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.transport_error(e).0.into_registry()
    }

    /// Says, in a permission error, how an admin grants the permission
    /// on this server (once its permission API is known).
    fn grant_hint(&self, err: CallError) -> CallError {
        let Some(hint) = self.permission_api.get().and_then(|a| a.how_to_grant()) else {
            return err;
        };
        match err {
            CallError::Api {
                ep,
                status,
                code,
                message,
            } if code == "PERMISSION_DENIED" => CallError::Api {
                ep,
                status,
                code,
                message: format!("{message}; {hint}"),
            },
            CallError::Registry(RegistryError::PermissionDenied { operation, message }) => {
                CallError::Registry(RegistryError::PermissionDenied {
                    operation,
                    message: format!("{message}; {hint}"),
                })
            }
            other => other,
        }
    }

    /// Records which API grants permissions on this server.
    pub fn set_permission_api(&self, api: crate::state::capabilities::PermissionApi) {
        let _ = self.permission_api.set(api);
    }

    /// The retry policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Counts a re-send decided by a caller (a create after a re-read).
    pub fn note_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters so far.
    pub fn stats(&self) -> RequestStats {
        RequestStats {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }

    /// A request to `path` under the server URL (e.g. the artifact REST
    /// API, `api/2.0/mlflow-artifacts/artifacts/…`), with the credentials,
    /// counted as a read or a write. The caller sends it and reads the
    /// answer (streamed).
    pub fn raw(&self, method: reqwest::Method, path: &str, read: bool) -> reqwest::RequestBuilder {
        let url = format!("{}/{}", self.display, path.trim_start_matches('/'));
        let mut req = self.http.request(method, url);
        req = self.authorize(req);
        if read {
            self.reads.fetch_add(1, Ordering::Relaxed);
        } else {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        req
    }

    /// Calls `ep`, retrying what may be retried, and decodes the answer.
    pub async fn call<T: DeserializeOwned + Send + 'static>(
        &self,
        ep: &'static Endpoint,
        payload: Payload<'_>,
    ) -> Result<T, CallError> {
        self.call_at(ep, None, payload).await
    }

    /// [`Client::call`] on `ep`'s path followed by one more path segment
    /// (`logged-models/{id}`), percent-encoded.
    pub async fn call_at<T: DeserializeOwned + Send + 'static>(
        &self,
        ep: &'static Endpoint,
        segment: Option<&str>,
        payload: Payload<'_>,
    ) -> Result<T, CallError> {
        refuse_leaks(ep, segment, &payload).map_err(CallError::Registry)?;
        if let Some(name) = &self.workspace {
            self.workspace_ok
                .get_or_try_init(|| workspace::check(self, name))
                .await
                .map_err(CallError::Registry)?;
        }
        let start = Instant::now();
        let mut retry = 0u32;
        loop {
            let (err, how) = match self.attempt::<T>(ep, segment, &payload).await {
                Ok(t) => return Ok(t),
                Err(failure) => failure,
            };
            let after = match how {
                Retry::No => return Err(err),
                Retry::Safe(after) => after,
                Retry::Unknown(after) if ep.idempotent => after,
                Retry::Unknown(_) => {
                    return Err(CallError::Ambiguous {
                        ep,
                        message: err.into_registry().to_string(),
                    });
                }
            };
            retry += 1;
            let wait = after.unwrap_or_else(|| self.policy.backoff(retry));
            if retry > self.policy.max_retries || start.elapsed() + wait > self.policy.budget {
                return Err(exhausted(err, retry, start.elapsed()));
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                endpoint = ep.path,
                retry,
                wait_ms = wait.as_millis() as u64,
                "retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt<T: DeserializeOwned + Send + 'static>(
        &self,
        ep: &'static Endpoint,
        segment: Option<&str>,
        payload: &Payload<'_>,
    ) -> std::result::Result<T, (CallError, Retry)> {
        let base = if ep.v3 { &self.api3 } else { &self.api };
        let mut url = base
            .join(ep.path)
            .expect("endpoint paths are relative and valid");
        if let Some(segment) = segment
            && let Ok(mut path) = url.path_segments_mut()
        {
            path.push(segment);
        }
        let mut req = self.http.request(ep.method(), url);
        if let Some(w) = &self.workspace {
            req = req.header(workspace::HEADER, w);
        }
        req = match payload {
            Payload::Query(q) => req.query(q),
            Payload::Json(body) => req.json(body),
        };
        req = self.authorize(req);
        if ep.read {
            self.reads.fetch_add(1, Ordering::Relaxed);
        } else {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        let started = Instant::now();
        let result = match req.send().await {
            Ok(resp) if resp.status().is_success() && streamed::large(&resp) => {
                return self.streamed(ep, resp, started).await;
            }
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = retry_after(resp.headers());
                body_bytes(resp)
                    .await
                    .map(|body| (status, retry_after, body))
            }
            Err(e) => Err(e),
        };
        match result {
            Ok((status, retry_after, body)) => {
                log_answer(ep, status, started);
                if (200..300).contains(&status) {
                    return decode(ep, body).map_err(|e| (e, Retry::No));
                }
                self.errors.fetch_add(1, Ordering::Relaxed);
                let body = String::from_utf8_lossy(&body);
                let err = self.grant_hint(classify_error(ep, status, &body, &self.display));
                let how = match status {
                    408 | 429 => Retry::Safe(retry_after),
                    500 | 502 | 503 | 504 => Retry::Unknown(retry_after),
                    _ => Retry::No,
                };
                Err((err, how))
            }
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    method = ep.verb.as_str(),
                    endpoint = ep.path,
                    status = "transport error",
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "mlflow request"
                );
                Err(self.transport_error(&e))
            }
        }
    }

    /// A large successful answer, decoded as it arrives
    /// ([`streamed::decode`]).
    async fn streamed<T: DeserializeOwned + Send + 'static>(
        &self,
        ep: &'static Endpoint,
        resp: reqwest::Response,
        started: Instant,
    ) -> std::result::Result<T, (CallError, Retry)> {
        let status = resp.status().as_u16();
        let out = streamed::decode::<T>(resp).await;
        log_answer(ep, status, started);
        match out {
            Streamed::Decoded(t) => Ok(t),
            Streamed::Invalid(e, head) => Err((undecodable(ep, &e, &head), Retry::No)),
            Streamed::Broken(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                let cause = e.get_ref().and_then(|c| c.downcast_ref::<reqwest::Error>());
                Err(match cause {
                    Some(cause) => self.transport_error(cause),
                    None => (
                        CallError::Registry(RegistryError::Unreachable(format!(
                            "the connection to {} failed: {e}",
                            self.display
                        ))),
                        Retry::Unknown(None),
                    ),
                })
            }
        }
    }

    fn transport_error(&self, e: &reqwest::Error) -> (CallError, Retry) {
        let detail = error_chain(e);
        let lower = detail.to_ascii_lowercase();
        if lower.contains("certificate")
            || lower.contains("unknownissuer")
            || lower.contains("invalidcert")
        {
            // Not "unreachable" (exit 3, which callers may retry): the server
            // answered, and only a configuration change fixes this (exit 1).
            let msg = format!(
                "TLS handshake with {} failed: the server's certificate is not trusted ({detail}); \
                 set MLFLOW_TRACKING_SERVER_CERT_PATH to the CA bundle that signed it",
                self.display
            );
            return (CallError::Registry(RegistryError::Other(msg)), Retry::No);
        }
        if lower.contains("dns error") || lower.contains("failed to lookup address") {
            let msg = format!("cannot resolve the host of {}: {detail}", self.display);
            return (
                CallError::Registry(RegistryError::Unreachable(msg)),
                Retry::No,
            );
        }
        if e.is_connect() {
            let msg = format!("cannot connect to {}: {detail}", self.display);
            return (
                CallError::Registry(RegistryError::Unreachable(msg)),
                Retry::Safe(None),
            );
        }
        let msg = if e.is_timeout() {
            format!(
                "{} did not answer within {:?}: {detail}",
                self.display, self.policy.request_timeout
            )
        } else {
            format!("the connection to {} failed: {detail}", self.display)
        };
        (
            CallError::Registry(RegistryError::Unreachable(msg)),
            Retry::Unknown(None),
        )
    }
}

/// Refuses a request that would send the value of a secret modelsync was
/// given (anywhere in its path segment, query or body, except the one
/// field `ep` sends a secret in on purpose): nothing is sent.
fn refuse_leaks(ep: &Endpoint, segment: Option<&str>, payload: &Payload<'_>) -> Result<()> {
    let sent = match payload {
        Payload::Query(q) => q
            .iter()
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        Payload::Json(body) => match (ep.secret_field, body.as_object()) {
            (Some(field), Some(fields)) => {
                let mut fields = fields.clone();
                fields.remove(field);
                serde_json::Value::Object(fields).to_string()
            }
            _ => body.to_string(),
        },
    };
    let checked = crate::secret::check(segment.unwrap_or_default())
        .and_then(|()| crate::secret::check(&sent));
    checked.map_err(|leak| RegistryError::Leak {
        operation: ep.op.to_string(),
        leak,
    })
}

/// A response's body, read into one buffer of the announced length (a bulk
/// page is megabytes: `text()` would hold its chunks, then a joined copy,
/// then a decoded copy).
async fn body_bytes(mut resp: reqwest::Response) -> reqwest::Result<Vec<u8>> {
    const PREALLOCATE_MAX: u64 = 64 << 20;
    let announced = resp.content_length().unwrap_or(0).min(PREALLOCATE_MAX);
    let mut body = Vec::with_capacity(announced as usize);
    while let Some(chunk) = resp.chunk().await? {
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Decodes an answer straight from its bytes, which are dropped as soon
/// as it is decoded (before the caller folds it in).
fn decode<T: DeserializeOwned>(ep: &'static Endpoint, body: Vec<u8>) -> Result<T, CallError> {
    // Some answers are empty rather than `{}`.
    let body: &[u8] = if body.trim_ascii().is_empty() {
        b"{}"
    } else {
        &body
    };
    serde_json::from_slice(body).map_err(|e| undecodable(ep, &e, &body[..body.len().min(4096)]))
}

/// The debug line of one answered request (`-vv`: what each request cost).
fn log_answer(ep: &'static Endpoint, status: u16, started: Instant) {
    tracing::debug!(
        method = ep.verb.as_str(),
        endpoint = ep.path,
        status,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "mlflow request"
    );
}

/// An answer that is not the JSON expected, with the start of its body.
fn undecodable(ep: &'static Endpoint, e: &serde_json::Error, head: &[u8]) -> CallError {
    CallError::Registry(RegistryError::Other(format!(
        "{}: unexpected answer from {}: {e}; body starts {:?}",
        ep.op,
        ep.path,
        snippet(&String::from_utf8_lossy(head))
    )))
}

fn exhausted(err: CallError, attempts: u32, elapsed: Duration) -> CallError {
    let note = format!(
        " (gave up after {attempts} attempts in {:.1}s)",
        elapsed.as_secs_f64()
    );
    match err {
        CallError::Registry(RegistryError::Unreachable(m)) => {
            CallError::Registry(RegistryError::Unreachable(m + &note))
        }
        CallError::Api {
            ep,
            status,
            code,
            message,
        } => CallError::Api {
            ep,
            status,
            code,
            message: message + &note,
        },
        other => other,
    }
}

fn build_http(config: &MlflowConfig) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(concat!("modelsync/", env!("CARGO_PKG_VERSION")))
        .timeout(config.retry.request_timeout)
        .connect_timeout(config.retry.connect_timeout);
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).map_err(|e| {
            RegistryError::Invalid(format!("cannot read {what} {}: {e}", path.display()))
        })
    };
    match &config.tls {
        Some(TlsVerify::Insecure) => b = b.danger_accept_invalid_certs(true),
        Some(TlsVerify::ExtraCa(path)) => {
            let pem = read(path, "MLFLOW_TRACKING_SERVER_CERT_PATH")?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                RegistryError::Invalid(format!(
                    "MLFLOW_TRACKING_SERVER_CERT_PATH {}: {e}",
                    path.display()
                ))
            })?;
            for cert in certs {
                b = b.add_root_certificate(cert);
            }
        }
        None => {}
    }
    if let Some(path) = &config.client_cert {
        let pem = read(path, "MLFLOW_TRACKING_CLIENT_CERT_PATH")?;
        let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
            RegistryError::Invalid(format!(
                "MLFLOW_TRACKING_CLIENT_CERT_PATH {} must hold a PEM certificate and key: {e}",
                path.display()
            ))
        })?;
        b = b.identity(id);
    }
    b.build().map_err(|e| {
        RegistryError::Invalid(format!(
            "cannot set up the HTTP client: {}",
            error_chain(&e)
        ))
    })
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests;
