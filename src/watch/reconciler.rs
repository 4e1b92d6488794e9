//! The daemon's reconcile step: fetch the source, then one
//! [`reconcile::run`] pass (the same as `apply`'s: load -> validate ->
//! observe -> plan -> lease -> apply -> verify), recording status and
//! metrics. With `--drift warn` and an unchanged revision the pass only
//! plans and the drift is reported.
//!
//! The registry is opened by the pass and dropped at its end, so the
//! embedded registry's lock is only held during a run.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tracing::{Instrument, info, warn};

use super::DriftMode;
use super::engine::{Batch, Next, Step};
use super::scope::{Decision, Scope, decide, scope};
use super::status::{LastError, RunOutcome, Shared, now_rfc3339};
use crate::apply::{self, CancelFlag};
use crate::clock::EvalClock;
use crate::manifest::targets::{Changes, Selector, Targets};
use crate::manifest::validate::LoadOptions;
use crate::plan::Plan;
use crate::reconcile::{self, Mode, Outcome, Pass, Stop, Verdict};
use crate::source::git::GitSource;
use crate::source::{Fetched, SourceError};
use crate::term::Fence;

/// Where manifests come from.
pub enum Source {
    Folder(Vec<PathBuf>),
    /// `None` only while a fetch runs on the blocking pool.
    Git(Option<GitSource>),
}

