//! Computes the plan: per declared model, the actions that make the live
//! registry match the manifest (`docs/manifest-format.md` says what each
//! field asks for), in execution order.
//!
//! Order within a model: create model, model description and tags, version
//! registrations, version descriptions and tags, the digests of versions
//! moved for the first time (`modelsync.digest`), stage and alias moves,
//! archival of replaced holders (make-before-break), prune, and last the
//! ownership inventory tag. Live models and experiments the manifests do not
//! declare are ignored. Pure and deterministic: no I/O, no clock.

mod holds;
mod moves;
pub mod ownership;
mod resolve;

use std::collections::{BTreeMap, BTreeSet};

use self::ownership::Inventory;
pub(crate) use self::resolve::find_copy;
use self::resolve::{Resolved, find_source, resolve};
use super::{Action, ExperimentAction, ExperimentPlan, ModelPlan, Plan, PlanContext, VersionRef};
use crate::manifest::{DesiredExperiment, DesiredModel, DesiredState, Gate, GateTarget, Locator};
use crate::state::tags;
use crate::state::{DeclaredSource, LiveExperiment, LiveModel, LiveState, Stage, VersionStatus};

/// The plan that makes `live` match `desired`.
pub fn plan(desired: &DesiredState, live: &LiveState, ctx: &PlanContext) -> Plan {
    let models = desired
        .models
        .iter()
        .filter_map(|(name, dm)| {
            let rules = moves::Rules {
                ctx,
                approvals: &desired.approvals,
                windows: &desired.windows,
            };
            plan_model(dm, live.models.get(name), live, &rules)
        })
        .collect();
    let experiments = desired
        .experiments
        .iter()
        .filter_map(|(name, de)| plan_experiment(de, live.experiments.get(name), live))
        .collect();
    Plan {
        models,
        experiments,
        prompts: super::prompts::plan_prompts(&desired.prompts, &live.prompts),
        targets: desired.targets.clone(),
        access: super::access::plan_access(desired, live),
        ..Plan::empty()
    }
}

