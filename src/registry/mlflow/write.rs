//! Writes, each checked against its answer so that a silent no-op is an
//! error. There are no per-write read-backs (an alias set or deleted answers
//! `{}`): the pass's final verification, a bulk snapshot, reports a write
//! that did not take.
//!
//! Creates (`registered-models/create`, `model-versions/create`,
//! `experiments/create`) are not idempotent: after an ambiguous failure
//! they re-read first and only re-send when the object is really absent
//! (`Converge`); a version create sent again then waits for the first
//! attempt landing late (`twins.rs`). Everything else is idempotent and
//! retried by the client.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};

use super::MlflowRegistry;
use super::client::Payload;
use super::endpoints as ep;
use super::errors::CallError;
use super::read::experiment_by_name;
use super::sources::parse_runs_uri;
use super::twins;
use super::wire::{
    CreateExperimentResponse, Empty, ModelVersionResponse, RegisteredModelResponse, tags_json,
};
use crate::registry::{NewVersion, RegistryError, Result};
use crate::state::tags;
use crate::state::{LiveVersion, Stage, VersionStatus};

/// `registered-models/create`.
pub async fn create_model(
    reg: &MlflowRegistry,
    name: &str,
    description: Option<&str>,
    model_tags: &BTreeMap<String, String>,
) -> Result<()> {
    let mut body = json!({ "name": name, "tags": tags_json(model_tags) });
    if let Some(d) = description {
        body["description"] = json!(d);
    }
    let mut converge = Converge::new(reg);
    let created = loop {
        match reg
            .client
            .call::<RegisteredModelResponse>(&ep::CREATE_MODEL, Payload::Json(&body))
            .await
        {
            Ok(r) => break r.registered_model.name,
            Err(e) => {
                let e = converge.failed(e)?;
                if let Some(m) = super::read::get_model(reg, name).await? {
                    break m.name;
                }
                converge.retry(e).await?;
            }
        }
    };
    check(created == name, || {
        format!("registered-models/create answered for {created:?}, not {name:?}")
    })
}

/// `registered-models/update`, always sending the description (an omitted
/// one would be cleared).
pub async fn update_model_description(
    reg: &MlflowRegistry,
    name: &str,
    description: &str,
) -> Result<()> {
    let body = json!({ "name": name, "description": description });
    let r: RegisteredModelResponse = call(reg, &ep::UPDATE_MODEL, &body).await?;
    check(r.registered_model.description == description, || {
        format!("the description of model {name:?} did not change")
    })
}

pub async fn set_model_tag(reg: &MlflowRegistry, name: &str, key: &str, value: &str) -> Result<()> {
    let body = json!({ "name": name, "key": key, "value": value });
    call::<Empty>(reg, &ep::SET_MODEL_TAG, &body)
        .await
        .map(drop)
}

pub async fn delete_model_tag(reg: &MlflowRegistry, name: &str, key: &str) -> Result<()> {
    let body = json!({ "name": name, "key": key });
    call::<Empty>(reg, &ep::DELETE_MODEL_TAG, &body)
        .await
        .map(drop)
}

/// Registers `new` unless a version its declared source is exists
/// ([`twins::registered`]), then waits until it is READY.
pub async fn create_version(
    reg: &MlflowRegistry,
    model: &str,
    new: &NewVersion,
) -> Result<LiveVersion> {
    if let Some(found) = twins::registered(reg, model, new).await? {
        tracing::debug!(
            model,
            version = found.version,
            "version with this source exists; not registering again"
        );
        return wait_ready(reg, model, found).await;
    }
    let (created, abandoned) = send_create_version(reg, model, new).await?;
    let created = if abandoned > 0 {
        let window = reg.client.policy().create_settle;
        twins::settle(reg, model, &new.declared_source, created, abandoned, window).await?
    } else {
        twins::remove_duplicate(reg, model, &new.declared_source, created).await?
    };
    wait_ready(reg, model, created).await
}

/// Registers `new` without a search first (the caller read the model's
/// versions in this pass and found none with its source); the duplicate
/// backstop against a concurrent applier is
/// [`twins::keep_first_registered`], once per model. A create that had to
/// be sent again still waits for a late twin first ([`twins::settle`]).
pub async fn create_version_unseen(
    reg: &MlflowRegistry,
    model: &str,
    new: &NewVersion,
) -> Result<LiveVersion> {
    let (created, abandoned) = send_create_version(reg, model, new).await?;
    let created = if abandoned > 0 {
        let window = reg.client.policy().create_settle;
        twins::settle(reg, model, &new.declared_source, created, abandoned, window).await?
    } else {
        created
    };
    wait_ready(reg, model, created).await
}

