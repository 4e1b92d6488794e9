//! Reads: bulk, paged snapshots, single models and runs (source resolution
//! is in `sources.rs`).
//!
//! The number of requests grows with pages, never with models × versions:
//! one `registered-models/search` page holds 1000 models (with aliases,
//! tags, descriptions) and one `model-versions/search` page 20,000
//! versions. Tokens are offsets, so results are sorted and de-duplicated;
//! where the server's tokens are MLflow's offset tokens, the pages after
//! the first are asked for four at a time, and a bulk page is decoded
//! straight into live versions, merged into the live state in order as it
//! arrives (`pages.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;

use super::MlflowRegistry;
use super::client::Payload;
use super::endpoints as ep;
use super::errors::CallError;
use super::pages::{FoldedVersions, Versions, rest_of_pages};
use super::paging::{Page, Search};
use super::wire::{
    Experiment, ExperimentPage, ExperimentResponse, ModelVersion, ModelVersionPage,
    RegisteredModelPage, RegisteredModelResponse, RunResponse, filter_literal,
};
use crate::registry::{RegistryError, Result, Scope, SnapshotRequest};
use crate::state::{LiveExperiment, LiveModel, LiveRun, LiveState};
use futures_util::{StreamExt, TryStreamExt, stream};

/// Up to this many named models, versions are searched per model (and a
/// targeted snapshot reads each model by name: `registered-models/get`,
/// then its versions; 2 requests per model against the bulk pages, whose
/// server-side cost grows with the whole registry).
pub const PER_MODEL_SEARCH_LIMIT: usize = 20;
/// Requests in flight for per-object reads (runs, per-model searches).
const READ_CONCURRENCY: usize = 8;
/// The version page asked for first. The OSS server accepts up to 200,000,
/// but one page is built by one server worker and held whole in memory on
/// both sides: at 100,000 versions (PostgreSQL) one page took 39 s and the
/// client's peak RSS was 187 MiB. Pages of 20,000, asked for concurrently
/// (`rest_of_pages`), let the workers share the work.
pub(super) const VERSION_PAGE_MAX: u64 = 20_000;
/// The page size Databricks (and MLflow's Python client) use.
const VERSION_PAGE_FALLBACK: u64 = 10_000;
/// The largest page `registered-models/search` accepts.
const MODEL_PAGE: u64 = 1000;

/// Every registered model and every version, read before the scope was
/// known (while the manifests were parsed).
pub struct Prefetched {
    models: BTreeMap<String, LiveModel>,
    versions: Versions,
}

/// The two bulk reads of a snapshot, for every model.
pub async fn prefetch(reg: &MlflowRegistry) -> Result<Prefetched> {
    let (models, versions) = futures_util::future::try_join(
        search_models(reg, &Scope::All),
        fold_versions(reg, &Scope::All),
    )
    .await?;
    Ok(Prefetched { models, versions })
}

/// A full snapshot of the models and experiments in scope. A declared
/// name held by a prompt comes back as a model tagged as one (MLflow's
/// model searches leave prompts out; `registered-models/get` answers
/// them), for the planner to refuse.
pub async fn snapshot(reg: &MlflowRegistry, req: &SnapshotRequest) -> Result<LiveState> {
    let mut live = match &req.models {
        Scope::Targeted(names) if names.len() <= PER_MODEL_SEARCH_LIMIT => {
            return by_name(reg, names, &req.experiments).await;
        }
        _ => in_bulk(reg, req).await?,
    };
    if let Some(names) = req.models.names() {
        super::prompts::mark_prompts(reg, names, &mut live.models).await?;
    }
    Ok(live)
}

/// A few models, each read by name (`registered-models/get`, then its
/// versions), a few at a time; and the experiments by name.
async fn by_name(
    reg: &MlflowRegistry,
    names: &BTreeSet<String>,
    experiments: &BTreeSet<String>,
) -> Result<LiveState> {
    let models = async {
        let reads: Vec<_> = names.iter().map(|name| get_model(reg, name)).collect();
        let found: Vec<Option<LiveModel>> = stream::iter(reads)
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(found
            .into_iter()
            .flatten()
            .map(|m| (m.name.clone(), m))
            .collect())
    };
    let (models, (experiments, deleted_experiments)) =
        futures_util::future::try_join(models, experiments_by_name(reg, experiments)).await?;
    Ok(LiveState {
        models,
        experiments,
        deleted_experiments,
        ..LiveState::default()
    })
}

