//! Metric and beats gates on MLflow 3 logged-model metrics: the logged
//! model first, the run as fallback, narrowing by evaluation dataset, and
//! the value's origin in every detail.

use insta::assert_snapshot;

use super::*;
use crate::manifest::Dataset;
use crate::plan::gates::{Candidate, evaluate};
use crate::plan::{GateCheck, logged_models_needed, runs_needed};
use crate::state::{LiveLoggedModel, LoggedMetric};

fn checks(list: &[GateCheck]) -> String {
    list.iter()
        .map(|c| format!("{:?} | {} | {}\n", c.status, c.gate, c.detail))
        .collect()
}

fn metric(key: &str, value: f64, step: i64, dataset: Option<(&str, &str)>) -> LoggedMetric {
    LoggedMetric {
        key: key.into(),
        value,
        step,
        timestamp: 1_000 + step,
        dataset_name: dataset.map(|d| d.0.to_string()),
        dataset_digest: dataset.map(|d| d.1.to_string()),
        run_id: "eval-run".into(),
    }
}

/// Version 3 (@champion, logged model m-3) and version 4 (m-4), both with
/// training runs that hold no `auc`; the evaluations are on the models.
fn base() -> LiveState {
    let mut l = live(vec![
        L::new("nba")
            .version(3, Stage::Production, "models:/m-3")
            .version(4, Stage::Staging, "models:/m-4")
            .alias("champion", 3),
    ]);
    let m = l.models.get_mut("nba").expect("model");
    m.versions.get_mut(&3).expect("v3").model_id = "m-3".into();
    m.versions.get_mut(&4).expect("v4").model_id = "m-4".into();
    let l = with_run(l, "run-3", &[("acc", 0.5)]);
    let mut l = with_run(l, "run-4", &[("acc", 0.6)]);
    l.logged_models.insert(
        "m-3".into(),
        LiveLoggedModel {
            model_id: "m-3".into(),
            experiment_id: "1".into(),
            metrics: vec![metric("auc", 0.88, 0, Some(("holdout", "d1")))],
        },
    );
    l.logged_models.insert(
        "m-4".into(),
        LiveLoggedModel {
            model_id: "m-4".into(),
            experiment_id: "1".into(),
            metrics: vec![
                metric("auc", 0.80, 0, Some(("holdout", "d1"))),
                metric("auc", 0.91, 1, Some(("holdout", "d1"))),
                metric("f1", 0.70, 0, Some(("holdout", "d1"))),
                metric("f1", 0.95, 0, Some(("test", "d2"))),
            ],
        },
    );
    l
}

fn eval(gates: &[Gate], version: u64, l: &LiveState) -> String {
    let model = &l.models["nba"];
    let v = &model.versions[&version];
    let candidate = Candidate {
        model: "nba",
        target: &PRODUCTION,
        live: Some(v),
        run_id: Some(v.run_id.as_str()).filter(|r| !r.is_empty()),
        model_id: Some(v.model_id.as_str()).filter(|m| !m.is_empty()),
        pinned: None,
    };
    checks(&evaluate(gates, &candidate, Some(model), l, &env()))
}

fn on(name: &str, digest: Option<&str>) -> Option<Dataset> {
    Some(Dataset {
        name: name.into(),
        digest: digest.map(str::to_string),
    })
}

fn at_least(key: &str, lo: f64, dataset: Option<Dataset>) -> Gate {
    Gate::Metric {
        metric: key.into(),
        at_least: Some(lo),
        at_most: None,
        dataset,
    }
}

#[test]
fn logged_model_metrics_come_first_and_runs_are_the_fallback() {
    let l = base();
    let gates = [
        at_least("auc", 0.9, None),
        at_least("auc", 0.95, None),
        at_least("acc", 0.55, None),
        at_least("f1", 0.5, None),
        at_least("f1", 0.9, on("test", None)),
        at_least("f1", 0.9, on("holdout", Some("d1"))),
        at_least("f1", 0.9, on("holdout", Some("other"))),
        at_least("acc", 0.5, on("holdout", None)),
    ];
    assert_snapshot!(eval(&gates, 4, &l), @r"
        Passed | metric auc >= 0.9 | auc 0.91 >= 0.90, from logged model m-4, dataset holdout
        Blocked | metric auc >= 0.95 | auc 0.91 < 0.95, from logged model m-4, dataset holdout
        Passed | metric acc >= 0.55 | acc 0.60 >= 0.55, from run run-4
        Blocked | metric f1 >= 0.5 | logged model m-4 of version 4 has f1 for several datasets (holdout, test): narrow the gate with dataset
        Passed | metric f1 >= 0.9 on dataset test | f1 0.95 >= 0.90, from logged model m-4, dataset test
        Blocked | metric f1 >= 0.9 on dataset holdout (digest d1) | f1 0.70 < 0.90, from logged model m-4, dataset holdout
        Blocked | metric f1 >= 0.9 on dataset holdout (digest other) | logged model m-4 of version 4 has no f1 for dataset holdout (digest other)
        Blocked | metric acc >= 0.5 on dataset holdout | logged model m-4 of version 4 has no acc for dataset holdout
        ");
}

#[test]
fn beats_compares_logged_model_metrics_on_one_dataset() {
    let l = base();
    let gates = [
        Gate::Beats {
            alias: "champion".into(),
            metric: "auc".into(),
            by: 0.0,
            dataset: on("holdout", None),
        },
        Gate::Beats {
            alias: "champion".into(),
            metric: "auc".into(),
            by: 0.05,
            dataset: None,
        },
    ];
    assert_snapshot!(eval(&gates, 4, &l), @r"
        Passed | beats @champion on auc on dataset holdout | auc 0.91 >= 0.88 (@champion is version 3; ours from logged model m-4, dataset holdout; theirs from logged model m-3, dataset holdout)
        Blocked | beats @champion on auc by 0.05 | auc 0.91 < 0.88 + 0.05 (@champion is version 3; ours from logged model m-4, dataset holdout; theirs from logged model m-3, dataset holdout)
        ");
}

#[test]
fn a_missing_logged_model_falls_back_to_the_run_unless_a_dataset_is_named() {
    let mut l = base();
    l.logged_models.remove("m-4");
    let gates = [
        at_least("acc", 0.5, None),
        at_least("auc", 0.5, None),
        at_least("auc", 0.5, on("holdout", None)),
    ];
    assert_snapshot!(eval(&gates, 4, &l), @r"
        Passed | metric acc >= 0.5 | acc 0.60 >= 0.50, from run run-4
        Blocked | metric auc >= 0.5 | run run-4 of version 4 has no metric auc (its logged model m-4 was not found)
        Blocked | metric auc >= 0.5 on dataset holdout | logged model m-4 of version 4 not found
        ");
}

#[test]
fn the_planner_asks_for_the_logged_models_its_gates_read() {
    let l = base();
    let d = desired(vec![
        M::new("nba")
            .number("cand", 4)
            .alias("champion", "cand")
            .gate(
                GateTarget::Alias("champion".into()),
                Gate::Beats {
                    alias: "champion".into(),
                    metric: "auc".into(),
                    by: 0.0,
                    dataset: None,
                },
            ),
    ]);
    assert_eq!(logged_models_needed(&d, &l), vec!["m-3", "m-4"]);
    assert_eq!(runs_needed(&d, &l), vec!["run-3", "run-4"]);
}
