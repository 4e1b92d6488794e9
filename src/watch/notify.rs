//! Notifications of reconciles (`--notify URL`, `--github-status`): a
//! CloudEvents 1.0 JSON document (structured mode) per reconcile that
//! applied something, was blocked by a gate, failed, found drift or refused
//! an unsigned commit; Slack's message format for `slack+https://…`; and a
//! GitHub commit status on the revision.
//!
//! Deliveries never block or fail a reconcile: events go into a bounded
//! queue (full: the event is dropped with a warning) that one task drains;
//! each delivery is retried with backoff. Logs name a webhook only by
//! scheme and host (its path and query often are the secret) and never
//! show the GitHub token; reqwest errors are logged without their URL.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::models::ModelView;
use super::status::SignatureStatus;
use crate::apply::ActionResult;
use crate::uri::scheme_and_host as redact_url;

/// Events waiting for delivery at most.
const QUEUE: usize = 64;
/// Attempts per delivery (the first and the retries).
const ATTEMPTS: u32 = 5;

/// Where events go.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    pub targets: Vec<Target>,
    pub github: Option<GithubStatus>,
    /// Delay before the first retry (doubles each time); 500 ms by default.
    pub retry_base: Duration,
}

/// One `--notify` URL.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    CloudEvents(String),
    Slack(String),
}

impl Target {
    /// `slack+https://…` is Slack; any other http(s) URL gets CloudEvents.
    pub fn parse(url: &str) -> Result<Target, String> {
        let (slack, rest) = match url.strip_prefix("slack+") {
            Some(rest) => (true, rest),
            None => (false, url),
        };
        if !crate::uri::is_http(rest) {
            return Err(format!(
                "--notify {}: expected an http(s):// or slack+https:// URL",
                redact_url(url)
            ));
        }
        register_secret_parts(url);
        Ok(if slack {
            Target::Slack(rest.to_string())
        } else {
            Target::CloudEvents(rest.to_string())
        })
    }

    fn url(&self) -> &str {
        match self {
            Target::CloudEvents(u) | Target::Slack(u) => u,
        }
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({})", redact_url(self.url()))
    }
}

/// `--github-status`: the statuses endpoint and its token.
#[derive(Clone)]
pub struct GithubStatus {
    /// `https://api.github.com`, or `GITHUB_API_URL`.
    pub api: String,
    /// `owner/name`.
    pub repo: String,
    pub token: crate::secret::Secret,
}

impl std::fmt::Debug for GithubStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GithubStatus({} {}, token ***)", self.api, self.repo)
    }
}

/// What one reconcile did, as notified.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// `applied`, `blocked`, `failed`, `drift` or `unverified`.
    pub outcome: String,
    /// The revision (git commit or folder digest).
    pub revision: String,
    /// The git commit, when the source is git (for commit statuses).
    #[serde(skip)]
    pub commit: Option<String>,
    pub source: String,
    pub registry: String,
    pub models: Vec<ModelView>,
    pub actions: Vec<ActionResult>,
    /// Drift found and not repaired (`model: action` lines).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureStatus>,
    /// RFC 3339.
    pub time: String,
}

