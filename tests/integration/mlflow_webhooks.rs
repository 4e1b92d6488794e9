//! MLflow's own webhooks, end to end: the daemon registers its webhook on
//! the real server (`--register-mlflow-webhook`, idempotent by name), the
//! server delivers a signed `model_version_alias.created` to the daemon on
//! loopback when an alias is moved by hand, and the daemon heals it within
//! seconds with resync off. Forged, stale and replayed deliveries are
//! refused with 401.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use modelsync::registry::Registry;
use modelsync::watch::mlflow_hook::sign;

use crate::support::cli::Workdir;
use crate::support::daemon::Daemon;
use crate::support::mlflow::{free_port, server, unique};
use crate::support::webhooks::{
    SECRET, daemon, delete_webhooks_named, move_until_healed, webhooks_named,
};

/// A deadline on a loaded CI machine, not a claim about speed.
const LOADED: Duration = Duration::from_secs(120);

fn manifest(name: &str) -> String {
    format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  versions:\n    a: {{source: \"s3://bucket/{name}/a\"}}\n    b: {{source: \"s3://bucket/{name}/b\"}}\n  aliases:\n    champion: a\n    challenger: b\n"
    )
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_moved_alias_is_healed_after_mlflows_own_webhook() {
    let srv = server();
    let name = unique("mlhook");
    let hook = unique("modelsync-hook");
    let w = Workdir::new();
    w.write("m/model.yaml", &manifest(&name));
    let port = free_port().expect("port");
    let mut d = daemon(&w, &srv.url, port, &hook);
    d.wait_log("MLflow webhook created", LOADED);
    d.wait_log("reconcile success", LOADED);
    let reg = srv.registry();
    let read = || async { reg.get_model(&name).await.expect("read").expect("model") };
    let m = read().await;
    assert_eq!(m.aliases.get("champion"), Some(&1));

    // Moved by hand: MLflow fires model_version_alias.created at the daemon.
    move_until_healed(&d, &name, 2, 1, LOADED).await;
    d.wait_log("MLflow webhook received", LOADED);
    d.wait_log("mlflow-webhook", LOADED);
    assert!(
        d.logs().iter().all(|l| !l.contains(SECRET)),
        "the secret was logged"
    );

    // Forged, stale and replayed deliveries.
    let body = br#"{"entity": "model_version_alias", "action": "created", "data": {}}"#;
    let ts = now_secs().to_string();
    let good = sign(SECRET.as_bytes(), "d-ok", &ts, body);
    let forged = sign(b"not the secret", "d-forged", &ts, body);
    let post = |id: &str, ts: &str, sig: &str| {
        d.post(
            "/hooks/mlflow",
            &[
                ("X-MLflow-Delivery-Id", id),
                ("X-MLflow-Timestamp", ts),
                ("X-MLflow-Signature", sig),
                ("Content-Type", "application/json"),
            ],
            body,
        )
    };
    assert_eq!(post("d-forged", &ts, &forged).status, 401);
    let old = (now_secs() - 400).to_string();
    let stale = sign(SECRET.as_bytes(), "d-stale", &old, body);
    assert_eq!(post("d-stale", &old, &stale).status, 401);
    assert_eq!(post("d-ok", &ts, &good).status, 202);
    let replay = post("d-ok", &ts, &good);
    assert_eq!(replay.status, 401, "{replay:?}");
    assert!(replay.body.contains("already delivered"), "{replay:?}");
    let unsigned = d.post("/hooks/mlflow", &[], body);
    assert_eq!(unsigned.status, 401);

    // Registering again finds the webhook by name and updates it.
    d.terminate(Duration::from_secs(120));
    let mut d = daemon(&w, &srv.url, port, &hook);
    d.wait_log("MLflow webhook updated", LOADED);
    let ids = webhooks_named(srv, &hook);
    assert_eq!(ids.len(), 1, "{ids:?}");
    d.terminate(Duration::from_secs(120));
    delete_webhooks_named(srv, &hook);
}

/// MLflow 2.x has no webhooks: registering one is a clear error at start-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_a_webhook_on_mlflow_2_is_a_clear_error() {
    let srv = crate::support::servers::mlflow2();
    let w = Workdir::new();
    w.write("m/model.yaml", &manifest(&unique("mlhook-v2")));
    let port = free_port().expect("port");
    let mut cmd = w.command(&[
        "--registry",
        &srv.url,
        "watch",
        "m",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--mlflow-webhook-secret-env",
        "MS_HOOK_SECRET",
        "--register-mlflow-webhook",
        &format!("http://127.0.0.1:{port}/hooks/mlflow"),
    ]);
    cmd.env("MS_HOOK_SECRET", SECRET);
    let r = crate::support::cli::Run::from_command(&mut cmd);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("has no webhooks API"), "{r:?}");
}

/// A body larger than an endpoint reads is answered 413 and never held:
/// `/hooks/mlflow` reads 64 KiB at most (MLflow's deliveries are a few
/// KiB), `/hooks/git` 1 MiB; a client that sends a large body whole before
/// reading gets the 413 too (written whole here: `Daemon::post`); smaller
/// bodies are judged as before.
#[test]
fn oversized_webhook_bodies_are_refused_with_413() {
    let w = Workdir::new();
    w.write("m/model.yaml", &manifest("hook-size"));
    let mut cmd = w.command(&[
        "watch",
        "m",
        "--resync",
        "0",
        "--mlflow-webhook-secret-env",
        "MS_HOOK_SECRET",
        "--webhook-secret-env",
        "GIT_HOOK_SECRET",
    ]);
    cmd.env("MS_HOOK_SECRET", SECRET)
        .env("GIT_HOOK_SECRET", "git-hook-secret-test");
    let d = Daemon::start(cmd);
    let mlflow_limit = modelsync::watch::mlflow_hook::BODY_LIMIT;
    let git_limit = modelsync::watch::http::GIT_HOOK_LIMIT;
    assert_eq!(d.post_sized("/hooks/mlflow", mlflow_limit + 1), 413);
    assert_eq!(d.post_sized("/hooks/mlflow", 200 * 1024), 413);
    assert_eq!(d.post_sized("/hooks/git", git_limit + 1), 413);
    assert_eq!(d.post_sized("/hooks/git", 3 * 1024 * 1024 / 2), 413);
    let large = vec![b'{'; 10 * 1024 * 1024];
    assert_eq!(d.post("/hooks/mlflow", &[], &large).status, 413);
    assert_eq!(d.post("/hooks/git", &[], &large).status, 413);
    // Within the limits: unsigned, so refused as before.
    assert_eq!(d.post_sized("/hooks/mlflow", 1024), 401);
    assert_eq!(d.post_sized("/hooks/git", 64 * 1024), 401);
    assert_eq!(d.get("/healthz").status, 200, "still serving");
}
