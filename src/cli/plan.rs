//! `modelsync plan` and `modelsync apply` (from manifests or a saved plan).

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, bail};

use super::args::{ApplyArgs, PlanArgs, PlanFormat};
use super::common::{self, Loaded, print};
use super::{Exit, GlobalArgs};
use crate::apply::{self, ApplyOptions, ApplyReport};
use crate::plan::{self, PLAN_FORMAT_VERSION, Plan, PlanContext, SavedPlan, render};
use crate::reconcile;
use crate::registry::{Registry, Scope, SnapshotRequest};

/// `modelsync plan`.
pub async fn plan(g: &GlobalArgs, a: PlanArgs) -> anyhow::Result<Exit> {
    let desired = match common::load_manifests(&a.paths, &a.options.protect)? {
        Loaded::Valid(d) => d,
        Loaded::Invalid => return Ok(common::INVALID),
    };
    let reg = common::open_registry(g, false).await?;
    let ctx = PlanContext {
        now_ms: reconcile::now_ms(),
        prune: a.options.prune,
    };
    let (_, plan) = reconcile::plan(&reg, &desired, &ctx)
        .await
        .with_context(|| format!("reading {}", reg.uri()))?;
    let rendered = match a.format {
        PlanFormat::Text => render::text(&plan, common::use_color(g)),
        PlanFormat::Json => render::json(&plan),
        PlanFormat::Markdown => render::markdown(&plan),
    };
    print(&rendered);
    if let Some(out) = &a.out {
        let saved = SavedPlan {
            format_version: PLAN_FORMAT_VERSION,
            registry: reg.uri(),
            manifests_digest: desired.digest.clone(),
            revision: common::revision(a.options.revision.as_deref()),
            created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            prune: a.options.prune,
            plan: plan.clone(),
            gates: desired.gate_specs(),
        };
        write_plan(out, &saved)?;
        eprintln!(
            "Saved the plan to {}; apply it with: modelsync apply --plan {}",
            out.display(),
            out.display()
        );
    }
    Ok(if plan.has_errors() {
        Exit::Error
    } else if a.detailed_exitcode && !plan.is_empty() {
        Exit::Changes
    } else {
        Exit::Ok
    })
}

/// `modelsync apply`.
pub async fn apply(g: &GlobalArgs, a: ApplyArgs) -> anyhow::Result<Exit> {
    if let Some(file) = &a.plan {
        return apply_saved(g, &a, file).await;
    }
    let desired = match common::load_manifests(&a.paths, &a.options.protect)? {
        Loaded::Valid(d) => d,
        Loaded::Invalid => return Ok(common::INVALID),
    };
    let reg = common::open_registry(g, true).await?;
    let ctx = PlanContext {
        now_ms: reconcile::now_ms(),
        prune: a.options.prune,
    };
    let (plan, lease) = reconcile::plan_for_apply(&reg, &desired, &ctx)
        .await
        .with_context(|| format!("planning against {}", reg.uri()))?;
    let revision = common::revision(a.options.revision.as_deref());
    let mut result = execute(g, &reg, &plan, &a, revision, desired.gate_specs()).await;
    if matches!(result, Ok(Exit::Ok | Exit::Blocked)) && !plan.is_empty() {
        // Read back and verify: one bulk read; anything still pending that
        // no gate blocks means a write did not take.
        let (_, after) = reconcile::plan(&reg, &desired, &ctx)
            .await
            .with_context(|| format!("verifying {}", reg.uri()))?;
        let pending = pending_after(&after);
        if !pending.is_empty() {
            for line in &pending {
                eprintln!("not converged: {line}");
            }
            eprintln!(
                "error: the registry does not match the manifests after apply ({} action(s) still pending)",
                pending.len()
            );
            result = Ok(Exit::Error);
        }
    }
    release(&reg, lease).await;
    result
}

/// The actions a re-plan still finds after an apply, gate-blocked moves
/// excepted.
fn pending_after(after: &Plan) -> Vec<String> {
    let models = after.models.iter().flat_map(|m| {
        m.actions
            .iter()
            .filter(|a| !a.is_blocked())
            .map(move |a| format!("{}: {}", m.model, plan::describe::action(a)))
    });
    let experiments = after
        .experiments
        .iter()
        .filter(|e| !e.actions.is_empty())
        .map(|e| format!("experiment {}: {} action(s)", e.experiment, e.actions.len()));
    models.chain(experiments).collect()
}

