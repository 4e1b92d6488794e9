//! The freeze on MLflow: a registered model of a reserved name
//! (`modelsync-freeze`, or `MODELSYNC_FREEZE_MODEL`), like the lease
//! model, whose `modelsync.freeze` tag holds who froze, when and why.
//! Every snapshot's model search reads every registered model, so a pass
//! learns of the freeze without a request of its own (`read.rs`).
//! Lifted by deleting the model (MANAGE) or, failing that, its tag (EDIT).

use std::collections::BTreeMap;

use serde_json::json;

use super::MlflowRegistry;
use super::client::Payload;
use super::endpoints as ep;
use super::wire::Empty;
use crate::registry::{Registry, RegistryError, Result};
use crate::state::hold::Freeze;
use crate::state::tags::FREEZE;

/// The freeze model's default name.
pub const DEFAULT_FREEZE_MODEL: &str = "modelsync-freeze";

/// The freeze model's name: `MODELSYNC_FREEZE_MODEL`, else
/// `modelsync-freeze`.
pub fn freeze_model_name() -> String {
    std::env::var("MODELSYNC_FREEZE_MODEL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_FREEZE_MODEL.to_string())
}

impl MlflowRegistry {
    /// The freeze the model `name` holds, if any.
    pub async fn read_freeze(&self, name: &str) -> Result<Option<Freeze>> {
        let model = self.get_model(name).await?;
        Ok(model.and_then(|m| m.tags.get(FREEZE).map(|v| Freeze::parse(v))))
    }

    /// Freezes: creates the model `name` with the freeze, or sets it on the
    /// model that exists.
    pub async fn set_freeze(&self, name: &str, freeze: &Freeze) -> Result<()> {
        let tags = BTreeMap::from([(FREEZE.to_string(), freeze.render())]);
        let description = "modelsync's freeze: while this model carries modelsync.freeze, no \
                           modelsync moves a version (`modelsync unfreeze` lifts it)";
        match self.create_model(name, Some(description), &tags).await {
            Ok(()) => Ok(()),
            Err(RegistryError::AlreadyExists(_)) => {
                self.set_model_tag(name, FREEZE, &freeze.render()).await
            }
            Err(e) => Err(e),
        }
    }

    /// Lifts the freeze: deletes the model `name`, or its freeze tag when
    /// this user may not delete models; the freeze it held.
    pub async fn clear_freeze(&self, name: &str) -> Result<Option<Freeze>> {
        let Some(was) = self.read_freeze(name).await? else {
            return Ok(None);
        };
        let body = json!({ "name": name });
        match self
            .client
            .call::<Empty>(&ep::DELETE_MODEL, Payload::Json(&body))
            .await
        {
            Ok(_) => Ok(Some(was)),
            Err(e) if e.is_not_found() => Ok(Some(was)),
            Err(_) => match self.delete_model_tag(name, FREEZE).await {
                Ok(()) | Err(RegistryError::NotFound(_)) => Ok(Some(was)),
                Err(e) => Err(e),
            },
        }
    }
}
