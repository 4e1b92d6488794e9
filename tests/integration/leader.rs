//! Issue 10: daemon replicas electing one leader through a real etcd
//! cluster (3 members, Debian's etcd-server) or the suite's private
//! PostgreSQL cluster, against the real MLflow server. Every replica talks
//! to MLflow through its own recording proxy, so each write is counted per
//! replica: a replica writes only while it leads, and no source is ever
//! registered twice. Election TTL 10 s throughout. A loaded 2-core CI
//! machine may take seconds per request, so every wait has a generous
//! deadline ([`LOADED`]) and the assertions are about order (a newer epoch,
//! no write while not leading, a hand-over before the term could expire);
//! how long a failover took is measured and noted, not asserted.

mod fencing;
mod history;
mod kubernetes;
mod quorum;

use std::time::{Duration, Instant};

use modelsync::registry::Registry;

use crate::support::cli::Workdir;
use crate::support::daemon::Daemon;
use crate::support::mlflow::{server, unique};
use crate::support::proxy::Proxy;

/// The election's TTL (`--election-ttl`); the applier lease keeps the suite's
/// long TTL (`support::cli::LEASE_TTL`): no test here lets it expire.
pub(crate) const TTL: Duration = Duration::from_secs(10);
/// A deadline on a loaded CI machine, not a claim about speed.
pub(crate) const LOADED: Duration = Duration::from_secs(120);

/// The election engine a scenario runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Engine {
    Etcd,
    Postgres,
}

impl Engine {
    pub(crate) fn uri(self) -> String {
        match self {
            Engine::Etcd => crate::support::etcd::shared().uri(),
            Engine::Postgres => pg_uri(),
        }
    }
}

pub(crate) fn pg_uri() -> String {
    let port = crate::support::servers::postgres();
    format!("postgresql://mlflow@127.0.0.1:{port}/postgres")
}

/// One daemon and the proxy it reaches MLflow through.
pub(crate) struct Replica {
    pub daemon: Daemon,
    pub proxy: Proxy,
    /// Killed or stopped: not asked over HTTP.
    pub gone: bool,
}

/// `n` replicas watching one manifest folder, competing for one election.
pub(crate) struct Fleet {
    pub w: Workdir,
    pub model: String,
    pub election: String,
    pub replicas: Vec<Replica>,
}

