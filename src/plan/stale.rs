//! Saved-plan staleness: before `apply --plan` runs a saved plan, everything
//! the plan observed for the models and experiments it covers (existence,
//! versions and their stages, aliases, tags, descriptions) is compared with
//! a fresh snapshot of them. Any difference means the plan is stale and
//! nothing is applied.
//!
//! [`check_actions`] checks only the values a plan's own actions observed;
//! the executor uses it per model, just before writing.

use std::collections::BTreeSet;

use super::saved::SavedPlan;
use super::{Action, ExperimentAction, Plan, VersionRef};
use crate::state::{DeclaredSource, LiveModel, LiveState, LiveVersion, Stage};

/// Every value `saved` observed that `live` no longer shows, one line each
/// for the user (`model m: alias champion was version 2, now version 3`).
/// Empty when the plan is still fresh. `live` must hold a snapshot of
/// [`SavedPlan::coverage`].
pub fn check(saved: &SavedPlan, live: &LiveState) -> Vec<String> {
    let lines = saved.observed.differences(live);
    if lines.is_empty() {
        // Belt and braces: the actions' own observations are a subset.
        return check_actions(&saved.plan, live);
    }
    lines
}

/// Every observed value in `plan`'s actions that `live` no longer shows,
/// described for the user (e.g. `nba: alias champion points at version 4,
/// the plan saw version 3`). Empty when the plan is still fresh.
pub fn check_actions(plan: &Plan, live: &LiveState) -> Vec<String> {
    let mut lines = Vec::new();
    for mp in &plan.models {
        let model = live.models.get(&mp.model);
        let mut missing_reported = false;
        for action in &mp.actions {
            let found = match (action, model) {
                (Action::CreateModel { .. }, Some(_)) => {
                    Some("the model now exists, the plan saw none".to_string())
                }
                (Action::CreateModel { .. }, None) => None,
                (_, Some(m)) => {
                    let found = model_action(action, m, live);
                    lines.extend(found.into_iter().map(|l| format!("{}: {l}", mp.model)));
                    None
                }
                (_, None) if plan_creates(mp) => None,
                (_, None) if !missing_reported => {
                    missing_reported = true;
                    Some("the model no longer exists".to_string())
                }
                (_, None) => None,
            };
            lines.extend(found.map(|l| format!("{}: {l}", mp.model)));
        }
    }
    for ep in &plan.experiments {
        let exp = live.experiments.get(&ep.experiment);
        for action in &ep.actions {
            let found = match (action, exp) {
                (ExperimentAction::CreateExperiment { .. }, Some(_)) => {
                    Some("the experiment now exists, the plan saw none".to_string())
                }
                (ExperimentAction::CreateExperiment { .. }, None) => None,
                (ExperimentAction::SetExperimentTag { key, before, .. }, e) => {
                    let now = e.and_then(|e| e.tags.get(key));
                    tag_changed(key, now, before.as_ref())
                }
            };
            lines.extend(found.map(|l| format!("experiment {}: {l}", ep.experiment)));
        }
    }
    let mut seen = BTreeSet::new();
    lines.retain(|l| seen.insert(l.clone()));
    lines
}

fn plan_creates(mp: &super::ModelPlan) -> bool {
    mp.actions
        .iter()
        .any(|a| matches!(a, Action::CreateModel { .. }))
}

/// The differences for one action on an existing model.
fn model_action(action: &Action, m: &LiveModel, live: &LiveState) -> Vec<String> {
    if let Action::TransitionStage {
        version,
        from,
        to,
        holders,
        ..
    } = action
    {
        let moved = match version {
            VersionRef::Existing(n) => stage_changed(m, *n, *from),
            VersionRef::New(_) => None,
        };
        return moved
            .into_iter()
            .chain(holders_changed(m, *to, holders))
            .collect();
    }
    single_difference(action, m, live).into_iter().collect()
}

