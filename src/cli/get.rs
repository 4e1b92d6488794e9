//! `modelsync get`: one version of a model, by stage, alias or number.

use anyhow::{anyhow, bail};
use serde_json::{Value, json};

use super::args::{GetArgs, OutputFormat};
use super::common::{self, print};
use super::{Exit, GlobalArgs};
use crate::state::{LiveModel, LiveVersion, Stage};

pub async fn run(g: &GlobalArgs, a: GetArgs) -> anyhow::Result<Exit> {
    let model = common::read_model(g, &a.model).await?;
    let single = a.stage.is_some() || a.alias.is_some() || a.version.is_some();
    let selected: Vec<&LiveVersion> = if single {
        vec![select(
            &model,
            a.stage.as_deref(),
            a.alias.as_deref(),
            a.version,
        )?]
    } else {
        model.versions.values().collect()
    };
    match a.format {
        OutputFormat::Json => {
            let docs: Vec<Value> = selected.iter().map(|v| to_json(&model, v)).collect();
            let body = if single {
                docs.into_iter().next().unwrap_or(Value::Null)
            } else {
                Value::Array(docs)
            };
            print(&format!("{}\n", serde_json::to_string_pretty(&body)?))?;
        }
        OutputFormat::Text => {
            for v in &selected {
                print(&to_text(&model, v))?;
            }
        }
    }
    Ok(Exit::Ok)
}

/// The version a stage (its highest holder), an alias or a number names,
/// in that order of precedence; an error naming what is missing.
pub fn select<'m>(
    model: &'m LiveModel,
    stage: Option<&str>,
    alias: Option<&str>,
    number: Option<u64>,
) -> anyhow::Result<&'m LiveVersion> {
    let name = &model.name;
    if let Some(stage) = stage {
        let stage = Stage::parse(stage).ok_or_else(|| {
            anyhow!("unknown stage {stage:?}: expected one of None, Staging, Production, Archived")
        })?;
        model
            .holders(stage)
            .last()
            .ok_or_else(|| anyhow!("no version of {name:?} is in stage {stage}"))
    } else if let Some(alias) = alias {
        let n = model
            .aliases
            .get(alias)
            .ok_or_else(|| anyhow!("model {name:?} has no alias {alias:?}"))?;
        version(model, *n)
    } else if let Some(n) = number {
        version(model, n)
    } else {
        bail!("name a version of {name:?}: an alias, a stage or a number")
    }
}

fn version(model: &LiveModel, n: u64) -> anyhow::Result<&LiveVersion> {
    match model.versions.get(&n) {
        Some(v) => Ok(v),
        None => bail!("version {n} of {:?} does not exist", model.name),
    }
}

/// A version in MLflow's field names (`version` as a string).
pub fn to_json(model: &LiveModel, v: &LiveVersion) -> Value {
    json!({
        "name": model.name,
        "version": v.version.to_string(),
        "current_stage": v.stage.as_str(),
        "source": v.source,
        "run_id": v.run_id,
        "status": v.status,
        "description": v.description,
        "aliases": model.aliases_of(v.version),
        "tags": v.tags,
        "creation_timestamp": v.creation_timestamp,
        "last_updated_timestamp": v.last_updated_timestamp,
    })
}

fn to_text(model: &LiveModel, v: &LiveVersion) -> String {
    let mut out = format!(
        "{} version {}\n  stage:   {}\n  source:  {}\n",
        model.name, v.version, v.stage, v.source
    );
    if !v.run_id.is_empty() {
        out.push_str(&format!("  run_id:  {}\n", v.run_id));
    }
    let aliases = model.aliases_of(v.version);
    if !aliases.is_empty() {
        out.push_str(&format!("  aliases: {}\n", aliases.join(", ")));
    }
    if !v.description.is_empty() {
        out.push_str(&format!("  description: {}\n", v.description));
    }
    for (k, val) in &v.tags {
        out.push_str(&format!("  tag {k} = {val}\n"));
    }
    out
}
