//! Permissions on MLflow's basic-auth app: who holds which permission on
//! the registered models ([`read_access`]), and the writes that change one
//! grant ([`set_permission`], [`remove_permission`]), through whichever
//! permission API the server has (the capability probe tells: RBAC under
//! `/api/3.0/mlflow/…` from 3.13, the per-model endpoints before).
//!
//! Reads: RBAC servers answer every user (`users/list`) and every role of
//! the workspace with its grants (`roles/list`; a user's own grants are the
//! role `__user_<id>__`), and a user's effective permission on a model no
//! one holds a grant on, which is the server's default. Older servers list
//! users (admins only) and each user's direct grants (`users/get`, one
//! request per user), and, from 3.12, roles. Request counts grow with
//! users and pages of models, never with models × users.
//!
//! Writes converge: a grant that exists already is replaced, a revoke of
//! a grant that is gone is done. Roles are found by name on each write
//! (one `roles/list`).

use std::collections::{BTreeMap, BTreeSet};

use futures_util::{StreamExt, TryStreamExt, stream};

use super::MlflowRegistry;
use super::client::Payload;
use super::endpoints as ep;
use super::errors::CallError;
use super::wire::{
    AuthPermissionAnswer, AuthRole, AuthRoleList, AuthUser, AuthUserList, AuthUserResponse,
};
use crate::registry::{Registry, RegistryError, Result, Scope};
use crate::state::access::{Grants, Level, LiveAccess, Principal};
use crate::state::capabilities::PermissionApi;
use crate::state::tags;

/// The resource type of registered models in the basic-auth app.
const REGISTERED_MODEL: &str = "registered_model";
/// A name no model has, asked about to learn the default permission.
const PROBE: &str = "modelsync.default-permission-probe";
/// Users read at once (servers before 3.13).
const USER_READS: usize = 8;

/// Everything modelsync needs to plan permissions (see the module's
/// documentation).
pub async fn read_access(reg: &MlflowRegistry) -> Result<LiveAccess> {
    let me = principal(reg)?;
    let api = reg.capabilities().await?.permission_api;
    let (base, models) = futures_util::future::try_join(
        async {
            match api {
                PermissionApi::Grants => read_rbac(reg, &me).await,
                PermissionApi::PerResource => read_per_resource(reg, &me).await,
                PermissionApi::None => Err(RegistryError::Invalid(format!(
                    "{} does not say its MLflow version, so modelsync cannot tell which permission API it has; kind: AccessPolicy needs MLflow's own server",
                    reg.display()
                ))),
            }
        },
        super::read::search_models(reg, &Scope::All),
    )
    .await?;
    let mut access = base;
    for (name, model) in models {
        let entry = access.models.entry(name).or_default();
        entry.record = model.tags.get(tags::ACCESS).cloned();
    }
    Ok(access)
}

/// The user modelsync authenticates as.
fn principal(reg: &MlflowRegistry) -> Result<String> {
    reg.client.username().map(str::to_owned).ok_or_else(|| {
        RegistryError::Invalid(
            "kind: AccessPolicy needs modelsync to log in as a user of MLflow's basic-auth app \
             (MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD): grants are made and checked \
             per user, and that user is modelsync's own principal"
                .into(),
        )
    })
}

/// The workspace roles live in.
fn workspace(reg: &MlflowRegistry) -> String {
    reg.client.workspace().unwrap_or("default").to_string()
}

/// `users/list`, with what a server without the basic-auth app answers
/// made clear.
async fn list_users(reg: &MlflowRegistry, api: PermissionApi) -> Result<Vec<AuthUser>> {
    match reg
        .client
        .call::<AuthUserList>(&ep::LIST_USERS, Payload::Query(&[]))
        .await
    {
        Ok(l) => Ok(l.users),
        Err(e) if e.is("ENDPOINT_NOT_FOUND") => Err(no_auth_app(reg)),
        Err(e) => Err(needs(e, api, "list the users")),
    }
}

fn no_auth_app(reg: &MlflowRegistry) -> RegistryError {
    RegistryError::Invalid(format!(
        "{} has no basic-auth app (GET /api/2.0/mlflow/users/list is not there): kind: AccessPolicy \
         needs the server started with `mlflow server --app-name basic-auth`",
        reg.display()
    ))
}

