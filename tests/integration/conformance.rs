//! The registry conformance suite: the same scenarios against every
//! `Registry` implementation, so the embedded registry cannot drift from
//! MLflow's semantics unnoticed.
//!
//! Each scenario is a plain async function taking the registry and a name
//! prefix unique to the test, so scenarios can share one registry (one
//! MLflow server per test binary). [`conformance_tests!`] instantiates every
//! scenario as a `#[tokio::test]` for one registry; adding a registry is one
//! line at the bottom of this file.
//!
//! Sources are `s3://` URIs without a run, which MLflow stores verbatim
//! (`docs/mlflow-rest.md`), so the scenarios need no logged runs.

use std::collections::{BTreeMap, BTreeSet};

use modelsync::apply::{self, ApplyOptions};
use modelsync::manifest::{self, SourceFile};
use modelsync::plan::{Action, PlanContext};
use modelsync::reconcile;
use modelsync::registry::{NewVersion, Registry, RegistryError, Scope, SnapshotRequest};
use modelsync::state::{LiveModel, SmallMap, Stage, VersionStatus};

/// Calls `$m!($($pre)* ; scenario, ...)` with every scenario's name: the
/// one list of scenarios, used by [`conformance_tests!`] and [`run_all`].
macro_rules! with_scenarios {
    ($m:ident!($($pre:tt)*)) => {
        $m! {$($pre)* ;
            register_version,
            register_again_returns_same_version,
            adopt_version_registered_by_hand,
            versions_number_sequentially,
            promote_staging_then_production,
            transition_does_not_archive_others,
            alias_set_move_delete,
            tags_set_and_delete,
            descriptions,
            experiments,
            snapshot_reads_only_named_models,
            error_alias_on_missing_version,
            error_reserved_alias,
            error_duplicate_model,
            error_missing_model_or_version,
        }
    };
}

/// Instantiates every scenario for one registry:
/// `conformance_tests!(name, fixture_expr, |fixture| registry_ref_expr);`
/// The fixture expression is evaluated in each test (it may `.await`) and
/// kept alive for the test's duration; the closure-like part borrows the
/// registry from it.
macro_rules! conformance_tests {
    ($target:ident, $fixture:expr, |$fx:ident| $registry:expr) => {
        with_scenarios!(conformance_tests!(@each $target, $fixture, |$fx| $registry));
    };
    (@each $target:ident, $fixture:expr, |$fx:ident| $registry:expr; $($scenario:ident),* $(,)?) => {
        mod $target {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let $fx = $fixture;
                    let prefix = super::unique_prefix(stringify!($target), stringify!($scenario));
                    super::$scenario($registry, &prefix).await;
                }
            )*
        }
    };
}

macro_rules! define_run_all {
    (; $($scenario:ident),* $(,)?) => {
        /// Every scenario, one after the other, against `reg` (the MLflow
        /// version matrix runs them this way, one server at a time); names
        /// are prefixed with `label`.
        pub async fn run_all(reg: &impl Registry, label: &str) {
            $(
                eprintln!("conformance {label}: {}", stringify!($scenario));
                $scenario(reg, &unique_prefix(label, stringify!($scenario))).await;
            )*
        }
    };
}

with_scenarios!(define_run_all!());

conformance_tests!(
    embedded,
    crate::support::embedded::TempRegistry::new(),
    |fx| &fx.registry
);

conformance_tests!(mlflow, crate::support::mlflow::server().registry(), |fx| {
    &fx
});

/// A name prefix unique to this test and process.
fn unique_prefix(target: &str, scenario: &str) -> String {
    format!(
        "cf-{target}-{}-{}",
        scenario.replace('_', "-"),
        std::process::id()
    )
}

fn version(source: &str) -> NewVersion {
    NewVersion {
        declared_source: source.to_string(),
        source: source.to_string(),
        run_id: None,
        model_id: None,
        description: None,
        tags: BTreeMap::new(),
    }
}

fn no_tags() -> BTreeMap<String, String> {
    BTreeMap::new()
}

async fn model(reg: &impl Registry, name: &str) -> LiveModel {
    reg.get_model(name)
        .await
        .expect("get_model")
        .unwrap_or_else(|| panic!("model {name} exists"))
}

/// Creates `<p>-m` with `n` versions (`s3://modelsync-conformance/<p>/<i>`).
async fn model_with_versions(reg: &impl Registry, p: &str, n: u64) -> String {
    let name = format!("{p}-m");
    reg.create_model(&name, None, &no_tags())
        .await
        .expect("create_model");
    for i in 1..=n {
        let v = reg
            .create_version(
                &name,
                &version(&format!("s3://modelsync-conformance/{p}/{i}")),
            )
            .await;
        assert_eq!(v.expect("create_version").version, i);
    }
    name
}

