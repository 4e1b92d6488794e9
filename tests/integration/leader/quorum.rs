//! The engine failing under the leader: etcd losing one member of three
//! (no interruption: same leader, same epoch, changes still applied) and
//! then a second (the leader steps down, nobody writes, `/healthz` fails,
//! and no replica goes on naming the old leader as if it still led: the
//! leader is `unknown`); PostgreSQL terminating the leader's session (it
//! steps down, the other replica takes over with a newer epoch and
//! applies).

use std::time::{Duration, Instant};

use modelsync::registry::Registry;

use super::{Fleet, LOADED, TTL, each_source_once, pg_uri, wait_applied};
use crate::support::etcd::EtcdCluster;

fn wait(what: &str, limit: Duration, f: &Fleet, mut done: impl FnMut(&Fleet) -> bool) {
    let start = Instant::now();
    while !done(f) {
        assert!(
            start.elapsed() < limit,
            "{what}: not within {limit:?}\n{}",
            f.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_losing_one_member_then_two() {
    let cluster = EtcdCluster::start("quorum").expect("etcd cluster");
    let f = Fleet::start(&cluster.uri(), 2).await;
    let leader = f.one_leader(LOADED);
    wait_applied(&f.model, false, "v1", LOADED).await;
    let epoch = f.epoch(leader);

    cluster.kill(0);
    f.set_manifest(true, "v2");
    wait_applied(&f.model, true, "v2", LOADED).await;
    tokio::time::sleep(TTL).await;
    assert_eq!(
        f.leaders(),
        vec![leader],
        "one member lost: no interruption"
    );
    assert_eq!(f.epoch(leader), epoch, "the same term");
    assert_eq!(f.writes(1 - leader), 0, "the standby wrote");

    cluster.kill(1);
    wait("the leader steps down", LOADED, &f, |f| {
        f.leaders().is_empty()
    });
    let writes: Vec<usize> = (0..2).map(|i| f.writes(i)).collect();
    f.set_manifest(true, "v3");
    // A window for a replica to (wrongly) lead or write in.
    tokio::time::sleep(TTL).await;
    assert!(f.leaders().is_empty(), "nobody leads without a quorum");
    assert_eq!(
        (0..2).map(|i| f.writes(i)).collect::<Vec<_>>(),
        writes,
        "a write without a quorum"
    );
    for r in &f.replicas {
        assert_eq!(
            r.daemon.get("/healthz").status,
            503,
            "the engine is unreachable"
        );
    }
    let m = crate::support::mlflow::server()
        .registry()
        .get_model(&f.model)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(m.description, "v2", "v3 was not applied");
    each_source_once(&f.model).await;
}

/// Issue 17: without a quorum nobody can be asked who leads, so no replica
/// reports the last leader it saw as the leader: `/status` says `unknown`
/// (and no epoch), on the standby and on the leader that stepped down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_without_quorum_no_replica_reports_a_stale_leader() {
    let cluster = EtcdCluster::start("no-quorum").expect("etcd cluster");
    let f = Fleet::start(&cluster.uri(), 2).await;
    let leader = f.one_leader(LOADED);
    wait_applied(&f.model, false, "v1", LOADED).await;
    let identity = f.replicas[leader].daemon.status()["leader"]
        .as_str()
        .expect("the leader names itself")
        .to_string();
    let standby = 1 - leader;
    wait("the standby sees the leader", LOADED, &f, |f| {
        f.replicas[standby].daemon.status()["leader"] == identity.as_str()
    });
    cluster.kill(0);
    cluster.kill(1);
    wait("the leader steps down", LOADED, &f, |f| {
        f.leaders().is_empty()
    });
    wait(
        "every replica reports the leader unknown",
        LOADED,
        &f,
        |f| {
            f.replicas.iter().all(|r| {
                let s = r.daemon.status();
                s["leader"] == "unknown" && s["epoch"].is_null()
            })
        },
    );
    // And it stays so while the engine cannot be asked.
    let start = Instant::now();
    while start.elapsed() < TTL {
        for r in &f.replicas {
            let s = r.daemon.status();
            assert_eq!(s["leader"], "unknown", "{s:#}");
            assert_ne!(s["leader"], identity.as_str(), "{s:#}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_terminating_the_leaders_session() {
    let f = Fleet::start(&pg_uri(), 2).await;
    let leader = f.one_leader(LOADED);
    wait_applied(&f.model, false, "v1", LOADED).await;
    let epoch = f.epoch(leader);
    let port = crate::support::servers::postgres();
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=mlflow dbname=postgres"),
        tokio_postgres::NoTls,
    )
    .await
    .expect("connect to PostgreSQL");
    tokio::spawn(conn);
    let key = modelsync::election::lock_key(&f.election);
    let lo = key & 0xffff_ffff;
    let rows = client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
             AND granted AND objid = $1::bigint::oid AND objsubid = 1",
            &[&lo],
        )
        .await
        .expect("terminate the leader's session");
    assert_eq!(rows.len(), 1, "one session holds the lock");
    let other = 1 - leader;
    wait("the other replica leads", LOADED, &f, |f| {
        f.leaders() == vec![other]
    });
    assert!(f.epoch(other) > epoch, "a newer epoch");
    let before = f.writes(leader);
    f.set_manifest(true, "v2");
    wait_applied(&f.model, true, "v2", LOADED).await;
    assert_eq!(f.role(leader).as_deref(), Some("standby"));
    assert_eq!(
        f.writes(leader),
        before,
        "the old leader wrote after stepping down"
    );
    each_source_once(&f.model).await;
}
