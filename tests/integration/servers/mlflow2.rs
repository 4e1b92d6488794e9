//! The last MLflow 2.x release (2.22.5), sqlite: the core scenarios, and
//! `runs:/` sources registered verbatim (there is no logged-models API),
//! with the server's capabilities probed once per run, not per source.

use modelsync::registry::Registry;
use modelsync::state::Stage;

use crate::support::cli::Workdir;
use crate::support::mlflow::unique;
use crate::support::proxy::Proxy;
use crate::support::servers::mlflow2;

use super::{cli, core_scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_scenario_on_mlflow_2() {
    let srv = mlflow2();
    let proxy = Proxy::start(&srv.url).await;
    core_scenario(srv, &srv.registry(), &unique("v2-core"), &[], Some(&proxy)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_sources_register_verbatim_and_load_by_alias() {
    let srv = mlflow2();
    let name = unique("v2-runs");
    // Two runs, each with a logged scikit-learn model (MLflow 2's API).
    let logged = srv.run_python(
        r#"
import mlflow, numpy as np
from sklearn.linear_model import LinearRegression
mlflow.set_experiment("modelsync-v2-runs")
for slope in (2.0, 3.0):
    model = LinearRegression().fit(np.array([[0.0], [1.0], [2.0]]), slope * np.array([0.0, 1.0, 2.0]))
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, "model")
    print(run.info.run_id)
"#,
    );
    let runs: Vec<&str> = logged
        .lines()
        .map(str::trim)
        .filter(|l| l.len() == 32)
        .collect();
    assert_eq!(runs.len(), 2, "{logged}");
    let w = Workdir::new();
    w.write(
        "m/model.yaml",
        &format!(
            "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  versions:\n    old: {{source: \"runs:/{}/model\"}}\n    new: {{source: \"runs:/{}/model\"}}\n  stages:\n    Staging: new\n    Production: old\n  aliases:\n    champion: new\n",
            runs[0], runs[1]
        ),
    );
    let lease = format!("{name}-lease");
    let env = [("MODELSYNC_LEASE_MODEL", lease.as_str())];
    let proxy = Proxy::start(&srv.url).await;
    let r = cli(&w, srv, &proxy.url, &env, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let probes = proxy.count("POST", "logged-models/search");
    assert!(
        probes <= 1,
        "the logged-models API was probed {probes} times in one run: {:#?}",
        proxy.seen()
    );
    let model = srv
        .registry()
        .get_model(&name)
        .await
        .expect("read")
        .expect("model");
    let by_source = |run: &str| {
        model
            .versions
            .values()
            .find(|v| v.source == format!("runs:/{run}/model"))
            .unwrap_or_else(|| {
                panic!(
                    "no version with source runs:/{run}/model (registered verbatim?): {model:#?}"
                )
            })
    };
    assert_eq!(model.versions.len(), 2, "{model:#?}");
    assert_eq!(by_source(runs[0]).stage, Stage::Production);
    assert_eq!(by_source(runs[0]).run_id, runs[0]);
    assert_eq!(by_source(runs[1]).stage, Stage::Staging);
    assert_eq!(
        model.aliases.get("champion"),
        Some(&by_source(runs[1]).version)
    );
    // Converged, with at most one probe again.
    let proxy = Proxy::start(&srv.url).await;
    let r = cli(
        &w,
        srv,
        &proxy.url,
        &env,
        &["plan", "m", "--detailed-exitcode"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        proxy.count("POST", "logged-models/search") <= 1,
        "{:#?}",
        proxy.seen()
    );
    // MLflow 2's own client loads what modelsync registered.
    let out = srv.run_python(&format!(
        r#"
import mlflow, numpy as np
for uri in ["models:/{name}@champion", "models:/{name}/Production"]:
    print("predict", uri, round(float(mlflow.pyfunc.load_model(uri).predict(np.array([[1.0]]))[0]), 6))
"#
    ));
    assert!(
        out.contains(&format!("predict models:/{name}@champion 3.0")),
        "{out}"
    );
    assert!(
        out.contains(&format!("predict models:/{name}/Production 2.0")),
        "{out}"
    );
}

/// MLflow 2.x cannot resolve logged models, but it can tell that a run does
/// not exist and that its artifacts hold no model under the path: each is
/// an error naming the manifest's line, with zero writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistyped_runs_sources_are_refused_on_mlflow_2() {
    let srv = mlflow2();
    let out = srv.run_python(
        r#"
import mlflow, numpy as np
from sklearn.linear_model import LinearRegression
mlflow.set_experiment("modelsync-v2-typos")
with mlflow.start_run() as run:
    mlflow.sklearn.log_model(LinearRegression().fit(np.array([[0.0], [1.0]]), np.array([0.0, 1.0])), "model")
with mlflow.start_run() as empty:
    mlflow.log_param("p", 1)
print("RUNS=" + run.info.run_id + "," + empty.info.run_id)
"#,
    );
    let ids = out
        .lines()
        .find_map(|l| l.strip_prefix("RUNS="))
        .expect("the snippet prints the runs");
    let (with_model, empty) = ids.trim().split_once(',').expect("two ids");
    let no_run = "0123456789abcdef0123456789abcdef";
    let cases = [
        (
            format!("runs:/{no_run}/model"),
            format!("run {no_run} does not exist"),
        ),
        (
            format!("runs:/{empty}/model"),
            format!("run {empty} logged no model under path \"model\""),
        ),
        (
            format!("runs:/{with_model}/modle"),
            format!("run {with_model} logged no model under path \"modle\""),
        ),
    ];
    for (source, why) in cases {
        let name = unique("v2-typo");
        let w = Workdir::new();
        w.write(
            "m/model.yaml",
            &format!(
                "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  versions:\n    cand: {{source: \"{source}\"}}\n  stages:\n    Production: cand\n"
            ),
        );
        let proxy = Proxy::start(&srv.url).await;
        let r = cli(&w, srv, &proxy.url, &[], &["apply", "m"]);
        assert_eq!(r.code, 1, "{source}: {r:?}");
        assert!(
            r.stdout.contains("m/model.yaml:7:") && r.stdout.contains(&why),
            "{source}: {r:?}"
        );
        assert_eq!(
            crate::registry_facts::writes(&proxy),
            0,
            "{:#?}",
            proxy.seen()
        );
        assert!(
            srv.registry()
                .get_model(&name)
                .await
                .expect("read")
                .is_none()
        );
    }
}
