//! Issue 17, point 4: the fence cannot be poisoned by history. A lone
//! leader (PostgreSQL, or the harness's 3-member etcd cluster) is given
//! models stamped with a far higher `modelsync.epoch` from another
//! namespace — a plain number from a release before namespaces (the etcd
//! era of the report: one such tag made a PostgreSQL replica flap every
//! few seconds and never heal), another engine's, another incarnation's —
//! and writes them without stepping down, stamping its own token. A newer
//! epoch of its own namespace still makes it step down, and the logs and
//! `/status` name that cause rather than a missed renewal.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use modelsync::registry::Registry;
use modelsync::state::tags::EPOCH;

use super::{Engine, LOADED, TTL, manifest, metric, start_replica, wait_applied};
use crate::support::cli::Workdir;
use crate::support::daemon::Daemon;
use crate::support::mlflow::{server, unique};
use crate::support::proxy::Proxy;

/// Far above any epoch the test engines reach.
const HIGH: u64 = 4_821_300_000;

/// A `modelsync.epoch` value as documented: `<epoch>@<namespace>` (the
/// namespace `<engine>/<incarnation>/<election>`).
fn parse(tag: &str) -> Option<(u64, &str)> {
    let (epoch, namespace) = tag.split_once('@')?;
    (namespace.split('/').count() >= 3).then_some(())?;
    Some((epoch.parse().ok()?, namespace))
}

/// Creates `model` on MLflow carrying `epoch` as its `modelsync.epoch`.
async fn stamped(model: &str, epoch: &str) {
    let tags = BTreeMap::from([(EPOCH.to_string(), epoch.to_string())]);
    server()
        .registry()
        .create_model(model, Some("stamped before"), &tags)
        .await
        .expect("create the stamped model");
}

async fn epoch_tag(model: &str) -> String {
    let m = server()
        .registry()
        .get_model(model)
        .await
        .expect("read")
        .expect("exists");
    m.tags.get(EPOCH).cloned().unwrap_or_default()
}

/// One replica leading alone over `models` (each its own manifest).
async fn lone_leader(engine: Engine, models: &[&str]) -> (Workdir, Proxy, Daemon) {
    let w = Workdir::new();
    for m in models {
        w.write(&format!("m/{m}.yaml"), &manifest(m, false, "v1"));
    }
    let proxy = Proxy::start(&server().url).await;
    let mut d = start_replica(&w, &proxy, &engine.uri(), &unique("history"));
    d.wait_status("leading", LOADED, |s| s["role"] == "leader");
    (w, proxy, d)
}

async fn foreign_history_is_restamped_without_a_step_down(engine: Engine) {
    let (legacy, other) = (unique("hist-legacy"), unique("hist-other"));
    stamped(&legacy, &HIGH.to_string()).await;
    let foreign = match engine {
        // A PostgreSQL era, or an etcd that was restored (another cluster).
        Engine::Etcd => format!("{HIGH}@postgresql/00c0ffee00c0ffee/modelsync"),
        Engine::Postgres => format!("{HIGH}@etcd/00000000000000ff/modelsync"),
    };
    stamped(&other, &foreign).await;
    let (_w, _proxy, mut d) = lone_leader(engine, &[&legacy, &other]).await;
    wait_applied(&legacy, false, "v1", LOADED).await;
    wait_applied(&other, false, "v1", LOADED).await;
    let epoch = d.status()["epoch"].as_u64().expect("an epoch");
    for m in [&legacy, &other] {
        let tag = epoch_tag(m).await;
        let (stamped, namespace) = parse(&tag).unwrap_or_else(|| panic!("{m}: {tag:?}"));
        assert_eq!(
            stamped, epoch,
            "{m}: stamped with the leader's epoch: {tag}"
        );
        let engine = match engine {
            Engine::Etcd => "etcd/",
            Engine::Postgres => "postgresql/",
        };
        assert!(namespace.starts_with(engine), "{m}: {tag}");
    }
    // A few renewals later: still the one term, never stepped down.
    let start = Instant::now();
    while start.elapsed() < TTL {
        assert_eq!(d.status()["role"], "leader", "{:?}", d.logs());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        metric(&d, "modelsync_leader_transitions_total"),
        1.0,
        "{:?}",
        d.logs()
    );
    assert!(
        !d.logs().iter().any(|l| l.contains("stepped down")),
        "{:?}",
        d.logs()
    );
    assert_eq!(d.terminate(LOADED), 0);
}

async fn a_newer_epoch_of_the_own_namespace_steps_down_with_its_cause(engine: Engine) {
    let model = unique("hist-newer");
    let (w, _proxy, mut d) = lone_leader(engine, &[&model]).await;
    wait_applied(&model, false, "v1", LOADED).await;
    let mine = epoch_tag(&model).await;
    let (epoch, namespace) = parse(&mine).unwrap_or_else(|| panic!("the leader's stamp: {mine:?}"));
    let newer = format!("{}@{namespace}", epoch + 1000);
    server()
        .registry()
        .set_model_tag(&model, EPOCH, &newer)
        .await
        .expect("stamp a newer epoch");
    w.write(&format!("m/{model}.yaml"), &manifest(&model, false, "v2"));
    let cause = format!("carries epoch {}", epoch + 1000);
    let stepped = d.wait_log("stepped down", LOADED);
    assert!(
        stepped.contains(&cause) && stepped.contains(&model),
        "the step-down names the model and its epoch: {stepped}\n{:?}",
        d.logs()
    );
    assert!(
        !stepped.contains("in time"),
        "not a missed renewal: {stepped}"
    );
    let s = d.wait_status("the cause in /status", LOADED, |s| {
        s["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&cause))
    });
    assert!(
        s["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no longer the elected leader")),
        "{s:#}"
    );
    let m = server()
        .registry()
        .get_model(&model)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(m.description, "v1", "the fenced leader wrote the model");
    assert_eq!(epoch_tag(&model).await, newer);
    assert_eq!(d.terminate(LOADED), 0);
}

mod etcd {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn foreign_history_is_restamped_without_a_step_down() {
        super::foreign_history_is_restamped_without_a_step_down(Engine::Etcd).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_newer_epoch_of_the_own_namespace_steps_down_with_its_cause() {
        super::a_newer_epoch_of_the_own_namespace_steps_down_with_its_cause(Engine::Etcd).await;
    }
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn foreign_history_is_restamped_without_a_step_down() {
        super::foreign_history_is_restamped_without_a_step_down(Engine::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_newer_epoch_of_the_own_namespace_steps_down_with_its_cause() {
        super::a_newer_epoch_of_the_own_namespace_steps_down_with_its_cause(Engine::Postgres).await;
    }
}
