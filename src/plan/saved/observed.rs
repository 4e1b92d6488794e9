//! What a saved plan observed: for every declared model and experiment, the
//! registry's state when the plan was made, reduced to what a later
//! snapshot can be compared against (no timestamps); for every source
//! version a `from:` names, what was read in its registry (which version
//! the reference resolved to, its run, logged model and the digest of its
//! files), so that a copy applies the bytes that were reviewed; and the
//! digests of the bytes the plan pins or a `digest: unchanged` gate
//! checked.
//!
//! Tags modelsync writes only as bookkeeping, which the planner never reads,
//! are left out: `modelsync.revision`, `modelsync.previous.*` and the
//! lease's `modelsync.lease.*`; and signed approvals
//! (`modelsync.approval.*`), which `approvals` gates read again when the
//! plan is applied (an approval arriving after review is what lets a
//! gated move go). Everything else is kept, modelsync's own
//! `modelsync.source`, `modelsync.promoted-at.*` (soak gates read them) and
//! `modelsync.managed` (prune reads it) included.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::manifest::DesiredState;
use crate::state::{
    CopySource, LiveExperiment, LiveModel, LivePrompt, LiveState, LiveVersion, Stage, TreeDigest,
    VersionStatus, tags,
};

/// Every declared model and experiment, as the registry held it; `None`
/// when it did not exist.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    pub models: BTreeMap<String, Option<ObservedModel>>,
    pub experiments: BTreeMap<String, Option<ObservedExperiment>>,
    /// Every declared prompt: its templates by version, and its aliases.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prompts: BTreeMap<String, Option<LivePrompt>>,
    /// Every source version `from:` names, by `FromRef::key`
    /// (`dev:nba@champion`); `None` when it could not be read (the plan
    /// said why). Format 4 on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub copies: BTreeMap<String, Option<ObservedCopy>>,
    /// The permissions the policies cover (`kind: AccessPolicy`), when
    /// they were read. Format 5 on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<super::access::ObservedAccess>,
    /// The digests of the bytes the plan pins or a `digest: unchanged`
    /// gate checked, by model and version (`None`: they could not be
    /// read). Format 5 on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version_trees: BTreeMap<String, BTreeMap<u64, Option<String>>>,
    /// The digests of the bytes of the sources the plan registers, by
    /// declared source. Format 5 on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_trees: BTreeMap<String, Option<String>>,
}

/// A copy's source version as read in its registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedCopy {
    /// The registry's name in `modelsync.toml`.
    pub registry: String,
    pub model: String,
    /// The version the reference resolved to (for an alias or a stage:
    /// the one it named then).
    pub version: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    /// The logged model (MLflow 3), when the version has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// The digest of its files (`state::digest`).
    pub digest: String,
}

/// A registered model as observed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedModel {
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Alias -> version number.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aliases: BTreeMap<String, u64>,
    /// Every version, by number.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<u64, ObservedVersion>,
}

/// A model version as observed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedVersion {
    pub stage: Stage,
    #[serde(default)]
    pub status: VersionStatus,
    #[serde(default)]
    pub source: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// An experiment as observed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedExperiment {
    #[serde(default)]
    pub artifact_location: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// True for bookkeeping tags that cannot change a plan, and approvals,
/// which gates evaluate again when the plan is applied.
fn ignored(key: &str) -> bool {
    key == tags::REVISION
        || key.starts_with(tags::PREVIOUS_PREFIX)
        || key.starts_with(tags::LEASE_PREFIX)
        || key.starts_with(tags::APPROVAL_PREFIX)
}

