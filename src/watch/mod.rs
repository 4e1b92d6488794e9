//! `modelsync watch`: the daemon that keeps a registry equal to a folder or
//! a git branch (`docs/daemon.md` says what users see).
//!
//! - `engine.rs`: the level-triggered, single-flight loop (triggers,
//!   coalescing, retry with backoff, shutdown); knows nothing of registries.
//! - `reconciler.rs`: the step the loop runs: fetch the source, then one
//!   `reconcile::run` pass (the same pass as `apply`); `scope.rs`: whether
//!   that pass is a full one or targeted at the models an MLflow webhook
//!   named and a new commit changed.
//! - `folder.rs`: notify watcher with debounce; git polling is a ticker.
//! - `status.rs`, `http.rs`: `/status`, `/metrics`, health, the webhook;
//!   `feed.rs`: `/feeds/MODEL/ALIAS.json`, what stands behind an alias
//!   (version, fetchable URI, pinned digest), shaped for Renovate.
//! - `mlflow_hook.rs`: `POST /hooks/mlflow` (MLflow's own signed webhooks)
//!   and registering the daemon's webhook on the server.
//! - `models.rs`, `page.rs`: per-model views and the HTML status page
//!   (`/`, `/models/NAME`); `notify.rs`: CloudEvents, Slack and GitHub
//!   commit-status notifications; `reconciler/report.rs`: what the step
//!   records for them, and the `--verify-signatures` check.
//!
//! Invariants: never two reconciles at once; an invalid manifest never
//! reaches the registry and is not retried until the source changes; the
//! registry being down applies nothing; on SIGTERM/SIGINT the running model
//! finishes, models not started are skipped, the lease is released, and the
//! daemon exits 0 (`--once`, like `apply`, exits 1). The daemon chooses no
//! exit code: [`run`] returns the last [`Verdict`] to the CLI.

pub mod engine;
pub mod feed;
pub mod folder;
pub mod http;
pub mod mlflow_hook;
pub mod models;
pub mod notify;
pub mod page;
pub mod reconciler;
pub mod scope;
pub mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tracing::info;

use crate::apply::CancelFlag;
use crate::election::Leader;
use crate::reconcile::Verdict;
use crate::source::git::{GitOptions, GitSource};
use crate::uri::without_userinfo;
use engine::{Batch, Step, Trigger, Triggers};
use reconciler::{Reconciler, Source};
use status::{Shared, Status};

/// What the HTTP handlers (`http.rs`, `page.rs`) need.
#[derive(Clone)]
pub struct App {
    pub shared: Shared,
    pub triggers: Triggers,
    /// The webhook secret; `None` accepts unsigned requests.
    pub secret: Option<crate::secret::Secret>,
}

/// How long `--once` and a shutdown wait for notifications still queued.
const NOTIFY_FLUSH: Duration = Duration::from_secs(10);

/// What to do about drift found at a resync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriftMode {
    /// Repair it.
    Heal,
    /// Only report it (log, metric, status); write nothing. A new revision
    /// is still applied.
    Warn,
}

/// Where the manifests come from.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    Folder(Vec<PathBuf>),
    Git {
        opts: GitOptions,
        interval: Duration,
    },
}

