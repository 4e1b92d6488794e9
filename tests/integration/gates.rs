//! Promotion gates end to end through the binary, against the embedded
//! registry and the real MLflow server: metric gates blocking then passing,
//! `beats` against the current champion, soak times with an injected clock,
//! `requireTag`; a blocked move blocks only itself and apply exits 5.

use std::collections::BTreeMap;

use modelsync::registry::Registry;
use modelsync::registry::embedded::EmbeddedRegistry;
use modelsync::state::{LiveRun, Stage};

use crate::support::cli::{Run, Workdir};
use crate::support::mlflow::{server, unique};

/// Where the test runs: the registry URI and how to make runs with metrics.
pub(crate) enum Backend {
    Embedded,
    Mlflow,
}

pub(crate) struct Ctx {
    pub(crate) backend: Backend,
    pub(crate) w: Workdir,
    pub(crate) name: String,
}

impl Ctx {
    pub(crate) fn new(backend: Backend, prefix: &str) -> Ctx {
        Ctx {
            backend,
            w: Workdir::new(),
            name: unique(prefix),
        }
    }

    pub(crate) fn uri(&self) -> String {
        match self.backend {
            Backend::Embedded => self.w.registry_uri(),
            Backend::Mlflow => server().url.clone(),
        }
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        self.run_at(None, args)
    }

    pub(crate) fn run_at(&self, now: Option<&str>, args: &[&str]) -> Run {
        let uri = self.uri();
        let mut all = vec!["--registry", uri.as_str()];
        all.extend_from_slice(args);
        let mut cmd = self.w.command(&all);
        if let Some(now) = now {
            cmd.env("MODELSYNC_NOW", now);
        }
        let out = cmd.output().expect("run");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Creates a run with these metrics (or logs them again on `run_id`).
    pub(crate) fn log(&self, run_id: Option<&str>, metrics: &[(&str, f64)]) -> String {
        match self.backend {
            Backend::Mlflow => {
                let logs: String = metrics
                    .iter()
                    .map(|(k, v)| format!("c.log_metric(rid, {k:?}, {v}, step=step)\n"))
                    .collect();
                let code = format!(
                    "import mlflow\nfrom mlflow import MlflowClient\nc = MlflowClient()\n\
                     rid = {rid}\nstep = {step}\n\
                     if rid is None:\n    exp = c.get_experiment_by_name('Default')\n    rid = c.create_run(exp.experiment_id).info.run_id\n\
                     {logs}print(rid)\n",
                    rid = run_id.map(|r| format!("{r:?}")).unwrap_or("None".into()),
                    step = if run_id.is_some() { 1 } else { 0 },
                );
                server().run_python(&code).trim().to_string()
            }
            Backend::Embedded => {
                let id = run_id
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("run{:016x}", fastrand::u64(..)));
                let reg = EmbeddedRegistry::open(&self.w.registry_file(), true).expect("open");
                let metrics: BTreeMap<String, f64> =
                    metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect();
                reg.insert_run(LiveRun {
                    run_id: id.clone(),
                    experiment_id: "0".into(),
                    metrics,
                });
                futures_block(reg.flush()).expect("flush");
                id
            }
        }
    }

    pub(crate) async fn model(&self) -> modelsync::state::LiveModel {
        match self.backend {
            Backend::Mlflow => server().registry().get_model(&self.name).await,
            Backend::Embedded => {
                EmbeddedRegistry::open(&self.w.registry_file(), false)
                    .expect("open")
                    .get_model(&self.name)
                    .await
            }
        }
        .expect("read")
        .expect("model exists")
    }
}

pub(crate) fn futures_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

pub(crate) fn manifest(name: &str, body: &str) -> String {
    format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n{body}"
    )
}

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

macro_rules! both {
    ($($name:ident),*) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Embedded).await })*
        }
        mod mlflow {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Mlflow).await })*
        }
    };
}

both!(
    metric_gate_blocks_then_passes,
    beats_the_current_champion,
    soak_and_require_tag,
    hand_moved_version_fails_soak
);
