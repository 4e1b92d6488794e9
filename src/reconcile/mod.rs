//! The reconcile pass: the one path from manifests (or a saved plan) to a
//! registry that matches them.
//!
//! [`run`] owns every step: load -> validate -> observe -> plan -> (when
//! there is something to do: take the lease -> observe -> plan again under
//! it) -> execute -> read back and verify -> release the lease. `plan`,
//! `apply`, `apply --plan` and every daemon reconcile call it; they differ
//! only in the [`Input`] and the [`Mode`], and in how they show the
//! [`Outcome`]. Exit codes are not chosen here: the CLI maps
//! [`Outcome::verdict`].

mod leaks;
mod load;
mod locate;
mod observe;
mod outcome;
mod outputs;

use std::time::Duration;

pub use load::load;

pub use observe::{action_lines, observe, pending, plan, request_for};
pub use outcome::{Outcome, Stop, Verdict};

use crate::apply::{self, ApplyOptions, CancelFlag};
use crate::clock::EvalClock;
use crate::manifest::targets::{self, Selector};
use crate::manifest::validate::LoadOptions;
use crate::manifest::{DesiredState, SourceFile};
use crate::plan::{Plan, PlanContext, SavedPlan};
use crate::registry::{
    self, AnyRegistry, HeldLease, Lease, OpenOptions, Registry, RegistryError, Sources,
};
use crate::term::Fence;

/// Where the pass's intent comes from.
#[derive(Debug, Clone)]
pub enum Input {
    /// Manifest files (a folder, a git commit) and how to load them.
    Manifests {
        files: Vec<SourceFile>,
        options: Box<LoadOptions>,
    },
    /// A plan saved by `plan --out`: its actions are what gets applied, and
    /// only if every value it observed still holds.
    Saved(Box<SavedPlan>),
    /// Manifest files an earlier pass loaded, with what that load made of
    /// them (whole, not narrowed): not parsed or validated again. The
    /// daemon keeps its last full pass's for the passes of the same files
    /// and options (a webhook's, a resync's).
    Loaded {
        files: Vec<SourceFile>,
        desired: std::sync::Arc<DesiredState>,
    },
}

/// Whether the pass may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Observe and plan; never write, never take the lease.
    Plan,
    /// Plan, then apply and verify when there is something to do.
    Apply,
}

/// How to run a pass.
pub struct Pass<'a> {
    pub mode: Mode,
    /// Remove owned aliases and stage holders no longer declared.
    pub prune: bool,
    /// Models applied at once.
    pub concurrency: usize,
    /// The revision written to `modelsync.revision` on moved versions.
    pub revision: Option<String>,
    /// The clock gates and audit stamps use.
    pub clock: EvalClock,
    /// Set by a shutdown: nothing more is started; the model in flight
    /// finishes and the lease is released.
    pub cancel: CancelFlag,
    /// Shown the plan that is about to be executed (or, when nothing will
    /// be, the plan the pass settled on), before any write.
    pub on_plan: Option<&'a (dyn Fn(&Plan) + Send + Sync)>,
    /// An elected daemon leader's fence (`watch --leader-election`): asked
    /// before the lease is taken and before every write; its epoch is
    /// stamped on each model written. `None`: no election.
    pub fence: Option<Fence>,
    /// Told how far the executor is (models done of total, failures).
    pub progress: Option<apply::Progress>,
    /// `--break-glass --reason`: moves go through windows and a freeze,
    /// and are stamped so.
    pub break_glass: Option<crate::plan::BreakGlass>,
    /// A targeted pass (`--model`, `--changed-since`): after every
    /// manifest is validated, the desired state is narrowed to what this
    /// selects ([`crate::manifest::targets`]) and only that is read,
    /// planned, applied and verified. With a saved plan, it must select
    /// exactly the plan's targets (`None`: the plan must be a full one).
    /// `None`: everything the manifests declare.
    pub targets: Option<Selector>,
    /// Locate the versions behind every declared model's aliases at the
    /// end of the pass (`Outcome::locations`: the daemon's feeds), reusing
    /// these earlier findings. `None`: locate nothing.
    pub locate: Option<&'a crate::state::artifacts::Locations>,
    /// Wait for the verifications this pass's moves started (`apply`),
    /// or only record them as `verifying` (`apply --no-wait`, the daemon).
    pub wait_verifications: bool,
    /// Told each verification record as it changes.
    pub on_verification: Option<apply::verify::OnRecord<'a>>,
    /// The outputs of `modelsync.toml` (`[outputs]`): after the registry
    /// writes (or, planning, as of after the plan), the marked fields of
    /// each are brought in line with the registry (`outputs.rs`). Empty:
    /// none.
    pub outputs: &'a [crate::outputs::Settings],
}

