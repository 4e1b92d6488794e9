//! Faults between modelsync and MLflow (a scripted proxy): retries converge,
//! a create whose answer was lost is never registered twice (also when it
//! lands after it was sent again, `held_create.rs`), and retries stay
//! bounded.

mod held_create;
mod large;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use modelsync::registry::mlflow::{MlflowConfig, MlflowRegistry, RetryPolicy};
use modelsync::registry::{NewVersion, Registry, RegistryError, Scope, SnapshotRequest};
use modelsync::state::SourceResolution;

use crate::support::mlflow::{server, unique};
use crate::support::proxy::{Fault, Proxy};

/// Fast retries, so the tests stay quick.
fn fast() -> MlflowConfig {
    MlflowConfig {
        retry: RetryPolicy {
            max_retries: 6,
            budget: Duration::from_secs(30),
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            request_timeout: Duration::from_secs(10),
            // A create re-sent after a reset (never forwarded) waits this
            // long for a late twin that never comes.
            create_settle: Duration::from_secs(2),
            ..RetryPolicy::default()
        },
        ..MlflowConfig::default()
    }
}

fn via(proxy: &Proxy, config: MlflowConfig) -> MlflowRegistry {
    MlflowRegistry::new(&proxy.url, config).expect("proxy URL")
}

fn source(s: &str) -> NewVersion {
    NewVersion {
        declared_source: s.to_owned(),
        source: s.to_owned(),
        run_id: None,
        model_id: None,
        description: None,
        tags: BTreeMap::new(),
    }
}

fn snapshot_of(name: &str) -> SnapshotRequest {
    SnapshotRequest {
        models: Scope::Named([name.to_owned()].into()),
        experiments: Default::default(),
    }
}

#[tokio::test]
async fn creates_converge_through_faults_without_duplicates() {
    let srv = server();
    let proxy = Proxy::start(&srv.url).await;
    let reg = via(&proxy, fast());
    let name = unique("faults");
    // The create reaches MLflow, the answer is lost (reset), twice.
    proxy.fail(
        "POST",
        "registered-models/create",
        Fault::ForwardThenReset,
        1,
    );
    proxy.fail(
        "GET",
        "registered-models/get",
        Fault::Delay(Duration::from_millis(300)),
        1,
    );
    // Version creates: applied but answered 502 (twice), then reset before
    // reaching MLflow (really absent: must be re-sent).
    proxy.fail(
        "POST",
        "model-versions/create",
        Fault::ForwardThenStatus(502),
        2,
    );
    proxy.fail("POST", "model-versions/create", Fault::Reset, 1);
    proxy.fail("GET", "model-versions/search", Fault::Status(503), 2);
    proxy.fail(
        "POST",
        "model-versions/transition-stage",
        Fault::Status(503),
        1,
    );
    proxy.fail(
        "POST",
        "registered-models/alias",
        Fault::ForwardThenStatus(500),
        1,
    );

    reg.create_model(&name, None, &BTreeMap::new())
        .await
        .expect("create model converges");
    let sources = ["s3://b/faults/1", "s3://b/faults/2", "s3://b/faults/3"];
    let mut versions = Vec::new();
    for s in sources {
        versions.push(
            reg.create_version(&name, &source(s))
                .await
                .expect("create version converges")
                .version,
        );
    }
    assert_eq!(versions, vec![1, 2, 3]);
    reg.transition_stage(&name, 3, modelsync::state::Stage::Staging)
        .await
        .expect("transition retried");
    reg.set_alias(&name, "champion", 3)
        .await
        .expect("alias retried");
    for s in sources {
        reg.create_version(&name, &source(s))
            .await
            .expect("idempotent");
    }

    // Checked directly on the server, not through the proxy.
    let direct = srv.registry();
    let m = direct
        .get_model(&name)
        .await
        .expect("read")
        .expect("model exists");
    let by_source: BTreeMap<&str, u64> = m
        .versions
        .values()
        .map(|v| (v.tags["modelsync.source"].as_str(), v.version))
        .collect();
    assert_eq!(
        m.versions.len(),
        3,
        "exactly one version per source: {by_source:?}"
    );
    assert_eq!(by_source.len(), 3);
    assert_eq!(m.versions[&3].stage, modelsync::state::Stage::Staging);
    assert_eq!(m.aliases.get("champion"), Some(&3));

    assert_eq!(
        proxy.count("POST", "registered-models/create"),
        1,
        "the lost model create was not re-sent"
    );
    assert_eq!(
        proxy.count("POST", "model-versions/create"),
        4,
        "2 lost answers + 1 reset + 1 re-send"
    );
    let stats = reg.stats();
    assert!(stats.retries >= 5 && stats.errors >= 7, "{stats:?}");
}

