//! The two-registry fixture: a scenario written once runs on the embedded
//! registry and on the suite's real MLflow server ([`Backend`]), through
//! the built binary in its own workdir ([`Ctx`]); [`both!`](crate::both)
//! instantiates it as one test per registry.

use std::collections::BTreeMap;

use modelsync::registry::Registry;
use modelsync::registry::embedded::EmbeddedRegistry;
use modelsync::state::LiveRun;

use crate::support::cli::{Run, Workdir};
use crate::support::mlflow::{server, unique};

/// Runs each `$name(Backend)` as a test on each registry: modules
/// `embedded` and `mlflow` in the caller, one `#[tokio::test]` each.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name($crate::support::backend::Backend::Embedded).await
            })*
        }
        mod mlflow {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name($crate::support::backend::Backend::Mlflow).await
            })*
        }
    };
}

/// Where the test runs: the registry URI and how to make runs with metrics.
pub enum Backend {
    Embedded,
    Mlflow,
}

pub struct Ctx {
    pub backend: Backend,
    pub w: Workdir,
    pub name: String,
}

impl Ctx {
    pub fn new(backend: Backend, prefix: &str) -> Ctx {
        Ctx {
            backend,
            w: Workdir::new(),
            name: unique(prefix),
        }
    }

    pub fn uri(&self) -> String {
        match self.backend {
            Backend::Embedded => self.w.registry_uri(),
            Backend::Mlflow => server().url.clone(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_at(None, args)
    }

    pub fn run_at(&self, now: Option<&str>, args: &[&str]) -> Run {
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
    pub fn log(&self, run_id: Option<&str>, metrics: &[(&str, f64)]) -> String {
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

    pub async fn model(&self) -> modelsync::state::LiveModel {
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

pub fn futures_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

pub fn manifest(name: &str, body: &str) -> String {
    format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n{body}"
    )
}