/// A permission error that says what modelsync's principal must be (the
/// generic "needs READ; an admin grants it with …" does not apply to the
/// basic-auth app's own endpoints).
fn needs(e: CallError, api: PermissionApi, what: &str) -> RegistryError {
    match e.into_registry() {
        RegistryError::PermissionDenied { operation, .. } => {
            let who = match api {
                PermissionApi::Grants => {
                    "an MLflow admin, or a user with a role in the workspace (a grant on any model there, e.g. one it created)"
                }
                _ => {
                    "an MLflow admin (before MLflow 3.13 only admins may read other users' grants)"
                }
            };
            RegistryError::PermissionDenied {
                operation,
                message: format!("to {what}, modelsync's principal must be {who}"),
            }
        }
        other => other,
    }
}

/// RBAC (3.13+): users, then the workspace's roles with their grants.
async fn read_rbac(reg: &MlflowRegistry, me: &str) -> Result<LiveAccess> {
    let api = PermissionApi::Grants;
    let users = list_users(reg, api).await?;
    let ws = workspace(reg);
    let q = [("workspace", ws.clone())];
    let mine = users.iter().find(|u| u.username == me);
    let roles = match reg
        .client
        .call::<AuthRoleList>(&ep::LIST_ROLES, Payload::Query(&q))
        .await
    {
        Ok(l) => l.roles,
        // A principal with no grant in the workspace yet (its first run):
        // it holds nothing there, so it can only grant on models it
        // creates in this pass, which no one else holds a grant on.
        Err(CallError::Registry(RegistryError::PermissionDenied { .. }))
            if without_roles(mine, &ws) =>
        {
            tracing::debug!(
                "modelsync's principal has no role in workspace {ws} yet: no grants to read"
            );
            Vec::new()
        }
        Err(e) => return Err(needs(e, api, &format!("read the roles of workspace {ws}"))),
    };
    let names: BTreeMap<i64, &AuthUser> = users.iter().map(|u| (u.id, u)).collect();
    let mut access = empty(api, me, &users);
    access.me_workspace_admin = mine.is_some_and(|u| {
        u.roles.iter().filter(|r| r.workspace == ws).any(|r| {
            r.permissions
                .iter()
                .any(|p| p.resource_type == "workspace" && p.permission == "MANAGE")
        })
    });
    access.my_roles = mine
        .map(|u| {
            u.roles
                .iter()
                .filter(|r| r.workspace == ws && synthetic(&r.name).is_none())
                .map(|r| r.name.clone())
                .collect()
        })
        .unwrap_or_default();
    for role in &roles {
        let principal = match synthetic(&role.name) {
            Some(id) => match names.get(&id) {
                Some(u) => Principal::User(u.username.clone()),
                None => continue,
            },
            None => {
                access.roles.insert(role.name.clone());
                Principal::Role(role.name.clone())
            }
        };
        add_role_grants(&mut access, &principal, role);
    }
    access.default_permission = default_permission(reg, &access).await;
    Ok(access)
}

/// True when `user` (modelsync's principal, as `users/list` shows it to
/// itself) has no role in workspace `ws`.
fn without_roles(user: Option<&AuthUser>, ws: &str) -> bool {
    user.is_some_and(|u| !u.is_admin && u.roles.iter().all(|r| r.workspace != ws))
}

/// Before 3.13: users (admins only), each user's direct grants, and the
/// workspace's roles where the server has them (3.12).
async fn read_per_resource(reg: &MlflowRegistry, me: &str) -> Result<LiveAccess> {
    let api = PermissionApi::PerResource;
    let listed = list_users(reg, api).await?;
    let reads = listed.into_iter().map(|u| get_user(reg, u.username));
    let users: Vec<AuthUser> = stream::iter(reads)
        .buffered(USER_READS)
        .try_collect()
        .await?;
    let mut access = empty(api, me, &users);
    for u in &users {
        for p in &u.registered_model_permissions {
            if let Some(level) = Level::parse(&p.permission) {
                let grants = &mut access.models.entry(p.name.clone()).or_default().grants;
                grants.insert(Principal::User(u.username.clone()), level);
            }
        }
    }
    let ws = workspace(reg);
    for role in optional_roles(reg, &ep::LIST_ROLES, &[("workspace", ws.clone())]).await? {
        access.roles.insert(role.name.clone());
        add_role_grants(&mut access, &Principal::Role(role.name.clone()), &role);
    }
    let mine = optional_roles(reg, &ep::LIST_USER_ROLES, &[("username", me.to_string())]).await?;
    access.my_roles = mine
        .into_iter()
        .filter(|r| r.workspace == ws || r.workspace.is_empty())
        .map(|r| r.name)
        .collect();
    Ok(access)
}

/// One user and its direct grants (before 3.13).
async fn get_user(reg: &MlflowRegistry, username: String) -> Result<AuthUser> {
    let q = [("username", username)];
    reg.client
        .call::<AuthUserResponse>(&ep::GET_USER, Payload::Query(&q))
        .await
        .map(|r| r.user)
        .map_err(|e| needs(e, PermissionApi::PerResource, "read other users' grants"))
}

