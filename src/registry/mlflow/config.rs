//! Connection settings for an MLflow server, read from MLflow's own
//! environment variables (plus a few `MODELSYNC_HTTP_*` knobs,
//! `MODELSYNC_CREATE_SETTLE`, and the applier lease's `MODELSYNC_LEASE_*`).
//!
//! Secrets live in [`Secret`] (`crate::secret`'s, registered for the leak
//! check under the variable they came from), whose `Debug` prints `***`;
//! nothing here logs. No I/O except reading the environment and
//! certificate files.

use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Secret;

use crate::registry::{RegistryError, Result};

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Basic …` (MLFLOW_TRACKING_USERNAME/PASSWORD).
    Basic { username: String, password: Secret },
    /// `Authorization: Bearer …` (MLFLOW_TRACKING_TOKEN).
    Bearer(Secret),
}

/// Certificate verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsVerify {
    /// The platform's roots plus the CA bundle at this path
    /// (MLFLOW_TRACKING_SERVER_CERT_PATH).
    ExtraCa(PathBuf),
    /// No verification at all (MLFLOW_TRACKING_INSECURE_TLS=true).
    Insecure,
}

/// Retry and timeout knobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Re-sends after the first attempt (MODELSYNC_HTTP_MAX_RETRIES, else
    /// MLFLOW_HTTP_REQUEST_MAX_RETRIES; default 5).
    pub max_retries: u32,
    /// Give up retrying once this much time has passed since the first
    /// attempt (MODELSYNC_HTTP_RETRY_BUDGET; default 60 s).
    pub budget: Duration,
    /// First backoff; doubles per retry, with jitter
    /// (MODELSYNC_HTTP_BACKOFF; default 250 ms).
    pub initial_backoff: Duration,
    /// Longest single backoff (default 10 s).
    pub max_backoff: Duration,
    /// Per-request timeout (MODELSYNC_HTTP_TIMEOUT, else
    /// MLFLOW_HTTP_REQUEST_TIMEOUT; default 60 s).
    pub request_timeout: Duration,
    /// TCP/TLS connect timeout (default 10 s).
    pub connect_timeout: Duration,
    /// How long to wait for a PENDING_REGISTRATION version to turn READY
    /// (MODELSYNC_REGISTRATION_WAIT; default 300 s, like MLflow's client).
    pub registration_timeout: Duration,
    /// Longest poll interval while waiting for READY; polls start at a
    /// quarter of it and double (default 1 s).
    pub registration_poll: Duration,
    /// After a version create whose answer was lost was sent again: how
    /// long to watch for the first attempt landing late, a duplicate to
    /// remove before the version is used (MODELSYNC_CREATE_SETTLE; default:
    /// the request timeout).
    pub create_settle: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            budget: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            registration_timeout: Duration::from_secs(300),
            registration_poll: Duration::from_secs(1),
            create_settle: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The backoff before retry number `retry` (1-based): exponential,
    /// capped, with "equal jitter" (half fixed, half random).
    pub fn backoff(&self, retry: u32) -> Duration {
        crate::backoff::delay(
            self.initial_backoff,
            self.max_backoff,
            retry.saturating_sub(1),
            0.5,
            fastrand::f64(),
        )
    }
}

/// The applier lease (`lease.rs`): the lease model and its times, on the
/// wall clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// The lease model's name (MODELSYNC_LEASE_MODEL; default
    /// `modelsync-lease`).
    pub model: String,
    /// The lease expires this long after its last renewal
    /// (MODELSYNC_LEASE_TTL; default 30 s).
    pub ttl: Duration,
    /// Give up waiting for another holder after this long
    /// (MODELSYNC_LEASE_WAIT; default 10 min).
    pub wait: Duration,
    /// Pause between attempts (500 ms).
    pub poll: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            model: "modelsync-lease".into(),
            ttl: Duration::from_secs(30),
            wait: Duration::from_secs(600),
            poll: Duration::from_millis(500),
        }
    }
}

/// Connection settings, from MLflow's environment variables.
#[derive(Debug, Clone, Default)]
pub struct MlflowConfig {
    pub auth: Option<Auth>,
    pub tls: Option<TlsVerify>,
    /// Client certificate + key, PEM (MLFLOW_TRACKING_CLIENT_CERT_PATH).
    pub client_cert: Option<PathBuf>,
    pub retry: RetryPolicy,
    /// The MLflow workspace every request names (`X-MLFLOW-WORKSPACE`):
    /// `MLFLOW_WORKSPACE`, overridden by `--workspace` (which reaches the
    /// registry as the URI fragment `#workspace=NAME`).
    pub workspace: Option<String>,
    /// The applier lease.
    pub lease: LeaseConfig,
}

