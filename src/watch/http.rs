//! The daemon's HTTP endpoints (axum): `/healthz`, `/readyz`, `/metrics`,
//! `/status`, the status page (`/`, `/models/NAME`, in `page.rs`), the
//! feeds (`/feeds/MODEL/ALIAS.json`, in `feed.rs`), and `POST /hooks/git`
//! (optionally HMAC-signed, GitHub style; a body over [`GIT_HOOK_LIMIT`] is
//! answered 413, and never held in memory: [`read_body`]).
//!
//! Every answer passes [`refuse_leaks`] on its way out: one that would
//! show the value of a secret modelsync was given is withheld (500).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::App;
use super::engine::Trigger;

/// The largest body `POST /hooks/git` reads (GitHub's push events are
/// far smaller; one larger is answered 413 and the next poll fetches).
pub const GIT_HOOK_LIMIT: usize = 1024 * 1024;

/// How much of an oversized body is read and dropped before the 413, so a
/// client that sends it all before reading the answer gets that answer
/// (a larger one is cut off: the connection closes).
pub const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// The router with every endpoint.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/", get(super::page::index))
        .route("/models/{name}", get(super::page::model))
        .route("/feeds/{model}/{file}", get(super::feed::get))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/hooks/git", post(hook))
        .with_state(app)
}

/// Alive; with `--leader-election`, also: the election engine answered
/// within the last TTL.
async fn healthz(State(app): State<App>) -> impl IntoResponse {
    let contact = app.shared.lock().status.election_contact;
    match contact {
        Some((at, ttl)) if crate::clock::wall_ms() - at > ttl => {
            let secs = (crate::clock::wall_ms() - at) / 1000;
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the leader-election engine has not answered for {secs} s\n"),
            )
        }
        _ => (StatusCode::OK, "ok\n".to_string()),
    }
}

async fn readyz(State(app): State<App>) -> impl IntoResponse {
    if app.shared.lock().status.ready {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(app): State<App>) -> impl IntoResponse {
    let body = app.shared.lock().metrics.render();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

async fn status(State(app): State<App>) -> impl IntoResponse {
    let status = app.shared.lock().status.clone();
    axum::Json(status)
}

async fn hook(State(app): State<App>, headers: HeaderMap, body: Body) -> (StatusCode, String) {
    let body = match read_body(&headers, body, GIT_HOOK_LIMIT).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    if let Some(secret) = &app.secret {
        let sig = headers
            .get("x-hub-signature-256")
            .and_then(|v| v.to_str().ok());
        if !signature_valid(secret.expose().as_bytes(), &body, sig) {
            tracing::warn!("webhook rejected: missing or invalid X-Hub-Signature-256");
            return (StatusCode::UNAUTHORIZED, "invalid signature\n".into());
        }
    }
    tracing::info!("webhook received; fetching now");
    app.triggers.fire(Trigger::Webhook);
    (StatusCode::ACCEPTED, "accepted\n".into())
}

/// A webhook's body, at most `limit` bytes: a larger one is 413 — read to
/// its end and dropped (up to [`DRAIN_LIMIT`]; one declared larger is not
/// read at all), never held in memory.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, (StatusCode, String)> {
    use futures_util::StreamExt;
    let too_large = || {
        tracing::warn!(limit, "webhook rejected: the body is too large");
        let why = format!("the body is larger than {limit} bytes\n");
        Err((StatusCode::PAYLOAD_TOO_LARGE, why))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return too_large();
    }
    let mut stream = body.into_data_stream();
    let (mut kept, mut seen) = (Vec::new(), 0usize);
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return Err((
                StatusCode::BAD_REQUEST,
                "the body could not be read\n".into(),
            ));
        };
        seen = seen.saturating_add(chunk.len());
        if seen > DRAIN_LIMIT {
            return too_large();
        }
        if seen <= limit {
            kept.extend_from_slice(&chunk);
        }
    }
    if seen > limit {
        return too_large();
    }
    Ok(Bytes::from(kept))
}

/// The last step of every answer: withheld (500, the secret named by its
/// variable) when its body would show the value of a secret.
pub async fn refuse_leaks(resp: Response) -> Response {
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    match crate::secret::check(&String::from_utf8_lossy(&bytes)) {
        Ok(()) => Response::from_parts(parts, Body::from(bytes)),
        Err(leak) => {
            tracing::error!("answer withheld: it would show {leak}");
            let why = format!("withheld: this answer would show {leak}\n");
            (StatusCode::INTERNAL_SERVER_ERROR, why).into_response()
        }
    }
}

/// Checks `sha256=<hex>` against the HMAC-SHA256 of `body` (constant time).
pub fn signature_valid(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Some(sig) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Hex HMAC-SHA256 of `body` as GitHub sends it (`sha256=<hex>`).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_example_signature() {
        // The example from GitHub's webhook documentation.
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(signature_valid(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            Some(sig)
        ));
        assert_eq!(sign(b"It's a Secret to Everybody", b"Hello, World!"), sig);
    }

    #[test]
    fn rejects_wrong_missing_or_malformed_signatures() {
        let good = sign(b"s3cret", b"{}");
        assert!(signature_valid(b"s3cret", b"{}", Some(&good)));
        assert!(!signature_valid(b"other", b"{}", Some(&good)));
        assert!(!signature_valid(b"s3cret", b"{ }", Some(&good)));
        assert!(!signature_valid(b"s3cret", b"{}", None));
        assert!(!signature_valid(b"s3cret", b"{}", Some("sha256=zz")));
        assert!(!signature_valid(b"s3cret", b"{}", Some("sha1=abcd")));
        assert!(!signature_valid(
            b"s3cret",
            b"{}",
            Some(&good[..good.len() - 2])
        ));
    }
}
