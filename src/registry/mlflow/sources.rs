//! What a declared `runs:/<run>/<path>` source registers as, checked the way
//! MLflow's own `register_model` checks it.
//!
//! MLflow 3's client (`mlflow.tracking._model_registry.fluent._register_model`)
//! registers the files under `<path>` when they hold an `MLmodel`, else the
//! run's logged model named `<path>` (`models:/<model_id>`), and refuses the
//! source when there is neither; a run that does not exist fails before.
//! modelsync asks the same questions through REST: `runs/get`,
//! `logged-models/search` (absent on MLflow 2.x: the registry's
//! capabilities say so) and `artifacts/list`. A server that cannot list the run's
//! artifacts (no access to the artifact store) cannot tell: the source is
//! then registered as declared, with a warning.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use serde_json::json;

use super::MlflowRegistry;
use super::client::Payload;
use super::endpoints as ep;
use super::paging::Search;
use super::read::get_run;
use super::wire::{ArtifactPage, LoggedModelInfo, LoggedModelPage, filter_literal};
use crate::registry::{RegistryError, Result};
use crate::state::{ResolvedSource, SourceResolution};

/// MLflow's model metadata file: a directory holding it is a model.
const MLMODEL: &str = "MLmodel";
/// Pages of `artifacts/list` followed at most (a model directory is small).
const ARTIFACT_PAGES: usize = 10;

/// Answers for every `runs:/` source in `sources`; other sources are left
/// out (they register verbatim, unchecked).
pub async fn resolve_sources(
    reg: &MlflowRegistry,
    sources: &[String],
) -> Result<BTreeMap<String, SourceResolution>> {
    let wanted: BTreeSet<(&String, (&str, &str))> = sources
        .iter()
        .filter_map(|s| parse_runs_uri(s).map(|p| (s, p)))
        .collect();
    let mut out = BTreeMap::new();
    for (source, (run_id, path)) in wanted {
        let answer = resolve_one(reg, run_id, path).await?;
        if let SourceResolution::NotFound(why) = &answer {
            tracing::debug!(source = %source, "cannot register: {why}");
        }
        out.insert(source.clone(), answer);
    }
    Ok(out)
}

/// `runs:/<run>/<path>` -> (run, path). `None` for anything else.
pub fn parse_runs_uri(source: &str) -> Option<(&str, &str)> {
    let rest = source.strip_prefix("runs:/")?.trim_start_matches('/');
    let (run, path) = rest.split_once('/')?;
    let path = path.trim_matches('/');
    (!run.is_empty() && !path.is_empty()).then_some((run, path))
}

async fn resolve_one(reg: &MlflowRegistry, run_id: &str, path: &str) -> Result<SourceResolution> {
    let Some(run) = get_run(reg, run_id).await? else {
        return Ok(SourceResolution::NotFound(format!(
            "run {run_id} does not exist"
        )));
    };
    let experiment = run.info.experiment_id;
    if let Some(model) = find_logged_model(reg, &experiment, run_id, Some(path))
        .await?
        .into_iter()
        .find(|m| !m.model_id.is_empty())
    {
        return Ok(SourceResolution::Resolved(ResolvedSource {
            source: format!("models:/{}", model.model_id),
            run_id: Some(run_id.to_owned()),
            model_id: Some(model.model_id),
            location: Some(model.artifact_uri).filter(|u| !u.is_empty()),
        }));
    }
    match holds_model(reg, run_id, path).await {
        Ok(true) => Ok(SourceResolution::Verbatim),
        Ok(false) => {
            let logged: BTreeSet<String> = find_logged_model(reg, &experiment, run_id, None)
                .await?
                .into_iter()
                .map(|m| m.name)
                .collect();
            let logged: Vec<String> = logged.into_iter().collect();
            let mut why = format!("run {run_id} logged no model under path {path:?}");
            if !logged.is_empty() {
                why.push_str(&format!(" (it logged: {})", logged.join(", ")));
            }
            Ok(SourceResolution::NotFound(why))
        }
        Err(e @ (RegistryError::Unreachable(_) | RegistryError::Unauthenticated(_))) => Err(e),
        Err(e) => {
            tracing::warn!(
                run = run_id,
                path,
                "the server cannot list the run's artifacts ({e}); registering runs:/{run_id}/{path} unchecked"
            );
            Ok(SourceResolution::Verbatim)
        }
    }
}

/// True when `<path>/MLmodel` is among the run's artifacts.
async fn holds_model(reg: &MlflowRegistry, run_id: &str, path: &str) -> Result<bool> {
    let wanted = format!("{path}/{MLMODEL}");
    let q = vec![("run_id", run_id.to_owned()), ("path", path.to_owned())];
    let (mut found, mut pages) = (false, 0);
    reg.client
        .each_page::<ArtifactPage>(&ep::LIST_ARTIFACTS, Search::Query(q), |files| {
            pages += 1;
            found = files
                .iter()
                .any(|f| !f.is_dir && f.path.trim_start_matches('/') == wanted);
            if found || pages >= ARTIFACT_PAGES {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await?;
    Ok(found)
}

/// Logged models of `run_id` (named `name`, or all), newest first.
/// Records whether the server has the logged-models API at all; empty on
/// a server without it.
async fn find_logged_model(
    reg: &MlflowRegistry,
    experiment_id: &str,
    run_id: &str,
    name: Option<&str>,
) -> Result<Vec<LoggedModelInfo>> {
    if !reg.has_logged_models().await? {
        return Ok(Vec::new());
    }
    let Some(run_lit) = filter_literal(run_id) else {
        return Ok(Vec::new());
    };
    let mut filter = format!("source_run_id = {run_lit}");
    if let Some(name) = name {
        let Some(name_lit) = filter_literal(name) else {
            return Ok(Vec::new());
        };
        filter.push_str(&format!(" AND name = {name_lit}"));
    }
    let body = json!({
        "experiment_ids": [experiment_id],
        "filter": filter,
        "order_by": [{"field_name": "creation_timestamp", "ascending": false}],
        "max_results": 50,
    });
    match reg
        .client
        .call::<LoggedModelPage>(&ep::SEARCH_LOGGED_MODELS, Payload::Json(&body))
        .await
    {
        Ok(page) => Ok(page
            .models
            .into_iter()
            .map(|m| m.info)
            .filter(|m| m.source_run_id == run_id && name.is_none_or(|n| m.name == n))
            .collect()),
        Err(e) if e.is("ENDPOINT_NOT_FOUND") => {
            tracing::debug!(
                "the server has no logged-models API (MLflow 2.x): runs:/ sources register verbatim"
            );
            reg.lacks_logged_models();
            Ok(Vec::new())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_uris() {
        assert_eq!(parse_runs_uri("runs:/abc/model"), Some(("abc", "model")));
        assert_eq!(
            parse_runs_uri("runs:/abc/sub/model/"),
            Some(("abc", "sub/model"))
        );
        assert_eq!(parse_runs_uri("runs:/abc"), None);
        assert_eq!(parse_runs_uri("runs:/abc/"), None);
        assert_eq!(parse_runs_uri("s3://b/k"), None);
        assert_eq!(parse_runs_uri("models:/m-1"), None);
    }
}
