//! The digest of a version's bytes: recorded when the plan registers a
//! version or first moves one (`modelsync.digest` and its listing), what
//! the plan asks observe to read, and the `digest: unchanged` gate.

use insta::assert_snapshot;

use super::*;
use crate::plan::{Action, describe, plan, trees_needed};
use crate::state::{TreeDigest, TreeFile, tags};

fn tree(body: &str) -> TreeDigest {
    TreeDigest::new(vec![
        TreeFile {
            path: "MLmodel".into(),
            size: 3,
            sha256: "a".repeat(64),
        },
        TreeFile {
            path: "model.pkl".into(),
            size: body.len() as u64,
            sha256: body.repeat(64)[..64].to_string(),
        },
    ])
    .expect("listable")
}

/// Version 3 holds Production; 4 is in Staging with no recorded digest.
fn base() -> LiveState {
    live(vec![
        L::new("nba")
            .version(3, Stage::Production, "s3://3")
            .version(4, Stage::Staging, "s3://4"),
    ])
}

fn with_tree(mut l: LiveState, n: u64, t: Result<TreeDigest, String>) -> LiveState {
    l.version_trees
        .entry("nba".into())
        .or_default()
        .insert(n, t);
    l
}

fn pinned(l: LiveState, n: u64, t: &TreeDigest) -> LiveState {
    let v = l.models["nba"].versions[&n].clone();
    let mut l = l;
    let mut v = v;
    v.tags.insert(tags::DIGEST.into(), t.digest.clone());
    v.tags.insert(tags::DIGEST_FILES.into(), t.listing());
    l.update_version("nba", v);
    l
}

fn promote_4(gated: bool) -> DesiredState {
    let mut m = M::new("nba")
        .number("current", 3)
        .number("candidate", 4)
        .stage(Stage::Production, "candidate");
    if gated {
        m = m.gate(GateTarget::Stage(Stage::Production), Gate::DigestUnchanged);
    }
    desired(vec![m])
}

#[test]
fn a_first_move_records_the_digest_and_its_listing_before_the_move() {
    let t = tree("1");
    let l = with_tree(base(), 4, Ok(t.clone()));
    let p = plan(&promote_4(false), &l, &ctx());
    let actions = &p.models[0].actions;
    let lines: Vec<String> = actions.iter().map(describe::action).collect();
    assert_eq!(
        lines,
        [
            format!("version 4 tag modelsync.digest = {:?}", t.digest),
            "version 4 tag modelsync.digest.files = listing of 2 files".to_string(),
            "stage Production: version 3 -> version 4 (from Staging)".to_string(),
            "archive version 3 (was Production)".to_string(),
            "ownership record: none -> aliases none; stages Production".to_string(),
        ]
    );
    let Action::SetVersionTag { after, .. } = &actions[1] else {
        panic!("the listing: {actions:?}");
    };
    assert_eq!(*after, t.listing());
    // Already pinned: nothing more to record; unreadable bytes: none.
    let p = plan(&promote_4(false), &pinned(base(), 4, &t), &ctx());
    assert_eq!(p.models[0].actions.len(), 3, "{}", show(&p));
    let l = with_tree(base(), 4, Err("no access".into()));
    assert_eq!(
        plan(&promote_4(false), &l, &ctx()).models[0].actions.len(),
        3
    );
}

#[test]
fn a_registration_carries_the_digest_of_its_source_in_its_create() {
    let d = desired(vec![
        M::new("nba")
            .source("candidate", "runs:/r2/model")
            .alias("champion", "candidate"),
    ]);
    let mut l = live(vec![L::new("nba")]);
    l.source_trees
        .insert("runs:/r2/model".into(), Ok(tree("2")));
    let p = plan(&d, &l, &ctx());
    let Action::RegisterVersion { tags: t, .. } = &p.models[0].actions[0] else {
        panic!("a registration first: {}", show(&p));
    };
    assert_eq!(t[tags::DIGEST], tree("2").digest);
    assert_eq!(t[tags::DIGEST_FILES], tree("2").listing());
    assert!(
        describe::details(&p.models[0].actions[0])
            .contains(&"tag modelsync.digest.files = listing of 2 files".to_string())
    );
    // Unread bytes: registered without a digest.
    l.source_trees
        .insert("runs:/r2/model".into(), Err("no access".into()));
    let p = plan(&d, &l, &ctx());
    let Action::RegisterVersion { tags: t, .. } = &p.models[0].actions[0] else {
        panic!("a registration first: {}", show(&p));
    };
    assert!(!t.contains_key(tags::DIGEST), "{t:?}");
}