pub async fn register_version(reg: &impl Registry, p: &str) {
    let name = format!("{p}-m");
    reg.create_model(&name, None, &no_tags())
        .await
        .expect("create_model");
    let mut new = version(&format!("s3://modelsync-conformance/{p}/model"));
    new.tags.insert("dataset".into(), "2026-11".into());
    new.description = Some("first version".into());
    let v = reg
        .create_version(&name, &new)
        .await
        .expect("create_version");
    assert_eq!(v.version, 1);
    assert_eq!(v.stage, Stage::None);
    assert_eq!(v.status, VersionStatus::Ready);
    assert_eq!(v.source, new.source);
    assert_eq!(v.description, "first version");
    assert_eq!(v.tags.get("dataset").map(String::as_str), Some("2026-11"));
    assert_eq!(v.tags.get("modelsync.source"), Some(&new.declared_source));
    assert!(v.creation_timestamp > 0);
    let m = model(reg, &name).await;
    assert_eq!(m.versions.len(), 1);
    assert_eq!(m.versions[&1].source, new.source);
    assert_eq!(
        m.versions[&1].tags.get("modelsync.source"),
        Some(&new.declared_source)
    );
    reg.flush().await.expect("flush");
}

pub async fn register_again_returns_same_version(reg: &impl Registry, p: &str) {
    let name = model_with_versions(reg, p, 1).await;
    let again = reg
        .create_version(
            &name,
            &version(&format!("s3://modelsync-conformance/{p}/1")),
        )
        .await;
    assert_eq!(again.expect("create_version again").version, 1);
    assert_eq!(
        model(reg, &name).await.versions.len(),
        1,
        "no second version for the same source"
    );
}

