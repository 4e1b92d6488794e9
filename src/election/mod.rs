//! Leader election among daemon replicas (`watch --leader-election`),
//! through an engine teams already run: etcd (`etcd.rs`, its election API)
//! or PostgreSQL (`postgres.rs`, an advisory lock). Never a home-made lock
//! on the registry.
//!
//! [`Election::start`] runs one task per daemon that connects, campaigns,
//! holds the leadership while it can renew it, steps down when it cannot,
//! and campaigns again. While this replica leads, [`View::term`] carries a
//! [`Fence`]: the term's epoch (etcd: the leader key's create revision;
//! PostgreSQL: a counter row bumped by each new leader), the namespace it
//! is valid in (engine, its incarnation — etcd's cluster id, the epoch
//! row's random id — and the election name), and a
//! [`LeaseGuard`] whose deadline is the last acknowledged renewal + TTL − a
//! margin (`crate::term`), by the wall clock. The reconcile pass is
//! fenced by it: the executor asks it before every write, and stamps the
//! epoch on each model it writes. Renewals run every TTL/3; a leader whose
//! renewals stop (a partition, a lost quorum, a SIGSTOP) passes its
//! deadline before the engine can let another replica win, and writes
//! nothing after it.
//!
//! **Invariant:** this module never talks to a registry; it only moves the
//! fence's deadline and marks it lost. A fence marked lost by the executor
//! (a model carried a newer epoch of the same namespace) makes the holder
//! step down, and the step-down is logged with that cause.

mod etcd;
mod postgres;
pub mod uri;

use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

pub use postgres::lock_key;
pub use uri::Backend;

use crate::clock::wall_ms;
use crate::term::{Fence, LeaseGuard, Namespace};

/// Requests sent to the election engine by this process (queries,
/// unary calls, keep-alive messages, streams opened).
static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Requests sent to the election engine so far
/// (`modelsync_leader_election_requests_total`).
pub fn requests() -> u64 {
    REQUESTS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Counts one request to the engine.
fn sent() {
    REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// The leader-election TTL when `--election-ttl` is not given.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15);

/// How replicas elect a leader.
#[derive(Debug, Clone)]
pub struct ElectionConfig {
    pub backend: Backend,
    /// Replicas with the same name compete (`--leader-election-name`).
    pub name: String,
    /// How long a leader that stopped renewing keeps the leadership.
    pub ttl: Duration,
}

/// What this replica knows about the election.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// This replica's identity (`host:pid:nonce`).
    pub identity: String,
    /// Set while this replica leads.
    pub term: Option<Fence>,
    /// The leader's identity, as last seen (this replica's own while it
    /// leads).
    pub leader: Option<String>,
    /// The leader's epoch, as last seen.
    pub epoch: Option<u64>,
    /// When this replica's role last changed (ms since the epoch).
    pub since_ms: i64,
    /// The last successful exchange with the engine (ms since the epoch;
    /// the start time until the first).
    pub contact_ms: i64,
    /// Role changes so far (to leader and back).
    pub transitions: u64,
    /// The TTL in force (etcd: as granted by the server).
    pub ttl: Duration,
    /// The newest leader epoch the engine reported, also while leading
    /// (a newer one than the own term's means another replica won).
    pub observed_epoch: Option<u64>,
}

impl View {
    /// Leading now: a term whose fence still allows writes.
    pub fn fence(&self) -> Option<Fence> {
        self.term.clone().filter(|f| f.check_at(wall_ms()).is_ok())
    }

    /// `leader` or `standby`.
    pub fn role(&self) -> &'static str {
        if self.fence().is_some() {
            "leader"
        } else {
            "standby"
        }
    }

    /// Whether the engine answered within the last TTL (`/healthz`).
    pub fn healthy_at(&self, now_ms: i64) -> bool {
        now_ms - self.contact_ms <= self.ttl.as_millis() as i64
    }

    /// Who leads, as this replica can tell at `now_ms`: while it leads,
    /// itself; otherwise the leader last seen — unless the engine has not
    /// answered for longer than the TTL (no quorum, a partition), when the
    /// last one seen may be long gone and the answer is
    /// [`Leader::Unknown`].
    pub fn leader_at(&self, now_ms: i64) -> Leader {
        if self.fence().is_none() && !self.healthy_at(now_ms) {
            return Leader::Unknown;
        }
        match (&self.leader, self.epoch) {
            (Some(identity), epoch) => Leader::Known {
                identity: identity.clone(),
                epoch,
            },
            (None, _) => Leader::None,
        }
    }
}

/// Who leads, as a replica reports it (`/status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leader {
    /// This replica, or the one the engine last reported.
    Known {
        identity: String,
        epoch: Option<u64>,
    },
    /// The engine reports none.
    None,
    /// The engine cannot be asked.
    Unknown,
}