/// The snapshot from the bulk pages (for up to
/// [`PER_MODEL_SEARCH_LIMIT`] named models, their versions searched per
/// model); a named one of more models from the prefetched pages when
/// there are some.
async fn in_bulk(reg: &MlflowRegistry, req: &SnapshotRequest) -> Result<LiveState> {
    if let Some(names) = req.models.names()
        && names.len() > PER_MODEL_SEARCH_LIMIT
    {
        let early = reg.prefetched.lock().expect("prefetch lock").take();
        if let Some(p) = early {
            return from_prefetched(reg, req, names, p).await;
        }
    }
    // The model search, the version search(es) and the experiment reads do
    // not depend on each other: they run concurrently.
    let versions = async {
        match req.models.names() {
            Some(names) if names.len() <= PER_MODEL_SEARCH_LIMIT => {
                let reads: Vec<_> = names.iter().map(|name| versions_of(reg, name)).collect();
                let mut pages = stream::iter(reads).buffer_unordered(READ_CONCURRENCY);
                let mut versions = Versions::default();
                while let Some(page) = pages.try_next().await? {
                    versions.fold(page, &req.models);
                }
                Ok(versions)
            }
            _ => fold_versions(reg, &req.models).await,
        }
    };
    let experiments = async {
        match &req.models {
            Scope::All => Ok((search_experiments(reg).await?, BTreeMap::new())),
            Scope::Named(_) | Scope::Targeted(_) => {
                experiments_by_name(reg, &req.experiments).await
            }
        }
    };
    let (mut models, versions, (experiments, deleted_experiments)) =
        futures_util::future::try_join3(search_models(reg, &req.models), versions, experiments)
            .await?;
    let freeze = take_freeze(&mut models);
    versions.attach(&mut models)?;
    Ok(LiveState {
        models,
        experiments,
        deleted_experiments,
        freeze,
        ..LiveState::default()
    })
}

/// The freeze, from the freeze model the model search found (it reads
/// every registered model: the freeze costs no request of its own), taken
/// out of the models.
fn take_freeze(models: &mut BTreeMap<String, LiveModel>) -> Option<crate::state::hold::Freeze> {
    let model = models.remove(&super::freeze::freeze_model_name())?;
    let value = model.tags.get(crate::state::tags::FREEZE)?;
    Some(crate::state::hold::Freeze::parse(value))
}

/// A named snapshot from the prefetched bulk reads: only the experiments
/// are read now.
async fn from_prefetched(
    reg: &MlflowRegistry,
    req: &SnapshotRequest,
    names: &BTreeSet<String>,
    p: Prefetched,
) -> Result<LiveState> {
    let (experiments, deleted_experiments) = experiments_by_name(reg, &req.experiments).await?;
    let mut models = p.models;
    let freeze = take_freeze(&mut models);
    models.retain(|name, _| names.contains(name));
    p.versions.attach(&mut models)?;
    Ok(LiveState {
        models,
        experiments,
        deleted_experiments,
        freeze,
        ..LiveState::default()
    })
}

