//! A real scoring server for the verification tests: `mlflow models serve`
//! from the shared MLflow server's virtualenv (`--env-manager local`),
//! serving a real scikit-learn model logged with MLflow's client, behind
//! `models:/NAME@champion` (resolved once, at start). Started once per test
//! binary under the harness's watchdog, and waited for on `GET /ping`.
//! Beside it, [`failing`]: a tiny endpoint that answers 500 to everything.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::mlflow::{free_port, server, spawn_watched, temp_dir, unique};

/// A running scoring server.
pub struct Scoring {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The model it serves (`models:/MODEL@champion`).
    pub model: String,
}

static SCORING: OnceLock<Result<Scoring, String>> = OnceLock::new();
static FAILING: OnceLock<String> = OnceLock::new();

/// The shared scoring server, started on first use; panics (failing the
/// test) when it cannot start.
pub fn scoring() -> &'static Scoring {
    match SCORING.get_or_init(start) {
        Ok(s) => s,
        Err(why) => panic!("the scoring server is not available:\n{why}"),
    }
}

fn start() -> Result<Scoring, String> {
    let started = Instant::now();
    let srv = server();
    let model = unique("scoring");
    srv.run_python(&format!(
        r#"
import mlflow, mlflow.sklearn, numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
mlflow.set_experiment("{model}-training")
X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
with mlflow.start_run():
    info = mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model",
                                    registered_model_name="{model}")
MlflowClient().set_registered_model_alias("{model}", "champion", info.registered_model_version)
"#
    ));
    let dir = temp_dir("scoring")?;
    let port = free_port()?;
    let mlflow = srv.bin_dir.join("mlflow").display().to_string();
    let args: Vec<String> = [
        "models",
        "serve",
        "-m",
        &format!("models:/{model}@champion"),
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
    ]
    .map(str::to_string)
    .to_vec();
    // `mlflow models serve` runs `uvicorn` by name: the venv's.
    let path = format!(
        "{}:{}",
        srv.bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut env = vec![
        ("MLFLOW_TRACKING_URI".to_string(), srv.url.clone()),
        ("PATH".to_string(), path),
    ];
    env.extend(srv.env.iter().cloned());
    spawn_watched(&dir, "", true, &mlflow, &args, &env)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        if get_status(port, "/ping") == Some(200) {
            crate::harness_note!(
                "harness: the scoring server answered /ping after {:.1} s",
                started.elapsed().as_secs_f64()
            );
            return Ok(Scoring {
                url: format!("http://127.0.0.1:{port}"),
                model,
            });
        }
        if let Ok(status) = std::fs::read_to_string(dir.join("exited")) {
            return Err(format!(
                "mlflow models serve exited ({}):\n{}",
                status.trim(),
                std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!(
        "mlflow models serve did not answer /ping within 300 s:\n{}",
        std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
    ))
}

/// The status of `GET path` on the loopback `port`, if it answers.
fn get_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The URL of an endpoint that answers every request with 500 (a scoring
/// endpoint gone bad), started once.
pub fn failing() -> &'static str {
    FAILING.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                    read_request(&mut conn);
                    let body = r#"{"error_code": "INTERNAL_ERROR"}"#;
                    let _ = write!(
                        conn,
                        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        url
    })
}

/// Reads one request (its head, then `Content-Length` bytes of body), so
/// the answer never races the client's sending.
fn read_request(conn: &mut TcpStream) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let head_end = got.windows(4).position(|w| w == b"\r\n\r\n");
        if let Some(end) = head_end {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return;
            }
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}
