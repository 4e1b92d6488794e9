//! What the daemon knows about itself: the `/status` document, readiness,
//! and the counters behind `/metrics` (Prometheus text, written by hand).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::apply::ActionResult;
use crate::manifest::targets::Targets;

/// How one daemon reconcile ended: the label of
/// `modelsync_reconciles_total`, the kind of `/status`'s `last_error`, and
/// the word the reconcile's log line ends with — one vocabulary, spelled
/// once ([`RunOutcome::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Success,
    Cancelled,
    Drift,
    Invalid,
    SourceError,
    RegistryError,
    ApplyError,
    /// The head commit was refused by `--verify-signatures`.
    Unverified,
    OutputError,
}

impl RunOutcome {
    /// Every outcome, in the order `/metrics` lists them.
    pub const ALL: [RunOutcome; 9] = [
        RunOutcome::Success,
        RunOutcome::Cancelled,
        RunOutcome::Drift,
        RunOutcome::Invalid,
        RunOutcome::SourceError,
        RunOutcome::RegistryError,
        RunOutcome::ApplyError,
        RunOutcome::Unverified,
        RunOutcome::OutputError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Success => "success",
            RunOutcome::Cancelled => "cancelled",
            RunOutcome::Drift => "drift",
            RunOutcome::Invalid => "invalid",
            RunOutcome::SourceError => "source_error",
            RunOutcome::RegistryError => "registry_error",
            RunOutcome::ApplyError => "apply_error",
            RunOutcome::Unverified => "unverified",
            RunOutcome::OutputError => "output_error",
        }
    }

    /// A run that went as it should (logged at info, not warn).
    pub fn is_fine(self) -> bool {
        matches!(
            self,
            RunOutcome::Success | RunOutcome::Drift | RunOutcome::Cancelled
        )
    }
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Upper bounds (seconds) of the reconcile duration histogram.
const BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The daemon state shared by the loop and the HTTP server.
#[derive(Debug, Clone, Default)]
pub struct Shared(Arc<Mutex<State>>);

impl Shared {
    pub fn new(status: Status) -> Shared {
        Shared(Arc::new(Mutex::new(State {
            status,
            metrics: Metrics::default(),
            live: BTreeMap::new(),
            feeds: Default::default(),
        })))
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().expect("daemon state lock poisoned")
    }
}

/// Status and metrics together, under one lock.
#[derive(Debug, Default)]
pub struct State {
    pub status: Status,
    pub metrics: Metrics,
    /// The registry's reading of each declared model at the last pass
    /// (for `/models/NAME`'s history).
    pub live: BTreeMap<String, crate::state::LiveModel>,
    /// What stands behind each alias of those models (`/feeds/…`).
    pub feeds: super::feed::Feeds,
}

/// `GET /status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// The folder(s) or `git URL@branch:path` being watched.
    pub source: String,
    /// The registry URI (no credentials).
    pub registry: String,
    /// `heal` or `warn`.
    pub drift_mode: String,
    /// The revision (git commit, or `sha256:` of the folder's manifests) of
    /// the last successful reconcile.
    pub last_applied_revision: Option<String>,
    /// The revision the last reconcile tried (differs while one fails).
    pub last_attempted_revision: Option<String>,
    pub last_error: Option<LastError>,
    /// RFC 3339 time of the last successful reconcile.
    pub last_success_at: Option<String>,
    pub pending_drift: Drift,
    /// Per-action results of the last reconcile that applied something.
    pub last_actions: Vec<ActionResult>,
    /// Reconciles run so far (every outcome).
    pub reconciles: u64,
    /// Whether the last reconcile that needed the registry reached it.
    pub registry_reachable: Option<bool>,
    /// `/readyz`: a reconcile succeeded and the registry is reachable (a
    /// standby: its source was read).
    pub ready: bool,
    /// With `--leader-election`: `leader` or `standby`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The leader's identity (`host:pid:nonce`), as last seen; absent
    /// when the engine reports none; [`LEADER_UNKNOWN`] when the engine has
    /// not answered for longer than the TTL (no quorum, a partition).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// The leader's epoch (fencing token), as last seen; absent when the
    /// leader is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// RFC 3339 time this replica's role last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// When the election engine last answered and the TTL (ms), for
    /// `/healthz`.
    #[serde(skip)]
    pub election_contact: Option<(i64, i64)>,
    /// Every declared model at the last pass: holders, aliases, and in
    /// sync / drifted / blocked / failed.
    pub models: Vec<super::models::ModelView>,
    /// The commit of `last_applied_revision` (git sources).
    pub last_applied_commit: Option<crate::source::git::CommitInfo>,
    /// The commit of `last_attempted_revision` (git sources).
    pub last_attempted_commit: Option<crate::source::git::CommitInfo>,
    /// The signature check of the head commit (`--verify-signatures`).
    pub signature: Option<SignatureStatus>,
    /// Per-action results of recent reconciles, newest first (at most
    /// [`RECENT_ACTIONS`]).
    pub recent_actions: Vec<RecentAction>,
    /// What the last pass did with each output of `modelsync.toml`
    /// (`[outputs]`): the fields it changed, its commit or pull request,
    /// or why it wrote nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<crate::outputs::Report>,
}