/// `model-versions/create` for `new` (its declared source in the
/// `modelsync.source` tag); after an ambiguous failure, re-reads the
/// version its declared source is before any re-send. Also answers how
/// many attempts were sent again after such a re-read found nothing: each
/// may still land.
async fn send_create_version(
    reg: &MlflowRegistry,
    model: &str,
    new: &NewVersion,
) -> Result<(LiveVersion, u32)> {
    let body = create_version_body(model, new);
    let mut converge = Converge::new(reg);
    let created = loop {
        match reg
            .client
            .call::<ModelVersionResponse>(&ep::CREATE_VERSION, Payload::Json(&body))
            .await
        {
            Ok(r) => break checked_create(model, new, r.model_version.into_live()?)?,
            Err(e) => {
                let e = converge.failed(e)?;
                if let Some(v) = twins::registered(reg, model, new).await? {
                    break v;
                }
                converge.retry(e).await?;
            }
        }
    };
    Ok((created, converge.retries))
}

/// The body of `model-versions/create` for `new`.
fn create_version_body(model: &str, new: &NewVersion) -> Value {
    let mut body =
        json!({ "name": model, "source": new.source, "tags": tags_json(&new.tags_with_source()) });
    // MLflow (3.17 at least) rejects a `runs:/` source whose run is not also
    // given as `run_id`; MLflow 2's client filled it in the same way.
    let run_id = new
        .run_id
        .as_deref()
        .or_else(|| parse_runs_uri(&new.source).map(|(run, _)| run));
    if let Some(run_id) = run_id {
        body["run_id"] = json!(run_id);
    }
    if let Some(model_id) = &new.model_id {
        body["model_id"] = json!(model_id);
    }
    if let Some(d) = &new.description {
        body["description"] = json!(d);
    }
    body
}

/// The version `model-versions/create` answered, checked to carry the
/// `modelsync.source` tag it was sent with.
fn checked_create(model: &str, new: &NewVersion, created: LiveVersion) -> Result<LiveVersion> {
    check(
        created.tags.get(tags::SOURCE) == Some(&new.declared_source),
        || {
            format!(
                "model-versions/create for {model:?} answered with a version without the {} tag",
                tags::SOURCE
            )
        },
    )?;
    Ok(created)
}

/// `model-versions/update`, always sending the description.
pub async fn update_version_description(
    reg: &MlflowRegistry,
    model: &str,
    version: u64,
    description: &str,
) -> Result<()> {
    let body = json!({ "name": model, "version": version.to_string(), "description": description });
    let r: ModelVersionResponse = call(reg, &ep::UPDATE_VERSION, &body).await?;
    check(r.model_version.description == description, || {
        format!("the description of {model:?} version {version} did not change")
    })
}

pub async fn set_version_tag(
    reg: &MlflowRegistry,
    model: &str,
    version: u64,
    key: &str,
    value: &str,
) -> Result<()> {
    let body = json!({ "name": model, "version": version.to_string(), "key": key, "value": value });
    call::<Empty>(reg, &ep::SET_VERSION_TAG, &body)
        .await
        .map(drop)
}

pub async fn delete_version_tag(
    reg: &MlflowRegistry,
    model: &str,
    version: u64,
    key: &str,
) -> Result<()> {
    let body = json!({ "name": model, "version": version.to_string(), "key": key });
    call::<Empty>(reg, &ep::DELETE_VERSION_TAG, &body)
        .await
        .map(drop)
}

/// `model-versions/transition-stage`; with `archive_existing` the server
/// archives the model's other versions in `stage` in the same transaction
/// (MLflow's store: same model, same target stage, other version numbers;
/// only Staging and Production).
pub async fn transition_stage(
    reg: &MlflowRegistry,
    model: &str,
    version: u64,
    stage: Stage,
    archive_existing: bool,
) -> Result<()> {
    let body = json!({
        "name": model,
        "version": version.to_string(),
        "stage": stage.as_str(),
        "archive_existing_versions": archive_existing,
    });
    let r: ModelVersionResponse = call(reg, &ep::TRANSITION_STAGE, &body).await?;
    let got = r.model_version.current_stage;
    check(Stage::parse(&got) == Some(stage), || {
        format!("{model:?} version {version} is in stage {got:?} after moving it to {stage}")
    })
}

