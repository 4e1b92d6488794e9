//! The daemon's reconcile step: fetch the source -> `reconcile::load` ->
//! open the registry -> observe -> plan -> apply (or, with `--drift warn`
//! and an unchanged revision, only report), recording status and metrics.
//!
//! The registry is opened for each run (with `write`) and dropped at its
//! end, so the embedded registry's lock is only held during a run.

use std::path::PathBuf;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tracing::{Instrument, info, warn};

use super::DriftMode;
use super::engine::{Next, Reasons, Step, Trigger};
use super::status::{Drift, LastError, Shared, now_rfc3339};
use crate::apply::{self, ApplyOptions, CancelFlag};
use crate::cli::Exit;
use crate::plan::{Action, Plan, PlanContext};
use crate::reconcile::{self, ReconcileError};
use crate::registry::{self, AnyRegistry, OpenOptions, RegistryError};
use crate::source::git::GitSource;
use crate::source::{Fetched, SourceError};

/// Where manifests come from.
pub enum Source {
    Folder(Vec<PathBuf>),
    /// `None` only while a fetch runs on the blocking pool.
    Git(Option<GitSource>),
}

impl Source {
    /// Reads the manifests (blocking work runs off the async threads).
    async fn fetch(&mut self) -> Result<Fetched, SourceError> {
        match self {
            Source::Folder(paths) => {
                let paths = paths.clone();
                let files = tokio::task::spawn_blocking(move || crate::source::read_paths(&paths))
                    .await
                    .expect("folder read task panicked")?;
                Ok(Fetched {
                    files,
                    revision: None,
                })
            }
            Source::Git(slot) => {
                let mut git = slot.take().expect("git source present between fetches");
                let (git, res) = tokio::task::spawn_blocking(move || {
                    let res = git.fetch();
                    (git, res)
                })
                .await
                .expect("git fetch task panicked");
                *slot = Some(git);
                res.map_err(SourceError::from)
            }
        }
    }
}

/// Settings of the step.
pub struct Config {
    pub registry_uri: String,
    pub drift: DriftMode,
    pub concurrency: usize,
    /// A revision to record when the source has none (folders).
    pub fallback_revision: Option<String>,
    /// Print the plan and results on stdout (`--once`).
    pub print: bool,
    /// The exit code of an apply (the CLI's mapping: 0, 1 or 5).
    pub exit_for: fn(&Plan, &crate::apply::ApplyReport) -> Exit,
    /// Protected targets (`--protect`, `modelsync.toml`).
    pub load_options: crate::manifest::validate::LoadOptions,
}

/// The real reconcile step.
pub struct Reconciler {
    source: Source,
    config: Config,
    shared: Shared,
    cancel: CancelFlag,
    /// Identity (revision or digest) of the last successful reconcile.
    applied: Option<String>,
    /// Identity of the source when the last run found it invalid.
    invalid: Option<String>,
    /// The exit code of the last run (for `--once`).
    pub last_exit: Exit,
}

/// How one run ended, for metrics, status and the loop.
struct Ended {
    outcome: &'static str,
    next: Next,
    exit: Exit,
}

impl Reconciler {
    pub fn new(source: Source, config: Config, shared: Shared, cancel: CancelFlag) -> Reconciler {
        Reconciler {
            source,
            config,
            shared,
            cancel,
            applied: None,
            invalid: None,
            last_exit: Exit::Ok,
        }
    }

    async fn run_once(&mut self, reasons: &Reasons) -> Option<(Ended, String)> {
        let fetched = match self.source.fetch().await {
            Ok(f) => f,
            Err(e) => {
                self.fail("source_error", &e.to_string(), Vec::new());
                return Some((ended("source_error", Next::Retry, Exit::Error), "-".into()));
            }
        };
        let id = identity(&fetched);
        self.shared.lock().status.last_attempted_revision = Some(id.clone());
        if self.invalid.as_deref() == Some(id.as_str()) {
            tracing::debug!(revision = %id, "manifests still invalid and unchanged; waiting for a change");
            return None;
        }
        let only_polled = reasons.iter().all(|r| *r == Trigger::Poll);
        if only_polled && self.applied.as_deref() == Some(id.as_str()) {
            tracing::debug!(revision = %id, "no new commit");
            return None;
        }
        let desired = match reconcile::load(&fetched.files, &self.config.load_options) {
            Ok(d) => d,
            Err(ReconcileError::Invalid(diags)) => {
                let lines: Vec<String> = diags.iter().map(ToString::to_string).collect();
                for line in &lines {
                    warn!(revision = %id, "{line}");
                }
                let msg = format!(
                    "{} problem(s) in the manifests; nothing applied (still applied: {})",
                    lines.len(),
                    self.applied.as_deref().unwrap_or("nothing yet")
                );
                self.fail("invalid", &msg, lines);
                self.invalid = Some(id.clone());
                return Some((ended("invalid", Next::WaitForChange, Exit::Error), id));
            }
            Err(ReconcileError::Registry(e)) => return Some((self.registry_failed(&e), id)),
        };
        self.invalid = None;
        let reg =
            match registry::open(&self.config.registry_uri, &OpenOptions { write: true }).await {
                Ok(r) => r,
                Err(e) => return Some((self.registry_failed(&e), id)),
            };
        let ctx = PlanContext {
            now_ms: reconcile::now_ms(),
            prune: false,
        };
        let planned = reconcile::plan_for_apply(&reg, &desired, &ctx).await;
        let result = match planned {
            Ok((plan, lease)) => {
                let ended = self
                    .act(&reg, &plan, &fetched, &id, desired.gate_specs())
                    .await;
                if let Err(e) = reg.release_lease(lease).await {
                    warn!(error = %e, "could not release the applier lease");
                }
                ended
            }
            Err(e) => self.registry_failed(&e),
        };
        let stats = reg.stats();
        drop(reg);
        let mut state = self.shared.lock();
        state
            .metrics
            .registry_requests(stats.reads + stats.writes, stats.errors);
        drop(state);
        Some((result, id))
    }

