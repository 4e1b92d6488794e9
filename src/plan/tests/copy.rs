//! Copies (`from:`): planned once per source lineage, found again by the
//! lineage tag, refused when the source's files changed since a copy.

use super::*;
use crate::manifest::{FromRef, FromSelect};
use crate::plan::{Action, describe, plan};
use crate::state::{CopyFile, CopySource, tags};

fn from() -> FromRef {
    FromRef {
        registry: "dev".into(),
        model: "nba-dev".into(),
        select: FromSelect::Alias("champion".into()),
        experiment: "modelsync-copies".into(),
    }
}

fn desired_copy() -> DesiredState {
    desired(vec![
        M::new("nba")
            .handle("released", Locator::From(from()))
            .alias("champion", "released"),
    ])
}

fn source(size: u64) -> CopySource {
    let files = vec![
        CopyFile {
            path: "MLmodel".into(),
            size: 200,
        },
        CopyFile {
            path: "model.pkl".into(),
            size,
        },
    ];
    CopySource {
        registry: "dev".into(),
        uri: "http://dev".into(),
        model: "nba-dev".into(),
        version: 3,
        run_id: "r1".into(),
        model_id: Some("m-1".into()),
        artifact_uri: "mlflow-artifacts:/1/models/m-1/artifacts".into(),
        digest: format!("sha256:{size}"),
        files,
        metrics: [("accuracy".to_string(), 0.95)].into(),
        ..CopySource::default()
    }
}

fn with_source(mut live: LiveState, src: CopySource) -> LiveState {
    live.copy_sources.insert(from().key(), Ok(src));
    live
}

#[test]
fn a_new_source_is_copied_then_found_by_lineage() {
    let src = source(1000);
    let live0 = with_source(live(vec![L::new("nba")]), src.clone());
    let p = plan(&desired_copy(), &live0, &ctx());
    let actions = &p.models[0].actions;
    let Action::CopyVersion { from, tags: t, .. } = &actions[0] else {
        panic!("a copy first: {actions:?}");
    };
    assert_eq!(from.version, 3);
    assert_eq!(t[tags::COPY_LINEAGE], src.lineage());
    assert_eq!(t[tags::COPY_OF], "dev/nba-dev/3");
    assert_eq!(
        describe::action(&actions[0]),
        "copy version 3 of \"nba-dev\" from registry dev (http://dev) as (released): run r1, \
         logged model m-1, 2 file(s), 1.2 kB"
    );
    let copied = L::new("nba")
        .version(1, Stage::None, "models:/m-9")
        .vtag(1, tags::COPY_LINEAGE, &src.lineage())
        .vtag(1, tags::COPY_OF, &src.origin())
        .alias("champion", 1);
    let p = plan(
        &desired_copy(),
        &with_source(live(vec![copied]), src),
        &ctx(),
    );
    assert!(p.models.iter().all(|m| m.actions.is_empty()), "{p:?}");
}

#[test]
fn changed_source_bytes_are_an_error_and_nothing_is_copied() {
    let before = source(1000);
    let copied = L::new("nba")
        .version(1, Stage::None, "models:/m-9")
        .vtag(1, tags::COPY_LINEAGE, &before.lineage())
        .vtag(1, tags::COPY_OF, &before.origin());
    let p = plan(
        &desired_copy(),
        &with_source(live(vec![copied]), source(2000)),
        &ctx(),
    );
    let m = &p.models[0];
    assert!(m.actions.is_empty(), "{m:?}");
    assert!(
        m.errors[0].contains("changed since it was copied here as version 1"),
        "{m:?}"
    );
    assert!(m.errors[0].contains("nothing is overwritten"), "{m:?}");
}

#[test]
fn an_unreadable_source_is_an_error() {
    let mut l = live(vec![L::new("nba")]);
    l.copy_sources.insert(
        from().key(),
        Err(
            "alias champion of model \"nba-dev\" does not exist in registry dev (http://dev)"
                .into(),
        ),
    );
    let p = plan(&desired_copy(), &l, &ctx());
    assert!(
        p.models[0].errors[0].contains("does not exist in registry dev"),
        "{p:?}"
    );
}
