//! Copies between MLflow servers: reading the source version `from:` names
//! (its number, run, logged model, files and their digest — every file
//! hashed, `state::digest`), and the
//! target-side steps the executor (`apply/copy.rs`) sequences — the
//! experiment and run that hold the copy, its metrics and params, the
//! logged model (MLflow 3), and finishing them. Creates that are not
//! idempotent are found again by the copy's lineage tag after an ambiguous
//! failure, never blindly re-sent.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::MlflowRegistry;
use super::client::Payload;
use super::endpoints as ep;
use super::wire::{
    ModelVersion, ModelVersionPage, ModelVersionResponse, filter_literal, tags_json,
};
use crate::manifest::{FromRef, FromSelect};
use crate::registry::store::Store;
use crate::registry::{RegistryError, Result};
use crate::state::{CopySource, tags};

/// The run that holds a copy in the target.
#[derive(Debug, Clone)]
pub struct CopyRun {
    pub run_id: String,
    /// The run's artifact root.
    pub artifact_uri: String,
    pub tags: BTreeMap<String, String>,
}

/// Reads the version `from` names in `reg` (registry `name`). `Ok(Err)`
/// for what makes it uncopyable (no such model, alias, version or stage
/// holder; no files), naming the registry and the object; `Err` when the
/// registry cannot be read at all (unreachable: exit 3). The version is
/// mapped as every version read is (`wire::ModelVersion::into_live`), so
/// its logged model is known also where the server answers no `model_id`
/// (MLflow 3.17: only `source: models:/m-…` names it).
pub async fn read_source(
    reg: &MlflowRegistry,
    name: &str,
    from: &FromRef,
) -> Result<std::result::Result<CopySource, String>> {
    let whose = format!("registry {name} ({})", reg.client.display());
    let Some(version) = find_version(reg, from).await? else {
        return Ok(Err(format!(
            "{} of model {:?} does not exist in {whose}",
            from.select, from.model
        )));
    };
    let version = version
        .into_live()
        .map_err(|e| RegistryError::Other(format!("unexpected model version in {whose}: {e}")))?;
    let q = [
        ("name", from.model.clone()),
        ("version", version.version.to_string()),
    ];
    let uri: Value = reg
        .client
        .call(&ep::GET_DOWNLOAD_URI, Payload::Query(&q))
        .await?;
    let artifact_uri = str_of(&uri, "artifact_uri");
    let store = Store::open(&artifact_uri, Some(reg), &whose)?;
    let tree = match store.tree(&reg.hashes).await {
        Ok(t) => t,
        Err(RegistryError::NotFound(m) | RegistryError::Invalid(m)) => return Ok(Err(m)),
        Err(e) => return Err(e),
    };
    if tree.files.is_empty() {
        return Ok(Err(format!(
            "version {} of model {:?} in {whose} has no files at {artifact_uri}",
            version.version, from.model
        )));
    }
    let (metrics, params) = if version.run_id.is_empty() {
        Default::default()
    } else {
        run_data(reg, &version.run_id).await?
    };
    Ok(Ok(CopySource {
        registry: name.to_string(),
        uri: reg.client.display().to_string(),
        model: from.model.clone(),
        version: version.version,
        run_id: version.run_id,
        model_id: Some(version.model_id).filter(|m| !m.is_empty()),
        artifact_uri,
        digest: tree.digest,
        files: tree.files,
        metrics,
        params,
        description: version.description,
    }))
}

