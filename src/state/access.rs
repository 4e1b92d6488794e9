//! Permissions on registered models, as MLflow's basic-auth app keeps them:
//! the vocabulary ([`Level`], [`Principal`]), what one read of the server
//! found ([`LiveAccess`]), and the server's own rule for the permission a
//! user ends up with ([`LiveAccess::my_level`]), for both permission APIs.
//!
//! The rules, as the servers implement them (`docs/mlflow-rest.md`,
//! "Permissions"):
//! - RBAC (MLflow 3.13+): every grant is a row of a role; a user's direct
//!   grants live in a role of their own. Among the grants that match a
//!   model (its name, or `*`), an explicit `DENY` wins; otherwise the
//!   highest, never below the server's `default_permission`. No grant: the
//!   default.
//! - Per-resource (before 3.13): a user's direct grant on the model, and
//!   the highest of their roles' grants; both present: the higher; one:
//!   that one (a direct grant is not raised to the default); none: the
//!   default. There is no `DENY`.
//! - Admins pass every check.
//!
//! Plain data and pure functions: no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::capabilities::PermissionApi;

/// A permission level on a registered model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    /// Read the model and its versions.
    Read,
    /// Read, and use (serving, gateways).
    Use,
    /// Also update: register versions, move stages, set aliases and tags.
    Edit,
    /// Also delete (versions, aliases, tags) and manage permissions.
    Manage,
    /// An explicit veto (RBAC, MLflow 3.13+): nothing, whatever else is
    /// granted.
    Deny,
    /// Nothing (a per-resource grant before 3.13 may say so; modelsync
    /// never declares it).
    NoPermissions,
}

impl Level {
    /// Every level a manifest may declare.
    pub const DECLARABLE: [Level; 5] = [
        Level::Read,
        Level::Use,
        Level::Edit,
        Level::Manage,
        Level::Deny,
    ];

