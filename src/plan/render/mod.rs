//! Plan renderings: text (terminal), JSON (machines), Markdown (PR comments).
//! STUB: to be implemented.

use super::Plan;

/// Terraform-like text, grouped per model, with a one-line summary.
/// `color` adds ANSI colours (only on a terminal, never with NO_COLOR).
pub fn text(plan: &Plan, color: bool) -> String {
    let _ = (plan, color);
    todo!()
}

/// Pretty JSON of the plan, ending in a newline.
pub fn json(plan: &Plan) -> String {
    let _ = plan;
    todo!()
}

/// Markdown for a pull-request comment.
pub fn markdown(plan: &Plan) -> String {
    let _ = plan;
    todo!()
}
