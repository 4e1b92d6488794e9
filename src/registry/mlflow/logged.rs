//! MLflow 3 logged models, read for their metrics (gates read a version's
//! metric from its logged model first).
//!
//! Bulk: one `logged-models/search` per hundred ids (`model_id IN (...)`,
//! within the experiments of the versions' runs), then a
//! `GET logged-models/{id}` only for ids that search did not find (a logged
//! model without a run, or in another experiment) or on a server whose
//! search cannot filter by id. A server without the API (MLflow 2.x) has no
//! logged models: nothing is read.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::json;

use super::MlflowRegistry;
use super::client::Payload;
use super::endpoints as ep;
use super::paging::Search;
use super::wire::{LoggedModel, LoggedModelPage, LoggedModelResponse};
use crate::registry::Result;
use crate::state::LiveLoggedModel;

/// Ids per search request (and the page size asked for).
const IDS_PER_SEARCH: usize = 100;
/// Concurrent `GET logged-models/{id}` for ids search did not find.
const GET_CONCURRENCY: usize = 8;

/// The logged models with these ids, searched within `experiment_ids`;
/// unknown ids are left out.
pub async fn get_logged_models(
    reg: &MlflowRegistry,
    ids: &[String],
    experiment_ids: &[String],
) -> Result<BTreeMap<String, LiveLoggedModel>> {
    let mut out = BTreeMap::new();
    if ids.is_empty() || !reg.has_logged_models().await? {
        return Ok(out);
    }
    let wanted: BTreeSet<&String> = ids.iter().collect();
    let plain: Vec<&String> = wanted.iter().copied().filter(|id| is_plain(id)).collect();
    if !experiment_ids.is_empty() {
        for chunk in plain.chunks(IDS_PER_SEARCH) {
            match search(reg, chunk, experiment_ids).await? {
                Searched::Found(models) => out.extend(models),
                Searched::NoApi => return Ok(out),
                Searched::Unsupported => break,
            }
        }
    }
    let missing: Vec<&String> = wanted
        .into_iter()
        .filter(|id| !out.contains_key(*id))
        .collect();
    let reads: Vec<_> = missing.into_iter().map(|id| get_one(reg, id)).collect();
    let found: Vec<Option<LiveLoggedModel>> = stream::iter(reads)
        .buffer_unordered(GET_CONCURRENCY)
        .try_collect()
        .await?;
    out.extend(found.into_iter().flatten().map(|m| (m.model_id.clone(), m)));
    Ok(out)
}

/// What one search answered.
enum Searched {
    Found(BTreeMap<String, LiveLoggedModel>),
    /// No logged-models API at all (MLflow 2.x).
    NoApi,
    /// The server cannot filter logged models by id (an older 3.x).
    Unsupported,
}

/// An id that can go in a filter literal as is (MLflow's are `m-<hex>`).
fn is_plain(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

async fn search(
    reg: &MlflowRegistry,
    ids: &[&String],
    experiment_ids: &[String],
) -> Result<Searched> {
    let list: Vec<String> = ids.iter().map(|id| format!("'{id}'")).collect();
    let filter = format!("model_id IN ({})", list.join(", "));
    let body = json!({
        "experiment_ids": experiment_ids,
        "filter": filter,
        "max_results": IDS_PER_SEARCH,
    });
    let mut out = BTreeMap::new();
    let searched = reg
        .client
        .each_page::<LoggedModelPage>(&ep::SEARCH_LOGGED_MODELS, Search::Json(body), |page| {
            for m in page.into_iter().map(LoggedModel::into_live) {
                if ids.iter().any(|id| **id == m.model_id) {
                    out.insert(m.model_id.clone(), m);
                }
            }
            ControlFlow::Continue(())
        })
        .await;
    match searched {
        Ok(()) => Ok(Searched::Found(out)),
        Err(e) if e.is("ENDPOINT_NOT_FOUND") => {
            reg.lacks_logged_models();
            Ok(Searched::NoApi)
        }
        Err(e) if e.is("INVALID_PARAMETER_VALUE") || e.is("BAD_REQUEST") => {
            tracing::debug!(
                "logged-models/search cannot filter by model_id here: {}",
                e.into_registry()
            );
            Ok(Searched::Unsupported)
        }
        Err(e) => Err(e.into()),
    }
}

async fn get_one(reg: &MlflowRegistry, id: &str) -> Result<Option<LiveLoggedModel>> {
    match reg
        .client
        .call_at::<LoggedModelResponse>(&ep::GET_LOGGED_MODEL, Some(id), Payload::Query(&[]))
        .await
    {
        Ok(r) => Ok(Some(r.model.into_live())),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}
