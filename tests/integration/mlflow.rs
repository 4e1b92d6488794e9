//! The MLflow registry against a real `mlflow server` (shared, started by
//! `support::mlflow`), through the `Registry` trait. Each test uses its own
//! model names.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt, stream};
use modelsync::registry::mlflow::{MlflowConfig, MlflowRegistry};
use modelsync::registry::{NewVersion, Registry, RegistryError, Scope, SnapshotRequest};
use modelsync::state::{LiveModel, SmallMap, SourceResolution, Stage};

use crate::support::mlflow::{server, unique};

fn new_version(source: &str) -> NewVersion {
    NewVersion {
        declared_source: source.to_owned(),
        source: source.to_owned(),
        run_id: None,
        model_id: None,
        description: None,
        tags: BTreeMap::new(),
    }
}

async fn model(reg: &MlflowRegistry, name: &str) -> LiveModel {
    reg.get_model(name)
        .await
        .expect("get_model")
        .expect("model exists")
}

fn named(names: impl IntoIterator<Item = String>) -> SnapshotRequest {
    SnapshotRequest {
        models: Scope::Named(names.into_iter().collect()),
        experiments: BTreeSet::new(),
    }
}

#[tokio::test]
async fn register_from_s3_and_runs_uris_twice_gives_the_same_version() {
    let reg = server().registry();
    let name = unique("register");
    reg.create_model(
        &name,
        Some("fraud model"),
        &BTreeMap::from([("team".into(), "risk".into())]),
    )
    .await
    .expect("create model");
    let mut s3 = new_version("s3://bucket/fraud/v1");
    s3.description = Some("first".into());
    s3.tags.insert("owner".into(), "alice".into());
    let v1 = reg.create_version(&name, &s3).await.expect("register s3");
    let again = reg
        .create_version(&name, &s3)
        .await
        .expect("register s3 again");
    assert_eq!((v1.version, again.version), (1, 1));
    let runs = new_version("runs:/0123456789abcdef0123456789abcdef/model");
    let v2 = reg
        .create_version(&name, &runs)
        .await
        .expect("register runs:/ verbatim");
    assert_eq!(
        reg.create_version(&name, &runs)
            .await
            .expect("again")
            .version,
        v2.version
    );

    let m = model(&reg, &name).await;
    assert_eq!(m.description, "fraud model");
    assert_eq!(m.tags.get("team").map(String::as_str), Some("risk"));
    assert_eq!(
        m.versions.keys().copied().collect::<Vec<_>>(),
        vec![1, 2],
        "no duplicates"
    );
    let v = &m.versions[&1];
    assert_eq!(
        (v.source.as_str(), v.description.as_str()),
        ("s3://bucket/fraud/v1", "first")
    );
    assert_eq!(v.tags.get("owner").map(String::as_str), Some("alice"));
    assert_eq!(
        v.tags.get("modelsync.source").map(String::as_str),
        Some("s3://bucket/fraud/v1")
    );
    assert_eq!(
        m.versions[&2].source,
        "runs:/0123456789abcdef0123456789abcdef/model"
    );

    let err = reg
        .create_model(&name, None, &BTreeMap::new())
        .await
        .expect_err("duplicate model");
    assert!(matches!(err, RegistryError::AlreadyExists(_)), "{err:?}");
    assert!(
        reg.get_model(&unique("absent"))
            .await
            .expect("get")
            .is_none()
    );
}