impl Pass<'_> {
    /// A pass with default settings for `mode`.
    pub fn new(mode: Mode, clock: EvalClock) -> Pass<'static> {
        Pass {
            mode,
            prune: false,
            concurrency: 8,
            revision: None,
            clock,
            cancel: CancelFlag::default(),
            on_plan: None,
            fence: None,
            progress: None,
            break_glass: None,
            targets: None,
            locate: None,
            wait_verifications: true,
            on_verification: None,
            outputs: &[],
        }
    }

    fn context(&self, prune: bool, registry: &AnyRegistry) -> PlanContext {
        PlanContext {
            now_ms: self.clock.now_ms(),
            prune,
            registry: registry.uri(),
            break_glass: self.break_glass.clone(),
        }
    }

    fn show(&self, plan: &Plan) {
        if let Some(f) = self.on_plan {
            f(plan);
        }
    }
}

/// Runs one pass against the registry `uri` names. The registry is opened
/// only once the manifests are valid (for writing in [`Mode::Apply`]: the
/// embedded registry's lock is held for the pass) and dropped at its end.
/// Never panics on registry errors; every way it can end is in the
/// returned [`Outcome`].
pub async fn run(uri: &str, input: Input, pass: &Pass<'_>) -> Outcome {
    let mut out = Outcome::default();
    let write = pass.mode == Mode::Apply;
    let mut early = None;
    let (desired, saved) = match input {
        Input::Manifests { files, options } => {
            match load_beside_reads(uri, files, *options, write, pass.targets.as_ref()).await {
                (Ok(d), reg) => {
                    early = reg;
                    (Some(d), None)
                }
                (Err(stop), _) => return stopped(out, stop),
            }
        }
        Input::Saved(saved) => match saved_targets(&saved, pass.targets.as_ref()) {
            Ok(()) => (None, Some(saved)),
            Err(stop) => return stopped(out, stop),
        },
        Input::Loaded { files, desired } => match pass.targets.as_ref() {
            None => (Some(std::sync::Arc::unwrap_or_clone(desired)), None),
            Some(selector) => match targeted(&desired, &files, selector) {
                Ok(d) => (Some(d), None),
                Err(stop) => return stopped(out, stop),
            },
        },
    };
    let reg = match early {
        Some(r) => r,
        None => match registry::open(uri, &OpenOptions { write }).await {
            Ok(r) => r,
            Err(e) => return stopped(out, Stop::Registry(e)),
        },
    };
    out.registry = reg.uri();
    let (desired, prune) = match (desired, &saved) {
        (Some(d), _) => (d, pass.prune),
        (None, Some(saved)) => match desired_of(saved, &reg) {
            Ok(d) => (d, saved.prune),
            Err(stop) => return stopped(out, stop),
        },
        (None, None) => unreachable!("an input is manifests or a saved plan"),
    };
    let sources = match registry::open_sources(&desired.registries) {
        Ok(s) => s,
        Err(e) => return stopped(out, Stop::Registry(e)),
    };
    run_on(
        &mut out,
        &reg,
        &sources,
        desired,
        saved.as_deref(),
        prune,
        pass,
    )
    .await;
    if !pass.outputs.is_empty() && out.stop.is_none() && !out.shutdown_while_applying {
        out.outputs = outputs::run(&reg, &out, pass.outputs, pass.mode).await;
        if let (Mode::Plan, Some(plan)) = (pass.mode, out.plan.as_mut()) {
            plan.outputs = out.outputs.clone();
        }
    }
    verify(&mut out, &reg, pass).await;
    let unreachable = matches!(&out.stop, Some(Stop::Registry(e)) if e.is_unreachable());
    if let Some(known) = pass.locate.filter(|_| !unreachable) {
        out.locations = locate::alias_holders(&reg, &out, known).await;
    }
    out.stats = reg.stats();
    out
}

