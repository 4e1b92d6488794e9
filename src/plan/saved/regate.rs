//! A saved plan's gates, evaluated again when it is applied: a move the
//! reviewed plan showed blocked (an approval had not arrived, a soak had
//! not ended) is applied once its gates pass, and a move whose gates no
//! longer pass (an approval withdrawn or expired) is blocked.
//!
//! Only once the saved plan is known to be fresh (`super::super::stale`):
//! the registry holds what the plan observed, so a plan made again from
//! the same manifests differs from the reviewed one only in its gates'
//! outcomes and what follows from them — the archival of the version a
//! stage move replaces and the ownership record. A model whose new plan
//! differs in anything else keeps its reviewed actions.

use crate::plan::{Action, ModelPlan, Plan};
use crate::state::tags;

/// `reviewed` with each model's actions taken from `fresh` (a plan made
/// now, from the same manifests, against the same registry) where the two
/// differ only in gate outcomes and their consequences.
pub fn regated(reviewed: &Plan, fresh: &Plan) -> Plan {
    let mut out = reviewed.clone();
    // The outputs are worked out again after applying, from the registry
    // as read back: the reviewed preview is not carried into the apply.
    out.outputs.clear();
    for mp in &mut out.models {
        let Some(now) = fresh.models.iter().find(|m| m.model == mp.model) else {
            continue;
        };
        if core(mp) == core(now) {
            mp.actions = now.actions.clone();
        }
    }
    out
}

/// A model's actions without gate outcomes, the archivals that follow a
/// move, and the ownership record: what a gate's outcome cannot change.
fn core(mp: &ModelPlan) -> Vec<Action> {
    mp.actions
        .iter()
        .filter(|a| !follows_a_move(a))
        .map(|a| {
            let mut a = a.clone();
            if let Action::TransitionStage { gates, .. } | Action::SetAlias { gates, .. } = &mut a {
                gates.clear();
            }
            a
        })
        .collect()
}

fn follows_a_move(a: &Action) -> bool {
    match a {
        Action::ArchiveVersion { replaced_by, .. } => replaced_by.is_some(),
        Action::SetModelTag { key, .. } => key == tags::MANAGED,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{GateCheck, GateStatus, VersionRef};
    use crate::state::Stage;

    fn gate(status: GateStatus) -> Vec<GateCheck> {
        vec![GateCheck {
            gate: "approvals 1 of any approver".into(),
            status,
            detail: String::new(),
            approved_by: Vec::new(),
        }]
    }

    fn promote(status: GateStatus) -> Action {
        Action::TransitionStage {
            version: VersionRef::Existing(2),
            from: Stage::None,
            to: Stage::Production,
            holders: vec![1],
            gates: gate(status),
        }
    }

    fn plan(actions: Vec<Action>) -> Plan {
        Plan {
            models: vec![ModelPlan {
                model: "m".into(),
                actions,
                errors: Vec::new(),
                held: Vec::new(),
            }],
            ..Plan::empty()
        }
    }

    #[test]
    fn a_move_whose_gate_now_passes_is_applied_with_its_archival() {
        let archive = Action::ArchiveVersion {
            version: 1,
            from: Stage::Production,
            replaced_by: Some(VersionRef::Existing(2)),
        };
        let reviewed = plan(vec![promote(GateStatus::Blocked)]);
        let fresh = plan(vec![promote(GateStatus::Passed), archive.clone()]);
        let out = regated(&reviewed, &fresh);
        assert_eq!(
            out.models[0].actions,
            [promote(GateStatus::Passed), archive]
        );
        // And back: an approval withdrawn blocks the reviewed move again.
        let out = regated(&fresh, &reviewed);
        assert_eq!(out.models[0].actions, [promote(GateStatus::Blocked)]);
    }

    #[test]
    fn a_model_whose_new_plan_differs_otherwise_keeps_what_was_reviewed() {
        let reviewed = plan(vec![promote(GateStatus::Blocked)]);
        let tag = Action::SetVersionTag {
            version: 2,
            key: "team".into(),
            before: None,
            after: "ml".into(),
        };
        let fresh = plan(vec![tag, promote(GateStatus::Passed)]);
        assert_eq!(regated(&reviewed, &fresh), reviewed);
        assert_eq!(regated(&reviewed, &Plan::empty()), reviewed);
    }
}
