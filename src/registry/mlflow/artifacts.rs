//! Where a version's bytes are on an MLflow server, and their digest.
//!
//! A registered version's storage location is what
//! `model-versions/get-download-uri` answers (its `storage_location`, else
//! its `source`); a `runs:/<run>/<path>` answer is followed to the run's
//! artifact root, a `models:/m-…` one to the logged model's artifact
//! location (MLflow 3.17's `model-versions/get` names the logged model
//! only in `source`). Before a version exists, a source the registry
//! resolved (`runs:/` to a logged model) is read where MLflow said its
//! files are; a host path a manifest wrote is not read until MLflow has
//! registered it (MLflow checks a local source against its run's artifact
//! root). The files are read through [`crate::registry::store`].

use serde_json::Value;

use super::MlflowRegistry;
use super::client::Payload;
use super::endpoints as ep;
use super::read::get_run;
use super::sources::parse_runs_uri;
use crate::registry::store::Store;
use crate::registry::{RegistryError, Result};
use crate::state::artifacts::{ArtifactTree, is_host_path};
use crate::state::{LiveVersion, ResolvedSource};

/// The storage location of `version` of `model`.
pub async fn locate(reg: &MlflowRegistry, model: &str, version: &LiveVersion) -> Result<String> {
    let q = [
        ("name", model.to_string()),
        ("version", version.version.to_string()),
    ];
    let v: Value = reg
        .client
        .call(&ep::GET_DOWNLOAD_URI, Payload::Query(&q))
        .await?;
    let uri = v
        .get("artifact_uri")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let uri = if uri.is_empty() { &version.source } else { uri };
    follow(reg, uri).await
}

/// `runs:/…` and `models:/m-…` followed to the location behind them;
/// anything else as it is.
async fn follow(reg: &MlflowRegistry, uri: &str) -> Result<String> {
    if let Some((run_id, path)) = parse_runs_uri(uri) {
        let run = get_run(reg, run_id)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("run {run_id} of {uri}")))?;
        let root = run.info.artifact_uri.trim_end_matches('/').to_string();
        return Ok(format!("{root}/{path}"));
    }
    if let Some(id) = uri
        .strip_prefix("models:/")
        .filter(|id| id.starts_with("m-"))
    {
        let v: Value = reg
            .client
            .call_at(&ep::GET_LOGGED_MODEL, Some(id), Payload::Query(&[]))
            .await?;
        let location = v["model"]["info"]["artifact_uri"].as_str().unwrap_or("");
        if location.is_empty() {
            return Err(RegistryError::NotFound(format!(
                "the artifact location of logged model {id}"
            )));
        }
        return Ok(location.to_string());
    }
    Ok(uri.to_string())
}

/// The bytes behind a registered version: `Ok(Err(why))` when the version
/// or its store cannot be read (no such version, no access to the store).
pub async fn version_tree(
    reg: &MlflowRegistry,
    model: &str,
    version: &LiveVersion,
) -> Result<std::result::Result<ArtifactTree, String>> {
    let location = match locate(reg, model, version).await {
        Ok(l) => l,
        Err(RegistryError::NotFound(what)) => return Ok(Err(format!("not found: {what}"))),
        Err(e) => return Err(e),
    };
    Ok(read(reg, location).await)
}

/// The bytes a registration of `declared` will point at, read before the
/// version exists: where the registry resolved it to (`resolved`), or a
/// `runs:/`/`models:/m-…` source followed, or a store the source names —
/// never a host path the manifest wrote.
pub async fn source_tree(
    reg: &MlflowRegistry,
    declared: &str,
    resolved: Option<&ResolvedSource>,
) -> Result<std::result::Result<ArtifactTree, String>> {
    let location = match resolved.and_then(|r| r.location.clone()) {
        Some(l) => l,
        None if is_host_path(declared) => {
            return Ok(Err(format!(
                "{declared} is a path on this machine written in a manifest: it is read only \
                 once MLflow has registered it (MLflow checks it against the run's artifacts)"
            )));
        }
        None => match follow(reg, declared).await {
            Ok(l) => l,
            Err(RegistryError::NotFound(what)) => return Ok(Err(format!("not found: {what}"))),
            Err(e) => return Err(e),
        },
    };
    Ok(read(reg, location).await)
}

/// The files at `location` and their digest, or why they cannot be read.
pub async fn read(
    reg: &MlflowRegistry,
    location: String,
) -> std::result::Result<ArtifactTree, String> {
    let whose = format!("the registry ({})", reg.display());
    let tree = async {
        if let Some(why) = Store::failed_earlier(&location, &reg.hashes) {
            return Err(RegistryError::Other(why));
        }
        let store = Store::open(&location, Some(reg), &whose)?;
        store.tree(&reg.hashes).await
    }
    .await
    .map_err(|e| e.to_string())?;
    if tree.files.is_empty() {
        return Err(format!("there are no files at {location} ({whose})"));
    }
    Ok(ArtifactTree { location, tree })
}
