//! The daemon loop: level-triggered and single-flight.
//!
//! Triggers (file change, poll tick, webhook, resync timer) are fired into a
//! [`Triggers`] handle from anywhere; the loop runs one [`Step`] at a time.
//! Triggers that arrive while a step runs coalesce into at most one more
//! run, whose [`Batch`] says what it covers: everything (start-up, a folder
//! change, the resync, an election), what the source's new commit changed
//! (a git poll or push), and the models MLflow's webhooks named — a burst
//! of deliveries for a few models is one run over those models. A step
//! that asks for a retry is run again, over the same batch, after an
//! exponential backoff (or sooner, if another trigger arrives: its batch
//! then covers both); a step that waits for a change (an invalid manifest)
//! is not retried at all. The loop knows nothing about registries or
//! sources, so tests drive it with a fake step under tokio's paused clock.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::backoff::Backoff;

/// Why a reconcile runs (for logs; the reconcile itself is level-triggered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Trigger {
    /// The daemon started.
    Startup,
    /// Files changed in a watched folder.
    Change,
    /// The git poll interval elapsed.
    Poll,
    /// `POST /hooks/git`.
    Webhook,
    /// `POST /hooks/mlflow`: MLflow's own webhook (a registry event).
    RegistryEvent,
    /// The periodic drift check.
    Resync,
    /// A retry after a failure.
    Retry,
    /// This replica was elected leader (`--leader-election`).
    Elected,
}

impl Trigger {
    /// A git poll or push: the step covers what the source's new commit
    /// changed (nothing when there is none), not everything.
    pub fn follows_source(self) -> bool {
        matches!(self, Trigger::Poll | Trigger::Webhook)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::Change => "change",
            Trigger::Poll => "poll",
            Trigger::Webhook => "webhook",
            Trigger::RegistryEvent => "mlflow-webhook",
            Trigger::Resync => "resync",
            Trigger::Retry => "retry",
            Trigger::Elected => "elected",
        }
    }
}

/// The triggers that led to one run.
pub type Reasons = BTreeSet<Trigger>;

/// What one run covers: the triggers that led to it (for logs) and the
/// scope they ask for, coalesced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub reasons: Reasons,
    /// A trigger asked for a full pass.
    pub everything: bool,
    /// A git poll or push: what the source's new commit changed.
    pub source: bool,
    /// The models triggers named (MLflow's webhook deliveries).
    pub models: BTreeSet<String>,
}

impl Batch {
    /// A batch of the triggers `reasons`, each fired for everything it
    /// covers (none naming a model).
    pub fn of(reasons: impl IntoIterator<Item = Trigger>) -> Batch {
        let mut b = Batch::default();
        for t in reasons {
            b.add(t, None);
        }
        b
    }

    /// Adds a trigger, fired for `model` or (`None`) for what it covers.
    fn add(&mut self, t: Trigger, model: Option<String>) {
        self.reasons.insert(t);
        match model {
            Some(m) => {
                self.models.insert(m);
            }
            None if t.follows_source() => self.source = true,
            None => self.everything = true,
        }
    }

    /// Adds what `other` covers (not its reasons): a failed run's scope is
    /// still owed to the next one.
    fn cover(&mut self, other: Batch) {
        self.everything |= other.everything;
        self.source |= other.source;
        self.models.extend(other.models);
    }
}

/// What the loop does after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Success: wait for the next trigger, reset the backoff.
    Done,
    /// The source is unusable as it is (invalid manifests): wait for the
    /// next trigger, schedule no retry.
    WaitForChange,
    /// A failure worth retrying (registry down, fetch failed, action failed).
    Retry,
}

/// One reconcile, as the loop sees it.
pub trait Step {
    fn run(&mut self, batch: &Batch) -> impl Future<Output = Next>;
}

/// A cloneable handle to fire triggers into the loop. Firing never blocks
/// and never queues more than one pending run.
#[derive(Debug, Clone, Default)]
pub struct Triggers {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    pending: Mutex<Batch>,
    notify: Notify,
    closed: AtomicBool,
}

impl Triggers {
    pub fn new() -> Triggers {
        Triggers::default()
    }

    /// Asks for a reconcile of what `t` covers (everything, or what the
    /// source's new commit changed); ignored after [`Triggers::close`].
    pub fn fire(&self, t: Trigger) {
        self.add(t, None);
    }

    /// Asks for a reconcile of one model (an MLflow webhook delivery
    /// naming it); ignored after [`Triggers::close`].
    pub fn fire_for(&self, t: Trigger, model: String) {
        self.add(t, Some(model));
    }

    fn add(&self, t: Trigger, model: Option<String>) {
        if self.inner.closed.load(Ordering::SeqCst) {
            return;
        }
        self.inner
            .pending
            .lock()
            .expect("trigger set lock poisoned")
            .add(t, model);
        self.inner.notify.notify_one();
    }

    /// Stops taking triggers (shutdown).
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
    }

    /// Waits until at least one trigger is pending and takes them all.
    async fn next(&self) -> Batch {
        loop {
            let taken = std::mem::take(
                &mut *self
                    .inner
                    .pending
                    .lock()
                    .expect("trigger set lock poisoned"),
            );
            if !taken.reasons.is_empty() {
                return taken;
            }
            self.inner.notify.notified().await;
        }
    }
}

/// Runs `step` for every (coalesced) trigger until `shutdown` turns true.
/// A step already running when shutdown comes is awaited (the step itself
/// decides how fast it stops). Returns the number of runs.
pub async fn run_loop<S: Step>(
    step: &mut S,
    triggers: &Triggers,
    mut backoff: Backoff,
    mut shutdown: watch::Receiver<bool>,
) -> u64 {
    let mut retry_at: Option<Instant> = None;
    // The scope of the run that failed, owed to the next one.
    let mut owed: Option<Batch> = None;
    let mut runs = 0;
    loop {
        let mut batch = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break,
            batch = triggers.next() => batch,
            _ = sleep_until(retry_at), if retry_at.is_some() => Batch {
                reasons: Reasons::from([Trigger::Retry]),
                ..Batch::default()
            },
        };
        if *shutdown.borrow() {
            break;
        }
        if let Some(failed) = owed.take() {
            batch.cover(failed);
        }
        retry_at = None;
        runs += 1;
        match step.run(&batch).await {
            Next::Done | Next::WaitForChange => backoff.reset(),
            Next::Retry => {
                owed = Some(batch);
                let delay = backoff.next_delay();
                tracing::info!(
                    retry_in_ms = delay.as_millis() as u64,
                    attempt = backoff.attempts(),
                    "reconcile failed; retrying with backoff"
                );
                retry_at = Some(Instant::now() + delay);
            }
        }
    }
    runs
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Fires `trigger` every `period` (the first after one period) until the
/// handle is closed. A zero period fires nothing.
pub fn spawn_ticker(
    triggers: Triggers,
    period: std::time::Duration,
    trigger: Trigger,
) -> Option<tokio::task::JoinHandle<()>> {
    if period.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if triggers.inner.closed.load(Ordering::SeqCst) {
                break;
            }
            triggers.fire(trigger);
        }
    }))
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
