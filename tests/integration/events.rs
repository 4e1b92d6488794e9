//! The event-driven daemon (issue 23 point 2), every request it sends
//! counted by the harness's recording proxy in front of the real MLflow
//! 3.17.2 server: a delivery of MLflow's own webhook naming model A
//! reconciles A only (a targeted pass: no bulk page, no request naming
//! B), and so does a pushed commit that changes A only; `/status` keeps
//! each model's last-reconciled time (B's stays that of the full pass).
//! Request counts, not timings: the deadlines only bound a loaded machine.

use std::time::Duration;

use crate::support::cli::Workdir;
use crate::support::daemon::Daemon;
use crate::support::git::GitRepo;
use crate::support::mlflow::{free_port, server, unique};
use crate::support::proxy::{Proxy, Seen};
use crate::support::webhooks::{
    SECRET, champion_becomes, daemon, delete_webhooks_named, move_until_healed,
};
use crate::targeted::model;

/// A deadline on a loaded CI machine, not a claim about speed.
const LOADED: Duration = Duration::from_secs(120);

/// `/status`'s `last_reconciled` of `name`.
fn reconciled_at(status: &serde_json::Value, name: &str) -> String {
    let models = status["models"].as_array().expect("models");
    let m = models
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in /status: {status:#}"));
    m["last_reconciled"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} has no last_reconciled: {status:#}"))
        .to_string()
}

/// What the proxy saw from `from` on, as `METHOD path body` lines.
fn since(proxy: &Proxy, from: usize) -> Vec<Seen> {
    proxy.seen().into_iter().skip(from).collect()
}

/// Asserts that `seen` holds no bulk read and no request naming `other`,
/// and that some request read `name` by name (the applier's lease, named
/// `lease`, aside).
fn only_about(seen: &[Seen], name: &str, other: &str, lease: &str) {
    let lines: Vec<String> = seen
        .iter()
        .map(|s| format!("{} {} {}", s.method, s.path, s.body))
        .filter(|l| !l.contains(lease))
        .collect();
    let naming_other: Vec<&String> = lines.iter().filter(|l| l.contains(other)).collect();
    assert!(
        naming_other.is_empty(),
        "requests about {other}: {naming_other:#?}"
    );
    let bulk: Vec<&String> = lines
        .iter()
        .filter(|l| {
            l.contains("registered-models/search")
                || (l.contains("model-versions/search") && !l.contains(name))
        })
        .collect();
    assert!(bulk.is_empty(), "bulk reads: {bulk:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("registered-models/get") && l.contains(name)),
        "{name} was not read by name: {lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_for_one_model_reconciles_that_model_only() {
    let srv = server();
    let p = unique("events");
    let (a, b) = (format!("{p}-a"), format!("{p}-b"));
    let w = Workdir::new();
    w.write("m/a.yaml", &model(&a, &[("champion", "a")]));
    w.write("m/b.yaml", &model(&b, &[("champion", "a")]));
    // Applied before the daemon registers its webhook: its start-up pass
    // writes nothing, so MLflow has nothing to deliver yet.
    let r = w.run(&["--registry", &srv.url, "apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let proxy = Proxy::start(&srv.url).await;
    let port = free_port().expect("port");
    let hook = unique("modelsync-events");
    let mut d = daemon(&w, &proxy.url, port, &hook);
    d.wait_log("reconcile success", LOADED);
    let full = d.wait_status("the start-up pass", LOADED, |s| {
        s["reconciles"].as_u64() >= Some(1)
    });
    let (a_full, b_full) = (reconciled_at(&full, &a), reconciled_at(&full, &b));
    let from = proxy.seen().len();

    // Moved by hand (not through the proxy): MLflow delivers
    // model_version_alias.created for A to the daemon, which heals A.
    move_until_healed(&d, &a, 2, 1, LOADED).await;
    let s = d.wait_status("A reconciled by the event", LOADED, |s| {
        reconciled_at(s, &a) > a_full
    });
    assert_eq!(reconciled_at(&s, &b), b_full, "B was not reconciled again");
    d.wait_log("mlflow-webhook", LOADED);
    only_about(&since(&proxy, from), &a, &b, &w.lease_name());
    assert!(
        d.logs().iter().all(|l| !l.contains(SECRET)),
        "the secret was logged"
    );
    d.terminate(LOADED);
    delete_webhooks_named(srv, &hook);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_changing_one_model_reconciles_that_model_only() {
    let srv = server();
    let p = unique("push");
    let (a, b) = (format!("{p}-a"), format!("{p}-b"));
    let w = Workdir::new();
    let repo = GitRepo::new(w.path());
    repo.push("m/a.yaml", &model(&a, &[("champion", "a")]));
    let c1 = repo.push("m/b.yaml", &model(&b, &[("champion", "a")]));
    let proxy = Proxy::start(&srv.url).await;
    let cache = w.path().join("cache");
    let mut cmd = w.command(&[
        "--registry",
        &proxy.url,
        "watch",
        "--git",
        &repo.url,
        "--path",
        "m",
        "--interval",
        "200ms",
        "--resync",
        "0",
        "--cache-dir",
        cache.to_str().expect("utf-8"),
    ]);
    cmd.env_remove("MODELSYNC_GIT_TOKEN");
    let mut d = Daemon::start(cmd);
    let full = d.wait_status("c1 applied", LOADED, |s| {
        s["last_applied_revision"] == c1.as_str()
    });
    let (a_full, b_full) = (reconciled_at(&full, &a), reconciled_at(&full, &b));
    let from = proxy.seen().len();

    // A push that moves A's champion, and only A's.
    let c2 = repo.push("m/a.yaml", &model(&a, &[("champion", "b")]));
    let s = d.wait_status("c2 applied", LOADED, |s| {
        s["last_applied_revision"] == c2.as_str()
    });
    assert!(champion_becomes(&a, 2, LOADED).await, "{s:#}");
    assert!(reconciled_at(&s, &a) > a_full, "{s:#}");
    assert_eq!(reconciled_at(&s, &b), b_full, "B was not reconciled again");
    only_about(&since(&proxy, from), &a, &b, &w.lease_name());
    d.terminate(LOADED);
}
