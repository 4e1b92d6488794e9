//! Saved-plan staleness: every observed value is re-checked.

use insta::assert_snapshot;

use super::*;
use crate::plan::saved::{Provenance, SavedPlan};
use crate::plan::{plan, stale};
use crate::state::LiveModel;

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
    assert_eq!(stale::check_actions(&p, &l), Vec::<String>::new());
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
    assert_snapshot!(stale::check_actions(&p, &now).join("\n"), @r#"
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
    assert_snapshot!(stale::check_actions(&p, &now).join("\n"), @"nba: the model no longer exists");
}

/// A converged model `m` (Production v2, champion v2, v1 archived) and an
/// untouched model `quiet`, saved with an empty plan for both.
fn converged() -> (SavedPlan, LiveState) {
    let d = desired(vec![
        M::new("m")
            .desc("churn")
            .tag("team", "ml")
            .number("cur", 2)
            .stage(Stage::Production, "cur")
            .alias("champion", "cur"),
        M::new("quiet"),
    ]);
    let l = live(vec![
        L::new("m")
            .desc("churn")
            .tag("team", "ml")
            .version(1, Stage::Archived, "s3://1")
            .version(2, Stage::Production, "s3://2")
            .vtag(2, "approved", "yes")
            .alias("champion", 2),
        L::new("quiet"),
    ]);
    let p = plan(&d, &l, &ctx());
    assert!(p.is_empty(), "{p:?}");
    let made = Provenance {
        registry: "file:r.json".into(),
        revision: None,
        created_at: "2026-11-20T12:00:00Z".into(),
        prune: false,
        files: Vec::new(),
        protect: Vec::new(),
        roots: Vec::new(),
        approvers: None,
        windows: Vec::new(),
    };
    let saved = SavedPlan::new(p, &d, &l, made).expect("saved");
    (saved, l)
}

/// The stale lines after `change` is made to the live state.
fn after(change: impl FnOnce(&mut LiveState)) -> String {
    let (saved, l) = converged();
    assert_eq!(stale::check(&saved, &l), Vec::<String>::new());
    let mut now = l;
    change(&mut now);
    stale::check(&saved, &now).join("\n")
}

fn model(l: &mut LiveState) -> &mut LiveModel {
    l.models.get_mut("m").expect("m")
}

#[test]
fn the_saved_plan_covers_every_declared_model() {
    let (saved, _) = converged();
    let c = saved.coverage();
    assert_eq!(c.models.into_iter().collect::<Vec<_>>(), ["m", "quiet"]);
    assert!(c.experiments.is_empty());
}

