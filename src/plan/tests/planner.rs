//! Planner snapshots: no-op, registration, promotion with archive, alias
//! moves, descriptions and tags, errors, experiments.

use insta::assert_snapshot;

use super::*;
use crate::plan::{plan, runs_needed, sources_to_resolve};
use crate::state::ResolvedSource;

const CAND: &str = "runs:/0124b9dda13f4b80b51550ec98e05eab/model";

/// A model like the sample manifest's (`manifests/nba-game-predictor.yaml`),
/// live state already converged.
fn synced() -> (DesiredState, LiveState) {
    let d = desired(vec![
        M::new("nba")
            .desc("XGBoost")
            .tag("team", "ml")
            .number("current", 3)
            .source("candidate", CAND)
            .stage(Stage::Production, "current")
            .stage(Stage::Staging, "candidate")
            .alias("champion", "current")
            .alias("challenger", "candidate"),
    ]);
    let l = live(vec![
        L::new("nba")
            .desc("XGBoost")
            .tag("team", "ml")
            .tag(
                "modelsync.managed",
                r#"{"aliases":["challenger","champion"],"stages":["Staging","Production"]}"#,
            )
            .version(1, Stage::Archived, "s3://b/1")
            .version(3, Stage::Production, "s3://b/3")
            .version(4, Stage::Staging, CAND)
            .run_id(4, "0124b9dda13f4b80b51550ec98e05eab")
            .alias("champion", 3)
            .alias("challenger", 4),
    ]);
    (d, l)
}

#[test]
fn noop_when_live_matches() {
    let (d, l) = synced();
    assert_snapshot!(show(&plan(&d, &l, &ctx())), @"(empty)");
}

#[test]
fn undeclared_live_models_are_ignored() {
    let (d, mut l) = synced();
    let other = L::new("other")
        .version(1, Stage::Production, "s3://x")
        .alias("a", 1);
    l.models.insert("other".to_string(), other.0);
    assert!(plan(&d, &l, &ctx()).is_empty());
}

