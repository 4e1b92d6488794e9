//! Saved-plan staleness.
//! STUB: to be implemented.

use super::Plan;
use crate::state::LiveState;

/// Every observed value in `plan` that `live` no longer shows, described
/// for the user (e.g. `nba: alias champion now points at 4, plan saw 3`).
/// Empty when the plan is still fresh.
pub fn check(plan: &Plan, live: &LiveState) -> Vec<String> {
    let _ = (plan, live);
    todo!()
}
