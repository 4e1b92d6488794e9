//! Issue 9's behaviours of the one reconcile pass, through the built binary:
//! a cancelled apply releases the lease, the lease runs on the wall clock,
//! an unparsable `MODELSYNC_NOW` is an error, `watch --once` exits as
//! `apply` would (read-back included), `watch --prune`, `modelsync.toml`
//! read from the commit in git mode, a plan with errors writes nothing, and
//! the ownership record holds only what modelsync did. Each runs on the
//! embedded registry and the real MLflow server where both make sense.

mod errors;
mod forced_release;
mod heartbeat;
mod lease;
mod lease_cli;
mod ownership;
mod watch_once;

use std::collections::BTreeMap;

use modelsync::registry::Registry;
use modelsync::registry::embedded::EmbeddedRegistry;
use modelsync::state::{LiveModel, Stage};

use crate::support::backend::{Backend, Ctx};
use crate::support::cli::Run;
use crate::support::mlflow::server;
use crate::support::proxy::Proxy;

/// A [`Ctx`] whose MLflow runs go through a counting proxy, so each test can
/// say how many writes a step made.
pub(crate) struct Bench {
    pub(crate) c: Ctx,
    pub(crate) proxy: Option<Proxy>,
}

/// What the registry looked like at one point, to count writes since.
pub(crate) enum Mark {
    /// Requests the proxy had seen.
    Seen(usize),
    /// The embedded registry file's bytes (absent: no file).
    File(Option<Vec<u8>>),
}

impl Bench {
    pub(crate) async fn new(b: Backend, prefix: &str) -> Bench {
        let proxy = match b {
            Backend::Mlflow => Some(Proxy::start(&server().url).await),
            Backend::Embedded => None,
        };
        Bench {
            c: Ctx::new(b, prefix),
            proxy,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.c.name
    }

    /// The registry URI the binary is given (the proxy on MLflow).
    pub(crate) fn uri(&self) -> String {
        match &self.proxy {
            Some(p) => p.url.clone(),
            None => self.c.w.registry_uri(),
        }
    }

    /// A command for the binary against [`Bench::uri`].
    pub(crate) fn command(&self, args: &[&str]) -> std::process::Command {
        let uri = self.uri();
        let mut all = vec!["--registry", uri.as_str()];
        all.extend_from_slice(args);
        self.c.w.command(&all)
    }

    /// Runs the binary with extra environment and waits.
    pub(crate) fn run_env(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run modelsync");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        self.run_env(&[], args)
    }

    pub(crate) fn mark(&self) -> Mark {
        match &self.proxy {
            Some(p) => Mark::Seen(p.seen().len()),
            None => Mark::File(std::fs::read(self.c.w.registry_file()).ok()),
        }
    }

    /// Writes since `mark`: on MLflow, requests other than reads and
    /// searches (the lease's included); on the embedded registry, 1 when
    /// the file changed at all.
    pub(crate) fn writes_since(&self, mark: &Mark) -> usize {
        match (mark, &self.proxy) {
            (Mark::Seen(n), Some(p)) => p.seen()[*n..]
                .iter()
                .filter(|s| s.method != "GET" && !s.path.contains("search"))
                .count(),
            (Mark::File(before), None) => {
                usize::from(std::fs::read(self.c.w.registry_file()).ok() != *before)
            }
            _ => unreachable!("a mark of this bench"),
        }
    }

    /// Writes `m/model.yaml` for this bench's model.
    pub(crate) fn manifest(&self, body: &str) {
        self.c.w.write(
            "m/model.yaml",
            &crate::support::backend::manifest(self.name(), body),
        );
    }

    /// The model, if it exists (read without the proxy).
    pub(crate) async fn model(&self) -> Option<LiveModel> {
        self.c.model_opt(self.name()).await
    }

    /// Moves a version into a stage by hand (not through modelsync).
    pub(crate) async fn hand_move(&self, version: u64, stage: Stage) {
        match self.c.backend {
            Backend::Mlflow => {
                server()
                    .registry()
                    .transition_stage(self.name(), version, stage)
                    .await
            }
            Backend::Embedded => {
                let reg = EmbeddedRegistry::open(&self.c.w.registry_file(), true).expect("open");
                reg.transition_stage(self.name(), version, stage)
                    .await
                    .expect("move");
                reg.flush().await
            }
        }
        .expect("hand move");
    }
}

impl Ctx {
    /// Any model of this context's registry, if it exists.
    pub(crate) async fn model_opt(&self, name: &str) -> Option<LiveModel> {
        match self.backend {
            Backend::Mlflow => server().registry().get_model(name).await,
            Backend::Embedded => {
                if !self.w.registry_file().exists() {
                    return None;
                }
                EmbeddedRegistry::open(&self.w.registry_file(), false)
                    .expect("open")
                    .get_model(name)
                    .await
            }
        }
        .expect("read")
    }
}

/// The line (1-based) of the first line of `text` containing `needle`.
pub(crate) fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in {text}"))
}

/// The model's `modelsync.managed` tag, parsed (empty when absent).
pub(crate) fn managed(m: &LiveModel) -> BTreeMap<String, Vec<String>> {
    m.tags
        .get("modelsync.managed")
        .map(|raw| serde_json::from_str(raw).expect("managed is JSON"))
        .unwrap_or_default()
}