    /// MLflow's spelling (`READ`, …, `NO_PERMISSIONS`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Read => "READ",
            Level::Use => "USE",
            Level::Edit => "EDIT",
            Level::Manage => "MANAGE",
            Level::Deny => "DENY",
            Level::NoPermissions => "NO_PERMISSIONS",
        }
    }

    /// Parses MLflow's spelling, exactly.
    pub fn parse(s: &str) -> Option<Level> {
        [
            Level::Read,
            Level::Use,
            Level::Edit,
            Level::Manage,
            Level::Deny,
            Level::NoPermissions,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
    }

    /// MLflow's priority: `DENY` below everything, then nothing, READ, USE,
    /// EDIT, MANAGE.
    fn rank(self) -> i8 {
        match self {
            Level::Deny => -1,
            Level::NoPermissions => 0,
            Level::Read => 1,
            Level::Use => 2,
            Level::Edit => 3,
            Level::Manage => 4,
        }
    }

    /// The higher of two levels (MLflow's `max_permission`).
    pub fn max(self, other: Level) -> Level {
        if self.rank() >= other.rank() {
            self
        } else {
            other
        }
    }

    /// May move stages and set aliases (EDIT or MANAGE).
    pub fn can_update(self) -> bool {
        self.rank() >= Level::Edit.rank()
    }

    /// May delete aliases and manage permissions (MANAGE).
    pub fn can_manage(self) -> bool {
        self == Level::Manage
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a grant is for: a user or a role (of the workspace modelsync works
/// in). Written `user:NAME` / `role:NAME` where it keys a JSON map; shown
/// `user NAME` / `role NAME`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Principal {
    User(String),
    Role(String),
}

impl Principal {
    /// The name, without the kind.
    pub fn name(&self) -> &str {
        match self {
            Principal::User(n) | Principal::Role(n) => n,
        }
    }

    /// `user:NAME` / `role:NAME`.
    pub fn key(&self) -> String {
        match self {
            Principal::User(n) => format!("user:{n}"),
            Principal::Role(n) => format!("role:{n}"),
        }
    }
}

impl From<Principal> for String {
    fn from(p: Principal) -> String {
        p.key()
    }
}

impl TryFrom<String> for Principal {
    type Error = String;

    fn try_from(s: String) -> Result<Principal, String> {
        match s.split_once(':') {
            Some(("user", n)) if !n.is_empty() => Ok(Principal::User(n.to_string())),
            Some(("role", n)) if !n.is_empty() => Ok(Principal::Role(n.to_string())),
            _ => Err(format!("{s:?} is not user:NAME or role:NAME")),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::User(n) => write!(f, "user {n}"),
            Principal::Role(n) => write!(f, "role {n}"),
        }
    }
}

/// Grants on one thing: principal -> level.
pub type Grants = BTreeMap<Principal, Level>;

/// What one read of the basic-auth app found, for the models modelsync may
/// cover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveAccess {
    /// The permission API the server has.
    pub api: PermissionApi,
    /// The user modelsync authenticates as (its principal).
    pub me: String,
    /// True when that user is an admin (admins pass every check).
    pub me_admin: bool,
    /// True when that user administers the workspace (RBAC: `MANAGE` on
    /// the workspace), which lets it grant to roles.
    #[serde(default)]
    pub me_workspace_admin: bool,
    /// The roles that user is assigned (named roles only).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub my_roles: BTreeSet<String>,
    /// The server's `default_permission`, when it says (RBAC servers answer
    /// it for a model nobody holds a grant on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_permission: Option<Level>,
    /// Every user: name -> admin.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<String, bool>,
    /// The named roles of the workspace.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub roles: BTreeSet<String>,
    /// Every registered model (prompts left out): its grants, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, ModelAccess>,
    /// Grants on every registered model (pattern `*`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub wildcard: Grants,
}

/// One registered model's grants and modelsync's record of its own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelAccess {
    /// Grants naming this model.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grants: Grants,
    /// The model's `modelsync.access` tag: the grants modelsync made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}

/// The value of a model's `modelsync.access` tag: the grants modelsync
/// made on it (what it may take back when no policy declares them any
/// more), and when and from which revision it last changed them (audit).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub grants: Grants,
    /// The policies that declared them: a run whose manifests hold one of
    /// them (or declare the model) takes back what they no longer declare;
    /// other runs against the same registry leave them alone.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub policies: BTreeSet<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

impl Record {
    /// Reads a tag value; `None` when it is not a record (a tag someone
    /// wrote by hand: modelsync then owns nothing on the model).
    pub fn parse(tag: &str) -> Option<Record> {
        serde_json::from_str(tag).ok()
    }

    /// The tag value (compact JSON).
    pub fn render(&self) -> String {
        serde_json::to_string(self).expect("a record is plain data")
    }
}

impl LiveAccess {
    /// The permission modelsync's own principal ends up with on a model
    /// holding `grants` (its direct grants and its roles', exact or `*`),
    /// by the server's rule (see the module's documentation); an admin
    /// gets MANAGE. `None`: it depends on a default the server does not
    /// say.
    pub fn my_level(&self, grants: &Grants) -> Option<Level> {
        if self.me_admin {
            return Some(Level::Manage);
        }
        let matching = |p: &Principal| {
            [grants.get(p), self.wildcard.get(p)]
                .into_iter()
                .flatten()
                .copied()
                .collect::<Vec<_>>()
        };
        let own = Principal::User(self.me.clone());
        let direct = matching(&own);
        let roles: Vec<Level> = self
            .my_roles
            .iter()
            .flat_map(|r| matching(&Principal::Role(r.clone())))
            .collect();
        match self.api {
            PermissionApi::Grants => rbac(&direct, &roles, self.default_permission),
            _ => per_resource(grants.get(&own), &roles, self.default_permission),
        }
    }
}

/// RBAC: a DENY among the matching grants wins; otherwise the highest,
/// floored at the default; no grant: the default.
fn rbac(direct: &[Level], roles: &[Level], default: Option<Level>) -> Option<Level> {
    let all: Vec<Level> = direct.iter().chain(roles).copied().collect();
    if all.contains(&Level::Deny) {
        return Some(Level::Deny);
    }
    let best = all.into_iter().reduce(Level::max);
    match (best, default) {
        (Some(b), Some(d)) => Some(b.max(d)),
        (Some(b), None) => Some(b),
        (None, d) => d,
    }
}

/// Per-resource (before 3.13): a direct MANAGE is final; direct and role
/// grants: the higher; one of them: that one; none: the default.
fn per_resource(direct: Option<&Level>, roles: &[Level], default: Option<Level>) -> Option<Level> {
    let role = roles
        .iter()
        .copied()
        .filter(|l| *l != Level::NoPermissions)
        .reduce(Level::max);
    match (direct.copied(), role) {
        (Some(Level::Manage), _) => Some(Level::Manage),
        (Some(d), Some(r)) => Some(d.max(r)),
        (Some(d), None) => Some(d),
        (None, Some(r)) => Some(r),
        (None, None) => default,
    }
}

#[cfg(test)]
mod tests;
