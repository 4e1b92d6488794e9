//! What the reconcile step tells operators after each run (issue 14): the
//! per-model views, recent actions and commits in `/status` and on the
//! page, the signature check of the head commit (`--verify-signatures`),
//! and the notifications. A child module of `reconciler.rs`, so the
//! step's own file keeps only the pass.

use tracing::warn;

use super::{Ended, Next, Reconciler, Source, ended};
use crate::reconcile::{Mode, Outcome, Stop, Verdict};
use crate::source::signature::{self, Check};
use crate::watch::models;
use crate::watch::notify::Event;
use crate::watch::status::{
    RECENT_ACTIONS, RecentAction, RunOutcome, SignatureStatus, now_rfc3339,
};

impl Reconciler {
    /// Waits (at most `timeout`) for queued notifications to be delivered.
    pub async fn flush_notifications(&self, timeout: std::time::Duration) {
        self.config.notifier.flush(timeout).await;
    }

    /// The revision applied (and its commit): published after the pass's
    /// outcome, like [`Self::attempted`].
    pub(super) fn applied_revision(&mut self, id: &str) {
        let mut state = self.shared.lock();
        state.status.last_applied_revision = Some(id.to_string());
        state.status.last_applied_commit = state.status.last_attempted_commit.clone();
    }

    /// Records the revision (and, for git sources, the commit) the pass
    /// attempted, once its outcome is in the status.
    pub(super) fn attempted(&mut self, id: &str) {
        let info = match &self.source {
            Source::Git(Some(git)) => git.commit_info(id),
            _ => None,
        };
        let mut state = self.shared.lock();
        state.status.last_attempted_revision = Some(id.to_string());
        state.status.last_attempted_commit = info;
    }

    /// With `--verify-signatures`: `None` when the head may be applied;
    /// `Some(None)` when it was refused before (nothing to do);
    /// `Some(Some(..))` when it is refused now. A head is refused when its
    /// signature does not verify, and (unless `--allow-non-fast-forward`)
    /// when it does not descend from the last verified commit applied.
    pub(super) fn check_signature(&mut self, id: &str) -> Option<Option<(Ended, String)>> {
        self.config.signers.as_ref()?;
        let (check, refusal) = self.head_check(id)?;
        let sig = SignatureStatus {
            commit: id.to_string(),
            verified: refusal.is_none(),
            signer: check.signer(),
            reason: refusal.clone(),
        };
        let Some(reason) = refusal else {
            self.accepted(sig);
            return None;
        };
        if self.unverified.as_deref() == Some(id) {
            return Some(None);
        }
        let still = self.applied.as_deref().unwrap_or("nothing yet");
        let msg = format!("commit {id} not applied: {reason}; still applied: {still}");
        warn!(revision = %id, signer = sig.signer.as_deref().unwrap_or("-"), "{msg}");
        {
            let mut state = self.shared.lock();
            state.status.signature = Some(sig.clone());
            let signer = sig.signer.clone().unwrap_or_else(|| "unsigned".into());
            state.metrics.set_unverified(Some((id.to_string(), signer)));
        }
        self.fail(RunOutcome::Unverified, &msg, Vec::new());
        self.unverified = Some(id.to_string());
        let mut event = self.event("unverified", id);
        event.error = Some(msg);
        event.signature = Some(sig);
        self.config.notifier.send(event);
        Some(Some((
            ended(RunOutcome::Unverified, Next::WaitForChange, Verdict::Error),
            id.to_string(),
        )))
    }

    /// The signature check of the head and, when it may not be applied,
    /// why; `None` for a source that is not git.
    fn head_check(&mut self, id: &str) -> Option<(Check, Option<String>)> {
        let signers = self.config.signers.as_ref()?;
        let Source::Git(Some(git)) = &mut self.source else {
            return None;
        };
        let check = match git.commit_signature(id) {
            Ok(Some(s)) => signature::check(signers, Some(&s.signature), &s.signed_data),
            Ok(None) => Check::Unsigned,
            Err(e) => Check::Refused {
                fingerprint: None,
                reason: e.to_string(),
            },
        };
        if !matches!(check, Check::Verified { .. }) {
            let reason = check.to_string();
            return Some((check, Some(reason)));
        }
        if self.config.allow_non_fast_forward {
            return Some((check, None));
        }
        if self.verified.is_none() {
            self.verified = git.verified_applied();
        }
        let Some(last) = self.verified.as_deref() else {
            return Some((check, None));
        };
        let refusal = match git.descends_from(id, last) {
            Ok(true) => None,
            Ok(false) => Some(format!(
                "{check}, but it does not descend from {last}, the last verified commit \
                 applied (a force-push back to an older commit, or another branch's commit); \
                 --allow-non-fast-forward applies it anyway"
            )),
            Err(e) => Some(format!(
                "{check}, but whether it descends from {last}, the last verified commit \
                 applied, cannot be told ({e})"
            )),
        };
        Some((check, refusal))
    }

    /// A head that may be applied: its signature in `/status`, no refused
    /// commit in `/metrics`, and a refusal's error cleared once the head is
    /// the applied commit again (a head that is new gets its pass's).
    fn accepted(&mut self, sig: SignatureStatus) {
        let back = self.applied.as_deref() == Some(sig.commit.as_str());
        let mut state = self.shared.lock();
        if back
            && state
                .status
                .last_error
                .as_ref()
                .is_some_and(|e| e.kind == RunOutcome::Unverified)
        {
            state.status.last_error = None;
        }
        state.status.signature = Some(sig);
        state.metrics.set_unverified(None);
        drop(state);
        self.unverified = None;
    }

