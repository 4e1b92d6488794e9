//! A term: a right to write that ends at a deadline, and the arithmetic
//! behind it — for the applier lease (`registry::AnyRegistry::keep_lease`
//! renews it) and an elected daemon leader's term ([`fence`]; the election
//! renews it). Pure: no I/O, no async, no clock of its own (the guard is a
//! few atomics; the caller passes the wall-clock time, `clock::wall_ms`).
//!
//! The holder renews every TTL/3 ([`renew_every`]). Each renewal that is
//! acknowledged sets the expiry to the time the renewal started plus the
//! TTL; the holder may write until its **deadline**: the last acknowledged
//! renewal plus the TTL minus a safety margin ([`margin`]). Past it,
//! another holder may be about to take over, so this one writes nothing
//! further. A renewal that finds the right taken over, released or given
//! up marks the guard lost at once, with that cause.

pub mod fence;

pub use fence::{Fence, Namespace};

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// What the executor reports for actions not attempted after the applier
/// lease was lost.
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

/// How often the holder renews (and an elected replica's standby looks):
/// TTL/3.
pub fn renew_every(ttl: Duration) -> Duration {
    ttl / 3
}

/// The last moment (ms since the epoch, wall clock) a holder whose last
/// acknowledged renewal started at `acked_ms` may write.
pub fn deadline_ms(acked_ms: i64, ttl: Duration) -> i64 {
    acked_ms + ttl.as_millis() as i64 - margin(ttl).as_millis() as i64
}

/// Whether the holder of a term may write: held (not lost) and before its
/// deadline. Cheap (two atomic reads): ask before each write. Clones share
/// their state.
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
    /// A guard for a term taken at `taken_ms` (wall clock) for `ttl`.
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

    /// The term's time to live.
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// Records a renewal that started at `started_ms` and was acknowledged.
    /// Has no effect once lost.
    pub fn acknowledged(&self, started_ms: i64) {
        self.inner.acked_ms.fetch_max(started_ms, Ordering::SeqCst);
    }

    /// Marks the term lost (taken over, or the deadline passed).
    pub fn lose(&self) {
        self.inner.lost.store(true, Ordering::SeqCst);
    }

    /// Marks the term lost and records why (unless a cause was recorded
    /// before: the first one wins).
    pub fn lose_because(&self, cause: String) {
        let _ = self.inner.cause.set(cause);
        self.lose();
    }

    /// Why the term was lost, when a cause was recorded.
    pub fn cause(&self) -> Option<String> {
        self.inner.cause.get().cloned()
    }

    /// When the last acknowledged renewal (or the take) started, wall ms.
    pub fn acked_ms(&self) -> i64 {
        self.inner.acked_ms.load(Ordering::SeqCst)
    }

    /// True once the term was found lost.
    pub fn is_lost(&self) -> bool {
        self.inner.lost.load(Ordering::SeqCst)
    }

    /// The current deadline, ms since the epoch.
    pub fn deadline_ms(&self) -> i64 {
        deadline_ms(self.inner.acked_ms.load(Ordering::SeqCst), self.inner.ttl)
    }

    /// Whether the holder may write at `now_ms` (the wall clock); passing
    /// the deadline marks the term lost.
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

/// Why a lost applier lease stops writing, for results and the final
/// report: `lost the applier lease: <cause>`.
pub fn lost_reason(guard: &LeaseGuard) -> String {
    let cause = guard
        .cause()
        .unwrap_or_else(|| "it could not be renewed before its deadline".into());
    format!("{LOST_REASON}: {cause}")
}

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
}
