//! Stage and alias moves, the archivals they cause, and pruning.
//!
//! Order (make-before-break): every move first, then the archival of the
//! holders they replace, then prune (archive holders of owned stages no
//! longer declared, delete owned aliases no longer declared). An archival
//! that depends on a move blocked by a gate is left out.

use std::collections::BTreeSet;

use super::holds::{self, Holds};
use super::ownership::Inventory;
use super::resolve::{Resolved, Slot};
use crate::manifest::windows::Window;
use crate::manifest::{Approvals, DesiredModel, GateTarget};
use crate::plan::gates::{self, Candidate};
use crate::plan::{Action, GateCheck, Held, PlanContext, VersionRef};
use crate::state::{LiveModel, LiveState, Stage};

/// A move the manifest requires: the target and the version to put there.
pub(crate) struct Pending<'r, 'a> {
    pub target: GateTarget,
    pub slot: &'r Slot<'a>,
}

/// The moves `dm` requires, stages (in MLflow's order) before aliases.
pub(crate) fn pending<'r, 'a>(
    dm: &DesiredModel,
    model: Option<&LiveModel>,
    resolved: &'r Resolved<'a>,
) -> Vec<Pending<'r, 'a>> {
    let mut out = Vec::new();
    for (stage, handle) in &dm.stages {
        let Some(slot) = resolved.slots.get(handle) else {
            continue;
        };
        let current = slot.live.map_or(Stage::None, |v| v.stage);
        if current != *stage {
            out.push(Pending {
                target: GateTarget::Stage(*stage),
                slot,
            });
        }
    }
    for (alias, handle) in &dm.aliases {
        let Some(slot) = resolved.slots.get(handle) else {
            continue;
        };
        let current = model.and_then(|m| m.aliases.get(alias)).copied();
        if current.map(VersionRef::Existing) != Some(slot.target.clone()) {
            out.push(Pending {
                target: GateTarget::Alias(alias.clone()),
                slot,
            });
        }
    }
    out
}

/// What the manifests ask of a model's targets besides gates: windows,
/// and the holds read from the model.
pub(crate) struct Rules<'a> {
    pub ctx: &'a PlanContext,
    pub approvals: &'a Approvals,
    pub windows: &'a [Window],
}

/// Moves, archivals, prune actions and hold releases for one model, in
/// execution order; and the moves holds keep from happening.
pub(crate) fn actions(
    dm: &DesiredModel,
    model: Option<&LiveModel>,
    resolved: &Resolved<'_>,
    live: &LiveState,
    rules: &Rules<'_>,
) -> (Vec<Action>, Vec<Held>) {
    let holds: Holds = model.map(crate::state::hold::holds).unwrap_or_default();
    let Moves {
        mut out,
        mut held,
        blocked_stages,
        not_moving,
    } = moves(dm, model, resolved, live, rules, &holds);
    let Some(model) = model else {
        return (out, held);
    };
    let declared = declared_versions(dm, resolved);
    out.extend(archivals(dm, model, resolved, &declared, &blocked_stages));
    if rules.ctx.prune {
        let (pruned, kept) = prune(dm, model, &declared, &holds);
        out.extend(pruned);
        held.extend(kept);
    }
    out.extend(holds::releases(dm, &holds, resolved, &not_moving));
    (out, held)
}

/// The moves of one model and what keeps some from happening.
struct Moves {
    /// One move per pending target a hold does not keep (gated ones too).
    out: Vec<Action>,
    /// The moves holds keep from happening.
    held: Vec<Held>,
    /// Stages whose move is held or blocked: their holders stay.
    blocked_stages: BTreeSet<Stage>,
    /// Targets (keys) whose move is held or blocked: their holds stay.
    not_moving: BTreeSet<String>,
}

/// Every pending move, gated and windowed, unless a hold keeps it.
fn moves(
    dm: &DesiredModel,
    model: Option<&LiveModel>,
    resolved: &Resolved<'_>,
    live: &LiveState,
    rules: &Rules<'_>,
    holds: &Holds,
) -> Moves {
    let mut m = Moves {
        out: Vec::new(),
        held: Vec::new(),
        blocked_stages: BTreeSet::new(),
        not_moving: BTreeSet::new(),
    };
    for p in pending(dm, model, resolved) {
        if let Some(h) = holds::blocks(holds, (&p.target, &p.slot.target), model) {
            if let GateTarget::Stage(s) = p.target {
                m.blocked_stages.insert(s);
            }
            m.not_moving.insert(h.target.clone());
            m.held.push(h);
            continue;
        }
        let checks = checks(dm, &p, model, live, rules);
        if checks
            .iter()
            .any(|c| c.status == crate::plan::GateStatus::Blocked)
        {
            m.not_moving.insert(p.target.key());
        }
        let action = move_action(p, model, checks);
        if let Action::TransitionStage { to, .. } = &action
            && action.is_blocked()
        {
            m.blocked_stages.insert(*to);
        }
        m.out.push(action);
    }
    m
}

