//! MLflow's JSON, and its mapping onto [`crate::state`].
//!
//! The only file that knows the shape of MLflow's answers (request bodies
//! and query parameters are built next to their call, in `read.rs`,
//! `write.rs`, `sources.rs`, `lease.rs`, `copy.rs` and `webhooks.rs`;
//! `wire/more.rs` holds the answers of copies, webhooks and workspaces). Every struct
//! deserializes with defaults, because MLflow omits unset and empty fields
//! (empty `tags`, `aliases`, `description`), sends `version` as a string and
//! non-finite doubles as `"NaN"`/`"Infinity"`. Unknown fields are ignored
//! (newer servers add `sqlstate`, `error_class`, ...). No I/O here.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use crate::state::{
    LiveExperiment, LiveLoggedModel, LiveModel, LiveRun, LiveVersion, LoggedMetric, Stage,
    VersionStatus, parse_special_float,
};

/// `{"error_code": "...", "message": "..."}`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ErrorBody {
    pub error_code: String,
    pub message: String,
}

/// A `{key, value}` pair.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A registered model's `{alias, version}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ModelAlias {
    pub alias: String,
    #[serde(deserialize_with = "lenient_u64")]
    pub version: u64,
}

/// `RegisteredModel`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RegisteredModel {
    pub name: String,
    pub description: String,
    #[serde(deserialize_with = "lenient_i64")]
    pub creation_timestamp: i64,
    #[serde(deserialize_with = "lenient_i64")]
    pub last_updated_timestamp: i64,
    pub tags: Vec<Tag>,
    pub aliases: Vec<ModelAlias>,
}

/// `ModelVersion`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ModelVersion {
    pub name: String,
    #[serde(deserialize_with = "lenient_u64")]
    pub version: u64,
    #[serde(deserialize_with = "lenient_i64")]
    pub creation_timestamp: i64,
    #[serde(deserialize_with = "lenient_i64")]
    pub last_updated_timestamp: i64,
    pub current_stage: String,
    pub description: String,
    pub source: String,
    pub run_id: String,
    pub status: String,
    pub status_message: String,
    pub tags: Vec<Tag>,
    pub aliases: Vec<String>,
    pub model_id: String,
}

/// `{"registered_model": ...}` (get, create, update).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RegisteredModelResponse {
    pub registered_model: RegisteredModel,
}

/// `{"model_version": ...}` (get, create, update, transition).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ModelVersionResponse {
    pub model_version: ModelVersion,
}

/// One page of `registered-models/search`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RegisteredModelPage {
    pub registered_models: Vec<RegisteredModel>,
    pub next_page_token: String,
}

/// One page of `model-versions/search`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ModelVersionPage {
    pub model_versions: Vec<ModelVersion>,
    pub next_page_token: String,
}

/// `Experiment`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: String,
    pub tags: Vec<Tag>,
}

/// `{"experiment": ...}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ExperimentResponse {
    pub experiment: Experiment,
}

/// One page of `experiments/search`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ExperimentPage {
    pub experiments: Vec<Experiment>,
    pub next_page_token: String,
}

/// `{"experiment_id": "..."}` from `experiments/create`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateExperimentResponse {
    pub experiment_id: String,
}

/// A metric as `runs/get` sends it; `value` may be `"NaN"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Metric {
    pub key: String,
    #[serde(deserialize_with = "lenient_f64")]
    pub value: f64,
}

/// `Run` (what gates, source resolution and copies read).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Run {
    pub info: RunInfo,
    pub data: RunData,
}

/// `Run.info`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RunInfo {
    pub run_id: String,
    pub run_uuid: String,
    pub experiment_id: String,
    /// The run's artifact root.
    pub artifact_uri: String,
}

/// `Run.data`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RunData {
    pub metrics: Vec<Metric>,
    pub params: Vec<Tag>,
    pub tags: Vec<Tag>,
}

/// `{"run": ...}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RunResponse {
    pub run: Run,
}

/// One page of `logged-models/search` (MLflow 3).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoggedModelPage {
    pub models: Vec<LoggedModel>,
    pub next_page_token: String,
}

/// A logged model (MLflow 3).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoggedModel {
    pub info: LoggedModelInfo,
    pub data: LoggedModelData,
}

/// `{"model": ...}` (`GET logged-models/{id}`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoggedModelResponse {
    pub model: LoggedModel,
}

/// A logged model's `data` (only the metrics: what gates read).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoggedModelData {
    pub metrics: Vec<LoggedModelMetric>,
}

/// A metric logged against a logged model, with its evaluation dataset.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LoggedModelMetric {
    pub key: String,
    #[serde(deserialize_with = "lenient_f64")]
    pub value: f64,
    #[serde(deserialize_with = "lenient_f64")]
    pub timestamp: f64,
    #[serde(deserialize_with = "lenient_f64")]
    pub step: f64,
    pub dataset_name: String,
    pub dataset_digest: String,
    pub run_id: String,
}

