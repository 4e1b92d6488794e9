//! What the registry says about sources, version statuses and experiments:
//! a `runs:/` source it cannot register, a version that is not READY, an
//! experiment that exists only deleted. Each is a plan error naming the
//! manifest's file:line:column, and nothing of that model is planned.

use insta::assert_snapshot;

use super::*;
use crate::plan::{plan, sources_to_resolve, versions_pending};
use crate::state::{SourceResolution, VersionStatus};

const TYPO: &str = "runs:/r1/modle";

/// `m` with every handle's origin set to `models/nba.yaml:<line>:7`, one
/// line per handle in name order from line 10.
fn located(m: M) -> M {
    let mut m = m;
    for (i, dv) in m.0.versions.values_mut().enumerate() {
        dv.origin = Origin {
            file: "models/nba.yaml".into(),
            line: 10 + i,
            column: 7,
        };
    }
    m
}

fn status(mut l: L, n: u64, status: VersionStatus, message: &str) -> L {
    let v = l.0.versions.get_mut(&n).expect("version");
    v.status = status;
    v.status_message = message.to_string();
    l
}

#[test]
fn a_source_the_registry_cannot_register_is_an_error_naming_its_line() {
    let d = desired(vec![located(
        M::new("nba")
            .source("cand", TYPO)
            .source("ok", "s3://fine")
            .stage(Stage::Production, "cand")
            .alias("challenger", "ok"),
    )]);
    let mut l = live(vec![L::new("nba")]);
    assert_eq!(sources_to_resolve(&d, &l), vec![TYPO]);
    l.record_resolutions(BTreeMap::from([(
        TYPO.to_string(),
        SourceResolution::NotFound("run r1 logged no model under path \"modle\"".into()),
    )]));
    assert_snapshot!(show(&plan(&d, &l, &ctx())), @r#"
    nba:
      error: models/nba.yaml:10:7: source "runs:/r1/modle" cannot be registered: run r1 logged no model under path "modle"
    "#);
}

#[test]
fn an_unresolvable_source_that_an_existing_version_matches_stays_that_version() {
    // Adopted from MLflow 2: registered verbatim, the run since deleted.
    let d = desired(vec![located(
        M::new("nba")
            .source("old", TYPO)
            .stage(Stage::Production, "old"),
    )]);
    let mut l = live(vec![
        L::new("nba")
            .version(1, Stage::Production, TYPO)
            .run_id(1, "r1"),
    ]);
    assert!(sources_to_resolve(&d, &l).is_empty(), "not even asked");
    l.unresolvable_sources
        .insert(TYPO.into(), "run r1 does not exist".into());
    assert_snapshot!(show(&plan(&d, &l, &ctx())), @"(empty)");
}

#[test]
fn a_pending_version_is_waited_for_and_never_moved_while_pending() {
    let d = desired(vec![located(
        M::new("nba")
            .number("three", 3)
            .source("four", "s3://4")
            .stage(Stage::Production, "three")
            .alias("champion", "four"),
    )]);
    let pending = status(
        status(
            L::new("nba")
                .version(3, Stage::None, "s3://3")
                .version(4, Stage::None, "s3://4"),
            3,
            VersionStatus::PendingRegistration,
            "",
        ),
        4,
        VersionStatus::PendingRegistration,
        "copying artifacts",
    );
    let l = live(vec![pending]);
    assert_eq!(
        versions_pending(&d, &l),
        vec![("nba".to_string(), 3), ("nba".to_string(), 4)]
    );
    assert_snapshot!(show(&plan(&d, &l, &ctx())), @r#"
    nba:
      error: models/nba.yaml:10:7: version 4 of "nba" is still registering (PENDING_REGISTRATION: copying artifacts); it is not moved before it is READY: plan again later
      error: models/nba.yaml:11:7: version 3 of "nba" is still registering (PENDING_REGISTRATION); it is not moved before it is READY: plan again later
    "#);
}

#[test]
fn a_failed_registration_is_an_error_not_a_registered_source() {
    let d = desired(vec![located(
        M::new("nba")
            .source("cand", "s3://cand")
            .stage(Stage::Staging, "cand"),
    )]);
    let l = live(vec![status(
        L::new("nba").version(1, Stage::None, "s3://cand"),
        1,
        VersionStatus::FailedRegistration,
        "artifact copy failed",
    )]);
    assert!(versions_pending(&d, &l).is_empty());
    assert_snapshot!(show(&plan(&d, &l, &ctx())), @r#"
    nba:
      error: models/nba.yaml:10:7: version 1 of "nba" failed to register (FAILED_REGISTRATION: artifact copy failed); it is never moved into a stage or behind an alias: delete that version to register its source again
    "#);
}

#[test]
fn a_ready_version_of_the_same_source_wins_over_a_failed_lower_one() {
    let d = desired(vec![
        M::new("nba")
            .source("cand", "s3://cand")
            .stage(Stage::Staging, "cand"),
    ]);
    let l = live(vec![status(
        L::new("nba")
            .version(1, Stage::None, "s3://cand")
            .version(2, Stage::None, "s3://cand"),
        1,
        VersionStatus::FailedRegistration,
        "",
    )]);
    assert_snapshot!(show(&plan(&d, &l, &ctx())), @r#"
    nba:
      {"action":"transition_stage","version":{"existing":2},"from":"None","to":"Staging","holders":[]}
      {"action":"set_model_tag","key":"modelsync.managed","before":null,"after":"{\"aliases\":[],\"stages\":[\"Staging\"]}"}
    "#);
}

#[test]
fn a_deleted_experiment_says_restore_or_purge_and_plans_nothing() {
    let mut d = desired(vec![]);
    let mut exp = experiment("fraud", None, &[("team", "risk")]);
    exp.origin = Origin {
        file: "exp.yaml".into(),
        line: 4,
        column: 9,
    };
    d.experiments.insert("fraud".into(), exp);
    let mut l = live(vec![]);
    l.deleted_experiments.insert("fraud".into(), "7".into());
    let p = plan(&d, &l, &ctx());
    assert!(p.has_errors() && p.is_empty(), "{p:?}");
    assert_snapshot!(show(&p), @r#"
    experiment fraud:
      error: exp.yaml:4:9: experiment "fraud" is deleted (id 7); MLflow keeps its name until it is restored (mlflow experiments restore --experiment-id 7) or purged (mlflow gc)
    "#);
    assert!(
        crate::plan::render::text(&p, false).contains("1 experiment with errors"),
        "{}",
        crate::plan::render::text(&p, false)
    );
}
