//! The MLflow REST endpoints modelsync calls, as one table: path, verb,
//! whether the call only reads, whether re-sending it is harmless, and the
//! permission MLflow's basic-auth app wants for it (`docs/mlflow-rest.md`).

use reqwest::Method;

/// An HTTP verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

impl Verb {
    /// The verb's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
        }
    }
}

/// The permission an operation needs on MLflow's basic-auth app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    Edit,
    Manage,
    /// Creating a new registered model or experiment.
    Create,
    /// An MLflow admin, or (RBAC, 3.13+) an admin of the workspace.
    Admin,
}

/// One endpoint.
#[derive(Debug)]
pub struct Endpoint {
    /// Relative to `/api/2.0/mlflow/` (`/api/3.0/mlflow/` when `v3`).
    pub path: &'static str,
    /// Under `/api/3.0/mlflow/` (the basic-auth app's roles and grants).
    pub v3: bool,
    pub verb: Verb,
    /// What the call does, for error messages.
    pub op: &'static str,
    /// Counts as a read in [`super::RequestStats`].
    pub read: bool,
    /// Re-sending after an ambiguous failure cannot do harm.
    pub idempotent: bool,
    pub needs: Permission,
    /// The one JSON field that carries a secret on purpose (the daemon's
    /// webhook secret), left out of the leak check; every other byte sent
    /// is checked (`Client::call_at`).
    pub secret_field: Option<&'static str>,
}

impl Endpoint {
    /// The HTTP method.
    pub fn method(&self) -> Method {
        match self.verb {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Patch => Method::PATCH,
            Verb::Delete => Method::DELETE,
        }
    }
}

const fn read(path: &'static str, verb: Verb, op: &'static str) -> Endpoint {
    Endpoint {
        path,
        v3: false,
        verb,
        op,
        read: true,
        idempotent: true,
        needs: Permission::Read,
        secret_field: None,
    }
}

const fn write(
    path: &'static str,
    verb: Verb,
    op: &'static str,
    idempotent: bool,
    needs: Permission,
) -> Endpoint {
    Endpoint {
        path,
        v3: false,
        verb,
        op,
        read: false,
        idempotent,
        needs,
        secret_field: None,
    }
}

/// [`read`] under `/api/3.0/mlflow/`.
const fn read3(path: &'static str, verb: Verb, op: &'static str) -> Endpoint {
    Endpoint {
        v3: true,
        ..read(path, verb, op)
    }
}

/// [`write`] under `/api/3.0/mlflow/`.
const fn write3(
    path: &'static str,
    verb: Verb,
    op: &'static str,
    idempotent: bool,
    needs: Permission,
) -> Endpoint {
    Endpoint {
        v3: true,
        ..write(path, verb, op, idempotent, needs)
    }
}

use Permission::{Create, Edit, Manage};
use Verb::{Delete, Get, Patch, Post};

pub static SEARCH_MODELS: Endpoint =
    read("registered-models/search", Get, "search registered models");
pub static GET_MODEL: Endpoint = read("registered-models/get", Get, "read a registered model");
pub static SEARCH_VERSIONS: Endpoint = read("model-versions/search", Get, "search model versions");
pub static GET_VERSION: Endpoint = read("model-versions/get", Get, "read a model version");
pub static GET_ALIAS: Endpoint = read("registered-models/alias", Get, "read an alias");
pub static GET_EXPERIMENT_BY_NAME: Endpoint =
    read("experiments/get-by-name", Get, "read an experiment");
pub static SEARCH_EXPERIMENTS: Endpoint = read("experiments/search", Get, "search experiments");
pub static GET_RUN: Endpoint = read("runs/get", Get, "read a run");
pub static SEARCH_LOGGED_MODELS: Endpoint =
    read("logged-models/search", Post, "search logged models");
