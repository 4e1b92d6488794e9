//! JSON rendering: the plan as serde writes it (the saved-plan payload).

use crate::plan::Plan;

/// Pretty JSON of the plan, ending in a newline.
pub fn json(plan: &Plan) -> String {
    let mut out = serde_json::to_string_pretty(plan).expect("a plan is plain data and serializes");
    out.push('\n');
    out
}
