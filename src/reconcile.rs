//! One reconcile: load -> validate -> snapshot -> plan -> apply.
//!
//! `plan`, `apply` and the daemon all go through these functions, so there
//! is one path from manifests to a converged registry.

use std::collections::BTreeSet;

use crate::apply::{self, ApplyOptions, ApplyReport};
use crate::manifest::validate::LoadOptions;
use crate::manifest::{self, DesiredState, Diagnostic, SourceFile};
use crate::plan::{self, Plan, PlanContext};
use crate::registry::mlflow::lease::Lease;
use crate::registry::{AnyRegistry, Registry, RegistryError, Scope, SnapshotRequest};
use crate::state::LiveState;

/// Why a reconcile stopped before applying anything.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The manifests are invalid; nothing was read or written.
    #[error("{} problem(s) in the manifests", .0.len())]
    Invalid(Vec<Diagnostic>),
    /// The registry could not be read.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Validates manifest files into a desired state (with protected targets).
pub fn load(files: &[SourceFile], options: &LoadOptions) -> Result<DesiredState, ReconcileError> {
    manifest::validate::load_with(files, options).map_err(ReconcileError::Invalid)
}

/// The snapshot request for what `desired` declares.
pub fn request_for(desired: &DesiredState) -> SnapshotRequest {
    SnapshotRequest {
        models: Scope::Named(desired.models.keys().cloned().collect()),
        experiments: desired.experiments.keys().cloned().collect::<BTreeSet<_>>(),
    }
}

/// Reads everything the planner needs for `desired`: the models and
/// experiments, the resolution of `runs:/` sources, declared versions
/// still registering (waited for), and the runs that gates read. Reads are
/// bulk; extra requests only for what needs them.
pub async fn observe<R: Registry>(
    reg: &R,
    desired: &DesiredState,
) -> Result<LiveState, RegistryError> {
    let mut live = reg.snapshot(&request_for(desired)).await?;
    let sources = plan::sources_to_resolve(desired, &live);
    if !sources.is_empty() {
        live.record_resolutions(reg.resolve_sources(&sources).await?);
    }
    for (model, version) in plan::versions_pending(desired, &live) {
        if let Some(v) = reg.await_registration(&model, version).await? {
            live.update_version(&model, v);
        }
    }
    let runs = plan::runs_needed(desired, &live);
    if !runs.is_empty() {
        live.runs = reg.get_runs(&runs).await?;
    }
    Ok(live)
}

/// Observes the registry and plans.
pub async fn plan<R: Registry>(
    reg: &R,
    desired: &DesiredState,
    ctx: &PlanContext,
) -> Result<(LiveState, Plan), RegistryError> {
    let live = observe(reg, desired).await?;
    let plan = plan::plan(desired, &live, ctx);
    Ok((live, plan))
}

/// Plans for an apply. A plan with nothing to do is returned as is, with no
/// lease and no write at all. Otherwise the applier lease is taken (MLflow;
/// the embedded registry is locked already) and the plan made again from a
/// fresh snapshot under it, so two appliers never act on the same reading.
/// The caller releases the lease with [`AnyRegistry::release_lease`].
pub async fn plan_for_apply(
    reg: &AnyRegistry,
    desired: &DesiredState,
    ctx: &PlanContext,
) -> Result<(Plan, Option<Lease>), RegistryError> {
    let (_, first) = plan(reg, desired, ctx).await?;
    if first.is_empty() {
        return Ok((first, None));
    }
    let lease = reg.acquire_lease().await?;
    match plan(reg, desired, ctx).await {
        Ok((_, again)) => Ok((again, lease)),
        Err(e) => {
            let _ = reg.release_lease(lease).await;
            Err(e)
        }
    }
}

/// The result of a full reconcile.
#[derive(Debug, Clone)]
pub struct Reconciled {
    pub plan: Plan,
    pub report: ApplyReport,
}

/// Plans and applies once.
pub async fn reconcile<R: Registry>(
    reg: &R,
    desired: &DesiredState,
    ctx: &PlanContext,
    opts: &ApplyOptions,
) -> Result<Reconciled, RegistryError> {
    let (_, plan) = plan(reg, desired, ctx).await?;
    let report = apply::execute(reg, &plan, opts).await;
    Ok(Reconciled { plan, report })
}

/// The current time in ms since the epoch; `MODELSYNC_NOW` (RFC 3339)
/// overrides it, to evaluate soak gates as of another time (and in tests).
pub fn now_ms() -> i64 {
    if let Some(t) = std::env::var("MODELSYNC_NOW")
        .ok()
        .and_then(|v| humantime::parse_rfc3339_weak(&v).ok())
    {
        return t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