impl LoggedModel {
    /// Maps onto [`LiveLoggedModel`], keeping every metric entry.
    pub fn into_live(self) -> LiveLoggedModel {
        let non_empty = |s: String| (!s.is_empty()).then_some(s);
        LiveLoggedModel {
            model_id: self.info.model_id,
            experiment_id: self.info.experiment_id,
            metrics: self
                .data
                .metrics
                .into_iter()
                .map(|m| LoggedMetric {
                    key: m.key,
                    value: m.value,
                    step: m.step as i64,
                    timestamp: m.timestamp as i64,
                    dataset_name: non_empty(m.dataset_name),
                    dataset_digest: non_empty(m.dataset_digest),
                    run_id: m.run_id,
                })
                .collect(),
        }
    }
}

/// A logged model's `info`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoggedModelInfo {
    pub model_id: String,
    pub name: String,
    pub source_run_id: String,
    pub experiment_id: String,
    /// Where its files are.
    pub artifact_uri: String,
}

/// One page of `artifacts/list`: paths relative to the run's artifact root.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ArtifactPage {
    pub files: Vec<FileInfo>,
    pub next_page_token: String,
}

/// One entry of `artifacts/list` (and of the artifact REST API's list).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FileInfo {
    pub path: String,
    pub is_dir: bool,
    #[serde(deserialize_with = "lenient_u64")]
    pub file_size: u64,
}

/// Any response whose content modelsync ignores (`{}`).
#[derive(Debug, Default, Deserialize)]
pub struct Empty {}

/// Why a response could not be mapped onto the live state.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MapError {
    #[error("model {model:?} version {version}: unknown stage {stage:?}")]
    Stage {
        model: String,
        version: u64,
        stage: String,
    },
    #[error("model {model:?} version {version}: unknown status {status:?}")]
    Status {
        model: String,
        version: u64,
        status: String,
    },
    #[error("a model version without a version number (model {model:?})")]
    NoVersion { model: String },
}

impl RegisteredModel {
    /// The model without versions (they come from `model-versions/search`).
    pub fn into_live(self) -> LiveModel {
        LiveModel {
            name: self.name,
            description: self.description,
            tags: tags_map(self.tags),
            aliases: self
                .aliases
                .into_iter()
                .map(|a| (a.alias, a.version))
                .collect(),
            versions: BTreeMap::new(),
            creation_timestamp: self.creation_timestamp,
            last_updated_timestamp: self.last_updated_timestamp,
        }
    }
}

impl From<MapError> for crate::registry::RegistryError {
    fn from(e: MapError) -> Self {
        crate::registry::RegistryError::Other(format!("unexpected model version: {e}"))
    }
}

impl ModelVersion {
    /// Maps onto [`LiveVersion`]. An absent `model_id` (MLflow 3.17's OSS
    /// server stores but does not return it) is read from a
    /// `models:/m-<id>` source.
    pub fn into_live(self) -> Result<LiveVersion, MapError> {
        if self.version == 0 {
            return Err(MapError::NoVersion { model: self.name });
        }
        let stage = if self.current_stage.is_empty() {
            Stage::None
        } else {
            Stage::parse(&self.current_stage).ok_or_else(|| MapError::Stage {
                model: self.name.clone(),
                version: self.version,
                stage: self.current_stage.clone(),
            })?
        };
        let status = match self.status.as_str() {
            "" | "READY" => VersionStatus::Ready,
            "PENDING_REGISTRATION" => VersionStatus::PendingRegistration,
            "FAILED_REGISTRATION" => VersionStatus::FailedRegistration,
            other => {
                return Err(MapError::Status {
                    model: self.name,
                    version: self.version,
                    status: other.to_owned(),
                });
            }
        };
        let model_id = if self.model_id.is_empty() {
            model_id_of_source(&self.source)
                .unwrap_or_default()
                .to_owned()
        } else {
            self.model_id
        };
        Ok(LiveVersion {
            version: self.version,
            stage,
            source: self.source,
            run_id: self.run_id,
            model_id,
            status,
            status_message: self.status_message,
            description: self.description,
            tags: tags_map(self.tags),
            creation_timestamp: self.creation_timestamp,
            last_updated_timestamp: self.last_updated_timestamp,
        })
    }
}

impl Experiment {
    /// Maps onto [`LiveExperiment`].
    pub fn into_live(self) -> LiveExperiment {
        LiveExperiment {
            experiment_id: self.experiment_id,
            name: self.name,
            artifact_location: self.artifact_location,
            tags: tags_map(self.tags),
        }
    }

    /// True when the experiment is soft-deleted.
    pub fn is_deleted(&self) -> bool {
        self.lifecycle_stage == "deleted"
    }
}

impl Run {
    /// The run id (`run_id`, or the older `run_uuid`).
    pub fn id(&self) -> &str {
        if self.info.run_id.is_empty() {
            &self.info.run_uuid
        } else {
            &self.info.run_id
        }
    }

