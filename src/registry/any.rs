//! [`AnyRegistry`]: either registry, chosen by URI, and the verbs callers
//! need from "whichever registry this is" (prefetching, the daemon's
//! webhook, a snapshot file, request counters), so that no code outside
//! `registry/` matches on which one it is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::copy::CopyTarget;
use super::mlflow::{WebhookChange, WebhookSpec};
use super::uri::{Kind, RegistryUri};
use super::{
    NewPromptVersion, NewVersion, OpenOptions, Registry, RegistryError, RequestStats, Result,
    SnapshotRequest, embedded, mlflow,
};
use crate::state::access::{Level, LiveAccess, Principal};
use crate::state::artifacts::ArtifactTree;
use crate::state::capabilities::Capabilities;
use crate::state::{
    LiveLoggedModel, LiveModel, LivePrompt, LiveRun, LiveState, LiveVersion, ResolvedSource,
    SourceResolution, Stage,
};

/// Either registry, chosen by URI (`http(s)://` or `file:`).
pub enum AnyRegistry {
    Embedded(embedded::EmbeddedRegistry),
    Mlflow(mlflow::MlflowRegistry),
}

impl AnyRegistry {
    /// Starts the bulk reads that do not depend on the manifests (MLflow:
    /// every registered model, every version) so that they run while the
    /// manifests are parsed; the next snapshot of more than a few named
    /// models uses them instead of reading again. The embedded registry
    /// reads its file: nothing to do. An error is left for that snapshot to
    /// meet again.
    pub async fn prefetch(&self) {
        if let AnyRegistry::Mlflow(r) = self {
            r.prefetch().await;
        }
    }

    /// Requests made so far by this instance.
    pub fn stats(&self) -> RequestStats {
        match self {
            AnyRegistry::Embedded(_) => RequestStats::default(),
            AnyRegistry::Mlflow(r) => r.stats(),
        }
    }

    /// Creates or updates the daemon's own webhook `spec.name` (`watch
    /// --register-mlflow-webhook`): one of the writes outside the executor
    /// (ARCHITECTURE.md names them). Only MLflow (3.3+) has webhooks.
    pub async fn ensure_webhook(&self, spec: &WebhookSpec<'_>) -> Result<WebhookChange> {
        match self {
            AnyRegistry::Mlflow(r) => r.ensure_webhook(spec).await,
            AnyRegistry::Embedded(_) => Err(RegistryError::Invalid(format!(
                "--register-mlflow-webhook needs an MLflow registry, not {}",
                self.uri()
            ))),
        }
    }
}

/// Whether a (full, not targeted) pass should open the registry `uri`
/// names early, to run its bulk reads while the manifests (declaring about
/// `models` registered models) are parsed ([`AnyRegistry::prefetch`]): on
/// MLflow, when they are more than per-model reads suit.
pub fn worth_prefetching(uri: &str, models: usize) -> bool {
    RegistryUri::new(uri).kind() == Kind::Mlflow && models > mlflow::PER_MODEL_SEARCH_LIMIT
}

/// Writes `live` as a new embedded-registry file at `path` (`export
/// --snapshot`), to plan offline against.
pub fn write_snapshot(path: &Path, live: &LiveState) -> Result<()> {
    embedded::EmbeddedRegistry::write_snapshot(path, live)
}

/// Opens the registry a URI names: `http(s)://…` is MLflow, `file:PATH` the
/// embedded registry. Credentials and TLS settings come from the environment.
pub async fn open(uri: &str, opts: &OpenOptions) -> Result<AnyRegistry> {
    let parsed = RegistryUri::new(uri);
    match parsed.kind() {
        Kind::Embedded { path } => {
            if let Some(ws) = parsed.workspace() {
                return Err(RegistryError::Invalid(format!(
                    "workspace {ws:?} is named, but the embedded registry ({}) has no workspaces: they are an MLflow server feature",
                    parsed.base()
                )));
            }
            let reg = embedded::EmbeddedRegistry::open(Path::new(path), opts.write)?;
            Ok(AnyRegistry::Embedded(reg))
        }
        Kind::Mlflow => {
            let config = mlflow::MlflowConfig::from_env()?;
            Ok(AnyRegistry::Mlflow(mlflow::MlflowRegistry::new(
                uri, config,
            )?))
        }
        Kind::Unsupported => Err(RegistryError::Invalid(format!(
            "unsupported registry URI {:?}: use http(s)://host:port for MLflow or file:PATH for the embedded registry",
            parsed.redacted()
        ))),
    }
}

macro_rules! delegate {
    ($self:ident, $r:ident => $call:expr) => {
        match $self {
            AnyRegistry::Embedded($r) => $call,
            AnyRegistry::Mlflow($r) => $call,
        }
    };
}

