//! Saved plans end to end through the binary, on the embedded registry and
//! the real MLflow server: a gated manifest's plan is saved and applied;
//! every kind of change made by hand between `plan --out` and
//! `apply --plan` makes the plan stale (exit 4, nothing written), for the
//! planned model, a model with no actions and an experiment alike; a plan
//! with errors is not saved.

use std::collections::{BTreeMap, BTreeSet};

use modelsync::registry::embedded::EmbeddedRegistry;
use modelsync::registry::{NewVersion, Registry, Scope, SnapshotRequest};
use modelsync::state::Stage;

use crate::support::backend::{Backend, Ctx, manifest};
use crate::support::cli::Run;
use crate::support::mlflow::server;
use crate::support::proxy::Proxy;

/// Plans and applies through one URL (a counting proxy in front of MLflow),
/// and counts the writes `apply --plan` makes.
struct Saved {
    c: Ctx,
    proxy: Option<Proxy>,
}

impl Saved {
    async fn new(b: Backend, prefix: &str) -> Saved {
        let proxy = match b {
            Backend::Mlflow => Some(Proxy::start(&server().url).await),
            Backend::Embedded => None,
        };
        Saved {
            c: Ctx::new(b, prefix),
            proxy,
        }
    }

    fn url(&self) -> String {
        self.proxy
            .as_ref()
            .map_or_else(|| self.c.uri(), |p| p.url.clone())
    }