/// The difference for an action that observed one value, if any.
fn single_difference(action: &Action, m: &LiveModel, live: &LiveState) -> Option<String> {
    match action {
        Action::CreateModel { .. } => None,
        Action::UpdateModelDescription { before, .. } => (m.description != *before).then(|| {
            format!(
                "the description is {:?}, the plan saw {before:?}",
                m.description
            )
        }),
        Action::SetModelTag { key, before, .. } => {
            tag_changed(key, m.tags.get(key), before.as_ref())
        }
        Action::RegisterVersion {
            declared_source,
            source,
            run_id,
            ..
        } => registered_as(m, declared_source, source, run_id.as_deref(), live).map(|v| {
            format!(
                "{declared_source} is now registered as version {}, the plan saw none",
                v.version
            )
        }),
        Action::CopyVersion {
            from, experiment, ..
        } => copy_changed(m, from, experiment, live),
        Action::UpdateVersionDescription {
            version, before, ..
        } => match m.versions.get(version) {
            None => Some(format!("version {version} no longer exists")),
            Some(v) => (v.description != *before).then(|| {
                format!(
                    "version {version} description is {:?}, the plan saw {before:?}",
                    v.description
                )
            }),
        },
        Action::SetVersionTag {
            version,
            key,
            before,
            ..
        } => match m.versions.get(version) {
            None => Some(format!("version {version} no longer exists")),
            Some(v) => tag_changed(key, v.tags.get(key), before.as_ref())
                .map(|l| format!("version {version} {l}")),
        },
        Action::TransitionStage { .. } => None,
        Action::SetAlias { alias, before, .. } => {
            let now = m.aliases.get(alias).copied();
            (now != *before).then(|| {
                format!(
                    "alias {alias} {}, the plan saw {}",
                    alias_now(now),
                    alias_seen(*before)
                )
            })
        }
        Action::ArchiveVersion { version, from, .. } => stage_changed(m, *version, *from),
        Action::DeleteAlias { alias, before } => {
            let now = m.aliases.get(alias).copied();
            (now != Some(*before)).then(|| {
                format!(
                    "alias {alias} {}, the plan saw version {before}",
                    alias_now(now)
                )
            })
        }
        Action::ReleaseHold { target, hold } => {
            let now = crate::state::hold::holds(m).remove(target);
            (now.as_ref() != Some(hold)).then(|| match now {
                Some(h) => format!("the hold on {target} is now {}", h.describe()),
                None => format!("the hold on {target} was released"),
            })
        }
    }
}

/// What changed for a `CopyVersion`: the source is now copied, or the
/// copy's experiment was deleted.
fn copy_changed(
    m: &LiveModel,
    from: &crate::state::CopySource,
    experiment: &str,
    live: &LiveState,
) -> Option<String> {
    let copied = super::diff::find_copy(m, from).map(|v| {
        format!(
            "version {} of {:?} in registry {} is now copied as version {}, the plan saw none",
            from.version, from.model, from.registry, v.version
        )
    });
    let deleted = live.deleted_experiments.get(experiment).map(|id| {
        let problem = crate::naming::deleted_experiment_problem(experiment, id);
        format!("the copy's {problem}")
    });
    copied.or(deleted)
}

/// The live version a `RegisterVersion` of `declared` (sending `source`)
/// would have created, if one exists now: the source as the plan resolved
/// it, or as the registry resolves it now.
pub(crate) fn registered_as<'m>(
    m: &'m LiveModel,
    declared: &str,
    source: &str,
    run_id: Option<&str>,
    live: &LiveState,
) -> Option<&'m LiveVersion> {
    let sent = DeclaredSource {
        source: declared,
        run_id,
        stored_as: Some(source),
    };
    let now = DeclaredSource {
        stored_as: live
            .resolved_sources
            .get(declared)
            .map(|r| r.source.as_str()),
        ..sent
    };
    m.version_for_source(&sent)
        .or_else(|| m.version_for_source(&now))
}

fn tag_changed(key: &str, now: Option<&String>, before: Option<&String>) -> Option<String> {
    if now == before {
        return None;
    }
    let show = |v: Option<&String>| v.map_or_else(|| "unset".to_string(), |v| format!("{v:?}"));
    Some(format!(
        "tag {key} is {}, the plan saw {}",
        show(now),
        show(before)
    ))
}

fn stage_changed(m: &LiveModel, version: u64, from: Stage) -> Option<String> {
    match m.versions.get(&version) {
        None => Some(format!("version {version} no longer exists")),
        Some(v) if v.stage != from => Some(format!(
            "version {version} is in {}, the plan saw {from}",
            v.stage
        )),
        Some(_) => None,
    }
}

fn holders_changed(m: &LiveModel, stage: Stage, seen: &[u64]) -> Option<String> {
    let now: Vec<u64> = m.holders(stage).map(|v| v.version).collect();
    (now != seen).then(|| {
        format!(
            "{stage} is held by {}, the plan saw {}",
            versions(&now),
            versions(seen)
        )
    })
}

fn versions(list: &[u64]) -> String {
    match list {
        [] => "no version".to_string(),
        [one] => format!("version {one}"),
        many => {
            let nums: Vec<String> = many.iter().map(u64::to_string).collect();
            format!("versions {}", nums.join(", "))
        }
    }
}

fn alias_now(now: Option<u64>) -> String {
    now.map_or_else(
        || "is not set".to_string(),
        |n| format!("points at version {n}"),
    )
}

fn alias_seen(before: Option<u64>) -> String {
    before.map_or_else(|| "it unset".to_string(), |n| format!("version {n}"))
}