/// What the steps after the registry opened work with.
struct On<'a, 'p> {
    reg: &'a AnyRegistry,
    sources: &'a Sources,
    /// The saved plan applied (`apply --plan`), if any.
    saved: Option<&'a SavedPlan>,
    pass: &'a Pass<'p>,
    ctx: PlanContext,
}

/// The pass once the registry is open and the manifests are loaded.
async fn run_on(
    out: &mut Outcome,
    reg: &AnyRegistry,
    sources: &Sources,
    desired: DesiredState,
    saved: Option<&SavedPlan>,
    prune: bool,
    pass: &Pass<'_>,
) {
    let on = On {
        reg,
        sources,
        saved,
        pass,
        ctx: pass.context(prune, reg),
    };
    if let Err(stop) = plan_on(out, &on, desired).await {
        out.stop = Some(stop);
        return;
    }
    let plan = out.plan.as_ref().expect("settled");
    // Holes in a protected model's protection: said at every run.
    for warning in plan.warnings() {
        tracing::warn!("{warning}");
    }
    if pass.mode == Mode::Plan || plan.is_empty() || plan.has_errors() {
        pass.show(plan);
        return;
    }
    if let Err(stop) = may_apply(pass) {
        out.stop = Some(stop);
        return;
    }
    match take_lease(reg, &pass.cancel).await {
        Ok(Some(lease)) => apply_leased(out, &on, lease).await,
        Ok(None) => out.stop = Some(Stop::Cancelled),
        Err(e) => out.stop = Some(Stop::Registry(e)),
    }
}

/// The plan (`settle`), with the capability probe run beside its first
/// reads: what the manifests need and the server lacks wins over whatever
/// those reads met.
async fn plan_on(out: &mut Outcome, on: &On<'_, '_>, desired: DesiredState) -> Result<(), Stop> {
    let (caps, settled) = tokio::join!(on.reg.capabilities(), settle(out, on, &desired));
    let lacking = caps.map(|c| crate::plan::capabilities::missing(&desired, &c));
    out.desired = Some(desired);
    match lacking {
        Err(e) => Err(Stop::Registry(e)),
        Ok(diags) if !diags.is_empty() => Err(Stop::Invalid(diags)),
        Ok(_) => settled,
    }
}

/// Whether a pass that has changes may start applying them: not
/// cancelled, and still the leader when it is one of several replicas.
fn may_apply(pass: &Pass<'_>) -> Result<(), Stop> {
    if pass.cancel.is_cancelled() {
        return Err(Stop::Cancelled);
    }
    match pass
        .fence
        .as_ref()
        .filter(|f| f.check_at(crate::clock::wall_ms()).is_err())
    {
        Some(fence) => Err(Stop::LostLeadership(fence.lost_reason())),
        None => Ok(()),
    }
}

/// Applies while the lease is kept, then releases it; a lost leadership
/// or lease stops the pass (unless something stopped it first).
async fn apply_leased(out: &mut Outcome, on: &On<'_, '_>, lease: Lease) {
    let (reg, pass) = (on.reg, on.pass);
    let held = lease.held();
    tokio::select! {
        () = apply_under_lease(out, on, held.clone()) => {}
        never = reg.keep_lease(&lease) => match never {},
    }
    if let Some(fence) = pass.fence.as_ref().filter(|f| f.guard.is_lost())
        && out.stop.is_none()
    {
        out.stop = Some(Stop::LostLeadership(fence.lost_reason()));
    }
    // A lease released by force or taken over may only show at release.
    if let Err(e) = reg.release_lease(lease).await {
        tracing::warn!(error = %e, "could not release the applier lease");
    }
    if let Some(held) = held.filter(|h| h.guard().is_lost())
        && out.stop.is_none()
    {
        out.stop = Some(Stop::LostLease(crate::term::lost_reason(held.guard())));
    }
}