    fn run(&self, now: &str, args: &[&str]) -> Run {
        let url = self.url();
        let mut all = vec!["--registry", url.as_str()];
        all.extend_from_slice(args);
        let out = self
            .c
            .w
            .command(&all)
            .env("MODELSYNC_NOW", now)
            .output()
            .expect("run");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// What writes look like so far: the registry file (embedded), or the
    /// number of writes through the proxy other than the applier lease's
    /// (MLflow: the lease model is created and deleted).
    fn writes(&self) -> String {
        match &self.proxy {
            None => {
                String::from_utf8_lossy(&std::fs::read(self.c.w.registry_file()).expect("registry"))
                    .into_owned()
            }
            Some(p) => p
                .seen()
                .iter()
                .filter(|s| s.method != "GET" && !s.path.contains("search"))
                .filter(|s| {
                    !s.path.contains("registered-models/create")
                        && !s.path.contains("registered-models/delete")
                })
                .count()
                .to_string(),
        }
    }

    /// Makes `change` directly in the registry (as a person would).
    async fn hand(&self, change: &Change) {
        match self.c.backend {
            Backend::Mlflow => match change {
                Change::DeleteModel(m) => {
                    server().run_python(&format!(
                        "from mlflow import MlflowClient\nMlflowClient().delete_registered_model({m:?})\n"
                    ));
                }
                _ => hand(&server().registry(), change).await,
            },
            Backend::Embedded => {
                let file = self.c.w.registry_file();
                if let Change::DeleteModel(m) = change {
                    let reg = EmbeddedRegistry::open(&file, false).expect("open");
                    let req = SnapshotRequest {
                        models: Scope::All,
                        experiments: BTreeSet::new(),
                    };
                    let mut live = reg.snapshot(&req).await.expect("snapshot");
                    drop(reg);
                    live.models.remove(m);
                    EmbeddedRegistry::write_snapshot(&file, &live).expect("write");
                    return;
                }
                let reg = EmbeddedRegistry::open(&file, true).expect("open");
                hand(&reg, change).await;
                reg.flush().await.expect("flush");
            }
        }
    }
}

/// A change made by hand between plan and apply.
#[derive(Debug)]
enum Change {
    Alias(String, &'static str, u64),
    ModelTag(String, &'static str, &'static str),
    Description(String, &'static str),
    VersionTag(String, u64, &'static str, &'static str),
    VersionDescription(String, u64, &'static str),
    ExperimentTag(String, &'static str, &'static str),
    AddVersion(String, String),
    Stage(String, u64, Stage),
    DeleteModel(String),
}

async fn hand<R: Registry>(reg: &R, change: &Change) {
    match change {
        Change::Alias(m, a, v) => reg.set_alias(m, a, *v).await,
        Change::ModelTag(m, k, v) => reg.set_model_tag(m, k, v).await,
        Change::Description(m, d) => reg.update_model_description(m, d).await,
        Change::VersionTag(m, n, k, v) => reg.set_version_tag(m, *n, k, v).await,
        Change::VersionDescription(m, n, d) => reg.update_version_description(m, *n, d).await,
        Change::ExperimentTag(e, k, v) => {
            let req = SnapshotRequest {
                models: Scope::Named(BTreeSet::new()),
                experiments: BTreeSet::from([e.clone()]),
            };
            let live = reg.snapshot(&req).await.expect("snapshot");
            let id = live.experiments[e].experiment_id.clone();
            reg.set_experiment_tag(&id, k, v).await
        }
        Change::AddVersion(m, source) => {
            let new = NewVersion {
                declared_source: source.clone(),
                source: source.clone(),
                run_id: None,
                model_id: None,
                description: None,
                tags: BTreeMap::new(),
            };
            reg.create_version(m, &new).await.map(|_| ())
        }
        Change::Stage(m, n, s) => reg.transition_stage(m, *n, *s).await,
        Change::DeleteModel(_) => unreachable!("deleted per backend"),
    }
    .expect("hand-made change");
}

const T0: &str = "2026-11-01T00:00:00Z";
const T1: &str = "2026-11-02T01:00:00Z";
const T2: &str = "2026-11-03T02:00:00Z";

/// Manifests: `name` (versions a and b, both approved; `prod` in
/// Production and behind champion, both gated by every gate kind but a
/// metric one), a model with nothing declared, and an experiment.
fn manifests(name: &str, prod: &str) -> String {
    let model = manifest(
        name,
        &format!(
            "  description: saved plan test\n  versions:\n    a: {{source: \"s3://bucket/{name}/a\", tags: {{approved: \"true\"}}}}\n    b: {{source: \"s3://bucket/{name}/b\", tags: {{approved: \"true\"}}}}\n  stages:\n    Production: {prod}\n  aliases:\n    champion: {prod}\n  gates:\n    Production:\n      - requireTag: {{key: approved, value: \"true\"}}\n      - soak: {{stage: Staging, for: 1h}}\n    champion:\n      - requireTag: {{key: approved}}\n"
        ),
    );
    let quiet = manifest(&format!("{name}-quiet"), "  description: quiet\n");
    let exp = format!(
        "apiVersion: modelsync/v1\nkind: Experiment\nmetadata:\n  name: {name}-exp\nspec:\n  tags: {{team: ml}}\n"
    );
    format!("{model}---\n{quiet}---\n{exp}")
}

/// The manifests with `Staging: v` added (and, when `prod` is `None`, no
/// Production and no champion, and so no gates: a gate must guard a
/// declared target).
fn with_staging(name: &str, prod: Option<&str>, v: &str) -> String {
    let all = manifests(name, prod.unwrap_or("a"));
    let stages = format!("  stages:\n    Staging: {v}\n");
    match prod {
        Some(_) => all.replace("  stages:\n", &stages),
        None => all
            .replace("  stages:\n    Production: a\n", &stages)
            .replace("  aliases:\n    champion: a\n", "")
            .replace(
                "  gates:\n    Production:\n      - requireTag: {key: approved, value: \"true\"}\n      - soak: {stage: Staging, for: 1h}\n    champion:\n      - requireTag: {key: approved}\n",
                "",
            ),
    }
}

/// Applies `manifests` at `now`; exit 0.
fn applied(s: &Saved, now: &str, manifests: &str) {
    s.c.w.write("m/all.yaml", manifests);
    let r = s.run(now, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
}

async fn gated_plan_is_saved_and_applied(b: Backend) {
    let s = Saved::new(b, "saved-gated").await;
    applied(&s, T0, &with_staging(&s.c.name, None, "a"));
    s.c.w.write("m/all.yaml", &manifests(&s.c.name, "a"));
    let r = s.run(T1, &["plan", "m", "--out", "plan.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let body = std::fs::read_to_string(s.c.w.path().join("plan.json")).expect("plan written");
    assert!(body.contains("\"@champion\""), "{body}");
    let r = s.run(T1, &["apply", "--plan", "plan.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let m = s.c.model().await;
    assert_eq!(m.versions[&1].stage, Stage::Production);
    assert_eq!(m.aliases.get("champion"), Some(&1));
    let r = s.run(T1, &["plan", "m", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "converged: {r:?}");
}

async fn every_hand_change_makes_the_plan_stale(b: Backend) {
    let s = Saved::new(b, "saved-stale").await;
    applied(&s, T0, &with_staging(&s.c.name, None, "a"));
    applied(&s, T1, &manifests(&s.c.name, "a"));
    applied(&s, T1, &with_staging(&s.c.name, Some("a"), "b"));
    s.c.w.write("m/all.yaml", &manifests(&s.c.name, "b"));
    let (m, quiet, exp) = (
        s.c.name.clone(),
        format!("{}-quiet", s.c.name),
        format!("{}-exp", s.c.name),
    );
    s.hand(&Change::Alias(m.clone(), "hand", 1)).await;
    let changes = [
        (
            Change::Alias(m.clone(), "hand", 2),
            "alias hand was version 1, now version 2",
        ),
        (
            Change::ModelTag(m.clone(), "owner", "x"),
            "tag owner was unset",
        ),
        (Change::Description(m.clone(), "by hand"), "description was"),
        (
            Change::VersionTag(m.clone(), 2, "reviewer", "bob"),
            "version 2 tag reviewer",
        ),
        (
            Change::VersionDescription(m.clone(), 1, "old"),
            "version 1 description",
        ),
        (
            Change::ModelTag(quiet.clone(), "owner", "x"),
            "-quiet: tag owner",
        ),
        (Change::ExperimentTag(exp, "team", "data"), "-exp: tag team"),
        (
            Change::AddVersion(m.clone(), format!("s3://bucket/{m}/hand")),
            "version 3 was added",
        ),
        (
            Change::Stage(m.clone(), 1, Stage::Archived),
            "version 1 stage was Production, now Archived",
        ),
        (Change::DeleteModel(quiet), "-quiet: existed, now does not"),
    ];
    for (change, expected) in &changes {
        let r = s.run(T2, &["plan", "m", "--out", "plan.json"]);
        assert_eq!(r.code, 0, "{change:?}: {r:?}");
        s.hand(change).await;
        let before = s.writes();
        let r = s.run(T2, &["apply", "--plan", "plan.json"]);
        assert_eq!(r.code, 4, "{change:?}: {r:?}");
        assert!(r.stderr.contains(expected), "{change:?}: {r:?}");
        assert_eq!(s.writes(), before, "{change:?}: a stale plan wrote");
    }
    let r = s.run(T2, &["plan", "m", "--out", "plan.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let before = s.writes();
    let r = s.run(T2, &["apply", "--plan", "plan.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_ne!(s.writes(), before, "the write counter counts");
    let live = s.c.model().await;
    assert_eq!(live.versions[&2].stage, Stage::Production);
    assert_eq!(live.aliases.get("champion"), Some(&2));
}

async fn a_plan_with_errors_or_invalid_manifests_is_not_saved(b: Backend) {
    let s = Saved::new(b, "saved-errors").await;
    let out = s.c.w.path().join("plan.json");
    s.c.w.write(
        "m/all.yaml",
        &manifest(&s.c.name, "  stages:\n    Production: 7\n"),
    );
    let r = s.run(T1, &["plan", "m", "--out", "plan.json"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not saved"), "{r:?}");
    assert!(!out.exists(), "a plan with errors was saved");
    s.c.w.write(
        "m/all.yaml",
        &manifest(&s.c.name, "  stages:\n    Prod: 7\n"),
    );
    let r = s.run(T1, &["plan", "m", "--out", "plan.json"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!out.exists(), "a plan of invalid manifests was saved");
}

crate::both!(
    gated_plan_is_saved_and_applied,
    every_hand_change_makes_the_plan_stale,
    a_plan_with_errors_or_invalid_manifests_is_not_saved
);
