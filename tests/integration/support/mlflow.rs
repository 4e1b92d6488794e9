//! The real MLflow server the integration tests share: started once per test
//! binary, on a free loopback port, with a sqlite backend in a temp dir.
//!
//! The venv comes from `scripts/ensure-mlflow.sh` (installed on first use
//! under `<repo>/.tools`, or `$MODELSYNC_VENV_DIR`); if that fails, every
//! test using the server fails loudly — nothing is skipped. Statics are never
//! dropped, so the server runs under a small `sh` watchdog that kills its
//! process group (and removes the temp dir) once the test process is gone.
//!
//! [`launch`] starts other configurations (another version, backend store,
//! artifact root, arguments, environment, HTTPS); `tests/integration/support/servers.rs`
//! builds the PostgreSQL + S3, basic-auth + TLS and MLflow 2.x ones on it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use modelsync::registry::mlflow::{MlflowConfig, MlflowRegistry, TlsVerify};

/// Writes a line on the real stderr, past the test harness's output
/// capture, so start-up times show in every run.
#[macro_export]
macro_rules! harness_note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// The MLflow version the suite runs against.
pub const MLFLOW_VERSION: &str = "3.17.2";

/// A running `mlflow server`.
pub struct MlflowServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The venv's `bin` directory.
    pub bin_dir: PathBuf,
    /// The server's temp dir (database, artifacts, logs).
    pub dir: PathBuf,
    /// uvicorn's access log (the server's stdout): one line per request.
    pub access_log: PathBuf,
    /// Everything else the server printed (stderr).
    pub server_log: PathBuf,
    /// The MLflow version it runs.
    pub version: &'static str,
    /// Environment for clients (Python, the binary): S3 endpoint and keys,
    /// credentials, CA bundle, as the configuration needs.
    pub env: Vec<(String, String)>,
    /// The CA bundle that verifies an HTTPS server.
    pub tls_ca: Option<PathBuf>,
}

static SERVER: OnceLock<Result<MlflowServer, String>> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The shared server, started on first use. Panics (failing the test) when
/// MLflow cannot be installed or started.
pub fn server() -> &'static MlflowServer {
    match SERVER.get_or_init(start) {
        Ok(server) => server,
        Err(why) => panic!("the MLflow test server is not available:\n{why}"),
    }
}

/// A name unique within this test binary, for models and experiments
/// (tests share one server).
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

impl MlflowServer {
    /// A registry client for this server (default settings).
    pub fn registry(&self) -> MlflowRegistry {
        self.registry_with(MlflowConfig::default())
    }

    /// A registry client with `config`, trusting the server's CA if it has one.
    pub fn registry_with(&self, mut config: MlflowConfig) -> MlflowRegistry {
        if let Some(ca) = &self.tls_ca {
            config.tls = Some(TlsVerify::ExtraCa(ca.clone()));
        }
        MlflowRegistry::new(&self.url, config).expect("valid URL")
    }

    /// The venv's python, with mlflow and scikit-learn.
    pub fn python(&self) -> PathBuf {
        self.bin_dir.join("python")
    }

    /// Runs a Python snippet with `MLFLOW_TRACKING_URI` pointing at the
    /// server; returns its stdout. Panics with its stderr on failure.
    pub fn run_python(&self, code: &str) -> String {
        let out = Command::new(self.python())
            .arg("-c")
            .arg(code)
            .env("MLFLOW_TRACKING_URI", &self.url)
            .env("PYTHONWARNINGS", "ignore")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .output()
            .expect("run the venv's python");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "python failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// The request lines of the access log so far.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" HTTP/1.1\" "))
            .map(str::to_owned)
            .collect()
    }

    /// How many logged requests contain `needle` (e.g. `"GET /api/2.0/mlflow/registered-models/search"`).
    pub fn count_requests(&self, needle: &str) -> usize {
        self.requests()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }
}

