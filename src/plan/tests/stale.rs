//! Saved-plan staleness: every observed value is re-checked.

use insta::assert_snapshot;

use super::*;
use crate::plan::{plan, stale};

fn setup() -> (DesiredState, LiveState) {
    let d = desired(vec![
        M::new("nba")
            .desc("new")
            .tag("team", "ml")
            .number("cur", 3)
            .number("cand", 4)
            .vtag("cand", "approved", "true")
            .vdesc("cand", "better")
            .source("fresh", "s3://fresh")
            .stage(Stage::Production, "cand")
            .stage(Stage::Staging, "fresh")
            .alias("champion", "cand")
            .alias("fallback", "cur"),
        M::new("created").source("v", "s3://c"),
    ]);
    let mut l = live(vec![
        L::new("nba")
            .desc("old")
            .tag(
                "modelsync.managed",
                r#"{"aliases":["champion","fallback","gone"],"stages":["Staging","Production"]}"#,
            )
            .version(3, Stage::Production, "s3://3")
            .version(4, Stage::Staging, "s3://4")
            .alias("champion", 3)
            .alias("gone", 3),
    ]);
    l.experiments
        .insert("exp".into(), live_experiment("exp", "s3://e", &[]));
    let mut d = d;
    d.experiments
        .insert("exp".into(), experiment("exp", None, &[("team", "ml")]));
    d.experiments
        .insert("new-exp".into(), experiment("new-exp", None, &[]));
    (d, l)
}

#[test]
fn fresh_plan_is_not_stale() {
    let (d, l) = setup();
    let p = plan(&d, &l, &prune_ctx());
    assert!(!p.is_empty());
    assert_eq!(stale::check(&p, &l), Vec::<String>::new());
}

#[test]
fn every_changed_observation_is_reported() {
    let (d, l) = setup();
    let p = plan(&d, &l, &prune_ctx());
    let mut now = l.clone();
    let m = now.models.get_mut("nba").expect("model");
    m.description = "edited".into();
    m.tags.insert("team".into(), "data".into());
    m.aliases.insert("champion".into(), 4);
    m.aliases.remove("gone");
    m.aliases.insert("fallback".into(), 4);
    let v4 = m.versions.get_mut(&4).expect("v4");
    v4.stage = Stage::None;
    v4.tags.insert("approved".into(), "false".into());
    v4.description = "by hand".into();
    m.versions.insert(
        7,
        crate::state::LiveVersion {
            version: 7,
            stage: Stage::Production,
            source: "s3://fresh".into(),
            ..Default::default()
        },
    );
    now.models.insert("created".into(), L::new("created").0);
    now.experiments
        .insert("new-exp".into(), live_experiment("new-exp", "", &[]));
    now.experiments
        .get_mut("exp")
        .expect("exp")
        .tags
        .insert("team".into(), "x".into());
    assert_snapshot!(stale::check(&p, &now).join("\n"), @r#"
        created: the model now exists, the plan saw none
        nba: the description is "edited", the plan saw "old"
        nba: tag team is "data", the plan saw unset
        nba: s3://fresh is now registered as version 7, the plan saw none
        nba: version 4 description is "by hand", the plan saw ""
        nba: version 4 tag approved is "false", the plan saw unset
        nba: Staging is held by no version, the plan saw version 4
        nba: version 4 is in None, the plan saw Staging
        nba: Production is held by versions 3, 7, the plan saw version 3
        nba: alias champion points at version 4, the plan saw version 3
        nba: alias fallback points at version 4, the plan saw it unset
        nba: alias gone is not set, the plan saw version 3
        experiment exp: tag team is "x", the plan saw unset
        experiment new-exp: the experiment now exists, the plan saw none
        "#);
}

#[test]
fn a_deleted_model_is_reported_once() {
    let (d, l) = setup();
    let p = plan(&d, &l, &ctx());
    let mut now = l.clone();
    now.models.remove("nba");
    assert_snapshot!(stale::check(&p, &now).join("\n"), @"nba: the model no longer exists");
}
