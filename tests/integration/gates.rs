//! Promotion gates end to end through the binary, against the embedded
//! registry and the real MLflow server: metric gates blocking then passing,
//! `beats` against the current champion, soak times with an injected clock,
//! `requireTag`; a blocked move blocks only itself and apply exits 5.

use modelsync::registry::Registry;
use modelsync::registry::embedded::EmbeddedRegistry;
use modelsync::state::Stage;

use crate::support::backend::{Backend, Ctx, manifest};
use crate::support::mlflow::server;

async fn metric_gate_blocks_then_passes(b: Backend) {
    let c = Ctx::new(b, "gate-metric");
    let run = c.log(None, &[("accuracy", 0.85)]);
    c.w.write(
        "m/model.yaml",
        &manifest(
            &c.name,
            &format!(
                "  versions:\n    cand: {{source: \"s3://bucket/{n}/cand\", runId: \"{run}\"}}\n    other: {{source: \"s3://bucket/{n}/other\"}}\n  stages:\n    Production: cand\n    Staging: other\n  gates:\n    Production:\n      - metric: accuracy\n        atLeast: 0.9\n",
                n = c.name
            ),
        ),
    );
    let r = c.run(&["plan", "m"]);
    assert!(r.stdout.contains("accuracy 0.85 < 0.90"), "{r:?}");
    let r = c.run(&["apply", "m"]);
    assert_eq!(r.code, 5, "{r:?}");
    let m = c.model().await;
    assert_eq!(m.versions[&1].stage, Stage::None, "blocked move applied");
    assert_eq!(
        m.versions[&2].stage,
        Stage::Staging,
        "the unblocked move must still apply"
    );
    c.log(Some(&run), &[("accuracy", 0.95)]);
    let r = c.run(&["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("accuracy 0.95 >= 0.90"), "{r:?}");
    assert_eq!(c.model().await.versions[&1].stage, Stage::Production);
}

async fn beats_the_current_champion(b: Backend) {
    let c = Ctx::new(b, "gate-beats");
    let old = c.log(None, &[("auc", 0.80)]);
    let new = c.log(None, &[("auc", 0.83)]);
    let body = |by: f64, champion: &str| {
        format!(
            "  versions:\n    old: {{source: \"s3://bucket/{n}/old\", runId: \"{old}\"}}\n    new: {{source: \"s3://bucket/{n}/new\", runId: \"{new}\"}}\n  aliases:\n    champion: {champion}\n  gates:\n    champion:\n      - beats: {{alias: champion, metric: auc, by: {by}}}\n",
            n = c.name
        )
    };
    c.w.write("m/model.yaml", &manifest(&c.name, &body(0.05, "old")));
    assert_eq!(
        c.run(&["apply", "m"]).code,
        0,
        "no current champion: passes"
    );
    let m = c.model().await;
    let by_source = |h: &str| {
        m.versions
            .values()
            .find(|v| v.source.ends_with(&format!("/{h}")))
            .map(|v| v.version)
            .expect("registered")
    };
    let (old_v, new_v) = (by_source("old"), by_source("new"));
    assert_eq!(m.aliases.get("champion"), Some(&old_v));
    c.w.write("m/model.yaml", &manifest(&c.name, &body(0.05, "new")));
    let r = c.run(&["apply", "m"]);
    assert_eq!(r.code, 5, "0.83 < 0.80 + 0.05 must block: {r:?}");
    assert_eq!(c.model().await.aliases.get("champion"), Some(&old_v));
    c.w.write("m/model.yaml", &manifest(&c.name, &body(0.02, "new")));
    let r = c.run(&["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(c.model().await.aliases.get("champion"), Some(&new_v));
}

async fn soak_and_require_tag(b: Backend) {
    let c = Ctx::new(b, "gate-soak");
    let staged = manifest(
        &c.name,
        &format!(
            "  versions:\n    v: {{source: \"s3://bucket/{}/v\"}}\n  stages:\n    Staging: v\n",
            c.name
        ),
    );
    c.w.write("m/model.yaml", &staged);
    assert_eq!(
        c.run_at(Some("2026-11-01T00:00:00Z"), &["apply", "m"]).code,
        0
    );
    let promoted = manifest(
        &c.name,
        &format!(
            "  versions:\n    v: {{source: \"s3://bucket/{}/v\"}}\n  stages:\n    Production: v\n  gates:\n    Production:\n      - soak: {{stage: Staging, for: 24h}}\n      - requireTag: {{key: approved, value: \"true\"}}\n",
            c.name
        ),
    );
    c.w.write("m/model.yaml", &promoted);
    let r = c.run_at(Some("2026-11-01T06:00:00Z"), &["plan", "m"]);
    assert!(r.stdout.contains("blocked"), "{r:?}");
    let r = c.run_at(Some("2026-11-02T01:00:00Z"), &["apply", "m"]);
    assert_eq!(r.code, 5, "soaked but not approved: {r:?}");
    assert!(r.stdout.contains("approved"), "{r:?}");
    match c.backend {
        Backend::Mlflow => {
            server()
                .registry()
                .set_version_tag(&c.name, 1, "approved", "true")
                .await
        }
        Backend::Embedded => {
            let reg = EmbeddedRegistry::open(&c.w.registry_file(), true).expect("open");
            reg.set_version_tag(&c.name, 1, "approved", "true")
                .await
                .expect("tag");
            reg.flush().await
        }
    }
    .expect("approve");
    let r = c.run_at(Some("2026-11-01T06:00:00Z"), &["apply", "m"]);
    assert_eq!(r.code, 5, "approved but not soaked (6h of 24h): {r:?}");
    let r = c.run_at(Some("2026-11-02T01:00:00Z"), &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let m = c.model().await;
    assert_eq!(m.versions[&1].stage, Stage::Production);
    assert_eq!(
        m.versions[&1]
            .tags
            .get("modelsync.promoted-at.Production")
            .map(String::as_str),
        Some("2026-11-02T01:00:00Z")
    );
}

async fn hand_moved_version_fails_soak(b: Backend) {
    let c = Ctx::new(b, "gate-hand");
    c.w.write(
        "m/model.yaml",
        &manifest(
            &c.name,
            &format!(
                "  versions:\n    v: {{source: \"s3://bucket/{}/v\"}}\n",
                c.name
            ),
        ),
    );
    assert_eq!(c.run(&["apply", "m"]).code, 0);
    match c.backend {
        Backend::Mlflow => {
            server()
                .registry()
                .transition_stage(&c.name, 1, Stage::Staging)
                .await
        }
        Backend::Embedded => {
            let reg = EmbeddedRegistry::open(&c.w.registry_file(), true).expect("open");
            reg.transition_stage(&c.name, 1, Stage::Staging)
                .await
                .expect("move");
            reg.flush().await
        }
    }
    .expect("hand move");
    c.w.write(
        "m/model.yaml",
        &manifest(
            &c.name,
            &format!("  versions:\n    v: {{source: \"s3://bucket/{}/v\"}}\n  stages:\n    Production: v\n  gates:\n    Production:\n      - soak: {{stage: Staging, for: 1h}}\n", c.name),
        ),
    );
    let r = c.run(&["apply", "m"]);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stdout.contains("not moved there by modelsync"), "{r:?}");
}

/// A version moved into Production whose alias move is gate-blocked: the
/// stage's old holder is still archived (its replacement is in place), and
/// the apply says so — the blocked alias holds back only itself.
async fn a_blocked_alias_does_not_hold_back_the_stages_archival(b: Backend) {
    let c = Ctx::new(b, "gate-archive");
    let versions = format!(
        "  versions:\n    old: {{source: \"s3://bucket/{n}/old\"}}\n    cand: {{source: \"s3://bucket/{n}/cand\"}}\n",
        n = c.name
    );
    let before = format!("{versions}  stages:\n    Production: old\n");
    c.w.write("m/model.yaml", &manifest(&c.name, &before));
    assert_eq!(c.run(&["apply", "m"]).code, 0);
    let after = format!(
        "{versions}  stages:\n    Production: cand\n  aliases:\n    champion: cand\n  gates:\n    champion:\n      - requireTag: {{key: approved, value: \"true\"}}\n"
    );
    c.w.write("m/model.yaml", &manifest(&c.name, &after));
    let r = c.run(&["apply", "m"]);
    assert_eq!(r.code, 5, "the alias is blocked: {r:?}");
    assert!(!r.stdout.contains("is not in place"), "{r:?}");
    let m = c.model().await;
    let stage_of = |handle: &str| {
        m.versions
            .values()
            .find(|v| v.source.ends_with(&format!("/{handle}")))
            .map(|v| v.stage)
    };
    assert_eq!(stage_of("cand"), Some(Stage::Production), "{m:?}");
    assert_eq!(stage_of("old"), Some(Stage::Archived), "{m:?}");
    assert_eq!(m.aliases.get("champion"), None, "{m:?}");
}

crate::both!(
    metric_gate_blocks_then_passes,
    beats_the_current_champion,
    soak_and_require_tag,
    hand_moved_version_fails_soak,
    a_blocked_alias_does_not_hold_back_the_stages_archival
);
