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
//! by someone else marks it lost at once.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use tracing::{debug, warn};

use super::{AnyRegistry, RegistryError, Result, mlflow};

/// The lease's time to live when `MODELSYNC_LEASE_TTL` is unset.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// What the executor reports for actions not attempted after a loss.
pub const LOST_REASON: &str = "lost the applier lease";

/// What the executor reports for actions not attempted once an elected
/// daemon leader is no longer sure it leads.
pub const LOST_LEADERSHIP: &str = "no longer the elected leader";

/// An elected daemon leader's fence (`watch --leader-election`): its term's
/// epoch, the fencing token stamped on every model it writes
/// (`modelsync.epoch`), and a guard whose deadline the election moves with
/// each acknowledged renewal of the leadership (etcd's lease keep-alive,
/// PostgreSQL's self-check) and which the election marks lost when it
/// steps down. The executor asks it before each write, as it asks the
/// applier lease's guard. Clones share the guard.
#[derive(Debug, Clone)]
pub struct Fence {
    pub epoch: u64,
    pub guard: LeaseGuard,
}

impl Fence {
    /// Whether the leader may write now (wall clock).
    pub fn check(&self) -> Result<(), &'static str> {
        self.guard.check().map_err(|_| LOST_LEADERSHIP)
    }

    /// The epoch a model carries, from its tags (`None`: never stamped or
    /// unreadable).
    pub fn epoch_of(tags: &std::collections::BTreeMap<String, String>) -> Option<u64> {
        tags.get(crate::state::tags::EPOCH)?.parse().ok()
    }
}

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
}

impl LeaseGuard {
    /// A guard for a lease taken at `taken_ms` (wall clock) for `ttl`.
    pub fn new(ttl: Duration, taken_ms: i64) -> LeaseGuard {
        LeaseGuard {
            inner: Arc::new(Inner {
                ttl,
                acked_ms: AtomicI64::new(taken_ms),
                lost: AtomicBool::new(false),
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

/// The applier lease held on a registry, opaque to callers: keep it with
/// [`AnyRegistry::keep_lease`], ask its [`Lease::guard`] before writing,
/// release it with [`AnyRegistry::release_lease`]. On the embedded
/// registry it holds nothing (the file's exclusive lock plays that role).
#[derive(Debug)]
pub struct Lease(Option<(mlflow::lease::Lease, LeaseGuard)>);

impl Lease {
    /// What the executor asks before each write; `None` on the embedded
    /// registry, whose lock cannot be lost.
    pub fn guard(&self) -> Option<LeaseGuard> {
        self.0.as_ref().map(|(_, g)| g.clone())
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
                let guard = LeaseGuard::new(times.ttl, lease.taken_ms);
                Ok(Lease(Some((lease, guard))))
            }
        }
    }

    /// The heartbeat: renews `lease` every TTL/3 for as long as it is
    /// polled (run it beside the work the lease protects; it never ends).
    /// A failed renewal is retried sooner; one that finds another holder
    /// marks the guard lost and stops renewing.
    pub async fn keep_lease(&self, lease: &Lease) -> Infallible {
        let (AnyRegistry::Mlflow(r), Some((lease, guard))) = (self, &lease.0) else {
            return std::future::pending().await;
        };
        let every = renew_every(guard.ttl());
        let mut next = every;
        loop {
            tokio::time::sleep(next).await;
            if guard.is_lost() {
                return std::future::pending().await;
            }
            next = every;
            match tokio::time::timeout(every, r.renew_lease(lease, guard.ttl())).await {
                Ok(Ok(Some(started))) => {
                    guard.acknowledged(started);
                    debug!(lease = %lease.name, "lease renewed");
                }
                Ok(Ok(None)) => {
                    warn!(lease = %lease.name, "the applier lease was taken over by another modelsync");
                    guard.lose();
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
        }
    }

    /// Releases a lease taken by [`AnyRegistry::acquire_lease`].
    pub async fn release_lease(&self, lease: Lease) -> Result<()> {
        match (self, lease.0) {
            (AnyRegistry::Mlflow(r), Some((lease, _))) => r.release_lease(&lease).await,
            _ => Ok(()),
        }
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
