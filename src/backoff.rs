//! Exponential backoff with jitter, the one home for it: the daemon's
//! retries of a failed reconcile ([`Backoff`], 1 s doubling to 5 min) and
//! the MLflow client's retries of a failed request (its `RetryPolicy`
//! calls [`delay`]). Pure arithmetic; the caller sleeps.

use std::time::Duration;

/// The delay before retry number `attempt` (0-based): `base * 2^attempt`,
/// capped at `max`, scaled by `floor + (1 - floor) * random` (`random` in
/// `[0, 1)`), so that many clients do not retry in step. `floor` 0.5 is
/// "equal jitter" (half fixed, half random).
pub fn delay(base: Duration, max: Duration, attempt: u32, floor: f64, random: f64) -> Duration {
    let factor = 2u32.saturating_pow(attempt.min(31));
    let raw = base.saturating_mul(factor).min(max);
    raw.mul_f64(floor + (1.0 - floor) * random)
}

/// Delays between retries: [`delay`] with a random factor in
/// `[0.75, 1.0]`, counting attempts since the last success.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    /// The daemon's default: 1 s doubling to 5 min.
    pub fn standard() -> Backoff {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(300))
    }

    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max,
            attempt: 0,
            rng: fastrand::Rng::new(),
        }
    }

    /// The same backoff with a seeded random source (tests).
    pub fn with_seed(mut self, seed: u64) -> Backoff {
        self.rng = fastrand::Rng::with_seed(seed);
        self
    }

    /// The delay before the next retry; each call doubles the next one.
    pub fn next_delay(&mut self) -> Duration {
        let d = delay(self.base, self.max, self.attempt, 0.75, self.rng.f64());
        self.attempt = self.attempt.saturating_add(1);
        d
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Retries since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_one_second_and_caps_at_five_minutes() {
        let mut b = Backoff::standard().with_seed(7);
        let delays: Vec<Duration> = (0..12).map(|_| b.next_delay()).collect();
        for (n, d) in delays.iter().enumerate() {
            let raw = Duration::from_secs(1u64 << n.min(30)).min(Duration::from_secs(300));
            assert!(*d <= raw, "attempt {n}: {d:?} > {raw:?}");
            assert!(
                *d >= raw.mul_f64(0.75),
                "attempt {n}: {d:?} < 0.75 * {raw:?}"
            );
        }
        assert!(delays[11] > Duration::from_secs(224));
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }

    #[test]
    fn jitter_varies_the_delay() {
        let mut b = Backoff::new(Duration::from_secs(60), Duration::from_secs(60)).with_seed(1);
        let a = b.next_delay();
        let c = b.next_delay();
        assert_ne!(a, c);
    }
}