#[test]
fn an_alias_moved_by_hand_is_stale() {
    let out = after(|l| {
        model(l).aliases.insert("champion".into(), 1);
        model(l).aliases.insert("extra".into(), 2);
    });
    assert_snapshot!(out, @r"
    model m: alias champion was version 2, now version 1
    model m: alias extra was unset, now version 2
    ");
}

#[test]
fn the_production_holder_archived_by_hand_is_stale() {
    let out = after(|l| model(l).versions.get_mut(&2).expect("v2").stage = Stage::Archived);
    assert_snapshot!(out, @"model m: version 2 stage was Production, now Archived");
}

#[test]
fn a_model_tag_changed_or_removed_is_stale() {
    let out = after(|l| {
        model(l).tags.insert("team".into(), "data".into());
        model(l).tags.insert("new".into(), "x".into());
        l.models
            .get_mut("quiet")
            .expect("quiet")
            .tags
            .insert("k".into(), "v".into());
    });
    assert_snapshot!(out, @r#"
    model m: tag new was unset, now "x"
    model m: tag team was "ml", now "data"
    model quiet: tag k was unset, now "v"
    "#);
}

#[test]
fn a_description_changed_is_stale() {
    let out = after(|l| {
        model(l).description = "edited".into();
        model(l).versions.get_mut(&1).expect("v1").description = "old one".into();
    });
    assert_snapshot!(out, @r#"
    model m: description was "churn", now "edited"
    model m: version 1 description was "", now "old one"
    "#);
}

#[test]
fn a_version_tag_changed_is_stale() {
    let out = after(|l| {
        model(l)
            .versions
            .get_mut(&2)
            .expect("v2")
            .tags
            .remove("approved");
    });
    assert_snapshot!(out, @r#"model m: version 2 tag approved was "yes", now unset"#);
}

#[test]
fn a_version_added_or_deleted_is_stale() {
    let out = after(|l| {
        let m = model(l);
        m.versions.remove(&1);
        let v = L::new("x").version(3, Stage::None, "s3://3").0.versions[&3].clone();
        m.versions.insert(3, v);
    });
    assert_snapshot!(out, @r"
    model m: version 1 was deleted
    model m: version 3 was added (None, s3://3)
    ");
}

#[test]
fn a_model_deleted_or_created_is_stale() {
    let out = after(|l| {
        l.models.remove("quiet");
    });
    assert_snapshot!(out, @"model quiet: existed, now does not (deleted)");
    let d = desired(vec![M::new("new")]);
    let p = plan(&d, &LiveState::default(), &ctx());
    let made = Provenance {
        registry: "r".into(),
        revision: None,
        created_at: "t".into(),
        prune: false,
        files: Vec::new(),
        protect: Vec::new(),
        roots: Vec::new(),
        approvers: None,
        windows: Vec::new(),
    };
    let saved = SavedPlan::new(p, &d, &LiveState::default(), made).expect("saved");
    let now = live(vec![L::new("new")]);
    assert_snapshot!(stale::check(&saved, &now).join("\n"), @"model new: did not exist, now exists");
}

#[test]
fn an_experiment_changed_is_stale() {
    let (mut d, mut l) = setup();
    d.models.clear();
    l.models.clear();
    let p = plan(&d, &l, &ctx());
    let made = Provenance {
        registry: "r".into(),
        revision: None,
        created_at: "t".into(),
        prune: false,
        files: Vec::new(),
        protect: Vec::new(),
        roots: Vec::new(),
        approvers: None,
        windows: Vec::new(),
    };
    let saved = SavedPlan::new(p, &d, &l, made).expect("saved");
    assert_eq!(
        saved.coverage().experiments.into_iter().collect::<Vec<_>>(),
        ["exp", "new-exp"]
    );
    let mut now = l.clone();
    now.experiments
        .get_mut("exp")
        .expect("exp")
        .tags
        .insert("k".into(), "v".into());
    now.experiments
        .insert("new-exp".into(), live_experiment("new-exp", "", &[]));
    assert_snapshot!(stale::check(&saved, &now).join("\n"), @r#"
    experiment exp: tag k was unset, now "v"
    experiment new-exp: did not exist, now exists
    "#);
}

#[test]
fn bookkeeping_tags_that_cannot_change_the_plan_are_ignored() {
    let out = after(|l| {
        let m = model(l);
        m.tags.insert("modelsync.lease.holder".into(), "h".into());
        let v = m.versions.get_mut(&2).expect("v2");
        v.tags.insert("modelsync.revision".into(), "abc".into());
        v.tags
            .insert("modelsync.previous.Production".into(), "1".into());
        v.last_updated_timestamp += 1;
    });
    assert_eq!(out, "");
    // What the planner reads is not ignored.
    let out = after(|l| {
        let m = model(l);
        m.tags.insert("modelsync.managed".into(), "{}".into());
        let v = m.versions.get_mut(&1).expect("v1");
        v.tags
            .insert("modelsync.promoted-at.Production".into(), "t".into());
    });
    assert_snapshot!(out, @r#"
    model m: tag modelsync.managed was unset, now "{}"
    model m: version 1 tag modelsync.promoted-at.Production was unset, now "t"
    "#);
}

/// An approval arriving (or withdrawn) after review is not a change of what
/// the plan observed: the gates read approvals again when it is applied.
#[test]
fn approval_tags_are_not_compared() {
    let out = after(|l| {
        let v = model(l).versions.get_mut(&2).expect("v2");
        v.tags.insert(
            "modelsync.approval.Production.alice".into(),
            "modelsync-approval v1\n…".into(),
        );
    });
    assert_eq!(out, "");
}
