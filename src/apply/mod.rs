//! The executor: runs a [`Plan`] through a [`Registry`]. The only caller of
//! the registry's write methods (the applier lease, the one other write, is
//! taken and released by `reconcile` through `registry::AnyRegistry`).
//!
//! Models are applied concurrently (bounded, a new one started as soon as
//! any finishes; the report keeps the plan's order); the actions of one model run
//! strictly in the plan's order (create model -> register versions -> moves
//! -> archive replaced holders -> prune -> ownership tag), so a replaced
//! holder is only archived once its replacement is in place. Before a
//! model's first write, the model is read again and the plan's observed
//! values checked (read-check-write): a concurrent writer makes that model's
//! actions a conflict, not a lost update. A failed action skips the rest of
//! its model; other models go on. Every applied move leaves audit tags on the
//! version (`modelsync.promoted-at.*`, `modelsync.previous.*`,
//! `modelsync.revision`). Every write is preceded by a check of the applier
//! lease's guard ([`ApplyOptions::lease`]): a holder that lost its lease
//! writes nothing further. An elected daemon leader ([`ApplyOptions::fence`])
//! is checked the same way before each write, and before a model's first
//! write the model's `modelsync.epoch` is judged (`fence.rs`): a model
//! carrying a newer epoch of the leader's own namespace is not written (and
//! the leader steps down, with that cause); otherwise the model is stamped
//! with the leader's token first. A conflict under the applier lease has
//! the lease confirmed at once: a lease released by force or taken over
//! makes the model's actions skipped for that reason, not conflicts.
//! Prompts (`apply/prompts.rs`) are applied after the models, one at a
//! time, read again before their first write too; permission changes
//! (`apply/access.rs`) after them, one model at a time.
//!
//! The operations a person (or a verification) asks for outside a plan
//! are here too, since only the executor writes: `rollback.rs` (a target
//! moved back and held), `hold.rs` (holds placed and released) and
//! `freeze.rs` (`modelsync freeze`/`unfreeze`).

mod access;
mod copy;
mod experiment;
mod fence;
pub mod freeze;
pub mod hold;
mod model;
mod prepare;
mod prompts;
mod report;
pub mod rollback;
pub mod verify;

use futures_util::StreamExt;
use futures_util::stream;

pub use report::{ActionResult, ApplyReport, Outcome};

use crate::plan::Plan;
use crate::registry::{HeldLease, Registry};
use crate::term::{Fence, lost_reason};

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Models applied at once.
    pub concurrency: usize,
    /// The manifests' revision, written to `modelsync.revision`.
    pub revision: Option<String>,
    /// The time written to `modelsync.promoted-at.*`, ms since the epoch.
    pub now_ms: i64,
    /// When set, models not yet started are skipped (a shutdown); a model
    /// already started always finishes its actions.
    pub cancel: Option<CancelFlag>,
    /// Gates to re-check just before each move (from the manifests or the
    /// saved plan); a move whose gate no longer passes is blocked.
    pub gates: crate::manifest::GateSpecs,
    /// What `approvals` gates are re-checked against: the approvers file
    /// and the approval files read with the manifests (tags are read
    /// fresh).
    pub approvals: crate::manifest::Approvals,
    /// The applier lease the writes are made under: asked before each
    /// write; once it is lost (or its deadline passed) nothing further is
    /// written and the remaining actions are skipped. A conflict has it
    /// confirmed with the registry at once: under a lease released by
    /// force or taken over, the conflict is that loss, and reported so.
    pub lease: Option<HeldLease>,
    /// The other registries copies (`from:`) read from.
    pub sources: crate::registry::Sources,
    /// An elected daemon leader's fence: asked before each write like the
    /// lease; its epoch is stamped on (and compared with) each model.
    pub fence: Option<Fence>,
    /// Told after each model (and experiment) is done.
    pub progress: Option<Progress>,
    /// `--break-glass`: who and why, stamped on each move that went
    /// through a window or a freeze.
    pub break_glass: Option<crate::plan::BreakGlass>,
}

/// How far an apply is: objects (models and experiments) done of `total`,
/// and how many of them had a failed action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressEvent {
    pub done: usize,
    pub total: usize,
    pub failed: usize,
}