    /// Applies the plan, or reports drift without writing.
    async fn act(
        &mut self,
        reg: &AnyRegistry,
        plan: &Plan,
        fetched: &Fetched,
        id: &str,
        gates: crate::manifest::GateSpecs,
    ) -> Ended {
        self.shared.lock().status.registry_reachable = Some(true);
        let same = self.applied.as_deref() == Some(id);
        if self.config.print {
            print_stdout(&crate::plan::render::text(plan, false));
        }
        let decision = decide(
            self.config.drift,
            self.applied.as_deref(),
            id,
            plan.is_empty(),
        );
        if decision == Decision::ReportDrift {
            let actions = describe(plan);
            warn!(revision = %id, drift = actions.len(), "drift detected; not repairing (--drift warn)");
            for a in &actions {
                warn!(revision = %id, "drift: {a}");
            }
            let mut state = self.shared.lock();
            state.metrics.set_drift(actions.len());
            state.status.pending_drift = Drift {
                count: actions.len(),
                actions,
            };
            state.status.last_error = None;
            return ended("drift", Next::Done, Exit::Ok);
        }
        if same && !plan.is_empty() {
            info!(revision = %id, drift = plan.action_count(), "drift detected; repairing");
        }
        let opts = ApplyOptions {
            concurrency: self.config.concurrency,
            revision: fetched
                .revision
                .clone()
                .or_else(|| self.config.fallback_revision.clone()),
            now_ms: reconcile::now_ms(),
            cancel: Some(self.cancel.clone()),
            gates,
        };
        // Per-action log lines carry the revision through this span.
        let span = tracing::info_span!("reconcile", revision = %id);
        let report = apply::execute(reg, plan, &opts).instrument(span).await;
        if self.config.print && !plan.is_empty() {
            print_stdout(&format!("\n{}", report.render_text()));
        }
        let exit = (self.config.exit_for)(plan, &report);
        let mut state = self.shared.lock();
        for r in &report.results {
            if r.outcome == apply::Outcome::Applied {
                state.metrics.action_applied(r.kind);
            }
        }
        if !report.results.is_empty() {
            state.status.last_actions = report.results.clone();
        }
        if exit == Exit::Error {
            drop(state);
            let msg = if plan.has_errors() {
                plan.models
                    .iter()
                    .flat_map(|m| m.errors.iter().map(move |e| format!("{}: {e}", m.model)))
                    .collect::<Vec<_>>()
                    .join("; ")
            } else {
                report.summary()
            };
            self.fail("apply_error", &msg, Vec::new());
            return ended("apply_error", Next::Retry, exit);
        }
        if self.cancel.is_cancelled() && report.skipped() > 0 {
            // Shutdown: models not started were skipped; not a success.
            return ended("cancelled", Next::Done, exit);
        }
        state.metrics.set_drift(0);
        state.status.pending_drift = Drift::default();
        state.status.last_error = None;
        state.status.last_applied_revision = Some(id.to_string());
        state.status.last_success_at = Some(now_rfc3339());
        state.status.ready = true;
        state.metrics.succeeded(unix_now(), id);
        drop(state);
        self.applied = Some(id.to_string());
        ended("success", Next::Done, exit)
    }

    fn registry_failed(&mut self, e: &RegistryError) -> Ended {
        {
            let mut state = self.shared.lock();
            state.status.registry_reachable = Some(false);
            state.status.ready = false;
        }
        self.fail(
            "registry_error",
            &format!("{e}; nothing was applied"),
            Vec::new(),
        );
        let exit = if e.is_unreachable() {
            Exit::Unreachable
        } else {
            Exit::Error
        };
        ended("registry_error", Next::Retry, exit)
    }

