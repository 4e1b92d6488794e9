//! The basic-auth servers as the permission tests use them, one interface
//! over both permission APIs: MLflow 3.17.2 over HTTPS ([`super::servers::auth_tls`],
//! RBAC under `/api/3.0`) and 3.12.0 over HTTP
//! ([`super::servers::auth_legacy`], per-model grants). Users are made by
//! the admin; grants "by hand" are the admin's, through the server's own
//! API; a person's client is MLflow's own Python client, logged in as them.

use std::path::PathBuf;

use super::cli::{Run, Workdir};
use super::mlflow::{MlflowServer, unique};
use super::proxy::Proxy;
use super::servers::{auth_legacy, auth_tls};

/// One basic-auth server.
pub struct Auth {
    pub mlflow: &'static MlflowServer,
    admin: (String, String),
    /// RBAC (3.13+) or per-model grants.
    pub rbac: bool,
    ca: Option<PathBuf>,
}

/// A user made for one test: its name and password.
#[derive(Clone)]
pub struct User {
    pub name: String,
    pub password: String,
}

impl Auth {
    /// MLflow 3.17.2, HTTPS.
    pub fn rbac() -> Auth {
        let s = auth_tls();
        Auth {
            mlflow: &s.mlflow,
            admin: (s.admin_user.clone(), s.admin_password.clone()),
            rbac: true,
            ca: Some(s.ca.clone()),
        }
    }

    /// MLflow 3.12.0, HTTP.
    pub fn legacy() -> Auth {
        let s = auth_legacy();
        Auth {
            mlflow: &s.mlflow,
            admin: (s.admin_user.clone(), s.admin_password.clone()),
            rbac: false,
            ca: None,
        }
    }

    /// The admin, as a [`User`].
    pub fn admin(&self) -> User {
        User {
            name: self.admin.0.clone(),
            password: self.admin.1.clone(),
        }
    }

    /// A new user, `prefix-<unique>`.
    pub async fn user(&self, prefix: &str) -> User {
        let user = User {
            name: unique(prefix),
            password: format!("pw-{:016x}", fastrand::u64(..)),
        };
        let body = serde_json::json!({"username": user.name, "password": user.password});
        self.admin_ok("POST", "api/2.0/mlflow/users/create", body)
            .await;
        user
    }

    /// Makes `user` an MLflow admin.
    pub async fn make_admin(&self, user: &User) {
        let body = serde_json::json!({"username": user.name, "is_admin": true});
        self.admin_ok("PATCH", "api/2.0/mlflow/users/update-admin", body)
            .await;
    }

    /// The admin gives `user` `level` on `model` by hand (replacing a grant
    /// it has).
    pub async fn grant(&self, user: &str, model: &str, level: &str) {
        if self.rbac {
            self.revoke(user, model).await;
            let body = serde_json::json!({
                "username": user, "resource_type": "registered_model",
                "resource_id": model, "permission": level,
            });
            self.admin_ok("POST", "api/3.0/mlflow/users/permissions/grant", body)
                .await;
        } else {
            let body = serde_json::json!({"name": model, "username": user, "permission": level});
            let (status, text) = self
                .admin_request(
                    "POST",
                    "api/2.0/mlflow/registered-models/permissions/create",
                    body.clone(),
                )
                .await;
            if !status.is_success() {
                assert!(text.contains("ALREADY_EXISTS"), "{status} {text}");
                self.admin_ok(
                    "PATCH",
                    "api/2.0/mlflow/registered-models/permissions/update",
                    body,
                )
                .await;
            }
        }
    }

    /// The admin takes `user`'s grant on `model` back, if there is one.
    pub async fn revoke(&self, user: &str, model: &str) {
        let (method, path, body) = if self.rbac {
            let body = serde_json::json!({
                "username": user, "resource_type": "registered_model", "resource_id": model,
            });
            ("POST", "api/3.0/mlflow/users/permissions/revoke", body)
        } else {
            let body = serde_json::json!({"name": model, "username": user});
            (
                "DELETE",
                "api/2.0/mlflow/registered-models/permissions/delete",
                body,
            )
        };
        let (status, text) = self.admin_request(method, path, body).await;
        assert!(
            status.is_success() || text.contains("DOES_NOT_EXIST"),
            "revoke {user} on {model}: {status} {text}"
        );
    }

    /// `user`'s direct grant on `model`, as the admin reads it (`None`:
    /// none).
    pub async fn grant_of(&self, user: &str, model: &str) -> Option<String> {
        if self.rbac {
            let (status, text) = self
                .admin_request(
                    "GET",
                    "api/3.0/mlflow/roles/list?workspace=default",
                    serde_json::Value::Null,
                )
                .await;
            assert!(status.is_success(), "{status} {text}");
            let id = self.user_id(user).await;
            let roles: serde_json::Value = serde_json::from_str(&text).expect("json");
            let own = format!("__user_{id}__");
            roles["roles"]
                .as_array()?
                .iter()
                .find(|r| r["name"] == own.as_str())
                .and_then(|r| {
                    r["permissions"].as_array()?.iter().find_map(|p| {
                        (p["resource_type"] == "registered_model" && p["resource_pattern"] == model)
                            .then(|| p["permission"].as_str().unwrap_or_default().to_string())
                    })
                })
        } else {
            let path = format!(
                "api/2.0/mlflow/registered-models/permissions/get?name={model}&username={user}"
            );
            let (status, text) = self
                .admin_request("GET", &path, serde_json::Value::Null)
                .await;
            if !status.is_success() {
                assert!(text.contains("DOES_NOT_EXIST"), "{status} {text}");
                return None;
            }
            let v: serde_json::Value = serde_json::from_str(&text).expect("json");
            v["registered_model_permission"]["permission"]
                .as_str()
                .map(str::to_owned)
        }
    }

