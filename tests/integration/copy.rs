//! Copies across registries (`from:`), against real MLflow servers: a
//! scikit-learn model trained and aliased on "dev" is copied into "prod"
//! (proxied artifacts, or S3 on the PostgreSQL + S3 configuration), once,
//! with its evidence; MLflow's own client loads it from prod with dev gone.

mod faults;
mod saved;

use std::collections::BTreeMap;

use modelsync::registry::Registry;
use modelsync::registry::mlflow::MlflowRegistry;
use modelsync::state::{LiveModel, tags};

use crate::support::cli::{Run, Workdir};
use crate::support::mlflow::{MlflowServer, unique};
use crate::support::pair;

/// Trains a logistic regression on `srv`, logs `accuracy` and the param
/// `C`, registers it as a version of `model` and points `champion` at it.
/// Returns the version number.
pub fn train(srv: &MlflowServer, model: &str, accuracy: f64, c: f64) -> u64 {
    let exp = format!("{model}-training");
    let out = srv.run_python(&format!(
        r#"
import mlflow, mlflow.sklearn, numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
mlflow.set_experiment("{exp}")
X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
with mlflow.start_run():
    mlflow.log_param("C", {c})
    mlflow.log_metric("accuracy", {accuracy})
    info = mlflow.sklearn.log_model(LogisticRegression(C={c}).fit(X, y), name="model",
                                    registered_model_name="{model}")
v = info.registered_model_version
MlflowClient().set_registered_model_alias("{model}", "champion", v)
print("VERSION=" + str(v))
"#
    ));
    out.lines()
        .find_map(|l| l.strip_prefix("VERSION="))
        .expect("the snippet prints the version")
        .trim()
        .parse()
        .expect("a number")
}

/// A workdir whose manifests copy `champion` of `source` (registry `dev`
/// at `dev_url`) into `target`, behind `champion`, gated on accuracy.
pub fn workdir(dev_url: &str, source: &str, target: &str, at_least: f64) -> Workdir {
    let wd = Workdir::new();
    wd.write(
        "m/modelsync.toml",
        &format!("[registries.dev]\nuri = \"{dev_url}\"\n"),
    );
    wd.write(
        "m/model.yaml",
        &format!(
            r#"apiVersion: modelsync/v1
kind: RegisteredModel
metadata:
  name: {target}
spec:
  versions:
    released:
      from: {{registry: dev, model: {source}, alias: champion}}
  aliases:
    champion: released
  gates:
    champion:
      - metric: accuracy
        atLeast: {at_least}
"#
        ),
    );
    wd
}

/// Runs `args` in `wd` against the registry at `url`, with `env`.
pub fn run(wd: &Workdir, url: &str, env: &[(String, String)], args: &[&str]) -> Run {
    let mut cmd = wd.command(args);
    cmd.env("MODELSYNC_REGISTRY", url)
        .env("MODELSYNC_HTTP_BACKOFF", "50ms")
        .envs(env.iter().map(|(k, v)| (k, v)));
    Run::from_command(&mut cmd)
}

/// The model in `reg`, which must exist.
pub async fn model(reg: &MlflowRegistry, name: &str) -> LiveModel {
    reg.get_model(name)
        .await
        .expect("read")
        .expect("the model exists")
}

/// Loads `models:/NAME@champion` from `srv` with MLflow's client and
/// predicts on [[0], [3]].
pub fn predict(srv: &MlflowServer, name: &str) -> String {
    let out = srv.run_python(&format!(
        r#"
import mlflow, numpy as np
m = mlflow.pyfunc.load_model("models:/{name}@champion")
print("PRED=" + ",".join(str(int(p)) for p in m.predict(np.array([[0.0], [3.0]]))))
"#
    ));
    out.lines()
        .find_map(|l| l.strip_prefix("PRED="))
        .expect("prediction printed")
        .trim()
        .to_string()
}

fn copied_tags(m: &LiveModel, version: u64) -> BTreeMap<String, String> {
    m.versions[&version].tags.clone()
}

