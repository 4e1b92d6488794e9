//! Registries: the only code that talks to one.
//!
//! [`Registry`] is the one trait; [`embedded`] (a JSON file) and [`mlflow`]
//! (MLflow's REST API) implement it, and [`AnyRegistry`] (`any.rs`) picks
//! one by URI ([`RegistryUri`], `uri.rs`). Reads are bulk snapshots; writes
//! are single, idempotent operations that the executor (`apply`)
//! sequences. Only this module knows which registry it talks to: callers
//! get verbs — on [`AnyRegistry`], the applier lease ([`lease`]), and
//! copies ([`copy`]: [`Sources`], [`CopyTarget`]). [`store`] reads and
//! writes the artifact stores versions' files are in (copies, digests).

mod any;
pub mod copy;
pub mod embedded;
pub mod evidence;
pub mod hold;
pub mod lease;
pub mod mlflow;
pub mod store;
pub mod uri;

pub use any::{AnyRegistry, open, worth_prefetching, write_snapshot};
pub use copy::{CopyTarget, Sources, open_sources};
pub use lease::{HeldLease, Lease, LeaseInfo, LeaseRecord};
pub use mlflow::{WebhookChange, WebhookSpec};
pub use uri::RegistryUri;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use crate::state::access::{Level, LiveAccess, Principal};
use crate::state::artifacts::ArtifactTree;
use crate::state::capabilities::Capabilities;
use crate::state::{
    LiveLoggedModel, LiveModel, LivePrompt, LiveRun, LiveState, LiveVersion, ResolvedSource,
    SourceResolution, Stage,
};

/// Which models a snapshot reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every registered model (export).
    All,
    /// Only these models (plan/apply read what the manifests declare).
    Named(BTreeSet<String>),
    /// Only these models, a few of those the manifests declare (a
    /// targeted pass): when there are few, each is read by name
    /// (MLflow: `registered-models/get` and `model-versions/search`
    /// filtered by name, a few at a time) instead of the bulk pages, whose
    /// cost grows with the whole registry. The same snapshot otherwise.
    Targeted(BTreeSet<String>),
}

impl Scope {
    /// True when `name` is in scope.
    pub fn contains(&self, name: &str) -> bool {
        self.names().is_none_or(|names| names.contains(name))
    }

    /// The names in scope; `None` for every model.
    pub fn names(&self) -> Option<&BTreeSet<String>> {
        match self {
            Scope::All => None,
            Scope::Named(names) | Scope::Targeted(names) => Some(names),
        }
    }
}

/// What to read in one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRequest {
    pub models: Scope,
    /// Experiments to read, by name (all when `models` is `All`).
    pub experiments: BTreeSet<String>,
}

/// A new version to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVersion {
    /// The source as declared; stored in the `modelsync.source` tag.
    pub declared_source: String,
    /// The source sent to the registry.
    pub source: String,
    pub run_id: Option<String>,
    pub model_id: Option<String>,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl NewVersion {
    /// The declared source this version is registered for: what finds it
    /// again ([`crate::state::LiveModel::version_for_source`]).
    pub fn declared(&self) -> crate::state::DeclaredSource<'_> {
        crate::state::DeclaredSource {
            source: &self.declared_source,
            run_id: self.run_id.as_deref(),
            stored_as: Some(&self.source),
        }
    }

    /// The tags it is created with: its own, and the `modelsync.source` tag.
    pub fn tags_with_source(&self) -> BTreeMap<String, String> {
        self.declared().tagged(&self.tags)
    }
}

/// Why a registry call failed. Branch on the kind, not on the text.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry could not be reached or did not answer (exit 3).
    #[error("registry unreachable: {0}")]
    Unreachable(String),
    /// Credentials missing or rejected.
    #[error("authentication failed: {0}")]
    Unauthenticated(String),
    /// The caller lacks a permission; `operation` names the call.
    #[error("permission denied for {operation}: {message}")]
    PermissionDenied { operation: String, message: String },
    /// The object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The object already exists.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The request was rejected as invalid.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The outcome of a write is unknown (timeout or 5xx after sending).
    #[error("outcome unknown: {0}")]
    Ambiguous(String),
    /// Any other failure reported by the registry.
    #[error("{0}")]
    Other(String),
    /// A write (or request) would have carried the value of a secret
    /// modelsync was given; nothing was sent.
    #[error("refused to {operation}: it would send {leak}; nothing was sent")]
    Leak {
        operation: String,
        leak: crate::secret::Leak,
    },
}