/// Everything the daemon needs.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    pub source: SourceConfig,
    pub registry_uri: String,
    /// Full reconcile period (drift check); zero disables it.
    pub resync: Duration,
    pub drift: DriftMode,
    pub listen: SocketAddr,
    pub webhook_secret: Option<crate::secret::Secret>,
    /// MLflow's own webhooks: `POST /hooks/mlflow` verifies them with this
    /// secret (`--mlflow-webhook-secret-env`); absent, the route does not exist.
    pub mlflow_webhook_secret: Option<crate::secret::Secret>,
    /// Create or update the daemon's webhook on the server, delivering here
    /// (`--register-mlflow-webhook URL`), under this name.
    pub register_mlflow_webhook: Option<(String, String)>,
    /// One reconcile, then exit with the apply exit code.
    pub once: bool,
    pub concurrency: usize,
    /// Quiet time before a burst of file changes fires a reconcile.
    pub debounce: Duration,
    /// Revision recorded for folder sources (from `MODELSYNC_REVISION` etc.).
    pub fallback_revision: Option<String>,
    /// Prune what modelsync owns and the manifests no longer declare.
    pub prune: bool,
    /// Protected targets from `--protect` (`modelsync.toml`'s are read
    /// with every fetch, from the folder or the commit).
    pub protect: Vec<String>,
    /// The clock gates are evaluated at.
    pub clock: crate::clock::EvalClock,
    /// `--leader-election`: replicas elect one leader; only it reconciles.
    pub election: Option<crate::election::ElectionConfig>,
    /// `--notify`, `--github-status`.
    pub notify: notify::NotifyConfig,
    /// `--verify-signatures --allowed-signers FILE`.
    pub signers: Option<crate::source::signature::AllowedSigners>,
    /// `--allow-non-fast-forward`: apply a verified head that does not
    /// descend from the last verified commit applied.
    pub allow_non_fast_forward: bool,
}

/// Runs the daemon (or one reconcile with `once`). Returns the verdict of
/// the last reconcile (with `once`, the one that ran) and, when it failed,
/// why; the CLI turns it into an exit code.
pub async fn run(cfg: WatchConfig) -> anyhow::Result<(Verdict, Option<String>)> {
    let (source, description) = open_source(&cfg.source);
    let shared = Shared::new(Status {
        source: description.clone(),
        registry: without_userinfo(&cfg.registry_uri),
        drift_mode: match cfg.drift {
            DriftMode::Heal => "heal".into(),
            DriftMode::Warn => "warn".into(),
        },
        ..Status::default()
    });
    let cancel = CancelFlag::default();
    let mut step = Reconciler::new(
        source,
        reconciler::Config {
            registry_uri: cfg.registry_uri.clone(),
            drift: cfg.drift,
            concurrency: cfg.concurrency,
            fallback_revision: cfg.fallback_revision.clone(),
            print: cfg.once,
            prune: cfg.prune,
            protect: cfg.protect.clone(),
            clock: cfg.clock,
            notifier: notify::Notifier::start(cfg.notify.clone()),
            signers: cfg.signers.clone(),
            allow_non_fast_forward: cfg.allow_non_fast_forward,
        },
        shared.clone(),
        cancel.clone(),
    );
    if cfg.once {
        // As `apply`: finish the model in flight, release the lease, exit 1.
        crate::shutdown::set_on_signal(&cancel);
        step.run(&Batch::of([Trigger::Startup])).await;
        step.flush_notifications(NOTIFY_FLUSH).await;
        return Ok(step.last.clone());
    }
    let election = cfg.election.clone().map(|e| {
        info!(backend = %e.backend, election = %e.name, ttl_ms = e.ttl.as_millis() as u64, "leader election: campaigning");
        crate::election::Election::start(e)
    });
    if let Some(e) = &election {
        step.elect(e.subscribe());
    }
    let served = serve(
        &cfg,
        &mut step,
        shared,
        cancel,
        &description,
        election.as_ref(),
    )
    .await;
    if let Some(e) = election {
        e.shutdown().await;
    }
    served?;
    step.flush_notifications(NOTIFY_FLUSH).await;
    Ok((Verdict::Ok, None))
}

/// The source to read and how `/status` names it.
fn open_source(cfg: &SourceConfig) -> (Source, String) {
    match cfg {
        SourceConfig::Folder(paths) => {
            let d = paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            (Source::Folder(paths.clone()), d)
        }
        SourceConfig::Git { opts, .. } => {
            let git = GitSource::new(opts.clone());
            let d = git.describe();
            (Source::Git(Some(git)), d)
        }
    }
}

