//! Targeted passes (`plan`/`apply` with `--model` or `--changed-since`):
//! which declared models, prompts and experiments a pass covers, and the
//! desired state narrowed to them.
//!
//! Validation always runs over every manifest; only then does [`select`]
//! pick the targets, and [`DesiredState::narrowed`] keeps only those, so
//! that reads, plan, prune, staleness and saved plans cover nothing else.
//!
//! - `--model PATTERN`: a name or a glob (`*` any characters, `?` one)
//!   over the declared registered models and prompts (one namespace in
//!   MLflow); a pattern that matches none is an error.
//! - `--changed-since REV`: what changed between a git revision and the
//!   working tree ([`Changes`], read by `source::git::changes`): a
//!   manifest document whose content differs (compared as parsed data, so
//!   comments and formatting do not count; added, removed or moved between
//!   files) selects its model, prompt or experiment; a changed
//!   `templateFile` its prompts; a changed approval file the model it
//!   approves; a changed approvers file every model with an `approvals`
//!   gate; a changed `modelsync.toml` everything. A deleted document
//!   names a model the manifests no longer declare, which every pass
//!   leaves alone (prune only acts on declared models): it is reported in
//!   [`Selection::gone`], not targeted.
//! - Both: the models that match a pattern *and* changed.
//! - Named by events (the daemon: an MLflow webhook delivery names its
//!   model): each that the manifests declare is targeted besides the
//!   above; one they do not declare is left alone, as every pass does.
//!
//! Pure: the changed files come in as data.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::access::glob_match;
use super::paths::normalize;
use super::{DesiredState, Gate, SourceFile, Template, approval, yaml};

/// What a targeted pass asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// `--model`: names or globs over the declared models and prompts.
    pub patterns: Vec<String>,
    /// `--changed-since`: what changed since a git revision.
    pub changed: Option<Changes>,
    /// Models (or prompts) named by events, exactly: targeted too when
    /// declared, ignored when not.
    pub named: BTreeSet<String>,
}

/// The files under the manifests that differ between a git revision and
/// the working tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// The revision as the user named it (`origin/main`).
    pub since: String,
    /// Changed files, as the manifests name them (`m/a.yaml`), with their
    /// contents at the revision.
    pub files: Vec<ChangedFile>,
    /// Changed `modelsync.toml` files beside the manifests.
    pub config: Vec<String>,
}

/// One changed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFile {
    pub path: String,
    /// Its contents at the revision; `None` when it did not exist there.
    pub before: Option<Vec<u8>>,
}

/// The models (registered models and prompts, by name) and experiments a
/// targeted pass covers: what a targeted saved plan records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    pub models: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub experiments: BTreeSet<String>,
}

/// The targets, and the names whose documents were deleted since the
/// revision (no longer declared, so left alone).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub targets: Targets,
    pub gone: BTreeSet<String>,
}

impl Targets {
    /// Every name, experiments marked as such (`a, b, experiment e`).
    pub fn names(&self) -> Vec<String> {
        let exps = self.experiments.iter().map(|e| format!("experiment {e}"));
        self.models.iter().cloned().chain(exps).collect()
    }
}

impl DesiredState {
    /// Only what `targets` names; everything else the manifests declare
    /// is left out (and so neither read nor planned).
    pub fn narrowed(self, targets: &Targets) -> DesiredState {
        self.narrowed_copy(targets)
    }

    /// [`narrowed`](Self::narrowed), copying only what `targets` names out
    /// of a state that is kept whole (the daemon's, between the passes of
    /// one revision).
    pub fn narrowed_copy(&self, targets: &Targets) -> DesiredState {
        // Every field named, so that a new one is narrowed or kept on purpose.
        let DesiredState {
            models,
            experiments,
            prompts,
            policies,
            registries,
            approvals,
            windows,
            digest,
            targets: _,
            untargeted_templates: _,
        } = self;
        let mut copy = DesiredState {
            models: picked(models, &targets.models),
            experiments: picked(experiments, &targets.experiments),
            prompts: picked(prompts, &targets.models),
            policies: policies.clone(),
            registries: registries.clone(),
            approvals: approvals.clone(),
            windows: windows.clone(),
            digest: digest.clone(),
            targets: Some(targets.clone()),
            untargeted_templates: BTreeMap::new(),
        };
        let kept = copy.template_files();
        copy.untargeted_templates = self
            .template_files()
            .into_iter()
            .filter(|(path, _)| !kept.contains_key(path))
            .collect();
        copy
    }
}