/// `logged-models/{model_id}`: the id is a path segment ([`super::client::Client::call_at`]).
pub static GET_LOGGED_MODEL: Endpoint = read("logged-models", Get, "read a logged model");
pub static LIST_ARTIFACTS: Endpoint = read("artifacts/list", Get, "list a run's artifacts");

pub static CREATE_MODEL: Endpoint = write(
    "registered-models/create",
    Post,
    "create a registered model (registered-models/create)",
    false,
    Create,
);
pub static UPDATE_MODEL: Endpoint = write(
    "registered-models/update",
    Patch,
    "update a model description (registered-models/update)",
    true,
    Edit,
);
pub static SET_MODEL_TAG: Endpoint = write(
    "registered-models/set-tag",
    Post,
    "set a model tag (registered-models/set-tag)",
    true,
    Edit,
);
pub static DELETE_MODEL_TAG: Endpoint = write(
    "registered-models/delete-tag",
    Delete,
    "delete a model tag (registered-models/delete-tag)",
    true,
    Edit,
);
pub static CREATE_VERSION: Endpoint = write(
    "model-versions/create",
    Post,
    "register a model version (model-versions/create)",
    false,
    Edit,
);
pub static UPDATE_VERSION: Endpoint = write(
    "model-versions/update",
    Patch,
    "update a version description (model-versions/update)",
    true,
    Edit,
);
pub static SET_VERSION_TAG: Endpoint = write(
    "model-versions/set-tag",
    Post,
    "set a version tag (model-versions/set-tag)",
    true,
    Edit,
);
pub static DELETE_VERSION_TAG: Endpoint = write(
    "model-versions/delete-tag",
    Delete,
    "delete a version tag (model-versions/delete-tag)",
    true,
    Manage,
);
pub static TRANSITION_STAGE: Endpoint = write(
    "model-versions/transition-stage",
    Post,
    "move a version to a stage (model-versions/transition-stage)",
    true,
    Edit,
);
pub static SET_ALIAS: Endpoint = write(
    "registered-models/alias",
    Post,
    "set an alias (registered-models/alias)",
    true,
    Edit,
);
pub static DELETE_ALIAS: Endpoint = write(
    "registered-models/alias",
    Delete,
    "delete an alias (registered-models/alias)",
    true,
    Manage,
);
pub static CREATE_EXPERIMENT: Endpoint = write(
    "experiments/create",
    Post,
    "create an experiment (experiments/create)",
    false,
    Create,
);
pub static SET_EXPERIMENT_TAG: Endpoint = write(
    "experiments/set-experiment-tag",
    Post,
    "set an experiment tag (experiments/set-experiment-tag)",
    true,
    Edit,
);
pub static DELETE_MODEL: Endpoint = write(
    "registered-models/delete",
    Delete,
    "delete a registered model (registered-models/delete; only the lease model)",
    true,
    Manage,
);
pub static DELETE_VERSION: Endpoint = write(
    "model-versions/delete",
    Delete,
    "delete a duplicate model version this run created (model-versions/delete)",
    true,
    Manage,
);

