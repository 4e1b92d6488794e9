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

use super::Client;
use crate::registry::mlflow::wire::ServerInfo;
use crate::registry::{RegistryError, Result};

/// The header MLflow's client sends (`mlflow/utils/workspace_utils.py`).
pub const HEADER: &str = "X-MLFLOW-WORKSPACE";

/// Checks that the server has workspaces and the workspace `name`.
pub async fn check(client: &Client, name: &str) -> Result<()> {
    let server = client.display();
    let (status, body) = client.get_v3(&["server-info"]).await?;
    let enabled = serde_json::from_str::<ServerInfo>(&body)
        .ok()
        .and_then(|info| info.workspaces_enabled);
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