/// The entries of `map` whose names are in `names`, copied.
fn picked<T: Clone>(map: &BTreeMap<String, T>, names: &BTreeSet<String>) -> BTreeMap<String, T> {
    names
        .iter()
        .filter_map(|n| map.get_key_value(n))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}

/// Resolves `selector` over `desired` (validated, not narrowed), whose
/// manifest files are `files`. An error names the patterns that match
/// nothing.
pub fn select(
    selector: &Selector,
    files: &[SourceFile],
    desired: &DesiredState,
) -> Result<Selection, String> {
    let named = match selector.patterns.as_slice() {
        [] => None,
        patterns => Some(matching(patterns, desired)?),
    };
    let changed = selector
        .changed
        .as_ref()
        .map(|c| changed_since(c, files, desired));
    let mut out = match (named, changed) {
        (Some(models), None) => Selection {
            targets: Targets {
                models,
                experiments: BTreeSet::new(),
            },
            gone: BTreeSet::new(),
        },
        (Some(models), Some(changed)) => Selection {
            targets: Targets {
                models: models
                    .intersection(&changed.targets.models)
                    .cloned()
                    .collect(),
                experiments: BTreeSet::new(),
            },
            gone: changed.gone,
        },
        (None, Some(changed)) => changed,
        (None, None) if !selector.named.is_empty() => Selection::default(),
        (None, None) => Selection {
            targets: everything(desired),
            gone: BTreeSet::new(),
        },
    };
    let declared =
        |n: &&String| desired.models.contains_key(*n) || desired.prompts.contains_key(*n);
    let events = selector.named.iter().filter(declared).cloned();
    out.targets.models.extend(events);
    Ok(out)
}

/// The declared models and prompts the patterns match; an error naming
/// each pattern that matches none.
fn matching(patterns: &[String], desired: &DesiredState) -> Result<BTreeSet<String>, String> {
    let declared: Vec<&String> = desired
        .models
        .keys()
        .chain(desired.prompts.keys())
        .collect();
    let mut found = BTreeSet::new();
    let mut unmatched = Vec::new();
    for p in patterns {
        let hits: Vec<&&String> = declared.iter().filter(|n| glob_match(p, n)).collect();
        if hits.is_empty() {
            unmatched.push(format!("{p:?}"));
        }
        found.extend(hits.into_iter().map(|n| (*n).clone()));
    }
    if unmatched.is_empty() {
        return Ok(found);
    }
    Err(format!(
        "--model {} matches no declared model or prompt ({} declared{})",
        unmatched.join(", "),
        declared.len(),
        examples(&declared)
    ))
}

/// `: a, b, c, …` (the first few names), or nothing when there are none.
fn examples(names: &[&String]) -> String {
    const SHOWN: usize = 5;
    if names.is_empty() {
        return String::new();
    }
    let mut sorted: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    sorted.sort_unstable();
    let more = if sorted.len() > SHOWN { ", …" } else { "" };
    sorted.truncate(SHOWN);
    format!(": {}{more}", sorted.join(", "))
}

/// Every declared model, prompt and experiment.
fn everything(desired: &DesiredState) -> Targets {
    Targets {
        models: desired
            .models
            .keys()
            .chain(desired.prompts.keys())
            .cloned()
            .collect(),
        experiments: desired.experiments.keys().cloned().collect(),
    }
}

/// A document's kind and name.
type Key = (String, String);

/// What the changes select.
fn changed_since(changes: &Changes, files: &[SourceFile], desired: &DesiredState) -> Selection {
    if !changes.config.is_empty() {
        return Selection {
            targets: everything(desired),
            gone: BTreeSet::new(),
        };
    }
    let now: BTreeMap<String, &[u8]> = files
        .iter()
        .map(|f| (normalize(&f.path), f.contents.as_slice()))
        .collect();
    let mut names = BTreeSet::new();
    let (mut before, mut after) = (BTreeMap::new(), BTreeMap::new());
    for file in &changes.files {
        let path = normalize(&file.path);
        let current = now.get(&path).copied();
        if is_manifest(&path) {
            let was = file.before.as_deref().map(documents);
            let is = current.and_then(documents).unwrap_or_default();
            match was {
                // Unreadable at the revision: every document it holds now.
                Some(None) => names.extend(is.keys().cloned()),
                Some(Some(docs)) => merge(&mut before, docs),
                None => {}
            }
            merge(&mut after, is);
        }
        names.extend(by_file(&path, file, desired));
    }
    let keys: BTreeSet<&Key> = before.keys().chain(after.keys()).collect();
    names.extend(
        keys.into_iter()
            .filter(|k| before.get(*k) != after.get(*k))
            .cloned(),
    );
    sort(names, desired)
}

