//! MLflow over REST: [`MlflowRegistry`] implements [`Registry`] against an
//! MLflow tracking server's `/api/2.0/mlflow` API.
//!
//! - [`config`]: settings from MLflow's environment variables (auth, TLS,
//!   retry knobs); secrets never printed.
//! - `endpoints`: the table of endpoints (verb, read/write, idempotency,
//!   permission needed).
//! - `client`: one call with auth, TLS, retries and backoff, and
//!   request counters; `errors`: error bodies -> [`super::RegistryError`].
//! - `wire`: MLflow's answers and their mapping onto [`crate::state`] (the
//!   only file that knows their shape; requests are built at their call).
//! - `read`: paged bulk snapshots, runs.
//! - `logged`: MLflow 3 logged models and their metrics, in bulk.
//! - `sources`: what a `runs:/` source registers as (MLflow 3 logged
//!   models), and whether the run and its model exist.
//! - `write`: writes, each verified; creates converge after ambiguous
//!   failures instead of being re-sent blindly.
//! - `twins`: the duplicate backstop, one version per declared source
//!   (a concurrent applier's duplicate; a create's first attempt landing
//!   after it was sent again).
//! - `workspace`: MLflow workspaces (`X-MLFLOW-WORKSPACE` on every
//!   request; the server checked once for having that workspace).
//! - `webhooks`: the daemon's own MLflow webhook, created or updated.
//! - `permissions`: the basic-auth app's grants on registered models
//!   (`kind: AccessPolicy`), through either permission API.
//! - [`lease`]: the applier lease, a lease model (wall clock expiry).
//! - `freeze`: the freeze, a model of a reserved name like the lease's.
//! - [`copy`]: copies from another MLflow (`from:`): reading the source
//!   version, and the target-side steps the executor sequences.
//! - `artifacts`: where a version's bytes are (`get-download-uri`,
//!   followed through `runs:/` and `models:/m-…`) and their digest, read
//!   through [`crate::registry::store`].

pub mod config;

mod artifacts;
mod capabilities;
mod client;
pub mod copy;
mod endpoints;
mod errors;
pub(crate) mod freeze;
pub mod lease;
mod logged;
mod paging;
mod permissions;
mod prompts;
mod read;
mod sources;
mod twins;
mod webhooks;
mod wire;
mod write;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;

pub use crate::registry::RequestStats;
pub use config::{Auth, LeaseConfig, MlflowConfig, RetryPolicy, TlsVerify};
pub use read::PER_MODEL_SEARCH_LIMIT;
pub use webhooks::{WebhookChange, WebhookSpec};

use super::{NewPromptVersion, NewVersion, Registry, RegistryError, Result, SnapshotRequest};
use crate::state::access::{Level, LiveAccess, Principal};
use crate::state::artifacts::ArtifactTree;
use crate::state::capabilities::Capabilities;
use crate::state::{
    LiveLoggedModel, LiveModel, LivePrompt, LiveRun, LiveState, LiveVersion, ResolvedSource,
    SourceResolution, Stage,
};

/// An MLflow tracking server.
pub struct MlflowRegistry {
    // Boxed: keeps `AnyRegistry` small.
    client: Box<client::Client>,
    /// The `max_results` the server accepts for model-version search.
    version_page: AtomicU64,
    /// Bulk reads made before the manifests were parsed
    /// ([`MlflowRegistry::prefetch`]), for the next named snapshot.
    prefetched: std::sync::Mutex<Option<read::Prefetched>>,
    /// Set once the server failed a move with `archive_existing_versions`
    /// (MLflow's store on PostgreSQL): later moves archive explicitly.
    no_archive_on_move: std::sync::atomic::AtomicBool,
    /// What the server can do: asked once ([`Registry::capabilities`]),
    /// and corrected where the server answers that an endpoint of its
    /// release does not exist (`capabilities.rs`).
    capabilities: tokio::sync::OnceCell<std::sync::Mutex<Capabilities>>,
    /// Every prompt's name, read once (a declared model that looks absent
    /// may be one; MLflow's model reads leave prompts out).
    prompt_names: tokio::sync::OnceCell<BTreeSet<String>>,
    /// The applier lease's model and times.
    lease: config::LeaseConfig,
    /// Artifact files hashed by this instance (one pass reads a tree once).
    hashes: super::store::cache::HashCache,
}