async fn release(
    reg: &crate::registry::AnyRegistry,
    lease: Option<crate::registry::mlflow::lease::Lease>,
) {
    if let Err(e) = reg.release_lease(lease).await {
        tracing::warn!(error = %e, "could not release the applier lease");
    }
}

async fn apply_saved(g: &GlobalArgs, a: &ApplyArgs, file: &Path) -> anyhow::Result<Exit> {
    let saved = read_plan(file)?;
    let reg = common::open_registry(g, true).await?;
    let lease = reg
        .acquire_lease()
        .await
        .with_context(|| format!("taking the applier lease on {}", reg.uri()))?;
    let result = apply_saved_locked(g, a, file, &saved, &reg).await;
    release(&reg, lease).await;
    result
}

async fn apply_saved_locked(
    g: &GlobalArgs,
    a: &ApplyArgs,
    file: &Path,
    saved: &SavedPlan,
    reg: &crate::registry::AnyRegistry,
) -> anyhow::Result<Exit> {
    if saved.registry != reg.uri() {
        bail!(
            "{} was made against {}, not {}; make a new plan against this registry",
            file.display(),
            saved.registry,
            reg.uri()
        );
    }
    let req = SnapshotRequest {
        models: Scope::Named(saved.plan.models.iter().map(|m| m.model.clone()).collect()),
        experiments: saved
            .plan
            .experiments
            .iter()
            .map(|e| e.experiment.clone())
            .collect::<BTreeSet<_>>(),
    };
    let live = reg
        .snapshot(&req)
        .await
        .with_context(|| format!("reading {}", reg.uri()))?;
    let stale = plan::stale::check(&saved.plan, &live);
    if !stale.is_empty() {
        for line in &stale {
            eprintln!("stale: {line}");
        }
        eprintln!(
            "error: the registry changed since {} was made ({} difference(s)); nothing was written. Run `modelsync plan --out` again.",
            file.display(),
            stale.len()
        );
        return Ok(Exit::Stale);
    }
    execute(
        g,
        reg,
        &saved.plan,
        a,
        saved.revision.clone(),
        saved.gates.clone(),
    )
    .await
}

async fn execute<R: Registry>(
    g: &GlobalArgs,
    reg: &R,
    plan: &Plan,
    a: &ApplyArgs,
    revision: Option<String>,
    gates: crate::manifest::GateSpecs,
) -> anyhow::Result<Exit> {
    print(&render::text(plan, common::use_color(g)));
    if plan.is_empty() {
        return Ok(if plan.has_errors() {
            Exit::Error
        } else {
            Exit::Ok
        });
    }
    let opts = ApplyOptions {
        concurrency: a.concurrency,
        revision,
        now_ms: reconcile::now_ms(),
        cancel: None,
        gates,
    };
    let report = apply::execute(reg, plan, &opts).await;
    print("\n");
    print(&report.render_text());
    Ok(exit_for(plan, &report))
}

/// Exit code of an apply: failures (1) over blocked gates (5) over success.
pub fn exit_for(plan: &Plan, report: &ApplyReport) -> Exit {
    if report.failed() > 0 || plan.has_errors() {
        Exit::Error
    } else if report.blocked() > 0 {
        Exit::Blocked
    } else {
        Exit::Ok
    }
}

fn write_plan(path: &Path, saved: &SavedPlan) -> anyhow::Result<()> {
    let body = serde_json::to_string_pretty(saved)? + "\n";
    std::fs::write(path, body).with_context(|| format!("writing {}", path.display()))
}

fn read_plan(path: &Path) -> anyhow::Result<SavedPlan> {
    let body =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let raw: serde_json::Value = serde_json::from_str(&body)
        .with_context(|| format!("{} is not a saved plan (invalid JSON)", path.display()))?;
    let version = raw.get("format_version").and_then(|v| v.as_u64());
    match version {
        Some(v) if v > u64::from(PLAN_FORMAT_VERSION) => bail!(
            "{} has plan format {v}, newer than this modelsync understands ({PLAN_FORMAT_VERSION}); upgrade modelsync",
            path.display()
        ),
        None => bail!("{} is not a saved plan (no format_version)", path.display()),
        _ => {}
    }
    serde_json::from_value(raw)
        .with_context(|| format!("{} is not a valid saved plan", path.display()))
}
