//! Prompts the way MLflow 3's client writes them
//! (`mlflow/store/model_registry/abstract_store.py`): a registered model
//! tagged `mlflow.prompt.is_prompt=true`; each version registered with the
//! placeholder source `prompt-template`, the template in the tag
//! `mlflow.prompt.text`, `_mlflow_prompt_type=text`, and the commit message
//! as its description; aliases are plain registered-model aliases.

use std::collections::BTreeMap;

use serde_json::json;

use super::MlflowRegistry;
use super::client::Payload;
use super::endpoints as ep;
use super::wire::{ModelVersionPage, ModelVersionResponse, RegisteredModelResponse, tags_map};
use crate::registry::{RegistryError, Result};
use crate::state::LivePrompt;

/// The tag MLflow marks prompts (models and versions) with.
pub const IS_PROMPT_TAG: &str = "mlflow.prompt.is_prompt";
/// The version tag holding the template.
pub const PROMPT_TEXT_TAG: &str = "mlflow.prompt.text";
/// The version tag holding the template's type.
pub const PROMPT_TYPE_TAG: &str = "_mlflow_prompt_type";
/// The source MLflow's store sends for a prompt version (the server refuses others).
pub const PROMPT_SOURCE: &str = "prompt-template";

impl MlflowRegistry {
    /// The prompt `name` (`None`: absent); a registered model that is not
    /// a prompt is an error, so that prompts never write over models.
    pub async fn read_prompt(&self, name: &str) -> Result<Option<LivePrompt>> {
        let q = [("name", name.to_string())];
        let model = match self
            .client
            .call::<RegisteredModelResponse>(&ep::GET_MODEL, Payload::Query(&q))
            .await
        {
            Ok(r) => r.registered_model,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into_registry()),
        };
        let tags = tags_map(model.tags);
        if tags.get(IS_PROMPT_TAG).map(String::as_str) != Some("true") {
            return Err(RegistryError::Invalid(format!(
                "\"{name}\" is a registered model, not a prompt: modelsync will not touch it as one"
            )));
        }
        let filter = format!(
            "name = '{}' AND tags.`{IS_PROMPT_TAG}` = 'true'",
            name.replace('\'', "\\'")
        );
        let q = [("filter", filter), ("max_results", "1000".to_string())];
        let page = self
            .client
            .call::<ModelVersionPage>(&ep::SEARCH_VERSIONS, Payload::Query(&q))
            .await
            .map_err(|e| e.into_registry())?;
        let versions = page
            .model_versions
            .into_iter()
            .filter_map(|v| {
                let text = tags_map(v.tags).remove(PROMPT_TEXT_TAG)?;
                Some((v.version, text))
            })
            .collect();
        let aliases = model
            .aliases
            .into_iter()
            .map(|a| (a.alias, a.version))
            .collect();
        Ok(Some(LivePrompt { versions, aliases }))
    }

    /// Creates the prompt (`registered-models/create` with MLflow's tag).
    pub async fn create_prompt(&self, name: &str) -> Result<()> {
        let body = json!({"name": name, "tags": [{"key": IS_PROMPT_TAG, "value": "true"}]});
        self.client
            .call::<RegisteredModelResponse>(&ep::CREATE_MODEL, Payload::Json(&body))
            .await
            .map(drop)
            .map_err(|e| e.into_registry())
    }

    /// Registers a template as a new version; returns its number.
    pub async fn create_prompt_version(
        &self,
        name: &str,
        template: &str,
        commit_message: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<u64> {
        let mut all = vec![
            json!({"key": IS_PROMPT_TAG, "value": "true"}),
            json!({"key": PROMPT_TEXT_TAG, "value": template}),
            json!({"key": PROMPT_TYPE_TAG, "value": "text"}),
        ];
        all.extend(tags.iter().map(|(k, v)| json!({"key": k, "value": v})));
        let mut body = json!({"name": name, "source": PROMPT_SOURCE, "tags": all});
        if let Some(m) = commit_message {
            body["description"] = json!(m);
        }
        self.client
            .call::<ModelVersionResponse>(&ep::CREATE_VERSION, Payload::Json(&body))
            .await
            .map(|r| r.model_version.version)
            .map_err(|e| e.into_registry())
    }

    /// Points `alias` of the prompt at `version`.
    pub async fn set_prompt_alias(&self, name: &str, alias: &str, version: u64) -> Result<()> {
        super::write::set_alias(self, name, alias, version).await
    }
}
