//! Holds and the freeze in the planner (issue 19): a held target is not
//! moved (a `held` entry, no action), not pruned, and released once the
//! manifests declare its version; a freeze blocks every move unless the
//! glass is broken.

use super::*;
use crate::plan::{Action, BreakGlass, GateStatus, plan};
use crate::state::hold::{self, Cause, Freeze, Hold};

fn held_at(v: u64) -> String {
    held_by(v, Cause::Rollback)
}

fn held_by(v: u64, cause: Cause) -> String {
    Hold {
        version: v,
        by: "alice".into(),
        at: "2026-11-20T11:00:00Z".into(),
        reason: "p99 doubled".into(),
        cause,
        extra: Default::default(),
    }
    .render()
}

/// champion and Production on version 1 (rolled back), held there; the
/// manifests declare version 2.
fn rolled_back() -> LiveState {
    live(vec![
        L::new("m")
            .tag(&hold::tag_key("champion"), &held_at(1))
            .tag(&hold::tag_key("Production"), &held_at(1))
            .tag(
                "modelsync.managed",
                r#"{"aliases":["champion"],"stages":["Production"]}"#,
            )
            .version(1, Stage::Production, "s3://1")
            .version(2, Stage::Archived, "s3://2")
            .alias("champion", 1),
    ])
}

fn declaring(v: u64) -> DesiredState {
    desired(vec![
        M::new("m")
            .number("one", 1)
            .number("two", 2)
            .stage(Stage::Production, if v == 1 { "one" } else { "two" })
            .alias("champion", if v == 1 { "one" } else { "two" }),
    ])
}

#[test]
fn a_held_target_is_not_moved_and_counts_as_no_change() {
    let p = plan(&declaring(2), &rolled_back(), &ctx());
    assert!(p.is_empty(), "{}", show(&p));
    let held: Vec<_> = p
        .held()
        .map(|(m, h)| (m, h.target.as_str(), h.live))
        .collect();
    assert_eq!(
        held,
        [("m", "Production", Some(1)), ("m", "champion", Some(1))]
    );
    let text = crate::plan::render::text(&p, false);
    assert!(
        text.contains("= held: alias champion: version 1 held"),
        "{text}"
    );
    assert!(text.contains("No changes. 2 targets are held"), "{text}");
}

#[test]
fn a_held_target_is_not_pruned() {
    let d = desired(vec![M::new("m").number("one", 1)]);
    let p = plan(&d, &rolled_back(), &prune_ctx());
    let actions: Vec<&str> = p
        .models
        .iter()
        .flat_map(|m| &m.actions)
        .map(Action::kind)
        .collect();
    assert!(
        !actions.contains(&"delete_alias") && !actions.contains(&"archive_version"),
        "{actions:?}"
    );
    assert_eq!(p.held().count(), 2);
}

#[test]
fn declaring_the_held_version_releases_the_hold() {
    let p = plan(&declaring(1), &rolled_back(), &ctx());
    let released: Vec<&str> = p
        .models
        .iter()
        .flat_map(|m| &m.actions)
        .filter_map(|a| match a {
            Action::ReleaseHold { target, .. } => Some(target.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(released, ["Production", "champion"]);
    assert_eq!(p.held().count(), 0);
}

#[test]
fn a_failed_verifications_hold_on_the_declared_version_stays_until_a_person_releases_it() {
    // onFailure: hold keeps the failed version 2, which the manifests declare.
    let l = live(vec![
        L::new("m")
            .tag(
                &hold::tag_key("champion"),
                &held_by(2, Cause::VerificationFailed),
            )
            .version(1, Stage::None, "s3://1")
            .version(2, Stage::None, "s3://2")
            .alias("champion", 2),
    ]);
    let d = desired(vec![
        M::new("m")
            .number("one", 1)
            .number("two", 2)
            .alias("champion", "two"),
    ]);
    let p = plan(&d, &l, &ctx());
    let actions: Vec<&Action> = p.models.iter().flat_map(|m| &m.actions).collect();
    assert!(actions.is_empty(), "{}", show(&p));
}

#[test]
fn a_freeze_blocks_every_move_unless_the_glass_is_broken() {
    let mut l = live(vec![L::new("m").version(1, Stage::None, "s3://1")]);
    l.freeze = Some(Freeze {
        by: "bob".into(),
        at: "2026-11-20T10:00:00Z".into(),
        reason: "incident 4711".into(),
    });
    let d = desired(vec![M::new("m").number("one", 1).alias("champion", "one")]);
    let p = plan(&d, &l, &ctx());
    assert!(p.has_blocked(), "{}", show(&p));
    let gates: Vec<_> = p.models[0].actions[0].gates().to_vec();
    assert_eq!(gates[0].gate, "freeze");
    assert!(gates[0].detail.contains("incident 4711"), "{gates:?}");
    let glass = PlanContext {
        break_glass: Some(BreakGlass {
            by: "carol".into(),
            reason: "hotfix".into(),
        }),
        ..ctx()
    };
    let p = plan(&d, &l, &glass);
    assert!(!p.has_blocked(), "{}", show(&p));
    let a = &p.models[0].actions[0];
    assert!(a.breaks_glass());
    assert_eq!(a.gates()[0].status, GateStatus::Overridden);
}
