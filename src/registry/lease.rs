//! The applier lease as the rest of modelsync sees it: a [`LeaseGuard`]
//! the executor asks before writing, and the deadline arithmetic behind it.
//!
//! The holder renews its lease every TTL/3 (the heartbeat, see
//! [`super::AnyRegistry::keep_lease`]). Each renewal that the registry
//! acknowledges sets the expiry to the time the renewal started plus the
//! TTL; the holder may write until its **deadline**: the last acknowledged
//! renewal plus the TTL minus a safety margin ([`margin`]), by the wall
//! clock. Past it, another applier may be about to take the lease over, so
//! the holder writes nothing further. A heartbeat that finds the lease held
//! by someone else, or released (`lease release --force`), marks it lost at
//! once, with that cause; the executor has it renew at once after a
//! conflict ([`HeldLease::confirm`]), which is how such a loss shows first.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tracing::{debug, info, warn};

use super::{AnyRegistry, RegistryError, Result, mlflow};

/// The lease's time to live when `MODELSYNC_LEASE_TTL` is unset.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// What the executor reports for actions not attempted after a loss.
pub const LOST_REASON: &str = "lost the applier lease";

/// What the executor reports for actions not attempted once an elected
/// daemon leader is no longer sure it leads.
pub const LOST_LEADERSHIP: &str = "no longer the elected leader";

/// The safety margin before the expiry: TTL/5, at least 2 s, but never more
/// than TTL/4 (a very short TTL, as in tests, must leave time between
/// renewals).
pub fn margin(ttl: Duration) -> Duration {
    (ttl / 5).max(Duration::from_secs(2).min(ttl / 4))
}

/// How often the heartbeat renews: TTL/3.
pub fn renew_every(ttl: Duration) -> Duration {
    ttl / 3
}

/// The last moment (ms since the epoch, wall clock) a holder whose last
/// acknowledged renewal started at `acked_ms` may write.
pub fn deadline_ms(acked_ms: i64, ttl: Duration) -> i64 {
    acked_ms + ttl.as_millis() as i64 - margin(ttl).as_millis() as i64
}

/// Whether the holder of a lease may write: held (not lost) and before its
/// deadline. Cheap (two atomic reads and the clock): ask before each write.
/// Clones share their state.
#[derive(Debug, Clone)]
pub struct LeaseGuard {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ttl: Duration,
    /// When the last acknowledged renewal (or the take) started, wall ms.
    acked_ms: AtomicI64,
    /// Latched: once lost, never held again.
    lost: AtomicBool,
    /// Why it was lost, when the one who noticed said so (the first wins).
    cause: OnceLock<String>,
}

impl LeaseGuard {
    /// A guard for a lease taken at `taken_ms` (wall clock) for `ttl`.
    pub fn new(ttl: Duration, taken_ms: i64) -> LeaseGuard {
        LeaseGuard {
            inner: Arc::new(Inner {
                ttl,
                acked_ms: AtomicI64::new(taken_ms),
                lost: AtomicBool::new(false),
                cause: OnceLock::new(),
            }),
        }
    }

    /// The lease's time to live.
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// Records a renewal that started at `started_ms` and was acknowledged.
    /// Has no effect once lost.
    pub fn acknowledged(&self, started_ms: i64) {
        self.inner.acked_ms.fetch_max(started_ms, Ordering::SeqCst);
    }

    /// Marks the lease lost (taken over, or the deadline passed).
    pub fn lose(&self) {
        self.inner.lost.store(true, Ordering::SeqCst);
    }

    /// Marks the lease lost and records why (unless a cause was recorded
    /// before: the first one wins).
    pub fn lose_because(&self, cause: String) {
        let _ = self.inner.cause.set(cause);
        self.lose();
    }

    /// Why the lease was lost, when a cause was recorded.
    pub fn cause(&self) -> Option<String> {
        self.inner.cause.get().cloned()
    }

    /// When the last acknowledged renewal (or the take) started, wall ms.
    pub fn acked_ms(&self) -> i64 {
        self.inner.acked_ms.load(Ordering::SeqCst)
    }

    /// True once the lease was found lost.
    pub fn is_lost(&self) -> bool {
        self.inner.lost.load(Ordering::SeqCst)
    }

