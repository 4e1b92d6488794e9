//! `modelsync watch`: turns the flags into a [`WatchConfig`] and runs the
//! daemon (or one reconcile with `--once`).

use anyhow::{Context, bail};

use super::args::WatchArgs;
use super::{Exit, GlobalArgs, common};
use crate::reconcile::Verdict;
use crate::secret::Secret;
use crate::source::git::{GitOptions, GitSource};
use crate::watch::notify::{GithubStatus, NotifyConfig, Target, repo_of};
use crate::watch::{self, SourceConfig, WatchConfig};

/// `modelsync watch`.
pub async fn run(g: &GlobalArgs, a: WatchArgs) -> anyhow::Result<Exit> {
    let source = source_config(&a)?;
    let webhook_secret = secret_from_env("--webhook-secret-env", a.webhook_secret_env.as_deref())?;
    let mlflow_webhook_secret = secret_from_env(
        "--mlflow-webhook-secret-env",
        a.mlflow_webhook_secret_env.as_deref(),
    )?;
    let clock = crate::clock::EvalClock::from_env()?;
    let election = election_config(&a)?;
    let notify = notify_config(&a, |k| std::env::var(k).ok().filter(|v| !v.is_empty()))?;
    let signers = match &a.allowed_signers {
        Some(path) if a.verify_signatures => Some(
            crate::source::signature::load(path)
                .map_err(|e| anyhow::anyhow!("--allowed-signers: {e}"))?,
        ),
        _ => None,
    };
    let once = a.once;
    let (verdict, error) = watch::run(WatchConfig {
        source,
        registry_uri: common::registry_uri(g)?,
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
        election,
        notify,
        signers,
        allow_non_fast_forward: a.allow_non_fast_forward,
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

/// Where the manifests come from: `--git` (over a transport this build
/// has), else the folders given, which must exist.
fn source_config(a: &WatchArgs) -> anyhow::Result<SourceConfig> {
    if let Some(url) = &a.git {
        crate::uri::register_password("the password in the --git URL", url);
        if let Some(why) = crate::source::transport::unsupported_transport(url) {
            bail!(why);
        }
    }
    Ok(match &a.git {
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
    })
}

/// `--leader-election`, `--leader-election-name`, `--election-ttl`.
fn election_config(a: &WatchArgs) -> anyhow::Result<Option<crate::election::ElectionConfig>> {
    let Some(uri) = &a.leader_election else {
        return Ok(None);
    };
    let pgpassword = std::env::var("PGPASSWORD").ok();
    let backend = crate::election::uri::parse(uri, pgpassword).map_err(anyhow::Error::msg)?;
    if a.election_ttl < std::time::Duration::from_secs(1) {
        bail!("--election-ttl must be at least 1s");
    }
    if a.leader_election_name.is_empty() {
        bail!("--leader-election-name must not be empty");
    }
    Ok(Some(crate::election::ElectionConfig {
        backend,
        name: a.leader_election_name.clone(),
        ttl: a.election_ttl,
    }))
}

/// `--notify` and `--github-status` (with `GITHUB_TOKEN`, `GITHUB_API_URL`
/// and `MODELSYNC_NOTIFY_RETRY_BASE` from `env`).
fn notify_config(
    a: &WatchArgs,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<NotifyConfig> {
    let targets = a
        .notify
        .iter()
        .map(|u| Target::parse(u).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let github = match (&a.git, a.github_status) {
        (Some(url), true) => {
            let token = env("GITHUB_TOKEN")
                .map(|t| Secret::named("GITHUB_TOKEN", t))
                .context("--github-status: the environment variable GITHUB_TOKEN is not set")?;
            let repo = repo_of(url).with_context(|| {
                format!(
                    "--github-status: no owner/repository in the git URL {}",
                    crate::uri::without_userinfo(url)
                )
            })?;
            let api = env("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
            Some(GithubStatus { api, repo, token })
        }
        _ => None,
    };
    let retry_base = match env("MODELSYNC_NOTIFY_RETRY_BASE") {
        Some(v) => humantime::parse_duration(&v)
            .with_context(|| format!("MODELSYNC_NOTIFY_RETRY_BASE={v}: not a duration"))?,
        None => std::time::Duration::ZERO,
    };
    Ok(NotifyConfig {
        targets,
        github,
        retry_base,
    })
}

/// The secret in the environment variable a `--…-secret-env NAME` flag
/// names; an error when it is unset or empty.
fn secret_from_env(flag: &str, name: Option<&str>) -> anyhow::Result<Option<Secret>> {
    let Some(name) = name else {
        return Ok(None);
    };
    let secret = Secret::from_env(name)
        .with_context(|| format!("{flag} {name}: the environment variable {name} is not set"))?;
    Ok(Some(secret))
}
