//! Live state -> manifests (`modelsync export`), pure.
//!
//! The manifests declare the registry as it is: loading them with
//! [`crate::manifest::load`] and planning against the same live state gives
//! no changes (except where the registry holds two versions in one stage,
//! which a manifest cannot express: the highest is declared and a comment
//! names the others).

use crate::state::{LiveExperiment, LiveModel, LivePrompt, LiveState, Stage};

use super::schema::{
    ApiVersion, ExperimentDocument, ExperimentKind, ExperimentSpec, Metadata, ModelDocument,
    ModelKind, ModelSpec, PromptDocument, PromptKind, PromptSpec, PromptVersionSpec, TagValue,
    VersionRef, VersionSpec,
};
use super::yaml::{self, Located, LocatedMap};

/// The schema reference written on the first line.
pub const SCHEMA_REF: &str = "../schemas/modelsync.schema.json";

/// Renders manifests (multi-document YAML, one `RegisteredModel` per model,
/// one `Experiment` per experiment, then one `Prompt` per prompt) that
/// declare `live` as it is, so
/// that planning them against `live` gives an empty plan.
pub fn render(live: &LiveState) -> String {
    let mut docs: Vec<String> = Vec::new();
    for model in live.models.values() {
        docs.push(render_model(model));
    }
    for experiment in live.experiments.values() {
        docs.push(render_experiment(experiment));
    }
    for (name, prompt) in live.prompts.iter().filter(|(_, p)| !p.not_a_prompt) {
        docs.push(render_prompt(name, prompt));
    }
    let mut out = format!("# yaml-language-server: $schema={SCHEMA_REF}\n");
    out.push_str(&docs.join("---\n"));
    out
}

/// Tags modelsync or MLflow set themselves are not declared.
fn user_tags<'a>(tags: impl Iterator<Item = (&'a String, &'a String)>) -> LocatedMap<TagValue> {
    let mut out = LocatedMap::default();
    for (k, v) in tags {
        if !k.starts_with(crate::state::tags::PREFIX) && !k.starts_with("mlflow.") {
            out.push(k.clone(), TagValue(v.clone()));
        }
    }
    out
}

fn handle(version: u64) -> String {
    format!("v{version}")
}

fn render_model(model: &LiveModel) -> String {
    let mut spec = ModelSpec {
        description: (!model.description.is_empty())
            .then(|| Located::new(model.description.clone())),
        tags: user_tags(model.tags.iter()),
        ..ModelSpec::default()
    };
    let mut comments = Vec::new();
    let mut declared = std::collections::BTreeSet::new();
    for stage in [Stage::Production, Stage::Staging] {
        let holders: Vec<u64> = model.holders(stage).map(|v| v.version).collect();
        let Some(&highest) = holders.last() else {
            continue;
        };
        if holders.len() > 1 {
            let others: Vec<String> = holders[..holders.len() - 1]
                .iter()
                .map(u64::to_string)
                .collect();
            comments.push(format!(
                "# {stage} is held by several versions; declared the highest ({highest}), \
                 also held by: {}\n",
                others.join(", ")
            ));
        }
        declared.insert(highest);
        spec.stages.push(
            stage.as_str(),
            Located::new(VersionRef::Handle(handle(highest))),
        );
    }
    for (alias, version) in &model.aliases {
        declared.insert(*version);
        spec.aliases.push(
            alias.clone(),
            Located::new(VersionRef::Handle(handle(*version))),
        );
    }
    for number in &declared {
        let live = model.versions.get(number);
        let version = i64::try_from(*number).expect("version numbers fit in i64");
        spec.versions.push(
            handle(*number),
            VersionSpec {
                version: Some(Located::new(version)),
                description: live
                    .filter(|v| !v.description.is_empty())
                    .map(|v| Located::new(v.description.clone())),
                tags: live.map(|v| user_tags(v.tags.iter())).unwrap_or_default(),
                ..VersionSpec::default()
            },
        );
    }
    let doc = ModelDocument {
        api_version: ApiVersion::V1,
        kind: ModelKind::RegisteredModel,
        metadata: Metadata {
            name: Located::new(model.name.clone()),
        },
        spec,
    };
    let mut out = comments.concat();
    out.push_str(&yaml::to_yaml(&doc));
    out
}

/// A prompt's templates, each once (under the newest version holding it,
/// the one the planner would use), inline, and its aliases.
fn render_prompt(name: &str, prompt: &LivePrompt) -> String {
    let mut spec = PromptSpec::default();
    let mut seen = std::collections::BTreeSet::new();
    let mut kept = Vec::new();
    for (n, text) in prompt.versions.iter().rev() {
        if seen.insert(text.as_str()) {
            kept.push((*n, text));
        }
    }
    kept.reverse();
    for (n, text) in kept {
        spec.versions.push(
            handle(n),
            PromptVersionSpec {
                template: Some(Located::new(text.clone())),
                ..PromptVersionSpec::default()
            },
        );
    }
    for (alias, n) in &prompt.aliases {
        let held = prompt
            .versions
            .get(n)
            .and_then(|t| prompt.holder(t))
            .unwrap_or(*n);
        spec.aliases.push(alias.clone(), Located::new(handle(held)));
    }
    let doc = PromptDocument {
        api_version: ApiVersion::V1,
        kind: PromptKind::Prompt,
        metadata: Metadata {
            name: Located::new(name.to_string()),
        },
        spec,
    };
    yaml::to_yaml(&doc)
}

fn render_experiment(experiment: &LiveExperiment) -> String {
    let doc = ExperimentDocument {
        api_version: ApiVersion::V1,
        kind: ExperimentKind::Experiment,
        metadata: Metadata {
            name: Located::new(experiment.name.clone()),
        },
        spec: ExperimentSpec {
            artifact_location: (!experiment.artifact_location.is_empty())
                .then(|| Located::new(experiment.artifact_location.clone())),
            tags: user_tags(experiment.tags.iter()),
        },
    };
    yaml::to_yaml(&doc)
}

#[cfg(test)]
mod tests;