impl MlflowConfig {
    /// Reads `MLFLOW_TRACKING_TOKEN`, `MLFLOW_TRACKING_USERNAME`/`PASSWORD`,
    /// `MLFLOW_TRACKING_INSECURE_TLS`, `MLFLOW_TRACKING_SERVER_CERT_PATH`,
    /// `MLFLOW_TRACKING_CLIENT_CERT_PATH` and the `MODELSYNC_HTTP_*` knobs.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`MlflowConfig::from_env`], reading variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        Ok(MlflowConfig {
            auth: auth(&get)?,
            tls: tls(&get)?,
            client_cert: get("MLFLOW_TRACKING_CLIENT_CERT_PATH").map(PathBuf::from),
            retry: retry(&get)?,
            workspace: get("MLFLOW_WORKSPACE")
                .map(|w| w.trim().to_string())
                .filter(|w| !w.is_empty()),
            lease: lease(&get)?,
        })
    }
}

/// A variable's value (set and not empty).
type Get<'a> = dyn Fn(&str) -> Option<String> + 'a;

fn auth(get: &Get<'_>) -> Result<Option<Auth>> {
    let user = get("MLFLOW_TRACKING_USERNAME");
    let password = get("MLFLOW_TRACKING_PASSWORD");
    let token = get("MLFLOW_TRACKING_TOKEN");
    // MLflow's client prefers Basic when both username and password are set.
    match (user, password, token) {
        (Some(username), Some(password), _) => Ok(Some(Auth::Basic {
            username,
            password: Secret::named("MLFLOW_TRACKING_PASSWORD", password),
        })),
        (_, _, Some(token)) => Ok(Some(Auth::Bearer(Secret::named(
            "MLFLOW_TRACKING_TOKEN",
            token,
        )))),
        (Some(_), None, None) | (None, Some(_), None) => Err(RegistryError::Invalid(
            "set both MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"
                .into(),
        )),
        (None, None, None) => Ok(None),
    }
}

fn tls(get: &Get<'_>) -> Result<Option<TlsVerify>> {
    let insecure = match get("MLFLOW_TRACKING_INSECURE_TLS").as_deref() {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => true,
        Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => false,
        Some(v) => {
            return Err(RegistryError::Invalid(format!(
                "MLFLOW_TRACKING_INSECURE_TLS must be true or false, not {v:?}"
            )));
        }
    };
    match (insecure, get("MLFLOW_TRACKING_SERVER_CERT_PATH")) {
        (true, Some(_)) => Err(RegistryError::Invalid(
            "MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH cannot both be set"
                .into(),
        )),
        (true, None) => Ok(Some(TlsVerify::Insecure)),
        (false, Some(path)) => Ok(Some(TlsVerify::ExtraCa(PathBuf::from(path)))),
        (false, None) => Ok(None),
    }
}