    fn fail(&mut self, kind: &str, message: &str, diagnostics: Vec<String>) {
        self.shared.lock().status.last_error = Some(LastError {
            kind: kind.to_string(),
            message: message.to_string(),
            diagnostics,
            at: now_rfc3339(),
        });
    }
}

impl Step for Reconciler {
    async fn run(&mut self, reasons: &Reasons) -> Next {
        let started = Instant::now();
        let Some((end, id)) = self.run_once(reasons).await else {
            return Next::Done;
        };
        let secs = started.elapsed().as_secs_f64();
        {
            let mut state = self.shared.lock();
            state.metrics.reconciled(end.outcome, secs);
            state.status.reconciles += 1;
        }
        let trigger: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
        let line = format!("reconcile {}", end.outcome);
        if matches!(end.outcome, "success" | "drift" | "cancelled") {
            info!(revision = %id, outcome = end.outcome, duration_ms = (secs * 1000.0) as u64, trigger = trigger.join(","), "{line}");
        } else {
            let error = self
                .shared
                .lock()
                .status
                .last_error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_default();
            warn!(revision = %id, outcome = end.outcome, duration_ms = (secs * 1000.0) as u64, trigger = trigger.join(","), error, "{line}");
        }
        self.last_exit = end.exit;
        end.next
    }
}

/// What a run does with its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Apply,
    /// `--drift warn` and the revision already applied: report, write nothing.
    ReportDrift,
}

/// Drift is a non-empty plan for the revision that was applied last; warn
/// mode reports it; a new revision (or heal mode) is applied.
fn decide(mode: DriftMode, applied: Option<&str>, id: &str, plan_empty: bool) -> Decision {
    let drift = !plan_empty && applied == Some(id);
    if drift && mode == DriftMode::Warn {
        Decision::ReportDrift
    } else {
        Decision::Apply
    }
}

fn ended(outcome: &'static str, next: Next, exit: Exit) -> Ended {
    Ended {
        outcome,
        next,
        exit,
    }
}

/// The git commit, else `sha256:` over the files' paths and bytes.
fn identity(f: &Fetched) -> String {
    if let Some(rev) = &f.revision {
        return rev.clone();
    }
    let mut h = Sha256::new();
    for file in &f.files {
        h.update((file.path.len() as u64).to_le_bytes());
        h.update(file.path.as_bytes());
        h.update((file.contents.len() as u64).to_le_bytes());
        h.update(&file.contents);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// `model: action` lines for drift reports.
fn describe(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for m in &plan.models {
        for a in &m.actions {
            let what = match a {
                Action::TransitionStage { version, to, .. } => format!("move {version} to {to}"),
                Action::SetAlias {
                    alias,
                    version,
                    before,
                    ..
                } => match before {
                    Some(b) => format!("point alias {alias} at {version} (now version {b})"),
                    None => format!("point alias {alias} at {version} (now unset)"),
                },
                Action::ArchiveVersion { version, from, .. } => {
                    format!("archive version {version} (now {from})")
                }
                Action::SetModelTag { key, after, .. } => format!("set tag {key}={after}"),
                Action::SetVersionTag {
                    version,
                    key,
                    after,
                    ..
                } => {
                    format!("set tag {key}={after} on version {version}")
                }
                other => other.kind().replace('_', " "),
            };
            out.push(format!("{}: {what}", m.model));
        }
    }
    for e in &plan.experiments {
        for _ in &e.actions {
            out.push(format!("experiment {}: update", e.experiment));
        }
    }
    out
}

fn print_stdout(s: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::SourceFile;

    #[test]
    fn warn_reports_drift_only_for_the_applied_revision() {
        use Decision::*;
        use DriftMode::*;
        assert_eq!(decide(Warn, Some("a"), "a", false), ReportDrift);
        assert_eq!(decide(Warn, Some("a"), "b", false), Apply, "new revision");
        assert_eq!(decide(Warn, None, "a", false), Apply, "first run");
        assert_eq!(decide(Warn, Some("a"), "a", true), Apply, "nothing to do");
        assert_eq!(decide(Heal, Some("a"), "a", false), Apply);
    }

    #[test]
    fn identity_is_the_revision_or_a_digest_of_the_files() {
        let file = |c: &str| SourceFile {
            path: "m/a.yaml".into(),
            contents: c.as_bytes().to_vec(),
        };
        let a = Fetched {
            files: vec![file("x: 1")],
            revision: None,
        };
        let b = Fetched {
            files: vec![file("x: 2")],
            revision: None,
        };
        assert!(identity(&a).starts_with("sha256:"));
        assert_eq!(identity(&a), identity(&a.clone()));
        assert_ne!(identity(&a), identity(&b));
        let git = Fetched {
            files: vec![],
            revision: Some("abc".into()),
        };
        assert_eq!(identity(&git), "abc");
    }
}
