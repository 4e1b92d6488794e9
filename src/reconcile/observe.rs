//! Reading what the planner needs: one snapshot (in bulk; a targeted
//! pass's few models by name) and, beside it, the declared prompts; then
//! only the extra reads some manifests need
//! (`runs:/` sources to resolve, runs that gates read, and their MLflow 3
//! logged models, and the bytes behind the versions the plan pins or a
//! `digest: unchanged` gate checks).

use std::collections::{BTreeMap, BTreeSet};

use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::manifest::DesiredState;
use crate::plan::{self, Action, Plan, PlanContext, describe};
use crate::registry::evidence::read_evidence;
use crate::registry::{Registry, RegistryError, Scope, SnapshotRequest, Sources};
use crate::state::artifacts::ArtifactTree;
use crate::state::capabilities::PermissionApi;
use crate::state::{CopySource, LiveRun, LiveState, LiveVersion, TreeDigest, tags};

/// The snapshot request for what `desired` declares: its models (a
/// targeted pass's as [`Scope::Targeted`]: a few, read by name), and its
/// experiments with those copies go to (`from: {experiment}`), so that a
/// deleted one is a plan error before any write.
pub fn request_for(desired: &DesiredState) -> SnapshotRequest {
    let copies = desired
        .copy_refs()
        .into_values()
        .map(|f| f.experiment.clone());
    let names = desired.models.keys().cloned().collect();
    SnapshotRequest {
        models: match desired.targets {
            Some(_) => Scope::Targeted(names),
            None => Scope::Named(names),
        },
        experiments: desired.experiments.keys().cloned().chain(copies).collect(),
    }
}

/// Reads everything the planner needs for `desired`: the models and
/// experiments, the resolution of `runs:/` sources, declared versions
/// still registering (waited for), and the runs and logged models that
/// gates read. Reads are bulk; extra requests only for what needs them.
pub async fn observe<R: Registry>(
    reg: &R,
    sources: &Sources,
    desired: &DesiredState,
) -> Result<LiveState, RegistryError> {
    let prompts = async {
        let names: BTreeSet<String> = desired.prompts.keys().cloned().collect();
        if names.is_empty() {
            return Ok(BTreeMap::new());
        }
        reg.read_prompts(&names).await
    };
    let (mut live, prompts) =
        futures_util::future::try_join(reg.snapshot(&request_for(desired)), prompts).await?;
    live.prompts = prompts;
    if needs_access(reg, desired, &live).await? {
        let access = reg
            .read_access()
            .await
            .map_err(|e| policies_need(desired, e))?;
        live.access = Some(access);
    }
    let copies = read_copy_sources(sources, desired).await?;
    let sources = plan::sources_to_resolve(desired, &live);
    if !sources.is_empty() {
        live.record_resolutions(reg.resolve_sources(&sources).await?);
    }
    for (model, version) in plan::versions_pending(desired, &live) {
        if let Some(v) = reg.await_registration(&model, version).await? {
            live.update_version(&model, v);
        }
    }
    live.copy_sources = copies;
    read_trees(reg, &plan::trees_needed(desired, &live), &mut live).await?;
    let runs = plan::runs_needed(desired, &live);
    let evidence = read_evidence(reg, &runs, &plan::logged_models_needed(desired, &live)).await?;
    live.runs = evidence.runs;
    live.logged_models = evidence.logged_models;
    // A copy not made yet is gated on its source run's evidence (the same
    // metrics the copy will carry); once made, on the copied run's.
    for src in live.copy_sources.values().flatten() {
        if !src.run_id.is_empty() && runs.contains(&src.run_id) {
            live.runs
                .entry(src.run_id.clone())
                .or_insert_with(|| LiveRun {
                    run_id: src.run_id.clone(),
                    experiment_id: String::new(),
                    metrics: src.metrics.clone(),
                });
        }
    }
    Ok(live)
}

/// Trees read at once.
const TREE_CONCURRENCY: usize = 2;

/// Reads the bytes `needed` names (each file streamed through its hash,
/// once per registry instance) into `live`. Bytes that cannot be read are
/// kept with why (the version is not pinned; a digest gate blocks), and
/// logged.
async fn read_trees<R: Registry>(
    reg: &R,
    needed: &plan::TreesNeeded,
    live: &mut LiveState,
) -> Result<(), RegistryError> {
    let versions: Vec<(String, LiveVersion)> = needed
        .versions
        .iter()
        .filter_map(|(m, n)| {
            let v = live.models.get(m)?.versions.get(n)?;
            Some((m.clone(), v.clone()))
        })
        .collect();
    let read: Vec<_> = stream::iter(versions.iter())
        .map(|(m, v)| async move { reg.version_tree(m, v).await.map(|t| (m, v.version, t)) })
        .buffer_unordered(TREE_CONCURRENCY)
        .try_collect()
        .await?;
    for (model, n, tree) in read {
        let what = format!("version {n} of {model:?}");
        live.version_trees
            .entry(model.clone())
            .or_default()
            .insert(n, unpinned(&what, tree));
    }
    let resolved = &live.resolved_sources;
    let read: Vec<_> = stream::iter(needed.sources.iter())
        .map(|s| async move {
            let tree = reg.source_tree(s, resolved.get(s)).await?;
            Ok::<_, RegistryError>((s.clone(), tree))
        })
        .buffer_unordered(TREE_CONCURRENCY)
        .try_collect()
        .await?;
    for (source, tree) in read {
        let tree = unpinned(&format!("source {source}"), tree);
        live.source_trees.insert(source, tree);
    }
    Ok(())
}

