//! The live state of a registry, as plain data: what `registry/` reads and
//! `plan/` compares against the manifests.
//!
//! This module owns the vocabulary shared by both sides (stages, versions,
//! runs), the tag keys modelsync writes ([`tags`]), and the one rule for
//! which live version a declared source is ([`source`]). It does no I/O and
//! has no async.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod access;
pub mod artifacts;
pub mod capabilities;
pub mod digest;
pub mod history;
pub mod hold;
pub mod source;
pub mod tags;
pub mod verification;

pub use digest::{TreeDigest, TreeFile};
pub use source::DeclaredSource;

/// A model-version stage, as MLflow names them.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
pub enum Stage {
    #[default]
    None,
    Staging,
    Production,
    Archived,
}

impl Stage {
    /// All stages, in MLflow's order.
    pub const ALL: [Stage; 4] = [
        Stage::None,
        Stage::Staging,
        Stage::Production,
        Stage::Archived,
    ];

    /// Parses a stage name without regard to case, as MLflow does.
    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str().eq_ignore_ascii_case(s))
    }

    /// The canonical spelling (`None`, `Staging`, `Production`, `Archived`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::None => "None",
            Stage::Staging => "Staging",
            Stage::Production => "Production",
            Stage::Archived => "Archived",
        }
    }

    /// Stages that hold at most one declared version; the others
    /// (`None`, `Archived`) naturally hold many.
    pub fn is_exclusive(self) -> bool {
        matches!(self, Stage::Staging | Stage::Production)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Registration status of a model version. Only a READY version is ever
/// moved into a stage or behind an alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VersionStatus {
    PendingRegistration,
    FailedRegistration,
    #[default]
    Ready,
}

impl VersionStatus {
    /// MLflow's spelling (`READY`, `PENDING_REGISTRATION`, `FAILED_REGISTRATION`).
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::PendingRegistration => "PENDING_REGISTRATION",
            VersionStatus::FailedRegistration => "FAILED_REGISTRATION",
            VersionStatus::Ready => "READY",
        }
    }
}

/// Everything modelsync knows about the registry at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveState {
    /// Registered models by name.
    pub models: BTreeMap<String, LiveModel>,
    /// Experiments by name.
    pub experiments: BTreeMap<String, LiveExperiment>,
    /// Runs by id: only those the gates need.
    pub runs: BTreeMap<String, LiveRun>,
    /// MLflow 3 logged models by id (`m-...`): only those the gates need.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub logged_models: BTreeMap<String, LiveLoggedModel>,
    /// Declared sources resolved to what the registry would store for them
    /// (MLflow 3 turns `runs:/<run>/<name>` into `models:/<model_id>`).
    /// Only sources that needed resolving are present.
    pub resolved_sources: BTreeMap<String, ResolvedSource>,
    /// Declared sources the registry cannot register, with why (a
    /// `runs:/` source whose run does not exist or holds no model there).
    /// Only sources that needed resolving are present.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unresolvable_sources: BTreeMap<String, String>,
    /// Declared experiments that exist only deleted (MLflow keeps a deleted
    /// experiment's name until it is purged): name -> experiment id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deleted_experiments: BTreeMap<String, String>,
    /// The source versions `from:` names, read from the other registries,
    /// by `FromRef::key`; `Err` says why one cannot be copied (no such
    /// alias, no artifacts).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub copy_sources: BTreeMap<String, Result<CopySource, String>>,
    /// Declared prompts that exist, by name (absent: no such prompt).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prompts: BTreeMap<String, LivePrompt>,
    /// The registry's freeze (`modelsync freeze`), when one stands: every
    /// snapshot that reads models reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze: Option<hold::Freeze>,
    /// Who holds which permission on the registered models, read only when
    /// the manifests declare an `AccessPolicy` (or a declared model records
    /// grants modelsync made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<access::LiveAccess>,
    /// The bytes behind the versions the plan pins or checks (a move of a
    /// version with no recorded digest, a `digest: unchanged` gate), by
    /// model and version; `Err` says why they could not be read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version_trees: BTreeMap<String, BTreeMap<u64, Result<TreeDigest, String>>>,
    /// The bytes of the sources the plan registers, by declared source.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_trees: BTreeMap<String, Result<TreeDigest, String>>,
}

/// A version in another registry that `from:` names, as read there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CopySource {
    /// The registry's name in `modelsync.toml`.
    pub registry: String,
    /// Its URI (no credentials).
    pub uri: String,
    pub model: String,
    pub version: u64,
    #[serde(default)]
    pub run_id: String,
    /// The logged model (MLflow 3), when the version has one.
    #[serde(default)]
    pub model_id: Option<String>,
    /// Where the version's files are (`mlflow-artifacts:/…`, `s3://…`, `file:…`).
    pub artifact_uri: String,
    /// Files under `artifact_uri`, sorted by path, each with its sha256.
    pub files: Vec<TreeFile>,
    /// The digest of the files ([`digest`]: the one definition).
    pub digest: String,
    /// The source run's latest metric values.
    #[serde(default, with = "nan_safe")]
    pub metrics: BTreeMap<String, f64>,
    /// The source run's params.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// The source version's description.
    #[serde(default)]
    pub description: String,
}

