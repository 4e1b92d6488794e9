//! An elected leader's fencing of one model: before the model's first
//! write its `modelsync.epoch` is judged (`term::fence::judge`); a
//! newer epoch of the leader's own namespace means another replica leads:
//! nothing is written and the leader steps down with that cause. Any other
//! stamp — none, an older epoch, another namespace's (another engine or
//! election name, a restored etcd, a recreated epoch row, a plain number
//! from an older release) — is replaced by the leader's own token. A model
//! this run creates gets the token in its create body.

use std::collections::BTreeMap;

use tracing::{info, warn};

use super::ApplyOptions;
use crate::registry::Registry;
use crate::state::tags;
use crate::term::fence::{self, Judgement, Restamp};

/// Judges and, when needed, stamps `model` (its tags as read before its
/// first write; `None`: the run creates it). `Err(reason)`: write nothing.
pub(super) async fn fence_model<R: Registry>(
    reg: &R,
    model: &str,
    opts: &ApplyOptions,
    model_tags: Option<&crate::state::SmallMap<String, String>>,
) -> Result<(), String> {
    let (Some(fence), Some(model_tags)) = (&opts.fence, model_tags) else {
        return Ok(());
    };
    let mine = fence.stamp();
    let why = match fence::judge(&mine, model_tags.get(tags::EPOCH).map(String::as_str)) {
        Judgement::Current => return Ok(()),
        Judgement::Newer(theirs) => {
            let cause = fence::newer_epoch_cause(model, theirs, &mine);
            warn!(
                model,
                epoch = fence.epoch,
                newer = theirs,
                "{cause}; not writing it and stepping down"
            );
            fence.step_down(cause);
            return Err(fence.lost_reason());
        }
        Judgement::Restamp(why) => why,
    };
    if let Restamp::Foreign(theirs) = &why {
        info!(
            model,
            "the model carries {theirs}, not comparable with this leader's {mine}; stamping it with this leader's"
        );
    }
    opts.may_write()?;
    reg.set_model_tag(model, tags::EPOCH, &mine.render())
        .await
        .map_err(|e| format!("could not stamp the leader's epoch on the model: {e}"))
}

/// The tags a model this run creates is created with: an elected leader's
/// token added.
pub(super) fn created_tags(
    opts: &ApplyOptions,
    model_tags: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut all = model_tags.clone();
    if let Some(fence) = &opts.fence {
        all.insert(tags::EPOCH.to_string(), fence.stamp().render());
    }
    all
}