impl RegistryError {
    /// True when the error means the registry could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, RegistryError::Unreachable(_))
    }

    /// The same error, saying where it happened (`source registry dev
    /// (https://…)`) in front of its message.
    pub fn at(self, place: &str) -> RegistryError {
        use RegistryError as E;
        let with = |m: String| format!("{place}: {m}");
        match self {
            E::Unreachable(m) => E::Unreachable(with(m)),
            E::Unauthenticated(m) => E::Unauthenticated(with(m)),
            E::PermissionDenied { operation, message } => E::PermissionDenied {
                operation: format!("{operation} on {place}"),
                message,
            },
            E::NotFound(m) => E::NotFound(with(m)),
            E::AlreadyExists(m) => E::AlreadyExists(with(m)),
            E::Invalid(m) => E::Invalid(with(m)),
            E::Ambiguous(m) => E::Ambiguous(with(m)),
            E::Other(m) => E::Other(with(m)),
            E::Leak { operation, leak } => E::Leak {
                operation: format!("{operation} on {place}"),
                leak,
            },
        }
    }
}

/// An error and its sources, joined with ": " (a transport error's causes,
/// for messages; reqwest's never carry URL credentials).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        cur = s.source();
    }
    out
}

/// Result alias for registry calls.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// One registry. Implementations keep the semantics of MLflow's registry
/// (numbering, stages, aliases, tags, validation rules) so that the planner
/// and executor never need to know which one they talk to.
///
/// Every write is idempotent where MLflow's is, and `create_version` never
/// registers a source twice: it looks for a version with the same declared
/// source first, also after an ambiguous failure.
pub trait Registry: Sync {
    /// A display name for logs and saved plans: the URI without credentials.
    fn uri(&self) -> String;

    /// Reads the models, their versions and aliases, and experiments, in bulk.
    fn snapshot(&self, req: &SnapshotRequest) -> impl Future<Output = Result<LiveState>> + Send;

    /// Answers, per declared source, what the registry would store for it
    /// (MLflow 3: `runs:/<run>/<name>` -> `models:/<model_id>`), or that it
    /// cannot be registered and why (the run does not exist, or holds no
    /// model there). Sources the registry does not check are left out.
    fn resolve_sources(
        &self,
        sources: &[String],
    ) -> impl Future<Output = Result<BTreeMap<String, SourceResolution>>> + Send;

    /// Waits while `version` of `model` is PENDING_REGISTRATION, polling
    /// with backoff up to a bound (MLflow: `MODELSYNC_REGISTRATION_WAIT`,
    /// default 300 s), and returns its last reading, which may still be
    /// pending; `None` when the version does not exist.
    fn await_registration(
        &self,
        model: &str,
        version: u64,
    ) -> impl Future<Output = Result<Option<LiveVersion>>> + Send;

    /// Reads runs (latest metric values); unknown ids are left out.
    fn get_runs(
        &self,
        run_ids: &[String],
    ) -> impl Future<Output = Result<BTreeMap<String, LiveRun>>> + Send;

    /// Reads MLflow 3 logged models (their metrics, with datasets);
    /// unknown ids are left out. `experiment_ids` are where they are likely
    /// to be (the experiments of the versions' runs), so that one search
    /// finds them all.
    fn get_logged_models(
        &self,
        model_ids: &[String],
        experiment_ids: &[String],
    ) -> impl Future<Output = Result<BTreeMap<String, LiveLoggedModel>>> + Send;

    /// Reads one model with its versions and aliases (read-check-write).
    fn get_model(&self, name: &str) -> impl Future<Output = Result<Option<LiveModel>>> + Send;

