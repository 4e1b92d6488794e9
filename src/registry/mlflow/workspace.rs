//! MLflow workspaces (3.10+, `mlflow server --enable-workspaces`): one
//! server shared by teams, each request naming its workspace in the
//! `X-MLFLOW-WORKSPACE` header.
//!
//! The workspace comes from `--workspace NAME` (carried to the registry as
//! the URI fragment `#workspace=NAME`) or MLflow's `MLFLOW_WORKSPACE`.
//! Before the first request that names it, the server is asked once
//! (`GET /api/3.0/mlflow/server-info`: `workspaces_enabled`, then
//! `GET /api/3.0/mlflow/workspaces/NAME`): a server without workspaces
//! (older servers ignore the header and would write to their only,
//! default, space) or without that workspace is a clear error before any
//! read or write, never a silent write elsewhere.

use super::client::Client;
use crate::registry::{RegistryError, Result};

/// The header MLflow's client sends (`mlflow/utils/workspace_utils.py`).
pub const HEADER: &str = "X-MLFLOW-WORKSPACE";

/// The workspace a registry URI's fragment names (`#workspace=NAME`).
pub fn from_fragment(fragment: Option<&str>) -> Option<String> {
    let name = fragment?.strip_prefix("workspace=")?;
    let name = super::client::percent_decode(name).trim().to_string();
    (!name.is_empty()).then_some(name)
}

/// Checks that the server has workspaces and the workspace `name`.
pub async fn check(client: &Client, name: &str) -> Result<()> {
    let server = client.display();
    let (status, body) = client.get_v3(&["server-info"]).await?;
    let enabled = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("workspaces_enabled").and_then(|e| e.as_bool()));
    match (status, enabled) {
        (200, Some(true)) => {}
        (200, _) => {
            return Err(RegistryError::Invalid(format!(
                "workspace {name:?} is named (--workspace or MLFLOW_WORKSPACE), but {server} \
                 does not have workspaces enabled (mlflow server --enable-workspaces); \
                 refusing to read or write its default space instead"
            )));
        }
        (404 | 405, _) => {
            return Err(RegistryError::Invalid(format!(
                "workspace {name:?} is named (--workspace or MLFLOW_WORKSPACE), but {server} \
                 has no workspaces (it answers no /api/3.0/mlflow/server-info: MLflow before \
                 3.10); refusing to read or write its only space instead"
            )));
        }
        (status, _) => {
            return Err(RegistryError::Other(format!(
                "{server} answered HTTP {status} to /api/3.0/mlflow/server-info; cannot check \
                 that it has workspace {name:?}"
            )));
        }
    }
    match client.get_v3(&["workspaces", name]).await?.0 {
        404 => Err(RegistryError::Invalid(format!(
            "workspace {name:?} does not exist on {server}; create it first (an MLflow admin: \
             MlflowClient().create_workspace({name:?}))"
        ))),
        // 200, or a caller who may not read workspaces (the requests
        // themselves will say if it may not use this one either).
        status => {
            tracing::debug!(workspace = name, status, "workspace checked");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments() {
        assert_eq!(
            from_fragment(Some("workspace=team-a")).as_deref(),
            Some("team-a")
        );
        assert_eq!(
            from_fragment(Some("workspace=team%20b")).as_deref(),
            Some("team b")
        );
        assert_eq!(from_fragment(Some("workspace=")), None);
        assert_eq!(from_fragment(Some("other")), None);
        assert_eq!(from_fragment(None), None);
    }
}
