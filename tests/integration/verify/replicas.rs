//! Two daemon replicas with leader election (etcd) and a move whose
//! verification fails with `onFailure: rollback`: only the leader runs the
//! verification, rolls back and holds — each replica reaches MLflow through
//! its own recording proxy, so every write is counted per replica, and the
//! standby writes nothing — and only the leader notifies
//! `verification.failed`, `rolled-back` and `held` (each replica has its
//! own webhook receiver).

use std::time::Duration;

use modelsync::state::Stage;
use modelsync::state::hold::holds;
use modelsync::state::verification::{State, rolled_back_then};

use super::rollback::failing_after_a_first_move;
use super::{record, wait_record};
use crate::copy::model;
use crate::leader::Engine;
use crate::support::cli::Workdir;
use crate::support::daemon::Daemon;
use crate::support::mlflow::{server, unique};
use crate::support::proxy::Proxy;
use crate::support::receiver::Receiver;

/// A replica: `watch m` through its own proxy, notifying its own receiver.
struct Replica {
    daemon: Daemon,
    proxy: Proxy,
    hook: Receiver,
}

async fn replica(w: &Workdir, election: &str) -> Replica {
    let proxy = Proxy::start(&server().url).await;
    let hook = Receiver::start(0);
    let cmd = w.command(&[
        "--registry",
        &proxy.url,
        "watch",
        "m",
        "--leader-election",
        &Engine::Etcd.uri(),
        "--leader-election-name",
        election,
        "--election-ttl",
        "10s",
        "--resync",
        "0",
        "--notify",
        &hook.url,
    ]);
    Replica {
        daemon: Daemon::start(cmd),
        proxy,
        hook,
    }
}

/// The writes a replica made (non-GET, less searches and the applier
/// lease's), and those that wrote `tag_key`.
fn writes(r: &Replica, lease: &str, tag_key: &str) -> (usize, usize) {
    let seen = r.proxy.seen();
    let all: Vec<_> = (seen.iter())
        .filter(|s| s.method != "GET" && !s.path.contains("search") && !s.body.contains(lease))
        .collect();
    let tagged = all.iter().filter(|s| s.body.contains(tag_key)).count();
    (all.len(), tagged)
}

/// The CloudEvent types a receiver got, in order.
fn types(hook: &Receiver) -> Vec<String> {
    (hook.received().iter())
        .filter_map(|r| r.json()["type"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_only_the_leader_verifies_rolls_back_holds_and_notifies() {
    let srv = server();
    let w = Workdir::new();
    let (name, v1, v2) = failing_after_a_first_move(srv, &w, "replicas");
    let election = unique("verify-election");
    let replicas = [replica(&w, &election).await, replica(&w, &election).await];

    let failed = wait_record(srv, &name, v2, "failed and rolled back", |r| {
        r.state == State::Failed && r.then.is_some()
    })
    .await;
    assert_eq!(failed.then, Some(rolled_back_then(v1)), "{failed:?}");
    let leaders: Vec<usize> = (0..2)
        .filter(|i| replicas[*i].daemon.status()["role"] == "leader")
        .collect();
    assert_eq!(leaders.len(), 1, "one leader: {leaders:?}");
    let (leader, standby) = (&replicas[leaders[0]], &replicas[1 - leaders[0]]);
    // Only the leader wrote: the move, every verification record, the
    // rollback and the hold.
    let lease = w.lease_name();
    let (all, verified) = writes(leader, &lease, "modelsync.verified.Staging");
    assert!(
        verified >= 2 && all > verified,
        "the leader's writes: {all}, {verified}"
    );
    let (_, held) = writes(leader, &lease, "modelsync.hold.Staging");
    assert_eq!(held, 1, "the leader placed the hold once");
    assert_eq!(
        writes(standby, &lease, ""),
        (0, 0),
        "the standby wrote: {:#?}",
        standby.proxy.seen()
    );
    let m = model(&srv.registry(), &name).await;
    let staged: Vec<u64> = m.holders(Stage::Staging).map(|v| v.version).collect();
    assert_eq!(staged, vec![v1], "rolled back");
    assert_eq!(holds(&m).remove("Staging").map(|h| h.version), Some(v1));

    // The leader notifies what happened; the standby nothing of it.
    let rolled = leader
        .hook
        .wait_for("rolled-back", Duration::from_secs(60), |r| {
            r.json()["type"] == "io.modelsync.reconcile.rolled-back"
        })
        .json();
    let action = rolled["data"]["actions"][0]["action"]
        .as_str()
        .unwrap_or("");
    assert!(
        action.contains(&format!("version {v2} failed its verification"))
            && action.contains(&rolled_back_then(v1)),
        "{rolled:#}"
    );
    let hold = leader
        .hook
        .wait_for("the rollback's held", Duration::from_secs(60), |r| {
            let e = r.json();
            e["type"] == "io.modelsync.reconcile.held" && e["data"]["actions"][0]["kind"] == "hold"
        })
        .json();
    assert_eq!(hold["data"]["models"][0]["name"], name.as_str(), "{hold:#}");
    let seen = types(&leader.hook);
    let at = |t: &str| seen.iter().position(|s| s.ends_with(t));
    assert!(
        at(".verification.failed") < at(".rolled-back"),
        "failed, then rolled back: {seen:?}"
    );
    // The standby notified nothing of it.
    let theirs = types(&standby.hook);
    assert!(
        !(theirs.iter()).any(|t| t.contains("verification") || t.ends_with("rolled-back")),
        "{theirs:?}"
    );
    assert_eq!(
        record(srv, &name, v2).await.map(|r| r.state),
        Some(State::Failed)
    );
}