/// `/status` `leader` while the election engine cannot be asked.
pub const LEADER_UNKNOWN: &str = "unknown";

/// How many results `recent_actions` keeps.
pub const RECENT_ACTIONS: usize = 50;

/// One applied (or failed, blocked, skipped) action and when.
#[derive(Debug, Clone, Serialize)]
pub struct RecentAction {
    /// RFC 3339.
    pub at: String,
    pub revision: String,
    #[serde(flatten)]
    pub result: ActionResult,
}

/// The outcome of `--verify-signatures` for the head commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureStatus {
    pub commit: String,
    pub verified: bool,
    /// The principal(s) of the allowed_signers entry that verified, else
    /// the signing key's fingerprint (`SHA256:…`), when signed at all.
    pub signer: Option<String>,
    /// Why it was refused (unsigned, unknown signer, bad signature).
    pub reason: Option<String>,
}

/// The error of the last reconcile.
#[derive(Debug, Clone, Serialize)]
pub struct LastError {
    /// How the run ended (never `success`/`drift`).
    pub kind: RunOutcome,
    pub message: String,
    /// `file:line:column: message` lines for invalid manifests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<String>,
    /// RFC 3339.
    pub at: String,
}

/// Drift found by a resync and not repaired (`--drift warn`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Drift {
    pub count: usize,
    /// `model: action` lines.
    pub actions: Vec<String>,
}

impl Drift {
    /// The drift after a pass that found `found`: all of it after a full
    /// pass; after a targeted one (`targets`), the earlier lines about
    /// other models kept, those about its targets replaced.
    pub fn after(&self, targets: Option<&Targets>, found: Vec<String>) -> Drift {
        let mut actions: Vec<String> = match targets {
            None => Vec::new(),
            Some(t) => {
                let about = |line: &str, name: &str| {
                    ["", "prompt ", "access "]
                        .iter()
                        .any(|p| line.starts_with(&format!("{p}{name}: ")))
                };
                let targeted = |line: &String| {
                    t.models.iter().any(|m| about(line, m))
                        || t.experiments
                            .iter()
                            .any(|e| line.starts_with(&format!("experiment {e}: ")))
                };
                self.actions
                    .iter()
                    .filter(|l| !targeted(l))
                    .cloned()
                    .collect()
            }
        };
        actions.extend(found);
        Drift {
            count: actions.len(),
            actions,
        }
    }
}

/// Counters and gauges for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    reconciles: BTreeMap<RunOutcome, u64>,
    buckets: [u64; BUCKETS.len()],
    duration_sum: f64,
    duration_count: u64,
    last_success: Option<f64>,
    drift: u64,
    actions: BTreeMap<String, u64>,
    registry_requests: u64,
    registry_errors: u64,
    revision: Option<String>,
    /// With `--leader-election`: leading now, role changes so far, and
    /// requests sent to the engine.
    leader: Option<(bool, u64, u64)>,
    /// The head commit refused by `--verify-signatures` and its signer.
    unverified: Option<(String, String)>,
    signature_rejections: u64,
    /// Holds standing on the declared models, as last read.
    holds: u64,
    /// Verifications after a move that ended, by result.
    verifications: BTreeMap<String, u64>,
}

