//! Gates on MLflow 3 logged-model metrics, against the real server: a
//! scikit-learn model logged in a training run and evaluated by a second
//! run the MLflow 3 way (`mlflow.log_metric(..., model_id=..., dataset=...)`,
//! so the metric lives on the logged model and not on the training run).
//! The gate reads it from the logged model, blocks and then passes, is
//! narrowed by dataset, names where each value came from, and all the
//! logged models a plan needs are read with one search.

use modelsync::registry::Registry;
use modelsync::state::Stage;

use crate::support::backend::manifest;
use crate::support::cli::{Run, Workdir};
use crate::support::mlflow::{MlflowServer, server, unique};
use crate::support::proxy::Proxy;

/// In one Python process: per entry of `evals`, trains and logs a model in
/// a run, then a separate evaluation run logs `auc` on that logged model
/// for each `(dataset, value)`, as MLflow 3's model-centric evaluation
/// does. Returns (training run, model id) per entry.
fn train(srv: &MlflowServer, exp: &str, evals: &[&[(&str, f64)]]) -> Vec<(String, String)> {
    let scores: Vec<String> = evals
        .iter()
        .map(|e| {
            let pairs: Vec<String> = e.iter().map(|(d, v)| format!("('{d}', {v})")).collect();
            format!("[{}]", pairs.join(", "))
        })
        .collect();
    let out = srv.run_python(&format!(
        r#"
import mlflow, mlflow.sklearn, numpy as np
from sklearn.linear_model import LogisticRegression
mlflow.set_experiment("{exp}")
metric = "auc"
X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
for scores in [{scores}]:
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model")
    print("OUT=" + run.info.run_id + "," + info.model_id)
    {EVAL}
"#,
        scores = scores.join(", "),
        EVAL = EVAL_BODY.replace('\n', "\n    "),
    ));
    out.lines()
        .filter_map(|l| l.strip_prefix("OUT="))
        .map(|l| {
            let (run, model) = l.trim().split_once(',').expect("two ids");
            (run.to_owned(), model.to_owned())
        })
        .collect()
}

/// Python: an evaluation run logging `metric` with `scores` (dataset
/// name or `''` for none, value) on the logged model `info`.
const EVAL_BODY: &str = "import pandas as pd
with mlflow.start_run():
    for ds, v in scores:
        d = mlflow.data.from_pandas(pd.DataFrame({'x': [1.0, 2.0]}), name=ds) if ds else None
        mlflow.log_metric(metric, v, model_id=info.model_id, dataset=d)";

/// A later evaluation of an existing logged model: `auc` per dataset.
fn evaluate(srv: &MlflowServer, exp: &str, model_id: &str, scores: &[(&str, f64)]) {
    log_on_logged_model(srv, exp, &format!("{model_id:?}"), "auc", scores);
}

/// Logs `metric` with `scores` (dataset, or `""` for none; value) on a
/// logged model from a run of experiment `exp`, the MLflow 3 way; the
/// logged model's id is the Python expression `model_id` (it may ask
/// MLflow). What an evaluation job, offline or online, does.
pub fn log_on_logged_model(
    srv: &MlflowServer,
    exp: &str,
    model_id: &str,
    metric: &str,
    scores: &[(&str, f64)],
) {
    let pairs: Vec<String> = scores
        .iter()
        .map(|(d, v)| format!("('{d}', {v})"))
        .collect();
    srv.run_python(&format!(
        "import mlflow\nfrom mlflow import MlflowClient\nmlflow.set_experiment('{exp}')\n\
         class I: model_id = {model_id}\ninfo = I()\nmetric = '{metric}'\nscores = [{}]\n{EVAL_BODY}\n",
        pairs.join(", ")
    ));
}

fn run(w: &Workdir, uri: &str, args: &[&str]) -> Run {
    let mut all = vec!["--registry", uri];
    all.extend_from_slice(args);
    Run::from_command(&mut w.command(&all))
}

