//! A 3-member etcd cluster on loopback, from Debian's `etcd-server`
//! package (installed by `scripts/ensure-system-deps.sh`): [`shared`] is
//! started once per test binary; a test that kills members starts its own
//! with [`EtcdCluster::start`]. Each member runs under the harness's
//! watchdog (`spawn_watched`), so it ends with the test process.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::mlflow::{free_port, spawn_watched, temp_dir};

/// The etcd binary Debian's `etcd-server` installs.
const ETCD: &str = "/usr/bin/etcd";

/// A running cluster.
pub struct EtcdCluster {
    dir: PathBuf,
    /// Client ports, one per member.
    pub client_ports: Vec<u16>,
}

static SHARED: OnceLock<Result<EtcdCluster, String>> = OnceLock::new();

/// The cluster shared by the tests that do not kill members.
pub fn shared() -> &'static EtcdCluster {
    match SHARED.get_or_init(|| EtcdCluster::start("shared")) {
        Ok(c) => c,
        Err(why) => panic!("the etcd test cluster is not available:\n{why}"),
    }
}

impl EtcdCluster {
    /// Starts three members and waits until every one reports healthy.
    pub fn start(label: &str) -> Result<EtcdCluster, String> {
        if !std::path::Path::new(ETCD).exists() {
            return Err(format!(
                "{ETCD} is missing: run scripts/ensure-system-deps.sh (apt-get install etcd-server)"
            ));
        }
        let t = Instant::now();
        let dir = temp_dir(&format!("etcd-{label}"))?;
        let ports: Vec<(u16, u16)> = (0..3)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<Result<_, String>>()?;
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let script = format!("echo $$ > {}/m{i}.pid; exec {ETCD} \"$@\"", dir.display());
            let mut args = vec!["-c".to_string(), script, "etcd".into()];
            args.extend([
                format!("--name=m{i}"),
                format!("--data-dir={}/m{i}", dir.display()),
                format!("--listen-client-urls=http://127.0.0.1:{client}"),
                format!("--advertise-client-urls=http://127.0.0.1:{client}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"),
                format!("--initial-cluster={}", initial.join(",")),
                "--initial-cluster-state=new".into(),
                format!(
                    "--initial-cluster-token=modelsync-{label}-{}",
                    std::process::id()
                ),
                "--heartbeat-interval=100".into(),
                "--election-timeout=1000".into(),
                "--logger=zap".into(),
                "--log-level=warn".into(),
            ]);
            spawn_watched(&dir, &format!("m{i}-"), true, "sh", &args, &[])?;
        }
        let cluster = EtcdCluster {
            dir,
            client_ports: ports.iter().map(|(c, _)| *c).collect(),
        };
        for i in 0..3 {
            cluster.wait_healthy(i, Duration::from_secs(60))?;
        }
        crate::harness_note!(
            "harness: etcd 3-member cluster {label} on client ports {:?} after {:.1} s",
            cluster.client_ports,
            t.elapsed().as_secs_f64()
        );
        Ok(cluster)
    }

    /// `etcd://127.0.0.1:A,127.0.0.1:B,127.0.0.1:C`.
    pub fn uri(&self) -> String {
        let hosts: Vec<String> = self
            .client_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("etcd://{}", hosts.join(","))
    }

    /// SIGKILLs member `i`.
    pub fn kill(&self, i: usize) {
        let pid =
            std::fs::read_to_string(self.dir.join(format!("m{i}.pid"))).expect("member pid file");
        let ok = std::process::Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill etcd member {i}");
    }

    fn wait_healthy(&self, i: usize, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if health(self.client_ports[i]) {
                return Ok(());
            }
            if start.elapsed() > limit {
                let log = std::fs::read_to_string(self.dir.join(format!("m{i}-server.log")))
                    .unwrap_or_default();
                let tail: String = log.lines().rev().take(20).collect::<Vec<_>>().join("\n");
                return Err(format!(
                    "etcd member m{i} not healthy after {limit:?}:\n{tail}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `GET /health` answers `"health":"true"`.
fn health(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req =
        format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.contains("\"health\":\"true\"")
}