/// A move with `archive_existing_versions=true`; `Ok(false)` when the
/// server cannot archive in the same write and only the move was made.
/// MLflow's SQL store compares the version column (an integer) with the
/// request's version string while archiving, which PostgreSQL refuses
/// (`operator does not exist: integer <> character varying`; the
/// transaction rolls back, nothing moved). Then, and for the rest of the
/// run, the move is sent plain and the caller archives.
pub async fn transition_stage_archiving(
    reg: &MlflowRegistry,
    model: &str,
    version: u64,
    stage: Stage,
) -> Result<bool> {
    use std::sync::atomic::Ordering::Relaxed;
    if !reg.no_archive_on_move.load(Relaxed) {
        match transition_stage(reg, model, version, stage, true).await {
            Err(RegistryError::Invalid(m)) if m.contains("operator does not exist") => {
                tracing::warn!(
                    "the server cannot archive with a move (archive_existing_versions); \
                     moving and archiving in separate requests"
                );
                reg.no_archive_on_move.store(true, Relaxed);
            }
            other => return other.map(|()| true),
        }
    }
    transition_stage(reg, model, version, stage, false)
        .await
        .map(|()| false)
}

/// Points `alias` at `version` (an upsert). MLflow answers `{}`: there is
/// nothing to check in the answer, and no read-back either — the pass's
/// final verification (a bulk snapshot) reports an alias that is not where
/// it should be.
pub async fn set_alias(reg: &MlflowRegistry, model: &str, alias: &str, version: u64) -> Result<()> {
    let body = json!({ "name": model, "alias": alias, "version": version.to_string() });
    call::<Empty>(reg, &ep::SET_ALIAS, &body).await.map(drop)
}

/// Deletes `alias` (a JSON body on DELETE); checked by the final
/// verification, like [`set_alias`].
pub async fn delete_alias(reg: &MlflowRegistry, model: &str, alias: &str) -> Result<()> {
    let body = json!({ "name": model, "alias": alias });
    call::<Empty>(reg, &ep::DELETE_ALIAS, &body).await.map(drop)
}

/// `experiments/create`; returns the id.
pub async fn create_experiment(
    reg: &MlflowRegistry,
    name: &str,
    artifact_location: Option<&str>,
    exp_tags: &BTreeMap<String, String>,
) -> Result<String> {
    let mut body = json!({ "name": name, "tags": tags_json(exp_tags) });
    if let Some(loc) = artifact_location {
        body["artifact_location"] = json!(loc);
    }
    let mut converge = Converge::new(reg);
    let created = loop {
        match reg
            .client
            .call::<CreateExperimentResponse>(&ep::CREATE_EXPERIMENT, Payload::Json(&body))
            .await
        {
            Ok(r) => break Ok(r.experiment_id),
            Err(e) => {
                let e = match converge.failed(e) {
                    Ok(e) => e,
                    Err(e) => break Err(e),
                };
                if let Some(found) = experiment_by_name(reg, name).await? {
                    break Ok(found.experiment_id);
                }
                if let Err(e) = converge.retry(e).await {
                    break Err(e);
                }
            }
        }
    };
    match created {
        Ok(id) if !id.is_empty() => Ok(id),
        Ok(_) => Err(RegistryError::Other(format!(
            "experiments/create for {name:?} answered without an id"
        ))),
        Err(RegistryError::AlreadyExists(m)) if experiment_by_name(reg, name).await?.is_none() => {
            Err(RegistryError::AlreadyExists(format!(
                "{m}; experiment {name:?} is deleted: restore it (mlflow experiments restore) or purge it (mlflow gc)"
            )))
        }
        Err(e) => Err(e),
    }
}

pub async fn set_experiment_tag(
    reg: &MlflowRegistry,
    experiment_id: &str,
    key: &str,
    value: &str,
) -> Result<()> {
    let body = json!({ "experiment_id": experiment_id, "key": key, "value": value });
    call::<Empty>(reg, &ep::SET_EXPERIMENT_TAG, &body)
        .await
        .map(drop)
}

/// The retry state of a non-idempotent create. After an ambiguous failure
/// the caller re-reads: if the object is there, that is the answer; only if
/// it is absent is the create sent again (bounded by the retry policy). An
/// "already exists" answer after an ambiguous attempt means the earlier
/// attempt succeeded, and is re-read as well.
struct Converge<'a> {
    reg: &'a MlflowRegistry,
    start: Instant,
    retries: u32,
    ambiguous: bool,
}

