//! The manifest documents as serde/schemars types (the JSON Schema source).
//!
//! Two sets of types live here:
//! - the specs ([`ModelSpec`], [`ExperimentSpec`], [`Metadata`] and what
//!   they contain), used for parsing (with positions, via
//!   [`Located`]/[`LocatedMap`]), for the JSON Schema and for `export`;
//! - the envelopes: [`Document`] is what the parser produces (a custom
//!   deserializer picks the spec type from `kind`), while
//!   [`ManifestDocument`] describes the same envelope precisely for the JSON
//!   Schema and for emitting.
//!
//! `schema/prompt.rs` holds `kind: Prompt`, `schema/approvals.rs` the
//! `approvals` gate.
//!
//! Unknown fields are rejected everywhere (`deny_unknown_fields`). Values
//! that need semantic checks (stage names, version numbers, durations) are
//! kept loosely typed here and checked in `validate`, so that one file can
//! report many problems at once. The JSON Schema carries the same checks of
//! single values as patterns and `oneOf`s (`schema/rules.rs`); what needs
//! more than one value (handles defined, duplicates) only `validate` checks.

use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::yaml::{Located, LocatedMap};

mod access;
mod approvals;
mod prompt;
mod rules;
mod verify;

pub use access::{
    AccessPolicyDocument, AccessPolicyKind, AccessPolicySpec, GrantSpec, KIND_ACCESS_POLICY,
    ModelAccessSpec,
};
pub use approvals::{ApprovalsSpec, ApproverList};
pub use prompt::{KIND_PROMPT, PromptDocument, PromptKind, PromptSpec, PromptVersionSpec};
pub use verify::{CheckSpec, ExpectSpec, HttpCheckSpec, VerifyMap, VerifySpec};

/// The only supported `apiVersion`.
pub const API_VERSION: &str = "modelsync/v1";
/// `kind` of a registered-model document.
pub const KIND_MODEL: &str = "RegisteredModel";
/// `kind` of an experiment document.
pub const KIND_EXPERIMENT: &str = "Experiment";

/// `metadata` of any document.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// The registered model's or experiment's name.
    pub name: Located<String>,
}

/// `spec` of a `RegisteredModel`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelSpec {
    /// The model's description; left alone when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::description)]
    pub description: Option<Located<String>>,
    /// Tags to set on the model; other live tags are left alone.
    #[serde(default, skip_serializing_if = "LocatedMap::is_empty")]
    #[schemars(transform = rules::registry_tags)]
    pub tags: LocatedMap<TagValue>,
    /// Local handles for versions, used by `stages` and `aliases`.
    #[serde(default, skip_serializing_if = "LocatedMap::is_empty")]
    #[schemars(transform = rules::handle_keys)]
    pub versions: LocatedMap<VersionSpec>,
    /// Stage (`None`, `Staging`, `Production`, `Archived`, any case) -> handle or bare version number.
    #[serde(default, skip_serializing_if = "LocatedMap::is_empty")]
    #[schemars(transform = rules::stage_keys)]
    pub stages: LocatedMap<Located<VersionRef>>,
    /// Alias -> handle or bare version number.
    #[serde(default, skip_serializing_if = "LocatedMap::is_empty")]
    #[schemars(transform = rules::alias_keys)]
    pub aliases: LocatedMap<Located<VersionRef>>,
    /// Declared stage or alias -> checks that must pass before a version moves there.
    #[serde(default, skip_serializing_if = "LocatedMap::is_empty")]
    #[schemars(transform = rules::gate_keys)]
    pub gates: LocatedMap<Vec<Located<GateSpec>>>,
    /// Declared stage or alias -> checks a version must keep passing after
    /// it moved there (`docs/after-the-move.md`).
    #[serde(default, skip_serializing_if = "LocatedMap::is_empty")]
    #[schemars(transform = rules::gate_keys)]
    pub verify: VerifyMap,
}

/// One entry of `spec.versions`: exactly one of `version` or `source`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(transform = rules::version_exactly_one)]
pub struct VersionSpec {
    /// An existing version, by number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::version_number)]
    pub version: Option<Located<i64>>,
    /// The artifact source; the version is registered if no version has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::source)]
    pub source: Option<Located<String>>,
    /// A version copied from another registry (declared in `modelsync.toml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Located<FromSpec>>,
    /// The run the source comes from (derived from `runs:/<id>/...` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::not_blank)]
    pub run_id: Option<Located<String>>,
    /// The version's description; left alone when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::description)]
    pub description: Option<Located<String>>,
    /// Tags to set on the version.
    #[serde(default, skip_serializing_if = "LocatedMap::is_empty")]
    #[schemars(transform = rules::registry_tags)]
    pub tags: LocatedMap<TagValue>,
}