    /// A role of the default workspace (made by the admin); its name.
    pub async fn role(&self, name: &str) -> String {
        let body = serde_json::json!({"name": name, "workspace": "default"});
        self.admin_ok("POST", "api/3.0/mlflow/roles/create", body)
            .await;
        name.to_string()
    }

    /// `role`'s grant on `model`, as the admin reads it.
    pub async fn role_grant(&self, role: &str, model: &str) -> Option<String> {
        let (status, text) = self
            .admin_request(
                "GET",
                "api/3.0/mlflow/roles/list?workspace=default",
                serde_json::Value::Null,
            )
            .await;
        assert!(status.is_success(), "{status} {text}");
        let roles: serde_json::Value = serde_json::from_str(&text).expect("json");
        let found = roles["roles"]
            .as_array()?
            .iter()
            .find(|r| r["name"] == role)?;
        found["permissions"].as_array()?.iter().find_map(|p| {
            (p["resource_type"] == "registered_model" && p["resource_pattern"] == model)
                .then(|| p["permission"].as_str().unwrap_or_default().to_string())
        })
    }

    async fn user_id(&self, user: &str) -> i64 {
        let path = format!("api/2.0/mlflow/users/get?username={user}");
        let (status, text) = self
            .admin_request("GET", &path, serde_json::Value::Null)
            .await;
        assert!(status.is_success(), "{status} {text}");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        v["user"]["id"].as_i64().expect("user id")
    }

    /// A proxy in front of the server that records every request.
    pub async fn proxy(&self) -> Proxy {
        match &self.ca {
            Some(ca) => Proxy::start_tls(&self.mlflow.url, ca).await,
            None => Proxy::start(&self.mlflow.url).await,
        }
    }

    /// Runs the binary in `w` against `registry` (the server, or a proxy in
    /// front of it), logged in as `user`.
    pub fn run_as(&self, w: &Workdir, user: &User, registry: &str, args: &[&str]) -> Run {
        let mut cmd = w.command(&[]);
        cmd.env("MODELSYNC_REGISTRY", registry)
            .env("MLFLOW_TRACKING_USERNAME", &user.name)
            .env("MLFLOW_TRACKING_PASSWORD", &user.password)
            .env_remove("MLFLOW_TRACKING_TOKEN")
            // A loaded machine answers slowly; these tests are not about the
            // applier lease's timing.
            .env("MODELSYNC_LEASE_TTL", "300s")
            .args(args);
        match &self.ca {
            Some(ca) => cmd.env("MLFLOW_TRACKING_SERVER_CERT_PATH", ca),
            None => cmd.env_remove("MLFLOW_TRACKING_SERVER_CERT_PATH"),
        };
        Run::from_command(&mut cmd)
    }

    /// Runs `code` with MLflow's own Python client logged in as `user`;
    /// the exit status and what it printed (stdout, then stderr).
    pub fn python_as(&self, user: &User, code: &str) -> (bool, String) {
        let mut cmd = std::process::Command::new(self.mlflow.python());
        cmd.arg("-c")
            .arg(code)
            .env("MLFLOW_TRACKING_URI", &self.mlflow.url)
            .env("PYTHONWARNINGS", "ignore")
            .envs(self.mlflow.env.iter().map(|(k, v)| (k, v)))
            .env("MLFLOW_TRACKING_USERNAME", &user.name)
            .env("MLFLOW_TRACKING_PASSWORD", &user.password)
            .current_dir(&self.mlflow.dir);
        let out = cmd.output().expect("run the venv's python");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    async fn admin_ok(&self, method: &str, path: &str, body: serde_json::Value) {
        let (status, text) = self.admin_request(method, path, body.clone()).await;
        assert!(
            status.is_success(),
            "{method} {path} {body}: {status} {text}"
        );
    }

    async fn admin_request(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> (reqwest::StatusCode, String) {
        let mut b = reqwest::Client::builder().use_rustls_tls();
        if let Some(ca) = &self.ca {
            let pem = std::fs::read(ca).expect("read the CA");
            b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA pem"));
        }
        let client = b.build().expect("http client");
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = client
            .request(method, format!("{}/{path}", self.mlflow.url))
            .basic_auth(&self.admin.0, Some(&self.admin.1));
        if !body.is_null() {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("admin request");
        let status = resp.status();
        (status, resp.text().await.unwrap_or_default())
    }
}