impl CopySource {
    /// The total size of the files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// `registry/model/version`: which source version a copy came from.
    pub fn origin(&self) -> String {
        format!("{}/{}/{}", self.registry, self.model, self.version)
    }

    /// The lineage tag: origin, model id and digest. Two copies of the same
    /// bytes of the same version have the same lineage.
    pub fn lineage(&self) -> String {
        format!(
            "{}/{}/{}",
            self.origin(),
            self.model_id.as_deref().unwrap_or("-"),
            self.digest
        )
    }

    /// True when `tag` (a version's or run's lineage tag) is this source's
    /// lineage. Two kinds of copies made by older releases are this copy
    /// too, not a changed source: one that could not see the logged model
    /// (MLflow 3.17 names it only in `source`) carries `-` in its place;
    /// one made before the digest covered the bytes carries the digest of
    /// the (path, size) listing ([`digest::legacy_listing_digest`]) of the
    /// same files.
    pub fn is_lineage(&self, tag: &str) -> bool {
        let legacy = digest::legacy_listing_digest(&self.files);
        let ids = [self.model_id.as_deref().unwrap_or("-"), "-"];
        [self.digest.as_str(), legacy.as_str()]
            .into_iter()
            .flat_map(|d| ids.map(|id| format!("{}/{id}/{d}", self.origin())))
            .any(|candidate| candidate == tag)
    }
}

impl LiveState {
    /// Records the registry's answers for declared sources
    /// ([`crate::registry::Registry::resolve_sources`]).
    pub fn record_resolutions(&mut self, answers: BTreeMap<String, SourceResolution>) {
        for (source, answer) in answers {
            match answer {
                SourceResolution::Resolved(r) => {
                    self.resolved_sources.insert(source, r);
                }
                SourceResolution::Verbatim => {}
                SourceResolution::NotFound(why) => {
                    self.unresolvable_sources.insert(source, why);
                }
            }
        }
    }

    /// The experiments of the runs read (sorted, deduplicated): where the
    /// versions' MLflow 3 logged models are looked for.
    pub fn run_experiments(&self) -> Vec<String> {
        let ids: std::collections::BTreeSet<&String> = self
            .runs
            .values()
            .map(|r| &r.experiment_id)
            .filter(|e| !e.is_empty())
            .collect();
        ids.into_iter().cloned().collect()
    }

    /// The bytes read behind `version` of `model`, if they were read.
    pub fn version_tree(&self, model: &str, version: u64) -> Option<&Result<TreeDigest, String>> {
        self.version_trees.get(model)?.get(&version)
    }

    /// Replaces one version of a model with a fresher reading of it.
    pub fn update_version(&mut self, model: &str, version: LiveVersion) {
        if let Some(m) = self.models.get_mut(model) {
            m.versions.insert(version.version, version);
        }
    }
}

/// What the registry answers for one declared source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceResolution {
    /// Registered as something else (MLflow 3: the run's logged model).
    Resolved(ResolvedSource),
    /// Registered as declared; the registry found what it names.
    Verbatim,
    /// Cannot be registered: what was not found.
    NotFound(String),
}

/// A small sorted map, kept as one sorted vector: a model's tags and
/// aliases are a few entries each, and a `BTreeMap` holds even one entry
/// in a node of eleven (544 bytes for one tag; 10,000 models hold several
/// such maps each, live and declared).
pub type SmallMap<K, V> = litemap::LiteMap<K, V>;

/// A registered model and all its versions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveModel {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: SmallMap<String, String>,
    /// Alias -> version number.
    #[serde(default)]
    pub aliases: SmallMap<String, u64>,
    /// Version number -> version.
    #[serde(default)]
    pub versions: BTreeMap<u64, LiveVersion>,
    #[serde(default)]
    pub creation_timestamp: i64,
    #[serde(default)]
    pub last_updated_timestamp: i64,
}

impl LiveModel {
    /// Versions currently in `stage`, lowest number first.
    pub fn holders(&self, stage: Stage) -> impl Iterator<Item = &LiveVersion> {
        self.versions.values().filter(move |v| v.stage == stage)
    }

    /// Aliases pointing at `version`, sorted.
    pub fn aliases_of(&self, version: u64) -> Vec<String> {
        self.aliases
            .iter()
            .filter(|(_, v)| **v == version)
            .map(|(a, _)| a.clone())
            .collect()
    }
}