/// `from:` in a version: the version of another registry's model behind an
/// alias, a number or a stage, copied into this registry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(transform = rules::from_exactly_one)]
pub struct FromSpec {
    /// A registry declared under `[registries.NAME]` in `modelsync.toml`.
    #[schemars(transform = rules::not_blank)]
    pub registry: Located<String>,
    /// The registered model in that registry.
    #[schemars(transform = rules::not_blank)]
    pub model: Located<String>,
    /// The version behind this alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::not_blank)]
    pub alias: Option<Located<String>>,
    /// This version number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::version_number)]
    pub version: Option<Located<i64>>,
    /// The latest version in this stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::not_blank)]
    pub stage: Option<Located<String>>,
    /// The experiment (in this registry) that holds the copied run; default
    /// `modelsync-copies`, created when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::not_blank)]
    pub experiment: Option<Located<String>>,
}

/// A reference to a version in `stages` and `aliases`: a handle name or a
/// bare version number (a quoted all-digit string counts as a number).
#[derive(Debug, Clone, PartialEq)]
pub enum VersionRef {
    Number(i64),
    Handle(String),
}

impl<'de> Deserialize<'de> for VersionRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = VersionRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a version handle or a version number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<VersionRef, E> {
                Ok(VersionRef::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<VersionRef, E> {
                i64::try_from(v)
                    .map(VersionRef::Number)
                    .map_err(|_| E::custom(format!("version number {v} is too large")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<VersionRef, E> {
                if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                    return v
                        .parse()
                        .map(VersionRef::Number)
                        .map_err(|_| E::custom(format!("version number {v} is too large")));
                }
                Ok(VersionRef::Handle(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for VersionRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            VersionRef::Number(n) => s.serialize_i64(*n),
            VersionRef::Handle(h) => s.serialize_str(h),
        }
    }
}

impl JsonSchema for VersionRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "VersionRef".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        rules::version_ref()
    }
}

/// A tag value: a string; YAML numbers and booleans are kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct TagValue(pub String);

impl JsonSchema for TagValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TagValue".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "A tag value (numbers and booleans are kept as written).",
            "type": ["string", "number", "boolean"]
        })
    }
}

/// A number that must be written as a YAML number (a quoted `"0.9"` is a
/// wrong-type error, not silently converted).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number(pub f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl JsonSchema for Number {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Number".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({"type": "number"})
    }
}

/// One gate: exactly one of `metric` (with `atLeast`/`atMost`), `beats`,
/// `soak`, `requireTag`, `approvals` or `digest`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(transform = rules::gate_exactly_one)]
pub struct GateSpec {
    /// A metric of the version's run that must be within bounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::not_empty)]
    pub metric: Option<Located<String>>,
    /// Lower bound (inclusive) for `metric`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<Located<Number>>,
    /// Upper bound (inclusive) for `metric`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<Located<Number>>,
    /// Only the value logged on this evaluation dataset counts (MLflow 3
    /// logged-model metrics carry the dataset's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::not_empty)]
    pub dataset: Option<Located<String>>,
    /// The dataset's digest, narrowing `dataset` further.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::not_empty)]
    pub dataset_digest: Option<Located<String>>,
    /// The candidate must beat the alias holder's metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beats: Option<Located<BeatsSpec>>,
    /// The version must have held a stage or alias for a while.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<Located<SoakSpec>>,
    /// The version must carry a tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_tag: Option<Located<RequireTagSpec>>,
    /// Signed approvals by principals of the approvers file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<Located<ApprovalsSpec>>,
    /// `unchanged`: the bytes behind the version must still be the ones
    /// whose digest modelsync recorded (`modelsync.digest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::digest_value)]
    pub digest: Option<Located<String>>,
    /// The version's verification in this stage or alias must have passed
    /// (`verify:`), at least `for` ago.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::verified_in)]
    pub verified_in: Option<Located<String>>,
    /// With `verifiedIn`: how long ago the verification must have passed
    /// (default: any time).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::duration)]
    pub for_: Option<Located<String>>,
}

/// `beats: {alias, metric, by, dataset, datasetDigest}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BeatsSpec {
    #[schemars(transform = rules::alias_value)]
    pub alias: Located<String>,
    #[schemars(transform = rules::not_empty)]
    pub metric: Located<String>,
    /// Margin the candidate must exceed the holder by (default 0.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Located<Number>>,
    /// Both values must be the ones logged on this evaluation dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::not_empty)]
    pub dataset: Option<Located<String>>,
    /// The dataset's digest, narrowing `dataset` further.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::not_empty)]
    pub dataset_digest: Option<Located<String>>,
}

/// `soak: {stage | alias, for}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = rules::soak_exactly_one)]
pub struct SoakSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::stage_value)]
    pub stage: Option<Located<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::alias_value)]
    pub alias: Option<Located<String>>,
    /// A duration such as `24h`, `30m` or `1h 30m`.
    #[serde(rename = "for")]
    #[schemars(transform = rules::duration)]
    pub duration: Located<String>,
}

/// `requireTag: {key, value}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequireTagSpec {
    #[schemars(transform = rules::tag_key_value)]
    pub key: Located<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Located<TagValue>>,
}

/// `spec` of an `Experiment`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExperimentSpec {
    /// Where runs store artifacts; only used when the experiment is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::not_blank)]
    pub artifact_location: Option<Located<String>>,
    /// Tags to set on the experiment.
    #[serde(default, skip_serializing_if = "LocatedMap::is_empty")]
    #[schemars(transform = rules::experiment_tags)]
    pub tags: LocatedMap<TagValue>,
}

