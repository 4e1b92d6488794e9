//! Copies between MLflow servers: reading the source version `from:` names
//! (its number, run, logged model, files and their digest — every file
//! hashed, `state::digest`), and [`CopyTarget`], the target-side steps the
//! executor (`apply/copy.rs`) sequences — the experiment and run that hold
//! the copy, its metrics and params, the logged model (MLflow 3), and
//! finishing them. Creates that are not idempotent are found again by the
//! copy's lineage tag after an ambiguous failure, never blindly re-sent.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::MlflowRegistry;
use super::client::Payload;
use super::endpoints as ep;
use super::wire::{
    DownloadUri, LoggedModelResponse, ModelVersion, ModelVersionPage, ModelVersionResponse, Run,
    RunPage, RunResponse, filter_literal, tags_json, tags_map,
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

/// The registry a copy goes into (`Registry::copy_target`: only MLflow
/// holds runs and artifact stores), with the steps the executor sequences.
#[derive(Clone, Copy)]
pub struct CopyTarget<'a>(pub(super) &'a MlflowRegistry);

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
    let artifact_uri = reg
        .client
        .call::<DownloadUri>(&ep::GET_DOWNLOAD_URI, Payload::Query(&q))
        .await?
        .artifact_uri;
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
    let run = match reg
        .client
        .call::<RunResponse>(&ep::GET_RUN, Payload::Query(&q))
        .await
    {
        Ok(r) => r.run,
        Err(e) if e.is_not_found() => return Ok(Default::default()),
        Err(e) => return Err(e.into()),
    };
    let params = tags_map(run.data.params);
    let metrics = run
        .data
        .metrics
        .into_iter()
        .map(|m| (m.key, m.value))
        .collect();
    Ok((metrics, params))
}

/// What a run records of a copy.
fn copy_run(run: Run, tags: BTreeMap<String, String>) -> CopyRun {
    CopyRun {
        run_id: run.id().to_string(),
        artifact_uri: run.info.artifact_uri,
        tags,
    }
}

impl<'a> CopyTarget<'a> {
    /// The server URL, for messages.
    pub fn display(&self) -> &'a str {
        self.0.display()
    }

    /// The artifact store at `uri` in this registry; `whose` names it in
    /// messages.
    pub fn store(&self, uri: &str, whose: &str) -> Result<Store<'a>> {
        Store::open(uri, Some(self.0), whose)
    }

    /// The experiment copies go to: its id, created (tagged as modelsync's)
    /// when absent. A deleted one is refused with what to do (the planner
    /// refuses it first; this is for one deleted since).
    pub async fn ensure_experiment(&self, name: &str) -> Result<String> {
        let reg = self.0;
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
    pub async fn find_run(&self, experiment_id: &str, lineage: &str) -> Result<Option<CopyRun>> {
        let lit = filter_literal(lineage).ok_or_else(|| {
            RegistryError::Invalid(format!("lineage {lineage:?} cannot be searched"))
        })?;
        let body = json!({
            "experiment_ids": [experiment_id],
            "filter": format!("tags.`{}` = {lit}", tags::COPY_LINEAGE),
            "run_view_type": "ACTIVE_ONLY",
            "max_results": 10,
        });
        let page: RunPage = self
            .0
            .client
            .call(&ep::SEARCH_RUNS, Payload::Json(&body))
            .await?;
        let mut runs: Vec<CopyRun> = page
            .runs
            .into_iter()
            .map(|mut r| {
                let tags = tags_map(std::mem::take(&mut r.data.tags));
                copy_run(r, tags)
            })
            .collect();
        runs.sort_by(|a, b| a.run_id.cmp(&b.run_id));
        Ok(runs.into_iter().next())
    }

    /// Creates the copy's run (tagged with `lineage`); after an ambiguous
    /// failure, the run is looked for by its lineage before anything else.
    pub async fn create_run(
        &self,
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
        match self
            .0
            .client
            .call::<RunResponse>(&ep::CREATE_RUN, Payload::Json(&body))
            .await
        {
            Ok(r) => Ok(copy_run(r.run, t)),
            Err(e) => {
                let e = e.into_registry();
                match self.find_run(experiment_id, lineage).await? {
                    Some(run) => Ok(run),
                    None => Err(e),
                }
            }
        }
    }

    /// Logs the source run's metrics (linked to `model_id` on MLflow 3) and
    /// params on the copy's run. Idempotent: the same values again.
    pub async fn log_evidence(
        &self,
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
            self.0
                .client
                .call::<Value>(&ep::LOG_BATCH, Payload::Json(&body))
                .await?;
        }
        for chunk in params.chunks(100) {
            let body = json!({"run_id": run_id, "params": chunk});
            self.0
                .client
                .call::<Value>(&ep::LOG_BATCH, Payload::Json(&body))
                .await?;
        }
        Ok(())
    }

    /// Sets a tag on the copy's run.
    pub async fn set_run_tag(&self, run_id: &str, key: &str, value: &str) -> Result<()> {
        let body = json!({"run_id": run_id, "key": key, "value": value});
        self.0
            .client
            .call::<Value>(&ep::SET_RUN_TAG, Payload::Json(&body))
            .await?;
        Ok(())
    }

    /// Marks the copy's run FINISHED.
    pub async fn finish_run(&self, run_id: &str, now_ms: i64) -> Result<()> {
        let body = json!({"run_id": run_id, "status": "FINISHED", "end_time": now_ms});
        self.0
            .client
            .call::<Value>(&ep::UPDATE_RUN, Payload::Json(&body))
            .await?;
        Ok(())
    }

    /// A logged model for the copy (MLflow 3): `(model_id, artifact_location)`;
    /// `None` on a server without logged models (MLflow 2). The run records its
    /// id (`modelsync.copy.model-id`) at once, so a resumed copy reuses it.
    pub async fn create_logged_model(
        &self,
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
        let info = match self
            .0
            .client
            .call::<LoggedModelResponse>(&ep::CREATE_LOGGED_MODEL, Payload::Json(&body))
            .await
        {
            Ok(r) => r.model.info,
            Err(e) if e.is("ENDPOINT_NOT_FOUND") || e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        self.set_run_tag(run_id, tags::COPY_MODEL_ID, &info.model_id)
            .await?;
        Ok(Some((info.model_id, info.artifact_uri)))
    }

    /// A logged model's artifact location.
    pub async fn logged_model_location(&self, model_id: &str) -> Result<String> {
        let r: LoggedModelResponse = self
            .0
            .client
            .call_at(&ep::GET_LOGGED_MODEL, Some(model_id), Payload::Query(&[]))
            .await?;
        Ok(r.model.info.artifact_uri)
    }

    /// Marks the copy's logged model READY.
    pub async fn finalize_logged_model(&self, model_id: &str) -> Result<()> {
        let body = json!({"model_id": model_id, "status": "LOGGED_MODEL_READY"});
        self.0
            .client
            .call_at::<Value>(
                &ep::FINALIZE_LOGGED_MODEL,
                Some(model_id),
                Payload::Json(&body),
            )
            .await?;
        Ok(())
    }
}
