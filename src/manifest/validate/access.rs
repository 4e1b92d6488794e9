//! The checks of `kind: AccessPolicy` documents: names and globs, users
//! and roles, permissions, `protect`. Every problem at its file, line and
//! column; what needs the registry (does the user exist, would modelsync
//! lock itself out) is the planner's.

use std::collections::BTreeMap;

use super::super::DesiredState;
use super::super::access::{DesiredGrant, DesiredModelAccess, DesiredPolicy, is_glob};
use super::super::schema::{AccessPolicySpec, GrantSpec, ModelAccessSpec};
use super::super::yaml::Located;
use super::Ctx;
use crate::naming::model_name_problem;
use crate::state::access::{Level, Principal};

/// Checks one access-policy document and adds it to `state`.
pub(super) fn check_policy(
    ctx: &mut Ctx<'_>,
    state: &mut DesiredState,
    name: &Located<String>,
    spec: &AccessPolicySpec,
) {
    if name.value.trim().is_empty() {
        ctx.error(
            name,
            "empty name: metadata.name must not be empty".to_string(),
        );
        return;
    }
    if let Some(first) = state.policies.get(&name.value) {
        let message = format!(
            "access policy \"{}\" is already declared at {}",
            name.value, first.origin
        );
        ctx.error(name, message);
        return;
    }
    let mut models = Vec::new();
    for entry in &spec.models {
        if let Some(m) = check_entry(ctx, state, &models, entry) {
            models.push(m);
        }
    }
    let policy = DesiredPolicy {
        name: name.value.clone(),
        origin: ctx.origin(name),
        models,
    };
    state.policies.insert(name.value.clone(), policy);
}

/// One entry of `spec.models`; `None` when its name is unusable.
fn check_entry(
    ctx: &mut Ctx<'_>,
    state: &DesiredState,
    earlier: &[DesiredModelAccess],
    entry: &Located<ModelAccessSpec>,
) -> Option<DesiredModelAccess> {
    let spec = &entry.value;
    let pattern = &spec.name;
    // A glob is checked with its wildcards as letters: MLflow's rules
    // apply to every name it can match.
    let plain = pattern.value.replace(['*', '?'], "x");
    if let Some(problem) = model_name_problem(&plain) {
        let problem = problem.replace(&plain, &pattern.value);
        ctx.error(pattern, problem);
        return None;
    }
    let covered = earlier
        .iter()
        .find(|m| m.pattern == pattern.value)
        .or_else(|| {
            state
                .policies
                .values()
                .flat_map(|p| &p.models)
                .find(|m| m.pattern == pattern.value)
        });
    if let Some(first) = covered {
        let what = if is_glob(&pattern.value) {
            "glob"
        } else {
            "model"
        };
        let message = format!(
            "{what} \"{}\" is already covered at {}",
            pattern.value, first.origin
        );
        ctx.error(pattern, message);
        return None;
    }
    let protect = spec.protect.as_ref().is_some_and(|p| p.value);
    let mut grants = BTreeMap::new();
    for grant in &spec.grants {
        let Some((principal, level)) = check_grant(ctx, grant) else {
            continue;
        };
        if let Some(first) = grants.get(&principal) {
            let first: &DesiredGrant = first;
            let message = format!(
                "{principal} is already given a permission on \"{}\" at {}",
                pattern.value, first.origin
            );
            ctx.error(grant, message);
            continue;
        }
        if protect && !matches!(level, Level::Read | Level::Deny) {
            let message = format!(
                "\"{}\" is protected (only modelsync's own principal may move its stages and aliases): \
                 a grant gives at most READ (or DENY), not {level} to {principal}",
                pattern.value
            );
            ctx.error(&grant_field(grant), message);
            continue;
        }
        let origin = ctx.origin(grant);
        grants.insert(principal, DesiredGrant { level, origin });
    }
    Some(DesiredModelAccess {
        pattern: pattern.value.clone(),
        origin: ctx.origin(pattern),
        protect,
        grants,
    })
}

/// A grant's principal and permission, or `None` after reporting why not.
fn check_grant(ctx: &mut Ctx<'_>, grant: &Located<GrantSpec>) -> Option<(Principal, Level)> {
    let g = &grant.value;
    let principal = match (&g.user, &g.role) {
        (Some(u), None) => principal_name(ctx, u).map(Principal::User),
        (None, Some(r)) => principal_name(ctx, r).map(Principal::Role),
        (Some(_), Some(_)) => {
            let message = "a grant names exactly one of user and role, not both".to_string();
            ctx.error(grant, message);
            None
        }
        (None, None) => {
            let message = "a grant names a user or a role (user: NAME or role: NAME)".to_string();
            ctx.error(grant, message);
            None
        }
    };
    let level = Level::parse(&g.permission.value).filter(|l| Level::DECLARABLE.contains(l));
    if level.is_none() {
        let valid: Vec<&str> = Level::DECLARABLE.iter().map(|l| l.as_str()).collect();
        let message = format!(
            "unknown permission \"{}\": expected one of {}",
            g.permission.value,
            valid.join(", ")
        );
        ctx.error(&g.permission, message);
    }
    Some((principal?, level?))
}

/// A user's or role's name: not blank, no white space or control
/// characters (names only: passwords are never modelsync's business).
fn principal_name(ctx: &mut Ctx<'_>, name: &Located<String>) -> Option<String> {
    let n = &name.value;
    if n.is_empty() || n.chars().any(|c| c.is_whitespace() || c.is_control()) {
        let message = format!("invalid user or role name {n:?}: no blanks or control characters");
        ctx.error(name, message);
        return None;
    }
    Some(n.clone())
}

/// Where a grant's permission was written (for the protect error).
fn grant_field(grant: &Located<GrantSpec>) -> Located<()> {
    let at = &grant.value.permission;
    Located {
        value: (),
        line: at.line,
        column: at.column,
    }
}