    /// Maps onto [`LiveRun`]: the latest value per metric key.
    pub fn into_live(self) -> LiveRun {
        LiveRun {
            run_id: self.id().to_owned(),
            experiment_id: self.info.experiment_id,
            metrics: self
                .data
                .metrics
                .into_iter()
                .map(|m| (m.key, m.value))
                .collect(),
        }
    }
}

/// `m-…` from `models:/m-…` (a logged-model source), if it is one.
pub fn model_id_of_source(source: &str) -> Option<&str> {
    let id = source.strip_prefix("models:/")?;
    (id.starts_with("m-") && !id.contains('/')).then_some(id)
}

/// Tags as a map (later duplicates win, as in MLflow).
pub fn tags_map<M: FromIterator<(String, String)>>(tags: Vec<Tag>) -> M {
    tags.into_iter().map(|t| (t.key, t.value)).collect()
}

/// A search-filter string literal for `value`: single quotes, or double
/// quotes when the value holds a single quote (MLflow's filter grammar has
/// no escape that works on 3.17). `None` when it holds both.
pub fn filter_literal(value: &str) -> Option<String> {
    if !value.contains('\'') {
        Some(format!("'{value}'"))
    } else if !value.contains('"') {
        Some(format!("\"{value}\""))
    } else {
        None
    }
}

/// `Tags` as MLflow's `[{key, value}]` JSON.
pub fn tags_json(tags: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::Value::Array(
        tags.iter()
            .map(|(k, v)| serde_json::json!({ "key": k, "value": v }))
            .collect(),
    )
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrStr {
    I(i64),
    U(u64),
    F(f64),
    S(String),
    Null(()),
}

// The basic-auth app's users, roles and grants (`permissions.rs`).

/// `GET users/list`: every user (RBAC servers add each user's roles as
/// the caller may see them).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthUserList {
    pub users: Vec<AuthUser>,
}

/// `GET users/get`: one user.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthUserResponse {
    pub user: AuthUser,
}

/// A user of the basic-auth app. Before 3.13 `users/get` lists its direct
/// grants on registered models; RBAC servers list its roles instead.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthUser {
    #[serde(deserialize_with = "lenient_i64")]
    pub id: i64,
    pub username: String,
    pub is_admin: bool,
    pub roles: Vec<AuthRole>,
    pub registered_model_permissions: Vec<AuthModelPermission>,
}

/// A direct grant on a registered model (before 3.13).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthModelPermission {
    pub name: String,
    pub permission: String,
}

/// `GET roles/list` and `GET users/roles/list`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthRoleList {
    pub roles: Vec<AuthRole>,
}

/// A role: a named one, or (RBAC) a user's own `__user_<id>__`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthRole {
    #[serde(deserialize_with = "lenient_i64")]
    pub id: i64,
    pub name: String,
    pub workspace: String,
    pub permissions: Vec<AuthRolePermission>,
}

/// One grant of a role: `(resource_type, resource_pattern, permission)`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthRolePermission {
    #[serde(deserialize_with = "lenient_i64")]
    pub id: i64,
    pub resource_type: String,
    pub resource_pattern: String,
    pub permission: String,
}

/// `GET users/permissions/get`: a user's effective permission.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthPermissionAnswer {
    pub permission: String,
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match NumOrStr::deserialize(d)? {
        NumOrStr::I(i) => u64::try_from(i).map_err(serde::de::Error::custom),
        NumOrStr::U(u) => Ok(u),
        NumOrStr::F(f) if f >= 0.0 && f.fract() == 0.0 => Ok(f as u64),
        NumOrStr::S(s) if s.is_empty() => Ok(0),
        NumOrStr::S(s) => s.trim().parse().map_err(serde::de::Error::custom),
        NumOrStr::Null(()) => Ok(0),
        NumOrStr::F(f) => Err(serde::de::Error::custom(format!(
            "not a version number: {f}"
        ))),
    }
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match NumOrStr::deserialize(d)? {
        NumOrStr::I(i) => Ok(i),
        NumOrStr::U(u) => i64::try_from(u).map_err(serde::de::Error::custom),
        NumOrStr::F(f) => Ok(f as i64),
        NumOrStr::S(s) if s.is_empty() => Ok(0),
        NumOrStr::S(s) => s.trim().parse().map_err(serde::de::Error::custom),
        NumOrStr::Null(()) => Ok(0),
    }
}

fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match NumOrStr::deserialize(d)? {
        NumOrStr::I(i) => Ok(i as f64),
        NumOrStr::U(u) => Ok(u as f64),
        NumOrStr::F(f) => Ok(f),
        NumOrStr::S(s) => Ok(parse_special_float(&s)),
        NumOrStr::Null(()) => Ok(f64::NAN),
    }
}

mod more;
pub use more::{DownloadUri, RunPage, ServerInfo, Webhook, WebhookPage, WebhookResponse};

#[cfg(test)]
mod tests;