#[tokio::test]
async fn retries_are_bounded_and_end_unreachable() {
    let srv = server();
    let proxy = Proxy::start(&srv.url).await;
    let mut config = fast();
    config.retry.max_retries = 2;
    let reg = via(&proxy, config);
    proxy.fail("GET", "registered-models/search", Fault::Status(503), 100);
    let start = Instant::now();
    let err = reg
        .snapshot(&snapshot_of(&unique("down")))
        .await
        .expect_err("always 503");
    assert!(matches!(err, RegistryError::Unreachable(_)), "{err:?}");
    assert!(
        err.to_string().contains("gave up after 3 attempts"),
        "{err}"
    );
    assert_eq!(proxy.count("GET", "registered-models/search"), 3);
    // Gave up on its attempts, not on its 30 s budget.
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn retry_after_and_timeouts_are_retried() {
    let srv = server();
    let proxy = Proxy::start(&srv.url).await;
    let mut config = fast();
    // Long enough for any answer on a loaded machine (a load of 6 on two
    // cores made 5 s too short once); the held one (60 s) still times out.
    config.retry.request_timeout = Duration::from_secs(15);
    let reg = via(&proxy, config);
    proxy.fail(
        "GET",
        "registered-models/search",
        Fault::StatusRetryAfter(429, 1),
        1,
    );
    proxy.fail(
        "GET",
        "registered-models/search",
        Fault::Delay(Duration::from_secs(60)),
        1,
    );
    let start = Instant::now();
    reg.snapshot(&snapshot_of(&unique("slow")))
        .await
        .expect("converges");
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    // The bulk search, tried three times (the snapshot's search for the
    // prompts' names, asked because the model is absent, is another one).
    assert_eq!(
        proxy.count("GET", "registered-models/search?max_results"),
        3,
        "{:#?}",
        proxy.seen()
    );
    assert_eq!(reg.stats().retries, 2);
}

#[tokio::test]
async fn server_without_logged_models_checks_runs_sources_against_artifacts() {
    let srv = server();
    let proxy = Proxy::start(&srv.url).await;
    let reg = via(&proxy, fast());
    // An MLflow 2.x server: the route does not exist (plain 404), and the
    // run is found.
    let exp = unique("v2-exp");
    let out = srv.run_python(&format!(
        "import mlflow\nmlflow.set_experiment('{exp}')\nwith mlflow.start_run() as r:\n    pass\nprint('RUN_ID=' + r.info.run_id)\n"
    ));
    let run = out
        .lines()
        .find_map(|l| l.strip_prefix("RUN_ID="))
        .expect("run id")
        .trim()
        .to_owned();
    proxy.fail("POST", "logged-models/search", Fault::Status(404), 100);
    let sources = vec![format!("runs:/{run}/model"), format!("runs:/{run}/other")];
    // The run exists and holds no model: both are answered "not found"
    // from its artifacts, never resolved to a logged model.
    let not_found = |path: &str| {
        SourceResolution::NotFound(format!("run {run} logged no model under path {path:?}"))
    };
    for _ in 0..2 {
        let answers = reg
            .resolve_sources(&sources)
            .await
            .expect("no error on MLflow 2");
        assert_eq!(answers[&sources[0]], not_found("model"), "{answers:?}");
        assert_eq!(answers[&sources[1]], not_found("other"), "{answers:?}");
    }
    assert_eq!(
        proxy.count("POST", "logged-models/search"),
        1,
        "capability detected once"
    );
}

#[tokio::test]
async fn paging_follows_tokens_and_falls_back_to_smaller_pages() {
    let srv = server();
    // Digits sort before the other tests' names, so rows created by tests
    // running meanwhile land after ours and cannot shift our offsets.
    let prefix = unique("0page");
    let names: Vec<String> = (0..5).map(|i| format!("{prefix}-{i}")).collect();
    let direct = srv.registry();
    for n in &names {
        direct
            .create_model(n, None, &BTreeMap::new())
            .await
            .expect("create model");
        for v in 1..=3 {
            direct
                .create_version(n, &source(&format!("s3://b/{n}/{v}")))
                .await
                .expect("register");
        }
    }
    let proxy = Proxy::start(&srv.url).await;
    let refused = r#"{"error_code": "INVALID_PARAMETER_VALUE", "message": "Invalid value \"200000\" for parameter 'max_results' supplied"}"#;
    proxy.fail(
        "GET",
        "model-versions/search",
        Fault::Answer(400, refused.into()),
        1,
    );
    proxy.fail(
        "GET",
        "max_results=10000",
        Fault::Rewrite("max_results=10000".into(), "max_results=2".into()),
        1000,
    );
    proxy.fail(
        "GET",
        "registered-models/search",
        Fault::Rewrite("max_results=1000".into(), "max_results=50".into()),
        1000,
    );
    let reg = via(&proxy, fast());

    let m = reg
        .get_model(&names[0])
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        m.versions.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let live = reg
        .snapshot(&SnapshotRequest {
            models: Scope::Named(names.iter().cloned().collect()),
            experiments: Default::default(),
        })
        .await
        .expect("snapshot");
    assert_eq!(live.models.len(), 5);
    for m in live.models.values() {
        assert_eq!(
            m.versions.keys().copied().collect::<Vec<_>>(),
            vec![1, 2, 3],
            "{}",
            m.name
        );
    }
    let asked = |q: &str| {
        proxy
            .seen()
            .iter()
            .filter(|s| s.path.contains("model-versions/search") && s.path.contains(q))
            .count()
    };
    assert_eq!(asked("max_results=20000&"), 1, "the refusal is remembered");
    assert_eq!(
        asked("max_results=10000"),
        6 * 2,
        "2 pages of 2 for each of 6 reads of 3 versions"
    );
    assert!(proxy.count("GET", "registered-models/search") >= 1);
}

#[tokio::test]
async fn plain_text_auth_and_host_errors_say_what_to_fix() {
    let srv = server();
    let proxy = Proxy::start(&srv.url).await;
    let reg = via(&proxy, fast());
    let name = unique("auth");
    proxy.fail("GET", "registered-models/search", Fault::Status(401), 1);
    let err = reg.snapshot(&snapshot_of(&name)).await.expect_err("401");
    assert!(matches!(err, RegistryError::Unauthenticated(_)), "{err:?}");
    assert!(
        err.to_string().contains("MLFLOW_TRACKING_USERNAME"),
        "{err}"
    );

    let host = "Invalid Host header - possible DNS rebinding attack detected";
    proxy.fail(
        "GET",
        "registered-models/search",
        Fault::Answer(403, host.into()),
        1,
    );
    let err = reg.snapshot(&snapshot_of(&name)).await.expect_err("403");
    assert!(err.to_string().contains("--allowed-hosts"), "{err}");

    reg.create_model(&name, None, &BTreeMap::new())
        .await
        .expect("create");
    let denied = r#"{"error_code": "PERMISSION_DENIED", "message": "Permission denied"}"#;
    proxy.fail(
        "DELETE",
        "registered-models/alias",
        Fault::Answer(403, denied.into()),
        1,
    );
    let err = reg.delete_alias(&name, "champion").await.expect_err("403");
    let RegistryError::PermissionDenied { operation, message } = &err else {
        panic!("{err:?}")
    };
    assert!(
        operation.contains("delete an alias") && message.contains("MANAGE"),
        "{err}"
    );
    assert_eq!(reg.stats().retries, 0, "auth errors are not retried");
}

/// The executor's create without a search first (`create_version_unseen`)
/// still never registers twice when an answer is lost: it re-reads by
/// declared source before any re-send, and only on that fault path.
#[tokio::test]
async fn an_unseen_create_whose_answer_is_lost_is_re_read_not_re_sent() {
    let srv = server();
    let proxy = Proxy::start(&srv.url).await;
    let reg = via(&proxy, fast());
    let name = unique("unseen");
    reg.create_model(&name, None, &BTreeMap::new())
        .await
        .expect("create model");
    proxy.fail("POST", "model-versions/create", Fault::ForwardThenReset, 1);
    let v = reg
        .create_version_unseen(&name, &source("s3://b/unseen/1"))
        .await
        .expect("converges");
    assert_eq!(v.version, 1);
    // No fault: one create, no search at all.
    let v2 = reg
        .create_version_unseen(&name, &source("s3://b/unseen/2"))
        .await
        .expect("create");
    assert_eq!(v2.version, 2);
    assert_eq!(
        proxy.count("POST", "model-versions/create"),
        2,
        "not re-sent"
    );
    assert_eq!(
        proxy.count("GET", "model-versions/search"),
        1,
        "one re-read, on the fault path only"
    );
    let m = srv
        .registry()
        .get_model(&name)
        .await
        .expect("read")
        .expect("model");
    assert_eq!(m.versions.len(), 2, "{:?}", m.versions.keys());
    // The backstop answers the versions as they are.
    let kept = reg
        .keep_first_registered(
            &name,
            &BTreeMap::from([
                ("s3://b/unseen/1".to_string(), 1),
                ("s3://b/unseen/2".to_string(), 2),
            ]),
        )
        .await
        .expect("backstop");
    assert_eq!(kept["s3://b/unseen/1"], 1);
    assert_eq!(kept["s3://b/unseen/2"], 2);
    // Two appliers racing past the lease both register a source: the one
    // that came second keeps the first's version and deletes its own.
    let first = reg
        .create_version_unseen(&name, &source("s3://b/unseen/dup"))
        .await
        .expect("first applier");
    let second = reg
        .create_version_unseen(&name, &source("s3://b/unseen/dup"))
        .await
        .expect("second applier");
    let kept = reg
        .keep_first_registered(
            &name,
            &BTreeMap::from([("s3://b/unseen/dup".to_string(), second.version)]),
        )
        .await
        .expect("backstop");
    assert_eq!(kept["s3://b/unseen/dup"], first.version);
    let m = srv
        .registry()
        .get_model(&name)
        .await
        .expect("read")
        .expect("model");
    assert!(m.versions.contains_key(&first.version));
    assert!(
        !m.versions.contains_key(&second.version),
        "duplicate removed"
    );
}