impl Registry for AnyRegistry {
    fn uri(&self) -> String {
        delegate!(self, r => r.uri())
    }
    async fn snapshot(&self, req: &SnapshotRequest) -> Result<LiveState> {
        delegate!(self, r => r.snapshot(req).await)
    }
    async fn resolve_sources(
        &self,
        sources: &[String],
    ) -> Result<BTreeMap<String, SourceResolution>> {
        delegate!(self, r => r.resolve_sources(sources).await)
    }
    async fn await_registration(&self, model: &str, version: u64) -> Result<Option<LiveVersion>> {
        delegate!(self, r => r.await_registration(model, version).await)
    }
    async fn get_runs(&self, run_ids: &[String]) -> Result<BTreeMap<String, LiveRun>> {
        delegate!(self, r => r.get_runs(run_ids).await)
    }
    async fn get_logged_models(
        &self,
        model_ids: &[String],
        experiment_ids: &[String],
    ) -> Result<BTreeMap<String, LiveLoggedModel>> {
        delegate!(self, r => r.get_logged_models(model_ids, experiment_ids).await)
    }
    async fn get_model(&self, name: &str) -> Result<Option<LiveModel>> {
        delegate!(self, r => r.get_model(name).await)
    }
    async fn create_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        delegate!(self, r => r.create_model(name, description, tags).await)
    }
    async fn update_model_description(&self, name: &str, description: &str) -> Result<()> {
        delegate!(self, r => r.update_model_description(name, description).await)
    }
    async fn set_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        delegate!(self, r => r.set_model_tag(name, key, value).await)
    }
    async fn delete_model_tag(&self, name: &str, key: &str) -> Result<()> {
        delegate!(self, r => r.delete_model_tag(name, key).await)
    }
    async fn create_version(&self, model: &str, new: &NewVersion) -> Result<LiveVersion> {
        delegate!(self, r => r.create_version(model, new).await)
    }
    async fn create_version_unseen(&self, model: &str, new: &NewVersion) -> Result<LiveVersion> {
        delegate!(self, r => r.create_version_unseen(model, new).await)
    }
    async fn keep_first_registered(
        &self,
        model: &str,
        registered: &BTreeMap<String, u64>,
    ) -> Result<BTreeMap<String, u64>> {
        delegate!(self, r => r.keep_first_registered(model, registered).await)
    }
    async fn update_version_description(
        &self,
        model: &str,
        version: u64,
        description: &str,
    ) -> Result<()> {
        delegate!(self, r => r.update_version_description(model, version, description).await)
    }
    async fn set_version_tag(
        &self,
        model: &str,
        version: u64,
        key: &str,
        value: &str,
    ) -> Result<()> {
        delegate!(self, r => r.set_version_tag(model, version, key, value).await)
    }
    async fn delete_version_tag(&self, model: &str, version: u64, key: &str) -> Result<()> {
        delegate!(self, r => r.delete_version_tag(model, version, key).await)
    }
    async fn transition_stage(&self, model: &str, version: u64, stage: Stage) -> Result<()> {
        delegate!(self, r => r.transition_stage(model, version, stage).await)
    }
    async fn transition_stage_archiving(
        &self,
        model: &str,
        version: u64,
        stage: Stage,
    ) -> Result<bool> {
        delegate!(self, r => r.transition_stage_archiving(model, version, stage).await)
    }
    async fn set_alias(&self, model: &str, alias: &str, version: u64) -> Result<()> {
        delegate!(self, r => r.set_alias(model, alias, version).await)
    }
    async fn delete_alias(&self, model: &str, alias: &str) -> Result<()> {
        delegate!(self, r => r.delete_alias(model, alias).await)
    }
    async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        delegate!(self, r => r.create_experiment(name, artifact_location, tags).await)
    }
    async fn set_experiment_tag(&self, experiment_id: &str, key: &str, value: &str) -> Result<()> {
        delegate!(self, r => r.set_experiment_tag(experiment_id, key, value).await)
    }
    async fn flush(&self) -> Result<()> {
        delegate!(self, r => r.flush().await)
    }
    fn copy_target(&self) -> Option<CopyTarget<'_>> {
        delegate!(self, r => r.copy_target())
    }
    async fn capabilities(&self) -> Result<Capabilities> {
        delegate!(self, r => r.capabilities().await)
    }
    async fn locate_version(&self, model: &str, version: &LiveVersion) -> Result<String> {
        delegate!(self, r => r.locate_version(model, version).await)
    }
    async fn version_tree(
        &self,
        model: &str,
        version: &LiveVersion,
    ) -> Result<std::result::Result<ArtifactTree, String>> {
        delegate!(self, r => r.version_tree(model, version).await)
    }
    async fn source_tree(
        &self,
        declared: &str,
        resolved: Option<&ResolvedSource>,
    ) -> Result<std::result::Result<ArtifactTree, String>> {
        delegate!(self, r => r.source_tree(declared, resolved).await)
    }
    async fn resolve_version(&self, model: &str, version: &LiveVersion) -> Result<ArtifactTree> {
        delegate!(self, r => r.resolve_version(model, version).await)
    }
    async fn read_prompts(&self, names: &BTreeSet<String>) -> Result<BTreeMap<String, LivePrompt>> {
        delegate!(self, r => r.read_prompts(names).await)
    }
    async fn list_prompts(&self) -> Result<BTreeMap<String, LivePrompt>> {
        delegate!(self, r => r.list_prompts().await)
    }
    async fn prompt_names(&self) -> Result<BTreeSet<String>> {
        delegate!(self, r => r.prompt_names().await)
    }
    async fn create_prompt(&self, name: &str) -> Result<()> {
        delegate!(self, r => r.create_prompt(name).await)
    }
    async fn create_prompt_version(&self, name: &str, new: &NewPromptVersion) -> Result<u64> {
        delegate!(self, r => r.create_prompt_version(name, new).await)
    }
    async fn set_prompt_alias(&self, name: &str, alias: &str, version: u64) -> Result<()> {
        delegate!(self, r => r.set_prompt_alias(name, alias, version).await)
    }
    async fn read_access(&self) -> Result<LiveAccess> {
        delegate!(self, r => r.read_access().await)
    }
    async fn set_permission(
        &self,
        model: &str,
        principal: &Principal,
        level: Level,
        before: Option<Level>,
    ) -> Result<()> {
        delegate!(self, r => r.set_permission(model, principal, level, before).await)
    }
    async fn remove_permission(&self, model: &str, principal: &Principal) -> Result<()> {
        delegate!(self, r => r.remove_permission(model, principal).await)
    }
}