/// The models the changed non-manifest file `path` concerns: the prompts
/// whose `templateFile` it is, the model an approval file approves (then
/// or now), every model with an `approvals` gate when it is the approvers
/// file.
fn by_file(path: &str, file: &ChangedFile, desired: &DesiredState) -> BTreeSet<Key> {
    let prompt = |n: &String| (super::schema::KIND_PROMPT.to_string(), n.clone());
    let model = |n: &str| (super::schema::KIND_MODEL.to_string(), n.to_string());
    let mut out = BTreeSet::new();
    for (name, p) in &desired.prompts {
        let reads = p
            .versions
            .values()
            .any(|v| matches!(&v.template, Template::File { path: t, .. } if normalize(t) == path));
        if reads {
            out.insert(prompt(name));
        }
    }
    let approved = |text: &str| {
        approval::Record::parse(text)
            .ok()
            .map(|r| r.statement.model)
    };
    let then = file
        .before
        .as_deref()
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(approved);
    let now = desired
        .approvals
        .files
        .iter()
        .find(|(p, _)| normalize(p) == path)
        .map(|(_, f)| f.record.statement.model.clone());
    out.extend(then.into_iter().chain(now).map(|m| model(&m)));
    let approvers = desired.approvals.approvers.as_ref();
    if approvers.is_some_and(|a| normalize(&a.path) == path) {
        let gated = desired.models.iter().filter(|(_, m)| {
            m.gates
                .values()
                .flatten()
                .any(|g| matches!(g, Gate::Approvals { .. }))
        });
        out.extend(gated.map(|(n, _)| model(n)));
    }
    out
}

/// Changed keys as targets: declared names are targeted, the others were
/// deleted.
fn sort(keys: BTreeSet<Key>, desired: &DesiredState) -> Selection {
    let mut out = Selection::default();
    for (kind, name) in keys {
        let (declared, set) = if kind == super::schema::KIND_EXPERIMENT {
            (
                desired.experiments.contains_key(&name),
                &mut out.targets.experiments,
            )
        } else {
            let declared =
                desired.models.contains_key(&name) || desired.prompts.contains_key(&name);
            (declared, &mut out.targets.models)
        };
        if declared {
            set.insert(name);
        } else {
            out.gone.insert(name);
        }
    }
    out
}

/// The first document per key wins (a name declared twice is invalid now;
/// at the revision it is compared as first declared).
fn merge(into: &mut BTreeMap<Key, serde_json::Value>, docs: BTreeMap<Key, serde_json::Value>) {
    for (k, v) in docs {
        into.entry(k).or_insert(v);
    }
}

/// A manifest's documents by kind and name, as parsed data; `None` when
/// the text does not parse as YAML. Documents of other kinds, and without
/// a name, are left out.
fn documents(text: &[u8]) -> Option<BTreeMap<Key, serde_json::Value>> {
    let kinds = [
        super::schema::KIND_MODEL,
        super::schema::KIND_PROMPT,
        super::schema::KIND_EXPERIMENT,
    ];
    let mut out = BTreeMap::new();
    for doc in yaml::parse_documents::<serde_json::Value>(text) {
        let doc = doc.ok()?;
        let kind = doc.get("kind").and_then(|k| k.as_str());
        let name = doc.pointer("/metadata/name").and_then(|n| n.as_str());
        if let (Some(kind), Some(name)) = (kind, name)
            && kinds.contains(&kind)
        {
            let key = (kind.to_string(), name.to_string());
            out.entry(key).or_insert(doc);
        }
    }
    Some(out)
}

fn is_manifest(path: &str) -> bool {
    path.ends_with(".yaml") || path.ends_with(".yml")
}

#[cfg(test)]
mod tests;