fn gated(name: &str, train_run: &str, dataset: Option<&str>) -> String {
    let narrow = dataset
        .map(|d| format!("        dataset: {d}\n"))
        .unwrap_or_default();
    manifest(
        name,
        &format!(
            "  versions:\n    cand: {{source: \"runs:/{train_run}/model\"}}\n  aliases:\n    champion: cand\n  gates:\n    champion:\n      - metric: auc\n        atLeast: 0.9\n{narrow}"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_model_metric_from_an_evaluation_run_blocks_then_passes_a_gate() {
    let srv = server();
    let exp = unique("lm-exp");
    let name = unique("lm-gate");
    let (train_run, model_id) = train(srv, &exp, &[&[("holdout", 0.85)]]).remove(0);
    let w = Workdir::new();
    w.write("m/model.yaml", &gated(&name, &train_run, None));
    let r = run(&w, &srv.url, &["apply", "m"]);
    assert_eq!(r.code, 5, "0.85 < 0.9 must block: {r:?}");
    assert!(
        r.stdout.contains(&format!(
            "auc 0.85 < 0.90, from logged model {model_id}, dataset holdout"
        )),
        "{r:?}"
    );
    let m = srv
        .registry()
        .get_model(&name)
        .await
        .expect("read")
        .expect("model");
    assert_eq!(m.versions[&1].model_id, model_id);
    assert_eq!(m.aliases.get("champion"), None, "a blocked move applied");
    // The training run has no auc at all: only the logged model does.
    assert!(!r.stdout.contains("has no metric auc"), "{r:?}");

    // A second evaluation on the same dataset, later: its value counts.
    evaluate(srv, &exp, &model_id, &[("holdout", 0.93)]);
    let r = run(&w, &srv.url, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(&format!(
            "auc 0.93 >= 0.90, from logged model {model_id}, dataset holdout"
        )),
        "{r:?}"
    );
    let m = srv
        .registry()
        .get_model(&name)
        .await
        .expect("read")
        .expect("model");
    assert_eq!(m.aliases.get("champion"), Some(&1));
    assert_eq!(m.versions[&1].stage, Stage::None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_narrowed_by_dataset_reads_only_that_evaluation() {
    let srv = server();
    let exp = unique("lm-ds-exp");
    let name = unique("lm-ds");
    let (train_run, model_id) = train(srv, &exp, &[&[("holdout", 0.85), ("test", 0.97)]]).remove(0);
    let w = Workdir::new();
    // Two evaluations logged auc: an un-narrowed gate refuses to guess.
    w.write("m/model.yaml", &gated(&name, &train_run, None));
    let r = run(&w, &srv.url, &["plan", "m"]);
    assert!(
        r.stdout
            .contains("has auc for several datasets (holdout, test)"),
        "{r:?}"
    );
    w.write("m/model.yaml", &gated(&name, &train_run, Some("holdout")));
    let r = run(&w, &srv.url, &["apply", "m"]);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stdout.contains("dataset holdout"), "{r:?}");
    w.write("m/model.yaml", &gated(&name, &train_run, Some("test")));
    let r = run(&w, &srv.url, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(&format!(
            "auc 0.97 >= 0.90, from logged model {model_id}, dataset test"
        )),
        "{r:?}"
    );
    let m = srv
        .registry()
        .get_model(&name)
        .await
        .expect("read")
        .expect("model");
    assert_eq!(m.aliases.get("champion"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_search_reads_every_logged_model_a_plan_needs() {
    let srv = server();
    let exp = unique("lm-bulk-exp");
    let w = Workdir::new();
    let mut names = Vec::new();
    let low: &[(&str, f64)] = &[("holdout", 0.5)];
    for (i, (train_run, _)) in train(srv, &exp, &[low, low, low]).into_iter().enumerate() {
        let name = unique(&format!("lm-bulk{i}"));
        w.write(&format!("m/{i}.yaml"), &gated(&name, &train_run, None));
        names.push(name);
    }
    // Registers the versions (the gates block the aliases).
    assert_eq!(run(&w, &srv.url, &["apply", "m"]).code, 5);
    let proxy = Proxy::start(&srv.url).await;
    let r = run(&w, &proxy.url, &["plan", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.matches("from logged model").count(), 3, "{r:?}");
    assert_eq!(
        proxy.count("POST", "logged-models/search"),
        1,
        "{:#?}",
        proxy.seen()
    );
    let singles = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "GET" && s.path.contains("logged-models/m-"))
        .count();
    assert_eq!(singles, 0, "logged models read one by one");
}
