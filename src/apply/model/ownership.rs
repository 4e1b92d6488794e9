//! The ownership record (`modelsync.managed`) of one model: it holds only
//! the targets whose move took effect. A planned record is written with
//! the moves that did not happen left out (`Moves::unmoved`); a model this
//! run created got its record with the create, and has it written again
//! when a move it lists did not happen.

use tracing::warn;

use super::{ModelRun, StepError};
use crate::apply::Outcome;
use crate::plan::Action;
use crate::plan::diff::ownership::Inventory;
use crate::registry::Registry;
use crate::state::tags;

impl<R: Registry> ModelRun<'_, R> {
    /// Writes the ownership record with only the targets whose move took
    /// effect (a move blocked at its re-check, failed or skipped is left
    /// out); nothing when that leaves the record as it was.
    pub(super) async fn record_ownership(
        &self,
        before: Option<&str>,
        planned: &str,
    ) -> Result<(), StepError> {
        let earned = Inventory::earned(planned, before, self.moves.unmoved());
        if before == Some(earned.as_str()) {
            return Err(StepError::Skip(
                "no move it records took effect; the ownership record is unchanged".into(),
            ));
        }
        self.reg
            .set_model_tag(self.model, tags::MANAGED, &earned)
            .await?;
        Ok(())
    }

    /// A model created in this run got its ownership record with the
    /// create; when a move it lists did not happen, the record is written
    /// again with only what was done.
    pub(super) async fn correct_created_inventory(&mut self) {
        let Some(planned) = self.created_inventory.take() else {
            return;
        };
        let earned = Inventory::earned(&planned, None, self.moves.unmoved());
        if earned == planned {
            return;
        }
        if self.opts.may_write().is_err() {
            warn!(
                model = self.model,
                "lost the applier lease: the ownership record of this new model is left as created"
            );
            return;
        }
        let action = Action::SetModelTag {
            key: tags::MANAGED.to_string(),
            before: Some(planned),
            after: earned.clone(),
        };
        let outcome = match self
            .reg
            .set_model_tag(self.model, tags::MANAGED, &earned)
            .await
        {
            Ok(()) => Outcome::Applied,
            Err(e) => Outcome::Failed(e.to_string()),
        };
        self.record(&action, outcome);
    }
}