impl Metrics {
    /// Counts one reconcile with its outcome and duration.
    pub fn reconciled(&mut self, outcome: RunOutcome, seconds: f64) {
        *self.reconciles.entry(outcome).or_default() += 1;
        for (bound, count) in BUCKETS.iter().zip(self.buckets.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.duration_sum += seconds;
        self.duration_count += 1;
    }

    pub fn succeeded(&mut self, unix_seconds: f64, revision: &str) {
        self.last_success = Some(unix_seconds);
        self.revision = Some(revision.to_string());
    }

    pub fn action_applied(&mut self, kind: &str) {
        *self.actions.entry(kind.to_string()).or_default() += 1;
    }

    /// Counts a verification after a move that ended (`verified`,
    /// `failed`): `modelsync_verifications_total{result}`.
    pub fn verification_ended(&mut self, result: &str) {
        *self.verifications.entry(result.to_string()).or_default() += 1;
    }

    pub fn set_drift(&mut self, count: usize) {
        self.drift = count as u64;
    }

    /// Targets held at the last pass that planned (`modelsync_holds`).
    pub fn set_holds(&mut self, count: usize) {
        self.holds = count as u64;
    }

    /// The election's state (`modelsync_leader`,
    /// `modelsync_leader_transitions_total`).
    pub fn set_leader(&mut self, leading: bool, transitions: u64, requests: u64) {
        self.leader = Some((leading, transitions, requests));
    }

    pub fn registry_requests(&mut self, requests: u64, errors: u64) {
        self.registry_requests += requests;
        self.registry_errors += errors;
    }

    /// A head commit was refused by `--verify-signatures` (`None`: the
    /// head verified).
    pub fn set_unverified(&mut self, refused: Option<(String, String)>) {
        if refused.is_some() {
            self.signature_rejections += 1;
        }
        self.unverified = refused;
    }

    /// The Prometheus text exposition (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_signatures(&mut out);
        self.render_reconciles(&mut out);
        self.render_state(&mut out);
        self.render_counts(&mut out);
        self.render_leader(&mut out);
        out
    }

    /// The last success, drift and holds.
    fn render_state(&self, o: &mut String) {
        let ts = self.last_success.unwrap_or(0.0);
        single(
            o,
            "last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last successful reconcile (0: none yet).",
            ts,
        );
        single(
            o,
            "drift_detected",
            "gauge",
            "Drifted actions found and not repaired (--drift warn).",
            self.drift,
        );
        single(
            o,
            "holds",
            "gauge",
            "Holds standing on the declared models (modelsync rollback, hold list), as last read.",
            self.holds,
        );
    }

    /// Actions, verifications, registry requests and the applied revision.
    fn render_counts(&self, o: &mut String) {
        header(
            o,
            "actions_applied_total",
            "counter",
            "Actions applied to the registry, by kind.",
        );
        labelled(o, "actions_applied_total", "kind", &self.actions);
        header(
            o,
            "verifications_total",
            "counter",
            "Verifications after a move that ended, by result (verified, failed).",
        );
        labelled(o, "verifications_total", "result", &self.verifications);
        single(
            o,
            "registry_requests_total",
            "counter",
            "Requests sent to the registry.",
            self.registry_requests,
        );
        single(
            o,
            "registry_errors_total",
            "counter",
            "Registry requests that failed.",
            self.registry_errors,
        );
        header(
            o,
            "applied_revision_info",
            "gauge",
            "The revision of the last successful reconcile.",
        );
        if let Some(rev) = &self.revision {
            let _ = writeln!(
                o,
                "modelsync_applied_revision_info{{revision=\"{}\"}} 1",
                escape(rev)
            );
        }
    }

    /// The leader election's gauges (with `--leader-election`).
    fn render_leader(&self, o: &mut String) {
        if let Some((leading, transitions, requests)) = self.leader {
            single(
                o,
                "leader",
                "gauge",
                "1 while this replica is the elected leader, else 0.",
                u8::from(leading),
            );
            single(
                o,
                "leader_transitions_total",
                "counter",
                "Times this replica became leader or stepped down.",
                transitions,
            );
            single(
                o,
                "leader_election_requests_total",
                "counter",
                "Requests sent to the leader-election engine (etcd or PostgreSQL).",
                requests,
            );
        }
    }

