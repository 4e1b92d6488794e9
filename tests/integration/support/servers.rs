//! The server set-ups teams really run, each started once per test binary,
//! lazily (only when one of its tests runs), on loopback:
//!
//! - [`postgres_s3`]: MLflow 3.17.2 on a private PostgreSQL cluster (initdb
//!   in a temp dir, its own port and socket dir; never the system cluster),
//!   artifacts in an S3 bucket served by `moto_server`, `--no-serve-artifacts`.
//! - [`auth_tls`]: MLflow 3.17.2's basic-auth app over HTTPS, with a
//!   certificate from a private CA made here with the openssl CLI.
//! - [`mlflow2`]: the last MLflow 2.x release (2.22.5), sqlite.
//! - [`auth_legacy`]: MLflow 3.12.0's basic-auth app (plain HTTP), the last
//!   release with the per-model permission endpoints.
//!
//! Each prints how long it took to start. What they need is installed by
//! `scripts/ensure-mlflow.sh` (the `servers` extras; `auth` for 3.12.0) and
//! `scripts/ensure-system-deps.sh` (PostgreSQL, openssl); `scripts/test.sh`
//! runs both.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use modelsync::registry::mlflow::{Auth, MlflowConfig, MlflowRegistry};
use modelsync::secret::Secret;

use super::mlflow::{
    MlflowServer, ServerSpec, ensure_venv, free_port, launch, spawn_watched, temp_dir, wait_port,
};

/// The MLflow 2.x release the suite runs against.
pub const MLFLOW2_VERSION: &str = "2.22.5";
/// The MLflow version matrix: every version the conformance scenarios and
/// the binary's core scenario run against, and why it is there. The table
/// of tested versions in `docs/mlflow.md` lists the same.
pub const MATRIX: &[(&str, &str)] = &[
    (
        super::mlflow::MLFLOW_VERSION,
        "the newest 3.x release PyPI can install; the rest of the suite runs on it",
    ),
    (
        "3.12.0",
        "the last 3.x before the permission API changed in 3.13",
    ),
    ("3.4.0", "a 3.x from before the Host-header check of 3.5"),
    (MLFLOW2_VERSION, "the last 2.x release"),
];
/// The S3 bucket of [`postgres_s3`].
pub const BUCKET: &str = "modelsync-test";
/// Dummy AWS credentials, for moto and every S3 client.
const AWS_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "modelsync-test-key"),
    ("AWS_SECRET_ACCESS_KEY", "modelsync-test-secret"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
];

/// MLflow on PostgreSQL with S3 artifacts.
pub struct PostgresS3 {
    pub mlflow: MlflowServer,
    /// `postgresql+psycopg://mlflow@127.0.0.1:PORT/mlflow`.
    pub backend: String,
    /// moto's endpoint, `http://127.0.0.1:PORT`.
    pub s3_endpoint: String,
}

/// MLflow's basic-auth app behind TLS.
pub struct AuthTls {
    pub mlflow: MlflowServer,
    /// The private CA's certificate (PEM).
    pub ca: PathBuf,
    pub admin_user: String,
    pub admin_password: String,
}

static POSTGRES_S3: OnceLock<Result<PostgresS3, String>> = OnceLock::new();
static AUTH_TLS: OnceLock<Result<AuthTls, String>> = OnceLock::new();
static MLFLOW2: OnceLock<Result<MlflowServer, String>> = OnceLock::new();
static AUTH_LEGACY: OnceLock<Result<AuthLegacy, String>> = OnceLock::new();

/// The MLflow release before the permission API changed (3.13).
pub const LEGACY_AUTH_VERSION: &str = "3.12.0";

/// MLflow 3.12.0's basic-auth app, over plain HTTP.
pub struct AuthLegacy {
    pub mlflow: MlflowServer,
    pub admin_user: String,
    pub admin_password: String,
}

/// The 3.12.0 basic-auth configuration, started on first use.
pub fn auth_legacy() -> &'static AuthLegacy {
    match AUTH_LEGACY.get_or_init(|| timed("basic-auth 3.12", start_auth_legacy)) {
        Ok(s) => s,
        Err(why) => {
            panic!("the MLflow {LEGACY_AUTH_VERSION} basic-auth server is not available:\n{why}")
        }
    }
}
static WORKSPACES: OnceLock<Result<MlflowServer, String>> = OnceLock::new();

