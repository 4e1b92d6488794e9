//! Computes the plan.
//! STUB: to be implemented.

use super::{Plan, PlanContext};
use crate::manifest::DesiredState;
use crate::state::LiveState;

/// The plan that makes `live` match `desired`.
pub fn plan(desired: &DesiredState, live: &LiveState, ctx: &PlanContext) -> Plan {
    let _ = (desired, live, ctx);
    todo!()
}

/// Run ids whose metrics the gates need (sorted, deduplicated).
pub fn runs_needed(desired: &DesiredState, live: &LiveState) -> Vec<String> {
    let _ = (desired, live);
    todo!()
}

/// Declared sources that match no live version verbatim or by the
/// `modelsync.source` tag, and so need resolving by the registry.
pub fn sources_to_resolve(desired: &DesiredState, live: &LiveState) -> Vec<String> {
    let _ = (desired, live);
    todo!()
}
