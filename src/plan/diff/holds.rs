//! What holds do to a model's plan (issue 19; `state::hold`): a move into
//! a held target is not planned unless it moves the held version there (a
//! `Held` entry says why, and is no change); a prune leaves a held target
//! alone; a hold whose version the manifests declare for its target is
//! released by the pass (`Action::ReleaseHold`, after the target's move).

use std::collections::{BTreeMap, BTreeSet};

use super::resolve::Resolved;
use crate::manifest::{DesiredModel, GateTarget};
use crate::plan::{Action, Held, VersionRef};
use crate::state::hold::Hold;
use crate::state::{LiveModel, Stage};

/// The holds on one model, by target.
pub(crate) type Holds = BTreeMap<String, Hold>;

/// The version in `target` now.
fn live_holder(model: Option<&LiveModel>, target: &GateTarget) -> Option<u64> {
    let m = model?;
    match target {
        GateTarget::Stage(s) => m.holders(*s).map(|v| v.version).max(),
        GateTarget::Alias(a) => m.aliases.get(a).copied(),
    }
}

/// The `Held` entry for a pending move a hold keeps from happening.
pub(crate) fn blocks(
    holds: &Holds,
    (target, declared): (&GateTarget, &VersionRef),
    model: Option<&LiveModel>,
) -> Option<Held> {
    let hold = holds.get(&target.key())?;
    (*declared != VersionRef::Existing(hold.version)).then(|| Held {
        target: target.key(),
        declared: Some(declared.clone()),
        live: live_holder(model, target),
        hold: hold.clone(),
    })
}

/// The `Held` entry for a prune of `target` a hold keeps from happening.
pub(crate) fn blocks_prune(holds: &Holds, target: &GateTarget, model: &LiveModel) -> Option<Held> {
    let hold = holds.get(&target.key())?;
    Some(Held {
        target: target.key(),
        declared: None,
        live: live_holder(Some(model), target),
        hold: hold.clone(),
    })
}

/// One release per hold whose version the manifests declare for its
/// target, unless that target's move is blocked (`not_moving`) or its
/// cause is not released by git ([`crate::state::hold::Cause::released_by_git`]).
pub(crate) fn releases(
    dm: &DesiredModel,
    holds: &Holds,
    resolved: &Resolved<'_>,
    not_moving: &BTreeSet<String>,
) -> Vec<Action> {
    holds
        .iter()
        .filter(|(target, _)| !not_moving.contains(*target))
        .filter(|(_, hold)| hold.cause.released_by_git())
        .filter(|(target, hold)| {
            let handle = match Stage::parse(target).filter(|s| s.as_str() == target.as_str()) {
                Some(stage) => dm.stages.get(&stage),
                None => dm.aliases.get(*target),
            };
            handle
                .and_then(|h| resolved.slots.get(h))
                .is_some_and(|slot| slot.target == VersionRef::Existing(hold.version))
        })
        .map(|(target, hold)| Action::ReleaseHold {
            target: target.clone(),
            hold: hold.clone(),
        })
        .collect()
}