/// The workspace the workspaces server has besides `default`.
pub const TEAM_WORKSPACE: &str = "team-a";

/// An MLflow 3 server started with `--enable-workspaces` (sqlite), with
/// the workspace [`TEAM_WORKSPACE`] created; started on first use.
pub fn workspaces() -> &'static MlflowServer {
    match WORKSPACES.get_or_init(|| timed("workspaces", start_workspaces)) {
        Ok(s) => s,
        Err(why) => panic!("the MLflow server with workspaces is not available:\n{why}"),
    }
}

fn start_workspaces() -> Result<MlflowServer, String> {
    let version = super::mlflow::MLFLOW_VERSION;
    let bin_dir = ensure_venv(version, &[])?;
    let dir = super::mlflow::temp_dir("workspaces")?;
    let srv = super::mlflow::launch(super::mlflow::ServerSpec {
        label: "workspaces".into(),
        version,
        bin_dir,
        backend: format!("sqlite:///{}", dir.join("mlflow.db").display()),
        artifact_root: dir.join("artifacts").display().to_string(),
        dir,
        args: vec!["--enable-workspaces".into()],
        env: Vec::new(),
        client_env: Vec::new(),
        tls_ca: None,
    })?;
    srv.run_python(&format!(
        "from mlflow import MlflowClient\nMlflowClient().create_workspace({TEAM_WORKSPACE:?})\n"
    ));
    Ok(srv)
}

static POSTGRES: OnceLock<Result<u16, String>> = OnceLock::new();

/// The private PostgreSQL cluster (see [`start_postgres`]), started on
/// first use and shared by the PostgreSQL + S3 configuration and the
/// leader-election tests. Its port; the `mlflow` superuser needs no
/// password.
pub fn postgres() -> u16 {
    match postgres_port() {
        Ok(p) => p,
        Err(why) => panic!("the private PostgreSQL cluster is not available:\n{why}"),
    }
}

fn postgres_port() -> Result<u16, String> {
    POSTGRES
        .get_or_init(|| {
            let dir = temp_dir("postgres")?;
            start_postgres(&dir)
        })
        .clone()
}

/// The PostgreSQL + S3 configuration, started on first use.
pub fn postgres_s3() -> &'static PostgresS3 {
    match POSTGRES_S3.get_or_init(|| timed("postgres+s3", start_postgres_s3)) {
        Ok(s) => s,
        Err(why) => panic!("the PostgreSQL + S3 MLflow configuration is not available:\n{why}"),
    }
}

/// The basic-auth + TLS configuration, started on first use.
pub fn auth_tls() -> &'static AuthTls {
    match AUTH_TLS.get_or_init(|| timed("basic-auth+tls", start_auth_tls)) {
        Ok(s) => s,
        Err(why) => panic!("the basic-auth + TLS MLflow configuration is not available:\n{why}"),
    }
}

/// The MLflow 2.x server, started on first use.
pub fn mlflow2() -> &'static MlflowServer {
    match MLFLOW2.get_or_init(|| timed("mlflow-2.x", start_mlflow2)) {
        Ok(s) => s,
        Err(why) => panic!("the MLflow {MLFLOW2_VERSION} server is not available:\n{why}"),
    }
}

