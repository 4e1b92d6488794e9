//! `kind: AccessPolicy`: who may READ, USE, EDIT or MANAGE which registered
//! models (users and roles of MLflow's basic-auth app), and which models
//! only modelsync's own principal may move (`protect: true`).
//! `docs/protection.md` is the user's page.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::super::yaml::Located;
use super::{ApiVersion, rules};

/// `kind` of an access-policy document.
pub const KIND_ACCESS_POLICY: &str = "AccessPolicy";

/// `spec` of an `AccessPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessPolicySpec {
    /// Registered models, by name or glob (`*` any characters, `?` one),
    /// and the permissions on them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<Located<ModelAccessSpec>>,
}

/// One entry of `spec.models`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelAccessSpec {
    /// A registered model's name, or a glob over the names.
    #[schemars(transform = rules::model_pattern)]
    pub name: Located<String>,
    /// Only modelsync's own principal may move this model's stages and
    /// aliases: every grant here gives at most READ (or DENY), and every
    /// run warns when another principal could.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protect: Option<Located<bool>>,
    /// Who may do what.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<Located<GrantSpec>>,
}

/// One grant: exactly one of `user` and `role`, and a permission.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = rules::user_or_role)]
pub struct GrantSpec {
    /// A user of the basic-auth app, by name (never a password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::principal_name)]
    pub user: Option<Located<String>>,
    /// A role of the workspace, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::principal_name)]
    pub role: Option<Located<String>>,
    /// `READ`, `USE`, `EDIT`, `MANAGE`, or `DENY` (MLflow 3.13+).
    #[schemars(transform = rules::permission)]
    pub permission: Located<String>,
}

/// `kind: AccessPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum AccessPolicyKind {
    #[default]
    AccessPolicy,
}

/// `metadata` of an access policy: its name, a label for plans and logs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyMetadata {
    #[schemars(transform = rules::not_blank)]
    pub name: Located<String>,
}

/// Permissions on registered models, as code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AccessPolicyDocument {
    pub api_version: ApiVersion,
    pub kind: AccessPolicyKind,
    pub metadata: PolicyMetadata,
    #[serde(default)]
    pub spec: AccessPolicySpec,
}