    fn create_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn update_model_description(
        &self,
        name: &str,
        description: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    fn set_model_tag(
        &self,
        name: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    fn delete_model_tag(&self, name: &str, key: &str) -> impl Future<Output = Result<()>> + Send;

    /// Registers a version unless one with the same declared source exists;
    /// returns the version (new or found). Waits until it is READY.
    fn create_version(
        &self,
        model: &str,
        new: &NewVersion,
    ) -> impl Future<Output = Result<LiveVersion>> + Send;
    /// Registers a version without searching for its declared source
    /// first: for a caller that read the model's versions during this pass,
    /// before any write, and found none with this source (or created the
    /// model itself). After an ambiguous failure it still re-reads before
    /// any re-send, so a lost answer never registers the source twice.
    /// Waits until it is READY. Two appliers racing past the lease are
    /// caught afterwards by [`Registry::keep_first_registered`].
    fn create_version_unseen(
        &self,
        model: &str,
        new: &NewVersion,
    ) -> impl Future<Output = Result<LiveVersion>> + Send;
    /// The duplicate backstop, once per model after its registrations:
    /// `registered` maps declared source -> the version this run created.
    /// One read of the model's versions; where a lower version holds the
    /// same declared source (another applier registered it concurrently),
    /// the one this run created is deleted and the lower one answered.
    /// Returns declared source -> the version to use.
    fn keep_first_registered(
        &self,
        model: &str,
        registered: &BTreeMap<String, u64>,
    ) -> impl Future<Output = Result<BTreeMap<String, u64>>> + Send;
    fn update_version_description(
        &self,
        model: &str,
        version: u64,
        description: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    fn set_version_tag(
        &self,
        model: &str,
        version: u64,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    fn delete_version_tag(
        &self,
        model: &str,
        version: u64,
        key: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Moves one version into `stage`; never archives other versions.
    fn transition_stage(
        &self,
        model: &str,
        version: u64,
        stage: Stage,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Moves one version into `stage` (Staging or Production) and, in the
    /// same write, archives every other version of the model in that stage
    /// (MLflow: `archive_existing_versions=true`, one transaction). Atomic
    /// make-before-break: the stage is never empty in between. `Ok(false)`:
    /// the server could not archive in the same write (MLflow on PostgreSQL,
    /// see `docs/mlflow-rest.md`), so only the move was made and the caller
    /// archives the other holders itself.
    fn transition_stage_archiving(
        &self,
        model: &str,
        version: u64,
        stage: Stage,
    ) -> impl Future<Output = Result<bool>> + Send;
    fn set_alias(
        &self,
        model: &str,
        alias: &str,
        version: u64,
    ) -> impl Future<Output = Result<()>> + Send;
    fn delete_alias(&self, model: &str, alias: &str) -> impl Future<Output = Result<()>> + Send;

    /// Creates an experiment; returns its id.
    fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<String>> + Send;
    fn set_experiment_tag(
        &self,
        experiment_id: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Makes the writes so far durable (the embedded registry writes its
    /// file; MLflow's writes are durable already).
    fn flush(&self) -> impl Future<Output = Result<()>> + Send;

    /// Where a copy (`from:`) goes in this registry: only MLflow holds
    /// copies (they need a run and an artifact store); `None` elsewhere.
    fn copy_target(&self) -> Option<CopyTarget<'_>> {
        None
    }

    /// What this registry can do (MLflow: asked once, `GET /version`).
    fn capabilities(&self) -> impl Future<Output = Result<Capabilities>> + Send;

    /// Where the bytes of `version` of `model` are: the storage location
    /// the registry answers (MLflow: `model-versions/get-download-uri`,
    /// followed through `runs:/` and `models:/m-…`; the embedded registry:
    /// the source as written). Reads no bytes;
    /// [`crate::state::artifacts::serving_uri`] says whether a model
    /// server can fetch it.
    fn locate_version(
        &self,
        model: &str,
        version: &LiveVersion,
    ) -> impl Future<Output = Result<String>> + Send;

    /// The bytes behind `version` of `model`, read during a pass (the
    /// digest recorded at its first move, the `digest: unchanged` gate):
    /// their location, files and digest ([`crate::state::digest`]), each
    /// file streamed through the hash once per registry instance.
    /// `Ok(Err(why))` when they cannot be read. A path on this machine is
    /// read only where MLflow handed it out, never because a manifest
    /// wrote it; the embedded registry reads no bytes in a pass (it holds
    /// only what manifests wrote, and serves offline plans).
    fn version_tree(
        &self,
        model: &str,
        version: &LiveVersion,
    ) -> impl Future<Output = Result<std::result::Result<ArtifactTree, String>>> + Send;

    /// The bytes a registration of `declared` (which the registry
    /// resolved to `resolved`, if it did) will point at, read before the
    /// version exists, so that its create carries its digest; the same
    /// rule for host paths as [`Registry::version_tree`].
    fn source_tree(
        &self,
        declared: &str,
        resolved: Option<&ResolvedSource>,
    ) -> impl Future<Output = Result<std::result::Result<ArtifactTree, String>>> + Send;

    /// `modelsync resolve`: the bytes behind `version` of `model`, for the
    /// person who asked (the embedded registry reads its `file:` sources
    /// too). An error when they cannot be read.
    fn resolve_version(
        &self,
        model: &str,
        version: &LiveVersion,
    ) -> impl Future<Output = Result<ArtifactTree>> + Send;

    /// The prompts among `names` that exist (a name held by a registered
    /// model that is not a prompt is reported as `not_a_prompt`). Only
    /// MLflow 3 has a prompt registry; the others answer an error (the
    /// pass checks [`Registry::capabilities`] first).
    fn read_prompts(
        &self,
        names: &BTreeSet<String>,
    ) -> impl Future<Output = Result<BTreeMap<String, LivePrompt>>> + Send {
        let _ = names;
        async { Err(no_prompt_registry()) }
    }

    /// Every prompt (export).
    fn list_prompts(&self) -> impl Future<Output = Result<BTreeMap<String, LivePrompt>>> + Send {
        async { Err(no_prompt_registry()) }
    }

    /// The names of every prompt (a registry without prompts has none);
    /// MLflow reads them once per registry instance (one run).
    fn prompt_names(&self) -> impl Future<Output = Result<BTreeSet<String>>> + Send {
        async { Ok(BTreeSet::new()) }
    }

    /// Creates the prompt `name`.
    fn create_prompt(&self, name: &str) -> impl Future<Output = Result<()>> + Send {
        let _ = name;
        async { Err(no_prompt_registry()) }
    }

    /// Registers a template as a new version of prompt `name`; its number.
    fn create_prompt_version(
        &self,
        name: &str,
        new: &NewPromptVersion,
    ) -> impl Future<Output = Result<u64>> + Send {
        let _ = (name, new);
        async { Err(no_prompt_registry()) }
    }

    /// Points alias `alias` of prompt `name` at `version`.
    fn set_prompt_alias(
        &self,
        name: &str,
        alias: &str,
        version: u64,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (name, alias, version);
        async { Err(no_prompt_registry()) }
    }

    // Permissions (`kind: AccessPolicy`): only MLflow's basic-auth app has
    // them; the others answer an error (the pass checks
    // [`Registry::capabilities`] first).

    /// Who holds which permission on the registered models, and who
    /// modelsync's own principal is.
    fn read_access(&self) -> impl Future<Output = Result<LiveAccess>> + Send {
        async { Err(no_permissions()) }
    }

    /// Gives `principal` `level` on `model`; `before` is the level the plan
    /// saw (`None`: no grant). A grant made meanwhile is replaced.
    fn set_permission(
        &self,
        model: &str,
        principal: &Principal,
        level: Level,
        before: Option<Level>,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (model, principal, level, before);
        async { Err(no_permissions()) }
    }

    /// Takes `principal`'s grant on `model` back (a grant already gone is
    /// fine).
    fn remove_permission(
        &self,
        model: &str,
        principal: &Principal,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (model, principal);
        async { Err(no_permissions()) }
    }
}

fn no_permissions() -> RegistryError {
    RegistryError::Invalid(
        "this registry has no permissions (kind: AccessPolicy needs an MLflow server with the basic-auth app)"
            .into(),
    )
}

/// A template to register as a prompt version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPromptVersion {
    pub template: String,
    /// The version's description in MLflow.
    pub commit_message: Option<String>,
    pub tags: BTreeMap<String, String>,
}

fn no_prompt_registry() -> RegistryError {
    RegistryError::Invalid("this registry has no prompt registry (prompts need MLflow 3)".into())
}

/// Request counters of one registry instance (zero for the embedded one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestStats {
    /// Read requests sent (GETs and read-only POST searches), retries included.
    pub reads: u64,
    /// Write requests sent, retries included.
    pub writes: u64,
    /// Requests that failed (transport error or non-2xx answer).
    pub errors: u64,
    /// Re-sends after a failure (including creates re-sent after a re-read).
    pub retries: u64,
}

/// How to open a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// The caller will write: the embedded registry takes its exclusive lock
    /// (held until the registry is dropped) instead of a shared one.
    pub write: bool,
}