/// Roles from `ep`; none on a server without roles (before 3.12).
async fn optional_roles(
    reg: &MlflowRegistry,
    ep: &'static ep::Endpoint,
    q: &[(&str, String)],
) -> Result<Vec<AuthRole>> {
    match reg.client.call::<AuthRoleList>(ep, Payload::Query(q)).await {
        Ok(l) => Ok(l.roles),
        Err(e) if e.is("ENDPOINT_NOT_FOUND") => Ok(Vec::new()),
        Err(e) => Err(needs(e, PermissionApi::PerResource, "read the roles")),
    }
}

fn empty(api: PermissionApi, me: &str, users: &[AuthUser]) -> LiveAccess {
    LiveAccess {
        api,
        me: me.to_string(),
        me_admin: users.iter().any(|u| u.username == me && u.is_admin),
        me_workspace_admin: false,
        my_roles: BTreeSet::new(),
        default_permission: None,
        users: users
            .iter()
            .map(|u| (u.username.clone(), u.is_admin))
            .collect(),
        roles: BTreeSet::new(),
        models: BTreeMap::new(),
        wildcard: Grants::new(),
    }
}

/// A role's grants on registered models, under `principal`.
fn add_role_grants(access: &mut LiveAccess, principal: &Principal, role: &AuthRole) {
    for p in role
        .permissions
        .iter()
        .filter(|p| p.resource_type == REGISTERED_MODEL)
    {
        let Some(level) = Level::parse(&p.permission) else {
            continue;
        };
        let grants = if p.resource_pattern == "*" {
            &mut access.wildcard
        } else {
            &mut access
                .models
                .entry(p.resource_pattern.clone())
                .or_default()
                .grants
        };
        grants.insert(principal.clone(), level);
    }
}

/// The user id of an RBAC user's own role `__user_<id>__`.
fn synthetic(name: &str) -> Option<i64> {
    name.strip_prefix("__user_")?
        .strip_suffix("__")?
        .parse()
        .ok()
}

/// The server's default permission: what modelsync's own principal holds
/// on a model no grant names, when no grant of its own on every model (or
/// on the workspace) answers instead. `None` when it cannot tell.
async fn default_permission(reg: &MlflowRegistry, access: &LiveAccess) -> Option<Level> {
    let mine = |p: &Principal| match p {
        Principal::User(u) => *u == access.me,
        Principal::Role(r) => access.my_roles.contains(r),
    };
    if access.me_workspace_admin || access.wildcard.keys().any(mine) {
        return None;
    }
    let q = [
        ("username", access.me.clone()),
        ("resource_type", REGISTERED_MODEL.to_string()),
        ("resource_id", PROBE.to_string()),
    ];
    let answer = reg
        .client
        .call::<AuthPermissionAnswer>(&ep::GET_USER_PERMISSION, Payload::Query(&q))
        .await;
    match answer {
        Ok(a) => Level::parse(&a.permission),
        Err(e) => {
            tracing::debug!(error = %e.into_registry(), "the default permission is unknown");
            None
        }
    }
}

/// Gives `principal` `level` on `model`; `before` is what the plan saw.
pub async fn set_permission(
    reg: &MlflowRegistry,
    model: &str,
    principal: &Principal,
    level: Level,
    before: Option<Level>,
) -> Result<()> {
    match (principal, api(reg).await?) {
        (Principal::Role(role), _) => set_role(reg, model, role, Some(level)).await,
        (Principal::User(user), PermissionApi::Grants) => {
            if before.is_some() {
                revoke_user(reg, model, user).await?;
            }
            match grant_user(reg, model, user, level).await {
                Err(RegistryError::AlreadyExists(_)) => {
                    revoke_user(reg, model, user).await?;
                    grant_user(reg, model, user, level).await
                }
                other => other,
            }
        }
        (Principal::User(user), _) => set_user_per_resource(reg, model, user, level, before).await,
    }
}

/// Takes `principal`'s grant on `model` back; a grant already gone is fine.
pub async fn remove_permission(
    reg: &MlflowRegistry,
    model: &str,
    principal: &Principal,
) -> Result<()> {
    match (principal, api(reg).await?) {
        (Principal::Role(role), _) => set_role(reg, model, role, None).await,
        (Principal::User(user), PermissionApi::Grants) => revoke_user(reg, model, user).await,
        (Principal::User(user), _) => {
            let body = serde_json::json!({"name": model, "username": user});
            gone_is_fine(
                reg.client
                    .call::<serde_json::Value>(&ep::DELETE_MODEL_PERMISSION, Payload::Json(&body))
                    .await,
            )
        }
    }
}

