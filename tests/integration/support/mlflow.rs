//! The real MLflow server the integration tests share: started once per test
//! binary, on a free loopback port, with a sqlite backend in a temp dir.
//!
//! The venv comes from `scripts/ensure-mlflow.sh` (installed on first use
//! under `<repo>/.tools`, or `$MODELSYNC_VENV_DIR`); if that fails, every
//! test using the server fails loudly — nothing is skipped. Statics are never
//! dropped, so the server runs under a small `sh` watchdog that kills its
//! process group (and removes the temp dir) once the test process is gone.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use modelsync::registry::mlflow::{MlflowConfig, MlflowRegistry};

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
        MlflowRegistry::new(&self.url, MlflowConfig::default()).expect("valid URL")
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

fn start() -> Result<MlflowServer, String> {
    let bin_dir = ensure_venv()?;
    let dir = tempfile::Builder::new()
        .prefix("modelsync-mlflow-")
        .tempdir()
        .map_err(|e| format!("cannot create a temp dir: {e}"))?
        .keep();
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let access_log = dir.join("access.log");
    let server_log = dir.join("server.log");
    let mlflow = bin_dir.join("mlflow");
    let db = format!("sqlite:///{}", dir.join("mlflow.db").display());
    let artifacts = dir.join("artifacts");
    // The watchdog: runs the server in this process group, waits for the
    // test process to go away, then TERMs and KILLs the whole group.
    let script = r#"
parent="$1"; dir="$2"; shift 2
"$@" >"$dir/access.log" 2>"$dir/server.log" &
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
trap '' TERM
kill -TERM -$$ 2>/dev/null
sleep 3
rm -rf "$dir"
kill -KILL -$$
"#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("modelsync-mlflow-watchdog")
        .arg(std::process::id().to_string())
        .arg(&dir)
        .arg(&mlflow)
        .args([
            "server",
            "--backend-store-uri",
            &db,
            "--default-artifact-root",
        ])
        .arg(&artifacts)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--workers",
            "2",
        ])
        .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", mlflow.display()))?;
    let server = MlflowServer {
        url,
        bin_dir,
        dir,
        access_log,
        server_log,
    };
    wait_healthy(&server, port, Duration::from_secs(120))?;
    Ok(server)
}

fn ensure_venv() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("scripts/ensure-mlflow.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(MLFLOW_VERSION)
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}); MLflow {MLFLOW_VERSION} is needed for the integration tests",
            script.display(),
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

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn wait_healthy(server: &MlflowServer, port: u16, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if health(port) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let log = std::fs::read_to_string(&server.server_log).unwrap_or_default();
    let tail: Vec<&str> = log
        .lines()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(format!(
        "mlflow server on port {port} did not answer GET /health within {timeout:?}; its log ({}):\n{}",
        server.server_log.display(),
        tail.join("\n")
    ))
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
