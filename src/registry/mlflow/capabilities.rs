//! What the server can do, from its release (`GET /version`, which every
//! MLflow server answers with its version as plain text), asked at most
//! once per registry instance (one per run) — the one record of it: a
//! feature whose endpoint the server then answers does not exist
//! (`ENDPOINT_NOT_FOUND`) is marked absent there, so it is not asked for
//! again.

use super::MlflowRegistry;
use crate::registry::Result;
use crate::state::capabilities::{Capabilities, MlflowVersion};

/// The capabilities, probed on first use.
pub async fn current(reg: &MlflowRegistry) -> Result<Capabilities> {
    let caps = reg
        .capabilities
        .get_or_try_init(|| async { probe(reg).await.map(std::sync::Mutex::new) })
        .await?;
    Ok(caps.lock().expect("capabilities lock").clone())
}

impl MlflowRegistry {
    /// Whether the server has MLflow 3's logged-models API.
    pub(super) async fn has_logged_models(&self) -> Result<bool> {
        Ok(current(self).await?.logged_models)
    }

    /// The server answered that the logged-models API does not exist (an
    /// MLflow 2 behind a server that reports another release): it is not
    /// asked again.
    pub(super) fn lacks_logged_models(&self) {
        if let Some(caps) = self.capabilities.get() {
            caps.lock().expect("capabilities lock").logged_models = false;
        }
    }
}

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