    /// `modelsync_reconciles_total` by outcome, and the duration histogram.
    fn render_reconciles(&self, out: &mut String) {
        header(
            out,
            "reconciles_total",
            "counter",
            "Reconciles run, by outcome.",
        );
        for outcome in RunOutcome::ALL {
            let n = self.reconciles.get(&outcome).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "modelsync_reconciles_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        let name = "reconcile_duration_seconds";
        header(out, name, "histogram", "Duration of reconciles.");
        for (bound, count) in BUCKETS.iter().zip(self.buckets.iter()) {
            let _ = writeln!(out, "modelsync_{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let n = self.duration_count;
        let _ = writeln!(out, "modelsync_{name}_bucket{{le=\"+Inf\"}} {n}");
        let _ = writeln!(out, "modelsync_{name}_sum {}", self.duration_sum);
        let _ = writeln!(out, "modelsync_{name}_count {n}");
    }

    /// Commits refused by `--verify-signatures`: how many, and the last one.
    fn render_signatures(&self, out: &mut String) {
        header(
            out,
            "signature_rejections_total",
            "counter",
            "Head commits not applied because their signature did not verify.",
        );
        let n = self.signature_rejections;
        let _ = writeln!(out, "modelsync_signature_rejections_total {n}");
        header(
            out,
            "unverified_commit_info",
            "gauge",
            "The head commit refused by --verify-signatures, and its signer.",
        );
        if let Some((commit, signer)) = &self.unverified {
            let _ = writeln!(
                out,
                "modelsync_unverified_commit_info{{commit=\"{}\",signer=\"{}\"}} 1",
                escape(commit),
                escape(signer)
            );
        }
    }
}

/// A metric with one value: its header and its line.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    header(out, name, kind, help);
    let _ = writeln!(out, "modelsync_{name} {value}");
}

/// One line per label value (escaped) of a metric whose header is written.
fn labelled(out: &mut String, name: &str, label: &str, values: &BTreeMap<String, u64>) {
    for (value, n) in values {
        let _ = writeln!(out, "modelsync_{name}{{{label}=\"{}\"}} {n}", escape(value));
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP modelsync_{name} {help}");
    let _ = writeln!(out, "# TYPE modelsync_{name} {kind}");
}

/// Escapes a label value (backslash, quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// RFC 3339 (seconds) of a wall-clock time in ms since the epoch.
pub fn rfc3339_ms(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// RFC 3339 (seconds) of now.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_targeted_pass_replaces_only_its_models_drift() {
        let lines = |ls: &[&str]| ls.iter().map(|l| l.to_string()).collect::<Vec<_>>();
        let before = Drift::default().after(
            None,
            lines(&[
                "a: move champion",
                "ab: move champion",
                "prompt p: move prod",
            ]),
        );
        assert_eq!(before.count, 3);
        let targets = Targets {
            models: ["a".to_string(), "p".to_string()].into(),
            experiments: Default::default(),
        };
        let after = before.after(Some(&targets), lines(&["a: set tag"]));
        assert_eq!(after.actions, lines(&["ab: move champion", "a: set tag"]));
        assert_eq!(after.count, 2);
        assert_eq!(before.after(None, Vec::new()).count, 0, "a full pass: all");
    }

    #[test]
    fn renders_prometheus_text() {
        let mut m = Metrics::default();
        m.reconciled(RunOutcome::Success, 0.2);
        m.reconciled(RunOutcome::Invalid, 3.0);
        m.succeeded(1_700_000_000.0, "abc\"1");
        m.action_applied("set_alias");
        m.action_applied("set_alias");
        m.registry_requests(5, 1);
        m.set_drift(2);
        m.set_holds(3);
        let text = m.render();
        assert!(
            text.contains("# TYPE modelsync_holds gauge\nmodelsync_holds 3\n"),
            "{text}"
        );
        assert!(text.contains("modelsync_reconciles_total{outcome=\"success\"} 1\n"));
        assert!(text.contains("modelsync_reconciles_total{outcome=\"apply_error\"} 0\n"));
        assert!(text.contains("modelsync_reconcile_duration_seconds_bucket{le=\"0.25\"} 1\n"));
        assert!(text.contains("modelsync_reconcile_duration_seconds_bucket{le=\"5\"} 2\n"));
        assert!(text.contains("modelsync_reconcile_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("modelsync_reconcile_duration_seconds_count 2\n"));
        assert!(text.contains("modelsync_actions_applied_total{kind=\"set_alias\"} 2\n"));
        assert!(text.contains("modelsync_applied_revision_info{revision=\"abc\\\"1\"} 1\n"));
        assert!(text.contains("modelsync_drift_detected 2\n"));
        assert!(text.contains("modelsync_registry_errors_total 1\n"));
        assert!(
            !text.contains("modelsync_leader"),
            "no election, no leader metrics"
        );
        m.set_leader(true, 3, 12);
        let text = m.render();
        assert!(text.contains("modelsync_leader 1\n"));
        assert!(text.contains("modelsync_leader_transitions_total 3\n"));
        assert!(text.contains("modelsync_leader_election_requests_total 12\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').expect("name value");
            value.parse::<f64>().expect("numeric sample");
        }
    }
}
