//! Holds and the freeze as the registries keep them (issue 19), for the
//! commands that read and set them: the freeze's place in each registry
//! (MLflow: a model of a reserved name, `mlflow/freeze.rs`; the embedded
//! registry: its file) and the one bulk read `modelsync hold list` makes.
//! Holds themselves are model tags (`state::hold`), written through the
//! `Registry` trait by the executor; a pass learns of the freeze from its
//! snapshot (`LiveState::freeze`).

use std::collections::BTreeMap;

use super::{AnyRegistry, Result};
use crate::state::hold::{self, Freeze, Hold};

pub use super::mlflow::freeze::{DEFAULT_FREEZE_MODEL, freeze_model_name};

impl AnyRegistry {
    /// The freeze, when one stands.
    pub async fn read_freeze(&self) -> Result<Option<Freeze>> {
        match self {
            AnyRegistry::Embedded(r) => Ok(r.freeze()),
            AnyRegistry::Mlflow(r) => r.read_freeze(&freeze_model_name()).await,
        }
    }

    /// Sets the freeze (replacing one that stands). The embedded registry
    /// writes its file at the next flush.
    pub async fn set_freeze(&self, freeze: &Freeze) -> Result<()> {
        match self {
            AnyRegistry::Embedded(r) => {
                r.set_freeze(Some(freeze.clone()));
                Ok(())
            }
            AnyRegistry::Mlflow(r) => r.set_freeze(&freeze_model_name(), freeze).await,
        }
    }

    /// Lifts the freeze; the one that stood.
    pub async fn clear_freeze(&self) -> Result<Option<Freeze>> {
        match self {
            AnyRegistry::Embedded(r) => Ok(r.set_freeze(None)),
            AnyRegistry::Mlflow(r) => r.clear_freeze(&freeze_model_name()).await,
        }
    }

    /// Every hold on every registered model (model -> target -> hold), in
    /// one bulk read of the models.
    pub async fn list_holds(&self) -> Result<BTreeMap<String, BTreeMap<String, Hold>>> {
        let tags = match self {
            AnyRegistry::Embedded(r) => r.model_tags(),
            AnyRegistry::Mlflow(r) => r.model_tags().await?,
        };
        Ok(tags
            .into_iter()
            .filter_map(|(name, tags)| {
                let model = crate::state::LiveModel {
                    tags,
                    ..Default::default()
                };
                let holds = hold::holds(&model);
                (!holds.is_empty()).then_some((name, holds))
            })
            .collect())
    }
}
