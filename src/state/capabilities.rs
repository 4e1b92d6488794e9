//! What a registry can do, as probed once per run (MLflow: its version,
//! `GET /version`), so that a manifest needing what the server lacks is a
//! clear error before anything is read for planning or written.

use serde::{Deserialize, Serialize};

/// The features of a registry that manifests can need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// What the registry is, for messages (`MLflow 3.17.2`, `the embedded registry`).
    pub server: String,
    /// Registered-model aliases (MLflow 2.3+).
    pub aliases: bool,
    /// The prompt registry (MLflow 3: prompts as registered models the
    /// server knows, `prompt-template` versions).
    pub prompts: bool,
    /// Logged models, whose metrics gates can read (MLflow 3).
    pub logged_models: bool,
    /// Registry webhooks (MLflow 3.3+).
    pub webhooks: bool,
    /// Workspaces: the release has them (MLflow 3.10+); whether the server
    /// enables them is asked when a workspace is named.
    pub workspaces: bool,
    /// Which API grants permissions under basic-auth.
    pub permission_api: PermissionApi,
}

/// The endpoints MLflow's basic-auth app grants permissions with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionApi {
    /// No permission API (the embedded registry).
    None,
    /// MLflow before 3.13: `POST /api/2.0/mlflow/registered-models/permissions/create`.
    PerResource,
    /// MLflow 3.13+: `POST /api/3.0/mlflow/users/permissions/grant`.
    Grants,
}

impl PermissionApi {
    /// How an admin grants a permission on a registered model, for error
    /// messages (`None`: no permission API).
    pub fn how_to_grant(self) -> Option<&'static str> {
        match self {
            PermissionApi::None => None,
            PermissionApi::PerResource => Some(
                "an admin grants it with POST /api/2.0/mlflow/registered-models/permissions/create \
                 {\"name\": MODEL, \"username\": USER, \"permission\": EDIT|MANAGE}",
            ),
            PermissionApi::Grants => Some(
                "an admin grants it with POST /api/3.0/mlflow/users/permissions/grant \
                 {\"username\": USER, \"resource_type\": \"registered_model\", \"resource_id\": MODEL, \"permission\": EDIT|MANAGE}",
            ),
        }
    }
}

/// An MLflow release, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MlflowVersion(pub u32, pub u32, pub u32);

impl MlflowVersion {
    /// Parses what `GET /version` answers (`3.17.2`, `2.22.5`,
    /// `3.5.0rc0`, `3.10.1.dev0`); `None` when it is not a version.
    pub fn parse(text: &str) -> Option<MlflowVersion> {
        let mut parts = text.trim().splitn(3, '.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts
            .next()
            .map(|p| {
                p.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        Some(MlflowVersion(major, minor, patch))
    }

    /// What a server of this version can do.
    pub fn capabilities(self) -> Capabilities {
        let at_least = |v: MlflowVersion| self >= v;
        Capabilities {
            server: format!("MLflow {}.{}.{}", self.0, self.1, self.2),
            aliases: at_least(MlflowVersion(2, 3, 0)),
            prompts: at_least(MlflowVersion(3, 0, 0)),
            logged_models: at_least(MlflowVersion(3, 0, 0)),
            webhooks: at_least(MlflowVersion(3, 3, 0)),
            workspaces: at_least(MlflowVersion(3, 10, 0)),
            permission_api: if at_least(MlflowVersion(3, 13, 0)) {
                PermissionApi::Grants
            } else {
                PermissionApi::PerResource
            },
        }
    }
}

impl Capabilities {
    /// An MLflow-compatible server that does not say its version (no
    /// `GET /version`): nothing is refused up front; the server's own
    /// answers say what it lacks.
    pub fn unknown(server: &str) -> Capabilities {
        Capabilities {
            server: format!("{server} (version unknown)"),
            aliases: true,
            prompts: true,
            logged_models: true,
            webhooks: true,
            workspaces: true,
            permission_api: PermissionApi::None,
        }
    }

    /// The embedded registry: stages and aliases, nothing of MLflow 3's.
    pub fn embedded() -> Capabilities {
        Capabilities {
            server: "the embedded registry".into(),
            aliases: true,
            prompts: false,
            logged_models: false,
            webhooks: false,
            workspaces: false,
            permission_api: PermissionApi::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_the_server_spells_them() {
        assert_eq!(
            MlflowVersion::parse("3.17.2"),
            Some(MlflowVersion(3, 17, 2))
        );
        assert_eq!(
            MlflowVersion::parse("3.5.0rc0\n"),
            Some(MlflowVersion(3, 5, 0))
        );
        assert_eq!(MlflowVersion::parse("2.22"), Some(MlflowVersion(2, 22, 0)));
        assert_eq!(MlflowVersion::parse("<html>"), None);
    }

    #[test]
    fn capabilities_follow_the_release() {
        let two = MlflowVersion(2, 22, 5).capabilities();
        assert!(two.aliases && !two.prompts && !two.logged_models && !two.webhooks);
        assert_eq!(two.permission_api, PermissionApi::PerResource);
        let old = MlflowVersion(2, 2, 0).capabilities();
        assert!(!old.aliases);
        let three = MlflowVersion(3, 12, 0).capabilities();
        assert!(three.prompts && three.workspaces && three.webhooks);
        assert_eq!(three.permission_api, PermissionApi::PerResource);
        let new = MlflowVersion(3, 17, 2).capabilities();
        assert!(!MlflowVersion(3, 9, 0).capabilities().workspaces);
        assert_eq!(new.permission_api, PermissionApi::Grants);
    }
}