/// The gates of a pending move, then its windows and the freeze.
fn checks(
    dm: &DesiredModel,
    p: &Pending<'_, '_>,
    model: Option<&LiveModel>,
    live: &LiveState,
    rules: &Rules<'_>,
) -> Vec<GateCheck> {
    let ctx = rules.ctx;
    let env = gates::Env {
        now_ms: ctx.now_ms,
        registry: &ctx.registry,
        approvals: rules.approvals,
    };
    let mut checks = dm
        .gates
        .get(&p.target)
        .map(|g| {
            let candidate = Candidate {
                model: &dm.name,
                target: &p.target,
                live: p.slot.live,
                run_id: p.slot.run_id.as_deref(),
                model_id: p.slot.model_id.as_deref(),
                pinned: p.slot.pinned.as_ref(),
            };
            gates::evaluate(g, &candidate, model, live, &env)
        })
        .unwrap_or_default();
    checks.extend(crate::plan::windows::checks(
        rules.windows,
        live.freeze.as_ref(),
        (&dm.name, &p.target),
        ctx.now_ms,
        ctx.break_glass.as_ref(),
    ));
    checks
}

/// The action that makes a pending move, with its checks.
fn move_action(p: Pending<'_, '_>, model: Option<&LiveModel>, checks: Vec<GateCheck>) -> Action {
    match p.target {
        GateTarget::Stage(to) => Action::TransitionStage {
            version: p.slot.target.clone(),
            from: p.slot.live.map_or(Stage::None, |v| v.stage),
            to,
            holders: holders(model, to),
            gates: checks,
        },
        GateTarget::Alias(alias) => Action::SetAlias {
            before: model.and_then(|m| m.aliases.get(&alias)).copied(),
            alias,
            version: p.slot.target.clone(),
            gates: checks,
        },
    }
}

/// Versions a declared stage will hold: never archived, their own
/// transition moves them.
fn declared_versions(dm: &DesiredModel, resolved: &Resolved<'_>) -> BTreeSet<VersionRef> {
    dm.stages
        .values()
        .filter_map(|h| resolved.slots.get(h))
        .map(|s| s.target.clone())
        .collect()
}

/// The archival of each holder a move into an exclusive stage replaces,
/// unless that move is held or blocked.
fn archivals(
    dm: &DesiredModel,
    model: &LiveModel,
    resolved: &Resolved<'_>,
    declared: &BTreeSet<VersionRef>,
    blocked_stages: &BTreeSet<Stage>,
) -> Vec<Action> {
    let mut out = Vec::new();
    for (stage, handle) in &dm.stages {
        let Some(slot) = resolved.slots.get(handle) else {
            continue;
        };
        if !stage.is_exclusive() || blocked_stages.contains(stage) {
            continue;
        }
        for h in holders(Some(model), *stage) {
            if !declared.contains(&VersionRef::Existing(h)) {
                out.push(Action::ArchiveVersion {
                    version: h,
                    from: *stage,
                    replaced_by: Some(slot.target.clone()),
                });
            }
        }
    }
    out
}

/// Archives holders of owned stages and deletes owned aliases that the
/// manifest no longer declares, unless a hold keeps them.
fn prune(
    dm: &DesiredModel,
    model: &LiveModel,
    declared: &BTreeSet<VersionRef>,
    holds: &Holds,
) -> (Vec<Action>, Vec<Held>) {
    let owned = Inventory::read(Some(model));
    let mut out = Vec::new();
    let mut held = Vec::new();
    for stage in &owned.stages {
        if !stage.is_exclusive() || dm.stages.contains_key(stage) {
            continue;
        }
        if let Some(h) = holds::blocks_prune(holds, &GateTarget::Stage(*stage), model) {
            held.push(h);
            continue;
        }
        for h in holders(Some(model), *stage) {
            if !declared.contains(&VersionRef::Existing(h)) {
                out.push(Action::ArchiveVersion {
                    version: h,
                    from: *stage,
                    replaced_by: None,
                });
            }
        }
    }
    for alias in &owned.aliases {
        if dm.aliases.contains_key(alias) {
            continue;
        }
        if let Some(h) = holds::blocks_prune(holds, &GateTarget::Alias(alias.clone()), model) {
            held.push(h);
            continue;
        }
        if let Some(before) = model.aliases.get(alias) {
            out.push(Action::DeleteAlias {
                alias: alias.clone(),
                before: *before,
            });
        }
    }
    (out, held)
}

/// Numbers of the versions in `stage` now, lowest first.
fn holders(model: Option<&LiveModel>, stage: Stage) -> Vec<u64> {
    model
        .map(|m| m.holders(stage).map(|v| v.version).collect())
        .unwrap_or_default()
}