impl<'a> Converge<'a> {
    fn new(reg: &'a MlflowRegistry) -> Self {
        Converge {
            reg,
            start: Instant::now(),
            retries: 0,
            ambiguous: false,
        }
    }

    /// Returns the error when a re-read should decide, or fails.
    fn failed(&mut self, e: CallError) -> Result<CallError> {
        let recoverable = matches!(e, CallError::Ambiguous { .. })
            || (self.ambiguous && e.is("RESOURCE_ALREADY_EXISTS"));
        if !recoverable {
            return Err(e.into());
        }
        self.ambiguous = true;
        tracing::debug!(
            code = e.code().unwrap_or("none"),
            "create outcome unknown; re-reading before any retry"
        );
        Ok(e)
    }

    /// The re-read found nothing: waits before sending again, or gives up.
    async fn retry(&mut self, e: CallError) -> Result<()> {
        if e.is("RESOURCE_ALREADY_EXISTS") {
            return Err(e.into());
        }
        let policy = self.reg.client.policy();
        self.retries += 1;
        let wait = policy.backoff(self.retries);
        if self.retries > policy.max_retries || self.start.elapsed() + wait > policy.budget {
            return Err(e.into());
        }
        self.reg.client.note_retry();
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

/// Waits until `v` is READY: an error when it failed to register or is
/// still pending after the registration timeout.
async fn wait_ready(reg: &MlflowRegistry, model: &str, v: LiveVersion) -> Result<LiveVersion> {
    let v = poll_while_pending(reg, model, v).await?;
    match v.status {
        VersionStatus::Ready => Ok(v),
        VersionStatus::FailedRegistration => Err(RegistryError::Other(format!(
            "{model:?} version {} failed to register (FAILED_REGISTRATION): {}",
            v.version, v.status_message
        ))),
        VersionStatus::PendingRegistration => Err(RegistryError::Other(format!(
            "{model:?} version {} still PENDING_REGISTRATION after {:?}",
            v.version,
            reg.client.policy().registration_timeout
        ))),
    }
}

/// `version` of `model`, read again until it is no longer
/// PENDING_REGISTRATION or the registration timeout has passed.
pub async fn await_registration(
    reg: &MlflowRegistry,
    model: &str,
    version: u64,
) -> Result<Option<LiveVersion>> {
    match get_version(reg, model, version).await {
        Ok(v) => poll_while_pending(reg, model, v).await.map(Some),
        Err(RegistryError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Polls `model-versions/get` while the version is PENDING_REGISTRATION,
/// with backoff (a quarter of the poll interval, doubling up to it), until
/// the registration timeout; returns the last reading.
async fn poll_while_pending(
    reg: &MlflowRegistry,
    model: &str,
    mut v: LiveVersion,
) -> Result<LiveVersion> {
    let policy = reg.client.policy();
    let start = Instant::now();
    let mut delay = policy.registration_poll / 4;
    if v.status == VersionStatus::PendingRegistration {
        tracing::info!(
            model,
            version = v.version,
            "waiting for the version to finish registering (PENDING_REGISTRATION)"
        );
    }
    while v.status == VersionStatus::PendingRegistration {
        let left = policy.registration_timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(delay.min(left)).await;
        delay = (delay * 2).min(policy.registration_poll);
        v = get_version(reg, model, v.version).await?;
    }
    Ok(v)
}

async fn get_version(reg: &MlflowRegistry, model: &str, version: u64) -> Result<LiveVersion> {
    let q = [("name", model.to_owned()), ("version", version.to_string())];
    match reg
        .client
        .call::<ModelVersionResponse>(&ep::GET_VERSION, Payload::Query(&q))
        .await
    {
        Ok(r) => Ok(r.model_version.into_live()?),
        Err(e) if e.is_not_found() => Err(RegistryError::NotFound(format!(
            "{model:?} version {version}"
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn call<T: serde::de::DeserializeOwned + Send + 'static>(
    reg: &MlflowRegistry,
    endpoint: &'static ep::Endpoint,
    body: &Value,
) -> Result<T> {
    Ok(reg.client.call(endpoint, Payload::Json(body)).await?)
}

fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(RegistryError::Other(format!(
            "write not applied: {}",
            msg()
        )))
    }
}