/// Version `a` in Production and behind `champion`; with `b`, version `b`
/// in Staging behind `challenger` too; `description` changes the model.
pub(crate) fn manifest(name: &str, with_b: bool, description: &str) -> String {
    let mut spec = format!(
        "  description: {description}\n  versions:\n    a: {{source: \"s3://bucket/{name}/a\"}}\n"
    );
    if with_b {
        spec.push_str(&format!("    b: {{source: \"s3://bucket/{name}/b\"}}\n"));
    }
    spec.push_str("  stages:\n    Production: a\n");
    if with_b {
        spec.push_str("    Staging: b\n");
    }
    spec.push_str("  aliases:\n    champion: a\n");
    if with_b {
        spec.push_str("    challenger: b\n");
    }
    format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

impl Fleet {
    pub async fn start(uri: &str, n: usize) -> Fleet {
        let w = Workdir::new();
        let model = unique("leader");
        w.write(&format!("m/{model}.yaml"), &manifest(&model, false, "v1"));
        let election = unique("election");
        let mut replicas = Vec::new();
        for _ in 0..n {
            let proxy = Proxy::start(&server().url).await;
            replicas.push(Replica {
                daemon: start_replica(&w, &proxy, uri, &election),
                proxy,
                gone: false,
            });
        }
        Fleet {
            w,
            model,
            election,
            replicas,
        }
    }

    /// The replicas that report `role: leader` now.
    pub fn leaders(&self) -> Vec<usize> {
        (0..self.replicas.len())
            .filter(|i| self.role(*i).as_deref() == Some("leader"))
            .collect()
    }

    pub fn role(&self, i: usize) -> Option<String> {
        let r = &self.replicas[i];
        if r.gone {
            return None;
        }
        r.daemon.status()["role"].as_str().map(str::to_string)
    }

    pub fn epoch(&self, i: usize) -> u64 {
        self.replicas[i].daemon.status()["epoch"]
            .as_u64()
            .expect("an epoch in /status")
    }

    /// Waits until exactly one replica leads (and stays the only one);
    /// returns it.
    pub fn one_leader(&self, limit: Duration) -> usize {
        let start = Instant::now();
        loop {
            let l = self.leaders();
            if l.len() == 1 {
                return l[0];
            }
            assert!(l.len() <= 1, "two leaders at once: {l:?}");
            assert!(
                start.elapsed() < limit,
                "no leader within {limit:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Model writes replica `i` made (its proxy's non-GET requests, less
    /// searches and the applier lease's).
    pub fn writes(&self, i: usize) -> usize {
        let lease = self.w.lease_name();
        self.replicas[i]
            .proxy
            .seen()
            .iter()
            .filter(|s| s.method != "GET" && !s.path.contains("search") && !s.body.contains(&lease))
            .count()
    }

    /// Waits until replica `i`'s pass is over (its `/status` names the
    /// revision it applied): it holds no applier lease any more, so
    /// stopping it leaves none behind.
    pub fn wait_pass_done(&mut self, i: usize) {
        self.replicas[i]
            .daemon
            .wait_status("the pass done", LOADED, |s| {
                s["last_applied_revision"].is_string()
            });
    }

    pub fn set_manifest(&self, with_b: bool, description: &str) {
        self.w.write(
            &format!("m/{}.yaml", self.model),
            &manifest(&self.model, with_b, description),
        );
    }

    pub fn signal(&mut self, i: usize, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([
                &format!("-{sig}"),
                &self.replicas[i].daemon.pid().to_string(),
            ])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -{sig}");
        self.replicas[i].gone = sig != "CONT";
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (i, r) in self.replicas.iter().enumerate() {
            out.push_str(&format!(
                "--- replica {i}\n{}\n",
                r.daemon.logs().join("\n")
            ));
        }
        out
    }
}

pub(crate) fn start_replica(w: &Workdir, proxy: &Proxy, uri: &str, election: &str) -> Daemon {
    let cmd = w.command(&[
        "--registry",
        &proxy.url,
        "watch",
        "m",
        "--leader-election",
        uri,
        "--leader-election-name",
        election,
        "--election-ttl",
        "10s",
        "--resync",
        "0",
        "--debounce",
        "100ms",
    ]);
    Daemon::start(cmd)
}

/// Waits until the registry holds what the manifest says.
pub(crate) async fn wait_applied(model: &str, with_b: bool, description: &str, limit: Duration) {
    let reg = server().registry();
    let start = Instant::now();
    loop {
        if let Ok(Some(m)) = reg.get_model(model).await {
            let aliases_ok = m.aliases.contains_key("champion")
                && (!with_b || m.aliases.contains_key("challenger"));
            if m.description == description && aliases_ok {
                return;
            }
        }
        assert!(
            start.elapsed() < limit,
            "{model} not at {description} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// No source registered twice.
pub(crate) async fn each_source_once(model: &str) {
    let m = server()
        .registry()
        .get_model(model)
        .await
        .expect("read")
        .expect("exists");
    let mut sources: Vec<&str> = m.versions.values().map(|v| v.source.as_str()).collect();
    let n = sources.len();
    sources.sort();
    sources.dedup();
    assert_eq!(sources.len(), n, "a source registered twice: {m:?}");
}

pub(crate) fn metric(d: &Daemon, name: &str) -> f64 {
    let body = d.get("/metrics").body;
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{body}"))
}

/// Three replicas: one leads and applies; the standbys are ready, report
/// who leads, write nothing. kill -9 of the leader: another leads once its
/// term expired, with a newer epoch, and applies a manifest change.
async fn kill_9_fails_over(engine: Engine) {
    let mut f = Fleet::start(&engine.uri(), 3).await;
    let leader = f.one_leader(LOADED);
    wait_applied(&f.model, false, "v1", LOADED).await;
    f.wait_pass_done(leader);
    let epoch = f.epoch(leader);
    for i in (0..3).filter(|i| *i != leader) {
        // A standby learns the term at its next check of the engine.
        let s = f.replicas[i]
            .daemon
            .wait_status("the standby sees the term", LOADED, |s| {
                s["epoch"].as_u64() == Some(epoch)
            });
        let d = &f.replicas[i].daemon;
        assert_eq!(f.role(i).as_deref(), Some("standby"));
        assert_eq!(d.get("/readyz").status, 200, "a healthy standby is ready");
        assert_eq!(d.get("/healthz").status, 200);
        assert_eq!(metric(d, "modelsync_leader"), 0.0);
        assert!(s["leader"].as_str().is_some_and(|l| !l.is_empty()), "{s}");
        assert!(s["since"].as_str().is_some(), "{s}");
    }
    assert_eq!(metric(&f.replicas[leader].daemon, "modelsync_leader"), 1.0);
    assert!(
        metric(
            &f.replicas[leader].daemon,
            "modelsync_leader_transitions_total"
        ) >= 1.0
    );

    f.signal(leader, "KILL");
    let killed = Instant::now();
    f.set_manifest(true, "v2");
    let next = f.one_leader(LOADED);
    let took = killed.elapsed();
    assert!(f.epoch(next) > epoch, "a new term has a newer epoch");
    wait_applied(&f.model, true, "v2", LOADED).await;
    for i in (0..3).filter(|i| *i != leader && *i != next) {
        assert_eq!(
            f.writes(i),
            0,
            "replica {i} never led but wrote:\n{}",
            f.logs()
        );
    }
    each_source_once(&f.model).await;
    crate::harness_note!(
        "leader: {engine:?} failover after kill -9 in {:.2} s",
        took.as_secs_f64()
    );
}

/// Two replicas; the leader is SIGSTOPped past its TTL: the other leads and
/// applies a change; the stopped one, resumed, writes nothing and reports
/// itself a standby (also after another manifest change it sees).
async fn sigstop_leader_writes_nothing_after_resuming(engine: Engine) {
    let mut f = Fleet::start(&engine.uri(), 2).await;
    let old = f.one_leader(LOADED);
    wait_applied(&f.model, false, "v1", LOADED).await;
    f.wait_pass_done(old);
    let other = 1 - old;
    f.signal(old, "STOP");
    let stopped = Instant::now();
    let before = f.writes(old);
    f.set_manifest(true, "v2");
    let start = Instant::now();
    while f.role(other).as_deref() != Some("leader") {
        assert!(start.elapsed() < LOADED, "no take-over:\n{}", f.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = stopped.elapsed();
    wait_applied(&f.model, true, "v2", LOADED).await;
    f.signal(old, "CONT");
    f.set_manifest(true, "v3");
    wait_applied(&f.model, true, "v3", LOADED).await;
    // A window for the resumed replica to (wrongly) write in.
    tokio::time::sleep(TTL).await;
    assert_eq!(
        f.writes(old),
        before,
        "the resumed leader wrote:\n{}",
        f.logs()
    );
    assert_eq!(f.role(old).as_deref(), Some("standby"));
    assert_eq!(f.leaders(), vec![other]);
    each_source_once(&f.model).await;
    crate::harness_note!(
        "leader: {engine:?} take-over after SIGSTOP in {:.2} s",
        took.as_secs_f64()
    );
}

/// SIGTERM of the leader: it resigns (etcd: resign and revoke the lease;
/// PostgreSQL: unlock), so the standby leads before the old term could
/// have expired (one TTL), and the stopped one exits 0.
async fn sigterm_hands_over_at_once(engine: Engine) {
    let mut f = Fleet::start(&engine.uri(), 2).await;
    let old = f.one_leader(LOADED);
    wait_applied(&f.model, false, "v1", LOADED).await;
    let start = Instant::now();
    let code = f.replicas[old].daemon.terminate(LOADED);
    assert_eq!(code, 0);
    f.replicas[old].gone = true;
    let next = f.one_leader(LOADED);
    let took = start.elapsed();
    assert_eq!(next, 1 - old);
    assert!(
        took < TTL,
        "hand-over took {took:?}: not resigned?\n{}",
        f.logs()
    );
}

mod etcd {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigterm_hands_over_at_once() {
        super::sigterm_hands_over_at_once(Engine::Etcd).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kill_9_fails_over() {
        super::kill_9_fails_over(Engine::Etcd).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigstop_leader_writes_nothing_after_resuming() {
        super::sigstop_leader_writes_nothing_after_resuming(Engine::Etcd).await;
    }
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigterm_hands_over_at_once() {
        super::sigterm_hands_over_at_once(Engine::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kill_9_fails_over() {
        super::kill_9_fails_over(Engine::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigstop_leader_writes_nothing_after_resuming() {
        super::sigstop_leader_writes_nothing_after_resuming(Engine::Postgres).await;
    }
}

/// A password in the URI appears nowhere (logs, `/status`, `/metrics`), and
/// an unreachable engine makes `/healthz` fail after the TTL while the
/// replica stays a standby that writes nothing.
#[test]
fn an_unreachable_engine_fails_healthz_and_the_password_is_never_shown() {
    let w = Workdir::new();
    w.write("m/x.yaml", &manifest("never-applied", false, "v1"));
    let port = crate::support::mlflow::free_port().expect("port");
    let mut cmd = w.command(&[
        "watch",
        "m",
        "--leader-election",
        &format!("postgresql://ms:s3cret-pw@127.0.0.1:{port}/db"),
        // The old name of --election-ttl, still accepted.
        "--lease-ttl",
        "1s",
    ]);
    cmd.env("PGPASSWORD", "env-s3cret");
    let mut d = Daemon::start(cmd);
    let start = Instant::now();
    while d.get("/healthz").status != 503 {
        assert!(
            start.elapsed() < LOADED,
            "/healthz never failed: {:?}",
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = d.status();
    assert_eq!(status["role"], "standby");
    let shown = format!(
        "{}\n{}\n{status}",
        d.logs().join("\n"),
        d.get("/metrics").body
    );
    assert!(shown.contains("cannot reach the engine"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(!w.registry_file().exists(), "a standby wrote the registry");
    assert_eq!(d.terminate(LOADED), 0);
}