/// One model version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveVersion {
    pub version: u64,
    #[serde(default)]
    pub stage: Stage,
    #[serde(default)]
    pub source: String,
    /// Empty when the version has no run.
    #[serde(default)]
    pub run_id: String,
    /// MLflow 3 logged-model id (`m-...`), empty when absent.
    #[serde(default)]
    pub model_id: String,
    #[serde(default)]
    pub status: VersionStatus,
    /// Why a registration failed or is pending, as the registry says.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_message: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub creation_timestamp: i64,
    #[serde(default)]
    pub last_updated_timestamp: i64,
}

/// An experiment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveExperiment {
    pub experiment_id: String,
    pub name: String,
    #[serde(default)]
    pub artifact_location: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A run, reduced to what gates read: its latest metric values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveRun {
    pub run_id: String,
    #[serde(default)]
    pub experiment_id: String,
    /// Metric key -> latest value (NaN kept as NaN).
    #[serde(default, with = "nan_safe")]
    pub metrics: BTreeMap<String, f64>,
}

/// An MLflow 3 logged model, reduced to what gates read: the metrics
/// logged against it (by any run, on any dataset).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveLoggedModel {
    pub model_id: String,
    #[serde(default)]
    pub experiment_id: String,
    /// Every metric entry, as MLflow keeps them (one per key, step,
    /// timestamp and dataset), in the registry's order.
    #[serde(default)]
    pub metrics: Vec<LoggedMetric>,
}

/// One metric value logged against a logged model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoggedMetric {
    pub key: String,
    /// NaN kept as NaN (written `"NaN"`, as MLflow does).
    #[serde(with = "nan_safe_one")]
    pub value: f64,
    #[serde(default)]
    pub step: i64,
    #[serde(default)]
    pub timestamp: i64,
    /// The evaluation dataset, when the metric was logged with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_digest: Option<String>,
    /// The run that logged it (often an evaluation run, not the training run).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_id: String,
}

/// What the registry stores for a declared source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedSource {
    /// The source to send to `model-versions/create`.
    pub source: String,
    /// The run the version comes from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The MLflow 3 logged model, when the source resolved to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// Where the files are, as the registry answered it (the logged
    /// model's artifact location), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// Serializes metric maps so that NaN and infinities survive JSON, spelled
/// the way MLflow spells them (`"NaN"`, `"Infinity"`, `"-Infinity"`).
mod nan_safe {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeMap};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        F(f64),
        S(String),
    }

    pub fn serialize<S: Serializer>(m: &BTreeMap<String, f64>, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(m.len()))?;
        for (k, v) in m {
            if v.is_finite() {
                map.serialize_entry(k, v)?;
            } else if v.is_nan() {
                map.serialize_entry(k, "NaN")?;
            } else if *v > 0.0 {
                map.serialize_entry(k, "Infinity")?;
            } else {
                map.serialize_entry(k, "-Infinity")?;
            }
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
        let raw = BTreeMap::<String, Num>::deserialize(d)?;
        Ok(raw
            .into_iter()
            .map(|(k, v)| {
                let f = match v {
                    Num::F(f) => f,
                    Num::S(s) => super::parse_special_float(&s),
                };
                (k, f)
            })
            .collect())
    }
}

/// [`nan_safe`] for one value.
mod nan_safe_one {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        F(f64),
        S(String),
    }

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if *v > 0.0 {
            s.serialize_str("Infinity")
        } else {
            s.serialize_str("-Infinity")
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(match Num::deserialize(d)? {
            Num::F(f) => f,
            Num::S(s) => super::parse_special_float(&s),
        })
    }
}

/// Parses MLflow's spelling of non-finite doubles; anything unknown is NaN.
pub fn parse_special_float(s: &str) -> f64 {
    match s {
        "Infinity" | "inf" | "+Infinity" => f64::INFINITY,
        "-Infinity" | "-inf" => f64::NEG_INFINITY,
        other => other.parse().unwrap_or(f64::NAN),
    }
}

/// A prompt as the registry holds it (MLflow 3: a registered model tagged
/// `mlflow.prompt.is_prompt=true`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LivePrompt {
    /// Version number -> template text (tag `mlflow.prompt.text`).
    pub versions: BTreeMap<u64, String>,
    /// Alias -> version number.
    pub aliases: BTreeMap<String, u64>,
    /// The name is held by a registered model that is not a prompt:
    /// modelsync will not touch it as one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_a_prompt: bool,
}

impl LivePrompt {
    /// The newest version holding `text` (the one aliases are pointed at
    /// when several hold it).
    pub fn holder(&self, text: &str) -> Option<u64> {
        self.versions
            .iter()
            .rev()
            .find(|(_, t)| t.as_str() == text)
            .map(|(n, _)| *n)
    }
}
