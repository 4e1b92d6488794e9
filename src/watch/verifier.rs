//! The daemon's verifications after a move, beside its passes (issue 19):
//! a pass never waits for them. After each pass the reconciler hands over
//! the verifications its moves started and those the registry records as
//! `verifying` with nobody running them (`plan::verify::resumable`: after a
//! restart, or when this replica became leader); each runs on its own task,
//! never two for the same version and target. A task opens the registry
//! for each round and drops it (the embedded registry's lock is held only
//! while a round writes), and stops when the daemon shuts down or the
//! replica stops leading (its fence): the record stays `verifying` in the
//! registry, for the next leader to resume. One that ended is counted
//! (`modelsync_verifications_total`) and notified ([`ended_events`]:
//! `verification.passed`, `verification.failed`, and `rolled-back` and
//! `held` when a failure's `onFailure` acted).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::apply::CancelFlag;
use crate::apply::verify::{Running, nap_until, rounds_due};
use crate::probe::Prober;
use crate::registry::{self, OpenOptions};
use crate::term::Fence;

/// Told each verification that ended.
pub type OnEnd = Arc<dyn Fn(&Running) + Send + Sync>;

/// The verifications this daemon runs, by `model/version/target`.
#[derive(Clone, Default)]
pub struct Verifier {
    running: Arc<Mutex<BTreeSet<String>>>,
    /// Told each verification that ended, with its state (`verified`,
    /// `failed`): the metrics.
    pub on_end: Option<OnEnd>,
}

impl Verifier {
    /// A verifier telling `on_end` each verification that ended.
    pub fn new(on_end: OnEnd) -> Verifier {
        Verifier {
            running: Arc::default(),
            on_end: Some(on_end),
        }
    }

    /// Starts a task for each of `found` not running yet.
    pub fn run(&self, uri: &str, found: Vec<Running>, fence: Option<Fence>, cancel: &CancelFlag) {
        for r in found {
            let key = format!("{}/{}/{}", r.job.model, r.job.version, r.job.target);
            if !self
                .running
                .lock()
                .expect("not poisoned")
                .insert(key.clone())
            {
                continue;
            }
            tracing::info!(model = %r.job.model, version = r.job.version, target = %r.job.target,
                "verification running in the background ({})", r.record.describe());
            let this = self.clone();
            let (uri, fence, cancel) = (uri.to_string(), fence.clone(), cancel.clone());
            tokio::spawn(async move {
                let ended = follow(&uri, r, fence.as_ref(), &cancel).await;
                this.running.lock().expect("not poisoned").remove(&key);
                if let (Some(r), Some(f)) = (ended, &this.on_end) {
                    f(&r);
                }
            });
        }
    }

    /// How many run now.
    pub fn count(&self) -> usize {
        self.running.lock().expect("not poisoned").len()
    }
}

/// Runs one verification to its end (`Some`), or until a shutdown or the
/// loss of leadership (`None`).
async fn follow(
    uri: &str,
    mut r: Running,
    fence: Option<&Fence>,
    cancel: &CancelFlag,
) -> Option<Running> {
    let prober = match Prober::new() {
        Ok(p) => p,
        Err(why) => {
            tracing::error!("verifications cannot run: {why}");
            return None;
        }
    };
    loop {
        let leading = fence.is_none_or(|f| f.check_at(crate::clock::wall_ms()).is_ok());
        if cancel.is_cancelled() || !leading {
            return None;
        }
        let due = match registry::open(uri, &OpenOptions { write: true }).await {
            Ok(reg) => rounds_due(&reg, &prober, std::slice::from_mut(&mut r), None).await,
            Err(e) => {
                tracing::warn!(error = %e, "verification: the registry cannot be opened; trying again");
                Some(crate::clock::wall_ms() + 5_000)
            }
        };
        let Some(due) = due else {
            return Some(r);
        };
        while crate::clock::wall_ms() < due && !cancel.is_cancelled() {
            nap_until(due).await;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The notifications of a verification that ended: first outcome
/// `verification.passed` or `verification.failed` (the CloudEvent's type
/// `io.modelsync.reconcile.verification.passed`/`.failed`), the model's
/// view as the last pass saw it, and for a failure what the record says;
/// then, for a failure whose `onFailure` acted, `rolled-back` (the target
/// moved back) and `held` (the hold it left), each naming what was done.
pub fn ended_events(r: &Running, status: &super::status::Status) -> Vec<super::notify::Event> {
    let passed = r.record.state == crate::state::verification::State::Verified;
    let outcome = if passed {
        "verification.passed"
    } else {
        "verification.failed"
    };
    // Why it failed (a passed one is said by the outcome).
    let error = (!passed).then(|| format!("{}: {}", r.job.describe(), r.record.describe()));
    let mut out = vec![event(r, status, outcome, error, None)];
    let then = r.record.then.as_deref().unwrap_or_default();
    let what = crate::plan::describe::target_text(&r.job.target.key());
    if r.record.rolled_back() {
        let action = format!(
            "{what} of {}: version {} failed its verification; {then}",
            r.job.model, r.job.version
        );
        out.push(event(
            r,
            status,
            "rolled-back",
            None,
            Some(("rollback", action)),
        ));
    }
    if r.record.held() {
        let action = format!("{what} of {}: {then}", r.job.model);
        out.push(event(r, status, "held", None, Some(("hold", action))));
    }
    out
}

/// One notification about `r`'s model; `done`: what was done (kind,
/// words) as the event's one action.
fn event(
    r: &Running,
    status: &super::status::Status,
    outcome: &str,
    error: Option<String>,
    done: Option<(&'static str, String)>,
) -> super::notify::Event {
    super::notify::Event {
        outcome: outcome.to_string(),
        revision: r.record.revision.clone().unwrap_or_else(|| "-".into()),
        commit: None,
        source: status.source.clone(),
        registry: status.registry.clone(),
        models: (status.models.iter())
            .filter(|m| m.name == r.job.model)
            .cloned()
            .collect(),
        actions: (done.into_iter())
            .map(|(kind, action)| crate::apply::ActionResult {
                object: r.job.model.clone(),
                action,
                kind,
                outcome: crate::apply::Outcome::Applied,
            })
            .collect(),
        drift: Vec::new(),
        error,
        signature: None,
        time: super::status::now_rfc3339(),
    }
}
