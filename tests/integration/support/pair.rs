//! Two MLflow servers with proxied artifacts (`--serve-artifacts`, files
//! under `--artifacts-destination`), "dev" and "prod", for copies across
//! registries; each started once per test binary, lazily. [`stoppable`]
//! starts one more that a test may stop (kill -9 of its process group).

use std::sync::OnceLock;

use super::mlflow::{MLFLOW_VERSION, MlflowServer, ServerSpec, ensure_venv, launch, temp_dir};

static DEV: OnceLock<Result<MlflowServer, String>> = OnceLock::new();
static PROD: OnceLock<Result<MlflowServer, String>> = OnceLock::new();

/// The shared "dev" server (proxied artifacts).
pub fn dev() -> &'static MlflowServer {
    match DEV.get_or_init(|| proxied("dev")) {
        Ok(s) => s,
        Err(why) => panic!("the dev MLflow server is not available:\n{why}"),
    }
}

/// The shared "prod" server (proxied artifacts).
pub fn prod() -> &'static MlflowServer {
    match PROD.get_or_init(|| proxied("prod")) {
        Ok(s) => s,
        Err(why) => panic!("the prod MLflow server is not available:\n{why}"),
    }
}

/// A fresh server with proxied artifacts that the caller may [`stop`].
pub fn stoppable(label: &str) -> MlflowServer {
    proxied(label).unwrap_or_else(|why| panic!("MLflow server {label} did not start:\n{why}"))
}

fn proxied(label: &str) -> Result<MlflowServer, String> {
    let bin_dir = ensure_venv(MLFLOW_VERSION, &[])?;
    let dir = temp_dir(label)?;
    launch(ServerSpec {
        label: format!("{label}, proxied artifacts"),
        version: MLFLOW_VERSION,
        bin_dir,
        backend: format!("sqlite:///{}", dir.join("mlflow.db").display()),
        artifact_root: "mlflow-artifacts:/".into(),
        args: vec![
            "--serve-artifacts".into(),
            "--artifacts-destination".into(),
            dir.join("artifacts").display().to_string(),
        ],
        dir,
        env: Vec::new(),
        client_env: Vec::new(),
        tls_ca: None,
    })
}

/// Stops `server` at once: SIGKILL to every process holding its listening
/// socket (found through /proc/net/tcp and the processes' fds) and to the
/// process groups of those and of the command line that started it.
pub fn stop(server: &MlflowServer) {
    let port: u16 = server
        .url
        .rsplit(':')
        .next()
        .expect("port")
        .parse()
        .expect("port");
    let inodes = listening_inodes(port);
    let needle = format!("--port\0{port}\0");
    let mut pids = std::collections::BTreeSet::new();
    let mut groups = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.chars().all(|c| c.is_ascii_digit()) || pid == std::process::id().to_string() {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let by_cmdline = String::from_utf8_lossy(&cmdline).contains(&needle);
        let by_socket = std::fs::read_dir(entry.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|l| {
                inodes
                    .iter()
                    .any(|i| l.to_string_lossy() == format!("socket:[{i}]"))
            });
        if !(by_cmdline || by_socket) {
            continue;
        }
        pids.insert(pid.clone());
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if let Some((_, rest)) = stat.rsplit_once(')')
            && let Some(pgrp) = rest.split_whitespace().nth(2)
            && pgrp != "0"
            && pgrp != "1"
        {
            groups.insert(format!("-{pgrp}"));
        }
    }
    assert!(!pids.is_empty(), "no process listens on port {port}");
    let targets: Vec<String> = groups.into_iter().chain(pids).collect();
    for t in &targets {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", t])
            .status();
    }
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "server on {port} still answers after kill -9 of {targets:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = std::fs::remove_dir_all(&server.dir);
}

/// Socket inodes listening on `port` (IPv4 and IPv6).
fn listening_inodes(port: u16) -> Vec<String> {
    let hex = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| {
            t.lines()
                .skip(1)
                .filter_map(|l| {
                    let cols: Vec<&str> = l.split_whitespace().collect();
                    // local_address, st (0A = LISTEN), inode
                    (cols.len() > 9 && cols[1].ends_with(&hex) && cols[3] == "0A")
                        .then(|| cols[9].to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}
