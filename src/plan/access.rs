//! The plan of the permissions `kind: AccessPolicy` declares, per
//! registered model: the grants to make or change, the grants modelsync
//! made that no policy declares any more (taken back), the ownership record
//! (`modelsync.access`), and why a policy is refused (`checks.rs`: a policy
//! that would lock modelsync's own principal out, or remove a model's last
//! MANAGE holder, or that modelsync lacks the permission to apply) or what
//! it cannot fix (warnings: a protected model another principal can move).
//! Pure, like the rest of `plan/`.

mod checks;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::manifest::access::DesiredModelAccess;
use crate::manifest::{DesiredState, Diagnostic};
use crate::state::LiveState;
use crate::state::access::{Grants, Level, LiveAccess, Principal, Record};
use crate::state::capabilities::{Capabilities, PermissionApi};

/// The permission changes for one registered model, in execution order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessPlan {
    pub model: String,
    pub actions: Vec<AccessAction>,
    /// What the policy asks that modelsync cannot make true (a protected
    /// model another principal can move).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Why the policy is refused for this model; a model with errors has
    /// no actions (and the whole plan is not applied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// One permission change. Each records what it observed (`before`), so a
/// saved plan can be checked for staleness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AccessAction {
    /// Give `principal` `level` on the model, replacing `before`.
    #[serde(rename = "grant_permission")]
    Grant {
        principal: Principal,
        level: Level,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<Level>,
        /// The policy that declares it.
        policy: String,
    },
    /// Take back a grant modelsync made that no policy declares any more.
    #[serde(rename = "revoke_permission")]
    Revoke { principal: Principal, before: Level },
    /// Write the ownership record: the grants modelsync made, as declared
    /// after this plan, and the policies that declare them.
    #[serde(rename = "record_permissions")]
    Record {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<Grants>,
        after: Grants,
        #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
        policies: BTreeSet<String>,
    },
}

impl AccessAction {
    /// A stable short name of the kind of action (for metrics and logs).
    pub fn kind(&self) -> &'static str {
        match self {
            AccessAction::Grant { .. } => "grant_permission",
            AccessAction::Revoke { .. } => "revoke_permission",
            AccessAction::Record { .. } => "record_permissions",
        }
    }
}

/// The registered models the permissions cover: every model a policy
/// names or matches, and every model whose record of the grants modelsync
/// made names one of these policies or that the manifests declare (what a
/// policy no longer declares there is taken back). A record another
/// repository's policies wrote is left alone.
pub fn covered(desired: &DesiredState, live: &LiveState) -> BTreeSet<String> {
    let Some(access) = &live.access else {
        return BTreeSet::new();
    };
    candidates(desired, live, access)
        .into_iter()
        .filter(|name| {
            let record = owned(access, name);
            let ours = desired.models.contains_key(name)
                || record
                    .policies
                    .iter()
                    .any(|p| desired.policies.contains_key(p));
            !entries(desired, name).is_empty() || (ours && !record.grants.is_empty())
        })
        .collect()
}

/// The plan of every covered model with an action, a warning or a
/// problem, by name; exact names no model has, as warnings.
pub fn plan_access(desired: &DesiredState, live: &LiveState) -> Vec<AccessPlan> {
    let Some(access) = &live.access else {
        return Vec::new();
    };
    let mut plans: BTreeMap<String, AccessPlan> = BTreeMap::new();
    for name in covered(desired, live) {
        let creates = !access.models.contains_key(&name);
        let plan = plan_model(desired, access, &name, creates);
        if !plan.actions.is_empty() || !plan.warnings.is_empty() || !plan.errors.is_empty() {
            plans.insert(name, plan);
        }
    }
    let known = candidates(desired, live, access);
    for policy in desired.policies.values() {
        for entry in policy.models.iter().filter(|e| !e.is_glob()) {
            if !known.contains(&entry.pattern) {
                plans.insert(entry.pattern.clone(), absent(entry, &policy.name));
            }
        }
    }
    plans.into_values().collect()
}

/// Every registered model that exists, or that the plan creates (a
/// declared model not in the registry).
fn candidates(desired: &DesiredState, live: &LiveState, access: &LiveAccess) -> BTreeSet<String> {
    let creates = desired
        .models
        .keys()
        .filter(|n| !live.models.contains_key(*n));
    access.models.keys().chain(creates).cloned().collect()
}

/// The policy entries that cover `name`, with their policy's name.
fn entries<'a>(desired: &'a DesiredState, name: &str) -> Vec<(&'a str, &'a DesiredModelAccess)> {
    desired
        .policies
        .values()
        .flat_map(|p| p.models.iter().map(move |m| (p.name.as_str(), m)))
        .filter(|(_, m)| m.matches(name))
        .collect()
}

/// What modelsync recorded on `name` (nothing for a model it creates now,
/// or a record it cannot read).
fn owned(access: &LiveAccess, name: &str) -> Record {
    access
        .models
        .get(name)
        .and_then(|m| m.record.as_deref())
        .and_then(Record::parse)
        .unwrap_or_default()
}

/// The declared grants on one model: principal -> (level, policy), merged
/// over every entry that covers it; a principal given two levels is an
/// error. Also whether any entry protects it.
struct Declared {
    grants: BTreeMap<Principal, (Level, String)>,
    protect: bool,
    errors: Vec<String>,
}