fn kept<'a>(t: impl Iterator<Item = (&'a String, &'a String)>) -> BTreeMap<String, String> {
    t.filter(|(k, _)| !ignored(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl From<&LiveModel> for ObservedModel {
    fn from(m: &LiveModel) -> ObservedModel {
        ObservedModel {
            description: m.description.clone(),
            tags: kept(m.tags.iter()),
            aliases: m.aliases.iter().map(|(a, v)| (a.clone(), *v)).collect(),
            versions: m
                .versions
                .iter()
                .map(|(n, v)| (*n, ObservedVersion::from(v)))
                .collect(),
        }
    }
}

impl From<&LiveVersion> for ObservedVersion {
    fn from(v: &LiveVersion) -> ObservedVersion {
        ObservedVersion {
            stage: v.stage,
            status: v.status,
            source: v.source.clone(),
            run_id: v.run_id.clone(),
            model_id: v.model_id.clone(),
            description: v.description.clone(),
            tags: kept(v.tags.iter()),
        }
    }
}

impl From<&LiveExperiment> for ObservedExperiment {
    fn from(e: &LiveExperiment) -> ObservedExperiment {
        ObservedExperiment {
            artifact_location: e.artifact_location.clone(),
            tags: kept(e.tags.iter()),
        }
    }
}

impl From<&CopySource> for ObservedCopy {
    fn from(c: &CopySource) -> ObservedCopy {
        ObservedCopy {
            registry: c.registry.clone(),
            model: c.model.clone(),
            version: c.version,
            run_id: c.run_id.clone(),
            model_id: c.model_id.clone(),
            digest: c.digest.clone(),
        }
    }
}

impl Observed {
    /// What `live` holds for everything `desired` declares.
    pub fn capture(desired: &DesiredState, live: &LiveState) -> Observed {
        Observed {
            models: desired
                .models
                .keys()
                .map(|n| (n.clone(), live.models.get(n).map(ObservedModel::from)))
                .collect(),
            experiments: desired
                .experiments
                .keys()
                .map(|n| (n.clone(), live.experiments.get(n).map(Into::into)))
                .collect(),
            prompts: desired
                .prompts
                .keys()
                .map(|n| (n.clone(), live.prompts.get(n).cloned()))
                .collect(),
            copies: desired
                .copy_refs()
                .into_keys()
                .map(|k| {
                    let read = live.copy_sources.get(&k).and_then(|r| r.as_ref().ok());
                    (k, read.map(ObservedCopy::from))
                })
                .collect(),
            access: super::access::ObservedAccess::capture(desired, live),
            version_trees: live
                .version_trees
                .iter()
                .map(|(m, vs)| {
                    let digests = vs.iter().map(|(n, t)| (*n, digest_of(t))).collect();
                    (m.clone(), digests)
                })
                .collect(),
            source_trees: live
                .source_trees
                .iter()
                .map(|(s, t)| (s.clone(), digest_of(t)))
                .collect(),
        }
    }

    /// Every observed value `live` no longer shows, one line each
    /// (`model m: alias champion was version 2, now version 3`).
    pub fn differences(&self, live: &LiveState) -> Vec<String> {
        let mut lines = Vec::new();
        for (name, seen) in &self.models {
            let now = live.models.get(name).map(ObservedModel::from);
            let found = match (seen, &now) {
                (Some(s), Some(n)) => model_differences(s, n),
                (s, n) => existence(s.is_some(), n.is_some()),
            };
            lines.extend(found.into_iter().map(|l| format!("model {name}: {l}")));
        }
        for (name, seen) in &self.experiments {
            let now = live.experiments.get(name).map(ObservedExperiment::from);
            let found = match (seen, &now) {
                (Some(s), Some(n)) => experiment_differences(s, n),
                (s, n) => existence(s.is_some(), n.is_some()),
            };
            lines.extend(found.into_iter().map(|l| format!("experiment {name}: {l}")));
        }
        for (name, seen) in &self.prompts {
            let found = match (seen, live.prompts.get(name)) {
                (Some(s), Some(n)) => prompt_differences(s, n),
                (s, n) => existence(s.is_some(), n.is_some()),
            };
            lines.extend(found.into_iter().map(|l| format!("prompt {name}: {l}")));
        }
        lines.extend(self.copy_differences(live));
        if let Some(access) = &self.access {
            lines.extend(access.differences(live.access.as_ref()));
        }
        lines.extend(self.tree_differences(live));
        lines
    }

    /// The bytes that changed since the plan read them (the digest it pins
    /// or a gate checked would no longer be theirs).
    fn tree_differences(&self, live: &LiveState) -> Vec<String> {
        let mut lines = Vec::new();
        for (model, versions) in &self.version_trees {
            for (n, seen) in versions {
                let now = live.version_tree(model, *n).map(digest_of);
                if let Some(line) = bytes_changed(seen, now.as_ref()) {
                    lines.push(format!("model {model}: version {n}'s {line}"));
                }
            }
        }
        for (source, seen) in &self.source_trees {
            let now = live.source_trees.get(source).map(digest_of);
            if let Some(line) = bytes_changed(seen, now.as_ref()) {
                lines.push(format!("source {source}: its {line}"));
            }
        }
        lines
    }

    /// The copy sources that changed in their registries: re-resolved to
    /// another version, deleted or unreadable, another run or logged
    /// model, other files; and any `live` read that this plan did not
    /// record (it cannot have been reviewed).
    fn copy_differences(&self, live: &LiveState) -> Vec<String> {
        let mut lines = Vec::new();
        for (key, seen) in &self.copies {
            let found = match (seen, live.copy_sources.get(key)) {
                (Some(s), Some(Ok(now))) => source_differences(s, &ObservedCopy::from(now)),
                (Some(s), Some(Err(why))) => {
                    vec![format!("was version {}, now: {why}", s.version)]
                }
                (Some(s), None) => vec![format!("was version {}, now not read", s.version)],
                (None, Some(Ok(now))) => vec![format!(
                    "could not be read when the plan was made, now version {}",
                    now.version
                )],
                (None, _) => Vec::new(),
            };
            lines.extend(found.into_iter().map(|l| format!("copy source {key}: {l}")));
        }
        let unrecorded = live
            .copy_sources
            .keys()
            .filter(|k| !self.copies.contains_key(*k));
        lines.extend(unrecorded.map(|k| {
            format!("copy source {k}: not recorded in the saved plan, so it was not reviewed")
        }));
        lines
    }
}

/// The digest of a tree read, `None` when it could not be read.
fn digest_of(t: &Result<TreeDigest, String>) -> Option<String> {
    t.as_ref().ok().map(|t| t.digest.clone())
}

/// How the bytes read for the plan (`seen`) and now (`now`: `None` when
/// not read again) differ, if they do.
fn bytes_changed(seen: &Option<String>, now: Option<&Option<String>>) -> Option<String> {
    let show = |d: &Option<String>| d.clone().unwrap_or_else(|| "unreadable".to_string());
    match now {
        None => Some(format!("bytes ({}) were not read again", show(seen))),
        Some(now) if now != seen => Some(format!(
            "bytes changed since the plan ({} then, {} now)",
            show(seen),
            show(now)
        )),
        Some(_) => None,
    }
}

/// One line per way the source version `now` differs from the one `seen`;
/// another version says it all.
fn source_differences(seen: &ObservedCopy, now: &ObservedCopy) -> Vec<String> {
    if seen.version != now.version {
        return vec![format!(
            "was version {}, now version {}",
            seen.version, now.version
        )];
    }
    let n = seen.version;
    let mut lines = Vec::new();
    if seen.run_id != now.run_id {
        lines.push(format!(
            "version {n}'s run was {}, now {}",
            q(&seen.run_id),
            q(&now.run_id)
        ));
    }
    if seen.model_id != now.model_id {
        let show = |m: &Option<String>| m.as_deref().map_or_else(|| "none".to_string(), q);
        lines.push(format!(
            "version {n}'s logged model was {}, now {}",
            show(&seen.model_id),
            show(&now.model_id)
        ));
    }
    if seen.digest != now.digest {
        lines.push(format!(
            "version {n}'s files changed (listing {}, now {})",
            seen.digest, now.digest
        ));
    }
    lines
}

fn prompt_differences(seen: &LivePrompt, now: &LivePrompt) -> Vec<String> {
    let mut lines = Vec::new();
    if seen.not_a_prompt != now.not_a_prompt {
        lines.push("is now held by a registered model, not a prompt".to_string());
    }
    lines.extend(alias_differences(&seen.aliases, &now.aliases));
    for n in keys(&seen.versions, &now.versions) {
        match (seen.versions.get(n), now.versions.get(n)) {
            (Some(_), None) => lines.push(format!("version {n} was deleted")),
            (None, Some(_)) => lines.push(format!("version {n} was registered")),
            (Some(a), Some(b)) if a != b => lines.push(format!("version {n}'s template changed")),
            _ => {}
        }
    }
    lines
}

/// A line when something appeared or disappeared.
fn existence(seen: bool, now: bool) -> Vec<String> {
    match (seen, now) {
        (false, true) => vec!["did not exist, now exists".to_string()],
        (true, false) => vec!["existed, now does not (deleted)".to_string()],
        _ => Vec::new(),
    }
}

fn model_differences(seen: &ObservedModel, now: &ObservedModel) -> Vec<String> {
    let mut lines = Vec::new();
    if seen.description != now.description {
        lines.push(format!(
            "description was {:?}, now {:?}",
            seen.description, now.description
        ));
    }
    lines.extend(tag_differences("", &seen.tags, &now.tags));
    lines.extend(alias_differences(&seen.aliases, &now.aliases));
    for n in keys(&seen.versions, &now.versions) {
        match (seen.versions.get(n), now.versions.get(n)) {
            (Some(_), None) => lines.push(format!("version {n} was deleted")),
            (None, Some(v)) => {
                lines.push(format!("version {n} was added ({}, {})", v.stage, v.source))
            }
            (Some(s), Some(v)) => lines.extend(version_differences(*n, s, v)),
            (None, None) => {}
        }
    }
    lines
}

fn version_differences(n: u64, seen: &ObservedVersion, now: &ObservedVersion) -> Vec<String> {
    let mut lines = Vec::new();
    let mut field = |what: &str, was: String, is: String| {
        if was != is {
            lines.push(format!("version {n} {what} was {was}, now {is}"));
        }
    };
    field("stage", seen.stage.to_string(), now.stage.to_string());
    field(
        "status",
        format!("{:?}", seen.status),
        format!("{:?}", now.status),
    );
    field("source", q(&seen.source), q(&now.source));
    field("run id", q(&seen.run_id), q(&now.run_id));
    field("model id", q(&seen.model_id), q(&now.model_id));
    field("description", q(&seen.description), q(&now.description));
    lines.extend(tag_differences(
        &format!("version {n} "),
        &seen.tags,
        &now.tags,
    ));
    lines
}

fn experiment_differences(seen: &ObservedExperiment, now: &ObservedExperiment) -> Vec<String> {
    let mut lines = Vec::new();
    if seen.artifact_location != now.artifact_location {
        lines.push(format!(
            "artifact location was {:?}, now {:?}",
            seen.artifact_location, now.artifact_location
        ));
    }
    lines.extend(tag_differences("", &seen.tags, &now.tags));
    lines
}

fn tag_differences(
    prefix: &str,
    seen: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) -> Vec<String> {
    let show = |v: Option<&String>| v.map_or_else(|| "unset".to_string(), |v| q(v));
    keys(seen, now)
        .into_iter()
        .filter(|k| seen.get(*k) != now.get(*k))
        .map(|k| {
            format!(
                "{prefix}tag {k} was {}, now {}",
                show(seen.get(k)),
                show(now.get(k))
            )
        })
        .collect()
}

/// The keys of both maps, sorted, once each.
fn keys<'a, K: Ord, V>(a: &'a BTreeMap<K, V>, b: &'a BTreeMap<K, V>) -> BTreeSet<&'a K> {
    a.keys().chain(b.keys()).collect()
}

/// `alias A was version 2, now version 3` for each alias that moved.
fn alias_differences(seen: &BTreeMap<String, u64>, now: &BTreeMap<String, u64>) -> Vec<String> {
    keys(seen, now)
        .into_iter()
        .filter(|a| seen.get(*a) != now.get(*a))
        .map(|a| {
            format!(
                "alias {a} was {}, now {}",
                alias_target(seen.get(a)),
                alias_target(now.get(a))
            )
        })
        .collect()
}

fn alias_target(v: Option<&u64>) -> String {
    v.map_or_else(|| "unset".to_string(), |n| format!("version {n}"))
}

fn q(s: &str) -> String {
    format!("{s:?}")
}
