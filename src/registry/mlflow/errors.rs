//! Error classification: MLflow's `{"error_code", "message"}` bodies, and
//! the plain-text answers of the basic-auth app, the Host-header check and
//! proxies, turned into [`CallError`] and then [`RegistryError`] with a
//! message that says what to fix. Pure functions, no I/O.

use super::endpoints::{Endpoint, Permission};
use super::wire::ErrorBody;
use crate::registry::RegistryError;

/// A failed call, before it becomes a [`RegistryError`].
#[derive(Debug)]
pub enum CallError {
    /// MLflow answered with an error code (or a plain-text body mapped to
    /// one, as MLflow's Python client does).
    Api {
        ep: &'static Endpoint,
        status: u16,
        code: String,
        message: String,
    },
    /// A write that is not idempotent may or may not have been applied.
    Ambiguous {
        ep: &'static Endpoint,
        message: String,
    },
    /// Already classified (transport, authentication, Host-header check).
    Registry(RegistryError),
}

impl CallError {
    /// MLflow's `error_code`, when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            CallError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// True when MLflow answered with this `error_code`.
    pub fn is(&self, code: &str) -> bool {
        self.code() == Some(code)
    }

    /// True for "the object does not exist" answers.
    pub fn is_not_found(&self) -> bool {
        self.is("RESOURCE_DOES_NOT_EXIST") || self.is("NOT_FOUND")
    }

    /// Converts into the registry's error, naming the operation.
    pub fn into_registry(self) -> RegistryError {
        match self {
            CallError::Registry(e) => e,
            CallError::Ambiguous { ep, message } => {
                RegistryError::Ambiguous(format!("{}: {message}", ep.op))
            }
            CallError::Api {
                ep,
                status,
                code,
                message,
            } => api_error(ep, status, &code, &message),
        }
    }
}

impl From<RegistryError> for CallError {
    fn from(e: RegistryError) -> Self {
        CallError::Registry(e)
    }
}

impl From<CallError> for RegistryError {
    fn from(e: CallError) -> Self {
        e.into_registry()
    }
}

fn api_error(ep: &Endpoint, status: u16, code: &str, message: &str) -> RegistryError {
    let op = ep.op;
    match code {
        "RESOURCE_ALREADY_EXISTS" | "ALREADY_EXISTS" => {
            RegistryError::AlreadyExists(format!("{op}: {message}"))
        }
        "RESOURCE_DOES_NOT_EXIST" | "NOT_FOUND" => {
            RegistryError::NotFound(format!("{op}: {message}"))
        }
        "INVALID_PARAMETER_VALUE" | "BAD_REQUEST" | "INVALID_STATE" => {
            RegistryError::Invalid(format!("{op}: {message}"))
        }
        "PERMISSION_DENIED" => permission_denied(ep, message),
        "UNAUTHENTICATED" | "CUSTOMER_UNAUTHORIZED" => RegistryError::Unauthenticated(format!(
            "{op}: {message}; check MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN"
        )),
        "ENDPOINT_NOT_FOUND" => RegistryError::Other(format!(
            "{op}: the server has no {} endpoint (HTTP {status}); is this an MLflow tracking server, and recent enough?",
            ep.path
        )),
        "TEMPORARILY_UNAVAILABLE" => {
            RegistryError::Unreachable(format!("{op}: server unavailable: {message}"))
        }
        _ if matches!(status, 502..=504) => {
            RegistryError::Unreachable(format!("{op}: server unhealthy (HTTP {status}): {message}"))
        }
        _ => RegistryError::Other(format!("{op} failed: {code} (HTTP {status}): {message}")),
    }
}

fn permission_denied(ep: &Endpoint, message: &str) -> RegistryError {
    let needs = match ep.needs {
        Permission::Read => "READ permission",
        Permission::Edit => "EDIT permission",
        Permission::Manage => "MANAGE permission",
        Permission::Create => "permission to create it",
        Permission::Admin => "an MLflow admin, or an admin of the workspace (MANAGE on it)",
    };
    RegistryError::PermissionDenied {
        operation: ep.op.to_owned(),
        message: format!("{message} (this needs {needs})"),
    }
}

/// Turns a non-2xx answer into a [`CallError`]. JSON bodies keep their
/// `error_code`; plain-text bodies are mapped as MLflow's client does, with
/// clear messages for the basic-auth app and the Host-header check.
pub fn classify_error(ep: &'static Endpoint, status: u16, body: &str, server: &str) -> CallError {
    if let Ok(parsed) = serde_json::from_str::<ErrorBody>(body)
        && !parsed.error_code.is_empty()
    {
        return CallError::Api {
            ep,
            status,
            code: parsed.error_code,
            message: parsed.message,
        };
    }
    let text = snippet(body);
    match status {
        401 => CallError::Registry(RegistryError::Unauthenticated(format!(
            "{server} answered 401 {text:?} to {}; check MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN",
            ep.op
        ))),
        403 if body.contains("Invalid Host header") => {
            CallError::Registry(RegistryError::Unreachable(format!(
                "{server} rejected the request's Host header ({text:?}); start the server with \
             --allowed-hosts <host> (or MLFLOW_SERVER_ALLOWED_HOSTS) naming the host in the URL"
            )))
        }
        403 if body.contains("Cross-origin") => CallError::Registry(RegistryError::Other(format!(
            "{server} blocked the request as cross-origin ({text:?})"
        ))),
        403 => CallError::Registry(permission_denied(ep, &text)),
        _ => {
            let code = match status {
                400 => "BAD_REQUEST",
                404 | 405 => "ENDPOINT_NOT_FOUND",
                429 => "REQUEST_LIMIT_EXCEEDED",
                503 => "TEMPORARILY_UNAVAILABLE",
                _ => "INTERNAL_ERROR",
            };
            CallError::Api {
                ep,
                status,
                code: code.to_owned(),
                message: text,
            }
        }
    }
}

/// The first 200 characters of a body, on one line.
pub fn snippet(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests;
