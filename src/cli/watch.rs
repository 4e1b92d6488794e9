//! `modelsync watch`: turns the flags into a [`WatchConfig`] and runs the
//! daemon (or one reconcile with `--once`).

use anyhow::{Context, bail};

use super::args::WatchArgs;
use super::{Exit, GlobalArgs, common};
use crate::reconcile::Verdict;
use crate::source::git::{GitOptions, GitSource};
use crate::watch::{self, SourceConfig, WatchConfig, http::Secret};

/// `modelsync watch`.
pub async fn run(g: &GlobalArgs, a: WatchArgs) -> anyhow::Result<Exit> {
    let source = match &a.git {
        Some(url) => SourceConfig::Git {
            opts: GitOptions {
                url: url.clone(),
                branch: a.branch.clone(),
                path: a.path.clone(),
                cache_dir: a
                    .cache_dir
                    .clone()
                    .unwrap_or_else(|| GitSource::default_cache_dir(url)),
            },
            interval: a.interval,
        },
        None => {
            let paths = common::default_paths(&a.paths);
            for p in &paths {
                if !p.exists() {
                    bail!("{}: no such file or directory", p.display());
                }
            }
            SourceConfig::Folder(paths)
        }
    };
    let webhook_secret = match &a.webhook_secret_env {
        Some(name) => {
            let value = std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .with_context(|| {
                    format!(
                        "--webhook-secret-env {name}: the environment variable {name} is not set"
                    )
                })?;
            Some(Secret(value.into_bytes()))
        }
        None => None,
    };
    let mlflow_webhook_secret = match &a.mlflow_webhook_secret_env {
        Some(name) => {
            let value = std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .with_context(|| {
                    format!(
                        "--mlflow-webhook-secret-env {name}: the environment variable {name} is not set"
                    )
                })?;
            Some(Secret(value.into_bytes()))
        }
        None => None,
    };
    let clock = crate::clock::EvalClock::from_env()?;
    let once = a.once;
    let (verdict, error) = watch::run(WatchConfig {
        source,
        registry_uri: common::registry_uri(g),
        resync: a.resync,
        drift: a.drift,
        listen: a.listen,
        webhook_secret,
        mlflow_webhook_secret,
        register_mlflow_webhook: a
            .register_mlflow_webhook
            .clone()
            .map(|url| (url, a.mlflow_webhook_name.clone())),
        once: a.once,
        concurrency: a.concurrency,
        debounce: a.debounce,
        fallback_revision: common::revision(None),
        prune: a.prune,
        protect: a.protect.protect.clone(),
        clock,
    })
    .await?;
    if once && verdict != Verdict::Ok {
        // Said whatever the log level: `--once -q` still tells why it failed.
        let why = error.unwrap_or_else(|| match verdict {
            Verdict::Blocked => "a gate blocked a move; everything else was applied".into(),
            Verdict::Unreachable => "the registry could not be reached".into(),
            _ => "the reconcile did not complete".into(),
        });
        crate::logging::error(&format!("watch --once: {why}"));
    }
    Ok(super::exit_for(verdict))
}
