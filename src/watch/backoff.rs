//! Exponential backoff with jitter for failed reconciles (1 s doubling to
//! 5 min by default).

use std::time::Duration;

/// Delays between retries: `base * 2^n`, capped at `max`, each scaled by a
/// random factor in `[0.75, 1.0]` so that many daemons do not retry in step.
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
        let factor = 2u32.saturating_pow(self.attempt.min(31));
        let raw = self.base.saturating_mul(factor).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        raw.mul_f64(0.75 + 0.25 * self.rng.f64())
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
