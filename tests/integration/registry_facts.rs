//! What the MLflow 3 server tells modelsync about declared sources, version
//! statuses and experiments, through the binary: a `runs:/` source MLflow
//! cannot register, a version not READY, an experiment that exists only
//! deleted — each an error naming the manifest's line, with zero writes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use modelsync::registry::{NewVersion, Registry};
use modelsync::state::Stage;

use crate::support::cli::{Run, Workdir};
use crate::support::mlflow::{MlflowServer, server, unique};
use crate::support::proxy::{Fault, Proxy};

/// A run id no server has.
const NO_RUN: &str = "0123456789abcdef0123456789abcdef";

/// One model whose handle `cand` (line 7 of `m/model.yaml`) is `source`,
/// in Production.
fn manifest(name: &str, source: &str) -> String {
    format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  versions:\n    cand: {{source: \"{source}\"}}\n  stages:\n    Production: cand\n"
    )
}

fn run(w: &Workdir, srv: &MlflowServer, url: &str, env: &[(&str, &str)], args: &[&str]) -> Run {
    crate::servers::cli(w, srv, url, env, args)
}

/// Requests that write (everything but reads and searches).
pub fn writes(proxy: &Proxy) -> usize {
    proxy
        .seen()
        .iter()
        .filter(|s| s.method != "GET" && !s.path.contains("search"))
        .count()
}

/// `apply m` of `manifest(name, source)` through a counting proxy: exit 1,
/// the handle's line and `why` in the output, no write, no model.
async fn refused(srv: &MlflowServer, source: &str, why: &str) {
    let name = unique("refused");
    let w = Workdir::new();
    w.write("m/model.yaml", &manifest(&name, source));
    let proxy = Proxy::start(&srv.url).await;
    for cmd in ["plan", "apply"] {
        let r = run(&w, srv, &proxy.url, &[], &[cmd, "m"]);
        assert_eq!(r.code, 1, "{cmd}: {r:?}");
        let out = format!("{}{}", r.stdout, r.stderr);
        assert!(
            out.contains("m/model.yaml:7:"),
            "{cmd} names the line: {r:?}"
        );
        assert!(out.contains(why), "{cmd} says {why:?}: {r:?}");
    }
    assert_eq!(writes(&proxy), 0, "{:#?}", proxy.seen());
    let reg = srv.registry();
    assert!(reg.get_model(&name).await.expect("read").is_none());
}

/// Logs one scikit-learn model as `model` in a run, and a run without any
/// model; returns (run with the model, empty run).
fn two_runs(srv: &MlflowServer) -> (String, String) {
    let exp = unique("facts-exp");
    let out = srv.run_python(&format!(
        r#"
import mlflow, mlflow.sklearn, numpy as np
from sklearn.linear_model import LogisticRegression
mlflow.set_experiment("{exp}")
X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
with mlflow.start_run() as run:
    mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model")
with mlflow.start_run() as empty:
    mlflow.log_param("p", 1)
print("RUNS=" + run.info.run_id + "," + empty.info.run_id)
"#
    ));
    let ids = out
        .lines()
        .find_map(|l| l.strip_prefix("RUNS="))
        .expect("the snippet prints the runs");
    let (model, empty) = ids.trim().split_once(',').expect("two ids");
    (model.to_owned(), empty.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistyped_runs_sources_are_refused_before_any_write() {
    let srv = server();
    let (with_model, empty) = two_runs(srv);
    refused(
        srv,
        &format!("runs:/{NO_RUN}/model"),
        &format!("run {NO_RUN} does not exist"),
    )
    .await;
    refused(
        srv,
        &format!("runs:/{empty}/model"),
        &format!("run {empty} logged no model under path \"model\""),
    )
    .await;
    refused(
        srv,
        &format!("runs:/{with_model}/modle"),
        &format!("run {with_model} logged no model under path \"modle\" (it logged: model)"),
    )
    .await;
    // The right path still registers the logged model and promotes it.
    let name = unique("facts-ok");
    let w = Workdir::new();
    w.write(
        "m/model.yaml",
        &manifest(&name, &format!("runs:/{with_model}/model")),
    );
    let r = run(&w, srv, &srv.url, &[], &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let model = srv
        .registry()
        .get_model(&name)
        .await
        .expect("read")
        .expect("model");
    assert_eq!(model.versions[&1].stage, Stage::Production, "{model:#?}");
    assert!(model.versions[&1].source.starts_with("models:/m-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_version_whose_source_cannot_be_resolved_stays_that_version() {
    // Registered verbatim, as MLflow 2's client did, from a run that is
    // not (or no longer) on this server.
    let srv = server();
    let reg = srv.registry();
    let name = unique("facts-adopted");
    let source = format!("runs:/{NO_RUN}/model");
    reg.create_model(&name, None, &BTreeMap::new())
        .await
        .expect("create model");
    let v = reg
        .create_version(
            &name,
            &NewVersion {
                declared_source: source.clone(),
                source: source.clone(),
                run_id: Some(NO_RUN.into()),
                model_id: None,
                description: None,
                tags: BTreeMap::new(),
            },
        )
        .await
        .expect("register verbatim");
    let w = Workdir::new();
    w.write("m/model.yaml", &manifest(&name, &source));
    let r = run(&w, srv, &srv.url, &[], &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let model = reg.get_model(&name).await.expect("read").expect("model");
    assert_eq!(model.versions.len(), 1, "{model:#?}");
    assert_eq!(model.versions[&v.version].stage, Stage::Production);
}

/// A model with one READY version from `s3://…`, declared in Staging, and
/// a proxy that reports the version as `status` in the next `times`
/// answers of each kind of version read.
async fn reported_as(status: &str, times: usize) -> (String, Workdir, Proxy) {
    let srv = server();
    let reg = srv.registry();
    let name = unique("facts-status");
    let source = format!("s3://bucket/{name}/1");
    reg.create_model(&name, None, &BTreeMap::new())
        .await
        .expect("create model");
    reg.create_version(
        &name,
        &NewVersion {
            declared_source: source.clone(),
            source: source.clone(),
            run_id: None,
            model_id: None,
            description: None,
            tags: BTreeMap::new(),
        },
    )
    .await
    .expect("register");
    let w = Workdir::new();
    w.write(
        "m/model.yaml",
        &manifest(&name, &source).replace("Production", "Staging"),
    );
    let proxy = Proxy::start(&srv.url).await;
    let fault = Fault::RewriteAnswer("\"READY\"".into(), format!("\"{status}\""));
    proxy.fail("GET", "model-versions/search", fault.clone(), times);
    proxy.fail("GET", "model-versions/get", fault, times);
    (name, w, proxy)
}

async fn stage_of(name: &str) -> Stage {
    let model = server().registry().get_model(name).await.expect("read");
    model.expect("model").versions[&1].stage
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_version_is_waited_for_then_promoted() {
    // The first snapshot and two polls see PENDING_REGISTRATION.
    let (name, w, proxy) = reported_as("PENDING_REGISTRATION", 2).await;
    let r = run(&w, server(), &proxy.url, &[], &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(stage_of(&name).await, Stage::Staging);
    assert!(
        proxy.count("GET", "model-versions/get") >= 2,
        "polled: {:#?}",
        proxy.seen()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_pending_past_the_wait_is_an_error_and_never_moved() {
    let (name, w, proxy) = reported_as("PENDING_REGISTRATION", 1000).await;
    let env = [("MODELSYNC_REGISTRATION_WAIT", "1s")];
    let start = Instant::now();
    let r = run(&w, server(), &proxy.url, &env, &["apply", "m"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(start.elapsed() >= Duration::from_secs(1), "waited");
    assert!(
        r.stdout.contains("m/model.yaml:7:") && r.stdout.contains("PENDING_REGISTRATION"),
        "{r:?}"
    );
    assert_eq!(writes(&proxy), 0, "{:#?}", proxy.seen());
    assert_eq!(stage_of(&name).await, Stage::None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_registration_is_an_error_and_never_moved() {
    let (name, w, proxy) = reported_as("FAILED_REGISTRATION", 1000).await;
    let r = run(&w, server(), &proxy.url, &[], &["apply", "m"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("m/model.yaml:7:") && r.stdout.contains("FAILED_REGISTRATION"),
        "{r:?}"
    );
    assert_eq!(writes(&proxy), 0, "{:#?}", proxy.seen());
    assert_eq!(stage_of(&name).await, Stage::None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_experiment_is_a_plan_error_with_zero_writes() {
    let srv = server();
    let name = unique("facts-deleted");
    srv.run_python(&format!(
        "import mlflow\nmlflow.delete_experiment(mlflow.create_experiment('{name}'))\n"
    ));
    let w = Workdir::new();
    w.write(
        "m/exp.yaml",
        &format!(
            "apiVersion: modelsync/v1\nkind: Experiment\nmetadata:\n  name: {name}\nspec:\n  tags: {{team: ml}}\n"
        ),
    );
    let proxy = Proxy::start(&srv.url).await;
    for cmd in ["plan", "apply"] {
        let r = run(&w, srv, &proxy.url, &[], &[cmd, "m"]);
        assert_eq!(r.code, 1, "{cmd}: {r:?}");
        assert!(
            r.stdout.contains("m/exp.yaml:4:")
                && r.stdout.contains("is deleted")
                && r.stdout.contains("mlflow experiments restore")
                && r.stdout.contains("mlflow gc"),
            "{cmd}: {r:?}"
        );
    }
    assert_eq!(writes(&proxy), 0, "{:#?}", proxy.seen());
}
