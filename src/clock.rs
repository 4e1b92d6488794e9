//! The two clocks modelsync uses, kept apart on purpose.
//!
//! - The **wall clock** ([`wall_ms`]) is the machine's real time. Leases,
//!   timeouts, retries and backoff run on it, always: a lease must expire
//!   when it really expires, whatever time gates are evaluated at.
//! - The **evaluation clock** ([`EvalClock`]) is the time promotion gates
//!   and audit stamps are computed at: the wall clock, unless
//!   `MODELSYNC_NOW` (RFC 3339) sets another instant, to evaluate soak gates
//!   as of a given time (what-if plans, and tests). An unparsable
//!   `MODELSYNC_NOW` is an error, never silently ignored.

use std::time::{SystemTime, UNIX_EPOCH};

/// The variable that sets the evaluation clock.
pub const NOW_VAR: &str = "MODELSYNC_NOW";

/// Milliseconds since the Unix epoch, by the machine's real clock.
pub fn wall_ms() -> i64 {
    to_ms(SystemTime::now())
}

/// `MODELSYNC_NOW` is set but is not an RFC 3339 time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{NOW_VAR}={value:?} is not an RFC 3339 time (for example 2026-01-31T12:00:00Z): {reason}")]
pub struct BadNow {
    pub value: String,
    pub reason: String,
}

/// The time gates are evaluated at and audit tags are stamped with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalClock {
    /// A fixed instant (ms since the epoch), or `None` for the wall clock.
    fixed: Option<i64>,
}

impl EvalClock {
    /// The wall clock.
    pub fn wall() -> EvalClock {
        EvalClock { fixed: None }
    }

    /// A clock stopped at `ms` since the epoch.
    pub fn fixed(ms: i64) -> EvalClock {
        EvalClock { fixed: Some(ms) }
    }

    /// The clock `MODELSYNC_NOW` selects (the wall clock when unset or
    /// empty); an error when it is set to something unparsable.
    pub fn from_env() -> Result<EvalClock, BadNow> {
        match std::env::var(NOW_VAR) {
            Ok(v) if !v.trim().is_empty() => parse(&v).map(EvalClock::fixed),
            _ => Ok(EvalClock::wall()),
        }
    }

    /// The current evaluation time, ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.fixed.unwrap_or_else(wall_ms)
    }
}

/// `ms` since the epoch as RFC 3339 in UTC, to the second
/// (`2026-01-31T12:00:00Z`): how modelsync writes times people read.
pub fn rfc3339_seconds(ms: i64) -> String {
    let at = UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0).unsigned_abs());
    humantime::format_rfc3339_seconds(at).to_string()
}

/// `ms` since the epoch as RFC 3339 in UTC, to the millisecond
/// (`2026-01-31T12:00:00.250Z`): for times a second apart is too coarse
/// (a model reconciled by an event within a second of a full pass).
pub fn rfc3339_millis(ms: i64) -> String {
    let at = UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0).unsigned_abs());
    humantime::format_rfc3339_millis(at).to_string()
}

/// Milliseconds since the epoch of an RFC 3339 time (`Z`, or no offset).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    humantime::parse_rfc3339(s)
        .or_else(|_| humantime::parse_rfc3339_weak(s))
        .ok()
        .map(to_ms)
}

fn parse(value: &str) -> Result<i64, BadNow> {
    humantime::parse_rfc3339_weak(value.trim())
        .map(to_ms)
        .map_err(|e| BadNow {
            value: value.to_string(),
            reason: e.to_string(),
        })
}

fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_to_the_millisecond() {
        assert_eq!(rfc3339_millis(1_250), "1970-01-01T00:00:01.250Z");
        assert_eq!(parse_rfc3339(&rfc3339_millis(1_250)), Some(1_250));
    }

    #[test]
    fn parses_rfc3339_and_rejects_garbage() {
        assert_eq!(parse("1970-01-01T00:00:01Z"), Ok(1000));
        let err = parse("yesterday").unwrap_err();
        assert!(err.to_string().contains("MODELSYNC_NOW=\"yesterday\""));
    }

    #[test]
    fn rfc3339_round_trips_to_the_second() {
        assert_eq!(rfc3339_seconds(1_000), "1970-01-01T00:00:01Z");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01Z"), Some(1_000));
        assert_eq!(
            parse_rfc3339(&rfc3339_seconds(1_769_860_800_000)),
            Some(1_769_860_800_000)
        );
        assert_eq!(parse_rfc3339("tomorrow"), None);
    }

    #[test]
    fn fixed_clock_does_not_move_and_wall_clock_does() {
        let c = EvalClock::fixed(42);
        assert_eq!(c.now_ms(), 42);
        assert!(EvalClock::wall().now_ms() > 1_600_000_000_000);
    }
}
