//! The daemon verifies beside its passes, and a daemon killed (SIGKILL)
//! while verifying resumes the verification after a restart, from the
//! record in the registry; `/status` shows the holder's verification,
//! `/metrics` counts the verification that ended and a CloudEvent
//! `verification.passed` is delivered.

use std::time::Duration;

use modelsync::state::verification::State;

use super::{log_online_auc, manifest, predictions_check, record, wait_record};
use crate::copy::train;
use crate::support::cli::Workdir;
use crate::support::daemon::Daemon;
use crate::support::mlflow::{MlflowServer, server, unique};
use crate::support::receiver::Receiver;

fn watch(wd: &Workdir, srv: &MlflowServer, notify: &str) -> Daemon {
    let mut cmd = wd.command(&["watch", "m", "--notify", notify]);
    cmd.env("MODELSYNC_REGISTRY", &srv.url)
        .env("MODELSYNC_HTTP_BACKOFF", "50ms")
        .envs(srv.env.iter().map(|(k, v)| (k, v)));
    Daemon::start(cmd)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_killed_while_verifying_resumes_the_verification_after_a_restart() {
    let srv = server();
    let name = unique("resumed");
    let v = train(srv, &name, 0.9, 1.0);
    let checks = [
        predictions_check(),
        "{metric: online_auc, atLeast: 0.8}".to_string(),
    ];
    let wd = Workdir::new();
    wd.write(
        "m/model.yaml",
        &manifest(&name, v, &checks, "every: 1s\ntimeout: 20m"),
    );
    let hook = Receiver::start(0);
    let first = watch(&wd, srv, &hook.url);
    // The metric is not logged yet: the daemon keeps verifying.
    let seen = wait_record(srv, &name, v, "the daemon verifies", |r| r.rounds >= 2).await;
    assert_eq!(seen.state, State::Verifying, "{seen:?}");
    drop(first); // SIGKILL
    let at_kill = record(srv, &name, v).await.expect("recorded");
    assert_eq!(at_kill.state, State::Verifying, "{at_kill:?}");

    let mut second = watch(&wd, srv, &hook.url);
    let resumed = wait_record(srv, &name, v, "the restarted daemon resumes", |r| {
        r.rounds > at_kill.rounds + 1
    })
    .await;
    assert_eq!(
        resumed.since, seen.since,
        "resumed from the registry, not started again: {resumed:?}"
    );
    // `/status` shows what the pass read: the holder is verifying.
    second.wait_status("the holder's verification", Duration::from_secs(120), |s| {
        s["models"][0]["stages"][0]["verification"]
            .as_str()
            .is_some_and(|v| v.starts_with("verifying since"))
    });
    log_online_auc(srv, &name, v, 0.9);
    let done = wait_record(srv, &name, v, "verified", |r| r.state.is_final()).await;
    assert_eq!(done.state, State::Verified, "{done:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = second.get("/metrics").body;
        if metrics.contains("modelsync_verifications_total{result=\"verified\"} 1") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let event = hook
        .wait_for("verification.passed", Duration::from_secs(60), |r| {
            r.body.contains("verification.passed")
        })
        .json();
    assert_eq!(
        event["type"], "io.modelsync.reconcile.verification.passed",
        "{event}"
    );
    assert_eq!(event["data"]["models"][0]["name"], name.as_str(), "{event}");
    assert_eq!(second.terminate(Duration::from_secs(60)), 0);
}