/// The tree read, or why not (logged: what it is not pinned to).
fn unpinned(what: &str, read: Result<ArtifactTree, String>) -> Result<TreeDigest, String> {
    read.map(|t| t.tree).inspect_err(|why| {
        tracing::warn!(
            "the bytes of {what} cannot be read, so their digest is not recorded: {why}"
        );
    })
}

/// Permissions are read when the manifests declare an `AccessPolicy`, or
/// when a declared model records grants modelsync made (a policy dropped:
/// its grants are taken back), on a registry that has permissions.
async fn needs_access<R: Registry>(
    reg: &R,
    desired: &DesiredState,
    live: &LiveState,
) -> Result<bool, RegistryError> {
    if !desired.policies.is_empty() {
        return Ok(true);
    }
    let recorded = live.models.values().any(|m| {
        m.tags
            .get(tags::ACCESS)
            .and_then(|t| crate::state::access::Record::parse(t))
            .is_some_and(|r| !r.grants.is_empty())
    });
    Ok(recorded && reg.capabilities().await?.permission_api != PermissionApi::None)
}

/// `e` with the policies that needed the read named (which file says so).
fn policies_need(desired: &DesiredState, e: RegistryError) -> RegistryError {
    let named: Vec<String> = desired
        .policies
        .values()
        .map(|p| format!("AccessPolicy {} ({})", p.name, p.origin))
        .collect();
    if named.is_empty() {
        return e;
    }
    let why = format!(" [needed by {}]", named.join(", "));
    match e {
        RegistryError::Invalid(m) => RegistryError::Invalid(m + &why),
        RegistryError::PermissionDenied { operation, message } => RegistryError::PermissionDenied {
            operation,
            message: message + &why,
        },
        RegistryError::Unauthenticated(m) => RegistryError::Unauthenticated(m + &why),
        other => other,
    }
}

/// Reads every version `from:` names in its registry, once per distinct
/// reference. An unreachable source registry is an error of the pass
/// (exit 3, nothing written); what makes one version uncopyable is kept
/// for the planner to report.
async fn read_copy_sources(
    sources: &Sources,
    desired: &DesiredState,
) -> Result<BTreeMap<String, Result<CopySource, String>>, RegistryError> {
    let mut out = BTreeMap::new();
    for (key, from) in desired.copy_refs() {
        out.insert(key, sources.read(from).await?);
    }
    Ok(out)
}

/// Observes the registry and plans.
pub async fn plan<R: Registry>(
    reg: &R,
    sources: &Sources,
    desired: &DesiredState,
    ctx: &PlanContext,
) -> Result<(LiveState, Plan), RegistryError> {
    let live = observe(reg, sources, desired).await?;
    let plan = plan::plan(desired, &live, ctx);
    Ok((live, plan))
}

/// One `model: action` (or `experiment name: action`, `prompt name:
/// action`) line per action of
/// `plan`, gate-blocked moves left out unless `blocked`: the wording of
/// `plan::describe`, for pending and drift reports.
pub fn action_lines(plan: &Plan, blocked: bool) -> Vec<String> {
    let models = plan.models.iter().flat_map(|m| {
        m.actions
            .iter()
            .filter(move |a| blocked || !a.is_blocked())
            .map(move |a| format!("{}: {}", m.model, describe::action(a)))
    });
    let experiments = plan.experiments.iter().flat_map(|e| {
        e.actions.iter().map(move |a| {
            format!(
                "experiment {}: {}",
                e.experiment,
                describe::experiment_action(a)
            )
        })
    });
    let mut lines: Vec<String> = models.chain(experiments).collect();
    lines.extend(describe::prompt_lines(&plan.prompts));
    lines.extend(describe::access_lines(&plan.access));
    lines
}

/// The actions a re-plan still finds after an apply, gate-blocked moves
/// excepted: what did not take.
pub fn pending(after: &Plan) -> Vec<String> {
    action_lines(after, false)
}

/// [`pending`] after applying a saved plan: moves the reviewed plan showed
/// as gate-blocked were never meant to happen, so they (and the archival of
/// the holder they would replace) do not count as not converged.
pub fn pending_reviewed(after: &Plan, reviewed: &Plan) -> Vec<String> {
    let held: BTreeSet<(String, String)> = reviewed
        .models
        .iter()
        .flat_map(|m| {
            m.actions
                .iter()
                .filter(|a| a.is_blocked())
                .filter_map(move |a| move_target(a).map(|t| (m.model.clone(), t)))
        })
        .collect();
    let mut rest = after.clone();
    for m in &mut rest.models {
        m.actions.retain(|a| {
            let target = match a {
                Action::ArchiveVersion { from, .. } => Some(from.as_str().to_string()),
                other => move_target(other),
            };
            !target.is_some_and(|t| held.contains(&(m.model.clone(), t)))
        });
    }
    pending(&rest)
}

/// The stage or alias a move sets.
fn move_target(a: &Action) -> Option<String> {
    match a {
        Action::TransitionStage { to, .. } => Some(to.as_str().to_string()),
        Action::SetAlias { alias, .. } => Some(alias.clone()),
        _ => None,
    }
}
