//! The ownership record (`modelsync.managed`) holds only what modelsync
//! did: a move that passed its gate at plan time but failed the re-check
//! just before it is not recorded, so a later `--prune` leaves alone what a
//! person put in that stage meanwhile.

use modelsync::state::Stage;

use super::{Bench, managed};
use crate::support::backend::Backend;

/// `plan --out` with a passing metric gate on Production; then a lower
/// value of the metric is logged (gates read the latest); `apply --plan`
/// exits 5 and the record does not list Production. A person moves
/// another version into Production, the manifest drops the stage, and
/// `apply --prune` leaves that version there. With `created`, the model
/// does not exist before the saved plan (its record rides on the create).
async fn blocked_at_recheck_is_not_owned(b: Backend, created: bool) {
    let t = Bench::new(b, if created { "pass-own-new" } else { "pass-own" }).await;
    let run = t.c.log(None, &[("accuracy", 0.95)]);
    let versions = format!(
        "  versions:\n    cand: {{source: \"s3://bucket/{n}/cand\", runId: \"{run}\"}}\n    other: {{source: \"s3://bucket/{n}/other\"}}\n",
        n = t.name()
    );
    if !created {
        t.manifest(&versions);
        let r = t.run(&["apply", "m"]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    t.manifest(&format!(
        "{versions}  stages:\n    Production: cand\n  gates:\n    Production:\n      - metric: accuracy\n        atLeast: 0.9\n"
    ));
    let r = t.run(&["plan", "m", "--out", "plan.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("accuracy 0.95 >= 0.90"), "{r:?}");
    t.c.log(Some(&run), &[("accuracy", 0.5)]);
    let r = t.run(&["apply", "--plan", "plan.json"]);
    assert_eq!(r.code, 5, "{r:?}");
    // The saved plan's gates are evaluated again: the move is blocked
    // with the reason read now.
    assert!(r.stdout.contains("accuracy 0.50 < 0.90"), "{r:?}");
    let m = t.model().await.expect("model");
    let by_source = |h: &str| {
        m.versions
            .values()
            .find(|v| v.source.ends_with(&format!("/{h}")))
            .map(|v| v.version)
            .expect("registered")
    };
    let (cand, other) = (by_source("cand"), by_source("other"));
    assert_eq!(m.versions[&cand].stage, Stage::None, "blocked move applied");
    let owned = managed(&m);
    assert!(
        !owned
            .get("stages")
            .is_some_and(|s| s.iter().any(|s| s == "Production")),
        "the record claims Production: {:?}",
        m.tags.get("modelsync.managed")
    );

    t.hand_move(other, Stage::Production).await;
    t.manifest(&versions);
    let r = t.run(&["apply", "m", "--prune"]);
    assert_eq!(r.code, 0, "{r:?}");
    let m = t.model().await.expect("model");
    assert_eq!(
        m.versions[&other].stage,
        Stage::Production,
        "prune archived a version a person promoted: {r:?}"
    );
}

async fn existing_model(b: Backend) {
    blocked_at_recheck_is_not_owned(b, false).await;
}

async fn model_created_in_the_run(b: Backend) {
    blocked_at_recheck_is_not_owned(b, true).await;
}

crate::both!(existing_model, model_created_in_the_run);
