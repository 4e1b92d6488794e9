//! Unit tests for the JSON mapping.

use super::*;

fn version(json: &str) -> ModelVersion {
    serde_json::from_str(json).expect("valid model version JSON")
}

#[test]
fn minimal_version_uses_defaults() {
    let v = version(r#"{"name": "m", "version": "3"}"#)
        .into_live()
        .expect("maps");
    assert_eq!(v.version, 3);
    assert_eq!(v.stage, Stage::None);
    assert_eq!(v.status, VersionStatus::Ready);
    assert!(v.tags.is_empty() && v.description.is_empty() && v.run_id.is_empty());
}

#[test]
fn full_version_maps_every_field() {
    let v = version(
        r#"{"name": "fraud", "version": "7", "creation_timestamp": 1733400000000,
            "last_updated_timestamp": "1733400500000", "current_stage": "Production",
            "source": "models:/m-0f3c", "run_id": "9a1b", "status": "PENDING_REGISTRATION",
            "description": "d", "tags": [{"key": "a", "value": "1"}, {"key": "b"}],
            "aliases": ["champion"], "user_id": "x", "sqlstate": "ignored"}"#,
    )
    .into_live()
    .expect("maps");
    assert_eq!(v.version, 7);
    assert_eq!(v.stage, Stage::Production);
    assert_eq!(v.status, VersionStatus::PendingRegistration);
    assert_eq!(v.last_updated_timestamp, 1733400500000);
    assert_eq!(
        v.model_id, "m-0f3c",
        "model_id read from a models:/ source when absent"
    );
    assert_eq!(v.tags.get("b").map(String::as_str), Some(""));
}

#[test]
fn version_as_number_and_stage_in_any_case() {
    let v = version(r#"{"name": "m", "version": 4, "current_stage": "staging"}"#)
        .into_live()
        .expect("maps");
    assert_eq!((v.version, v.stage), (4, Stage::Staging));
}

#[test]
fn bad_versions_are_errors() {
    let err = version(r#"{"name": "m", "version": "2", "current_stage": "Deleted_Internal"}"#)
        .into_live()
        .expect_err("unknown stage");
    assert_eq!(
        err.to_string(),
        r#"model "m" version 2: unknown stage "Deleted_Internal""#
    );
    assert!(version(r#"{"name": "m"}"#).into_live().is_err());
    assert!(
        version(r#"{"name": "m", "version": "1", "status": "WEIRD"}"#)
            .into_live()
            .is_err()
    );
    assert!(serde_json::from_str::<ModelVersion>(r#"{"version": "x1"}"#).is_err());
}

#[test]
fn registered_model_with_aliases_and_empty_fields() {
    let m: RegisteredModelPage = serde_json::from_str(
        r#"{"registered_models": [
              {"name": "a", "aliases": [{"alias": "champion", "version": "2"}],
               "tags": [{"key": "team", "value": "x"}], "description": "hello"},
              {"name": "b"}],
            "next_page_token": "eyJvZmZzZXQiOiAxfQ=="}"#,
    )
    .expect("valid page");
    assert_eq!(m.next_page_token, "eyJvZmZzZXQiOiAxfQ==");
    let a = m.registered_models[0].clone().into_live();
    assert_eq!(a.aliases.get("champion"), Some(&2));
    assert_eq!(a.description, "hello");
    let b = m.registered_models[1].clone().into_live();
    assert!(b.aliases.is_empty() && b.tags.is_empty() && b.description.is_empty());
    let empty: ModelVersionPage = serde_json::from_str("{}").expect("empty page");
    assert!(empty.model_versions.is_empty() && empty.next_page_token.is_empty());
}

#[test]
fn run_metrics_keep_nan_and_infinities() {
    let r: RunResponse = serde_json::from_str(
        r#"{"run": {"info": {"run_uuid": "r1", "experiment_id": "5"},
                    "data": {"metrics": [
                        {"key": "acc", "value": 0.93, "step": 1},
                        {"key": "nan", "value": "NaN"},
                        {"key": "inf", "value": "Infinity"},
                        {"key": "ninf", "value": "-Infinity"},
                        {"key": "int", "value": 3}]}}}"#,
    )
    .expect("valid run");
    let run = r.run.into_live();
    assert_eq!(run.run_id, "r1");
    assert_eq!(run.experiment_id, "5");
    assert_eq!(run.metrics["acc"], 0.93);
    assert!(run.metrics["nan"].is_nan());
    assert_eq!(run.metrics["inf"], f64::INFINITY);
    assert_eq!(run.metrics["ninf"], f64::NEG_INFINITY);
    assert_eq!(run.metrics["int"], 3.0);
}

#[test]
fn error_bodies_ignore_unknown_keys() {
    let e: ErrorBody = serde_json::from_str(
        r#"{"error_code": "RESOURCE_ALREADY_EXISTS", "message": "Registered Model (name=a) already exists.",
            "sqlstate": "KAM00", "error_class": "RESOURCE_ALREADY_EXISTS"}"#,
    )
    .expect("valid error");
    assert_eq!(e.error_code, "RESOURCE_ALREADY_EXISTS");
}

#[test]
fn experiments_and_logged_models() {
    let e: ExperimentResponse = serde_json::from_str(
        r#"{"experiment": {"experiment_id": "3", "name": "e", "artifact_location": "s3://b/e",
            "lifecycle_stage": "deleted", "tags": [{"key": "k", "value": "v"}]}}"#,
    )
    .expect("valid experiment");
    assert!(e.experiment.is_deleted());
    let live = e.experiment.into_live();
    assert_eq!(
        (live.experiment_id.as_str(), live.artifact_location.as_str()),
        ("3", "s3://b/e")
    );
    let p: LoggedModelPage = serde_json::from_str(
        r#"{"models": [{"info": {"model_id": "m-1", "name": "model", "source_run_id": "r", "experiment_id": "1",
            "creation_timestamp_ms": 1}, "data": {"metrics": [{"key": "acc", "value": 0.0}]}}]}"#,
    )
    .expect("valid logged models");
    assert_eq!(p.models[0].info.model_id, "m-1");
}

#[test]
fn filter_literals_and_model_ids() {
    assert_eq!(filter_literal("plain").as_deref(), Some("'plain'"));
    assert_eq!(filter_literal("it's").as_deref(), Some("\"it's\""));
    assert_eq!(filter_literal("it's \"both\""), None);
    assert_eq!(model_id_of_source("models:/m-abc"), Some("m-abc"));
    assert_eq!(model_id_of_source("models:/fraud/3"), None);
    assert_eq!(model_id_of_source("runs:/r/model"), None);
}
