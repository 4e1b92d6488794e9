//! Reading the evidence gates weigh: runs (their latest metric values) and
//! MLflow 3 logged models (their metrics), through any [`Registry`]. The
//! pass's observe reads what its plan's gates need; the executor reads the
//! same again for one move, just before it.

use std::collections::BTreeSet;

use super::{Registry, Result};
use crate::state::LiveState;

/// The runs `run_ids` and the logged models `model_ids` (empty ids left
/// out; no request for an empty list), as a [`LiveState`] holding only
/// them. Logged models are looked for in the experiments of the runs read.
pub async fn read_evidence<R: Registry>(
    reg: &R,
    run_ids: &[String],
    model_ids: &[String],
) -> Result<LiveState> {
    let run_ids = non_empty(run_ids);
    let model_ids = non_empty(model_ids);
    let mut live = LiveState::default();
    if !run_ids.is_empty() {
        live.runs = reg.get_runs(&run_ids).await?;
    }
    if !model_ids.is_empty() {
        let experiments = live.run_experiments();
        live.logged_models = reg.get_logged_models(&model_ids, &experiments).await?;
    }
    Ok(live)
}

/// `ids` without empty ones, sorted and deduplicated.
fn non_empty(ids: &[String]) -> Vec<String> {
    let set: BTreeSet<&String> = ids.iter().filter(|s| !s.is_empty()).collect();
    set.into_iter().cloned().collect()
}