/// A running election; [`Election::shutdown`] resigns and revokes.
pub struct Election {
    view: watch::Receiver<View>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Election {
    /// Starts campaigning in the background.
    pub fn start(cfg: ElectionConfig) -> Election {
        let now = wall_ms();
        let view = View {
            identity: identity(),
            since_ms: now,
            contact_ms: now,
            ttl: cfg.ttl,
            ..View::default()
        };
        let (tx, rx) = watch::channel(view);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(cfg, Ctx { view: tx }, stop_rx));
        Election {
            view: rx,
            stop,
            task,
        }
    }

    /// The current view.
    pub fn view(&self) -> View {
        self.view.borrow().clone()
    }

    /// A receiver that sees every change of the view.
    pub fn subscribe(&self) -> watch::Receiver<View> {
        self.view.clone()
    }

    /// Graceful shutdown: a leader resigns, the candidate's etcd lease is
    /// revoked (PostgreSQL: the lock is released and the session closed),
    /// so another replica takes over at once instead of after the TTL.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .is_err()
        {
            warn!("leader election: resigning timed out");
        }
    }
}

/// The task's handle on the shared view.
struct Ctx {
    view: watch::Sender<View>,
}

impl Ctx {
    fn ttl(&self) -> Duration {
        self.view.borrow().ttl
    }

    fn identity(&self) -> String {
        self.view.borrow().identity.clone()
    }

    /// The engine answered.
    fn contact(&self) {
        self.view.send_modify(|v| v.contact_ms = wall_ms());
    }

    /// The TTL the engine granted.
    fn granted(&self, ttl: Duration) {
        self.view.send_modify(|v| v.ttl = ttl);
    }

    /// Another replica (or none) leads.
    fn observed(&self, leader: Option<String>, epoch: Option<u64>) {
        self.view.send_if_modified(|v| {
            let newer = epoch.is_some() && epoch > v.observed_epoch;
            if newer {
                v.observed_epoch = epoch;
            }
            let changed = v.leader != leader || v.epoch != epoch;
            if v.term.is_none() {
                v.leader = leader;
                v.epoch = epoch;
            }
            newer || (changed && v.term.is_none())
        });
    }

    fn lead(&self, fence: Fence) {
        self.view.send_modify(|v| {
            v.leader = Some(v.identity.clone());
            v.epoch = Some(fence.epoch);
            v.term = Some(fence);
            v.since_ms = wall_ms();
            v.transitions += 1;
        });
    }

    fn stand_by(&self) {
        self.view.send_modify(|v| {
            if let Some(term) = v.term.take() {
                term.guard.lose();
                v.leader = None;
                v.since_ms = wall_ms();
                v.transitions += 1;
            }
        });
    }
}

/// What a won campaign gives: the epoch, the namespace it is valid in,
/// and when the renewal that vouches for the leadership started (wall ms).
struct Won {
    epoch: u64,
    namespace: Namespace,
    acked_ms: i64,
}

/// A connection to the engine, one per term of candidacy.
enum Session {
    Etcd(Box<etcd::Session>),
    Postgres(Box<postgres::Session>),
}

impl Session {
    async fn connect(cfg: &ElectionConfig, ctx: &Ctx) -> Result<Session, String> {
        match &cfg.backend {
            Backend::Etcd { endpoints } => etcd::Session::connect(endpoints, cfg, ctx)
                .await
                .map(|s| Session::Etcd(Box::new(s))),
            b @ Backend::Postgres { .. } => postgres::Session::connect(b, cfg, ctx)
                .await
                .map(|s| Session::Postgres(Box::new(s))),
        }
    }

    /// Waits until this replica leads.
    async fn campaign(&mut self, ctx: &Ctx) -> Result<Won, String> {
        match self {
            Session::Etcd(s) => s.campaign(ctx).await,
            Session::Postgres(s) => s.campaign(ctx).await,
        }
    }

    /// Renews the leadership into `fence` until it is lost; returns why.
    async fn hold(&mut self, fence: &Fence, ctx: &Ctx) -> String {
        match self {
            Session::Etcd(s) => s.hold(fence, ctx).await,
            Session::Postgres(s) => s.hold(fence, ctx).await,
        }
    }

    /// Graceful: resign (when leading) and revoke or unlock.
    async fn resign(self) {
        match self {
            Session::Etcd(s) => (*s).resign().await,
            Session::Postgres(s) => (*s).resign().await,
        }
    }
}