    /// The current deadline, ms since the epoch.
    pub fn deadline_ms(&self) -> i64 {
        deadline_ms(self.inner.acked_ms.load(Ordering::SeqCst), self.inner.ttl)
    }

    /// Whether the holder may write now, by the wall clock.
    pub fn check(&self) -> Result<(), &'static str> {
        self.check_at(crate::clock::wall_ms())
    }

    /// Whether the holder may write at `now_ms`; passing the deadline
    /// marks the lease lost.
    pub fn check_at(&self, now_ms: i64) -> Result<(), &'static str> {
        if self.is_lost() {
            return Err(LOST_REASON);
        }
        if now_ms >= self.deadline_ms() {
            self.lose();
            return Err(LOST_REASON);
        }
        Ok(())
    }
}

/// The applier lease as read from the registry (`modelsync lease show`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The lease model.
    pub name: String,
    /// `host:pid:nonce`.
    pub holder: String,
    /// When it was taken, ms since the epoch (0: unknown).
    pub started_ms: i64,
    /// When it expires, ms since the epoch (0: released).
    pub expires_ms: i64,
}

impl LeaseInfo {
    /// The holder's host (the holder id's first part).
    pub fn host(&self) -> &str {
        self.holder.split(':').next().unwrap_or_default()
    }

    /// The holder's process id (the holder id's second part).
    pub fn pid(&self) -> Option<u32> {
        self.holder.split(':').nth(1).and_then(|p| p.parse().ok())
    }

    /// Held at `now_ms`: a holder and an expiry still ahead.
    pub fn held_at(&self, now_ms: i64) -> bool {
        !self.holder.is_empty() && self.expires_ms > now_ms
    }
}

/// The lease model's name: `MODELSYNC_LEASE_MODEL`, else `modelsync-lease`.
pub fn lease_model_name() -> String {
    std::env::var("MODELSYNC_LEASE_MODEL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| mlflow::lease::DEFAULT_NAME.to_string())
}

/// What a renewal of the applier lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// Still held; renewed from `started_ms` (wall clock) on.
    Renewed { started_ms: i64 },
    /// No longer held: why (released by force, taken over).
    Lost(String),
}

/// Why a lost lease stops writing, for results and the final report:
/// `lost the applier lease: <cause>`.
pub fn lost_reason(guard: &LeaseGuard) -> String {
    let cause = guard
        .cause()
        .unwrap_or_else(|| "it could not be renewed before its deadline".into());
    format!("{LOST_REASON}: {cause}")
}

/// The applier lease held on a registry, opaque to callers: keep it with
/// [`AnyRegistry::keep_lease`], hand [`Lease::held`] to the writes,
/// release it with [`AnyRegistry::release_lease`]. On the embedded
/// registry it holds nothing (the file's exclusive lock plays that role).
#[derive(Debug)]
pub struct Lease(Option<(mlflow::lease::Lease, HeldLease)>);

impl Lease {
    /// What the executor asks before each write; `None` on the embedded
    /// registry, whose lock cannot be lost.
    pub fn held(&self) -> Option<HeldLease> {
        self.0.as_ref().map(|(_, h)| h.clone())
    }
}

/// The executor's side of a held applier lease: the guard it asks before
/// each write, and [`HeldLease::confirm`], which has the heartbeat renew
/// at once — asked after a conflict, which is how a forced release or a
/// take-over by another applier shows up first. Clones share both.
#[derive(Debug, Clone)]
pub struct HeldLease {
    guard: LeaseGuard,
    recheck: Arc<Recheck>,
}

/// The executor asks for a renewal now; the heartbeat says it tried.
#[derive(Debug, Default)]
struct Recheck {
    asked: tokio::sync::Notify,
    answered: tokio::sync::Notify,
}

impl HeldLease {
    /// The guard the writes ask.
    pub fn guard(&self) -> &LeaseGuard {
        &self.guard
    }

    /// Has the heartbeat renew now and waits (at most TTL/3) for a renewal
    /// that started after the question: `Err` with [`lost_reason`] when the
    /// lease turns out lost (or its deadline passed meanwhile).
    pub async fn confirm(&self) -> Result<(), String> {
        let asked = crate::clock::wall_ms();
        let renewed = async {
            loop {
                let answered = self.recheck.answered.notified();
                tokio::pin!(answered);
                answered.as_mut().enable();
                if self.guard.is_lost() || self.guard.acked_ms() >= asked {
                    return;
                }
                self.recheck.asked.notify_one();
                answered.await;
            }
        };
        let _ = tokio::time::timeout(renew_every(self.guard.ttl()), renewed).await;
        self.guard.check().map_err(|_| lost_reason(&self.guard))
    }
}