// Copies from another registry (`registry/mlflow/copy.rs`).
pub static GET_DOWNLOAD_URI: Endpoint = read(
    "model-versions/get-download-uri",
    Get,
    "read where a version's files are",
);
pub static GET_LATEST_VERSIONS: Endpoint = read(
    "registered-models/get-latest-versions",
    Post,
    "read a stage's latest version",
);
pub static SEARCH_RUNS: Endpoint = read("runs/search", Post, "search runs");
pub static CREATE_RUN: Endpoint = write(
    "runs/create",
    Post,
    "create a run for a copy (runs/create)",
    false,
    Edit,
);
pub static LOG_BATCH: Endpoint = write(
    "runs/log-batch",
    Post,
    "log a copy's metrics and params (runs/log-batch)",
    true,
    Edit,
);
pub static SET_RUN_TAG: Endpoint = write(
    "runs/set-tag",
    Post,
    "set a run tag (runs/set-tag)",
    true,
    Edit,
);
pub static UPDATE_RUN: Endpoint = write(
    "runs/update",
    Post,
    "finish a copy's run (runs/update)",
    true,
    Edit,
);
pub static CREATE_LOGGED_MODEL: Endpoint = write(
    "logged-models",
    Post,
    "create a logged model for a copy (logged-models)",
    false,
    Edit,
);
pub static FINALIZE_LOGGED_MODEL: Endpoint = write(
    "logged-models",
    Patch,
    "finalize a copy's logged model (logged-models/{id})",
    true,
    Edit,
);
pub static LIST_WEBHOOKS: Endpoint = read("webhooks", Get, "list webhooks");
pub static CREATE_WEBHOOK: Endpoint = Endpoint {
    secret_field: Some("secret"),
    ..write(
        "webhooks",
        Post,
        "create the daemon's webhook (POST webhooks; admins only under basic-auth)",
        false,
        Manage,
    )
};
/// `webhooks/{id}`: the id is a path segment.
pub static UPDATE_WEBHOOK: Endpoint = Endpoint {
    secret_field: Some("secret"),
    ..write(
        "webhooks",
        Patch,
        "update the daemon's webhook (PATCH webhooks/{id}; admins only under basic-auth)",
        true,
        Manage,
    )
};

// Permissions on MLflow's basic-auth app (`registry/mlflow/permissions.rs`).
// Writes that answer RESOURCE_ALREADY_EXISTS or RESOURCE_DOES_NOT_EXIST
// when re-sent are converged by their caller, so re-sending is harmless.
pub static LIST_USERS: Endpoint = read("users/list", Get, "list the basic-auth app's users");
pub static GET_USER: Endpoint = read(
    "users/get",
    Get,
    "read a user and its permissions (users/get)",
);
pub static LIST_ROLES: Endpoint = read3(
    "roles/list",
    Get,
    "list the workspace's roles and their permissions (roles/list)",
);
pub static LIST_USER_ROLES: Endpoint = read3(
    "users/roles/list",
    Get,
    "list a user's roles (users/roles/list)",
);
pub static GET_USER_PERMISSION: Endpoint = read3(
    "users/permissions/get",
    Get,
    "read a user's permission (users/permissions/get)",
);
pub static GRANT_USER_PERMISSION: Endpoint = write3(
    "users/permissions/grant",
    Post,
    "grant a user a permission (users/permissions/grant)",
    true,
    Manage,
);
pub static REVOKE_USER_PERMISSION: Endpoint = write3(
    "users/permissions/revoke",
    Post,
    "revoke a user's permission (users/permissions/revoke)",
    true,
    Manage,
);
pub static CREATE_MODEL_PERMISSION: Endpoint = write(
    "registered-models/permissions/create",
    Post,
    "grant a user a permission (registered-models/permissions/create)",
    true,
    Manage,
);
pub static UPDATE_MODEL_PERMISSION: Endpoint = write(
    "registered-models/permissions/update",
    Patch,
    "change a user's permission (registered-models/permissions/update)",
    true,
    Manage,
);
pub static DELETE_MODEL_PERMISSION: Endpoint = write(
    "registered-models/permissions/delete",
    Delete,
    "revoke a user's permission (registered-models/permissions/delete)",
    true,
    Manage,
);
pub static ADD_ROLE_PERMISSION: Endpoint = write3(
    "roles/permissions/add",
    Post,
    "grant a role a permission (roles/permissions/add)",
    true,
    Permission::Admin,
);
pub static UPDATE_ROLE_PERMISSION: Endpoint = write3(
    "roles/permissions/update",
    Patch,
    "change a role's permission (roles/permissions/update)",
    true,
    Permission::Admin,
);
pub static REMOVE_ROLE_PERMISSION: Endpoint = write3(
    "roles/permissions/remove",
    Delete,
    "revoke a role's permission (roles/permissions/remove)",
    true,
    Permission::Admin,
);
