//! A daemon fed by MLflow's own webhooks: `watch` that registers its MLflow
//! webhook (by name) delivering to its own port, and the server's webhooks
//! looked up and deleted by name (`mlflow_webhooks.rs`, `events.rs`,
//! `prompts.rs`).

use std::time::{Duration, Instant};

use modelsync::registry::Registry;

use super::cli::Workdir;
use super::daemon::Daemon;
use super::mlflow::{MlflowServer, server};

/// The webhook secret the daemon is given (through `MS_HOOK_SECRET`).
pub const SECRET: &str = "whsec-modelsync-test";

/// A daemon watching `m` in `w` against `registry` (the server, or a proxy
/// in front of it), resync off, that registers its MLflow webhook `hook`
/// delivering to it on `port`.
pub fn daemon(w: &Workdir, registry: &str, port: u16, hook: &str) -> Daemon {
    let url = format!("http://127.0.0.1:{port}/hooks/mlflow");
    let mut cmd = w.command(&[
        "--registry",
        registry,
        "watch",
        "m",
        "--resync",
        "0",
        "--mlflow-webhook-secret-env",
        "MS_HOOK_SECRET",
        "--register-mlflow-webhook",
        &url,
        "--mlflow-webhook-name",
        hook,
    ]);
    cmd.env("MS_HOOK_SECRET", SECRET);
    Daemon::start_at(cmd, &format!("127.0.0.1:{port}"))
}

/// Ids of the server's webhooks named `name`.
pub fn webhooks_named(srv: &MlflowServer, name: &str) -> Vec<String> {
    srv.run_python(&format!(
        "from mlflow import MlflowClient\nfor w in MlflowClient().list_webhooks():\n    if w.name == {name:?}: print(w.webhook_id)\n"
    ))
    .lines()
    .map(str::to_owned)
    .collect()
}

/// Deletes the server's webhooks named `name` (a test's clean-up).
pub fn delete_webhooks_named(srv: &MlflowServer, name: &str) {
    for id in webhooks_named(srv, name) {
        srv.run_python(&format!(
            "from mlflow import MlflowClient\nMlflowClient().delete_webhook({id:?})\n"
        ));
    }
    let left = webhooks_named(srv, name);
    assert!(left.is_empty(), "webhooks {name:?} left: {left:?}");
}

/// Whether `name@champion` is `version` within `within` (read from the
/// shared server every 200 ms).
pub async fn champion_becomes(name: &str, version: u64, within: Duration) -> bool {
    let reg = server().registry();
    let start = Instant::now();
    loop {
        let m = reg.get_model(name).await.expect("read").expect("model");
        if m.aliases.get("champion") == Some(&version) {
            return true;
        }
        if start.elapsed() > within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Moves `name@champion` to `moved` by hand (on the server, through no
/// proxy) until the daemon has moved it back to `healed`, failing after
/// `deadline` with the daemon's logs. Each server worker caches the webhook
/// list for a second (`MLFLOW_WEBHOOK_CACHE_TTL`): a move within it of
/// the webhook's registration is delivered to no one, so a move not
/// healed within 10 s is made again.
pub async fn move_until_healed(
    d: &Daemon,
    name: &str,
    moved: u64,
    healed: u64,
    deadline: Duration,
) {
    let reg = server().registry();
    let start = Instant::now();
    loop {
        reg.set_alias(name, "champion", moved)
            .await
            .expect("hand move");
        if champion_becomes(name, healed, Duration::from_secs(10)).await {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "not healed (resync is off):\n{}",
            d.logs().join("\n")
        );
    }
}
