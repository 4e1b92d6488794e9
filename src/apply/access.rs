//! Applying a model's permission changes (`kind: AccessPolicy`): grants
//! made or changed, grants modelsync made taken back, then the ownership
//! record (`modelsync.access`), stamped with the time and revision (the
//! audit of who changed the permissions through modelsync, and from which
//! commit). Applied after the models (a model the plan creates exists by
//! then) and prompts, one model at a time. The pass planned them under the
//! applier lease from a fresh read; a failed action skips the rest of its
//! model, so the record never claims a grant that was not made.

use std::time::{Duration, UNIX_EPOCH};

use super::model::log_outcome;
use super::{ActionResult, ApplyOptions, Outcome};
use crate::plan::access::{AccessAction, AccessPlan};
use crate::plan::describe;
use crate::registry::Registry;
use crate::state::access::Record;
use crate::state::tags;

/// Applies one model's permission changes in order; one result per action.
pub async fn apply_access<R: Registry>(
    reg: &R,
    ap: &AccessPlan,
    opts: &ApplyOptions,
) -> Vec<ActionResult> {
    let mut stop = opts
        .cancel
        .as_ref()
        .is_some_and(|c| c.is_cancelled())
        .then(|| "shutting down".to_string());
    let mut results = Vec::with_capacity(ap.actions.len());
    for action in &ap.actions {
        let outcome = match (&stop, opts.may_write()) {
            (Some(why), _) => Outcome::Skipped(why.clone()),
            (None, Err(lost)) => Outcome::Skipped(lost.to_string()),
            (None, Ok(())) => run(reg, &ap.model, action, opts).await,
        };
        if matches!(outcome, Outcome::Failed(_) | Outcome::Conflict(_)) {
            stop = Some("an earlier permission change of this model did not apply".into());
        }
        let description = describe::access_action(action);
        log_outcome(&format!("access {}", ap.model), &description, &outcome);
        results.push(ActionResult {
            object: format!("access {}", ap.model),
            action: description,
            kind: action.kind(),
            outcome,
        });
    }
    results
}

async fn run<R: Registry>(
    reg: &R,
    model: &str,
    action: &AccessAction,
    opts: &ApplyOptions,
) -> Outcome {
    let done = match action {
        AccessAction::Grant {
            principal,
            level,
            before,
            ..
        } => reg.set_permission(model, principal, *level, *before).await,
        AccessAction::Revoke { principal, .. } => reg.remove_permission(model, principal).await,
        AccessAction::Record {
            after, policies, ..
        } => {
            let at = UNIX_EPOCH + Duration::from_millis(opts.now_ms.max(0) as u64);
            let record = Record {
                grants: after.clone(),
                policies: policies.clone(),
                at: Some(humantime::format_rfc3339_seconds(at).to_string()),
                revision: opts.revision.clone(),
            };
            reg.set_model_tag(model, tags::ACCESS, &record.render())
                .await
        }
    };
    match done {
        Ok(()) => Outcome::Applied,
        Err(e) => Outcome::Failed(e.to_string()),
    }
}
