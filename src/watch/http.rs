//! The daemon's HTTP endpoints (axum): `/healthz`, `/readyz`, `/metrics`,
//! `/status`, the status page (`/`, `/models/NAME`, in `page.rs`), the
//! feeds (`/feeds/MODEL/ALIAS.json`, in `feed.rs`), and `POST /hooks/git`
//! (optionally HMAC-signed, GitHub style).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::engine::{Trigger, Triggers};
use super::status::Shared;

/// What the handlers need.
#[derive(Clone)]
pub struct App {
    pub shared: Shared,
    pub triggers: Triggers,
    /// The webhook secret; `None` accepts unsigned requests.
    pub secret: Option<Secret>,
}

/// A webhook secret; `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

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

async fn hook(State(app): State<App>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    if let Some(secret) = &app.secret {
        let sig = headers
            .get("x-hub-signature-256")
            .and_then(|v| v.to_str().ok());
        if !signature_valid(&secret.0, &body, sig) {
            tracing::warn!("webhook rejected: missing or invalid X-Hub-Signature-256");
            return (StatusCode::UNAUTHORIZED, "invalid signature\n");
        }
    }
    tracing::info!("webhook received; fetching now");
    app.triggers.fire(Trigger::Webhook);
    (StatusCode::ACCEPTED, "accepted\n")
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
