//! `kind: Prompt`: an MLflow prompt (a registered model MLflow tags
//! `mlflow.prompt.is_prompt=true`) whose versions are templates.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::super::yaml::{Located, LocatedMap};
use super::{ApiVersion, Metadata, TagValue, rules};

/// `kind` of a prompt document.
pub const KIND_PROMPT: &str = "Prompt";

/// `spec` of a `Prompt`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PromptSpec {
    /// Local handles for prompt versions; a version's identity is its template text.
    #[serde(default, skip_serializing_if = "LocatedMap::is_empty")]
    #[schemars(transform = rules::handle_keys)]
    pub versions: LocatedMap<PromptVersionSpec>,
    /// Alias -> handle (a key of `versions`).
    #[serde(default, skip_serializing_if = "LocatedMap::is_empty")]
    #[schemars(transform = rules::alias_keys)]
    pub aliases: LocatedMap<Located<String>>,
}

/// One entry of a prompt's `spec.versions`: exactly one of `template` and
/// `templateFile`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(transform = rules::template_exactly_one)]
pub struct PromptVersionSpec {
    /// The template text (MLflow's `{{variable}}` syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Located<String>>,
    /// A file holding the template, relative to this manifest file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::not_blank)]
    pub template_file: Option<Located<String>>,
    /// The commit message (the version's description in MLflow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::description)]
    pub commit_message: Option<Located<String>>,
    /// Tags set on the version when it is registered.
    #[serde(default, skip_serializing_if = "LocatedMap::is_empty")]
    #[schemars(transform = rules::registry_tags)]
    pub tags: LocatedMap<TagValue>,
}

/// `kind: Prompt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum PromptKind {
    #[default]
    Prompt,
}

/// An MLflow prompt: its template versions and aliases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PromptDocument {
    pub api_version: ApiVersion,
    pub kind: PromptKind,
    #[schemars(transform = rules::model_metadata)]
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: PromptSpec,
}