impl MlflowRegistry {
    /// A registry at `base_url` (`http(s)://host:port[/prefix]`). Nothing is
    /// sent until the first call.
    pub fn new(base_url: &str, config: MlflowConfig) -> Result<Self> {
        let lease = config.lease.clone();
        Ok(MlflowRegistry {
            lease,
            client: Box::new(client::Client::new(base_url, config)?),
            version_page: AtomicU64::new(read::VERSION_PAGE_MAX),
            prefetched: std::sync::Mutex::new(None),
            no_archive_on_move: std::sync::atomic::AtomicBool::new(false),
            capabilities: tokio::sync::OnceCell::new(),
            prompt_names: tokio::sync::OnceCell::new(),
            hashes: Default::default(),
        })
    }

    /// Creates or updates the webhook named `spec.name` (the daemon's own).
    pub async fn ensure_webhook(&self, spec: &WebhookSpec<'_>) -> Result<WebhookChange> {
        webhooks::ensure_webhook(self, spec).await
    }

    /// Reads every registered model and every version now (concurrently),
    /// kept for the next snapshot of more than a few named models; see
    /// `AnyRegistry::prefetch`. A failure keeps nothing.
    pub async fn prefetch(&self) {
        match read::prefetch(self).await {
            Ok(p) => *self.prefetched.lock().expect("prefetch lock") = Some(p),
            Err(e) => {
                tracing::debug!(error = %e, "bulk reads before the manifests were parsed failed")
            }
        }
    }

    /// The server URL without credentials.
    pub fn display(&self) -> &str {
        self.client.display()
    }

    /// Requests sent so far by this instance (retries included).
    pub fn stats(&self) -> RequestStats {
        self.client.stats()
    }
}

/// `registry::store` reaches proxied artifacts
/// (`/api/2.0/mlflow-artifacts/…`) through the server, with the client's
/// authentication and workspace.
impl super::store::ArtifactProxy for MlflowRegistry {
    fn artifact_request(
        &self,
        method: reqwest::Method,
        path: &str,
        read: bool,
    ) -> reqwest::RequestBuilder {
        self.client.raw(method, path, read)
    }
}