fn str_of(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The model version `from` selects, as MLflow answers it; `None` when
/// absent.
async fn find_version(reg: &MlflowRegistry, from: &FromRef) -> Result<Option<ModelVersion>> {
    let answer = match &from.select {
        FromSelect::Alias(alias) => {
            let q = [("name", from.model.clone()), ("alias", alias.clone())];
            reg.client
                .call::<ModelVersionResponse>(&ep::GET_ALIAS, Payload::Query(&q))
                .await
        }
        FromSelect::Version(n) => {
            let q = [("name", from.model.clone()), ("version", n.to_string())];
            reg.client
                .call::<ModelVersionResponse>(&ep::GET_VERSION, Payload::Query(&q))
                .await
        }
        FromSelect::Stage(stage) => {
            let body = json!({"name": from.model, "stages": [stage.as_str()]});
            return match reg
                .client
                .call::<ModelVersionPage>(&ep::GET_LATEST_VERSIONS, Payload::Json(&body))
                .await
            {
                Ok(page) => Ok(page.model_versions.into_iter().next()),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
    };
    match answer {
        // An answer without a version number names no version.
        Ok(r) => Ok(Some(r.model_version).filter(|v| v.version != 0)),
        Err(e) if e.is_not_found() || e.is("INVALID_PARAMETER_VALUE") => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A run's latest metrics and its params.
async fn run_data(
    reg: &MlflowRegistry,
    run_id: &str,
) -> Result<(BTreeMap<String, f64>, BTreeMap<String, String>)> {
    let q = [("run_id", run_id.to_owned())];
    let v: Value = match reg.client.call(&ep::GET_RUN, Payload::Query(&q)).await {
        Ok(v) => v,
        Err(e) if e.is_not_found() => return Ok(Default::default()),
        Err(e) => return Err(e.into()),
    };
    let data = &v["run"]["data"];
    let mut metrics = BTreeMap::new();
    for m in data["metrics"].as_array().into_iter().flatten() {
        let value = match &m["value"] {
            Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
            Value::String(s) => crate::state::parse_special_float(s),
            _ => continue,
        };
        metrics.insert(str_of(m, "key"), value);
    }
    let mut params = BTreeMap::new();
    for p in data["params"].as_array().into_iter().flatten() {
        params.insert(str_of(p, "key"), str_of(p, "value"));
    }
    Ok((metrics, params))
}

/// The experiment copies go to: its id, created (tagged as modelsync's)
/// when absent. A deleted one is refused with what to do (the planner
/// refuses it first; this is for one deleted since).
pub async fn ensure_experiment(reg: &MlflowRegistry, name: &str) -> Result<String> {
    match super::read::experiment_any(reg, name).await? {
        Some(e) if e.is_deleted() => Err(RegistryError::Invalid(format!(
            "the copy's {}",
            crate::naming::deleted_experiment_problem(name, &e.experiment_id)
        ))),
        Some(e) => Ok(e.experiment_id),
        None => {
            let t = BTreeMap::from([(tags::COPY_EXPERIMENT.to_string(), "true".to_string())]);
            super::write::create_experiment(reg, name, None, &t).await
        }
    }
}

/// The run in `experiment_id` carrying `lineage`, if any (the lowest id
/// when several do).
pub async fn find_run(
    reg: &MlflowRegistry,
    experiment_id: &str,
    lineage: &str,
) -> Result<Option<CopyRun>> {
    let lit = filter_literal(lineage)
        .ok_or_else(|| RegistryError::Invalid(format!("lineage {lineage:?} cannot be searched")))?;
    let body = json!({
        "experiment_ids": [experiment_id],
        "filter": format!("tags.`{}` = {lit}", tags::COPY_LINEAGE),
        "run_view_type": "ACTIVE_ONLY",
        "max_results": 10,
    });
    let v: Value = reg
        .client
        .call(&ep::SEARCH_RUNS, Payload::Json(&body))
        .await?;
    let mut runs: Vec<CopyRun> = v["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| CopyRun {
            run_id: str_of(&r["info"], "run_id"),
            artifact_uri: str_of(&r["info"], "artifact_uri"),
            tags: r["data"]["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| (str_of(t, "key"), str_of(t, "value")))
                .collect(),
        })
        .collect();
    runs.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    Ok(runs.into_iter().next())
}

/// Creates the copy's run (tagged with `lineage`); after an ambiguous
/// failure, the run is looked for by its lineage before anything else.
pub async fn create_run(
    reg: &MlflowRegistry,
    experiment_id: &str,
    lineage: &str,
    run_name: &str,
    now_ms: i64,
) -> Result<CopyRun> {
    let t = BTreeMap::from([
        (tags::COPY_LINEAGE.to_string(), lineage.to_string()),
        ("mlflow.runName".to_string(), run_name.to_string()),
    ]);
    let body = json!({
        "experiment_id": experiment_id,
        "run_name": run_name,
        "start_time": now_ms,
        "tags": tags_json(&t),
    });
    match reg
        .client
        .call::<Value>(&ep::CREATE_RUN, Payload::Json(&body))
        .await
    {
        Ok(v) => Ok(CopyRun {
            run_id: str_of(&v["run"]["info"], "run_id"),
            artifact_uri: str_of(&v["run"]["info"], "artifact_uri"),
            tags: t,
        }),
        Err(e) => {
            let e = e.into_registry();
            match find_run(reg, experiment_id, lineage).await? {
                Some(run) => Ok(run),
                None => Err(e),
            }
        }
    }
}

/// Logs the source run's metrics (linked to `model_id` on MLflow 3) and
/// params on the copy's run. Idempotent: the same values again.
pub async fn log_evidence(
    reg: &MlflowRegistry,
    run_id: &str,
    src: &CopySource,
    model_id: Option<&str>,
    now_ms: i64,
) -> Result<()> {
    let metrics: Vec<Value> = src
        .metrics
        .iter()
        .map(|(k, v)| {
            let value = if v.is_finite() {
                json!(v)
            } else {
                json!(v.to_string())
            };
            let mut m = json!({"key": k, "value": value, "timestamp": now_ms, "step": 0});
            if let Some(id) = model_id {
                m["model_id"] = json!(id);
            }
            m
        })
        .collect();
    let params: Vec<Value> = src
        .params
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    // MLflow takes at most 1000 metrics and 100 params per batch.
    for chunk in metrics.chunks(1000) {
        let body = json!({"run_id": run_id, "metrics": chunk});
        reg.client
            .call::<Value>(&ep::LOG_BATCH, Payload::Json(&body))
            .await?;
    }
    for chunk in params.chunks(100) {
        let body = json!({"run_id": run_id, "params": chunk});
        reg.client
            .call::<Value>(&ep::LOG_BATCH, Payload::Json(&body))
            .await?;
    }
    Ok(())
}

/// Sets a tag on the copy's run.
pub async fn set_run_tag(reg: &MlflowRegistry, run_id: &str, key: &str, value: &str) -> Result<()> {
    let body = json!({"run_id": run_id, "key": key, "value": value});
    reg.client
        .call::<Value>(&ep::SET_RUN_TAG, Payload::Json(&body))
        .await?;
    Ok(())
}

/// Marks the copy's run FINISHED.
pub async fn finish_run(reg: &MlflowRegistry, run_id: &str, now_ms: i64) -> Result<()> {
    let body = json!({"run_id": run_id, "status": "FINISHED", "end_time": now_ms});
    reg.client
        .call::<Value>(&ep::UPDATE_RUN, Payload::Json(&body))
        .await?;
    Ok(())
}

/// A logged model for the copy (MLflow 3): `(model_id, artifact_location)`;
/// `None` on a server without logged models (MLflow 2). The run records its
/// id (`modelsync.copy.model-id`) at once, so a resumed copy reuses it.
pub async fn create_logged_model(
    reg: &MlflowRegistry,
    experiment_id: &str,
    name: &str,
    run_id: &str,
    lineage: &str,
) -> Result<Option<(String, String)>> {
    let t = BTreeMap::from([(tags::COPY_LINEAGE.to_string(), lineage.to_string())]);
    let body = json!({
        "experiment_id": experiment_id,
        "name": name,
        "source_run_id": run_id,
        "tags": tags_json(&t),
    });
    let v: Value = match reg
        .client
        .call(&ep::CREATE_LOGGED_MODEL, Payload::Json(&body))
        .await
    {
        Ok(v) => v,
        Err(e) if e.is("ENDPOINT_NOT_FOUND") || e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let info = &v["model"]["info"];
    let id = str_of(info, "model_id");
    set_run_tag(reg, run_id, tags::COPY_MODEL_ID, &id).await?;
    Ok(Some((id, str_of(info, "artifact_uri"))))
}

/// A logged model's artifact location.
pub async fn logged_model_location(reg: &MlflowRegistry, model_id: &str) -> Result<String> {
    let v: Value = reg
        .client
        .call_at(&ep::GET_LOGGED_MODEL, Some(model_id), Payload::Query(&[]))
        .await?;
    Ok(str_of(&v["model"]["info"], "artifact_uri"))
}

/// Marks the copy's logged model READY.
pub async fn finalize_logged_model(reg: &MlflowRegistry, model_id: &str) -> Result<()> {
    let body = json!({"model_id": model_id, "status": "LOGGED_MODEL_READY"});
    reg.client
        .call_at::<Value>(
            &ep::FINALIZE_LOGGED_MODEL,
            Some(model_id),
            Payload::Json(&body),
        )
        .await?;
    Ok(())
}