impl MlflowServer {
    /// Stops a server started by [`launch`]: TERM, then KILL, to the
    /// process group of its watchdog, then removes its dir. For servers a
    /// test owns (the version matrix runs one at a time); shared servers
    /// live as long as the test binary.
    pub fn stop(&self) {
        let pattern = format!(
            "modelsync-test-watchdog {} {} ",
            std::process::id(),
            self.dir.display()
        );
        let found = Command::new("pgrep").arg("-f").arg(&pattern).output();
        let groups: Vec<String> = found
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
            .split_whitespace()
            .map(|pid| format!("-{pid}"))
            .collect();
        for signal in ["-TERM", "-KILL"] {
            for group in &groups {
                let _ = Command::new("kill")
                    .args([signal, "--", group])
                    .stderr(Stdio::null())
                    .status();
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start() -> Result<MlflowServer, String> {
    start_sqlite(MLFLOW_VERSION, "sqlite")
}

/// A plain server of `version` on a fresh sqlite database.
pub fn start_sqlite(version: &'static str, dir_label: &str) -> Result<MlflowServer, String> {
    let bin_dir = ensure_venv(version, &[])?;
    let dir = temp_dir(dir_label)?;
    launch(ServerSpec {
        label: "sqlite".into(),
        version,
        bin_dir,
        backend: format!("sqlite:///{}", dir.join("mlflow.db").display()),
        artifact_root: dir.join("artifacts").display().to_string(),
        dir,
        args: Vec::new(),
        // MLflow delivers webhooks only to public https URLs unless told
        // otherwise; the daemon under test listens on plain-HTTP loopback.
        // A short cache TTL makes a new webhook deliver at once. One fixed
        // key encrypts webhook secrets: without it each of the server's
        // workers makes its own and cannot read the others' (HTTP 500).
        env: [
            ("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true"),
            (
                "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY",
                "Tt39gr868sDXUZkhSRPMMvo9Xi0TRQ3NROySYMkj2Fw=",
            ),
            ("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https"),
            ("MLFLOW_WEBHOOK_CACHE_TTL", "1"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec(),
        client_env: Vec::new(),
        tls_ca: None,
    })
}

/// How to start one `mlflow server` (see [`launch`]).
pub struct ServerSpec {
    /// A short name for the configuration, printed with its start-up time.
    pub label: String,
    pub version: &'static str,
    /// The venv's `bin` directory ([`ensure_venv`]).
    pub bin_dir: PathBuf,
    /// The temp dir the server owns (logs; removed once the tests exit).
    pub dir: PathBuf,
    /// `--backend-store-uri`.
    pub backend: String,
    /// `--default-artifact-root`.
    pub artifact_root: String,
    /// More `mlflow server` arguments.
    pub args: Vec<String>,
    /// Environment for the server and for Python clients.
    pub env: Vec<(String, String)>,
    /// Environment for Python clients only (credentials, CA bundle).
    pub client_env: Vec<(String, String)>,
    /// Serve HTTPS (the caller passes `--uvicorn-opts` with the key and
    /// certificate in `args`); this CA bundle verifies it.
    pub tls_ca: Option<PathBuf>,
}

/// A fresh temp dir for one configuration, kept until the watchdog removes it.
pub fn temp_dir(label: &str) -> Result<PathBuf, String> {
    Ok(tempfile::Builder::new()
        .prefix(&format!("modelsync-mlflow-{label}-"))
        .tempdir()
        .map_err(|e| format!("cannot create a temp dir: {e}"))?
        .keep())
}

/// Starts `mlflow server` as `spec` says, on a free loopback port, and waits
/// for `GET /health`. Prints how long that took.
pub fn launch(spec: ServerSpec) -> Result<MlflowServer, String> {
    let started = Instant::now();
    let port = free_port()?;
    let scheme = if spec.tls_ca.is_some() {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://127.0.0.1:{port}");
    let mlflow = spec.bin_dir.join("mlflow");
    let mut args: Vec<String> = vec![
        "server".into(),
        "--backend-store-uri".into(),
        spec.backend.clone(),
        "--default-artifact-root".into(),
        spec.artifact_root.clone(),
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        port.to_string(),
        "--workers".into(),
        "2".into(),
    ];
    args.extend(spec.args.iter().cloned());
    let mut env = vec![(
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION".to_string(),
        "false".to_string(),
    )];
    env.extend(spec.env.iter().cloned());
    spawn_watched(
        &spec.dir,
        "",
        true,
        &mlflow.display().to_string(),
        &args,
        &env,
    )?;
    let mut client_env = spec.env.clone();
    client_env.extend(spec.client_env.iter().cloned());
    let server = MlflowServer {
        url,
        bin_dir: spec.bin_dir,
        access_log: spec.dir.join("access.log"),
        server_log: spec.dir.join("server.log"),
        dir: spec.dir,
        version: spec.version,
        env: client_env,
        tls_ca: spec.tls_ca,
    };
    wait_healthy(&server, port, Duration::from_secs(300))?;
    harness_note!(
        "harness: MLflow {} ({}) answered /health after {:.1} s",
        server.version,
        spec.label,
        started.elapsed().as_secs_f64()
    );
    Ok(server)
}

/// Runs `program args` with `env` in the background under a small `sh`
/// watchdog in its own process group: once the test process is gone, it
/// TERMs and then KILLs the group (and removes `dir` when `owns_dir`).
/// Output goes to `dir/{prefix}access.log` (stdout) and
/// `dir/{prefix}server.log` (stderr); when the program ends, its exit
/// status is written to `dir/{prefix}exited`.
pub fn spawn_watched(
    dir: &Path,
    prefix: &str,
    owns_dir: bool,
    program: &str,
    args: &[String],
    env: &[(String, String)],
) -> Result<(), String> {
    let script = r#"
parent="$1"; dir="$2"; prefix="$3"; owns="$4"; shift 4
("$@" >"$dir/${prefix}access.log" 2>"$dir/${prefix}server.log"; echo "$?" >"$dir/${prefix}exited") &
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
trap '' TERM
kill -TERM -$$ 2>/dev/null
sleep 3
[ "$owns" = yes ] && rm -rf "$dir"
kill -KILL -$$
"#;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .arg("modelsync-test-watchdog")
        .arg(std::process::id().to_string())
        .arg(dir)
        .arg(prefix)
        .arg(if owns_dir { "yes" } else { "no" })
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn()
        .map(drop)
        .map_err(|e| format!("cannot start {program}: {e}"))
}

/// Installs (once) the venv of `version` with these sets of extras
/// (`scripts/ensure-mlflow.sh`); returns its `bin` directory.
pub fn ensure_venv(version: &str, sets: &[&str]) -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("scripts/ensure-mlflow.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(version)
        .args(sets)
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {version} {} failed ({}); MLflow {version} is needed for the integration tests",
            script.display(),
            sets.join(" "),
            out.status
        ));
    }
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !bin.join("mlflow").exists() {
        return Err(format!(
            "{} printed {bin:?}, which has no mlflow",
            script.display()
        ));
    }
    Ok(bin)
}

/// Waits until something accepts TCP connections on the loopback `port`.
pub fn wait_port(port: u16, what: &str, log: &Path, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    let exited = log.with_file_name(
        log.file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.replace("server.log", "exited"))
            .unwrap_or_default(),
    );
    while start.elapsed() < timeout {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Ok(status) = std::fs::read_to_string(&exited) {
            return Err(format!(
                "{what} exited (status {}) before listening on port {port}; its log ({}):\n{}",
                status.trim(),
                log.display(),
                log_tail(log)
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "{what} did not listen on port {port} within {timeout:?}; its log ({}):\n{}",
        log.display(),
        log_tail(log)
    ))
}

pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn wait_healthy(server: &MlflowServer, port: u16, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        let up = match &server.tls_ca {
            None => health(port),
            Some(ca) => health_tls(&server.url, ca),
        };
        if up {
            return Ok(());
        }
        if let Ok(status) = std::fs::read_to_string(server.dir.join("exited")) {
            return Err(format!(
                "mlflow server on port {port} exited (status {}) before answering GET /health; its log ({}):\n{}",
                status.trim(),
                server.server_log.display(),
                log_tail(&server.server_log)
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(format!(
        "mlflow server on port {port} did not answer GET /health within {timeout:?}; its log ({}):\n{}",
        server.server_log.display(),
        log_tail(&server.server_log)
    ))
}

/// The last 40 lines of a log file.
pub fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn health(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200")
}

/// `GET /health` over HTTPS, verified against `ca`. Runs on its own thread
/// and runtime: the caller may be inside a test's runtime.
fn health_tls(url: &str, ca: &Path) -> bool {
    let url = format!("{url}/health");
    let ca = ca.to_owned();
    std::thread::spawn(move || {
        let Ok(pem) = std::fs::read(&ca) else {
            return false;
        };
        let Ok(cert) = reqwest::Certificate::from_pem(&pem) else {
            return false;
        };
        let Ok(client) = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(cert)
            .timeout(Duration::from_secs(5))
            .build()
        else {
            return false;
        };
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return false;
        };
        rt.block_on(async {
            client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
    })
    .join()
    .unwrap_or(false)
}