/// Run ids whose metrics the gates need (sorted, deduplicated): the
/// candidate of every move guarded by a `metric` or `beats` gate, and the
/// current holder of every alias a `beats` gate compares against.
pub fn runs_needed(desired: &DesiredState, live: &LiveState) -> Vec<String> {
    gate_evidence(desired, live)
        .into_iter()
        .filter_map(|(run, _)| run)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// MLflow 3 logged-model ids whose metrics the gates need (sorted,
/// deduplicated): those of the same versions as [`runs_needed`].
pub fn logged_models_needed(desired: &DesiredState, live: &LiveState) -> Vec<String> {
    gate_evidence(desired, live)
        .into_iter()
        .filter_map(|(_, model)| model)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// (run id, logged-model id) of every version a `metric` or `beats` gate
/// reads.
fn gate_evidence(
    desired: &DesiredState,
    live: &LiveState,
) -> Vec<(Option<String>, Option<String>)> {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let mut out = Vec::new();
    for (name, dm) in &desired.models {
        let model = live.models.get(name);
        let resolved = resolve(dm, model, live);
        for p in moves::pending(dm, model, &resolved) {
            let Some(gates) = dm.gates.get(&p.target) else {
                continue;
            };
            let reads_metrics = gates
                .iter()
                .any(|g| matches!(g, Gate::Metric { .. } | Gate::Beats { .. }));
            if reads_metrics {
                out.push((p.slot.run_id.clone(), p.slot.model_id.clone()));
            }
            for gate in gates {
                if let Gate::Beats { alias, .. } = gate
                    && let Some(v) =
                        model.and_then(|m| m.aliases.get(alias).and_then(|n| m.versions.get(n)))
                {
                    out.push((non_empty(&v.run_id), non_empty(&v.model_id)));
                }
            }
        }
    }
    out
}

/// The bytes a plan needs read (`registry::Registry::version_tree`,
/// `source_tree`): what it pins and what a `digest: unchanged` gate checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreesNeeded {
    /// (model, version): existing versions a move into a stage or alias is
    /// pending for that carry no recorded digest, or whose target has a
    /// `digest: unchanged` gate (sorted, deduplicated).
    pub versions: Vec<(String, u64)>,
    /// Declared sources the plan registers (sorted, deduplicated).
    pub sources: Vec<String>,
}

/// What the plan for `desired` needs read of the bytes behind versions:
/// see [`TreesNeeded`]. Call it once `live` holds the resolved sources.
pub fn trees_needed(desired: &DesiredState, live: &LiveState) -> TreesNeeded {
    let mut versions = BTreeSet::new();
    let mut sources = BTreeSet::new();
    for (name, dm) in &desired.models {
        let model = live.models.get(name);
        let resolved = resolve(dm, model, live);
        sources.extend(
            resolved
                .registrations
                .iter()
                .map(|r| r.declared_source.clone()),
        );
        for p in moves::pending(dm, model, &resolved) {
            let Some(v) = p.slot.live else {
                continue;
            };
            let gated = dm
                .gates
                .get(&p.target)
                .is_some_and(|g| g.contains(&Gate::DigestUnchanged));
            let pin = pins_into(&p.target) && !v.tags.contains_key(tags::DIGEST);
            if gated || pin {
                versions.insert((name.clone(), v.version));
            }
        }
    }
    TreesNeeded {
        versions: versions.into_iter().collect(),
        sources: sources.into_iter().collect(),
    }
}

/// True for a target a move into records the version's digest: an alias,
/// or a stage that serves (not `None` or `Archived`).
fn pins_into(target: &GateTarget) -> bool {
    match target {
        GateTarget::Alias(_) => true,
        GateTarget::Stage(stage) => !matches!(stage, Stage::None | Stage::Archived),
    }
}

/// Declared `runs:/` sources that match no live version verbatim or by the
/// `modelsync.source` tag, and so need resolving by the registry (sorted,
/// deduplicated).
pub fn sources_to_resolve(desired: &DesiredState, live: &LiveState) -> Vec<String> {
    let mut out = BTreeSet::new();
    for (name, dm) in &desired.models {
        let model = live.models.get(name);
        for dv in dm.versions.values() {
            let Locator::Source { source, run_id } = &dv.locator else {
                continue;
            };
            if !source.starts_with("runs:/") {
                continue;
            }
            let found = model.and_then(|m| find_source(m, source, run_id.as_deref(), None));
            if found.is_none() {
                out.insert(source.clone());
            }
        }
    }
    out.into_iter().collect()
}

/// Declared versions still PENDING_REGISTRATION in `live`, as
/// (model, version): what to wait for before planning (sorted).
pub fn versions_pending(desired: &DesiredState, live: &LiveState) -> Vec<(String, u64)> {
    let mut out = BTreeSet::new();
    for (name, dm) in &desired.models {
        let resolved = resolve(dm, live.models.get(name), live);
        for slot in resolved.slots.values() {
            if let Some(v) = slot.live
                && v.status == VersionStatus::PendingRegistration
            {
                out.insert((name.clone(), v.version));
            }
        }
    }
    out.into_iter().collect()
}

fn plan_model(
    dm: &DesiredModel,
    model: Option<&LiveModel>,
    live: &LiveState,
    rules: &moves::Rules<'_>,
) -> Option<ModelPlan> {
    if model.is_some_and(|m| crate::state::tags::is_prompt(&m.tags)) {
        return Some(ModelPlan {
            model: dm.name.clone(),
            actions: Vec::new(),
            errors: vec![format!(
                "\"{}\" is a prompt in the registry, not a registered model: modelsync will not touch it as a model (declare it with kind: Prompt)",
                dm.name
            )],
            held: Vec::new(),
        });
    }
    let resolved = resolve(dm, model, live);
    let mut errors = resolved.errors.clone();
    errors.extend(stage_conflicts(dm, &resolved));
    if !errors.is_empty() {
        return Some(ModelPlan {
            model: dm.name.clone(),
            actions: Vec::new(),
            errors,
            held: Vec::new(),
        });
    }
    let (moves, held) = moves::actions(dm, model, &resolved, live, rules);
    let inventory = Inventory::next(
        dm,
        &Inventory::read(model),
        Inventory::moved_by(&moves),
        rules.ctx.prune,
    );
    let mut actions = model_actions(dm, model, &inventory);
    actions.extend(registrations(dm, &resolved, live));
    actions.extend(copies(dm, &resolved));
    actions.extend(version_updates(dm, &resolved));
    actions.extend(pins(model, &moves, live));
    actions.extend(moves);
    if let Some(model) = model {
        actions.extend(ownership_tag(model, &inventory));
    }
    (!actions.is_empty() || !held.is_empty()).then(|| ModelPlan {
        model: dm.name.clone(),
        actions,
        errors: Vec::new(),
        held,
    })
}

/// One version declared (through different handles) in several stages.
fn stage_conflicts(dm: &DesiredModel, resolved: &Resolved<'_>) -> Vec<String> {
    let mut by_target: BTreeMap<&VersionRef, Vec<&str>> = BTreeMap::new();
    for (stage, handle) in &dm.stages {
        if let Some(slot) = resolved.slots.get(handle) {
            by_target
                .entry(&slot.target)
                .or_default()
                .push(stage.as_str());
        }
    }
    by_target
        .into_iter()
        .filter(|(_, stages)| stages.len() > 1)
        .map(|(target, stages)| {
            format!(
                "{target} of {:?} is declared in more than one stage ({})",
                dm.name,
                stages.join(", ")
            )
        })
        .collect()
}

/// Create the model, or update its description and declared tags.
fn model_actions(
    dm: &DesiredModel,
    model: Option<&LiveModel>,
    inventory: &Inventory,
) -> Vec<Action> {
    let Some(model) = model else {
        let mut tags = dm.tags.clone();
        if !inventory.is_empty() {
            tags.insert(tags::MANAGED.to_string(), inventory.encode());
        }
        return vec![Action::CreateModel {
            description: dm.description.clone(),
            tags,
        }];
    };
    let mut out = Vec::new();
    if let Some(after) = dm.description.as_ref().filter(|d| **d != model.description) {
        out.push(Action::UpdateModelDescription {
            before: model.description.clone(),
            after: after.clone(),
        });
    }
    for (key, value) in &dm.tags {
        if model.tags.get(key) != Some(value) {
            out.push(Action::SetModelTag {
                key: key.clone(),
                before: model.tags.get(key).cloned(),
                after: value.clone(),
            });
        }
    }
    out
}

/// One registration per declared source that no live version matches. The
/// version is tagged with its declared source so it is recognised later
/// even when the registry stored a resolved source, and with the digest of
/// its bytes when they were read. When several handles name the same new
/// source, their descriptions and tags are merged (the first handle by
/// name wins a conflict).
fn registrations(dm: &DesiredModel, resolved: &Resolved<'_>, live: &LiveState) -> Vec<Action> {
    resolved
        .registrations
        .iter()
        .map(|reg| {
            let target = VersionRef::New(reg.handle.clone());
            let handles = resolved
                .slots
                .iter()
                .filter(|(_, slot)| slot.target == target)
                .filter_map(|(h, _)| dm.versions.get(h));
            let mut description = None;
            let mut tags = BTreeMap::new();
            for dv in handles {
                description = description.or_else(|| dv.description.clone());
                for (k, v) in &dv.tags {
                    tags.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            DeclaredSource::new(&reg.declared_source).tag(&mut tags);
            if let Some(Ok(tree)) = live.source_trees.get(&reg.declared_source) {
                tags.extend(pin_tags(&tree.digest, &tree.files));
            }
            Action::RegisterVersion {
                handle: reg.handle.clone(),
                declared_source: reg.declared_source.clone(),
                source: reg.source.clone(),
                run_id: reg.run_id.clone(),
                model_id: reg.model_id.clone(),
                description,
                tags,
            }
        })
        .collect()
}

/// One copy per `from:` source lineage that no live version carries. The
/// new version is tagged with its lineage and origin (so a rerun finds it,
/// and a changed source is noticed), and described as declared or as the
/// source version is.
fn copies(dm: &DesiredModel, resolved: &Resolved<'_>) -> Vec<Action> {
    resolved
        .copies
        .iter()
        .map(|c| {
            let dv = dm.versions.get(&c.handle);
            let mut tags = dv.map(|d| d.tags.clone()).unwrap_or_default();
            tags.insert(tags::COPY_LINEAGE.to_string(), c.source.lineage());
            tags.insert(tags::COPY_OF.to_string(), c.source.origin());
            tags.extend(pin_tags(&c.source.digest, &c.source.files));
            let description = dv.and_then(|d| d.description.clone()).or_else(|| {
                (!c.source.description.is_empty()).then(|| c.source.description.clone())
            });
            Action::CopyVersion {
                handle: c.handle.clone(),
                from: Box::new(c.source.clone()),
                experiment: c.experiment.clone(),
                description,
                tags,
            }
        })
        .collect()
}

/// Descriptions and tags declared on handles of existing versions. When
/// two handles name one version, the first handle (by name) wins.
fn version_updates(dm: &DesiredModel, resolved: &Resolved<'_>) -> Vec<Action> {
    let mut out = Vec::new();
    let mut described = BTreeSet::new();
    let mut tagged = BTreeSet::new();
    for (handle, slot) in &resolved.slots {
        let (Some(v), Some(dv)) = (slot.live, dm.versions.get(handle)) else {
            continue;
        };
        if let Some(after) = &dv.description
            && described.insert(v.version)
            && *after != v.description
        {
            out.push(Action::UpdateVersionDescription {
                version: v.version,
                before: v.description.clone(),
                after: after.clone(),
            });
        }
        for (key, value) in &dv.tags {
            if tagged.insert((v.version, key.clone())) && v.tags.get(key) != Some(value) {
                out.push(Action::SetVersionTag {
                    version: v.version,
                    key: key.clone(),
                    before: v.tags.get(key).cloned(),
                    after: value.clone(),
                });
            }
        }
    }
    out
}

/// The digest of a version's bytes at its first move: for each existing
/// version a move into a stage or alias (not blocked) is planned for that
/// carries no `modelsync.digest`, and whose bytes were read, the digest and
/// its listing, written before the move.
fn pins(model: Option<&LiveModel>, moves: &[Action], live: &LiveState) -> Vec<Action> {
    let Some(model) = model else {
        return Vec::new();
    };
    let mut pinned = BTreeSet::new();
    let mut out = Vec::new();
    for action in moves.iter().filter(|a| !a.is_blocked()) {
        let (version, target) = match action {
            Action::TransitionStage { version, to, .. } => (version, GateTarget::Stage(*to)),
            Action::SetAlias { version, alias, .. } => (version, GateTarget::Alias(alias.clone())),
            _ => continue,
        };
        let VersionRef::Existing(n) = version else {
            continue;
        };
        let Some(v) = model.versions.get(n) else {
            continue;
        };
        if !pins_into(&target) || v.tags.contains_key(tags::DIGEST) || !pinned.insert(*n) {
            continue;
        }
        if let Some(Ok(tree)) = live.version_tree(&model.name, *n) {
            out.extend(
                pin_tags(&tree.digest, &tree.files)
                    .into_iter()
                    .map(|(key, after)| Action::SetVersionTag {
                        version: *n,
                        before: v.tags.get(&key).cloned(),
                        key,
                        after,
                    }),
            );
        }
    }
    out
}

/// The tags that pin a version to its bytes: the digest, and the listing
/// it is the sha256 of when every file was hashed and it fits in a tag.
fn pin_tags(digest: &str, files: &[crate::state::TreeFile]) -> Vec<(String, String)> {
    let mut out = vec![(tags::DIGEST.to_string(), digest.to_string())];
    let listing = crate::state::digest::listing(files);
    let hashed = files.iter().all(|f| !f.sha256.is_empty());
    if hashed && crate::naming::tag_value_problem(&listing).is_none() {
        out.push((tags::DIGEST_FILES.to_string(), listing));
    }
    out
}

/// The ownership inventory tag, when it changes.
fn ownership_tag(model: &LiveModel, inventory: &Inventory) -> Option<Action> {
    let before = model.tags.get(tags::MANAGED);
    if before.is_none() && inventory.is_empty() {
        return None;
    }
    let after = inventory.encode();
    (before != Some(&after)).then(|| Action::SetModelTag {
        key: tags::MANAGED.to_string(),
        before: before.cloned(),
        after,
    })
}

fn plan_experiment(
    de: &DesiredExperiment,
    le: Option<&LiveExperiment>,
    live: &LiveState,
) -> Option<ExperimentPlan> {
    let mut plan = ExperimentPlan {
        experiment: de.name.clone(),
        actions: Vec::new(),
        warnings: Vec::new(),
        errors: Vec::new(),
    };
    match le {
        // MLflow keeps a deleted experiment's name: creating it again fails.
        None if live.deleted_experiments.contains_key(&de.name) => plan.errors.push(format!(
            "{}: {}",
            de.origin,
            crate::naming::deleted_experiment_problem(
                &de.name,
                &live.deleted_experiments[&de.name]
            )
        )),
        None => plan.actions.push(ExperimentAction::CreateExperiment {
            artifact_location: de.artifact_location.clone(),
            tags: de.tags.clone(),
        }),
        Some(le) => {
            for (key, value) in &de.tags {
                if le.tags.get(key) != Some(value) {
                    plan.actions.push(ExperimentAction::SetExperimentTag {
                        key: key.clone(),
                        before: le.tags.get(key).cloned(),
                        after: value.clone(),
                    });
                }
            }
            if let Some(wanted) = &de.artifact_location
                && wanted.trim_end_matches('/') != le.artifact_location.trim_end_matches('/')
            {
                plan.warnings.push(format!(
                    "artifact location is {:?} in the registry, the manifest says {wanted:?}; \
                     MLflow cannot change it, so it is left alone",
                    le.artifact_location
                ));
            }
        }
    }
    (!plan.actions.is_empty() || !plan.warnings.is_empty() || !plan.errors.is_empty())
        .then_some(plan)
}