fn timed<T>(label: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    let start = Instant::now();
    let out = f();
    crate::harness_note!(
        "harness: configuration {label} {} after {:.1} s",
        if out.is_ok() { "ready" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    out
}

fn start_mlflow2() -> Result<MlflowServer, String> {
    super::mlflow::start_sqlite(MLFLOW2_VERSION, "v2")
}

fn start_postgres_s3() -> Result<PostgresS3, String> {
    let bin_dir = ensure_venv(super::mlflow::MLFLOW_VERSION, &["servers"])?;
    let dir = temp_dir("postgres-s3")?;
    let pg_port = postgres_port()?;
    let backend = format!("postgresql+psycopg://mlflow@127.0.0.1:{pg_port}/mlflow");

    let t = Instant::now();
    let s3_port = free_port()?;
    let s3_endpoint = format!("http://127.0.0.1:{s3_port}");
    let aws: Vec<(String, String)> = AWS_ENV
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    spawn_watched(
        &dir,
        "moto-",
        false,
        &bin_dir.join("moto_server").display().to_string(),
        &[
            "-H".into(),
            "127.0.0.1".into(),
            "-p".into(),
            s3_port.to_string(),
        ],
        &aws,
    )?;
    wait_port(
        s3_port,
        "moto_server",
        &dir.join("moto-server.log"),
        Duration::from_secs(120),
    )?;
    let mut env = aws;
    env.push(("MLFLOW_S3_ENDPOINT_URL".into(), s3_endpoint.clone()));
    let create_bucket = format!(
        "import boto3\nboto3.client('s3', endpoint_url={s3_endpoint:?}).create_bucket(Bucket={BUCKET:?})"
    );
    run_checked(
        Command::new(bin_dir.join("python"))
            .args(["-c", &create_bucket])
            .envs(env.iter().map(|(k, v)| (k, v))),
        "create the S3 bucket with boto3",
    )?;
    crate::harness_note!(
        "harness: moto S3 on port {s3_port} with bucket {BUCKET} after {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mlflow = launch(ServerSpec {
        label: "postgres+s3".into(),
        version: super::mlflow::MLFLOW_VERSION,
        bin_dir,
        backend: backend.clone(),
        artifact_root: format!("s3://{BUCKET}/mlflow"),
        dir,
        args: vec!["--no-serve-artifacts".into()],
        env,
        client_env: Vec::new(),
        tls_ca: None,
    })?;
    Ok(PostgresS3 {
        mlflow,
        backend,
        s3_endpoint,
    })
}

/// A private PostgreSQL cluster in `dir/pg` (initdb, trust auth for the
/// `mlflow` superuser, loopback only, socket in the dir), with a `mlflow`
/// database. As root, the server runs as the `postgres` user (it refuses
/// root). Returns its port.
fn start_postgres(dir: &Path) -> Result<u16, String> {
    let t = Instant::now();
    let bin = postgres_bin_dir()?;
    let pg = dir.join("pg");
    std::fs::create_dir_all(&pg).map_err(|e| format!("mkdir {}: {e}", pg.display()))?;
    let as_root = is_root();
    if as_root {
        // The server runs as `postgres`: it must reach and own its dirs.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
        let uid = Command::new("id")
            .args(["-u", "postgres"])
            .output()
            .map_err(|e| format!("id -u postgres: {e}"))?;
        let uid: u32 = String::from_utf8_lossy(&uid.stdout)
            .trim()
            .parse()
            .map_err(|_| "there is no postgres user to run PostgreSQL as (install postgresql: scripts/ensure-system-deps.sh)".to_string())?;
        std::os::unix::fs::chown(&pg, Some(uid), None)
            .map_err(|e| format!("chown {}: {e}", pg.display()))?;
    }
    let as_pg = |program: &Path| -> Command {
        if as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    };
    let data = pg.join("data");
    run_checked(
        as_pg(&bin.join("initdb")).arg("-D").arg(&data).args([
            "-U",
            "mlflow",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ]),
        "initdb",
    )?;
    let port = free_port()?;
    let (program, mut args) = if as_root {
        (
            "runuser".to_string(),
            vec![
                "-u".to_string(),
                "postgres".into(),
                "--".into(),
                bin.join("postgres").display().to_string(),
            ],
        )
    } else {
        (bin.join("postgres").display().to_string(), Vec::new())
    };
    args.extend([
        "-D".to_string(),
        data.display().to_string(),
        "-p".into(),
        port.to_string(),
        "-k".into(),
        pg.display().to_string(),
        "-c".into(),
        "listen_addresses=127.0.0.1".into(),
        // A throw-away test cluster: durability off, speed on.
        "-c".into(),
        "fsync=off".into(),
        "-c".into(),
        "synchronous_commit=off".into(),
        "-c".into(),
        "full_page_writes=off".into(),
    ]);
    spawn_watched(dir, "pg-", false, &program, &args, &[])?;
    let log = dir.join("pg-server.log");
    wait_port(port, "postgres", &log, Duration::from_secs(60))?;
    // The port opens before the server accepts sessions: retry briefly.
    let start = Instant::now();
    loop {
        let out = Command::new(bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "mlflow"])
            .arg("mlflow")
            .output()
            .map_err(|e| format!("createdb: {e}"))?;
        if out.status.success() {
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            return Err(format!(
                "createdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    crate::harness_note!(
        "harness: PostgreSQL ({}) on port {port} after {:.1} s",
        bin.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(port)
}

/// The newest `/usr/lib/postgresql/<ver>/bin`, else the directory of
/// `initdb` on the PATH.
fn postgres_bin_dir() -> Result<PathBuf, String> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Ok(bin);
    }
    let out = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .map_err(|e| e.to_string())?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    match path.parent() {
        Some(dir) if out.status.success() => Ok(dir.to_owned()),
        _ => Err(
            "PostgreSQL is not installed (no initdb); run scripts/ensure-system-deps.sh \
             (apt-get install postgresql)"
                .into(),
        ),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run_checked(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Writes the basic-auth app's configuration into `dir` (default
/// permission READ, its own sqlite database); returns its path.
fn auth_ini(dir: &Path, admin_user: &str, admin_password: &str) -> Result<PathBuf, String> {
    let ini = dir.join("basic_auth.ini");
    std::fs::write(
        &ini,
        format!(
            "[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{}\nadmin_username = {admin_user}\n\
             admin_password = {admin_password}\nauthorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
            dir.join("basic_auth.db").display()
        ),
    )
    .map_err(|e| format!("write {}: {e}", ini.display()))?;
    Ok(ini)
}

fn start_auth_legacy() -> Result<AuthLegacy, String> {
    let bin_dir = ensure_venv(LEGACY_AUTH_VERSION, &["auth"])?;
    let dir = temp_dir("auth-legacy")?;
    let admin_user = "admin".to_string();
    let admin_password = format!("adm-{:016x}", fastrand::u64(..));
    let ini = auth_ini(&dir, &admin_user, &admin_password)?;
    let mlflow = launch(ServerSpec {
        label: "basic-auth 3.12".into(),
        version: LEGACY_AUTH_VERSION,
        bin_dir,
        backend: format!("sqlite:///{}", dir.join("mlflow.db").display()),
        artifact_root: dir.join("artifacts").display().to_string(),
        args: vec!["--app-name".into(), "basic-auth".into()],
        env: vec![
            ("MLFLOW_AUTH_CONFIG_PATH".into(), ini.display().to_string()),
            (
                "MLFLOW_FLASK_SERVER_SECRET_KEY".into(),
                format!("{:016x}", fastrand::u64(..)),
            ),
        ],
        client_env: vec![
            ("MLFLOW_TRACKING_USERNAME".into(), admin_user.clone()),
            ("MLFLOW_TRACKING_PASSWORD".into(), admin_password.clone()),
        ],
        dir,
        tls_ca: None,
    })?;
    Ok(AuthLegacy {
        mlflow,
        admin_user,
        admin_password,
    })
}

fn start_auth_tls() -> Result<AuthTls, String> {
    let bin_dir = ensure_venv(super::mlflow::MLFLOW_VERSION, &["servers"])?;
    let dir = temp_dir("auth-tls")?;
    let tls = dir.join("tls");
    let (ca, cert, key) = make_certificates(&tls)?;
    let admin_user = "admin".to_string();
    let admin_password = format!("adm-{:016x}", fastrand::u64(..));
    let ini = auth_ini(&dir, &admin_user, &admin_password)?;
    let mlflow = launch(ServerSpec {
        label: "basic-auth+tls".into(),
        version: super::mlflow::MLFLOW_VERSION,
        bin_dir,
        backend: format!("sqlite:///{}", dir.join("mlflow.db").display()),
        artifact_root: dir.join("artifacts").display().to_string(),
        args: vec![
            "--app-name".into(),
            "basic-auth".into(),
            "--uvicorn-opts".into(),
            format!(
                "--ssl-keyfile {} --ssl-certfile {}",
                key.display(),
                cert.display()
            ),
        ],
        env: vec![
            ("MLFLOW_AUTH_CONFIG_PATH".into(), ini.display().to_string()),
            (
                "MLFLOW_FLASK_SERVER_SECRET_KEY".into(),
                format!("{:016x}", fastrand::u64(..)),
            ),
        ],
        client_env: vec![
            ("MLFLOW_TRACKING_USERNAME".into(), admin_user.clone()),
            ("MLFLOW_TRACKING_PASSWORD".into(), admin_password.clone()),
            (
                "MLFLOW_TRACKING_SERVER_CERT_PATH".into(),
                ca.display().to_string(),
            ),
        ],
        dir,
        tls_ca: Some(ca.clone()),
    })?;
    Ok(AuthTls {
        mlflow,
        ca,
        admin_user,
        admin_password,
    })
}

/// A private CA and a server certificate it signed, for 127.0.0.1 and
/// localhost: returns (CA cert, server cert, server key).
pub fn make_certificates(dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let p = |f: &str| dir.join(f);
    let openssl = |args: &[&str], what: &str| {
        run_checked(
            Command::new("openssl").args(args).current_dir(dir),
            &format!("openssl: {what}"),
        )
    };
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=modelsync test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        "make the CA",
    )?;
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
        "make the server key",
    )?;
    std::fs::write(
        p("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| e.to_string())?;
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
        "sign the server certificate",
    )?;
    Ok((p("ca.pem"), p("server.pem"), p("server.key")))
}

impl AuthTls {
    /// A registry client logged in as `user`.
    pub fn registry_as(&self, user: &str, password: &str) -> MlflowRegistry {
        self.mlflow.registry_with(MlflowConfig {
            auth: Some(Auth::Basic {
                username: user.into(),
                password: Secret::named("MLFLOW_TRACKING_PASSWORD", password),
            }),
            ..MlflowConfig::default()
        })
    }

    /// A registry client logged in as the admin.
    pub fn admin(&self) -> MlflowRegistry {
        self.registry_as(&self.admin_user, &self.admin_password)
    }

    /// Creates a user (as the admin).
    pub async fn create_user(&self, user: &str, password: &str) {
        self.admin_post(
            "api/2.0/mlflow/users/create",
            serde_json::json!({ "username": user, "password": password }),
        )
        .await;
    }

    /// Grants `permission` (READ, EDIT, MANAGE) on a registered model (as
    /// the admin), replacing an earlier grant. MLflow 3.17 moved this to
    /// `/api/3.0/mlflow/users/permissions/{grant,revoke}`; a second grant
    /// for the same user and model is RESOURCE_ALREADY_EXISTS.
    pub async fn grant_model(&self, user: &str, model: &str, permission: &str) {
        self.revoke_model(user, model).await;
        self.admin_post(
            "api/3.0/mlflow/users/permissions/grant",
            serde_json::json!({
                "username": user,
                "resource_type": "registered_model",
                "resource_id": model,
                "permission": permission,
            }),
        )
        .await;
    }

    /// Removes a user's grant on a registered model, if there is one.
    pub async fn revoke_model(&self, user: &str, model: &str) {
        let (status, text) = self
            .admin_request(
                "api/3.0/mlflow/users/permissions/revoke",
                serde_json::json!({
                    "username": user,
                    "resource_type": "registered_model",
                    "resource_id": model,
                }),
            )
            .await;
        assert!(
            status.is_success() || text.contains("RESOURCE_DOES_NOT_EXIST"),
            "revoke {user} on {model}: {status} {text}"
        );
    }

    async fn admin_post(&self, path: &str, body: serde_json::Value) {
        let (status, text) = self.admin_request(path, body.clone()).await;
        assert!(status.is_success(), "POST {path} {body}: {status} {text}");
    }

    async fn admin_request(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> (reqwest::StatusCode, String) {
        let pem = std::fs::read(&self.ca).expect("read the CA");
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA pem"))
            .build()
            .expect("http client");
        let resp = client
            .post(format!("{}/{path}", self.mlflow.url))
            .basic_auth(&self.admin_user, Some(&self.admin_password))
            .json(&body)
            .send()
            .await
            .expect("admin request");
        let status = resp.status();
        (status, resp.text().await.unwrap_or_default())
    }
}