/// The sending side of the queue; cheap to clone. A notifier with no
/// targets drops every event.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    tx: Option<mpsc::Sender<Event>>,
    /// Events queued or being delivered.
    pending: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Notifier {
    /// Starts the delivery task (none when nothing is configured).
    pub fn start(cfg: NotifyConfig) -> Notifier {
        let pending = std::sync::Arc::default();
        if cfg.targets.is_empty() && cfg.github.is_none() {
            return Notifier { tx: None, pending };
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(deliver_all(cfg, rx, std::sync::Arc::clone(&pending)));
        Notifier {
            tx: Some(tx),
            pending,
        }
    }

    /// Queues an event; never waits.
    pub fn send(&self, event: Event) {
        use std::sync::atomic::Ordering::SeqCst;
        let Some(tx) = &self.tx else { return };
        self.pending.fetch_add(1, SeqCst);
        if let Err(e) = tx.try_send(event) {
            self.pending.fetch_sub(1, SeqCst);
            warn!(error = %e, "notification queue full; event dropped");
        }
    }

    /// Waits (at most `timeout`) until every queued event was delivered or
    /// given up on: before `--once` exits, and at shutdown.
    pub async fn flush(&self, timeout: Duration) {
        let start = std::time::Instant::now();
        while self.pending.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            if start.elapsed() >= timeout {
                warn!("exiting with notifications not delivered");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn deliver_all(
    cfg: NotifyConfig,
    mut rx: mpsc::Receiver<Event>,
    pending: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("modelsync/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e.without_url(), "cannot build the notification client; notifications are off");
            return;
        }
    };
    let base = if cfg.retry_base.is_zero() {
        Duration::from_millis(500)
    } else {
        cfg.retry_base
    };
    let mut last_status: Option<(String, &str)> = None;
    while let Some(event) = rx.recv().await {
        let mut sends = Vec::new();
        // A revision applied with nothing to change only sets a status.
        let targets = if event.outcome == "success" {
            &[][..]
        } else {
            &cfg.targets[..]
        };
        for t in targets {
            let (body, content_type) = match t {
                Target::CloudEvents(_) => (cloud_event(&event), "application/cloudevents+json"),
                Target::Slack(_) => (slack_message(&event), "application/json"),
            };
            let body = body.to_string();
            if withheld(&body, &redact_url(t.url())) {
                continue;
            }
            let req = client
                .post(t.url())
                .header("content-type", content_type)
                .body(body);
            sends.push(deliver(req, redact_url(t.url()), base));
        }
        if let (Some(gh), Some(commit)) = (&cfg.github, &event.commit)
            && let Some(state) = github_state(&event.outcome)
            && last_status.as_ref() != Some(&(commit.clone(), state))
        {
            last_status = Some((commit.clone(), state));
            let url = format!(
                "{}/repos/{}/statuses/{commit}",
                gh.api.trim_end_matches('/'),
                gh.repo
            );
            let body = json!({
                "state": state,
                "context": "modelsync",
                "description": truncate(&describe(&event), 140),
            });
            let name = format!("GitHub status {}@{commit}", gh.repo);
            if !withheld(&body.to_string(), &name) {
                let req = client
                    .post(&url)
                    .bearer_auth(gh.token.expose())
                    .header("accept", "application/vnd.github+json")
                    .header("x-github-api-version", "2022-11-28")
                    .json(&body);
                sends.push(deliver(req, name, base));
            }
        }
        futures_util::future::join_all(sends).await;
        pending.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// True (with a warning) when a notification's body would carry the value
/// of a secret: it is not sent.
fn withheld(body: &str, target: &str) -> bool {
    match crate::secret::check(body) {
        Ok(()) => false,
        Err(leak) => {
            warn!(target_name = %target, "notification not sent: it would carry {leak}");
            true
        }
    }
}

/// Sends one request, retrying connect errors, 429 and 5xx with backoff.
async fn deliver(req: reqwest::RequestBuilder, name: String, base: Duration) {
    for attempt in 1..=ATTEMPTS {
        let Some(r) = req.try_clone() else { return };
        let why = match r.send().await {
            Ok(resp) if resp.status().is_success() => {
                debug!(target_name = %name, attempt, "notification delivered");
                return;
            }
            Ok(resp) if resp.status().is_client_error() && resp.status().as_u16() != 429 => {
                warn!(target_name = %name, status = resp.status().as_u16(), "notification refused; not retried");
                return;
            }
            Ok(resp) => format!("HTTP {}", resp.status().as_u16()),
            Err(e) => e.without_url().to_string(),
        };
        if attempt == ATTEMPTS {
            warn!(target_name = %name, attempts = attempt, error = %why, "notification not delivered; giving up");
            return;
        }
        warn!(target_name = %name, attempt, error = %why, "notification failed; retrying");
        let jitter = fastrand::u64(0..=base.as_millis() as u64 / 2);
        tokio::time::sleep(base * 2u32.pow(attempt - 1) + Duration::from_millis(jitter)).await;
    }
}

/// The CloudEvents 1.0 structured-mode document.
pub fn cloud_event(e: &Event) -> serde_json::Value {
    let id: String = (0..16)
        .map(|_| format!("{:02x}", fastrand::u8(..)))
        .collect();
    json!({
        "specversion": "1.0",
        "id": id,
        "source": "urn:modelsync:watch",
        "type": format!("io.modelsync.reconcile.{}", e.outcome),
        "subject": e.revision,
        "time": e.time,
        "datacontenttype": "application/json",
        "data": e,
    })
}

/// Slack's incoming-webhook message: `text` (the fallback) and blocks.
pub fn slack_message(e: &Event) -> serde_json::Value {
    let mut lines = vec![format!(
        "*modelsync {}* at `{}`",
        e.outcome,
        short(&e.revision)
    )];
    for a in &e.actions {
        lines.push(format!("• {a}"));
    }
    for d in &e.drift {
        lines.push(format!("• drift: {d}"));
    }
    for m in e.models.iter().filter(|m| m.state.as_str() != "in_sync") {
        lines.push(format!("• {}: {}", m.name, m.state.as_str()));
    }
    if let Some(err) = &e.error {
        lines.push(format!("error: {err}"));
    }
    json!({
        "text": describe(e),
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": truncate(&lines.join("\n"), 2900)}}],
    })
}

/// One line: `modelsync applied abc1234: 3 action(s)` etc.
fn describe(e: &Event) -> String {
    let rev = short(&e.revision);
    match e.outcome.as_str() {
        "applied" => format!("modelsync applied {rev}: {} action(s)", e.actions.len()),
        "blocked" => {
            let models: Vec<_> = e
                .models
                .iter()
                .filter(|m| m.state.as_str() == "blocked")
                .map(|m| m.name.as_str())
                .collect();
            format!("modelsync {rev}: a gate blocked {}", models.join(", "))
        }
        // A verification's `onFailure` (the one action says what it did).
        "rolled-back" | "held" if !e.actions.is_empty() => {
            let done: Vec<_> = e.actions.iter().map(|a| a.action.as_str()).collect();
            format!("modelsync {}: {}", e.outcome, done.join("; "))
        }
        "held" => {
            let models: Vec<_> = (e.models.iter())
                .filter(|m| m.state.as_str() == "held")
                .map(|m| m.name.as_str())
                .collect();
            format!("modelsync {rev}: held by a rollback: {}", models.join(", "))
        }
        "frozen" => {
            let why = e
                .models
                .iter()
                .find_map(|m| match &m.state {
                    super::models::ModelState::Frozen { freeze, .. } => Some(freeze.as_str()),
                    _ => None,
                })
                .unwrap_or("frozen");
            format!("modelsync {rev}: moves stopped, the registry is {why}")
        }
        "drift" => format!(
            "modelsync found drift at {rev}: {} action(s)",
            e.drift.len()
        ),
        other => format!(
            "modelsync {other} at {rev}: {}",
            e.error.as_deref().unwrap_or("see the daemon's status")
        ),
    }
}

/// GitHub's state for an outcome (drift is about an applied revision: no
/// new status).
fn github_state(outcome: &str) -> Option<&'static str> {
    match outcome {
        "applied" | "success" | "held" => Some("success"),
        "blocked" | "frozen" => Some("pending"),
        "failed" | "unverified" => Some("failure"),
        _ => None,
    }
}

fn short(rev: &str) -> &str {
    if rev.len() == 40 { &rev[..7] } else { rev }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

/// Registers what [`redact_url`] (`uri::scheme_and_host`) leaves out of a `--notify` URL — its path
/// and query, and a password in it — as a secret (named by the URL as
/// logs show it), so that no published text carries them. A path too short
/// to be looked for (`/hook`) is no secret worth a warning.
fn register_secret_parts(url: &str) {
    let name = format!("the path of --notify {}", redact_url(url));
    crate::uri::register_password(&name, url);
    let Some((_, rest)) = url.split_once("://") else {
        return;
    };
    if let Some(i) = rest.find(['/', '?']) {
        let secret = rest[i..].split('#').next().unwrap_or("");
        let secret = secret.trim_start_matches('/');
        if secret.chars().count() >= crate::secret::MIN_LEN {
            crate::secret::register(&name, secret);
        }
    }
}

/// `owner/name` from a git URL: its last two path segments, without
/// `.git` (`https://github.com/o/n.git`, `git@github.com:o/n`, …).
pub fn repo_of(url: &str) -> Option<String> {
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map(|(_, p)| p)?,
        None => url.split_once(':').map(|(_, p)| p)?,
    };
    let mut parts = path
        .trim_end_matches('/')
        .trim_end_matches(".git")
        .rsplit('/')
        .filter(|s| !s.is_empty());
    let name = parts.next()?;
    let owner = parts.next()?;
    Some(format!("{owner}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_logged_without_their_secret_part() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T0/B0/s3cr3t"),
            "https://hooks.slack.com/…"
        );
        let t = Target::parse("slack+https://hooks.slack.com/services/T0/B0/s3cr3t").expect("ok");
        assert!(matches!(t, Target::Slack(ref u) if u.starts_with("https://hooks")));
        assert!(!format!("{t:?}").contains("s3cr3t"));
        assert!(Target::parse("ftp://x").is_err());
    }

    #[test]
    fn the_secret_parts_of_a_notify_url_are_secrets() {
        Target::parse("slack+https://hooks.slack.com/services/T0/B0/unit-s3cr3t").expect("ok");
        let leak = crate::secret::check("sent services/T0/B0/unit-s3cr3t").expect_err("a secret");
        assert_eq!(
            leak.name,
            "the path of --notify slack+https://hooks.slack.com/…"
        );
        Target::parse("https://u:unit-pw-9999@example.com/x?token=unit-q-8888").expect("ok");
        assert!(
            crate::secret::check("unit-pw-9999").is_err(),
            "the password"
        );
        assert!(
            crate::secret::check("x?token=unit-q-8888").is_err(),
            "the path and query"
        );
        assert!(
            crate::secret::check("https://hooks.slack.com").is_ok(),
            "the host is not"
        );
    }

    #[test]
    fn repository_from_the_git_url() {
        for url in [
            "https://github.com/acme/models.git",
            "https://x-access-token:t@github.com/acme/models",
            "git@github.com:acme/models.git",
            "ssh://git@github.com/acme/models.git",
            "file:///tmp/x/acme/models.git",
        ] {
            assert_eq!(repo_of(url).as_deref(), Some("acme/models"), "{url}");
        }
        assert_eq!(repo_of("https://github.com/"), None);
    }
}
