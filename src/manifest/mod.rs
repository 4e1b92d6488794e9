//! Manifests: YAML files in, a validated [`DesiredState`] out.
//!
//! This module owns the user-facing format (`docs/manifest-format.md`). It
//! is pure: it takes file contents that `source/` read, never touches the
//! file system or the network, and has no async. Every problem found is collected as a
//! [`Diagnostic`] with file, line and column; nothing stops at the first.
//!
//! - `schema.rs`: the serde/schemars types of the documents (the JSON Schema
//!   is generated from them).
//! - `yaml.rs`: the only code that knows YAML (parsing with locations, limits,
//!   and emitting manifests for `export`).
//! - `validate.rs`: semantic checks and resolution into [`DesiredState`].
//! - `paths.rs`: the one rule for the paths a manifest names (inside the
//!   manifests root, after symbolic links).
//! - `signers.rs`: git's `allowed_signers` format (the approvers file) and
//!   the SSH signature check `ssh-keygen -Y verify` makes.
//! - `approval.rs`: the signed approval statement and the record stored
//!   in a version tag or an `approvals/` file.
//! - `targets.rs`: targeted passes (`--model`, `--changed-since`): which
//!   declared models a pass covers, and the desired state narrowed to them.
//! - `access.rs`: the desired state of `kind: AccessPolicy` (permissions).
//! - `windows.rs`: promotion windows (`[[windows]]` in `modelsync.toml`),
//!   as written and validated.

pub mod access;
pub mod approval;
pub mod export;
pub mod paths;
pub mod schema;
pub mod signers;
pub mod targets;
pub mod validate;
pub mod verify;
pub mod windows;
pub mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::state::{SmallMap, Stage};

pub use validate::load;

/// One manifest file as read by `source/`: a display path and raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Path as shown in diagnostics (relative to where the user pointed).
    pub path: String,
    pub contents: Vec<u8>,
}