/// A progress callback ([`ApplyOptions::progress`]): called with `done: 0`
/// before the first object, then after each one.
#[derive(Clone)]
pub struct Progress(pub std::sync::Arc<dyn Fn(ProgressEvent) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// Counts finished objects and tells the callback.
struct Tally {
    progress: Option<Progress>,
    total: usize,
    done: std::sync::atomic::AtomicUsize,
    failed: std::sync::atomic::AtomicUsize,
}

impl Tally {
    fn new(progress: Option<Progress>, total: usize) -> Tally {
        let t = Tally {
            progress,
            total,
            done: Default::default(),
            failed: Default::default(),
        };
        t.tell(0, 0);
        t
    }

    fn finished(&self, results: &[ActionResult]) {
        use std::sync::atomic::Ordering::SeqCst;
        let failed = results
            .iter()
            .any(|r| matches!(r.outcome, Outcome::Failed(_) | Outcome::Conflict(_)));
        let f = self.failed.fetch_add(usize::from(failed), SeqCst) + usize::from(failed);
        let d = self.done.fetch_add(1, SeqCst) + 1;
        self.tell(d, f);
    }

    fn tell(&self, done: usize, failed: usize) {
        if let Some(p) = &self.progress {
            (p.0)(ProgressEvent {
                done,
                total: self.total,
                failed,
            });
        }
    }
}

impl ApplyOptions {
    /// `Err(reason)` when the leadership or the lease is lost: write
    /// nothing.
    fn may_write(&self) -> Result<(), String> {
        let now = crate::clock::wall_ms();
        if let Some(fence) = &self.fence
            && fence.check_at(now).is_err()
        {
            return Err(fence.lost_reason());
        }
        match &self.lease {
            Some(held) if held.guard().check_at(now).is_err() => Err(lost_reason(held.guard())),
            _ => Ok(()),
        }
    }

    /// After a conflict: `Err(reason)` when the applier lease turns out
    /// lost (confirmed with the registry now) — the conflict is then the
    /// other applier's writes, and is reported as the lost lease.
    async fn lease_held_still(&self) -> Result<(), String> {
        match &self.lease {
            Some(held) => held.confirm().await,
            None => Ok(()),
        }
    }
}

/// A shared flag that asks an apply to stop between models.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl CancelFlag {
    /// Asks the apply to stop before the next model.
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// True once [`CancelFlag::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Applies `plan` and reports one result per action. Never panics on
/// registry errors: they become [`Outcome::Failed`] results.
pub async fn execute<R: Registry>(reg: &R, plan: &Plan, opts: &ApplyOptions) -> ApplyReport {
    let mut results = Vec::new();
    let tally = Tally::new(
        opts.progress.clone(),
        plan.experiments.len() + plan.models.len() + plan.prompts.len() + plan.access.len(),
    );
    for exp in &plan.experiments {
        let r = experiment::apply_experiment(reg, exp, opts).await;
        tally.finished(&r);
        results.extend(r);
    }
    let tally = &tally;
    // Unordered, so a slow model never holds the next ones back (`buffered`
    // starts a model only once every earlier one is done and yielded); the
    // results are put back in the plan's order.
    let mut per_model: Vec<(usize, Vec<ActionResult>)> =
        stream::iter(plan.models.iter().enumerate())
            .map(|(i, mp)| async move {
                let r = model::apply_model(reg, mp, opts).await;
                tally.finished(&r);
                (i, r)
            })
            .buffer_unordered(opts.concurrency.max(1))
            .collect()
            .await;
    per_model.sort_by_key(|(i, _)| *i);
    results.extend(per_model.into_iter().flat_map(|(_, r)| r));
    for pp in &plan.prompts {
        let r = prompts::apply_prompt(reg, pp, opts).await;
        tally.finished(&r);
        results.extend(r);
    }
    for ap in &plan.access {
        let r = access::apply_access(reg, ap, opts).await;
        tally.finished(&r);
        results.extend(r);
    }
    if results.iter().any(|r| r.outcome == Outcome::Applied)
        && let Err(e) = reg.flush().await
    {
        results.push(ActionResult {
            object: reg.uri(),
            action: "flush".into(),
            kind: "flush",
            outcome: Outcome::Failed(e.to_string()),
        });
    }
    ApplyReport { results }
}