fn retry(get: &Get<'_>) -> Result<RetryPolicy> {
    let mut retry = RetryPolicy::default();
    if let Some(n) = number(
        get,
        &[
            "MODELSYNC_HTTP_MAX_RETRIES",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
        ],
    )? {
        retry.max_retries = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(d) = duration(get, "MODELSYNC_HTTP_RETRY_BUDGET")? {
        retry.budget = d;
    }
    if let Some(d) = duration(get, "MODELSYNC_HTTP_BACKOFF")? {
        retry.initial_backoff = d;
    }
    if let Some(d) = duration(get, "MODELSYNC_REGISTRATION_WAIT")? {
        retry.registration_timeout = d;
    }
    if let Some(d) = duration(get, "MODELSYNC_HTTP_TIMEOUT")? {
        retry.request_timeout = d;
    } else if let Some(secs) = number(get, &["MLFLOW_HTTP_REQUEST_TIMEOUT"])? {
        retry.request_timeout = Duration::from_secs(secs);
    }
    retry.create_settle =
        duration(get, "MODELSYNC_CREATE_SETTLE")?.unwrap_or(retry.request_timeout);
    Ok(retry)
}

/// The applier lease's settings; a zero duration is the default.
fn lease(get: &Get<'_>) -> Result<LeaseConfig> {
    let default = LeaseConfig::default();
    let positive = |key: &str| -> Result<Option<Duration>> {
        Ok(duration(get, key)?.filter(|d| !d.is_zero()))
    };
    Ok(LeaseConfig {
        model: get("MODELSYNC_LEASE_MODEL").unwrap_or(default.model),
        ttl: positive("MODELSYNC_LEASE_TTL")?.unwrap_or(default.ttl),
        wait: positive("MODELSYNC_LEASE_WAIT")?.unwrap_or(default.wait),
        poll: default.poll,
    })
}

/// The first of `keys` that is set, as a whole number.
fn number(get: &Get<'_>, keys: &[&str]) -> Result<Option<u64>> {
    for k in keys {
        if let Some(v) = get(k) {
            return v.trim().parse().map(Some).map_err(|_| {
                RegistryError::Invalid(format!("{k} must be a whole number, not {v:?}"))
            });
        }
    }
    Ok(None)
}

/// `key`, when set, as a duration.
fn duration(get: &Get<'_>, key: &str) -> Result<Option<Duration>> {
    get(key)
        .map(|v| {
            parse_duration(&v).ok_or_else(|| {
                RegistryError::Invalid(format!(
                    "{key} must be a duration such as 30s or 500ms, not {v:?}"
                ))
            })
        })
        .transpose()
}

/// `30s`, `500ms`, `2m` or a bare number of seconds.
fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    humantime::parse_duration(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<MlflowConfig> {
        MlflowConfig::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn basic_preferred_over_token_and_secrets_hidden() {
        let c = cfg(&[
            ("MLFLOW_TRACKING_USERNAME", "alice"),
            ("MLFLOW_TRACKING_PASSWORD", "hunter2"),
            ("MLFLOW_TRACKING_TOKEN", "tok-123"),
        ])
        .expect("valid");
        assert!(matches!(c.auth, Some(Auth::Basic { ref username, .. }) if username == "alice"));
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("tok-123"),
            "{dbg}"
        );
        assert!(dbg.contains("***"));
    }

    #[test]
    fn token_alone_is_bearer() {
        let c = cfg(&[("MLFLOW_TRACKING_TOKEN", "tok-123")]).expect("valid");
        assert_eq!(
            c.auth,
            Some(Auth::Bearer(Secret::named(
                "MLFLOW_TRACKING_TOKEN",
                "tok-123"
            )))
        );
        assert_eq!(format!("{:?}", c.auth), "Some(Bearer(***))");
    }

    #[test]
    fn insecure_with_ca_is_an_error() {
        let err = cfg(&[
            ("MLFLOW_TRACKING_INSECURE_TLS", "true"),
            ("MLFLOW_TRACKING_SERVER_CERT_PATH", "/ca.pem"),
        ])
        .expect_err("conflict");
        assert!(err.to_string().contains("cannot both be set"), "{err}");
        assert_eq!(
            cfg(&[("MLFLOW_TRACKING_INSECURE_TLS", "TRUE")])
                .expect("ok")
                .tls,
            Some(TlsVerify::Insecure)
        );
        assert!(cfg(&[("MLFLOW_TRACKING_INSECURE_TLS", "yes please")]).is_err());
    }

    #[test]
    fn knobs_parse() {
        let c = cfg(&[
            ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"),
            ("MODELSYNC_HTTP_TIMEOUT", "1500ms"),
            ("MODELSYNC_HTTP_RETRY_BUDGET", "5"),
        ])
        .expect("valid");
        assert_eq!(c.retry.max_retries, 2);
        assert_eq!(c.retry.request_timeout, Duration::from_millis(1500));
        assert_eq!(
            c.retry.create_settle,
            Duration::from_millis(1500),
            "the settle time follows the request timeout"
        );
        assert_eq!(c.retry.budget, Duration::from_secs(5));
        assert!(cfg(&[("MODELSYNC_HTTP_MAX_RETRIES", "many")]).is_err());
        let c = cfg(&[("MODELSYNC_CREATE_SETTLE", "5s")]).expect("valid");
        assert_eq!(c.retry.create_settle, Duration::from_secs(5));
        assert!(cfg(&[("MODELSYNC_CREATE_SETTLE", "soon")]).is_err());
    }

    #[test]
    fn the_applier_lease_is_configured_like_the_rest() {
        let c = cfg(&[]).expect("valid");
        assert_eq!(c.lease, LeaseConfig::default());
        assert_eq!(c.lease.model, "modelsync-lease");
        let c = cfg(&[
            ("MODELSYNC_LEASE_MODEL", "team-lease"),
            ("MODELSYNC_LEASE_TTL", "3s"),
            ("MODELSYNC_LEASE_WAIT", "2m"),
        ])
        .expect("valid");
        assert_eq!(c.lease.model, "team-lease");
        assert_eq!(c.lease.ttl, Duration::from_secs(3));
        assert_eq!(c.lease.wait, Duration::from_secs(120));
        let zero = cfg(&[("MODELSYNC_LEASE_TTL", "0s")]).expect("valid");
        assert_eq!(zero.lease.ttl, Duration::from_secs(30), "zero: the default");
        let err = cfg(&[("MODELSYNC_LEASE_WAIT", "a while")]).expect_err("unparsable");
        assert!(err.to_string().contains("MODELSYNC_LEASE_WAIT"), "{err}");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        for retry in 1..20 {
            let b = p.backoff(retry);
            let full = p
                .initial_backoff
                .saturating_mul(1 << (retry - 1).min(20))
                .min(p.max_backoff);
            assert!(
                b >= full / 2 && b <= full,
                "retry {retry}: {b:?} vs {full:?}"
            );
        }
    }
}