/// The whole flow on proxied artifacts: plan shows the copy (source
/// version, run, files, bytes, the gate's observed value), apply copies,
/// a rerun registers nothing, moving dev's alias makes one new copy, and
/// with dev stopped MLflow's client loads and predicts from prod; a plan
/// with dev stopped exits 3 naming it.
#[tokio::test(flavor = "multi_thread")]
async fn proxied_copy_end_to_end() {
    let dev = pair::stoppable("dev-e2e");
    let prod = pair::prod();
    let source = unique("nba-dev");
    let target = unique("nba");
    let v1 = train(&dev, &source, 0.95, 1.0);
    let wd = workdir(&dev.url, &source, &target, 0.9);

    let plan = run(&wd, &prod.url, &[], &["plan", "m"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    let line = format!(
        "copy version {v1} of {source:?} from registry dev ({})",
        dev.url
    );
    assert!(plan.stdout.contains(&line), "{plan:?}");
    assert!(
        plan.stdout.contains("file(s)") && plan.stdout.contains("run "),
        "{plan:?}"
    );
    assert!(
        plan.stdout.contains("0.95"),
        "the gate's observed value: {plan:?}"
    );
    let json = run(&wd, &prod.url, &[], &["plan", "m", "--format", "json"]);
    assert!(json.stdout.contains("\"copy_version\""), "{json:?}");

    let applied = run(&wd, &prod.url, &[], &["apply", "m"]);
    assert_eq!(applied.code, 0, "{applied:?}");
    let reg = prod.registry();
    let m = model(&reg, &target).await;
    assert_eq!(m.versions.len(), 1, "{m:?}");
    let (&n, v) = m.versions.iter().next().expect("one version");
    assert_eq!(m.aliases.get("champion"), Some(&n));
    assert!(
        v.source.starts_with("models:/m-"),
        "registered from prod's own store: {v:?}"
    );
    let t = copied_tags(&m, n);
    assert_eq!(t[tags::COPY_OF], format!("dev/{source}/{v1}"));
    assert!(t[tags::COPY_LINEAGE].contains("sha256:"), "{t:?}");
    // The copy is pinned to the bytes it copied: the digest over every
    // file's sha256 (the one definition), which its lineage carries too.
    let digest = &t[tags::DIGEST];
    assert!(
        t[tags::COPY_LINEAGE].ends_with(&format!("/{digest}")),
        "{t:?}"
    );
    assert!(t[tags::DIGEST_FILES].contains(" MLmodel\n"), "{t:?}");
    let runs = reg
        .get_runs(std::slice::from_ref(&v.run_id))
        .await
        .expect("runs");
    assert_eq!(
        runs[&v.run_id].metrics["accuracy"], 0.95,
        "the evidence is copied"
    );

    let again = run(&wd, &prod.url, &[], &["apply", "m"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        model(&reg, &target).await.versions.len(),
        1,
        "a rerun copies nothing"
    );
    let noop = run(&wd, &prod.url, &[], &["plan", "m", "--detailed-exitcode"]);
    assert_eq!(noop.code, 0, "{noop:?}");

    let v2 = train(&dev, &source, 0.97, 0.5);
    let plan = run(&wd, &prod.url, &[], &["plan", "m"]);
    assert!(
        plan.stdout.contains(&format!("copy version {v2} of")),
        "{plan:?}"
    );
    let applied = run(&wd, &prod.url, &[], &["apply", "m"]);
    assert_eq!(applied.code, 0, "{applied:?}");
    let m = model(&reg, &target).await;
    assert_eq!(m.versions.len(), 2, "{m:?}");
    let champion = *m.aliases.get("champion").expect("champion");
    assert_eq!(
        copied_tags(&m, champion)[tags::COPY_OF],
        format!("dev/{source}/{v2}")
    );

    pair::stop(&dev);
    assert_eq!(
        predict(prod, &target),
        "0,1",
        "prod serves the copy by itself"
    );
    let down = run(&wd, &prod.url, &[], &["plan", "m"]);
    assert_eq!(down.code, 3, "{down:?}");
    assert!(down.stderr.contains("source registry dev"), "{down:?}");
}

/// Into S3 (the PostgreSQL + S3 configuration, no proxied artifacts): the
/// files land in the bucket through object_store and MLflow loads them.
#[tokio::test(flavor = "multi_thread")]
async fn copy_into_s3_loads_from_prod() {
    let dev = pair::dev();
    let s3 = &crate::support::servers::postgres_s3().mlflow;
    let source = unique("s3-dev");
    let target = unique("s3-prod");
    train(dev, &source, 0.92, 1.0);
    let wd = workdir(&dev.url, &source, &target, 0.9);
    let applied = run(&wd, &s3.url, &s3.env, &["apply", "m"]);
    assert_eq!(applied.code, 0, "{applied:?}");
    let reg = s3.registry();
    let m = model(&reg, &target).await;
    assert_eq!(m.versions.len(), 1, "{m:?}");
    assert_eq!(predict(s3, &target), "0,1");
    let again = run(&wd, &s3.url, &s3.env, &["apply", "m"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(model(&reg, &target).await.versions.len(), 1);
}

/// A gate in the target judges the copied evidence: accuracy 0.8 does not
/// pass `atLeast: 0.9`, so champion is not moved (exit 5), while the copy
/// itself is made once.
#[tokio::test(flavor = "multi_thread")]
async fn target_gate_blocks_on_copied_evidence() {
    let (dev, prod) = (pair::dev(), pair::prod());
    let source = unique("gate-dev");
    let target = unique("gate-prod");
    train(dev, &source, 0.8, 1.0);
    let wd = workdir(&dev.url, &source, &target, 0.9);
    let plan = run(&wd, &prod.url, &[], &["plan", "m"]);
    assert!(plan.stdout.contains("0.8"), "{plan:?}");
    let applied = run(&wd, &prod.url, &[], &["apply", "m"]);
    assert_eq!(applied.code, 5, "{applied:?}");
    let m = model(&prod.registry(), &target).await;
    assert_eq!(m.versions.len(), 1);
    assert!(m.aliases.is_empty(), "{m:?}");
}

/// A missing source alias is a plan error naming the registry and object;
/// nothing is written in the target.
#[tokio::test(flavor = "multi_thread")]
async fn missing_source_alias_is_an_error() {
    let (dev, prod) = (pair::dev(), pair::prod());
    let target = unique("noalias");
    let wd = workdir(&dev.url, "no-such-model", &target, 0.9);
    let plan = run(&wd, &prod.url, &[], &["apply", "m"]);
    assert_eq!(plan.code, 1, "{plan:?}");
    let all = format!("{}{}", plan.stdout, plan.stderr);
    assert!(
        all.contains("alias champion of model \"no-such-model\" does not exist in registry dev"),
        "{plan:?}"
    );
    assert!(
        prod.registry()
            .get_model(&target)
            .await
            .expect("read")
            .is_none()
    );
}