/// Where something was written: file, 1-based line and column. The file
/// name is shared by everything declared in the file (a manifest set of
/// 10,000 models holds 100,000 origins).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Origin {
    pub file: std::sync::Arc<str>,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A problem in the manifests, rendered as `file:line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Diagnostic {
    pub origin: Origin,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

/// Gates per model, per stage or alias (what the executor re-checks).
pub type GateSpecs = BTreeMap<String, BTreeMap<GateTarget, Vec<Gate>>>;

impl DesiredState {
    /// The gates of every model that declares some.
    pub fn gate_specs(&self) -> GateSpecs {
        self.models
            .iter()
            .filter(|(_, m)| !m.gates.is_empty())
            .map(|(name, m)| (name.clone(), m.gates.clone()))
            .collect()
    }

    /// Every `from:` the models declare, once per source version reference
    /// (by [`FromRef::key`]; the first declaration, by model and handle,
    /// when several name it).
    pub fn copy_refs(&self) -> BTreeMap<String, &FromRef> {
        let mut out = BTreeMap::new();
        for dv in self.models.values().flat_map(|m| m.versions.values()) {
            if let Locator::From(from) = &dv.locator {
                out.entry(from.key()).or_insert(&**from);
            }
        }
        out
    }
}

/// What the manifests declare, validated and resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DesiredState {
    /// Registered models by name.
    pub models: BTreeMap<String, DesiredModel>,
    /// Experiments by name.
    pub experiments: BTreeMap<String, DesiredExperiment>,
    /// Prompts (`kind: Prompt`) by name.
    pub prompts: BTreeMap<String, DesiredPrompt>,
    /// Access policies (`kind: AccessPolicy`) by `metadata.name`.
    pub policies: BTreeMap<String, access::DesiredPolicy>,
    /// Other registries (`[registries.NAME]` in `modelsync.toml`): name -> URI.
    pub registries: BTreeMap<String, String>,
    /// The approvers file and the approval files (signed approvals).
    pub approvals: Approvals,
    /// Promotion windows (`[[windows]]` in `modelsync.toml`).
    pub windows: Vec<windows::Window>,
    /// `sha256:<hex>` over every manifest file (path and bytes, sorted by path).
    pub digest: String,
    /// A targeted pass's models and experiments ([`targets`]): the state
    /// was narrowed to them. `None`: everything the manifests declare.
    pub targets: Option<targets::Targets>,
    /// The `templateFile` texts of the prompts a targeted pass left out
    /// (by path): a saved plan holds them too, for its manifests are
    /// validated whole when it is applied.
    pub untargeted_templates: BTreeMap<String, String>,
}

/// What `approvals` gates are checked against, read with the manifests:
/// the approvers file `modelsync.toml` names, and the signed approval
/// files under `approvals/` in each manifests root (read only when an
/// approvers file is named).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Approvals {
    pub approvers: Option<ApproversFile>,
    /// Path -> the record it holds, sorted by path.
    pub files: BTreeMap<String, ApprovalFile>,
}

/// The approvers file: git's allowed_signers format.
#[derive(Debug, Clone, PartialEq)]
pub struct ApproversFile {
    /// The path, joined to the manifests root and normalized (inside
    /// `root`: [`paths::named`]).
    pub path: String,
    pub root: String,
    /// Where `approvers` is written in `modelsync.toml`.
    pub origin: Origin,
    /// The file's text and the signers it lists, once read.
    pub read: Option<(String, signers::AllowedSigners)>,
}

/// One file under `approvals/`: its text and the record in it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalFile {
    pub text: String,
    pub record: approval::Record,
}

impl Approvals {
    /// The signers of the approvers file, once read.
    pub fn signers(&self) -> Option<&signers::AllowedSigners> {
        self.approvers.as_ref()?.read.as_ref().map(|(_, s)| s)
    }

    /// Every file read for approvals, path -> text: the approvers file and
    /// the approval files (what a saved plan keeps).
    pub fn texts(&self) -> BTreeMap<String, String> {
        let approvers = self
            .approvers
            .iter()
            .filter_map(|a| a.read.as_ref().map(|(t, _)| (a.path.clone(), t.clone())));
        let files = self.files.iter().map(|(p, f)| (p.clone(), f.text.clone()));
        approvers.chain(files).collect()
    }
}

/// A declared registered model.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredModel {
    pub name: String,
    /// Where `metadata.name` was written.
    pub origin: Origin,
    /// `None` leaves the live description alone.
    pub description: Option<String>,
    /// Declared tags are set; other live tags are left alone.
    pub tags: BTreeMap<String, String>,
    /// Version handles, by handle name. Bare numbers used in `stages` or
    /// `aliases` are added here under the handle `"<n>"`.
    pub versions: BTreeMap<String, DesiredVersion>,
    /// Stage -> handle (a key of `versions`).
    pub stages: SmallMap<Stage, String>,
    /// Alias -> handle (a key of `versions`).
    pub aliases: SmallMap<String, String>,
    /// Gates per stage or alias.
    pub gates: BTreeMap<GateTarget, Vec<Gate>>,
    /// Verifications after a move, per stage or alias.
    pub verify: BTreeMap<GateTarget, verify::Verification>,
}

/// A declared version (a handle in `spec.versions`; the handle is its key
/// in [`DesiredModel::versions`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredVersion {
    pub origin: Origin,
    pub locator: Locator,
    /// `None` leaves the live description alone.
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// How a declared version is found in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locator {
    /// An existing version, by number.
    Number(u64),
    /// The version registered from this source (registered if absent).
    Source {
        source: String,
        /// The run it came from; for `runs:/<id>/...` sources this is the
        /// `<id>` when not given explicitly.
        run_id: Option<String>,
    },
    /// A version of another registry's model, copied into this registry
    /// (boxed: the other variants are a third of its size, and a manifest
    /// set of 10,000 models holds 100,000 of these).
    From(Box<FromRef>),
}

/// `from:`: which version of which registry's model to copy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FromRef {
    /// The name under `[registries.NAME]`.
    pub registry: String,
    pub model: String,
    pub select: FromSelect,
    /// The experiment in this registry that holds the copied run.
    pub experiment: String,
}

/// How the source version is chosen.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum FromSelect {
    Alias(String),
    Version(u64),
    Stage(Stage),
}

/// The experiment copied runs go to when `from:` names none.
pub const DEFAULT_COPY_EXPERIMENT: &str = "modelsync-copies";

impl FromRef {
    /// A stable key: `registry:model@alias`, `registry:model/3`,
    /// `registry:model~Production` (what `LiveState::copy_sources` is keyed by).
    pub fn key(&self) -> String {
        let sel = match &self.select {
            FromSelect::Alias(a) => format!("@{a}"),
            FromSelect::Version(n) => format!("/{n}"),
            FromSelect::Stage(s) => format!("~{}", s.as_str()),
        };
        format!("{}:{}{sel}", self.registry, self.model)
    }
}

impl fmt::Display for FromSelect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FromSelect::Alias(a) => write!(f, "alias {a}"),
            FromSelect::Version(n) => write!(f, "version {n}"),
            FromSelect::Stage(s) => write!(f, "stage {}", s.as_str()),
        }
    }
}

/// What a gate guards: a stage or an alias.
///
/// Serialized as one string, so that it can key a JSON map (a saved plan's
/// gates): the stage's canonical name (`Production`), or `@` and the alias
/// (`@champion`), as [`fmt::Display`] shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum GateTarget {
    Stage(Stage),
    Alias(String),
}

impl From<GateTarget> for String {
    fn from(t: GateTarget) -> String {
        t.to_string()
    }
}

impl TryFrom<String> for GateTarget {
    type Error = String;

    fn try_from(s: String) -> Result<GateTarget, String> {
        match s.strip_prefix('@') {
            Some(alias) if !alias.is_empty() => Ok(GateTarget::Alias(alias.to_string())),
            Some(_) => Err("a gate target \"@\" needs an alias name".to_string()),
            None => Stage::parse(&s)
                .map(GateTarget::Stage)
                .ok_or_else(|| format!("invalid gate target {s:?}: expected a stage or @alias")),
        }
    }
}

impl fmt::Display for GateTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GateTarget::Stage(s) => write!(f, "{s}"),
            GateTarget::Alias(a) => write!(f, "@{a}"),
        }
    }
}

impl GateTarget {
    /// The name used in tag keys (`modelsync.promoted-at.<name>`): the stage
    /// name, or the alias itself.
    pub fn key(&self) -> String {
        match self {
            GateTarget::Stage(s) => s.as_str().to_string(),
            GateTarget::Alias(a) => a.clone(),
        }
    }

    /// The target a tag key's name stands for: a stage written as MLflow
    /// spells it (`Production`), else an alias.
    pub fn from_key(key: &str) -> GateTarget {
        match crate::state::Stage::parse(key).filter(|s| s.as_str() == key) {
            Some(s) => GateTarget::Stage(s),
            None => GateTarget::Alias(key.to_string()),
        }
    }
}

/// A check that must pass before a version moves into a stage or alias.
/// Serializable so that a saved plan can carry its gates and re-check them
/// just before each move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// A metric of the version (its logged model's, else its run's) must
    /// be within bounds.
    Metric {
        metric: String,
        at_least: Option<f64>,
        at_most: Option<f64>,
        /// Only values logged on this evaluation dataset count.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dataset: Option<Dataset>,
    },
    /// The candidate's metric must be at least the alias holder's plus `by`.
    Beats {
        alias: String,
        metric: String,
        by: f64,
        /// Only values logged on this evaluation dataset count.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dataset: Option<Dataset>,
    },
    /// The version must have held `target` for at least `duration`.
    Soak {
        target: GateTarget,
        duration: Duration,
    },
    /// The version must carry this tag (with this value, when given).
    RequireTag { key: String, value: Option<String> },
    /// At least `required` distinct principals of the approvers file (of
    /// `from`) must have signed an approval of this version for this
    /// target on this registry, and none of them a rejection.
    Approvals { required: u32, from: ApproverSet },
    /// `digest: unchanged`: the bytes behind the version must still be the
    /// ones whose digest modelsync recorded (`modelsync.digest`).
    DigestUnchanged,
    /// The version's verification in `target` (`verify:`) must have
    /// passed at least `duration` ago.
    VerifiedIn {
        target: GateTarget,
        duration: Duration,
    },
}

/// Whose approvals an `approvals` gate counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApproverSet {
    /// Any principal the approvers file lists.
    Any,
    /// These principals (each must also be in the approvers file).
    Listed(Vec<String>),
}

impl ApproverSet {
    /// True when `principal`'s approvals count.
    pub fn admits(&self, principal: &str) -> bool {
        match self {
            ApproverSet::Any => true,
            ApproverSet::Listed(names) => names.iter().any(|n| n == principal),
        }
    }
}

impl fmt::Display for ApproverSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApproverSet::Any => f.write_str("any approver"),
            ApproverSet::Listed(names) => write!(f, "[{}]", names.join(", ")),
        }
    }
}

/// The one value of a `digest` gate.
pub const DIGEST_UNCHANGED: &str = "unchanged";

/// The evaluation dataset a metric gate narrows to: MLflow records a
/// logged model's metric with the dataset's name and digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.digest {
            Some(d) => write!(f, "{} (digest {d})", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A declared prompt: an MLflow registered model tagged
/// `mlflow.prompt.is_prompt=true`, whose versions are templates.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredPrompt {
    pub name: String,
    pub origin: Origin,
    /// Version handles, by handle name.
    pub versions: BTreeMap<String, DesiredPromptVersion>,
    /// Alias -> handle (a key of `versions`).
    pub aliases: BTreeMap<String, String>,
}

/// A declared prompt version; its identity is the template text.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredPromptVersion {
    pub handle: String,
    pub origin: Origin,
    pub template: Template,
    /// The version's description in MLflow.
    pub commit_message: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// A template: its text, or the file it is in (whose text
/// [`validate::resolve_templates`] reads).
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    Text(String),
    File {
        /// The path, joined to the manifest file's folder and normalized
        /// (inside `root`: [`paths::named`]).
        path: String,
        /// The manifests root of the manifest that names it.
        root: String,
        /// Where `templateFile` was written.
        origin: Origin,
        /// The file's text, once read.
        text: Option<String>,
    },
}

impl Template {
    /// The text, once resolved.
    pub fn text(&self) -> Option<&str> {
        match self {
            Template::Text(t) => Some(t),
            Template::File { text, .. } => text.as_deref(),
        }
    }
}

impl DesiredState {
    /// Every resolved `templateFile`: path -> text (what a saved plan keeps
    /// so that it can be validated again without the files).
    pub fn template_files(&self) -> BTreeMap<String, String> {
        let files = self.prompts.values().flat_map(|p| p.versions.values());
        let mut out = self.untargeted_templates.clone();
        out.extend(files.filter_map(|v| match &v.template {
            Template::File {
                path,
                text: Some(t),
                ..
            } => Some((path.clone(), t.clone())),
            _ => None,
        }));
        out
    }
}

/// A declared experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredExperiment {
    pub name: String,
    pub origin: Origin,
    /// Only used when the experiment is created (MLflow cannot change it).
    pub artifact_location: Option<String>,
    pub tags: BTreeMap<String, String>,
}
