//! More of MLflow's answers: those of copies (a version's download URI, a
//! search of runs), the daemon's webhook, and the workspace check. Beside
//! `wire.rs`, under the same rules: defaults for what MLflow omits,
//! unknown fields ignored.

use serde::Deserialize;

use super::Run;

/// `{"artifact_uri": …}` from `model-versions/get-download-uri`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DownloadUri {
    pub artifact_uri: String,
}

/// One page of `runs/search`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RunPage {
    pub runs: Vec<Run>,
    pub next_page_token: String,
}

/// A registry webhook (MLflow 3.3+): only what finding the daemon's own
/// by name needs.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Webhook {
    pub webhook_id: String,
    pub name: String,
}

/// One page of `webhooks` (list).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WebhookPage {
    pub webhooks: Vec<Webhook>,
    pub next_page_token: String,
}

/// `{"webhook": …}` (create, update).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WebhookResponse {
    pub webhook: Webhook,
}

/// `GET /api/3.0/mlflow/server-info` (MLflow 3.10+).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ServerInfo {
    /// Absent on a server that does not say.
    pub workspaces_enabled: Option<bool>,
}
