//! Gates of each kind, passed and blocked, and what a blocked move does to
//! the archivals that depend on it.

use insta::assert_snapshot;

use super::*;
use crate::plan::gates::{Candidate, describe, evaluate, number};
use crate::plan::{GateCheck, plan};

fn checks(list: &[GateCheck]) -> String {
    list.iter()
        .map(|c| format!("{:?} | {} | {}\n", c.status, c.gate, c.detail))
        .collect()
}

/// Version 3 holds Production and @champion, version 4 is in Staging.
fn base() -> LiveState {
    let l = live(vec![
        L::new("nba")
            .version(3, Stage::Production, "s3://3")
            .version(4, Stage::Staging, "s3://4")
            .version(5, Stage::None, "s3://5")
            .run_id(5, "")
            .alias("champion", 3),
    ]);
    let l = with_run(l, "run-3", &[("acc", 0.91), ("loss", 0.2)]);
    with_run(l, "run-4", &[("acc", 0.93), ("loss", f64::NAN)])
}

fn eval(gates: &[Gate], version: u64, l: &LiveState) -> String {
    let model = &l.models["nba"];
    let v = &model.versions[&version];
    let candidate = Candidate {
        model: "nba",
        target: &PRODUCTION,
        model_id: None,
        live: Some(v),
        run_id: (!v.run_id.is_empty()).then_some(v.run_id.as_str()),
        pinned: None,
    };
    checks(&evaluate(gates, &candidate, Some(model), l, &env()))
}