fn env_duration(k: &str) -> Option<Duration> {
    std::env::var(k)
        .ok()
        .and_then(|w| humantime::parse_duration(&w).ok())
        .filter(|d| !d.is_zero())
}

impl AnyRegistry {
    /// Takes the applier lease before a plan that will be applied: MLflow
    /// gets a lease model (see `mlflow::lease`); the embedded registry is
    /// already locked exclusively by `open(write: true)`. Waits up to
    /// `MODELSYNC_LEASE_WAIT` (default 10m) for another holder; the lease
    /// expires `MODELSYNC_LEASE_TTL` (default 30s) after its last renewal.
    /// Both run on the wall clock.
    pub async fn acquire_lease(&self) -> Result<Lease> {
        match self {
            AnyRegistry::Embedded(_) => Ok(Lease(None)),
            AnyRegistry::Mlflow(r) => {
                let mut times = mlflow::lease::LeaseTimes::default();
                if let Some(wait) = env_duration("MODELSYNC_LEASE_WAIT") {
                    times.wait = wait;
                }
                if let Some(ttl) = env_duration("MODELSYNC_LEASE_TTL") {
                    times.ttl = ttl;
                }
                let lease = r.acquire_lease(&lease_model_name(), times).await?;
                let held = HeldLease {
                    guard: LeaseGuard::new(times.ttl, lease.taken_ms),
                    recheck: Arc::default(),
                };
                Ok(Lease(Some((lease, held))))
            }
        }
    }

    /// The heartbeat: renews `lease` every TTL/3 — and at once when the
    /// executor asks ([`HeldLease::confirm`]) — for as long as it is polled
    /// (run it beside the work the lease protects; it never ends). A failed
    /// renewal is retried sooner; one that finds the lease released or
    /// held by another marks the guard lost, with why, and stops renewing.
    pub async fn keep_lease(&self, lease: &Lease) -> Infallible {
        let (AnyRegistry::Mlflow(r), Some((lease, held))) = (self, &lease.0) else {
            return std::future::pending().await;
        };
        let (guard, recheck) = (&held.guard, &held.recheck);
        let every = renew_every(guard.ttl());
        let mut next = every;
        loop {
            tokio::select! {
                () = tokio::time::sleep(next) => {}
                () = recheck.asked.notified() => {}
            }
            if guard.is_lost() {
                recheck.answered.notify_waiters();
                return std::future::pending().await;
            }
            next = every;
            match tokio::time::timeout(every, r.renew_lease(lease, guard.ttl())).await {
                Ok(Ok(Renewal::Renewed { started_ms })) => {
                    guard.acknowledged(started_ms);
                    debug!(lease = %lease.name, "lease renewed");
                }
                Ok(Ok(Renewal::Lost(cause))) => {
                    // Reported once, with the pass's outcome.
                    info!(lease = %lease.name, cause = %cause, "the applier lease is no longer held");
                    guard.lose_because(cause);
                }
                Ok(Err(e)) => {
                    warn!(lease = %lease.name, error = %e, "could not renew the applier lease; retrying");
                    next = every / 3;
                }
                Err(_) => {
                    warn!(lease = %lease.name, "renewing the applier lease timed out; retrying");
                    next = every / 3;
                }
            }
            recheck.answered.notify_waiters();
        }
    }

    /// Releases a lease taken by [`AnyRegistry::acquire_lease`]. `Ok(Some(
    /// cause))` when it turns out it was no longer held although its
    /// deadline had not passed (released by force, taken over before it
    /// expired): the writes made since were not protected by it, and the
    /// guard is marked lost with that cause. Found taken over after its
    /// deadline passed, it was simply expired: every write was made before.
    pub async fn release_lease(&self, lease: Lease) -> Result<Option<String>> {
        let (AnyRegistry::Mlflow(r), Some((lease, held))) = (self, lease.0) else {
            return Ok(None);
        };
        let believed = !held.guard.is_lost() && crate::clock::wall_ms() < held.guard.deadline_ms();
        let lost = r.release_lease(&lease).await?.filter(|_| believed);
        if let Some(cause) = &lost {
            held.guard.lose_because(cause.clone());
        }
        Ok(lost)
    }