/// After the read-back, with the lease released: the verifications the
/// pass's moves started (`plan::verify::started`) are recorded as
/// `verifying` on the moved versions and, unless the pass does not wait,
/// run to their end (`apply::verify`). Verifications take minutes; no
/// other applier waits for them.
async fn verify(out: &mut Outcome, reg: &AnyRegistry, pass: &Pass<'_>) {
    if out.stop.is_some() || out.shutdown_while_applying || pass.cancel.is_cancelled() {
        return;
    }
    let (Some(desired), Some(before), Some(after)) = (&out.desired, &out.observed, &out.verified)
    else {
        return;
    };
    let jobs = crate::plan::verify::started(desired, before, after);
    if jobs.is_empty() {
        return;
    }
    let running = apply::verify::start(reg, jobs, pass.revision.as_deref()).await;
    out.verifications = if pass.wait_verifications {
        apply::verify::run(reg, running, Some(&pass.cancel), pass.on_verification).await
    } else {
        running
    };
}

/// Under the lease (renewed by its heartbeat meanwhile): read again and
/// plan again (a saved plan: check it is still fresh), execute, then read
/// back and verify. Each write first asks `lease` that it is still held.
async fn apply_under_lease(out: &mut Outcome, on: &On<'_, '_>, lease: Option<HeldLease>) {
    let (reg, sources, saved, pass, ctx) = (on.reg, on.sources, on.saved, on.pass, &on.ctx);
    let desired = out.desired.take().expect("loaded");
    let settled = settle(out, on, &desired).await;
    out.desired = Some(desired);
    if let Err(stop) = settled {
        out.stop = Some(stop);
        return;
    }
    let plan = out.plan.clone().expect("settled");
    pass.show(&plan);
    if plan.is_empty() || plan.has_errors() {
        return;
    }
    let desired = out.desired.as_ref().expect("loaded");
    let opts = ApplyOptions {
        concurrency: pass.concurrency,
        revision: pass.revision.clone(),
        now_ms: pass.clock.now_ms(),
        cancel: Some(pass.cancel.clone()),
        gates: desired.gate_specs(),
        approvals: desired.approvals.clone(),
        lease: lease.clone(),
        fence: pass.fence.clone(),
        progress: pass.progress.clone(),
        sources: sources.clone(),
        break_glass: pass.break_glass.clone(),
    };
    let report = apply::execute(reg, &plan, &opts).await;
    out.shutdown_while_applying = pass.cancel.is_cancelled();
    let wrote = report.applied() > 0;
    out.report = Some(report);
    let lost = lease.is_some_and(|h| h.guard().is_lost())
        || pass.fence.as_ref().is_some_and(|f| f.guard.is_lost());
    if wrote && !out.shutdown_while_applying && !lost {
        match observe::plan(reg, sources, desired, &pass.context(ctx.prune, reg)).await {
            Ok((live, after)) => {
                out.verified = Some(live);
                out.pending = match saved {
                    Some(_) => observe::pending_reviewed(&after, &plan),
                    None => pending(&after),
                }
            }
            Err(e) => out.stop = Some(Stop::Registry(e)),
        }
    }
}

/// Observes and plans (a saved plan: observes and checks it), filling
/// `out.observed` and `out.plan`; refuses a plan that carries a secret.
async fn settle(out: &mut Outcome, on: &On<'_, '_>, desired: &DesiredState) -> Result<(), Stop> {
    let (live, plan) = observe::plan(on.reg, on.sources, desired, &on.ctx)
        .await
        .map_err(Stop::Registry)?;
    let plan = match on.saved {
        None => plan,
        Some(saved) => {
            let stale = crate::plan::stale::check(saved, &live);
            if !stale.is_empty() {
                out.observed = Some(live);
                return Err(Stop::Stale(stale));
            }
            // Fresh: its gates are evaluated again, as now.
            crate::plan::saved::regated(&saved.plan, &plan)
        }
    };
    out.observed = Some(live);
    // A plan that would show a secret is neither kept, shown nor applied.
    leaks::in_plan(&plan).map_err(Stop::Leak)?;
    out.plan = Some(plan);
    Ok(())
}

/// The manifests a saved plan was made from, after checking it was made
/// for this registry.
fn desired_of(saved: &SavedPlan, reg: &AnyRegistry) -> Result<DesiredState, Stop> {
    if saved.registry != reg.uri() {
        return Err(Stop::OtherRegistry {
            planned: saved.registry.clone(),
            here: reg.uri(),
        });
    }
    saved.desired().map_err(Stop::Invalid)
}

