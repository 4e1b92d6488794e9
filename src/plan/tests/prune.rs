//! Ownership inventory and prune: only what modelsync set is removed, and
//! only with prune.

use insta::assert_snapshot;

use super::*;
use crate::plan::plan;

/// The manifest now declares only Production and @champion; modelsync
/// owned Staging, @champion and @old before; @manual was set by hand.
fn setup() -> (DesiredState, LiveState) {
    let d = desired(vec![
        M::new("nba")
            .number("cur", 3)
            .stage(Stage::Production, "cur")
            .alias("champion", "cur"),
    ]);
    let l = live(vec![
        L::new("nba")
            .tag(
                "modelsync.managed",
                r#"{"aliases":["champion","old","vanished"],"stages":["Staging","Production"]}"#,
            )
            .version(2, Stage::Staging, "s3://2")
            .version(3, Stage::Production, "s3://3")
            .version(4, Stage::Archived, "s3://4")
            .alias("champion", 3)
            .alias("old", 2)
            .alias("manual", 4),
    ]);
    (d, l)
}

#[test]
fn without_prune_nothing_is_removed_and_ownership_is_kept() {
    let (d, l) = setup();
    assert_snapshot!(show(&plan(&d, &l, &ctx())), @"(empty)");
}

#[test]
fn prune_removes_owned_aliases_and_stages_only() {
    let (d, l) = setup();
    assert_snapshot!(show(&plan(&d, &l, &prune_ctx())), @r#"
        nba:
          {"action":"archive_version","version":2,"from":"Staging"}
          {"action":"delete_alias","alias":"old","before":2}
          {"action":"set_model_tag","key":"modelsync.managed","before":"{\"aliases\":[\"champion\",\"old\",\"vanished\"],\"stages\":[\"Staging\",\"Production\"]}","after":"{\"aliases\":[\"champion\"],\"stages\":[\"Production\"]}"}
        "#);
}

#[test]
fn unowned_stage_holders_survive_prune() {
    let (d, mut l) = setup();
    let m = l.models.get_mut("nba").expect("model");
    m.tags.insert(
        "modelsync.managed".into(),
        r#"{"aliases":["champion"],"stages":["Production"]}"#.into(),
    );
    assert_snapshot!(show(&plan(&d, &l, &prune_ctx())), @"(empty)");
}

#[test]
fn adopted_model_owns_nothing_until_modelsync_moves_something() {
    let (d, mut l) = setup();
    l.models.get_mut("nba").expect("model").tags.clear();
    // Without an inventory modelsync owns nothing, so prune removes nothing;
    // and a converged model it never moved anything on gets no inventory.
    assert_snapshot!(show(&plan(&d, &l, &prune_ctx())), @"(empty)");
    // An unreadable inventory counts as none.
    l.models
        .get_mut("nba")
        .expect("model")
        .tags
        .insert("modelsync.managed".into(), "{not json".into());
    assert_snapshot!(show(&plan(&d, &l, &prune_ctx())), @r#"
        nba:
          {"action":"set_model_tag","key":"modelsync.managed","before":"{not json","after":"{\"aliases\":[],\"stages\":[]}"}
        "#);
}

#[test]
fn pruned_stage_holder_declared_elsewhere_is_moved_not_archived() {
    let d = desired(vec![
        M::new("nba").number("v", 2).stage(Stage::Production, "v"),
    ]);
    let l = live(vec![
        L::new("nba")
            .tag(
                "modelsync.managed",
                r#"{"aliases":[],"stages":["Staging"]}"#,
            )
            .version(2, Stage::Staging, "s3://2"),
    ]);
    assert_snapshot!(show(&plan(&d, &l, &prune_ctx())), @r#"
        nba:
          {"action":"transition_stage","version":{"existing":2},"from":"Staging","to":"Production","holders":[]}
          {"action":"set_model_tag","key":"modelsync.managed","before":"{\"aliases\":[],\"stages\":[\"Staging\"]}","after":"{\"aliases\":[],\"stages\":[\"Production\"]}"}
        "#);
}