    /// The applier lease as the registry has it: `Ok(None)` when no lease
    /// model exists; an error on the embedded registry, which has no lease
    /// but its file lock.
    pub async fn read_lease(&self) -> Result<Option<LeaseInfo>> {
        match self {
            AnyRegistry::Embedded(_) => Err(RegistryError::Invalid(EMBEDDED.into())),
            AnyRegistry::Mlflow(r) => r.read_lease(&lease_model_name()).await,
        }
    }

    /// Frees the applier lease whoever holds it.
    pub async fn force_release_lease(&self) -> Result<()> {
        match self {
            AnyRegistry::Embedded(_) => Err(RegistryError::Invalid(EMBEDDED.into())),
            AnyRegistry::Mlflow(r) => r.force_release_lease(&lease_model_name()).await,
        }
    }
}

/// Why the embedded registry has no lease to show or release.
pub const EMBEDDED: &str = "the embedded registry's applier lease is its file lock, held by an \
     apply while it runs and freed when it exits (even when killed); there is no lease to show or release";

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;

    #[test]
    fn margin_is_a_fifth_at_least_two_seconds_at_most_a_quarter() {
        assert_eq!(margin(Duration::from_secs(30)), Duration::from_secs(6));
        assert_eq!(margin(Duration::from_secs(8)), Duration::from_secs(2));
        assert_eq!(margin(Duration::from_secs(3)), Duration::from_millis(750));
        assert_eq!(
            renew_every(Duration::from_secs(30)),
            Duration::from_secs(10)
        );
        // The deadline is always after the next renewal is due.
        for secs in [1, 3, 5, 10, 30, 600] {
            let ttl = Duration::from_secs(secs);
            assert!(ttl - margin(ttl) > renew_every(ttl), "{secs} s");
        }
    }

    #[test]
    fn the_deadline_moves_with_acknowledged_renewals_only() {
        let ttl = Duration::from_secs(30);
        let g = LeaseGuard::new(ttl, 100 * S);
        assert_eq!(g.deadline_ms(), 124 * S);
        assert!(g.check_at(123 * S).is_ok());
        g.acknowledged(110 * S);
        assert_eq!(g.deadline_ms(), 134 * S);
        // An older acknowledgement arriving late does not move it back.
        g.acknowledged(105 * S);
        assert_eq!(g.deadline_ms(), 134 * S);
        assert!(g.check_at(133 * S).is_ok());
        assert_eq!(g.check_at(134 * S), Err(LOST_REASON));
    }

    #[test]
    fn a_lost_lease_stays_lost() {
        let ttl = Duration::from_secs(3);
        let g = LeaseGuard::new(ttl, 0);
        let shared = g.clone();
        assert!(g.check_at(2_249).is_ok());
        assert!(g.check_at(2_250).is_err());
        shared.acknowledged(2_000);
        assert!(g.check_at(2_300).is_err(), "renewed too late");
        let h = LeaseGuard::new(ttl, 0);
        h.lose();
        assert!(h.check_at(1).is_err());
    }

    #[test]
    fn a_lost_lease_keeps_the_first_cause_and_says_it() {
        let g = LeaseGuard::new(Duration::from_secs(30), 0);
        assert_eq!(g.cause(), None);
        g.lose_because("it was released while this apply ran".into());
        g.lose_because("another modelsync took it over (x:1:ab)".into());
        assert!(g.is_lost());
        assert_eq!(
            lost_reason(&g),
            "lost the applier lease: it was released while this apply ran"
        );
        let late = LeaseGuard::new(Duration::from_secs(3), 0);
        assert!(late.check_at(10_000).is_err());
        assert_eq!(
            lost_reason(&late),
            "lost the applier lease: it could not be renewed before its deadline"
        );
    }

    #[test]
    fn lease_info_parses_the_holder() {
        let i = LeaseInfo {
            name: "modelsync-lease".into(),
            holder: "ci-7:4242:feedface".into(),
            started_ms: 1,
            expires_ms: 10,
        };
        assert_eq!((i.host(), i.pid()), ("ci-7", Some(4242)));
        assert!(i.held_at(9) && !i.held_at(10));
    }
}
