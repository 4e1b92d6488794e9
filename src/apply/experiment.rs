//! Applies the actions of one experiment, in order: its creation, then its
//! tags (on the experiment id the create answered, or read once).

use std::collections::BTreeSet;

use super::model::log_outcome;
use super::{ActionResult, ApplyOptions, Outcome};
use crate::plan::{ExperimentAction, ExperimentPlan, describe};
use crate::registry::{Registry, Scope, SnapshotRequest};

/// Applies one experiment's actions in order.
pub async fn apply_experiment<R: Registry>(
    reg: &R,
    ep: &ExperimentPlan,
    opts: &ApplyOptions,
) -> Vec<ActionResult> {
    let mut results = Vec::new();
    let mut id: Option<String> = None;
    for action in &ep.actions {
        let outcome = match opts.may_write() {
            Err(reason) => Outcome::Skipped(reason),
            Ok(()) => perform(reg, ep, action, &mut id).await,
        };
        let description = describe::experiment_action(action);
        log_outcome(&ep.experiment, &description, &outcome);
        results.push(ActionResult {
            object: ep.experiment.clone(),
            action: description,
            kind: match action {
                ExperimentAction::CreateExperiment { .. } => "create_experiment",
                ExperimentAction::SetExperimentTag { .. } => "set_experiment_tag",
            },
            outcome,
        });
    }
    results
}

/// Performs one experiment action; `id` is the experiment's id once known.
async fn perform<R: Registry>(
    reg: &R,
    ep: &ExperimentPlan,
    action: &ExperimentAction,
    id: &mut Option<String>,
) -> Outcome {
    let done = match action {
        ExperimentAction::CreateExperiment {
            artifact_location,
            tags,
        } => reg
            .create_experiment(&ep.experiment, artifact_location.as_deref(), tags)
            .await
            .map(|new_id| *id = Some(new_id))
            .map_err(|e| e.to_string()),
        ExperimentAction::SetExperimentTag { key, after, .. } => {
            match experiment_id(reg, &ep.experiment, id).await {
                Ok(eid) => reg
                    .set_experiment_tag(&eid, key, after)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            }
        }
    };
    match done {
        Ok(()) => Outcome::Applied,
        Err(e) => Outcome::Failed(e),
    }
}

async fn experiment_id<R: Registry>(
    reg: &R,
    name: &str,
    cached: &mut Option<String>,
) -> Result<String, String> {
    if let Some(id) = cached {
        return Ok(id.clone());
    }
    let req = SnapshotRequest {
        models: Scope::Named(BTreeSet::new()),
        experiments: BTreeSet::from([name.to_string()]),
    };
    let live = reg.snapshot(&req).await.map_err(|e| e.to_string())?;
    let id = live
        .experiments
        .get(name)
        .map(|e| e.experiment_id.clone())
        .ok_or_else(|| format!("experiment {name:?} does not exist"))?;
    *cached = Some(id.clone());
    Ok(id)
}
