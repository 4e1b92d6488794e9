//! Live state -> manifests (`modelsync export`), pure.
//! STUB: to be implemented.

use crate::state::LiveState;

/// Renders manifests (multi-document YAML, one `RegisteredModel` per model,
/// then one `Experiment` per experiment) that declare `live` as it is, so
/// that planning them against `live` gives an empty plan.
pub fn render(live: &LiveState) -> String {
    let _ = live;
    todo!()
}
