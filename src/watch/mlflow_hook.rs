//! `POST /hooks/mlflow`: MLflow's own webhooks (3.3+, SQL backends) trigger
//! a reconcile, so a hand-moved alias is healed (or reported, with
//! `--drift warn`) within seconds instead of at the next resync.
//!
//! MLflow signs each delivery (`mlflow/webhooks/delivery.py`):
//! `X-MLflow-Signature: v1,<base64 HMAC-SHA256 of "<delivery id>.<timestamp>.<body>">`
//! with `X-MLflow-Delivery-Id` (a UUID) and `X-MLflow-Timestamp` (Unix
//! seconds). A delivery is refused (401) when the signature is missing or
//! wrong, when its timestamp is more than five minutes from the wall clock,
//! or when its delivery id was already accepted (a replay). The endpoint
//! exists only with `--mlflow-webhook-secret-env`; the secret is never
//! logged. A body over [`BODY_LIMIT`] is answered 413 and never held in
//! memory (MLflow's deliveries are a few KiB; `http::read_body`). Polling stays: MLflow delivers best-effort and fires nothing for
//! stage transitions or deletions.
//!
//! A delivery names its model (`data.name`): the daemon reconciles just
//! that model (a targeted pass, `watch/scope.rs`), and a burst of
//! deliveries coalesces per model (`engine.rs`). A name the manifests do
//! not declare reconciles nothing; a delivery naming no model reconciles
//! everything.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::engine::{Trigger, Triggers};
use crate::secret::Secret;

/// The largest body `POST /hooks/mlflow` reads.
pub const BODY_LIMIT: usize = 64 * 1024;

/// How far a delivery's timestamp may be from the wall clock.
pub const MAX_SKEW_SECS: i64 = 300;

/// The events the daemon's own webhook subscribes to: every registry event
/// MLflow fires for models and for prompts (`entity`, `action`; MLflow
/// fires the `PROMPT_*` ones instead of the model ones for a prompt).
pub const EVENTS: [(&str, &str); 12] = [
    ("REGISTERED_MODEL", "CREATED"),
    ("MODEL_VERSION", "CREATED"),
    ("MODEL_VERSION_TAG", "SET"),
    ("MODEL_VERSION_TAG", "DELETED"),
    ("MODEL_VERSION_ALIAS", "CREATED"),
    ("MODEL_VERSION_ALIAS", "DELETED"),
    ("PROMPT", "CREATED"),
    ("PROMPT_VERSION", "CREATED"),
    ("PROMPT_VERSION_TAG", "SET"),
    ("PROMPT_VERSION_TAG", "DELETED"),
    ("PROMPT_ALIAS", "CREATED"),
    ("PROMPT_ALIAS", "DELETED"),
];

/// The endpoint's state.
#[derive(Clone)]
pub struct Hook {
    secret: Secret,
    triggers: Triggers,
    /// Accepted delivery id -> its timestamp (pruned once too old to be
    /// accepted again anyway).
    seen: Arc<Mutex<HashMap<String, i64>>>,
}

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Unsigned,
    BadSignature,
    Stale,
    Replayed,
}

impl Refusal {
    fn message(&self) -> &'static str {
        match self {
            Refusal::Unsigned => {
                "missing X-MLflow-Signature, X-MLflow-Delivery-Id or X-MLflow-Timestamp"
            }
            Refusal::BadSignature => "invalid X-MLflow-Signature",
            Refusal::Stale => "X-MLflow-Timestamp is more than 5 minutes away",
            Refusal::Replayed => "X-MLflow-Delivery-Id already delivered",
        }
    }
}

/// The router for `POST /hooks/mlflow`, merged into the daemon's.
pub fn router(secret: Secret, triggers: Triggers) -> Router {
    let hook = Hook {
        secret,
        triggers,
        seen: Arc::default(),
    };
    Router::new()
        .route("/hooks/mlflow", post(handle))
        .with_state(hook)
}

async fn handle(State(hook): State<Hook>, headers: HeaderMap, body: Body) -> (StatusCode, String) {
    let body = match super::http::read_body(&headers, body, BODY_LIMIT).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let now = crate::clock::wall_ms() / 1000;
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    let verdict = verify(
        hook.secret.expose().as_bytes(),
        header("x-mlflow-delivery-id"),
        header("x-mlflow-timestamp"),
        header("x-mlflow-signature"),
        &body,
        now,
    )
    .and_then(|(id, ts)| remember(&hook.seen, id, ts, now));
    if let Err(why) = verdict {
        tracing::warn!("MLflow webhook rejected: {}", why.message());
        return (StatusCode::UNAUTHORIZED, format!("{}\n", why.message()));
    }
    let event = describe(&body);
    match model_of(&body) {
        Some(model) => {
            tracing::info!(event = %event, "MLflow webhook received; reconciling its model now");
            hook.triggers.fire_for(Trigger::RegistryEvent, model);
        }
        None => {
            tracing::info!(event = %event, "MLflow webhook received, naming no model; reconciling everything now");
            hook.triggers.fire(Trigger::RegistryEvent);
        }
    }
    (StatusCode::ACCEPTED, "accepted\n".into())
}