/// The long-running daemon: HTTP endpoints, the source's triggers, the
/// loop, until a signal stops it.
async fn serve(
    cfg: &WatchConfig,
    step: &mut Reconciler,
    shared: Shared,
    cancel: CancelFlag,
    description: &str,
    election: Option<&crate::election::Election>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("listening on {}", cfg.listen))?;
    let addr = listener.local_addr().context("listener address")?;
    let triggers = Triggers::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let follower = election.map(|e| {
        tokio::spawn(follow_election(
            e.subscribe(),
            shared.clone(),
            triggers.clone(),
        ))
    });
    let app = App {
        shared,
        triggers: triggers.clone(),
        secret: cfg.webhook_secret.clone(),
    };
    let mut router = http::router(app);
    if let Some(secret) = &cfg.mlflow_webhook_secret {
        router = router.merge(mlflow_hook::router(secret.clone(), triggers.clone()));
        if let Some((url, name)) = &cfg.register_mlflow_webhook {
            mlflow_hook::register(&cfg.registry_uri, name, url, secret).await?;
        }
    }
    let router = router.layer(axum::middleware::map_response(http::refuse_leaks));
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = server_stop.wait_for(|s| *s).await;
        };
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    });
    let _watcher = match &cfg.source {
        SourceConfig::Folder(paths) => Some(folder::watch(paths, triggers.clone(), cfg.debounce)?),
        SourceConfig::Git { .. } => None,
    };
    let tickers = spawn_tickers(cfg, &triggers);
    tokio::spawn(on_signal(cancel, triggers.clone(), stop_tx));
    info!(
        listen = %addr,
        source = %description,
        registry = %without_userinfo(&cfg.registry_uri),
        "modelsync watch started"
    );
    triggers.fire(Trigger::Startup);
    engine::run_loop(
        step,
        &triggers,
        crate::backoff::Backoff::standard(),
        stop_rx,
    )
    .await;
    for t in tickers.into_iter().chain(follower) {
        t.abort();
    }
    if tokio::time::timeout(Duration::from_secs(2), server)
        .await
        .is_err()
    {
        tracing::debug!("HTTP connections still open at shutdown; closing them");
    }
    info!("modelsync watch stopped");
    Ok(())
}

/// Mirrors the election into `/status` and `/metrics`, and fires a
/// reconcile when this replica becomes the leader. Also wakes every TTL/3:
/// a fence whose deadline passed ends the leadership without a message.
async fn follow_election(
    mut rx: watch::Receiver<crate::election::View>,
    shared: Shared,
    triggers: Triggers,
) {
    let mut leading = false;
    loop {
        let v = rx.borrow_and_update().clone();
        let now = v.fence().is_some();
        {
            let mut state = shared.lock();
            let s = &mut state.status;
            s.role = Some(v.role().to_string());
            (s.leader, s.epoch) = match v.leader_at(crate::clock::wall_ms()) {
                Leader::Known { identity, epoch } => (Some(identity), epoch),
                Leader::None => (None, None),
                Leader::Unknown => (Some(status::LEADER_UNKNOWN.to_string()), None),
            };
            s.since = Some(status::rfc3339_ms(v.since_ms));
            s.election_contact = Some((v.contact_ms, v.ttl.as_millis() as i64));
            state
                .metrics
                .set_leader(now, v.transitions, crate::election::requests());
        }
        if now && !leading {
            triggers.fire(Trigger::Elected);
        }
        leading = now;
        let every = (v.ttl / 3).max(Duration::from_millis(100));
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// The git poll ticker (git sources) and the resync ticker.
fn spawn_tickers(cfg: &WatchConfig, triggers: &Triggers) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tickers = Vec::new();
    if let SourceConfig::Git { interval, .. } = &cfg.source {
        tickers.extend(engine::spawn_ticker(
            triggers.clone(),
            *interval,
            Trigger::Poll,
        ));
    }
    tickers.extend(engine::spawn_ticker(
        triggers.clone(),
        cfg.resync,
        Trigger::Resync,
    ));
    tickers
}

/// On SIGTERM or SIGINT: stop taking triggers, ask a running apply to skip
/// models not started, stop the loop. A second signal exits at once.
async fn on_signal(cancel: CancelFlag, triggers: Triggers, stop: watch::Sender<bool>) {
    let which = crate::shutdown::wait_for_signal().await;
    info!(
        signal = which,
        "shutting down: finishing the model being applied"
    );
    triggers.close();
    cancel.cancel();
    let _ = stop.send(true);
    crate::shutdown::exit_on_second_signal().await;
}