#[test]
fn observe_reads_what_is_pinned_or_gated_and_the_sources_registered() {
    let l = base();
    let needed = trees_needed(&promote_4(false), &l);
    assert_eq!(needed.versions, [("nba".to_string(), 4)]);
    assert!(needed.sources.is_empty());
    // Pinned already: not read, unless a digest gate checks it.
    let l = pinned(base(), 4, &tree("1"));
    assert!(trees_needed(&promote_4(false), &l).versions.is_empty());
    assert_eq!(
        trees_needed(&promote_4(true), &l).versions,
        [("nba".to_string(), 4)]
    );
    // A move into Archived pins nothing; a registration is read.
    let d = desired(vec![
        M::new("nba")
            .number("old", 3)
            .stage(Stage::Archived, "old")
            .source("new", "s3://new"),
    ]);
    let needed = trees_needed(&d, &base());
    assert!(needed.versions.is_empty(), "{needed:?}");
    assert_eq!(needed.sources, ["s3://new"]);
}

#[test]
fn the_digest_gate_passes_unchanged_bytes_and_blocks_the_rest_naming_the_file() {
    let then = tree("1");
    let cases = [
        (
            "unchanged",
            with_tree(pinned(base(), 4, &then), 4, Ok(then.clone())),
        ),
        (
            "changed",
            with_tree(pinned(base(), 4, &then), 4, Ok(tree("2"))),
        ),
        ("unrecorded", with_tree(base(), 4, Ok(then.clone()))),
        (
            "unreadable",
            with_tree(pinned(base(), 4, &then), 4, Err("access denied".into())),
        ),
    ];
    let mut out = String::new();
    for (name, l) in cases {
        let p = plan(&promote_4(true), &l, &ctx());
        let move_ = p.models[0]
            .actions
            .iter()
            .find(|a| matches!(a, Action::TransitionStage { .. }))
            .expect("the move");
        for g in move_.gates() {
            out.push_str(&format!(
                "{name}: {:?} | {} | {}\n",
                g.status, g.gate, g.detail
            ));
        }
        // A blocked move pins nothing and archives nothing.
        if move_.is_blocked() {
            let others = p.models[0].actions.iter().filter(|a| {
                matches!(
                    a,
                    Action::SetVersionTag { .. } | Action::ArchiveVersion { .. }
                )
            });
            assert_eq!(others.count(), 0, "{}", show(&p));
        }
    }
    assert_snapshot!(out, @r"
        unchanged: Passed | digest unchanged | the bytes of version 4 match sha256:96e48631f2ea1682064c1ed0f7b23a3c3e0751145700e40ef93de5f6be4cded0 (2 file(s))
        changed: Blocked | digest unchanged | version 4: the bytes changed since modelsync recorded their digest (sha256:96e48631f2ea1682064c1ed0f7b23a3c3e0751145700e40ef93de5f6be4cded0 then, sha256:73e4a803820dcbbfb4dda4b948ce582150999887eac2336f1f811d2ff8df496d now): file model.pkl changed: 1 bytes, sha256 111111111111 when recorded; 1 bytes, sha256 222222222222 now
        unrecorded: Blocked | digest unchanged | version 4 has no recorded digest (modelsync.digest): modelsync records it when it registers or first moves a version; record it with a move into a target without this gate, or set the tag to what `modelsync resolve` prints
        unreadable: Blocked | digest unchanged | the bytes of version 4 cannot be read: access denied
        ");
}

#[test]
fn a_new_version_passes_the_digest_gate_with_the_digest_it_is_registered_with() {
    let d = desired(vec![
        M::new("nba")
            .source("candidate", "s3://new")
            .alias("champion", "candidate")
            .gate(GateTarget::Alias("champion".into()), Gate::DigestUnchanged),
    ]);
    let mut l = live(vec![L::new("nba")]);
    l.source_trees.insert("s3://new".into(), Ok(tree("2")));
    let p = plan(&d, &l, &ctx());
    assert!(!p.has_blocked(), "{}", show(&p));
    l.source_trees
        .insert("s3://new".into(), Err("access denied".into()));
    let p = plan(&d, &l, &ctx());
    let blocked = &p.models[0].actions[1].gates()[0];
    assert_eq!(
        blocked.detail,
        "the new version's bytes cannot be read: access denied"
    );
}