/// Creates or updates the daemon's webhook `name` on the MLflow server at
/// `registry_uri`, delivering to `url` with `secret`, for [`EVENTS`].
pub async fn register(
    registry_uri: &str,
    name: &str,
    url: &str,
    secret: &Secret,
) -> anyhow::Result<()> {
    use anyhow::Context;

    use crate::registry::{self, OpenOptions, WebhookChange, WebhookSpec};
    let reg = registry::open(registry_uri, &OpenOptions { write: false })
        .await
        .context("opening the registry to register the MLflow webhook")?;
    let spec = WebhookSpec {
        name,
        url,
        events: &EVENTS,
        secret: secret.expose(),
    };
    let change = reg
        .ensure_webhook(&spec)
        .await
        .with_context(|| format!("registering MLflow webhook {name:?} for {url}"))?;
    match change {
        WebhookChange::Created(id) => {
            tracing::info!(webhook = name, id = %id, url, "MLflow webhook created")
        }
        WebhookChange::Updated(id) => {
            tracing::info!(webhook = name, id = %id, url, "MLflow webhook updated")
        }
    }
    Ok(())
}

/// Checks one delivery's headers and signature at `now` (Unix seconds);
/// its delivery id and timestamp when valid.
pub fn verify(
    secret: &[u8],
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(String, i64), Refusal> {
    let (Some(id), Some(ts), Some(sig)) = (id, timestamp, signature) else {
        return Err(Refusal::Unsigned);
    };
    let ts_value: i64 = ts.trim().parse().map_err(|_| Refusal::BadSignature)?;
    let expected = sign(secret, id, ts, body);
    let matches = sig
        .split(' ')
        .any(|s| constant_time_eq(s.trim().as_bytes(), expected.as_bytes()));
    if !matches {
        return Err(Refusal::BadSignature);
    }
    if (now - ts_value).abs() > MAX_SKEW_SECS {
        return Err(Refusal::Stale);
    }
    Ok((id.to_string(), ts_value))
}

/// Records an accepted delivery id; a replay when it was seen before.
fn remember(
    seen: &Mutex<HashMap<String, i64>>,
    id: String,
    ts: i64,
    now: i64,
) -> Result<(), Refusal> {
    let mut seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    seen.retain(|_, t| (now - *t).abs() <= 2 * MAX_SKEW_SECS);
    if seen.contains_key(&id) {
        return Err(Refusal::Replayed);
    }
    seen.insert(id, ts);
    Ok(())
}

/// MLflow's signature header value: `v1,<base64 HMAC-SHA256>` of
/// `"<delivery id>.<timestamp>.<body>"`.
pub fn sign(secret: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", base64(&mac.finalize().into_bytes()))
}

/// `entity.action (name)` of a delivery, for the log.
fn describe(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("?").to_string();
    let name = v
        .get("data")
        .and_then(|d| d.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or("?");
    format!("{}.{} ({name})", s("entity"), s("action"))
}

/// The registered model (or prompt) a delivery is about: `data.name` of
/// every model and prompt event MLflow sends (`mlflow/webhooks/types.py`);
/// `None` for anything else (then the daemon reconciles everything).
pub fn model_of(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let name = v.get("data")?.get("name")?.as_str()?;
    (!name.is_empty()).then(|| name.to_string())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_names_its_model() {
        let alias = br#"{"entity": "model_version_alias", "action": "created", "timestamp": "2025-07-31T08:27:32.080217+00:00", "data": {"name": "fraud", "alias": "champion", "version": "2"}}"#;
        assert_eq!(model_of(alias), Some("fraud".to_string()));
        let prompt = br#"{"entity": "prompt_alias", "action": "deleted", "data": {"name": "summarize", "alias": "prod"}}"#;
        assert_eq!(model_of(prompt), Some("summarize".to_string()));
        for none in [
            &br#"{"entity": "budget_policy", "action": "exceeded", "data": {}}"#[..],
            br#"{"data": {"name": ""}}"#,
            br#"{"data": {"name": 3}}"#,
            b"not json",
        ] {
            assert_eq!(model_of(none), None);
        }
    }

    #[test]
    fn base64_matches_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn signature_as_mlflow_computes_it() {
        // mlflow.webhooks.delivery._generate_hmac_signature("s3cret", "d-1", "1700000000", "{}").
        assert_eq!(
            sign(b"s3cret", "d-1", "1700000000", b"{}"),
            "v1,ffAlUwnIkZyROfdeDakYdx/QELuJ1gjEmzbfJrcVam0="
        );
    }

    #[test]
    fn refuses_forged_stale_and_replayed_deliveries() {
        let now = 1_700_000_000;
        let sig = sign(b"k", "d-1", "1700000000", b"{}");
        let ok = verify(
            b"k",
            Some("d-1"),
            Some("1700000000"),
            Some(&sig),
            b"{}",
            now,
        );
        assert_eq!(ok, Ok(("d-1".to_string(), now)));
        let forged = verify(
            b"other",
            Some("d-1"),
            Some("1700000000"),
            Some(&sig),
            b"{}",
            now,
        );
        assert_eq!(forged, Err(Refusal::BadSignature));
        let tampered = verify(
            b"k",
            Some("d-1"),
            Some("1700000000"),
            Some(&sig),
            b"{ }",
            now,
        );
        assert_eq!(tampered, Err(Refusal::BadSignature));
        let stale = verify(
            b"k",
            Some("d-1"),
            Some("1700000000"),
            Some(&sig),
            b"{}",
            now + 301,
        );
        assert_eq!(stale, Err(Refusal::Stale));
        assert_eq!(
            verify(b"k", None, Some("1700000000"), Some(&sig), b"{}", now),
            Err(Refusal::Unsigned)
        );
        let seen = Mutex::new(HashMap::new());
        assert_eq!(remember(&seen, "d-1".into(), now, now), Ok(()));
        assert_eq!(
            remember(&seen, "d-1".into(), now, now + 10),
            Err(Refusal::Replayed)
        );
        assert_eq!(remember(&seen, "d-2".into(), now, now + 10), Ok(()));
    }
}