/// One parsed document. `spec` is typed by `kind`, which must therefore be
/// written before `spec` (as every Kubernetes-style manifest does).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub api_version: Located<String>,
    pub kind: Located<String>,
    pub metadata: Located<Metadata>,
    pub spec: Spec,
}

/// The `spec` of a [`Document`], by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    Model(ModelSpec),
    Experiment(ExperimentSpec),
    Prompt(PromptSpec),
    AccessPolicy(AccessPolicySpec),
    /// The kind is not supported (reported by `validate`); spec not checked.
    Unsupported,
}

const DOCUMENT_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "spec"];

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Document;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a manifest document (a mapping)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
                let mut api_version = None;
                let mut kind: Option<Located<String>> = None;
                let mut metadata = None;
                let mut spec = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "apiVersion" => api_version = Some(map.next_value()?),
                        "kind" => kind = Some(map.next_value()?),
                        "metadata" => metadata = Some(map.next_value()?),
                        "spec" => {
                            let Some(kind) = &kind else {
                                return Err(de::Error::custom(
                                    "\"kind\" must be written before \"spec\"",
                                ));
                            };
                            spec = Some(match kind.value.as_str() {
                                KIND_MODEL => Spec::Model(map.next_value()?),
                                KIND_EXPERIMENT => Spec::Experiment(map.next_value()?),
                                KIND_PROMPT => Spec::Prompt(map.next_value()?),
                                KIND_ACCESS_POLICY => Spec::AccessPolicy(map.next_value()?),
                                _ => {
                                    map.next_value::<IgnoredAny>()?;
                                    Spec::Unsupported
                                }
                            });
                        }
                        other => return Err(de::Error::unknown_field(other, DOCUMENT_FIELDS)),
                    }
                }
                let api_version =
                    api_version.ok_or_else(|| de::Error::missing_field("apiVersion"))?;
                let kind: Located<String> = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
                let metadata = metadata.ok_or_else(|| de::Error::missing_field("metadata"))?;
                let spec = spec.unwrap_or_else(|| match kind.value.as_str() {
                    KIND_MODEL => Spec::Model(ModelSpec::default()),
                    KIND_EXPERIMENT => Spec::Experiment(ExperimentSpec::default()),
                    KIND_PROMPT => Spec::Prompt(PromptSpec::default()),
                    KIND_ACCESS_POLICY => Spec::AccessPolicy(AccessPolicySpec::default()),
                    _ => Spec::Unsupported,
                });
                Ok(Document {
                    api_version,
                    kind,
                    metadata,
                    spec,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// `apiVersion: modelsync/v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    #[default]
    #[serde(rename = "modelsync/v1")]
    V1,
}

/// `kind: RegisteredModel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum ModelKind {
    #[default]
    RegisteredModel,
}

/// `kind: Experiment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum ExperimentKind {
    #[default]
    Experiment,
}

/// A registered model: which version belongs in each stage and alias.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelDocument {
    pub api_version: ApiVersion,
    pub kind: ModelKind,
    #[schemars(transform = rules::model_metadata)]
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: ModelSpec,
}

/// An MLflow experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExperimentDocument {
    pub api_version: ApiVersion,
    pub kind: ExperimentKind,
    #[schemars(transform = rules::experiment_metadata)]
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: ExperimentSpec,
}

/// One modelsync manifest document (the JSON Schema's root).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(title = "modelsync manifest")]
pub enum ManifestDocument {
    RegisteredModel(ModelDocument),
    Experiment(ExperimentDocument),
    Prompt(PromptDocument),
    AccessPolicy(AccessPolicyDocument),
}

/// The JSON Schema of a manifest document, pretty-printed, ending in a newline.
pub fn json_schema() -> String {
    let schema = schemars::SchemaGenerator::default().into_root_schema_for::<ManifestDocument>();
    let mut out = serde_json::to_string_pretty(&schema).expect("a schema always serializes");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED: &str = include_str!("../../schemas/modelsync.schema.json");

    #[test]
    fn committed_schema_is_current() {
        let generated = json_schema();
        if std::env::var_os("UPDATE_SCHEMA").is_some_and(|v| v == "1") {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/modelsync.schema.json");
            std::fs::write(path, &generated).expect("write schemas/modelsync.schema.json");
            return;
        }
        assert!(
            COMMITTED == generated,
            "schemas/modelsync.schema.json is stale; regenerate it with \
             `cargo run -- schema > schemas/modelsync.schema.json` \
             or `UPDATE_SCHEMA=1 cargo test --lib manifest::schema`"
        );
    }

    #[test]
    fn schema_is_valid_json_with_both_kinds() {
        let value: serde_json::Value = serde_json::from_str(&json_schema()).expect("valid JSON");
        let text = value.to_string();
        assert!(text.contains("RegisteredModel") && text.contains("Experiment"));
        assert!(text.contains("artifactLocation") && text.contains("requireTag"));
        assert!(text.contains("templateFile") && text.contains("commitMessage"));
        assert!(text.contains("AccessPolicy") && text.contains("protect"));
    }
}