fn declared(desired: &DesiredState, name: &str) -> Declared {
    let mut out = Declared {
        grants: BTreeMap::new(),
        protect: false,
        errors: Vec::new(),
    };
    let mut seen: BTreeMap<&Principal, (Level, &str, &crate::manifest::Origin)> = BTreeMap::new();
    for (policy, entry) in entries(desired, name) {
        out.protect |= entry.protect;
        for (p, g) in &entry.grants {
            match seen.get(p) {
                Some((level, other, at)) if *level != g.level => out.errors.push(format!(
                    "{p} is given {level} by policy {other} ({at}) and {} by policy {policy} ({})",
                    g.level, g.origin
                )),
                Some(_) => {}
                None => {
                    seen.insert(p, (g.level, policy, &g.origin));
                    out.grants.insert(p.clone(), (g.level, policy.to_string()));
                }
            }
        }
    }
    out
}

/// The plan of one covered model.
fn plan_model(
    desired: &DesiredState,
    access: &LiveAccess,
    name: &str,
    creates: bool,
) -> AccessPlan {
    let declared = declared(desired, name);
    let mut live: Grants = access
        .models
        .get(name)
        .map(|m| m.grants.clone())
        .unwrap_or_default();
    if creates {
        // The server gives whoever creates a model MANAGE on it.
        live.insert(Principal::User(access.me.clone()), Level::Manage);
    }
    let record = owned(access, name);
    let actions = actions(access, &declared, &live, &record);
    let mut errors = declared.errors.clone();
    if declared.protect {
        errors.extend(declared.grants.iter().filter(|(_, (l, _))| !matches!(l, Level::Read | Level::Deny)).map(
            |(p, (l, policy))| {
                format!("it is protected, but policy {policy} gives {p} {l} (a protected model's grants give at most READ, or DENY)")
            },
        ));
    }
    errors.extend(checks::refusals(access, &declared.grants, &live, &actions));
    let after = checks::after(&live, &actions);
    let warnings = if declared.protect {
        checks::protection_holes(access, &after)
    } else {
        Vec::new()
    };
    AccessPlan {
        model: name.to_string(),
        actions: if errors.is_empty() {
            actions
        } else {
            Vec::new()
        },
        warnings,
        errors,
    }
}

/// Grants to make or change, grants to take back, and the record.
fn actions(
    access: &LiveAccess,
    declared: &Declared,
    live: &Grants,
    record: &Record,
) -> Vec<AccessAction> {
    let mut out = Vec::new();
    for (p, (level, policy)) in &declared.grants {
        let before = live.get(p).copied();
        if before != Some(*level) {
            out.push(AccessAction::Grant {
                principal: p.clone(),
                level: *level,
                before,
                policy: policy.clone(),
            });
        }
    }
    let me = Principal::User(access.me.clone());
    for p in record.grants.keys() {
        // Never taken back: its own grant (that would lock it out).
        if declared.grants.contains_key(p) || *p == me {
            continue;
        }
        if let Some(before) = live.get(p) {
            out.push(AccessAction::Revoke {
                principal: p.clone(),
                before: *before,
            });
        }
    }
    let after: Grants = declared
        .grants
        .iter()
        .map(|(p, (l, _))| (p.clone(), *l))
        .collect();
    let policies: BTreeSet<String> = declared.grants.values().map(|(_, p)| p.clone()).collect();
    if after != record.grants || policies != record.policies {
        let before = (!record.grants.is_empty()).then(|| record.grants.clone());
        out.push(AccessAction::Record {
            before,
            after,
            policies,
        });
    }
    out
}

/// A policy names a model no one has (and no manifest declares).
fn absent(entry: &DesiredModelAccess, policy: &str) -> AccessPlan {
    AccessPlan {
        model: entry.pattern.clone(),
        actions: Vec::new(),
        warnings: vec![format!(
            "policy {policy} ({}) names a model the registry does not have (nor does a manifest declare it): nothing to grant until it exists",
            entry.origin
        )],
        errors: Vec::new(),
    }
}

/// One diagnostic per policy the registry cannot serve (no permission
/// API: the embedded registry, or a server that does not say its
/// version), and per DENY on a server without it (before MLflow 3.13).
pub fn missing(desired: &DesiredState, caps: &Capabilities) -> Vec<Diagnostic> {
    let server = &caps.server;
    let mut out = Vec::new();
    for policy in desired.policies.values() {
        if caps.permission_api == PermissionApi::None {
            out.push(Diagnostic {
                origin: policy.origin.clone(),
                message: format!(
                    "AccessPolicy \"{}\": {server} has no permissions to manage; kind: AccessPolicy needs an MLflow server with the basic-auth app",
                    policy.name
                ),
            });
            continue;
        }
        if caps.permission_api != PermissionApi::PerResource {
            continue;
        }
        let denies = policy.models.iter().flat_map(|m| &m.grants);
        for (p, g) in denies.filter(|(_, g)| g.level == Level::Deny) {
            out.push(Diagnostic {
                origin: g.origin.clone(),
                message: format!(
                    "{p} is given DENY, which {server} does not have (MLflow 3.13 or later); before it, grants are READ, USE, EDIT or MANAGE"
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
