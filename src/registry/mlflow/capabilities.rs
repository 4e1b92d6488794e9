//! What the server can do, from its release (`GET /version`, which every
//! MLflow server answers with its version as plain text), asked at most
//! once per registry instance (one per run).

use super::MlflowRegistry;
use crate::registry::Result;
use crate::state::capabilities::{Capabilities, MlflowVersion};

/// The server's capabilities. A server that answers no version (not
/// MLflow's own server) is taken to have everything; one that cannot be
/// reached is an error.
pub async fn probe(reg: &MlflowRegistry) -> Result<Capabilities> {
    let server = reg.display().to_string();
    let resp = reg
        .client
        .raw(reqwest::Method::GET, "version", true)
        .send()
        .await
        .map_err(|e| reg.client.send_error(&e))?;
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    let version = (status == 200)
        .then(|| MlflowVersion::parse(&body))
        .flatten();
    tracing::debug!(status, version = body.trim(), "server version");
    let caps = match version {
        Some(v) => v.capabilities(),
        None => Capabilities::unknown(&server),
    };
    reg.client.set_permission_api(caps.permission_api);
    Ok(caps)
}
