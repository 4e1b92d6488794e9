//! Copies (`from:`): planned once per source lineage, found again by the
//! lineage tag, refused when the source's files changed since a copy.

use super::*;
use crate::manifest::{FromRef, FromSelect};
use crate::plan::{Action, describe, plan};
use crate::state::digest::legacy_listing_digest;
use crate::state::{CopySource, TreeFile, tags};

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
            .handle("released", Locator::From(Box::new(from())))
            .alias("champion", "released"),
    ])
}

fn source(size: u64) -> CopySource {
    let files = vec![
        TreeFile {
            path: "MLmodel".into(),
            size: 200,
            sha256: "a".repeat(64),
        },
        TreeFile {
            path: "model.pkl".into(),
            size,
            sha256: "b".repeat(64),
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

#[test]
fn a_copy_made_before_the_model_id_was_read_from_source_is_still_the_copy() {
    // An older modelsync saw no `model_id` on MLflow 3.17 and wrote `-`.
    let src = source(1000);
    let legacy = format!("{}/-/{}", src.origin(), src.digest);
    let copied = L::new("nba")
        .version(1, Stage::None, "models:/m-9")
        .vtag(1, tags::COPY_LINEAGE, &legacy)
        .vtag(1, tags::COPY_OF, &src.origin())
        .alias("champion", 1);
    let p = plan(
        &desired_copy(),
        &with_source(live(vec![copied]), src.clone()),
        &ctx(),
    );
    assert!(
        p.models
            .iter()
            .all(|m| m.actions.is_empty() && m.errors.is_empty()),
        "{p:?}"
    );
    assert!(src.is_lineage(&legacy) && src.is_lineage(&src.lineage()));
    let other = format!("{}/-/sha256:other", src.origin());
    assert!(!src.is_lineage(&other), "other bytes are another lineage");
    let no_model = CopySource {
        model_id: None,
        ..src
    };
    assert!(!no_model.is_lineage("dev/nba-dev/3/m-1/sha256:1000"));
}

#[test]
fn a_copy_made_when_the_digest_covered_paths_and_sizes_only_is_still_the_copy() {
    // Releases before the digest covered the bytes wrote the digest of the
    // (path, size) listing into the lineage: the same files, the same copy.
    let src = source(1000);
    let legacy = legacy_listing_digest(&src.files);
    for id in ["m-1", "-"] {
        let tag = format!("{}/{id}/{legacy}", src.origin());
        let copied = L::new("nba")
            .version(1, Stage::None, "models:/m-9")
            .vtag(1, tags::COPY_LINEAGE, &tag)
            .vtag(1, tags::COPY_OF, &src.origin())
            .alias("champion", 1);
        let p = plan(
            &desired_copy(),
            &with_source(live(vec![copied]), src.clone()),
            &ctx(),
        );
        assert!(
            p.models
                .iter()
                .all(|m| m.actions.is_empty() && m.errors.is_empty()),
            "{tag}: {p:?}"
        );
    }
    // Other sizes are other files: not this copy.
    let bigger = source(2000);
    let tag = format!("{}/m-1/{legacy}", src.origin());
    assert!(!bigger.is_lineage(&tag));
}

#[test]
fn a_deleted_copy_experiment_is_a_plan_error_with_the_hint() {
    let mut l = with_source(live(vec![L::new("nba")]), source(1000));
    l.deleted_experiments
        .insert("modelsync-copies".into(), "7".into());
    let p = plan(&desired_copy(), &l, &ctx());
    assert!(p.has_errors() && p.is_empty(), "{p:?}");
    insta::assert_snapshot!(p.models[0].errors.join("\n"), @r#":0:0: the copy's experiment "modelsync-copies" is deleted (id 7); MLflow keeps its name until it is restored (mlflow experiments restore --experiment-id 7) or purged (mlflow gc)"#);
    // Once copied, nothing goes into the experiment: no error.
    let src = source(1000);
    let copied = L::new("nba")
        .version(1, Stage::None, "models:/m-9")
        .vtag(1, tags::COPY_LINEAGE, &src.lineage())
        .alias("champion", 1);
    let mut l = with_source(live(vec![copied]), src);
    l.deleted_experiments
        .insert("modelsync-copies".into(), "7".into());
    let p = plan(&desired_copy(), &l, &ctx());
    assert!(!p.has_errors() && p.is_empty(), "{p:?}");
}

/// A plan that copies `source(1000)`, saved.
fn saved_copy() -> crate::plan::saved::SavedPlan {
    let l = with_source(live(vec![L::new("nba")]), source(1000));
    let p = plan(&desired_copy(), &l, &ctx());
    let made = crate::plan::saved::Provenance {
        registry: "http://prod".into(),
        revision: None,
        created_at: "2026-11-20T12:00:00Z".into(),
        prune: false,
        files: Vec::new(),
        protect: Vec::new(),
        roots: Vec::new(),
        approvers: None,
        windows: Vec::new(),
    };
    let saved = crate::plan::saved::SavedPlan::new(p, &desired_copy(), &l, made).expect("saved");
    assert_eq!(crate::plan::stale::check(&saved, &l), Vec::<String>::new());
    saved
}

/// The stale lines of [`saved_copy`] when the source now reads `now`.
fn stale_with(now: Result<CopySource, String>) -> String {
    let mut l = live(vec![L::new("nba")]);
    l.copy_sources.insert(from().key(), now);
    crate::plan::stale::check(&saved_copy(), &l).join("\n")
}

#[test]
fn a_saved_copy_is_stale_when_its_source_alias_moved() {
    let moved = CopySource {
        version: 4,
        run_id: "r2".into(),
        ..source(1000)
    };
    insta::assert_snapshot!(stale_with(Ok(moved)), @"copy source dev:nba-dev@champion: was version 3, now version 4");
}

#[test]
fn a_saved_copy_is_stale_when_its_source_version_was_deleted() {
    let gone = "alias champion of model \"nba-dev\" does not exist in registry dev (http://dev)";
    insta::assert_snapshot!(stale_with(Err(gone.into())), @r#"copy source dev:nba-dev@champion: was version 3, now: alias champion of model "nba-dev" does not exist in registry dev (http://dev)"#);
}

#[test]
fn a_saved_copy_is_stale_when_its_source_files_run_or_logged_model_changed() {
    let changed = CopySource {
        run_id: "r9".into(),
        model_id: None,
        ..source(2000)
    };
    insta::assert_snapshot!(stale_with(Ok(changed)), @r#"
    copy source dev:nba-dev@champion: version 3's run was "r1", now "r9"
    copy source dev:nba-dev@champion: version 3's logged model was "m-1", now none
    copy source dev:nba-dev@champion: version 3's files changed (listing sha256:1000, now sha256:2000)
    "#);
    // What a copy carries besides (metrics, description) is not what
    // identifies the source version.
    let same = CopySource {
        description: "edited".into(),
        ..source(1000)
    };
    assert_eq!(stale_with(Ok(same)), "");
}

#[test]
fn a_copy_source_the_saved_plan_did_not_record_is_stale() {
    let mut saved = saved_copy();
    saved.observed.copies.clear();
    let l = with_source(live(vec![L::new("nba")]), source(1000));
    insta::assert_snapshot!(crate::plan::stale::check(&saved, &l).join("\n"), @"copy source dev:nba-dev@champion: not recorded in the saved plan, so it was not reviewed");
}

#[test]
fn a_copy_experiment_deleted_after_the_plan_makes_it_stale() {
    let saved = saved_copy();
    let mut l = with_source(live(vec![L::new("nba")]), source(1000));
    l.deleted_experiments
        .insert("modelsync-copies".into(), "7".into());
    insta::assert_snapshot!(crate::plan::stale::check(&saved, &l).join("\n"), @r#"nba: the copy's experiment "modelsync-copies" is deleted (id 7); MLflow keeps its name until it is restored (mlflow experiments restore --experiment-id 7) or purged (mlflow gc)"#);
}