#[tokio::test]
async fn promotion_moves_first_then_archives_the_replaced_holder() {
    let reg = server().registry();
    let name = unique("promote");
    reg.create_model(&name, None, &BTreeMap::new())
        .await
        .expect("create model");
    for i in 1..=2 {
        reg.create_version(&name, &new_version(&format!("s3://b/promote/{i}")))
            .await
            .expect("register");
    }
    reg.transition_stage(&name, 1, Stage::Production)
        .await
        .expect("v1 -> Production");
    reg.transition_stage(&name, 2, Stage::Production)
        .await
        .expect("v2 -> Production");
    let m = model(&reg, &name).await;
    let holders: Vec<u64> = m.holders(Stage::Production).map(|v| v.version).collect();
    assert_eq!(
        holders,
        vec![1, 2],
        "archive_existing_versions=false leaves both in Production"
    );
    reg.transition_stage(&name, 1, Stage::Archived)
        .await
        .expect("archive v1");
    reg.transition_stage(&name, 1, Stage::Archived)
        .await
        .expect("archiving twice is fine");
    let m = model(&reg, &name).await;
    assert_eq!(m.versions[&1].stage, Stage::Archived);
    assert_eq!(m.versions[&2].stage, Stage::Production);
    let err = reg
        .transition_stage(&name, 9, Stage::Staging)
        .await
        .expect_err("no such version");
    assert!(matches!(err, RegistryError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn aliases_are_set_moved_and_deleted() {
    let reg = server().registry();
    let name = unique("alias");
    reg.create_model(&name, None, &BTreeMap::new())
        .await
        .expect("create model");
    for i in 1..=2 {
        reg.create_version(&name, &new_version(&format!("s3://b/alias/{i}")))
            .await
            .expect("register");
    }
    reg.set_alias(&name, "champion", 1).await.expect("set");
    assert_eq!(
        model(&reg, &name).await.aliases,
        SmallMap::from_iter([("champion".into(), 1)])
    );
    reg.set_alias(&name, "champion", 2).await.expect("move");
    reg.set_alias(&name, "challenger", 1)
        .await
        .expect("second alias");
    let m = model(&reg, &name).await;
    assert_eq!(
        m.aliases,
        SmallMap::from_iter([("champion".into(), 2), ("challenger".into(), 1)])
    );
    reg.delete_alias(&name, "champion").await.expect("delete");
    reg.delete_alias(&name, "champion")
        .await
        .expect("deleting a missing alias is fine");
    assert_eq!(
        model(&reg, &name).await.aliases,
        SmallMap::from_iter([("challenger".into(), 1)])
    );
    let err = reg
        .set_alias(&name, "champion", 7)
        .await
        .expect_err("no version 7");
    assert!(matches!(err, RegistryError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn tags_and_descriptions_round_trip() {
    let reg = server().registry();
    let name = unique("tags");
    reg.create_model(&name, None, &BTreeMap::new())
        .await
        .expect("create model");
    reg.create_version(&name, &new_version("s3://b/tags/1"))
        .await
        .expect("register");
    reg.set_model_tag(&name, "team", "risk")
        .await
        .expect("model tag");
    reg.set_model_tag(&name, "gone", "soon")
        .await
        .expect("model tag");
    reg.delete_model_tag(&name, "gone")
        .await
        .expect("delete model tag");
    reg.update_model_description(&name, "described")
        .await
        .expect("model description");
    reg.set_version_tag(&name, 1, "approved", "true")
        .await
        .expect("version tag");
    reg.set_version_tag(&name, 1, "tmp", "x")
        .await
        .expect("version tag");
    reg.delete_version_tag(&name, 1, "tmp")
        .await
        .expect("delete version tag");
    reg.update_version_description(&name, 1, "v1 notes")
        .await
        .expect("version description");
    let m = model(&reg, &name).await;
    assert_eq!(
        m.tags,
        SmallMap::from_iter([("team".into(), "risk".into())])
    );
    assert_eq!(m.description, "described");
    let v = &m.versions[&1];
    assert_eq!(v.description, "v1 notes");
    assert_eq!(v.tags.get("approved").map(String::as_str), Some("true"));
    assert!(!v.tags.contains_key("tmp"));
    reg.update_model_description(&name, "")
        .await
        .expect("clear description");
    assert_eq!(model(&reg, &name).await.description, "");
}

#[tokio::test]
async fn experiments_with_artifact_location_and_tags() {
    let srv = server();
    let reg = srv.registry();
    let name = unique("experiment");
    let location = format!("{}/custom-artifacts/{name}", srv.dir.display());
    let id = reg
        .create_experiment(
            &name,
            Some(&location),
            &BTreeMap::from([("team".into(), "risk".into())]),
        )
        .await
        .expect("create experiment");
    reg.set_experiment_tag(&id, "stage", "dev")
        .await
        .expect("experiment tag");
    let err = reg
        .create_experiment(&name, None, &BTreeMap::new())
        .await
        .expect_err("duplicate");
    assert!(matches!(err, RegistryError::AlreadyExists(_)), "{err:?}");
    let missing = unique("no-experiment");
    let req = SnapshotRequest {
        models: Scope::Named(BTreeSet::new()),
        experiments: BTreeSet::from([name.clone(), missing.clone()]),
    };
    let live = reg.snapshot(&req).await.expect("snapshot");
    let e = &live.experiments[&name];
    assert_eq!(e.experiment_id, id);
    assert_eq!(e.artifact_location, location);
    assert_eq!(e.tags.get("team").map(String::as_str), Some("risk"));
    assert_eq!(e.tags.get("stage").map(String::as_str), Some("dev"));
    assert!(!live.experiments.contains_key(&missing));

    // Export reads everything: all models and all active experiments.
    let model_name = unique("export");
    reg.create_model(&model_name, None, &BTreeMap::new())
        .await
        .expect("create model");
    let all = SnapshotRequest {
        models: Scope::All,
        experiments: BTreeSet::new(),
    };
    let live = reg.snapshot(&all).await.expect("snapshot all");
    assert!(live.models.contains_key(&model_name));
    assert_eq!(live.experiments[&name].experiment_id, id);
}

/// 200 models x 5 versions: a plan's snapshot reads them in a handful of
/// GETs, counted by the registry (every request it sends, retries included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_of_200_models_takes_a_handful_of_reads() {
    let srv = server();
    let writer = srv.registry();
    let prefix = unique("bulk");
    let names: Vec<String> = (0..200).map(|i| format!("{prefix}-{i:03}")).collect();
    stream::iter(names.iter().map(|n| {
        let writer = &writer;
        async move {
            writer.create_model(n, None, &BTreeMap::new()).await?;
            for v in 1..=5 {
                writer
                    .create_version(n, &new_version(&format!("s3://b/{n}/{v}")))
                    .await?;
            }
            Ok::<_, RegistryError>(())
        }
    }))
    .buffer_unordered(8)
    .try_collect::<Vec<()>>()
    .await
    .expect("populate");

    let reader = srv.registry();
    let live = reader
        .snapshot(&named(names.iter().cloned()))
        .await
        .expect("snapshot");
    assert_eq!(live.models.len(), 200);
    assert!(
        live.models.values().all(|m| m.versions.len() == 5),
        "every model has its 5 versions"
    );
    let stats = reader.stats();
    assert!(stats.reads <= 6, "{stats:?}");
    assert_eq!(
        (stats.writes, stats.errors, stats.retries),
        (0, 0, 0),
        "{stats:?}"
    );

    // Few named models: versions are searched per model.
    let few = srv.registry();
    let live = few
        .snapshot(&named(names[..3].iter().cloned()))
        .await
        .expect("snapshot");
    assert_eq!(live.models.len(), 3);
    assert_eq!(few.stats().reads, 1 + 3, "{:?}", few.stats());
}

#[tokio::test]
async fn unreachable_server_fails_fast_with_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    // The listener is dropped: nothing listens on `port` any more.
    let reg = MlflowRegistry::new(&format!("http://127.0.0.1:{port}"), MlflowConfig::default())
        .expect("url");
    let start = Instant::now();
    let err = reg
        .snapshot(&named([unique("x")]))
        .await
        .expect_err("nothing listens");
    assert!(err.is_unreachable(), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    // Refused at once: not retried for the 60 s budget.
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
}

/// MLflow 3: a model logged with `mlflow.sklearn.log_model` lives under a
/// logged model. `runs:/<run>/model` resolves to `models:/<model_id>`,
/// registers, takes the champion alias, and MLflow's own client loads it.
#[tokio::test]
async fn logged_model_registers_and_loads_by_alias() {
    let srv = server();
    let reg = srv.registry();
    let name = unique("sklearn");
    let exp = unique("sklearn-exp");
    let out = srv.run_python(&format!(
        r#"
import mlflow, mlflow.sklearn, numpy as np
from sklearn.linear_model import LogisticRegression
mlflow.set_experiment("{exp}")
X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
with mlflow.start_run() as run:
    mlflow.log_metric("accuracy", 0.93)
    mlflow.log_metric("loss", float("nan"))
    mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model")
print("RUN_ID=" + run.info.run_id)
"#
    ));
    let run_id = out
        .lines()
        .find_map(|l| l.strip_prefix("RUN_ID="))
        .expect("the snippet prints the run id")
        .trim()
        .to_owned();

    let runs = reg
        .get_runs(&[run_id.clone(), "0123456789abcdef0123456789abcdef".into()])
        .await
        .expect("runs");
    assert_eq!(runs.len(), 1, "unknown run ids are left out");
    let run = &runs[&run_id];
    assert_eq!(run.metrics["accuracy"], 0.93);
    assert!(
        run.metrics["loss"].is_nan(),
        "NaN arrives as \"NaN\" and stays NaN"
    );

    let declared = format!("runs:/{run_id}/model");
    let resolved = reg
        .resolve_sources(&[
            declared.clone(),
            "s3://b/verbatim".into(),
            format!("runs:/{run_id}/nothing"),
        ])
        .await
        .expect("resolve");
    assert_eq!(
        resolved.len(),
        2,
        "only runs:/ sources are answered: {resolved:?}"
    );
    assert_eq!(
        resolved[&format!("runs:/{run_id}/nothing")],
        SourceResolution::NotFound(format!(
            "run {run_id} logged no model under path \"nothing\" (it logged: model)"
        ))
    );
    let SourceResolution::Resolved(r) = &resolved[&declared] else {
        panic!("a logged model resolves: {resolved:?}");
    };
    assert!(r.source.starts_with("models:/m-"), "{r:?}");
    assert_eq!(r.run_id.as_deref(), Some(run_id.as_str()));
    assert_eq!(r.model_id.as_deref(), r.source.strip_prefix("models:/"));

    reg.create_model(&name, None, &BTreeMap::new())
        .await
        .expect("create model");
    let new = NewVersion {
        declared_source: declared.clone(),
        source: r.source.clone(),
        run_id: r.run_id.clone(),
        model_id: r.model_id.clone(),
        description: Some("sklearn".into()),
        tags: BTreeMap::new(),
    };
    let v = reg.create_version(&name, &new).await.expect("register");
    assert_eq!(
        reg.create_version(&name, &new)
            .await
            .expect("again")
            .version,
        v.version
    );
    assert_eq!(
        (v.source.as_str(), v.run_id.as_str()),
        (r.source.as_str(), run_id.as_str())
    );
    assert_eq!(Some(v.model_id.as_str()), r.model_id.as_deref());
    reg.set_alias(&name, "champion", v.version)
        .await
        .expect("alias");

    let out = srv.run_python(&format!(
        r#"
import mlflow.pyfunc, numpy as np
m = mlflow.pyfunc.load_model("models:/{name}@champion")
print("PRED=" + ",".join(str(int(p)) for p in m.predict(np.array([[0.0], [3.0]]))))
"#
    ));
    assert!(out.contains("PRED=0,1"), "{out}");
}
