//! The executor: runs a [`Plan`] through a [`Registry`]. The only caller of
//! the registry's write methods (the applier lease, the one other write, is
//! taken and released by `reconcile` through `registry::AnyRegistry`).
//!
//! Models are applied concurrently (bounded); the actions of one model run
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
//! writes nothing further.

mod copy;
mod model;
mod report;

use futures_util::StreamExt;
use futures_util::stream;

pub use report::{ActionResult, ApplyReport, Outcome};

use crate::plan::Plan;
use crate::registry::{LeaseGuard, Registry};

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
    /// The applier lease the writes are made under: asked before each
    /// write; once it is lost (or its deadline passed) nothing further is
    /// written and the remaining actions are skipped.
    pub lease: Option<LeaseGuard>,
    /// The other registries copies (`from:`) read from.
    pub sources: crate::registry::Sources,
}

impl ApplyOptions {
    /// `Err(reason)` when the lease is lost: write nothing.
    fn may_write(&self) -> Result<(), &'static str> {
        self.lease.as_ref().map_or(Ok(()), LeaseGuard::check)
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
    for exp in &plan.experiments {
        results.extend(model::apply_experiment(reg, exp, opts).await);
    }
    let per_model: Vec<Vec<ActionResult>> = stream::iter(&plan.models)
        .map(|mp| model::apply_model(reg, mp, opts))
        .buffered(opts.concurrency.max(1))
        .collect()
        .await;
    results.extend(per_model.into_iter().flatten());
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