/// Loads the manifests (a targeted pass: narrowed to its targets, see
/// [`targeted`]); on MLflow, when they look like more models than a
/// per-model read suits and the pass is not targeted, the registry's bulk
/// reads run meanwhile (`AnyRegistry::prefetch`) and the opened registry
/// is handed back. Invalid manifests win: the reads are dropped
/// unfinished, whatever they met.
async fn load_beside_reads(
    uri: &str,
    files: Vec<SourceFile>,
    options: LoadOptions,
    write: bool,
    selector: Option<&Selector>,
) -> (Result<DesiredState, Stop>, Option<AnyRegistry>) {
    if let Some(selector) = selector {
        let loaded = load(&files, &options).map_err(Stop::Invalid);
        return (loaded.and_then(|d| targeted(&d, &files, selector)), None);
    }
    let declared = files
        .iter()
        .map(|f| count(&f.contents, b"RegisteredModel"))
        .sum::<usize>();
    let reg = if registry::worth_prefetching(uri, declared) {
        registry::open(uri, &OpenOptions { write }).await.ok()
    } else {
        None
    };
    let Some(reg) = reg else {
        return (load(&files, &options).map_err(Stop::Invalid), None);
    };
    let loaded = {
        let parse = tokio::task::spawn_blocking(move || load(&files, &options));
        tokio::pin!(parse);
        let reads = reg.prefetch();
        tokio::pin!(reads);
        let mut read = false;
        let loaded = loop {
            tokio::select! {
                loaded = &mut parse => break loaded,
                () = &mut reads, if !read => read = true,
            }
        };
        let loaded = match loaded {
            Ok(l) => l,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        if loaded.is_ok() && !read {
            reads.await;
        }
        loaded
    };
    (loaded.map_err(Stop::Invalid), Some(reg))
}

/// `desired` (every manifest validated) narrowed to what `selector`
/// selects; a pattern that matches nothing stops the pass. Documents
/// deleted since `--changed-since`'s revision are logged: a model the
/// manifests no longer declare is left alone, as in a full pass.
fn targeted(
    desired: &DesiredState,
    files: &[SourceFile],
    selector: &Selector,
) -> Result<DesiredState, Stop> {
    let selection = targets::select(selector, files, desired).map_err(Stop::Targets)?;
    for name in &selection.gone {
        tracing::warn!(
            model = %name,
            "its manifest document was deleted since the --changed-since revision: a model the manifests no longer declare is left alone, as in a full pass (prune acts only on declared models)"
        );
    }
    tracing::info!(
        targets = %selection.targets.names().join(", "),
        "targeted pass: only these are read and planned"
    );
    Ok(desired.narrowed_copy(&selection.targets))
}

/// Checks that `selector` may apply `saved`: what it selects over the
/// plan's own manifests is exactly what the plan was made for (no
/// selector: a full plan). Pure; nothing is read.
fn saved_targets(saved: &SavedPlan, selector: Option<&Selector>) -> Result<(), Stop> {
    let asked = match selector {
        None => None,
        Some(selector) => {
            let all = saved.desired_all().map_err(Stop::Invalid)?;
            let (files, _) = saved.inputs();
            let selection = targets::select(selector, &files, &all).map_err(Stop::Targets)?;
            Some(selection.targets)
        }
    };
    saved
        .applies_as(asked.as_ref())
        .map_err(|e| Stop::Targets(e.to_string()))
}

/// Occurrences of `needle` in `hay` (an estimate of the declared models).
fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Takes the applier lease, giving up (`Ok(None)`) when a shutdown is asked
/// for while waiting.
async fn take_lease(
    reg: &AnyRegistry,
    cancel: &CancelFlag,
) -> Result<Option<Lease>, RegistryError> {
    let acquire = reg.acquire_lease();
    tokio::pin!(acquire);
    loop {
        tokio::select! {
            lease = &mut acquire => return lease.map(Some),
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if cancel.is_cancelled() {
                    return Ok(None);
                }
            }
        }
    }
}

fn stopped(mut out: Outcome, stop: Stop) -> Outcome {
    out.stop = Some(stop);
    out
}