    /// With `--verify-signatures`, after `id` was applied: it is the last
    /// verified commit applied (kept in the git cache, for a restart).
    pub(super) fn verified_applied(&mut self, id: &str) {
        if self.config.signers.is_none() {
            return;
        }
        let Source::Git(Some(git)) = &mut self.source else {
            return;
        };
        if let Err(e) = git.set_verified_applied(id) {
            warn!(revision = %id, error = %e, "cannot record the verified commit in the git cache");
        }
        self.verified = Some(id.to_string());
    }

    /// After a pass: models, recent actions, the applied commit, and the
    /// notification.
    pub(super) fn report_pass(&mut self, out: &Outcome, id: &str, mode: Mode, end: &Ended) {
        self.record_views(out, mode);
        {
            // Holds standing on the declared models, as last read.
            let mut state = self.shared.lock();
            let holds = (state.live.values())
                .map(|m| crate::state::hold::holds(m).len())
                .sum();
            state.metrics.set_holds(holds);
        }
        let results = out
            .report
            .as_ref()
            .map(|r| r.results.clone())
            .unwrap_or_default();
        {
            let mut state = self.shared.lock();
            let at = now_rfc3339();
            let fresh = results.iter().rev().map(|r| RecentAction {
                at: at.clone(),
                revision: id.to_string(),
                result: r.clone(),
            });
            let mut recent: Vec<RecentAction> = fresh.collect();
            recent.reverse();
            recent.append(&mut state.status.recent_actions);
            recent.truncate(RECENT_ACTIONS);
            state.status.recent_actions = recent;
        }
        let Some(kind) = notification_kind(out, end) else {
            return;
        };
        let mut event = self.event(kind, id);
        event.actions = results;
        if kind == "drift" {
            event.drift = self.shared.lock().status.pending_drift.actions.clone();
        }
        if kind == "failed" {
            event.error = self
                .shared
                .lock()
                .status
                .last_error
                .as_ref()
                .map(|e| e.message.clone());
        }
        self.config.notifier.send(event);
    }

    /// The source could not be read: a `failed` notification (no revision).
    pub(super) fn report_source_error(&self, error: &str) {
        let mut event = self.event("failed", "-");
        event.error = Some(error.to_string());
        self.config.notifier.send(event);
    }

    fn record_views(&mut self, out: &Outcome, mode: Mode) {
        let mut state = self.shared.lock();
        if let Some(Stop::Registry(e)) = &out.stop {
            models::all_failed(&mut state.status.models, &e.to_string());
            return;
        }
        let Some((mut views, live)) = models::views(out, mode) else {
            return;
        };
        let at = crate::clock::rfc3339_millis(crate::clock::wall_ms());
        for v in &mut views {
            v.last_reconciled = Some(at.clone());
        }
        let feeds = crate::watch::feed::feeds(&live, &out.locations);
        let targets = out.desired.as_ref().and_then(|d| d.targets.as_ref());
        let Some(targets) = targets else {
            state.status.models = views;
            state.feeds = feeds;
            state.live = live;
            return;
        };
        // A targeted pass read only its models: the others keep what the
        // last pass that covered them recorded.
        models::merge(&mut state.status.models, views);
        for name in &targets.models {
            state.live.remove(name);
            state.feeds.remove(name);
        }
        state.live.extend(live);
        state.feeds.extend(feeds);
    }

    fn event(&self, outcome: &str, id: &str) -> Event {
        let state = self.shared.lock();
        let is_commit = id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit());
        let commit = (matches!(self.source, Source::Git(_)) && is_commit).then(|| id.to_string());
        Event {
            outcome: outcome.to_string(),
            revision: id.to_string(),
            commit,
            source: state.status.source.clone(),
            registry: state.status.registry.clone(),
            models: state.status.models.clone(),
            actions: Vec::new(),
            drift: Vec::new(),
            error: None,
            signature: state.status.signature.clone(),
            time: now_rfc3339(),
        }
    }
}

/// Which notification a run sends: `applied`, `blocked` (`frozen` while
/// the registry is frozen), `failed`, `drift`, `held` (nothing else to
/// change, but held targets differ from the manifests); `success` (a revision applied with nothing to change) only
/// sets a commit status; `None` for a run that changed nothing.
fn notification_kind(out: &Outcome, end: &Ended) -> Option<&'static str> {
    match end.outcome {
        RunOutcome::Drift => return Some("drift"),
        RunOutcome::Invalid
        | RunOutcome::RegistryError
        | RunOutcome::ApplyError
        | RunOutcome::SourceError
        | RunOutcome::OutputError => return Some("failed"),
        RunOutcome::Cancelled => return None,
        RunOutcome::Success | RunOutcome::Unverified => {}
    }
    let frozen = out.observed.as_ref().is_some_and(|l| l.freeze.is_some());
    if end.verdict == Verdict::Blocked {
        // The registry's freeze blocked the moves (`modelsync freeze`).
        return Some(if frozen { "frozen" } else { "blocked" });
    }
    let applied = out.report.as_ref().is_some_and(|r| r.applied() > 0);
    let blocked_model = out.report.is_none()
        && out.plan.as_ref().is_some_and(|p| {
            p.models
                .iter()
                .any(|m| m.actions.iter().any(|a| a.is_blocked()))
        });
    let held = out.plan.as_ref().is_some_and(|p| p.held().next().is_some());
    if applied {
        Some("applied")
    } else if blocked_model {
        Some("blocked")
    } else if held {
        // Nothing to change but targets a hold keeps from the manifests'
        // versions (`modelsync rollback`): said at every pass, as blocked.
        Some("held")
    } else {
        Some("success")
    }
}