/// One model with its versions and aliases, or `None`.
pub async fn get_model(reg: &MlflowRegistry, name: &str) -> Result<Option<LiveModel>> {
    let q = [("name", name.to_owned())];
    let model = match reg
        .client
        .call::<RegisteredModelResponse>(&ep::GET_MODEL, Payload::Query(&q))
        .await
    {
        Ok(r) => r.registered_model.into_live(),
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut models = BTreeMap::from([(model.name.clone(), model)]);
    let mut versions = Versions::default();
    versions.fold(versions_of(reg, name).await?, &Scope::All);
    versions.attach(&mut models)?;
    Ok(models.into_values().next())
}

/// Runs by id with their latest metrics; unknown ids are left out.
pub async fn get_runs(
    reg: &MlflowRegistry,
    run_ids: &[String],
) -> Result<BTreeMap<String, LiveRun>> {
    let unique: BTreeSet<&String> = run_ids.iter().collect();
    let reads: Vec<_> = unique.into_iter().map(|id| get_run(reg, id)).collect();
    let runs: Vec<Option<super::wire::Run>> = stream::iter(reads)
        .buffer_unordered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(runs
        .into_iter()
        .flatten()
        .map(|r| r.into_live())
        .map(|r| (r.run_id.clone(), r))
        .collect())
}

/// Versions of one model, all pages.
pub async fn versions_of(reg: &MlflowRegistry, name: &str) -> Result<Vec<ModelVersion>> {
    let lit = filter_literal(name).ok_or_else(|| {
        RegistryError::Invalid(format!(
            "model name {name:?} holds both ' and \", which MLflow's search filters cannot express"
        ))
    })?;
    search_versions(reg, Some(&format!("name={lit}"))).await
}

/// `model-versions/search` with `filter`, following every page.
pub async fn search_versions(
    reg: &MlflowRegistry,
    filter: Option<&str>,
) -> Result<Vec<ModelVersion>> {
    let mut out = Vec::new();
    each_version_page::<ModelVersionPage>(reg, filter, |page| out.extend(page)).await?;
    Ok(out)
}

/// Every version in `scope`, folded into live versions page by page (the
/// bulk read of a snapshot: no page outlives its fold).
async fn fold_versions(reg: &MlflowRegistry, scope: &Scope) -> Result<Versions> {
    let mut versions = Versions::default();
    each_version_page::<FoldedVersions>(reg, None, |page| versions.merge(page, scope)).await?;
    Ok(versions)
}

/// `model-versions/search` with `filter`, every page decoded as `P` and
/// handed to `take` in order as it arrives.
async fn each_version_page<P: Page>(
    reg: &MlflowRegistry,
    filter: Option<&str>,
    mut take: impl FnMut(P::Items),
) -> Result<()> {
    let first = loop {
        let page_size = reg.version_page.load(Ordering::Relaxed);
        match versions_page::<P>(reg, filter, page_size, String::new()).await {
            Ok(p) => break (page_size, p),
            Err(e) if page_size > VERSION_PAGE_FALLBACK && refuses_max_results(&e) => {
                tracing::debug!(
                    "server refused max_results={page_size}; using {VERSION_PAGE_FALLBACK}"
                );
                reg.version_page
                    .store(VERSION_PAGE_FALLBACK, Ordering::Relaxed);
            }
            Err(e) => return Err(e.into()),
        }
    };
    let (page_size, (page, next)) = first;
    take(page);
    let fetch = |token| async move {
        versions_page::<P>(reg, filter, page_size, token)
            .await
            .map_err(RegistryError::from)
    };
    rest_of_pages(next, page_size, fetch, take).await
}

/// One `model-versions/search` page: its versions and the next token.
async fn versions_page<P: Page>(
    reg: &MlflowRegistry,
    filter: Option<&str>,
    page_size: u64,
    token: String,
) -> std::result::Result<(P::Items, String), CallError> {
    let mut q = vec![
        ("max_results", page_size.to_string()),
        ("order_by", "name ASC".to_owned()),
        ("order_by", "version_number ASC".to_owned()),
    ];
    if let Some(f) = filter {
        q.push(("filter", f.to_owned()));
    }
    if !token.is_empty() {
        q.push(("page_token", token));
    }
    let page = reg
        .client
        .call::<P>(&ep::SEARCH_VERSIONS, Payload::Query(&q))
        .await?;
    Ok(page.into_parts())
}

fn refuses_max_results(e: &CallError) -> bool {
    matches!(e, CallError::Api { code, message, .. }
        if (code == "INVALID_PARAMETER_VALUE" || code == "BAD_REQUEST") && message.contains("max_results"))
}

/// Registered models in scope, all pages, de-duplicated by name.
pub(super) async fn search_models(
    reg: &MlflowRegistry,
    scope: &Scope,
) -> Result<BTreeMap<String, LiveModel>> {
    let mut models = BTreeMap::new();
    if scope.names().is_some_and(BTreeSet::is_empty) {
        return Ok(models);
    }
    // The freeze model too: a snapshot reports the freeze.
    let freeze = super::freeze::freeze_model_name();
    let keep = |page: Vec<super::wire::RegisteredModel>| -> Vec<LiveModel> {
        page.into_iter()
            .filter(|m| scope.contains(&m.name) || m.name == freeze)
            .map(|m| m.into_live())
            .collect()
    };
    let mut take = |page: Vec<LiveModel>| {
        for m in page {
            models.entry(m.name.clone()).or_insert(m);
        }
    };
    let (first, next) = models_page(reg, String::new()).await?;
    take(keep(first));
    let fetch = |token| async move {
        let (page, next) = models_page(reg, token).await?;
        Ok((keep(page), next))
    };
    rest_of_pages(next, MODEL_PAGE, fetch, take).await?;
    Ok(models)
}

/// One `registered-models/search` page and the next token.
async fn models_page(
    reg: &MlflowRegistry,
    token: String,
) -> Result<(Vec<super::wire::RegisteredModel>, String)> {
    let mut q = vec![
        ("max_results", MODEL_PAGE.to_string()),
        ("order_by", "name ASC".to_owned()),
    ];
    if !token.is_empty() {
        q.push(("page_token", token));
    }
    let page: RegisteredModelPage = reg
        .client
        .call(&ep::SEARCH_MODELS, Payload::Query(&q))
        .await?;
    Ok((page.registered_models, page.next_page_token))
}

/// Declared experiments by name: the active ones, and the names that only
/// a deleted experiment holds (name -> id).
async fn experiments_by_name(
    reg: &MlflowRegistry,
    names: &BTreeSet<String>,
) -> Result<(BTreeMap<String, LiveExperiment>, BTreeMap<String, String>)> {
    let reads: Vec<_> = names.iter().map(|name| experiment_any(reg, name)).collect();
    let found: Vec<Option<Experiment>> = stream::iter(reads)
        .buffer_unordered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    let mut active = BTreeMap::new();
    let mut deleted = BTreeMap::new();
    for e in found.into_iter().flatten() {
        if e.is_deleted() {
            deleted.insert(e.name.clone(), e.experiment_id.clone());
        } else {
            active.insert(e.name.clone(), e.into_live());
        }
    }
    Ok((active, deleted))
}

/// An active experiment by name; `None` when absent or deleted.
pub async fn experiment_by_name(
    reg: &MlflowRegistry,
    name: &str,
) -> Result<Option<LiveExperiment>> {
    Ok(experiment_any(reg, name)
        .await?
        .filter(|e| !e.is_deleted())
        .map(Experiment::into_live))
}

/// An experiment by name, deleted ones included (MLflow's get-by-name
/// answers with those too).
pub(super) async fn experiment_any(reg: &MlflowRegistry, name: &str) -> Result<Option<Experiment>> {
    let q = [("experiment_name", name.to_owned())];
    match reg
        .client
        .call::<ExperimentResponse>(&ep::GET_EXPERIMENT_BY_NAME, Payload::Query(&q))
        .await
    {
        Ok(r) => Ok(Some(r.experiment)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn search_experiments(reg: &MlflowRegistry) -> Result<BTreeMap<String, LiveExperiment>> {
    let mut out = BTreeMap::new();
    let q = vec![
        ("max_results", "1000".to_owned()),
        ("view_type", "ACTIVE_ONLY".to_owned()),
    ];
    reg.client
        .each_page::<ExperimentPage>(&ep::SEARCH_EXPERIMENTS, Search::Query(q), |page| {
            for e in page.into_iter().filter(|e| !e.is_deleted()) {
                out.entry(e.name.clone()).or_insert_with(|| e.into_live());
            }
            ControlFlow::Continue(())
        })
        .await?;
    Ok(out)
}

pub(super) async fn get_run(
    reg: &MlflowRegistry,
    run_id: &str,
) -> Result<Option<super::wire::Run>> {
    let q = [("run_id", run_id.to_owned())];
    match reg
        .client
        .call::<RunResponse>(&ep::GET_RUN, Payload::Query(&q))
        .await
    {
        Ok(r) => Ok(Some(r.run)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl MlflowRegistry {
    /// Every registered model's tags, in one paged search (`hold list`).
    pub async fn model_tags(
        &self,
    ) -> Result<BTreeMap<String, crate::state::SmallMap<String, String>>> {
        let models = search_models(self, &Scope::All).await?;
        Ok(models.into_iter().map(|(n, m)| (n, m.tags)).collect())
    }
}