impl Registry for MlflowRegistry {
    fn copy_target(&self) -> Option<copy::CopyTarget<'_>> {
        Some(copy::CopyTarget(self))
    }
    fn uri(&self) -> String {
        self.client.identity()
    }
    async fn snapshot(&self, req: &SnapshotRequest) -> Result<LiveState> {
        read::snapshot(self, req).await
    }
    async fn resolve_sources(
        &self,
        sources: &[String],
    ) -> Result<BTreeMap<String, SourceResolution>> {
        sources::resolve_sources(self, sources).await
    }
    async fn await_registration(&self, model: &str, version: u64) -> Result<Option<LiveVersion>> {
        write::await_registration(self, model, version).await
    }
    async fn get_runs(&self, run_ids: &[String]) -> Result<BTreeMap<String, LiveRun>> {
        read::get_runs(self, run_ids).await
    }
    async fn get_logged_models(
        &self,
        model_ids: &[String],
        experiment_ids: &[String],
    ) -> Result<BTreeMap<String, LiveLoggedModel>> {
        logged::get_logged_models(self, model_ids, experiment_ids).await
    }
    async fn get_model(&self, name: &str) -> Result<Option<LiveModel>> {
        read::get_model(self, name).await
    }
    async fn create_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        write::create_model(self, name, description, tags).await
    }
    async fn update_model_description(&self, name: &str, description: &str) -> Result<()> {
        write::update_model_description(self, name, description).await
    }
    async fn set_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        write::set_model_tag(self, name, key, value).await
    }
    async fn delete_model_tag(&self, name: &str, key: &str) -> Result<()> {
        write::delete_model_tag(self, name, key).await
    }
    async fn create_version(&self, model: &str, new: &NewVersion) -> Result<LiveVersion> {
        write::create_version(self, model, new).await
    }
    async fn create_version_unseen(&self, model: &str, new: &NewVersion) -> Result<LiveVersion> {
        write::create_version_unseen(self, model, new).await
    }
    async fn keep_first_registered(
        &self,
        model: &str,
        registered: &BTreeMap<String, u64>,
    ) -> Result<BTreeMap<String, u64>> {
        twins::keep_first_registered(self, model, registered).await
    }
    async fn update_version_description(
        &self,
        model: &str,
        version: u64,
        description: &str,
    ) -> Result<()> {
        write::update_version_description(self, model, version, description).await
    }
    async fn set_version_tag(
        &self,
        model: &str,
        version: u64,
        key: &str,
        value: &str,
    ) -> Result<()> {
        write::set_version_tag(self, model, version, key, value).await
    }
    async fn delete_version_tag(&self, model: &str, version: u64, key: &str) -> Result<()> {
        write::delete_version_tag(self, model, version, key).await
    }
    async fn transition_stage(&self, model: &str, version: u64, stage: Stage) -> Result<()> {
        write::transition_stage(self, model, version, stage, false).await
    }
    async fn transition_stage_archiving(
        &self,
        model: &str,
        version: u64,
        stage: Stage,
    ) -> Result<bool> {
        write::transition_stage_archiving(self, model, version, stage).await
    }
    async fn set_alias(&self, model: &str, alias: &str, version: u64) -> Result<()> {
        write::set_alias(self, model, alias, version).await
    }
    async fn delete_alias(&self, model: &str, alias: &str) -> Result<()> {
        write::delete_alias(self, model, alias).await
    }
    async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        write::create_experiment(self, name, artifact_location, tags).await
    }
    async fn set_experiment_tag(&self, experiment_id: &str, key: &str, value: &str) -> Result<()> {
        write::set_experiment_tag(self, experiment_id, key, value).await
    }
    async fn flush(&self) -> Result<()> {
        Ok(())
    }
    async fn capabilities(&self) -> Result<Capabilities> {
        capabilities::current(self).await
    }
    async fn read_prompts(&self, names: &BTreeSet<String>) -> Result<BTreeMap<String, LivePrompt>> {
        prompts::read_prompts(self, names).await
    }
    async fn list_prompts(&self) -> Result<BTreeMap<String, LivePrompt>> {
        prompts::list_prompts(self).await
    }
    async fn prompt_names(&self) -> Result<BTreeSet<String>> {
        self.prompt_names
            .get_or_try_init(|| prompts::prompt_names(self))
            .await
            .cloned()
    }
    async fn create_prompt(&self, name: &str) -> Result<()> {
        prompts::create_prompt(self, name).await
    }
    async fn create_prompt_version(&self, name: &str, new: &NewPromptVersion) -> Result<u64> {
        prompts::create_prompt_version(self, name, new).await
    }
    async fn set_prompt_alias(&self, name: &str, alias: &str, version: u64) -> Result<()> {
        write::set_alias(self, name, alias, version).await
    }
    async fn read_access(&self) -> Result<LiveAccess> {
        permissions::read_access(self).await
    }
    async fn set_permission(
        &self,
        model: &str,
        principal: &Principal,
        level: Level,
        before: Option<Level>,
    ) -> Result<()> {
        permissions::set_permission(self, model, principal, level, before).await
    }
    async fn remove_permission(&self, model: &str, principal: &Principal) -> Result<()> {
        permissions::remove_permission(self, model, principal).await
    }
    async fn locate_version(&self, model: &str, version: &LiveVersion) -> Result<String> {
        artifacts::locate(self, model, version).await
    }
    async fn version_tree(
        &self,
        model: &str,
        version: &LiveVersion,
    ) -> Result<std::result::Result<ArtifactTree, String>> {
        artifacts::version_tree(self, model, version).await
    }
    async fn source_tree(
        &self,
        declared: &str,
        resolved: Option<&ResolvedSource>,
    ) -> Result<std::result::Result<ArtifactTree, String>> {
        artifacts::source_tree(self, declared, resolved).await
    }
    async fn resolve_version(&self, model: &str, version: &LiveVersion) -> Result<ArtifactTree> {
        artifacts::version_tree(self, model, version)
            .await?
            .map_err(RegistryError::Other)
    }
}
