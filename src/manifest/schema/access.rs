//! `kind: AccessPolicy`: who may READ, USE, EDIT or MANAGE which registered
//! models (users and roles of MLflow's basic-auth app), and which models
//! only modelsync's own principal may move (`protect: true`).
//! `docs/protection.md` is the user's page.

use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::super::yaml::Located;
use super::ApiVersion;

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
    #[schemars(transform = model_pattern)]
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
#[schemars(transform = user_or_role)]
pub struct GrantSpec {
    /// A user of the basic-auth app, by name (never a password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = principal_name)]
    pub user: Option<Located<String>>,
    /// A role of the workspace, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = principal_name)]
    pub role: Option<Located<String>>,
    /// `READ`, `USE`, `EDIT`, `MANAGE`, or `DENY` (MLflow 3.13+).
    #[schemars(transform = permission)]
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
    #[schemars(transform = not_blank)]
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

fn not_blank(s: &mut Schema) {
    s.insert("pattern".into(), json!(r"\S"));
}

/// A model name (no `/` or `:`, not `.` nor starting with `..`) in which
/// `*` and `?` match.
fn model_pattern(s: &mut Schema) {
    not_blank(s);
    s.insert("not".into(), json!({"pattern": r"[/:]|^\.\.|^\.$"}));
}

/// A user or role name: not blank, no white space or control characters.
fn principal_name(s: &mut Schema) {
    s.insert("pattern".into(), json!(r"^[^\s\p{Cc}]+$"));
}

fn permission(s: &mut Schema) {
    s.insert(
        "enum".into(),
        json!(["READ", "USE", "EDIT", "MANAGE", "DENY"]),
    );
}

fn user_or_role(s: &mut Schema) {
    let one = |k: &str| json!({"required": [k], "properties": {k: {"type": "string"}}});
    s.insert("oneOf".into(), json!([one("user"), one("role")]));
}