async fn api(reg: &MlflowRegistry) -> Result<PermissionApi> {
    Ok(reg.capabilities().await?.permission_api)
}

async fn grant_user(reg: &MlflowRegistry, model: &str, user: &str, level: Level) -> Result<()> {
    let body = serde_json::json!({
        "username": user,
        "resource_type": REGISTERED_MODEL,
        "resource_id": model,
        "permission": level.as_str(),
    });
    reg.client
        .call::<serde_json::Value>(&ep::GRANT_USER_PERMISSION, Payload::Json(&body))
        .await
        .map(drop)
        .map_err(RegistryError::from)
}

async fn revoke_user(reg: &MlflowRegistry, model: &str, user: &str) -> Result<()> {
    let body = serde_json::json!({
        "username": user,
        "resource_type": REGISTERED_MODEL,
        "resource_id": model,
    });
    gone_is_fine(
        reg.client
            .call::<serde_json::Value>(&ep::REVOKE_USER_PERMISSION, Payload::Json(&body))
            .await,
    )
}

/// Before 3.13: create, or update the grant that exists.
async fn set_user_per_resource(
    reg: &MlflowRegistry,
    model: &str,
    user: &str,
    level: Level,
    before: Option<Level>,
) -> Result<()> {
    let body = serde_json::json!({"name": model, "username": user, "permission": level.as_str()});
    let call = |ep: &'static ep::Endpoint| {
        let body = &body;
        async move {
            reg.client
                .call::<serde_json::Value>(ep, Payload::Json(body))
                .await
                .map(drop)
        }
    };
    let (first, second) = if before.is_some() {
        (&ep::UPDATE_MODEL_PERMISSION, &ep::CREATE_MODEL_PERMISSION)
    } else {
        (&ep::CREATE_MODEL_PERMISSION, &ep::UPDATE_MODEL_PERMISSION)
    };
    match call(first).await {
        Err(e) if e.is_not_found() || e.is("RESOURCE_ALREADY_EXISTS") => {
            call(second).await.map_err(RegistryError::from)
        }
        other => other.map_err(RegistryError::from),
    }
}

/// Sets (`Some`) or removes (`None`) role `role`'s grant on `model`.
async fn set_role(
    reg: &MlflowRegistry,
    model: &str,
    role: &str,
    level: Option<Level>,
) -> Result<()> {
    let ws = workspace(reg);
    let q = [("workspace", ws.clone())];
    let roles = reg
        .client
        .call::<AuthRoleList>(&ep::LIST_ROLES, Payload::Query(&q))
        .await?
        .roles;
    let Some(found) = roles.iter().find(|r| r.name == role) else {
        return Err(RegistryError::NotFound(format!(
            "role {role} does not exist in workspace {ws}"
        )));
    };
    let row = found
        .permissions
        .iter()
        .find(|p| p.resource_type == REGISTERED_MODEL && p.resource_pattern == model);
    let result = match (row, level) {
        (None, None) => return Ok(()),
        (Some(p), Some(l)) if p.permission == l.as_str() => return Ok(()),
        (Some(p), Some(l)) => {
            let body = serde_json::json!({"role_permission_id": p.id, "permission": l.as_str()});
            reg.client
                .call::<serde_json::Value>(&ep::UPDATE_ROLE_PERMISSION, Payload::Json(&body))
                .await
        }
        (Some(p), None) => {
            let body = serde_json::json!({"role_permission_id": p.id});
            reg.client
                .call::<serde_json::Value>(&ep::REMOVE_ROLE_PERMISSION, Payload::Json(&body))
                .await
        }
        (None, Some(l)) => {
            let body = serde_json::json!({
                "role_id": found.id,
                "resource_type": REGISTERED_MODEL,
                "resource_pattern": model,
                "permission": l.as_str(),
            });
            reg.client
                .call::<serde_json::Value>(&ep::ADD_ROLE_PERMISSION, Payload::Json(&body))
                .await
        }
    };
    if level.is_none() {
        return gone_is_fine(result);
    }
    result.map(drop).map_err(RegistryError::from)
}

/// A removal whose target is gone already is done.
fn gone_is_fine(r: std::result::Result<serde_json::Value, CallError>) -> Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_own_role_names_its_id() {
        assert_eq!(synthetic("__user_12__"), Some(12));
        assert_eq!(synthetic("ml-engineers"), None);
        assert_eq!(synthetic("__user_x__"), None);
    }
}