#[test]
fn metric_gates() {
    let l = base();
    let gates = [
        metric_at_least("acc", 0.9),
        metric_at_least("acc", 0.95),
        Gate::Metric {
            dataset: None,
            metric: "acc".into(),
            at_least: Some(0.9),
            at_most: Some(0.99),
        },
        Gate::Metric {
            dataset: None,
            metric: "acc".into(),
            at_least: None,
            at_most: Some(0.925),
        },
        metric_at_least("loss", 0.1),
        metric_at_least("f1", 0.1),
    ];
    assert_snapshot!(eval(&gates, 4, &l), @r"
        Passed | metric acc >= 0.9 | acc 0.93 >= 0.90, from run run-4
        Blocked | metric acc >= 0.95 | acc 0.93 < 0.95, from run run-4
        Passed | metric acc >= 0.9 and <= 0.99 | acc 0.93 >= 0.90 and <= 0.99, from run run-4
        Blocked | metric acc <= 0.925 | acc 0.93 > 0.925, from run run-4
        Blocked | metric loss >= 0.1 | loss is NaN (run run-4 of version 4)
        Blocked | metric f1 >= 0.1 | run run-4 of version 4 has no metric f1
        ");
    // No run at all, and a run id the snapshot does not hold.
    assert_snapshot!(eval(&gates[..1], 5, &l), @"Blocked | metric acc >= 0.9 | version 5 has no run");
    let mut l = l;
    l.runs.remove("run-4");
    assert_snapshot!(eval(&gates[..1], 4, &l), @"Blocked | metric acc >= 0.9 | run run-4 of version 4 not found");
}

#[test]
fn beats_gates() {
    let l = base();
    let beats = |by: f64| Gate::Beats {
        dataset: None,
        alias: "champion".into(),
        metric: "acc".into(),
        by,
    };
    let gates = [beats(0.0), beats(0.01), beats(0.05)];
    assert_snapshot!(eval(&gates, 4, &l), @r"
        Passed | beats @champion on acc | acc 0.93 >= 0.91 (@champion is version 3; ours from run run-4; theirs from run run-3)
        Passed | beats @champion on acc by 0.01 | acc 0.93 >= 0.91 + 0.01 (@champion is version 3; ours from run run-4; theirs from run run-3)
        Blocked | beats @champion on acc by 0.05 | acc 0.93 < 0.91 + 0.05 (@champion is version 3; ours from run run-4; theirs from run run-3)
        ");
    // The holder itself passes; no holder passes.
    assert_snapshot!(eval(&gates[..1], 3, &l), @"Passed | beats @champion on acc | version 3 already holds @champion");
    let mut l = l;
    l.models.get_mut("nba").expect("model").aliases.clear();
    assert_snapshot!(eval(&gates[..1], 4, &l), @"Passed | beats @champion on acc | no current holder of @champion");
}

#[test]
fn soak_gates() {
    let soak = |h: u64| Gate::Soak {
        target: GateTarget::Stage(Stage::Staging),
        duration: hours(h),
    };
    let l = base();
    // Held Staging, but not moved there by modelsync.
    assert_snapshot!(eval(&[soak(24)], 4, &l), @"Blocked | soak Staging for 24h | held Staging but not moved there by modelsync (no modelsync.promoted-at.Staging tag)");
    let mut l = l;
    let v = l
        .models
        .get_mut("nba")
        .expect("model")
        .versions
        .get_mut(&4)
        .expect("v4");
    v.tags
        .insert("modelsync.promoted-at.Staging".into(), hours_ago(30));
    assert_snapshot!(eval(&[soak(24), soak(48)], 4, &l), @r#"
        Passed | soak Staging for 24h | held Staging for 30h >= 24h
        Blocked | soak Staging for 48h | held Staging for 30h < 48h
        "#);
    // Does not hold the stage.
    assert_snapshot!(eval(&[soak(1)], 3, &l), @"Blocked | soak Staging for 1h | version 3 does not hold Staging");
    let alias_soak = Gate::Soak {
        target: GateTarget::Alias("champion".into()),
        duration: Duration::from_secs(90 * 60),
    };
    let v = l
        .models
        .get_mut("nba")
        .expect("model")
        .versions
        .get_mut(&3)
        .expect("v3");
    v.tags
        .insert("modelsync.promoted-at.champion".into(), "not a time".into());
    assert_snapshot!(eval(std::slice::from_ref(&alias_soak), 3, &l), @r#"
        Blocked | soak @champion for 1h 30m | modelsync.promoted-at.champion is not an RFC 3339 time: "not a time"
        "#);
}

#[test]
fn require_tag_gates() {
    let mut l = base();
    let v = l
        .models
        .get_mut("nba")
        .expect("model")
        .versions
        .get_mut(&4)
        .expect("v4");
    v.tags.insert("approved".into(), "true".into());
    v.tags.insert("reviewed".into(), "no".into());
    let gates = [
        Gate::RequireTag {
            key: "approved".into(),
            value: Some("true".into()),
        },
        Gate::RequireTag {
            key: "reviewed".into(),
            value: Some("yes".into()),
        },
        Gate::RequireTag {
            key: "reviewed".into(),
            value: None,
        },
        Gate::RequireTag {
            key: "signed".into(),
            value: None,
        },
    ];
    assert_snapshot!(eval(&gates, 4, &l), @r#"
        Passed | requireTag approved=true | approved = "true"
        Blocked | requireTag reviewed=yes | reviewed = "no", expected "yes"
        Passed | requireTag reviewed | reviewed = "no"
        Blocked | requireTag signed | version 4 has no tag signed
        "#);
}

#[test]
fn a_new_version_never_passes_soak_or_tag_but_has_its_run() {
    let l = with_run(LiveState::default(), "r9", &[("acc", 0.97)]);
    let candidate = Candidate {
        model: "nba",
        target: &PRODUCTION,
        model_id: None,
        live: None,
        run_id: Some("r9"),
        pinned: None,
    };
    let gates = [
        metric_at_least("acc", 0.9),
        Gate::Soak {
            target: GateTarget::Stage(Stage::Staging),
            duration: hours(1),
        },
        Gate::RequireTag {
            key: "approved".into(),
            value: None,
        },
        Gate::Beats {
            dataset: None,
            alias: "champion".into(),
            metric: "acc".into(),
            by: 0.0,
        },
    ];
    assert_snapshot!(checks(&evaluate(&gates, &candidate, None, &l, &env())), @r"
        Passed | metric acc >= 0.9 | acc 0.97 >= 0.90, from run r9
        Blocked | soak Staging for 1h | the new version has not held Staging yet
        Blocked | requireTag approved | the new version has no tag approved
        Passed | beats @champion on acc | no current holder of @champion
        ");
}

#[test]
fn numbers_and_descriptions() {
    assert_eq!(number(0.9), "0.90");
    assert_eq!(number(0.8512), "0.8512");
    assert_eq!(number(12.0), "12.00");
    let g = Gate::Beats {
        dataset: None,
        alias: "champion".into(),
        metric: "acc".into(),
        by: 0.01,
    };
    assert_eq!(describe(&g), "beats @champion on acc by 0.01");
}

/// Production: 4 replaces 3, gated. Staging gets a new version.
fn promotion(gate: Gate) -> (DesiredState, LiveState) {
    let d = desired(vec![
        M::new("nba")
            .number("cand", 4)
            .source("next", "runs:/r9/model")
            .stage(Stage::Production, "cand")
            .stage(Stage::Staging, "next")
            .alias("champion", "cand")
            .gate(GateTarget::Stage(Stage::Production), gate.clone())
            .gate(GateTarget::Alias("champion".into()), gate),
    ]);
    let mut l = base();
    l.models.get_mut("nba").expect("model").tags.insert(
        "modelsync.managed".into(),
        r#"{"aliases":["champion"],"stages":["Staging","Production"]}"#.into(),
    );
    (d, l)
}

#[test]
fn passed_gates_keep_the_archival() {
    let (d, l) = promotion(metric_at_least("acc", 0.9));
    let p = plan(&d, &l, &ctx());
    assert!(!p.has_blocked());
    assert_snapshot!(show(&p), @r#"
        nba:
          {"action":"register_version","handle":"next","declared_source":"runs:/r9/model","source":"runs:/r9/model","run_id":"r9","tags":{"modelsync.source":"runs:/r9/model"}}
          {"action":"transition_stage","version":{"new":"next"},"from":"None","to":"Staging","holders":[4]}
          {"action":"transition_stage","version":{"existing":4},"from":"Staging","to":"Production","holders":[3],"gates":[{"gate":"metric acc >= 0.9","status":"passed","detail":"acc 0.93 >= 0.90, from run run-4"}]}
          {"action":"set_alias","alias":"champion","version":{"existing":4},"before":3,"gates":[{"gate":"metric acc >= 0.9","status":"passed","detail":"acc 0.93 >= 0.90, from run run-4"}]}
          {"action":"archive_version","version":3,"from":"Production","replaced_by":{"existing":4}}
        "#);
}

#[test]
fn blocked_gate_keeps_the_move_but_drops_its_archival() {
    let (d, l) = promotion(metric_at_least("acc", 0.95));
    let p = plan(&d, &l, &ctx());
    assert!(p.has_blocked());
    assert_snapshot!(show(&p), @r#"
        nba:
          {"action":"register_version","handle":"next","declared_source":"runs:/r9/model","source":"runs:/r9/model","run_id":"r9","tags":{"modelsync.source":"runs:/r9/model"}}
          {"action":"transition_stage","version":{"new":"next"},"from":"None","to":"Staging","holders":[4]}
          {"action":"transition_stage","version":{"existing":4},"from":"Staging","to":"Production","holders":[3],"gates":[{"gate":"metric acc >= 0.95","status":"blocked","detail":"acc 0.93 < 0.95, from run run-4"}]}
          {"action":"set_alias","alias":"champion","version":{"existing":4},"before":3,"gates":[{"gate":"metric acc >= 0.95","status":"blocked","detail":"acc 0.93 < 0.95, from run run-4"}]}
        "#);
}
