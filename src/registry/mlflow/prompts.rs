//! Prompts the way MLflow 3's client writes them
//! (`mlflow/store/model_registry/abstract_store.py`): a registered model
//! tagged `mlflow.prompt.is_prompt=true`; each version registered with the
//! placeholder source `prompt-template`, the template in the tag
//! `mlflow.prompt.text`, `_mlflow_prompt_type=text`, and the commit message
//! as its description; aliases are plain registered-model aliases. MLflow's
//! searches leave prompts out unless a filter asks for the prompt tag, so
//! every read here names it.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::json;

use super::MlflowRegistry;
use super::client::Payload;
use super::endpoints as ep;
use super::paging::Search;
use super::wire::{
    ModelVersionPage, ModelVersionResponse, RegisteredModelPage, RegisteredModelResponse, tags_map,
};
use crate::registry::{NewPromptVersion, Result};
use crate::state::tags::{MLFLOW_IS_PROMPT, MLFLOW_PROMPT_TEXT, is_prompt};
use crate::state::{LiveModel, LivePrompt};

/// The version tag holding the template's type.
pub const PROMPT_TYPE_TAG: &str = "_mlflow_prompt_type";
/// The source MLflow's store sends for a prompt version (the server refuses others).
pub const PROMPT_SOURCE: &str = "prompt-template";
/// Prompts read at once.
const READ_CONCURRENCY: usize = 8;
/// The largest page of either search.
const PAGE: &str = "1000";

/// Marks the `names` a bulk model read found absent that are prompts
/// (MLflow's model searches leave prompts out): when some are absent and
/// the server has prompts, one search for the prompts' names (read once
/// per registry instance) tells, and those are kept as the prompts they
/// are — models tagged `mlflow.prompt.is_prompt` — for the planner to
/// refuse.
pub async fn mark_prompts(
    reg: &MlflowRegistry,
    names: &BTreeSet<String>,
    models: &mut BTreeMap<String, LiveModel>,
) -> Result<()> {
    use crate::registry::Registry;
    let absent: Vec<&String> = names.iter().filter(|n| !models.contains_key(*n)).collect();
    if absent.is_empty() || !reg.capabilities().await?.prompts {
        return Ok(());
    }
    let prompts = reg.prompt_names().await?;
    for name in absent.into_iter().filter(|n| prompts.contains(*n)) {
        let tags = [(MLFLOW_IS_PROMPT.to_string(), "true".to_string())]
            .into_iter()
            .collect();
        let model = LiveModel {
            name: name.clone(),
            tags,
            ..LiveModel::default()
        };
        models.insert(name.clone(), model);
    }
    Ok(())
}

/// The prompts among `names` that exist.
pub async fn read_prompts(
    reg: &MlflowRegistry,
    names: &BTreeSet<String>,
) -> Result<BTreeMap<String, LivePrompt>> {
    let reads: Vec<_> = names.iter().map(|name| read_named(reg, name)).collect();
    let found: Vec<Option<(String, LivePrompt)>> = stream::iter(reads)
        .buffer_unordered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

async fn read_named(reg: &MlflowRegistry, name: &str) -> Result<Option<(String, LivePrompt)>> {
    Ok(read_prompt(reg, name).await?.map(|p| (name.to_string(), p)))
}

/// Every prompt on the server (export): [`prompt_names`], then each
/// prompt's versions.
pub async fn list_prompts(reg: &MlflowRegistry) -> Result<BTreeMap<String, LivePrompt>> {
    read_prompts(reg, &prompt_names(reg).await?).await
}

/// The name of every prompt: a model search asking for the prompt tag.
pub async fn prompt_names(reg: &MlflowRegistry) -> Result<BTreeSet<String>> {
    let filter = format!("tags.`{MLFLOW_IS_PROMPT}` = 'true'");
    let mut names = BTreeSet::new();
    reg.client
        .each_page::<RegisteredModelPage>(&ep::SEARCH_MODELS, search(&filter), |models| {
            names.extend(models.into_iter().map(|m| m.name));
            ControlFlow::Continue(())
        })
        .await
        .map_err(|e| e.into_registry())?;
    Ok(names)
}

/// The prompt `name` (`None`: absent); a registered model that is not a
/// prompt comes back as `not_a_prompt`, so that prompts never write over
/// models.
async fn read_prompt(reg: &MlflowRegistry, name: &str) -> Result<Option<LivePrompt>> {
    let q = [("name", name.to_string())];
    let model = match reg
        .client
        .call::<RegisteredModelResponse>(&ep::GET_MODEL, Payload::Query(&q))
        .await
    {
        Ok(r) => r.registered_model,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into_registry()),
    };
    if !is_prompt(&tags_map(model.tags)) {
        return Ok(Some(LivePrompt {
            not_a_prompt: true,
            ..LivePrompt::default()
        }));
    }
    let filter = format!(
        "name = '{}' AND tags.`{MLFLOW_IS_PROMPT}` = 'true'",
        name.replace('\'', "\\'")
    );
    let mut versions = BTreeMap::new();
    reg.client
        .each_page::<ModelVersionPage>(&ep::SEARCH_VERSIONS, search(&filter), |page| {
            versions.extend(page.into_iter().filter_map(|v| {
                let text = tags_map::<BTreeMap<_, _>>(v.tags).remove(MLFLOW_PROMPT_TEXT)?;
                Some((v.version, text))
            }));
            ControlFlow::Continue(())
        })
        .await
        .map_err(|e| e.into_registry())?;
    let aliases = model
        .aliases
        .into_iter()
        .map(|a| (a.alias, a.version))
        .collect();
    Ok(Some(LivePrompt {
        versions,
        aliases,
        not_a_prompt: false,
    }))
}

/// A search with `filter`, in the largest pages.
fn search(filter: &str) -> Search {
    Search::Query(vec![
        ("filter", filter.to_string()),
        ("max_results", PAGE.to_string()),
    ])
}

/// Creates the prompt (`registered-models/create` with MLflow's tag).
pub async fn create_prompt(reg: &MlflowRegistry, name: &str) -> Result<()> {
    let body = json!({"name": name, "tags": [{"key": MLFLOW_IS_PROMPT, "value": "true"}]});
    reg.client
        .call::<RegisteredModelResponse>(&ep::CREATE_MODEL, Payload::Json(&body))
        .await
        .map(drop)
        .map_err(|e| e.into_registry())
}

/// Registers a template as a new version; returns its number.
pub async fn create_prompt_version(
    reg: &MlflowRegistry,
    name: &str,
    new: &NewPromptVersion,
) -> Result<u64> {
    let mut all = vec![
        json!({"key": MLFLOW_IS_PROMPT, "value": "true"}),
        json!({"key": MLFLOW_PROMPT_TEXT, "value": new.template}),
        json!({"key": PROMPT_TYPE_TAG, "value": "text"}),
    ];
    all.extend(new.tags.iter().map(|(k, v)| json!({"key": k, "value": v})));
    let mut body = json!({"name": name, "source": PROMPT_SOURCE, "tags": all});
    if let Some(m) = &new.commit_message {
        body["description"] = json!(m);
    }
    reg.client
        .call::<ModelVersionResponse>(&ep::CREATE_VERSION, Payload::Json(&body))
        .await
        .map(|r| r.model_version.version)
        .map_err(|e| e.into_registry())
}