#[test]
fn new_model_with_registration_and_moves() {
    let (d, _) = synced();
    let d = desired(vec![M(d.models["nba"].clone()).number("current", 3)]);
    // The model does not exist, so version 3 cannot exist either.
    assert_snapshot!(show(&plan(&d, &LiveState::default(), &ctx())), @r#"
    nba:
      error: version 3 of "nba" does not exist
    "#);
    let d = desired(vec![
        M::new("nba")
            .desc("XGBoost")
            .tag("team", "ml")
            .source("candidate", CAND)
            .vdesc("candidate", "retrained")
            .vtag("candidate", "dataset", "2026-11")
            .stage(Stage::Staging, "candidate")
            .alias("challenger", "candidate"),
    ]);
    assert_snapshot!(show(&plan(&d, &LiveState::default(), &ctx())), @r#"
        nba:
          {"action":"create_model","description":"XGBoost","tags":{"modelsync.managed":"{\"aliases\":[\"challenger\"],\"stages\":[\"Staging\"]}","team":"ml"}}
          {"action":"register_version","handle":"candidate","declared_source":"runs:/0124b9dda13f4b80b51550ec98e05eab/model","source":"runs:/0124b9dda13f4b80b51550ec98e05eab/model","run_id":"0124b9dda13f4b80b51550ec98e05eab","description":"retrained","tags":{"dataset":"2026-11","modelsync.source":"runs:/0124b9dda13f4b80b51550ec98e05eab/model"}}
          {"action":"transition_stage","version":{"new":"candidate"},"from":"None","to":"Staging","holders":[]}
          {"action":"set_alias","alias":"challenger","version":{"new":"candidate"},"before":null}
        "#);
}

#[test]
fn promotion_archives_replaced_holder_after_the_move() {
    let (d, l) = synced();
    let mut d = d;
    let m = d.models.get_mut("nba").expect("model");
    m.stages.insert(Stage::Production, "candidate".to_string());
    m.stages.remove(&Stage::Staging);
    m.aliases
        .insert("champion".to_string(), "candidate".to_string());
    assert_snapshot!(show(&plan(&d, &l, &ctx())), @r#"
        nba:
          {"action":"transition_stage","version":{"existing":4},"from":"Staging","to":"Production","holders":[3]}
          {"action":"set_alias","alias":"champion","version":{"existing":4},"before":3}
          {"action":"archive_version","version":3,"from":"Production","replaced_by":{"existing":4}}
        "#);
}

#[test]
fn new_registration_goes_to_staging_and_old_staging_is_archived() {
    let (d, l) = synced();
    let mut d = d;
    let m = d.models.get_mut("nba").expect("model");
    let fresh = M::new("x")
        .source("fresh", "s3://b/fresh")
        .vdesc("fresh", "new data");
    m.versions.extend(fresh.0.versions);
    m.stages.insert(Stage::Staging, "fresh".to_string());
    assert_snapshot!(show(&plan(&d, &l, &ctx())), @r#"
        nba:
          {"action":"register_version","handle":"fresh","declared_source":"s3://b/fresh","source":"s3://b/fresh","description":"new data","tags":{"modelsync.source":"s3://b/fresh"}}
          {"action":"transition_stage","version":{"new":"fresh"},"from":"None","to":"Staging","holders":[4]}
          {"action":"archive_version","version":4,"from":"Staging","replaced_by":{"new":"fresh"}}
        "#);
}

#[test]
fn alias_move_and_new_alias() {
    let (d, l) = synced();
    let mut d = d;
    let m = d.models.get_mut("nba").expect("model");
    m.aliases
        .insert("champion".to_string(), "candidate".to_string());
    m.aliases
        .insert("shadow".to_string(), "current".to_string());
    assert_snapshot!(show(&plan(&d, &l, &ctx())), @r#"
        nba:
          {"action":"set_alias","alias":"champion","version":{"existing":4},"before":3}
          {"action":"set_alias","alias":"shadow","version":{"existing":3},"before":null}
          {"action":"set_model_tag","key":"modelsync.managed","before":"{\"aliases\":[\"challenger\",\"champion\"],\"stages\":[\"Staging\",\"Production\"]}","after":"{\"aliases\":[\"challenger\",\"champion\",\"shadow\"],\"stages\":[\"Staging\",\"Production\"]}"}
        "#);
}

#[test]
fn descriptions_and_tags_are_updated_only_where_declared() {
    let d = desired(vec![
        M::new("nba")
            .desc("new text")
            .tag("team", "ml")
            .tag("tier", "gold")
            .number("current", 3)
            .vdesc("current", "the champion")
            .vtag("current", "approved", "true"),
    ]);
    let l = live(vec![
        L::new("nba")
            .desc("old text")
            .tag("team", "ml")
            .tag("untouched", "x")
            .version(3, Stage::None, "s3://b/3")
            .vdesc(3, "was here")
            .vtag(3, "approved", "false")
            .vtag(3, "other", "kept"),
    ]);
    assert_snapshot!(show(&plan(&d, &l, &ctx())), @r#"
        nba:
          {"action":"update_model_description","before":"old text","after":"new text"}
          {"action":"set_model_tag","key":"tier","before":null,"after":"gold"}
          {"action":"update_version_description","version":3,"before":"was here","after":"the champion"}
          {"action":"set_version_tag","version":3,"key":"approved","before":"false","after":"true"}
        "#);
    // No declared description: the live one is left alone.
    let d = desired(vec![M::new("nba").tag("team", "ml")]);
    assert!(plan(&d, &l, &ctx()).is_empty());
}

#[test]
fn duplicate_holders_of_a_declared_stage_are_archived() {
    let d = desired(vec![
        M::new("nba").number("p", 3).stage(Stage::Production, "p"),
    ]);
    let l = live(vec![
        L::new("nba")
            .tag(
                "modelsync.managed",
                r#"{"aliases":[],"stages":["Production"]}"#,
            )
            .version(2, Stage::Production, "s3://2")
            .version(3, Stage::Production, "s3://3"),
    ]);
    assert_snapshot!(show(&plan(&d, &l, &ctx())), @r#"
        nba:
          {"action":"archive_version","version":2,"from":"Production","replaced_by":{"existing":3}}
        "#);
}

#[test]
fn holder_declared_in_another_stage_is_moved_not_archived() {
    // Version 3 goes Staging -> Production, version 2 Production -> Archived
    // by declaration, new version into Staging.
    let d = desired(vec![
        M::new("nba")
            .number("old", 2)
            .number("cur", 3)
            .source("next", "s3://next")
            .stage(Stage::Archived, "old")
            .stage(Stage::Production, "cur")
            .stage(Stage::Staging, "next"),
    ]);
    let l = live(vec![
        L::new("nba")
            .tag(
                "modelsync.managed",
                r#"{"aliases":[],"stages":["Staging","Production","Archived"]}"#,
            )
            .version(2, Stage::Production, "s3://2")
            .version(3, Stage::Staging, "s3://3"),
    ]);
    assert_snapshot!(show(&plan(&d, &l, &ctx())), @r#"
        nba:
          {"action":"register_version","handle":"next","declared_source":"s3://next","source":"s3://next","tags":{"modelsync.source":"s3://next"}}
          {"action":"transition_stage","version":{"new":"next"},"from":"None","to":"Staging","holders":[3]}
          {"action":"transition_stage","version":{"existing":3},"from":"Staging","to":"Production","holders":[2]}
          {"action":"transition_stage","version":{"existing":2},"from":"Production","to":"Archived","holders":[]}
        "#);
}

#[test]
fn missing_version_number_is_an_error_for_that_model_only() {
    let d = desired(vec![
        M::new("nba")
            .number("gone", 7)
            .stage(Stage::Production, "gone"),
        M::new("nhl").number("one", 1).alias("champion", "one"),
    ]);
    let l = live(vec![
        L::new("nba").version(1, Stage::None, "s3://1"),
        L::new("nhl").version(1, Stage::None, "s3://1"),
    ]);
    let p = plan(&d, &l, &ctx());
    assert!(p.has_errors());
    assert_snapshot!(show(&p), @r#"
        nba:
          error: version 7 of "nba" does not exist
        nhl:
          {"action":"set_alias","alias":"champion","version":{"existing":1},"before":null}
          {"action":"set_model_tag","key":"modelsync.managed","before":null,"after":"{\"aliases\":[\"champion\"],\"stages\":[]}"}
        "#);
}

#[test]
fn one_version_in_two_stages_through_two_handles_is_an_error() {
    let d = desired(vec![
        M::new("nba")
            .number("a", 3)
            .source("b", "s3://3")
            .stage(Stage::Staging, "a")
            .stage(Stage::Production, "b"),
    ]);
    let l = live(vec![L::new("nba").version(3, Stage::None, "s3://3")]);
    assert_snapshot!(show(&plan(&d, &l, &ctx())), @r#"
        nba:
          error: version 3 of "nba" is declared in more than one stage (Staging, Production)
        "#);
}

#[test]
fn source_matching_by_tag_resolved_source_and_run_id() {
    let d = desired(vec![
        M::new("nba")
            .source("by_tag", "runs:/r1/model")
            .source("resolved", "runs:/r2/model")
            .source("other_run", "runs:/r3/model")
            .alias("a", "by_tag")
            .alias("b", "resolved")
            .alias("c", "other_run"),
    ]);
    let mut l = live(vec![
        L::new("nba")
            .version(1, Stage::None, "models:/m-1")
            .run_id(1, "r1")
            .vtag(1, "modelsync.source", "runs:/r1/model")
            .version(2, Stage::None, "models:/m-2")
            .run_id(2, "r2")
            // Same source, but from another run: not a match.
            .version(3, Stage::None, "runs:/r3/model")
            .run_id(3, "elsewhere")
            .alias("a", 1)
            .alias("b", 2),
    ]);
    l.resolved_sources.insert(
        "runs:/r2/model".to_string(),
        ResolvedSource {
            source: "models:/m-2".to_string(),
            run_id: Some("r2".to_string()),
            model_id: Some("m-2".to_string()),
            location: None,
        },
    );
    l.resolved_sources.insert(
        "runs:/r3/model".to_string(),
        ResolvedSource {
            source: "models:/m-3".to_string(),
            run_id: Some("r3".to_string()),
            model_id: Some("m-3".to_string()),
            location: None,
        },
    );
    assert_snapshot!(show(&plan(&d, &l, &ctx())), @r#"
        nba:
          {"action":"register_version","handle":"other_run","declared_source":"runs:/r3/model","source":"models:/m-3","run_id":"r3","model_id":"m-3","tags":{"modelsync.source":"runs:/r3/model"}}
          {"action":"set_alias","alias":"c","version":{"new":"other_run"},"before":null}
          {"action":"set_model_tag","key":"modelsync.managed","before":null,"after":"{\"aliases\":[\"c\"],\"stages\":[]}"}
        "#);
    assert_eq!(
        sources_to_resolve(&d, &l),
        vec!["runs:/r2/model", "runs:/r3/model"]
    );
}

#[test]
fn several_matches_take_the_lowest_version_and_one_source_registers_once() {
    let d = desired(vec![
        M::new("nba")
            .source("dup", "s3://dup")
            .alias("a", "dup")
            .source("x", "s3://new")
            .source("y", "s3://new")
            .alias("x", "x")
            .alias("y", "y"),
    ]);
    let l = live(vec![
        L::new("nba")
            .version(4, Stage::None, "s3://dup")
            .version(6, Stage::None, "s3://dup"),
    ]);
    assert_snapshot!(show(&plan(&d, &l, &ctx())), @r#"
        nba:
          {"action":"register_version","handle":"x","declared_source":"s3://new","source":"s3://new","tags":{"modelsync.source":"s3://new"}}
          {"action":"set_alias","alias":"a","version":{"existing":4},"before":null}
          {"action":"set_alias","alias":"x","version":{"new":"x"},"before":null}
          {"action":"set_alias","alias":"y","version":{"new":"x"},"before":null}
          {"action":"set_model_tag","key":"modelsync.managed","before":null,"after":"{\"aliases\":[\"a\",\"x\",\"y\"],\"stages\":[]}"}
        "#);
}

#[test]
fn experiments_create_tag_and_warn() {
    let mut d = desired(vec![]);
    for e in [
        experiment("new-exp", Some("s3://lake/mlflow"), &[("team", "ml")]),
        experiment(
            "old-exp",
            Some("s3://elsewhere"),
            &[("team", "ml"), ("tier", "1")],
        ),
        experiment("same-exp", Some("s3://lake/same/"), &[("team", "ml")]),
    ] {
        d.experiments.insert(e.name.clone(), e);
    }
    let mut l = LiveState::default();
    for e in [
        live_experiment("old-exp", "s3://lake/old", &[("team", "data")]),
        live_experiment("same-exp", "s3://lake/same", &[("team", "ml")]),
    ] {
        l.experiments.insert(e.name.clone(), e);
    }
    assert_snapshot!(show(&plan(&d, &l, &ctx())), @r#"
        experiment new-exp:
          {"action":"create_experiment","artifact_location":"s3://lake/mlflow","tags":{"team":"ml"}}
        experiment old-exp:
          {"action":"set_experiment_tag","key":"team","before":"data","after":"ml"}
          {"action":"set_experiment_tag","key":"tier","before":null,"after":"1"}
          warning: artifact location is "s3://lake/old" in the registry, the manifest says "s3://elsewhere"; MLflow cannot change it, so it is left alone
        "#);
}

#[test]
fn runs_needed_lists_gated_candidates_and_beats_holders() {
    let d = desired(vec![
        M::new("nba")
            .number("cur", 3)
            .number("cand", 4)
            .source("fresh", "runs:/r9/model")
            .stage(Stage::Production, "cand")
            .alias("champion", "cand")
            .alias("challenger", "fresh")
            .alias("plain", "cur")
            .gate(
                GateTarget::Stage(Stage::Production),
                metric_at_least("acc", 0.9),
            )
            .gate(
                GateTarget::Alias("champion".into()),
                Gate::Beats {
                    dataset: None,
                    alias: "champion".into(),
                    metric: "acc".into(),
                    by: 0.0,
                },
            )
            .gate(
                GateTarget::Alias("challenger".into()),
                metric_at_least("acc", 0.5),
            )
            // Soak reads no runs.
            .gate(
                GateTarget::Alias("plain".into()),
                Gate::Soak {
                    target: GateTarget::Stage(Stage::Staging),
                    duration: hours(1),
                },
            ),
    ]);
    let l = live(vec![
        L::new("nba")
            .version(3, Stage::Production, "s3://3")
            .version(4, Stage::Staging, "s3://4")
            .alias("champion", 3),
    ]);
    assert_eq!(runs_needed(&d, &l), vec!["r9", "run-3", "run-4"]);
    assert_eq!(sources_to_resolve(&d, &l), vec!["runs:/r9/model"]);
}