/// A version registered by hand (same source, no `modelsync.source` tag)
/// is that source's version: registering the source again answers it, and
/// a manifest declaring the source plans no registration and moves it.
pub async fn adopt_version_registered_by_hand(reg: &impl Registry, p: &str) {
    let name = format!("{p}-m");
    let source = format!("s3://modelsync-conformance/{p}/by-hand");
    reg.create_model(&name, None, &no_tags())
        .await
        .expect("create_model");
    reg.create_version(&name, &version(&source))
        .await
        .expect("create_version");
    reg.delete_version_tag(&name, 1, "modelsync.source")
        .await
        .expect("untag: as if registered by hand");
    let again = reg
        .create_version(&name, &version(&source))
        .await
        .expect("create_version again");
    assert_eq!(again.version, 1, "the version registered by hand");
    assert_eq!(
        model(reg, &name).await.versions.len(),
        1,
        "registered twice"
    );

    let yaml = format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  \
         versions:\n    cand: {{source: \"{source}\"}}\n  stages:\n    Staging: cand\n  \
         aliases:\n    champion: cand\n"
    );
    let files = [SourceFile {
        path: "model.yaml".into(),
        contents: yaml.into_bytes(),
    }];
    let desired = manifest::load(&files).expect("a valid manifest");
    let ctx = PlanContext {
        now_ms: modelsync::clock::wall_ms(),
        prune: false,
        registry: reg.uri(),
        break_glass: None,
    };
    let (_, plan) = reconcile::plan(reg, &Default::default(), &desired, &ctx)
        .await
        .expect("plan");
    let registers = plan
        .models
        .iter()
        .flat_map(|m| &m.actions)
        .any(|a| matches!(a, Action::RegisterVersion { .. }));
    assert!(!registers, "plans a second registration: {plan:#?}");
    let report = apply::execute(reg, &plan, &apply_options()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    let m = model(reg, &name).await;
    assert_eq!(m.versions.len(), 1, "registered twice: {m:#?}");
    assert_eq!(m.versions[&1].stage, Stage::Staging);
    assert_eq!(m.aliases.get("champion"), Some(&1));
    reg.flush().await.expect("flush");
}

/// How the scenarios apply a plan: no lease, no leader, no copies.
fn apply_options() -> ApplyOptions {
    ApplyOptions {
        concurrency: 1,
        revision: None,
        now_ms: modelsync::clock::wall_ms(),
        cancel: None,
        gates: Default::default(),
        lease: None,
        fence: None,
        progress: None,
        sources: Default::default(),
        approvals: Default::default(),
        break_glass: None,
    }
}

pub async fn versions_number_sequentially(reg: &impl Registry, p: &str) {
    let name = model_with_versions(reg, p, 3).await;
    let m = model(reg, &name).await;
    assert_eq!(
        m.versions.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(
        m.versions
            .values()
            .all(|v| v.stage == Stage::None && v.status == VersionStatus::Ready)
    );
}

pub async fn promote_staging_then_production(reg: &impl Registry, p: &str) {
    let name = model_with_versions(reg, p, 1).await;
    reg.transition_stage(&name, 1, Stage::Staging)
        .await
        .expect("to Staging");
    assert_eq!(model(reg, &name).await.versions[&1].stage, Stage::Staging);
    reg.transition_stage(&name, 1, Stage::Production)
        .await
        .expect("to Production");
    assert_eq!(
        model(reg, &name).await.versions[&1].stage,
        Stage::Production
    );
    reg.transition_stage(&name, 1, Stage::Archived)
        .await
        .expect("to Archived");
    assert_eq!(model(reg, &name).await.versions[&1].stage, Stage::Archived);
}

pub async fn transition_does_not_archive_others(reg: &impl Registry, p: &str) {
    let name = model_with_versions(reg, p, 2).await;
    reg.transition_stage(&name, 1, Stage::Production)
        .await
        .expect("v1");
    reg.transition_stage(&name, 2, Stage::Production)
        .await
        .expect("v2");
    let m = model(reg, &name).await;
    let holders: Vec<u64> = m.holders(Stage::Production).map(|v| v.version).collect();
    assert_eq!(holders, vec![1, 2], "both versions stay in Production");
}

pub async fn alias_set_move_delete(reg: &impl Registry, p: &str) {
    let name = model_with_versions(reg, p, 2).await;
    reg.set_alias(&name, "champion", 1).await.expect("set");
    reg.set_alias(&name, "challenger", 1)
        .await
        .expect("second alias on one version");
    assert_eq!(
        model(reg, &name).await.aliases_of(1),
        vec!["challenger", "champion"]
    );
    reg.set_alias(&name, "champion", 2).await.expect("move");
    let m = model(reg, &name).await;
    assert_eq!(m.aliases.get("champion"), Some(&2));
    assert_eq!(m.aliases.get("challenger"), Some(&1));
    reg.delete_alias(&name, "champion").await.expect("delete");
    reg.delete_alias(&name, "champion")
        .await
        .expect("delete again is fine");
    let m = model(reg, &name).await;
    assert_eq!(
        m.aliases,
        SmallMap::from_iter([("challenger".to_string(), 1)])
    );
}

pub async fn tags_set_and_delete(reg: &impl Registry, p: &str) {
    let name = format!("{p}-m");
    let tags = BTreeMap::from([("team".to_string(), "ml".to_string())]);
    reg.create_model(&name, None, &tags)
        .await
        .expect("create_model");
    reg.create_version(
        &name,
        &version(&format!("s3://modelsync-conformance/{p}/1")),
    )
    .await
    .expect("v1");
    reg.set_model_tag(&name, "team", "platform")
        .await
        .expect("overwrite");
    reg.set_model_tag(&name, "modelsync.managed", "{}")
        .await
        .expect("dotted key");
    reg.set_version_tag(&name, 1, "approved", "true")
        .await
        .expect("version tag");
    let m = model(reg, &name).await;
    assert_eq!(m.tags.get("team").map(String::as_str), Some("platform"));
    assert_eq!(
        m.tags.get("modelsync.managed").map(String::as_str),
        Some("{}")
    );
    assert_eq!(
        m.versions[&1].tags.get("approved").map(String::as_str),
        Some("true")
    );
    reg.delete_model_tag(&name, "team")
        .await
        .expect("delete model tag");
    reg.delete_model_tag(&name, "team")
        .await
        .expect("delete a missing model tag");
    reg.delete_version_tag(&name, 1, "approved")
        .await
        .expect("delete version tag");
    reg.delete_version_tag(&name, 1, "approved")
        .await
        .expect("delete a missing version tag");
    let m = model(reg, &name).await;
    assert!(!m.tags.contains_key("team"));
    assert!(!m.versions[&1].tags.contains_key("approved"));
    for bad in ["bad$key", "a//b", "..x", "a/"] {
        let err = reg
            .set_model_tag(&name, bad, "x")
            .await
            .expect_err("invalid key");
        assert!(matches!(err, RegistryError::Invalid(_)), "{bad}: {err}");
    }
    // `..` inside a key is not a path step: MLflow accepts it.
    reg.set_model_tag(&name, "a..b", "x")
        .await
        .expect("a..b is a valid key");
}

pub async fn descriptions(reg: &impl Registry, p: &str) {
    let name = format!("{p}-m");
    reg.create_model(&name, Some("original"), &no_tags())
        .await
        .expect("create_model");
    assert_eq!(model(reg, &name).await.description, "original");
    reg.update_model_description(&name, "updated")
        .await
        .expect("update model");
    reg.create_version(
        &name,
        &version(&format!("s3://modelsync-conformance/{p}/1")),
    )
    .await
    .expect("v1");
    reg.update_version_description(&name, 1, "retrained")
        .await
        .expect("update version");
    let m = model(reg, &name).await;
    assert_eq!(m.description, "updated");
    assert_eq!(m.versions[&1].description, "retrained");
}

pub async fn experiments(reg: &impl Registry, p: &str) {
    let name = format!("{p}-exp");
    let location = format!("s3://modelsync-conformance/{p}/artifacts");
    let tags = BTreeMap::from([("team".to_string(), "ml".to_string())]);
    let id = reg
        .create_experiment(&name, Some(&location), &tags)
        .await
        .expect("create_experiment");
    assert!(!id.is_empty());
    let err = reg
        .create_experiment(&name, None, &no_tags())
        .await
        .expect_err("duplicate");
    assert!(matches!(err, RegistryError::AlreadyExists(_)), "{err}");
    reg.set_experiment_tag(&id, "owner", "modelsync")
        .await
        .expect("set_experiment_tag");
    let req = SnapshotRequest {
        models: Scope::Named(BTreeSet::new()),
        experiments: BTreeSet::from([name.clone()]),
    };
    let live = reg.snapshot(&req).await.expect("snapshot");
    let exp = &live.experiments[&name];
    assert_eq!(exp.experiment_id, id);
    assert_eq!(exp.artifact_location, location);
    assert_eq!(exp.tags.get("team").map(String::as_str), Some("ml"));
    assert_eq!(exp.tags.get("owner").map(String::as_str), Some("modelsync"));
}

pub async fn snapshot_reads_only_named_models(reg: &impl Registry, p: &str) {
    let name = model_with_versions(reg, p, 2).await;
    let other = format!("{p}-other");
    reg.create_model(&other, None, &no_tags())
        .await
        .expect("other model");
    reg.transition_stage(&name, 2, Stage::Staging)
        .await
        .expect("stage");
    reg.set_alias(&name, "champion", 1).await.expect("alias");
    let req = SnapshotRequest {
        models: Scope::Named(BTreeSet::from([name.clone(), format!("{p}-absent")])),
        experiments: BTreeSet::new(),
    };
    let live = reg.snapshot(&req).await.expect("snapshot");
    assert_eq!(
        live.models.keys().cloned().collect::<Vec<_>>(),
        vec![name.clone()]
    );
    let m = &live.models[&name];
    assert_eq!(m.versions.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(m.versions[&2].stage, Stage::Staging);
    assert_eq!(
        m.aliases,
        SmallMap::from_iter([("champion".to_string(), 1)])
    );
    assert_eq!(m, &model(reg, &name).await, "snapshot and get_model agree");
}

pub async fn error_alias_on_missing_version(reg: &impl Registry, p: &str) {
    let name = model_with_versions(reg, p, 1).await;
    let err = reg
        .set_alias(&name, "champion", 99)
        .await
        .expect_err("missing version");
    assert!(matches!(err, RegistryError::NotFound(_)), "{err}");
    assert!(model(reg, &name).await.aliases.is_empty());
}

pub async fn error_reserved_alias(reg: &impl Registry, p: &str) {
    let name = model_with_versions(reg, p, 1).await;
    for alias in ["latest", "Latest", "v1", "V2", "bad alias"] {
        let err = reg.set_alias(&name, alias, 1).await.expect_err(alias);
        assert!(matches!(err, RegistryError::Invalid(_)), "{alias}: {err}");
    }
    assert!(model(reg, &name).await.aliases.is_empty());
}

pub async fn error_duplicate_model(reg: &impl Registry, p: &str) {
    let name = format!("{p}-m");
    reg.create_model(&name, None, &no_tags())
        .await
        .expect("first");
    let err = reg
        .create_model(&name, None, &no_tags())
        .await
        .expect_err("duplicate");
    assert!(matches!(err, RegistryError::AlreadyExists(_)), "{err}");
}

pub async fn error_missing_model_or_version(reg: &impl Registry, p: &str) {
    let missing = format!("{p}-absent");
    assert!(reg.get_model(&missing).await.expect("get_model").is_none());
    let err = reg
        .create_version(&missing, &version("s3://modelsync-conformance/x"))
        .await
        .expect_err("no model");
    assert!(matches!(err, RegistryError::NotFound(_)), "{err}");
    let name = model_with_versions(reg, p, 1).await;
    let err = reg
        .transition_stage(&name, 5, Stage::Production)
        .await
        .expect_err("no version");
    assert!(matches!(err, RegistryError::NotFound(_)), "{err}");
    let err = reg
        .delete_alias(&missing, "champion")
        .await
        .expect_err("no model");
    assert!(matches!(err, RegistryError::NotFound(_)), "{err}");
}
