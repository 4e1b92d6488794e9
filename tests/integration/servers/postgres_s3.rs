//! MLflow 3.17.2 on PostgreSQL with artifacts in S3 (moto), as the project
//! this grew out of ran it.

use crate::support::cli::Workdir;
use crate::support::mlflow::unique;
use crate::support::proxy::Proxy;
use crate::support::servers::{BUCKET, postgres_s3};

use super::{cli, core_scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_scenario_on_postgres() {
    let pg = postgres_s3();
    let proxy = Proxy::start(&pg.mlflow.url).await;
    core_scenario(
        &pg.mlflow,
        &pg.mlflow.registry(),
        &unique("pg-core"),
        &[],
        Some(&proxy),
    )
    .await;
}

/// A real scikit-learn model logged to S3, declared as `runs:/<run>/model`,
/// registered, promoted and aliased by modelsync; MLflow's own client loads
/// it back from S3 by alias and by stage. An Experiment with an `s3://`
/// artifact location is created as declared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sklearn_model_in_s3_loads_by_alias_and_stage() {
    let pg = postgres_s3();
    let srv = &pg.mlflow;
    let name = unique("pg-sklearn");
    let experiment = unique("pg-exp");
    let logged = srv.run_python(&format!(
        r#"
import mlflow, numpy as np
from sklearn.linear_model import LinearRegression
mlflow.set_experiment({experiment:?})
model = LinearRegression().fit(np.array([[0.0], [1.0], [2.0]]), np.array([1.0, 3.0, 5.0]))
with mlflow.start_run() as run:
    info = mlflow.sklearn.log_model(model, name="model")
print("RUN", run.info.run_id)
print("ARTIFACTS", mlflow.get_logged_model(info.model_id).artifact_location)
"#
    ));
    let field = |key: &str| -> String {
        logged
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in the output:\n{logged}"))
            .trim()
            .to_owned()
    };
    let run_id = field("RUN ");
    let artifacts = field("ARTIFACTS ");
    assert!(
        artifacts.starts_with(&format!("s3://{BUCKET}/mlflow/")),
        "the model was not logged to S3: {artifacts}"
    );
    let declared_exp = unique("pg-declared");
    let location = format!("s3://{BUCKET}/declared/{declared_exp}");
    let w = Workdir::new();
    w.write(
        "m/model.yaml",
        &format!(
            "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  versions:\n    first: {{source: \"runs:/{run_id}/model\"}}\n  stages:\n    Production: first\n  aliases:\n    champion: first\n---\napiVersion: modelsync/v1\nkind: Experiment\nmetadata:\n  name: {declared_exp}\nspec:\n  artifactLocation: {location}\n  tags: {{team: ml}}\n"
        ),
    );
    let env = [("MODELSYNC_LEASE_MODEL", format!("{name}-lease"))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = cli(&w, srv, &srv.url, &env, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = cli(
        &w,
        srv,
        &srv.url,
        &env,
        &["plan", "m", "--detailed-exitcode"],
    );
    assert_eq!(r.code, 0, "not converged: {r:?}");
    let out = srv.run_python(&format!(
        r#"
import mlflow, numpy as np
from mlflow import MlflowClient
c = MlflowClient()
v = c.get_model_version_by_alias({name:?}, "champion")
print("source", v.source, v.current_stage)
print("download", c.get_model_version_download_uri({name:?}, v.version))
for uri in ["models:/{name}@champion", "models:/{name}/Production"]:
    print("predict", uri, round(float(mlflow.pyfunc.load_model(uri).predict(np.array([[3.0]]))[0]), 6))
e = c.get_experiment_by_name({declared_exp:?})
print("experiment", e.artifact_location, e.tags.get("team"))
"#
    ));
    assert!(out.contains("source models:/m-"), "{out}");
    assert!(out.contains(" Production"), "{out}");
    assert!(
        out.contains(&format!("download s3://{BUCKET}/mlflow/")),
        "the version's artifacts are not in S3: {out}"
    );
    assert!(
        out.contains(&format!("predict models:/{name}@champion 7.0")),
        "{out}"
    );
    assert!(
        out.contains(&format!("predict models:/{name}/Production 7.0")),
        "{out}"
    );
    assert!(out.contains(&format!("experiment {location} ml")), "{out}");
}
