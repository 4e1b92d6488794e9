//! Why a policy is refused for a model, and the holes in a protected
//! model's protection, from the grants it has now and the ones it would
//! have after the plan. Safe bootstrapping: modelsync never plans a change
//! that locks its own principal out, removes a model's last MANAGE holder,
//! or needs a permission its principal lacks; each is an error at plan
//! time, before anything is written.

use std::collections::BTreeMap;

use super::AccessAction;
use crate::state::access::{Grants, Level, LiveAccess, Principal};

/// What modelsync's principal needs on a model it manages permissions of.
const NEEDS: &str = "it needs MANAGE (EDIT to move stages and set aliases; MANAGE to delete \
                     aliases, prune and manage permissions)";

/// The grants after `actions`.
pub(super) fn after(live: &Grants, actions: &[AccessAction]) -> Grants {
    let mut out = live.clone();
    for a in actions {
        match a {
            AccessAction::Grant {
                principal, level, ..
            } => {
                out.insert(principal.clone(), *level);
            }
            AccessAction::Revoke { principal, .. } => {
                out.remove(principal);
            }
            AccessAction::Record { .. } => {}
        }
    }
    out
}

/// Every reason the plan of one model must not be applied.
pub(super) fn refusals(
    access: &LiveAccess,
    declared: &BTreeMap<Principal, (Level, String)>,
    live: &Grants,
    actions: &[AccessAction],
) -> Vec<String> {
    let mut out = unknown_principals(access, actions);
    let lockout = explicit_lockout(access, declared);
    let changes = actions
        .iter()
        .any(|a| !matches!(a, AccessAction::Record { .. }));
    if !changes {
        out.extend(lockout);
        return out;
    }
    let now = access.my_level(live);
    let me = &access.me;
    if now != Some(Level::Manage) {
        out.push(format!(
            "modelsync's principal {me} holds {} on it, and changing its permissions needs MANAGE{}",
            shown(now),
            access
                .api
                .how_to_grant()
                .map(|h| format!(": {}", h.replace("EDIT|MANAGE", "MANAGE")))
                .unwrap_or_default()
        ));
    } else if lockout.is_some() {
        out.extend(lockout);
    } else {
        let then = access.my_level(&after(live, actions));
        if then != Some(Level::Manage) {
            out.push(format!(
                "the policy would lock modelsync's principal {me} out: it would hold {}, and {NEEDS}",
                shown(then)
            ));
        }
    }
    out.extend(roles_need_an_admin(access, actions));
    out.extend(last_manage_holder(access, live, actions));
    out
}

/// A declared grant that names modelsync's own user below MANAGE, or
/// DENYs a role it is in: refused whatever it holds otherwise (an admin
/// that stops being one would be locked out).
fn explicit_lockout(
    access: &LiveAccess,
    declared: &BTreeMap<Principal, (Level, String)>,
) -> Option<String> {
    let me = &access.me;
    declared.iter().find_map(|(p, (level, policy))| {
        let own = matches!(p, Principal::User(u) if u == me);
        let my_role = matches!(p, Principal::Role(r) if access.my_roles.contains(r));
        ((own && *level != Level::Manage) || (my_role && *level == Level::Deny)).then(|| {
            format!(
                "the policy would lock modelsync's principal {me} out: policy {policy} gives {p} {level}, and {NEEDS}"
            )
        })
    })
}

/// Users and roles the server does not have (modelsync creates neither).
fn unknown_principals(access: &LiveAccess, actions: &[AccessAction]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            AccessAction::Grant { principal, .. } => Some(principal),
            _ => None,
        })
        .filter_map(|p| match p {
            Principal::User(u) if !access.users.contains_key(u) => Some(format!(
                "user {u} does not exist on the server; modelsync grants to users, it does not create them (they need passwords)"
            )),
            Principal::Role(r) if !access.roles.contains(r) => Some(format!(
                "role {r} does not exist in the workspace; modelsync grants to roles, it does not create them or choose their members"
            )),
            _ => None,
        })
        .collect()
}

/// Grants to roles need an admin (or, on RBAC servers, a workspace admin).
fn roles_need_an_admin(access: &LiveAccess, actions: &[AccessAction]) -> Option<String> {
    let role = actions.iter().find_map(|a| match a {
        AccessAction::Grant {
            principal: p @ Principal::Role(_),
            ..
        }
        | AccessAction::Revoke {
            principal: p @ Principal::Role(_),
            ..
        } => Some(p),
        _ => None,
    })?;
    (!access.me_admin && !access.me_workspace_admin).then(|| {
        format!(
            "changing the permissions of {role} needs modelsync's principal {} to be an MLflow admin or a workspace admin (MANAGE on the workspace)",
            access.me
        )
    })
}

/// Refused when the model has a MANAGE holder now and would have none.
fn last_manage_holder(
    access: &LiveAccess,
    live: &Grants,
    actions: &[AccessAction],
) -> Option<String> {
    let holders = |g: &Grants| -> Vec<String> {
        g.iter()
            .chain(&access.wildcard)
            .filter(|(_, l)| **l == Level::Manage)
            .map(|(p, _)| p.to_string())
            .collect()
    };
    let now = holders(live);
    let then = holders(&after(live, actions));
    (!now.is_empty() && then.is_empty()).then(|| {
        format!(
            "the policy would remove the model's last MANAGE holder ({}): keep one, e.g. {{user: {}, permission: MANAGE}}",
            now.join(", "),
            access.me
        )
    })
}

/// Who other than modelsync's principal could still move a protected
/// model's stages and aliases after the plan: grants of EDIT or more
/// (on the model or on every model), and a default permission of EDIT or
/// more. MLflow's admins pass every check; they are not listed.
pub(super) fn protection_holes(access: &LiveAccess, after: &Grants) -> Vec<String> {
    let me = Principal::User(access.me.clone());
    let mut out = Vec::new();
    let mut hole = |p: &Principal, level: Level, scope: &str| {
        if *p != me && level.can_update() {
            out.push(format!(
                "protected, but {p} can move its stages and aliases: it holds {level}{scope}, granted outside this policy"
            ));
        }
    };
    for (p, level) in after {
        hole(p, *level, "");
    }
    for (p, level) in &access.wildcard {
        hole(p, *level, " on every model");
    }
    if let Some(d) = access.default_permission.filter(|d| d.can_update()) {
        out.push(format!(
            "protected, but the server's default permission is {d}: every user without a grant on it can move its stages and aliases (set default_permission = READ in the basic-auth configuration)"
        ));
    }
    out
}

/// A level for people; `None`: no grant, and a default the server does
/// not say.
fn shown(level: Option<Level>) -> String {
    match level {
        Some(Level::NoPermissions) => "no permission".to_string(),
        None => "no grant".to_string(),
        Some(l) => l.to_string(),
    }
}