impl Source {
    /// Reads the manifests and `modelsync.toml` (blocking work runs off the
    /// async threads).
    async fn fetch(&mut self) -> Result<Fetched, SourceError> {
        match self {
            Source::Folder(paths) => {
                let paths = paths.clone();
                tokio::task::spawn_blocking(move || {
                    let files = crate::source::read_paths(&paths)?;
                    let config = crate::source::config::Config::for_paths(&paths)?;
                    let others = crate::source::folder::read_others(&paths)?;
                    Ok(Fetched {
                        files,
                        revision: None,
                        config,
                        roots: crate::source::folder::roots(&paths),
                        tree: crate::manifest::paths::Tree::Host,
                        others,
                    })
                })
                .await
                .expect("folder read task panicked")
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
    /// Also prune what modelsync owns and the manifests no longer declare.
    pub prune: bool,
    /// A revision to record when the source has none (folders).
    pub fallback_revision: Option<String>,
    /// Print the plan and results on stdout (`--once`).
    pub print: bool,
    /// Protected targets from `--protect`; `modelsync.toml`'s are added
    /// from each fetch.
    pub protect: Vec<String>,
    /// The clock gates are evaluated at.
    pub clock: EvalClock,
    /// Where reconciles are notified (`--notify`, `--github-status`).
    pub notifier: super::notify::Notifier,
    /// `--verify-signatures`: the keys a head commit must be signed by.
    pub signers: Option<crate::source::signature::AllowedSigners>,
    /// `--allow-non-fast-forward`: a verified head need not descend from
    /// the last verified commit applied.
    pub allow_non_fast_forward: bool,
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
    /// The head commit last refused by `--verify-signatures`.
    unverified: Option<String>,
    /// With `--verify-signatures`: the last verified commit applied (read
    /// from the git cache at first, then kept here).
    verified: Option<String>,
    /// The verdict of the last run and why it failed (for `--once`).
    pub last: (Verdict, Option<String>),
    /// With `--leader-election`: the election's view; only a leader runs
    /// the pass, fenced by its term.
    election: Option<tokio::sync::watch::Receiver<crate::election::View>>,
    /// Where the alias holders' bytes are, as the last pass located them
    /// (a version's location does not change: reused by the next pass).
    locations: crate::state::artifacts::Locations,
    /// The verifications after a move running beside the passes.
    pub verifier: super::verifier::Verifier,
    /// The revision of the last full pass that loaded the manifests, and
    /// the models and prompts it declares (an MLflow delivery for none of
    /// them reconciles nothing).
    declared: Option<(String, BTreeSet<String>)>,
    /// The manifests as the last full pass loaded them.
    loaded: Option<loaded::Loaded>,
}

mod loaded;
mod report;

/// How one run ended, for metrics, status and the loop.
struct Ended {
    outcome: RunOutcome,
    next: Next,
    verdict: Verdict,
}

impl Reconciler {
    pub fn new(source: Source, config: Config, shared: Shared, cancel: CancelFlag) -> Reconciler {
        let (counted, notifier) = (shared.clone(), config.notifier.clone());
        let verifier = super::verifier::Verifier::new(std::sync::Arc::new(
            move |r: &apply::verify::Running| {
                let events = {
                    let mut state = counted.lock();
                    state.metrics.verification_ended(r.record.state.as_str());
                    super::verifier::ended_events(r, &state.status)
                };
                for event in events {
                    notifier.send(event);
                }
            },
        ));
        Reconciler {
            source,
            config,
            shared,
            cancel,
            applied: None,
            invalid: None,
            unverified: None,
            verified: None,
            last: (Verdict::Ok, None),
            election: None,
            locations: Default::default(),
            verifier,
            declared: None,
            loaded: None,
        }
    }

    /// Takes part in a leader election: from now on only a leader's runs
    /// reconcile, fenced by its term.
    pub fn elect(&mut self, view: tokio::sync::watch::Receiver<crate::election::View>) {
        self.election = Some(view);
    }

    /// `Err(())` for a standby (it writes nothing), else the leader's
    /// fence (`None` without an election).
    fn role(&self) -> Result<Option<Fence>, ()> {
        match &self.election {
            None => Ok(None),
            Some(view) => view.borrow().fence().map(Some).ok_or(()),
        }
    }

    /// A standby keeps its source fresh (so it is ready to lead at once)
    /// and writes nothing.
    async fn stand_by(&mut self) {
        match self.source.fetch().await {
            Ok(fetched) => {
                let id = identity(&fetched);
                tracing::debug!(revision = %id, "standby: source read; the leader reconciles");
                let mut state = self.shared.lock();
                state.status.last_attempted_revision = Some(id);
                state.status.ready = true;
                if state
                    .status
                    .last_error
                    .as_ref()
                    .is_some_and(|e| e.kind == RunOutcome::SourceError)
                {
                    state.status.last_error = None;
                }
            }
            Err(e) => {
                self.shared.lock().status.ready = false;
                self.fail(RunOutcome::SourceError, &e.to_string(), Vec::new());
            }
        }
    }

    async fn run_once(&mut self, batch: &Batch) -> Option<(Ended, String)> {
        let Ok(fence) = self.role() else {
            self.stand_by().await;
            return None;
        };
        let fetched = match self.source.fetch().await {
            Ok(f) => f,
            Err(e) => {
                self.fail(RunOutcome::SourceError, &e.to_string(), Vec::new());
                self.report_source_error(&e.to_string());
                return Some((
                    ended(RunOutcome::SourceError, Next::Retry, Verdict::Error),
                    "-".into(),
                ));
            }
        };
        let id = identity(&fetched);
        if let Some(refused) = self.check_signature(&id) {
            return refused;
        }
        if self.invalid.as_deref() == Some(id.as_str()) {
            tracing::debug!(revision = %id, "manifests still invalid and unchanged; waiting for a change");
            return None;
        }
        let same = self.applied.as_deref() == Some(id.as_str());
        let declared = self
            .declared
            .as_ref()
            .filter(|(rev, _)| *rev == id)
            .map(|(_, names)| names);
        let changes = || self.changes_since_applied(&id);
        let targets = match scope(batch, !same, changes, declared) {
            Scope::Nothing => {
                tracing::debug!(revision = %id, "nothing to reconcile: no new commit, no declared model named");
                return None;
            }
            Scope::Everything => None,
            Scope::Targeted(selector) => Some(selector),
        };
        let mode = match decide(self.config.drift, same) {
            Decision::Apply => Mode::Apply,
            Decision::ReportDrift => Mode::Plan,
        };
        let targeted = targets.is_some();
        let mut out = self
            .pass(fetched, &id, mode, same, fence.clone(), targets)
            .await;
        self.verify_beside(&out, fence);
        if out.desired.is_some() && out.stop.is_none() {
            if targeted {
                self.locations.extend(out.locations.clone());
            } else {
                self.locations = out.locations.clone();
                self.declared = out.desired.as_ref().map(|d| {
                    let names = d.models.keys().chain(d.prompts.keys()).cloned();
                    (id.clone(), names.collect())
                });
            }
        }
        let stats = out.stats;
        self.shared
            .lock()
            .metrics
            .registry_requests(stats.reads + stats.writes, stats.errors);
        let end = self.conclude(&out, &id, mode);
        self.report_pass(&out, &id, mode, &end);
        if !targeted {
            loaded::kept(&mut self.loaded, &id, &mut out);
        }
        Some((end, id))
    }

    /// Hands the verifications the pass started, and those the registry
    /// records as `verifying` (a restart, a new leader), to the verifier
    /// (not with `--once`, whose pass waited for its own).
    fn verify_beside(&self, out: &Outcome, fence: Option<Fence>) {
        if self.config.print || out.stop.is_some() {
            return;
        }
        let mut found = out.verifications.clone();
        if let (Some(desired), Some(live)) = (
            &out.desired,
            out.verified.as_ref().or(out.observed.as_ref()),
        ) {
            let resumed = crate::plan::verify::resumable(desired, live);
            found.extend(
                resumed
                    .into_iter()
                    .map(|(job, record)| apply::verify::Running { job, record }),
            );
        }
        self.verifier
            .run(&self.config.registry_uri, found, fence, &self.cancel);
    }

    /// What changed in the git source from the commit applied last to
    /// `id`; `None` for a folder, before anything was applied, or when
    /// the diff cannot be read (then the pass is a full one).
    fn changes_since_applied(&self, id: &str) -> Option<Changes> {
        let (Source::Git(Some(git)), Some(applied)) = (&self.source, &self.applied) else {
            return None;
        };
        git.changes_between(applied, id)
            .map_err(|e| warn!(from = %applied, to = %id, error = %e, "what the new commit changed cannot be told; reconciling everything"))
            .ok()
    }

    /// Runs the pass over the fetched manifests (`targets`: a targeted
    /// one).
    async fn pass(
        &mut self,
        fetched: Fetched,
        id: &str,
        mode: Mode,
        same: bool,
        fence: Option<Fence>,
        targets: Option<Selector>,
    ) -> Outcome {
        let targeted = targets.is_some();
        let mut protect = self.config.protect.clone();
        let registries = fetched.config.registry_uris();
        let approvers = fetched.config.approvers.clone();
        let outputs = fetched.config.outputs.clone();
        let windows = fetched.config.windows.clone();
        for t in fetched.config.protect {
            if !protect.contains(&t) {
                protect.push(t);
            }
        }
        let print = self.config.print;
        let show = move |plan: &Plan| {
            if same && !plan.is_empty() {
                info!(drift = plan.action_count(), "drift detected");
            }
            if print {
                print_stdout(&crate::plan::render::text(plan, false));
            }
        };
        let pass = Pass {
            mode,
            prune: self.config.prune,
            concurrency: self.config.concurrency,
            revision: fetched
                .revision
                .clone()
                .or_else(|| self.config.fallback_revision.clone()),
            clock: self.config.clock,
            cancel: self.cancel.clone(),
            on_plan: Some(&show),
            fence,
            progress: None,
            break_glass: None,
            targets,
            locate: Some(&self.locations),
            // `--once` waits like `apply`; the daemon runs them beside its
            // passes (never blocking one).
            wait_verifications: self.config.print,
            on_verification: None,
            outputs: &outputs,
        };
        let options = LoadOptions {
            protect,
            registries,
            roots: fetched.roots,
            tree: fetched.tree,
            approvers,
            windows,
        };
        let input = loaded::input(&mut self.loaded, id, options, fetched.files, targeted);
        // Per-action log lines carry the revision through this span.
        let span = tracing::info_span!("reconcile", revision = %id);
        reconcile::run(&self.config.registry_uri, input, &pass)
            .instrument(span)
            .await
    }

    /// Records what the pass did in status and metrics; how the loop goes on.
    fn conclude(&mut self, out: &Outcome, id: &str, mode: Mode) -> Ended {
        let verdict = out.verdict();
        match &out.stop {
            Some(Stop::Invalid(diags)) => return self.invalid(diags, id, verdict),
            Some(Stop::Registry(_)) => return self.registry_failed(out, verdict),
            Some(Stop::Cancelled) => return ended(RunOutcome::Cancelled, Next::Done, verdict),
            Some(Stop::Leak(_)) => {
                // Retried: the value may be in the registry, not the commit.
                let msg = out.error_message().unwrap_or_default();
                self.fail(RunOutcome::Invalid, &msg, Vec::new());
                return ended(RunOutcome::Invalid, Next::Retry, verdict);
            }
            _ => {}
        }
        self.invalid = None;
        self.shared.lock().status.registry_reachable = Some(true);
        if let Some(report) = &out.report {
            if self.config.print {
                print_stdout(&format!("\n{}", report.render_text()));
            }
            let mut state = self.shared.lock();
            for r in &report.results {
                if r.outcome == apply::Outcome::Applied {
                    state.metrics.action_applied(r.kind);
                }
            }
            if !report.results.is_empty() {
                state.status.last_actions = report.results.clone();
            }
        }
        for line in &out.pending {
            warn!(revision = %id, "not converged: {line}");
        }
        if !out.outputs.is_empty() {
            if self.config.print {
                for o in &out.outputs {
                    let changes: String =
                        o.changes.iter().map(|c| format!("output {c}\n")).collect();
                    print_stdout(&format!("{changes}{o}\n"));
                }
            }
            self.shared.lock().status.outputs = out.outputs.clone();
        }
        let plan = out.plan.as_ref();
        if mode == Mode::Plan && plan.is_some_and(|p| !p.is_empty()) {
            return self.report_drift(plan.expect("checked"), id, targets_of(out));
        }
        let outputs_failed: Vec<String> = (out.outputs.iter())
            .filter_map(|o| o.failed().map(|why| format!("{}: {why}", o.output)))
            .collect();
        let only_outputs = out.report.as_ref().is_none_or(|r| r.failed() == 0)
            && out.pending.is_empty()
            && !plan.is_some_and(|p| p.has_errors());
        if verdict == Verdict::Error && !outputs_failed.is_empty() && only_outputs {
            let msg = out
                .error_message()
                .unwrap_or_else(|| "an output failed".into());
            self.fail(RunOutcome::OutputError, &msg, outputs_failed);
            return ended(RunOutcome::OutputError, Next::Retry, verdict);
        }
        if matches!(verdict, Verdict::Error | Verdict::LostTerm) {
            let msg = out.error_message().unwrap_or_else(|| "failed".into());
            self.fail(RunOutcome::ApplyError, &msg, Vec::new());
            return ended(RunOutcome::ApplyError, Next::Retry, verdict);
        }
        if verdict == Verdict::Interrupted {
            // Shutdown: models not started were skipped; not a success.
            return ended(RunOutcome::Cancelled, Next::Done, verdict);
        }
        self.succeeded(id, targets_of(out));
        ended(RunOutcome::Success, Next::Done, verdict)
    }

    /// A pass succeeded: no drift is left in what it covered.
    fn succeeded(&mut self, id: &str, targets: Option<&Targets>) {
        let mut state = self.shared.lock();
        let drift = state.status.pending_drift.after(targets, Vec::new());
        state.metrics.set_drift(drift.count);
        state.status.pending_drift = drift;
        state.status.last_error = None;
        state.status.last_success_at = Some(now_rfc3339());
        state.status.ready = true;
        state.metrics.succeeded(unix_now(), id);
        drop(state);
        self.applied = Some(id.to_string());
        self.verified_applied(id);
    }

    /// `--drift warn`: the applied revision's plan is not empty; report it,
    /// write nothing.
    fn report_drift(&mut self, plan: &Plan, id: &str, targets: Option<&Targets>) -> Ended {
        let actions = reconcile::action_lines(plan, true);
        warn!(revision = %id, drift = actions.len(), "drift detected; not repairing (--drift warn)");
        for a in &actions {
            warn!(revision = %id, "drift: {a}");
        }
        let mut state = self.shared.lock();
        let drift = state.status.pending_drift.after(targets, actions);
        state.metrics.set_drift(drift.count);
        state.status.pending_drift = drift;
        state.status.last_error = None;
        ended(RunOutcome::Drift, Next::Done, Verdict::Ok)
    }

    fn invalid(&mut self, diags: &[crate::manifest::Diagnostic], id: &str, v: Verdict) -> Ended {
        let lines: Vec<String> = diags.iter().map(ToString::to_string).collect();
        for line in &lines {
            warn!(revision = %id, "{line}");
        }
        let msg = format!(
            "{} problem(s) in the manifests; nothing applied (still applied: {})",
            lines.len(),
            self.applied.as_deref().unwrap_or("nothing yet")
        );
        self.fail(RunOutcome::Invalid, &msg, lines);
        self.invalid = Some(id.to_string());
        ended(RunOutcome::Invalid, Next::WaitForChange, v)
    }

    fn registry_failed(&mut self, out: &Outcome, v: Verdict) -> Ended {
        {
            let mut state = self.shared.lock();
            state.status.registry_reachable = Some(false);
            state.status.ready = false;
        }
        let msg = out.error_message().unwrap_or_default();
        self.fail(RunOutcome::RegistryError, &msg, Vec::new());
        ended(RunOutcome::RegistryError, Next::Retry, v)
    }

    fn fail(&mut self, kind: RunOutcome, message: &str, diagnostics: Vec<String>) {
        self.shared.lock().status.last_error = Some(LastError {
            kind,
            message: message.to_string(),
            diagnostics,
            at: now_rfc3339(),
        });
    }
}

impl Step for Reconciler {
    async fn run(&mut self, batch: &Batch) -> Next {
        let started = Instant::now();
        let Some((end, id)) = self.run_once(batch).await else {
            return Next::Done;
        };
        let secs = started.elapsed().as_secs_f64();
        {
            let mut state = self.shared.lock();
            state.metrics.reconciled(end.outcome, secs);
            state.status.reconciles += 1;
        }
        // The revisions are published last, so a reader that sees this
        // revision as attempted (or applied) also sees how the pass ended:
        // its error, models, actions and counters.
        // (A source that could not be read has no revision: "-".)
        if end.outcome != RunOutcome::SourceError {
            self.attempted(&id);
        }
        if end.outcome == RunOutcome::Success {
            self.applied_revision(&id);
        }
        let trigger: Vec<&str> = batch.reasons.iter().map(|r| r.as_str()).collect();
        let line = format!("reconcile {}", end.outcome);
        let error = self
            .shared
            .lock()
            .status
            .last_error
            .as_ref()
            .map(|e| e.message.clone());
        let ms = (secs * 1000.0) as u64;
        if end.outcome.is_fine() {
            info!(revision = %id, outcome = end.outcome.as_str(), duration_ms = ms, trigger = trigger.join(","), "{line}");
            self.last = (end.verdict, None);
        } else {
            let e = error.clone().unwrap_or_default();
            warn!(revision = %id, outcome = end.outcome.as_str(), duration_ms = ms, trigger = trigger.join(","), error = e, "{line}");
            self.last = (end.verdict, error);
        }
        end.next
    }
}

/// What a targeted pass covered (`None`: a full pass).
fn targets_of(out: &Outcome) -> Option<&Targets> {
    out.desired.as_ref().and_then(|d| d.targets.as_ref())
}

fn ended(outcome: RunOutcome, next: Next, verdict: Verdict) -> Ended {
    Ended {
        outcome,
        next,
        verdict,
    }
}

/// The git commit, else `sha256:` over the files' paths and bytes (the
/// manifests', then the other files', templates among them).
fn identity(f: &Fetched) -> String {
    if let Some(rev) = &f.revision {
        return rev.clone();
    }
    let mut h = Sha256::new();
    let manifests = f.files.iter().map(|m| (&m.path, m.contents.as_slice()));
    let others = f.others.iter().map(|(p, t)| (p, t.as_bytes()));
    for (path, contents) in manifests.chain(others) {
        h.update((path.len() as u64).to_le_bytes());
        h.update(path.as_bytes());
        h.update((contents.len() as u64).to_le_bytes());
        h.update(contents);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// `--once`'s plan and results on stdout (refused, with a warning, when
/// they would show a secret).
fn print_stdout(s: &str) {
    if let Err(leak) = crate::logging::print(s) {
        warn!("not printed: the output holds {leak}");
    }
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
    fn identity_is_the_revision_or_a_digest_of_the_files() {
        let file = |c: &str| SourceFile {
            path: "m/a.yaml".into(),
            contents: c.as_bytes().to_vec(),
        };
        let a = Fetched {
            files: vec![file("x: 1")],
            revision: None,
            config: Default::default(),
            roots: Vec::new(),
            tree: Default::default(),
            others: Default::default(),
        };
        let b = Fetched {
            files: vec![file("x: 2")],
            revision: None,
            config: Default::default(),
            roots: Vec::new(),
            tree: Default::default(),
            others: Default::default(),
        };
        assert!(identity(&a).starts_with("sha256:"));
        assert_eq!(identity(&a), identity(&a.clone()));
        assert_ne!(identity(&a), identity(&b));
        let mut edited = a.clone();
        edited.others.insert("m/t.txt".into(), "Hi {{name}}".into());
        assert_ne!(
            identity(&a),
            identity(&edited),
            "a template edit is a change"
        );
        let git = Fetched {
            files: vec![],
            revision: Some("abc".into()),
            config: Default::default(),
            roots: Vec::new(),
            tree: Default::default(),
            others: Default::default(),
        };
        assert_eq!(identity(&git), "abc");
    }
}