/// Connect, campaign, hold, step down; again, until `stop`.
async fn run(cfg: ElectionConfig, ctx: Ctx, mut stop: watch::Receiver<bool>) {
    let mut retry = Duration::from_millis(200);
    loop {
        if *stop.borrow() {
            return;
        }
        let connected = tokio::select! {
            s = Session::connect(&cfg, &ctx) => s,
            () = stopped(&mut stop) => return,
        };
        let mut session = match connected {
            Ok(s) => s,
            Err(e) => {
                warn!(backend = %cfg.backend, error = %e, "leader election: cannot reach the engine; retrying");
                sleep_or_stop(retry, &mut stop).await;
                retry = (retry * 2).min(cfg.ttl / 3);
                continue;
            }
        };
        retry = Duration::from_millis(200);
        let won = tokio::select! {
            w = session.campaign(&ctx) => w,
            () = stopped(&mut stop) => {
                session.resign().await;
                return;
            }
        };
        let won = match won {
            Ok(w) => w,
            Err(e) => {
                warn!(backend = %cfg.backend, error = %e, "leader election: campaign failed; reconnecting");
                drop(session);
                sleep_or_stop(retry, &mut stop).await;
                continue;
            }
        };
        let fence = Fence {
            epoch: won.epoch,
            namespace: won.namespace,
            guard: LeaseGuard::new(ctx.ttl(), won.acked_ms),
        };
        ctx.lead(fence.clone());
        info!(election = %cfg.name, epoch = won.epoch, fence = %fence.stamp().render(), identity = %ctx.identity(), "became the leader");
        let lost = tokio::select! {
            why = session.hold(&fence, &ctx) => Some(why),
            () = stopped(&mut stop) => None,
        };
        ctx.stand_by();
        match lost {
            None => {
                info!(election = %cfg.name, epoch = won.epoch, "resigning the leadership (shutdown)");
                session.resign().await;
                return;
            }
            Some(why) => {
                warn!(election = %cfg.name, epoch = won.epoch, reason = %why, "stepped down: no longer the leader");
                drop(session);
                // Let a standby that saw the leadership free win it, rather
                // than flap back at once.
                sleep_or_stop(cfg.ttl / 2, &mut stop).await;
            }
        }
    }
}

async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        () = tokio::time::sleep(d) => {}
        () = stopped(stop) => {}
    }
}

/// Resolves once a stop was asked for.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// `host:pid:nonce`, the value a leader announces.
fn identity() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!("{host}:{}:{:08x}", std::process::id(), fastrand::u32(..))
}

/// Why a leader must stop holding, when it must: the cause the executor
/// recorded (a newer epoch of its namespace on a model), else its own
/// deadline passed (`renewal`: what the engine's renewal is called).
fn fence_lost(fence: &Fence, renewal: &str) -> Option<String> {
    fence.check_at(wall_ms()).err()?;
    Some(
        fence
            .cause()
            .unwrap_or_else(|| format!("{}: no {renewal} succeeded in time", fence.lost_reason())),
    )
}

/// How often a leader renews and a standby looks: TTL/3.
fn renew_every(ttl: Duration) -> Duration {
    crate::term::renew_every(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_follows_the_fence() {
        let mut v = View {
            ttl: Duration::from_secs(3),
            contact_ms: 1_000,
            ..View::default()
        };
        assert_eq!(v.role(), "standby");
        assert!(v.healthy_at(4_000) && !v.healthy_at(4_001));
        let fence = Fence {
            epoch: 7,
            namespace: Namespace::etcd(1, "modelsync"),
            guard: LeaseGuard::new(Duration::from_secs(3), wall_ms()),
        };
        v.term = Some(fence.clone());
        assert_eq!(v.role(), "leader");
        fence.guard.lose();
        assert_eq!(v.role(), "standby", "a lost fence is no longer leading");
        assert!(v.fence().is_none());
    }

    #[test]
    fn a_standby_cut_off_from_the_engine_reports_the_leader_unknown() {
        let mut v = View {
            ttl: Duration::from_secs(3),
            contact_ms: 10_000,
            leader: Some("other:1:ab".into()),
            epoch: Some(4),
            ..View::default()
        };
        let known = Leader::Known {
            identity: "other:1:ab".into(),
            epoch: Some(4),
        };
        assert_eq!(v.leader_at(13_000), known);
        assert_eq!(v.leader_at(13_001), Leader::Unknown, "no answer for a TTL");
        v.leader = None;
        assert_eq!(v.leader_at(12_000), Leader::None);
    }

    #[test]
    fn stepping_down_loses_the_fence_and_counts_transitions() {
        let (tx, rx) = watch::channel(View {
            identity: "me".into(),
            ttl: Duration::from_secs(3),
            ..View::default()
        });
        let ctx = Ctx { view: tx };
        let fence = Fence {
            epoch: 3,
            namespace: Namespace::etcd(1, "modelsync"),
            guard: LeaseGuard::new(Duration::from_secs(3), wall_ms()),
        };
        ctx.lead(fence.clone());
        assert_eq!(rx.borrow().leader.as_deref(), Some("me"));
        ctx.observed(Some("other".into()), Some(2));
        assert_eq!(
            rx.borrow().leader.as_deref(),
            Some("me"),
            "a leader ignores observations"
        );
        ctx.stand_by();
        assert!(fence.guard.is_lost());
        assert_eq!(rx.borrow().transitions, 2);
        ctx.observed(Some("other".into()), Some(4));
        assert_eq!(rx.borrow().epoch, Some(4));
    }
}
