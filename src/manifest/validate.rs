//! Semantic checks and resolution of parsed documents into a DesiredState.
//!
//! Every file is parsed (`yaml`), every document checked, and every problem
//! collected; the result is a [`DesiredState`] only when there is none.
//! Files are processed sorted by path, so "declared twice" diagnostics point
//! at the later place and name the earlier one.
//!
//! - `rules.rs`: modelsync's name rules (handles); MLflow's naming rules
//!   and limits are [`crate::naming`], shared with the embedded registry.
//! - `gates.rs`: the checks of `spec.gates`.
//! - `versions.rs`: the checks of `spec.versions`.
//! - `approvals.rs`: the approvers file and the `approvals/` files.
//! - `access.rs`: the checks of `kind: AccessPolicy` documents.

mod access;
mod approvals;
mod gates;
mod prompts;
pub(crate) mod rules;
mod verify;
mod versions;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sha2::{Digest, Sha256};

use super::schema::{
    API_VERSION, Document, ExperimentSpec, KIND_ACCESS_POLICY, KIND_EXPERIMENT, KIND_MODEL,
    KIND_PROMPT, ModelSpec, Spec, VersionRef,
};
use super::yaml::{self, Located, LocatedMap};
use super::{
    DesiredExperiment, DesiredModel, DesiredState, DesiredVersion, Diagnostic, GateTarget, Locator,
    Origin, SourceFile,
};
use crate::naming::{
    alias_problem, description_problem, experiment_name_problem, experiment_tag_value_problem,
    model_name_problem, tag_key_problem, tag_value_problem,
};
use crate::state::Stage;
use gates::STAGES;
use versions::check_versions;

pub use approvals::{approval_roots, resolve_approvals};
pub use prompts::resolve_templates;

/// Options for [`load_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Protected targets: stage names (any case) and aliases. A model that
    /// declares one of them must also declare gates for it.
    pub protect: Vec<String>,
    /// Registries `from:` may name (`[registries.NAME]`): name -> URI.
    pub registries: BTreeMap<String, String>,
    /// The manifests roots (the folders the manifests were found under;
    /// see [`super::paths`]): what the paths a manifest names must stay
    /// inside. Empty: each manifest's own folder.
    pub roots: Vec<String>,
    /// Where those paths are read: the host's folders, or a snapshot (a
    /// git commit's tree, a saved plan's templates).
    pub tree: super::paths::Tree,
    /// `approvers = "PATH"` from `modelsync.toml`: the approvers file of
    /// `approvals` gates.
    pub approvers: Option<ApproversSetting>,
    /// `[[windows]]` from `modelsync.toml`, as written.
    pub windows: Vec<super::windows::WindowSetting>,
}

/// Where `modelsync.toml` names the approvers file, and the path as
/// written (relative to the manifests root that holds that file).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApproversSetting {
    /// File, line and column of the value in `modelsync.toml`.
    pub origin: Origin,
    pub path: String,
}

/// Parses and validates every file; returns the desired state, or every
/// diagnostic found (sorted by file, line, column).
pub fn load(files: &[SourceFile]) -> Result<DesiredState, Vec<Diagnostic>> {
    load_with(files, &LoadOptions::default())
}

/// [`load`] with options (protected targets).
pub fn load_with(
    files: &[SourceFile],
    options: &LoadOptions,
) -> Result<DesiredState, Vec<Diagnostic>> {
    load_parsed_by(files, options, &|run| {
        run.iter().map(|f| parse(f)).collect()
    })
}

/// One file's documents as parsed, before any check: the part of loading
/// that needs no other file (and most of its time).
pub struct Parsed(Vec<Result<Document, yaml::YamlError>>);

/// Parses one manifest file (pure; no other file is looked at).
pub fn parse(file: &SourceFile) -> Parsed {
    Parsed(yaml::parse_documents::<Document>(&file.contents))
}

/// How many files are parsed before their documents are checked: bounds
/// the parsed documents held at once.
pub const PARSE_RUN: usize = 512;

/// Parses a run of files: `out[i]` is [`parse`]`(run[i])`. The shell may
/// parse them side by side; the core parses them one by one.
pub type ParseRun<'a> = dyn Fn(&[&SourceFile]) -> Vec<Parsed> + 'a;

/// [`load_with`], the files parsed by `parse_run` ([`PARSE_RUN`] at a
/// time, in path order), each run checked before the next is parsed. The
/// result and its diagnostics are those of [`load_with`].
pub fn load_parsed_by(
    files: &[SourceFile],
    options: &LoadOptions,
    parse_run: &ParseRun<'_>,
) -> Result<DesiredState, Vec<Diagnostic>> {
    let mut sorted: Vec<&SourceFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));

    let mut diagnostics = Vec::new();
    let mut state = DesiredState {
        digest: digest(&sorted),
        registries: options.registries.clone(),
        ..DesiredState::default()
    };
    for run in sorted.chunks(PARSE_RUN) {
        let parsed = parse_run(run);
        assert_eq!(parsed.len(), run.len(), "one parse per file");
        for (file, Parsed(docs)) in run.iter().zip(parsed) {
            check_file(file, docs, options, &mut diagnostics, &mut state);
        }
    }
    state.approvals.approvers = approvals::check_approvers(options, &mut diagnostics);
    match super::windows::validate(&options.windows) {
        Ok(windows) => state.windows = windows,
        Err(problems) => diagnostics.extend(problems),
    }
    if diagnostics.is_empty() {
        Ok(state)
    } else {
        diagnostics.sort();
        diagnostics.dedup();
        Err(diagnostics)
    }
}

/// Checks one file's parsed documents into `state`.
fn check_file(
    file: &SourceFile,
    docs: Vec<Result<Document, yaml::YamlError>>,
    options: &LoadOptions,
    diagnostics: &mut Vec<Diagnostic>,
    state: &mut DesiredState,
) {
    let mut ctx = Ctx {
        file: file.path.as_str().into(),
        diagnostics,
        options,
    };
    for doc in docs {
        match doc {
            Ok(doc) => check_document(&mut ctx, state, doc),
            Err(e) => ctx.diagnostics.push(Diagnostic {
                origin: Origin {
                    file: ctx.file.clone(),
                    line: e.line,
                    column: e.column,
                },
                message: e.message,
            }),
        }
    }
}

/// `sha256:<hex>` over the files sorted by path: path, NUL, contents, NUL.
fn digest(sorted: &[&SourceFile]) -> String {
    let mut hasher = Sha256::new();
    for file in sorted {
        hasher.update(file.path.as_bytes());
        hasher.update([0u8]);
        hasher.update(&file.contents);
        hasher.update([0u8]);
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The file being checked and where problems go.
pub(crate) struct Ctx<'a> {
    file: std::sync::Arc<str>,
    diagnostics: &'a mut Vec<Diagnostic>,
    options: &'a LoadOptions,
}

impl Ctx<'_> {
    fn origin<T>(&self, at: &Located<T>) -> Origin {
        Origin {
            file: self.file.clone(),
            line: at.line.max(1),
            column: at.column.max(1),
        }
    }

    fn error<T>(&mut self, at: &Located<T>, message: String) {
        let origin = self.origin(at);
        self.diagnostics.push(Diagnostic { origin, message });
    }
}

fn check_document(ctx: &mut Ctx<'_>, state: &mut DesiredState, doc: Document) {
    if doc.api_version.value != API_VERSION {
        ctx.error(
            &doc.api_version,
            format!(
                "unsupported apiVersion \"{}\": expected {API_VERSION}",
                doc.api_version.value
            ),
        );
    }
    let name = &doc.metadata.value.name;
    match doc.spec {
        Spec::Model(spec) => {
            if !name_ok(ctx, name) {
                return;
            }
            if let Some(first) = state.models.get(&name.value) {
                let message = format!(
                    "model \"{}\" is already declared at {}",
                    name.value, first.origin
                );
                ctx.error(name, message);
                return;
            }
            if let Some(first) = state.prompts.get(&name.value) {
                let message = format!(
                    "\"{}\" is already declared as a prompt at {}",
                    name.value, first.origin
                );
                ctx.error(name, message);
                return;
            }
            let model = check_model(ctx, name, &spec);
            state.models.insert(name.value.clone(), model);
        }
        Spec::Experiment(spec) => {
            if name.value.trim().is_empty() {
                ctx.error(
                    name,
                    "empty name: metadata.name must not be empty".to_string(),
                );
                return;
            }
            if let Some(problem) = experiment_name_problem(&name.value) {
                ctx.error(name, problem);
                return;
            }
            if let Some(first) = state.experiments.get(&name.value) {
                let message = format!(
                    "experiment \"{}\" is already declared at {}",
                    name.value, first.origin
                );
                ctx.error(name, message);
                return;
            }
            let experiment = check_experiment(ctx, name, &spec);
            state.experiments.insert(name.value.clone(), experiment);
        }
        Spec::Prompt(spec) => prompts::check_prompt(ctx, state, name, &spec),
        Spec::AccessPolicy(spec) => access::check_policy(ctx, state, name, &spec),
        Spec::Unsupported => ctx.error(
            &doc.kind,
            format!(
                "unsupported kind \"{}\": expected {KIND_MODEL}, {KIND_EXPERIMENT}, {KIND_PROMPT} or {KIND_ACCESS_POLICY}",
                doc.kind.value
            ),
        ),
    }
}

fn check_experiment(
    ctx: &mut Ctx<'_>,
    name: &Located<String>,
    spec: &ExperimentSpec,
) -> DesiredExperiment {
    if let Some(loc) = &spec.artifact_location
        && loc.value.trim().is_empty()
    {
        ctx.error(loc, "artifactLocation must not be empty".to_string());
    }
    DesiredExperiment {
        name: name.value.clone(),
        origin: ctx.origin(name),
        artifact_location: spec.artifact_location.as_ref().map(|l| l.value.clone()),
        tags: check_tags(ctx, &spec.tags, experiment_tag_value_problem),
    }
}

/// Checks tag keys, and values with `value_problem` (the limits differ
/// between registry and experiment tags); problems point at the key.
fn check_tags(
    ctx: &mut Ctx<'_>,
    tags: &LocatedMap<super::schema::TagValue>,
    value_problem: fn(&str) -> Option<String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, value) in tags.iter() {
        if let Some(problem) = tag_key_problem(&key.value) {
            ctx.error(key, problem);
        } else if let Some(problem) = value_problem(&value.0) {
            ctx.error(key, format!("tag \"{}\": {problem}", key.value));
        }
        out.insert(key.value.clone(), value.0.clone());
    }
    out
}

fn check_description(ctx: &mut Ctx<'_>, description: &Option<Located<String>>) {
    if let Some(d) = description
        && let Some(problem) = description_problem(&d.value)
    {
        ctx.error(d, problem);
    }
}

/// What a stage or alias points at, for "one version in two stages".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Identity {
    Number(u64),
    Handle(String),
}

impl Identity {
    fn describe(&self) -> String {
        match self {
            Identity::Number(n) => format!("version {n}"),
            Identity::Handle(h) => format!("version \"{h}\""),
        }
    }
}

/// Per-model resolution state.
struct ModelCheck {
    versions: BTreeMap<String, DesiredVersion>,
    /// Every handle written under `versions`, also invalid ones (so that a
    /// broken entry is not reported again as "not defined").
    declared: BTreeSet<String>,
}

/// Checks one model: tags, versions, stages, aliases, gates, and that
/// protected targets have gates.
fn check_model(ctx: &mut Ctx<'_>, name: &Located<String>, spec: &ModelSpec) -> DesiredModel {
    let tags = check_tags(ctx, &spec.tags, tag_value_problem);
    check_description(ctx, &spec.description);
    let mut mc = ModelCheck {
        versions: BTreeMap::new(),
        declared: BTreeSet::new(),
    };
    check_versions(ctx, spec, &mut mc);
    let (stages, stage_keys) = check_stages(ctx, spec, &mut mc);
    let aliases = check_aliases(ctx, spec, &mut mc);
    let declared = gates::Declared {
        stages: stage_keys.keys().copied().collect(),
        aliases: aliases.keys().map(String::as_str).collect(),
        keys: (spec.stages.iter().chain(spec.aliases.iter()))
            .map(|(k, _)| k.value.as_str())
            .collect(),
    };
    let gates = gates::check_gates(ctx, &spec.gates, &declared);
    let verify = verify::check_verify(ctx, &spec.verify, &declared);
    check_protected(ctx, spec, &stage_keys, &gates);
    DesiredModel {
        name: name.value.clone(),
        origin: ctx.origin(name),
        description: spec.description.as_ref().map(|d| d.value.clone()),
        tags,
        versions: mc.versions,
        stages: stages.into_iter().collect(),
        aliases: aliases.into_iter().collect(),
        gates,
        verify,
    }
}

/// `spec.stages`: known stage names, each once, each version in at most
/// one stage. Returns the stages and where each was declared.
fn check_stages(
    ctx: &mut Ctx<'_>,
    spec: &ModelSpec,
    mc: &mut ModelCheck,
) -> (BTreeMap<Stage, String>, BTreeMap<Stage, Origin>) {
    let mut stages = BTreeMap::new();
    let mut stage_keys: BTreeMap<Stage, Origin> = BTreeMap::new();
    let mut in_stage: HashMap<Identity, (Stage, Origin)> = HashMap::new();
    for (key, target) in spec.stages.iter() {
        let Some(stage) = Stage::parse(&key.value) else {
            ctx.error(
                key,
                format!("unknown stage \"{}\": expected one of {STAGES}", key.value),
            );
            continue;
        };
        if let Some(first) = stage_keys.get(&stage) {
            let message = format!("stage {stage} is already declared at {first}");
            ctx.error(key, message);
            continue;
        }
        stage_keys.insert(stage, ctx.origin(key));
        let Some((handle, identity)) = resolve(ctx, mc, target) else {
            continue;
        };
        if let Some((other, at)) = in_stage.get(&identity) {
            let message = format!(
                "{} is already declared in stage {other} at {at}: a version holds one stage",
                identity.describe()
            );
            ctx.error(target, message);
            continue;
        }
        in_stage.insert(identity, (stage, ctx.origin(target)));
        stages.insert(stage, handle);
    }
    (stages, stage_keys)
}

/// `spec.aliases`: valid alias names pointing at declared versions.
fn check_aliases(
    ctx: &mut Ctx<'_>,
    spec: &ModelSpec,
    mc: &mut ModelCheck,
) -> BTreeMap<String, String> {
    let mut aliases = BTreeMap::new();
    for (key, target) in spec.aliases.iter() {
        if let Some(problem) = alias_problem(&key.value) {
            ctx.error(key, problem);
            continue;
        }
        if let Some((handle, _)) = resolve(ctx, mc, target) {
            aliases.insert(key.value.clone(), handle);
        }
    }
    aliases
}

/// Protected stages and aliases (`--protect`, `modelsync.toml`) that the
/// model declares need gates.
fn check_protected(
    ctx: &mut Ctx<'_>,
    spec: &ModelSpec,
    stage_keys: &BTreeMap<Stage, Origin>,
    gates: &BTreeMap<GateTarget, Vec<super::Gate>>,
) {
    for (stage, origin) in stage_keys {
        let protected = ctx
            .options
            .protect
            .iter()
            .any(|p| Stage::parse(p) == Some(*stage));
        let gated = gates
            .get(&GateTarget::Stage(*stage))
            .is_some_and(|g| !g.is_empty());
        if protected && !gated {
            ctx.diagnostics.push(Diagnostic {
                origin: origin.clone(),
                message: format!(
                    "stage {stage} is protected: declare gates for it under spec.gates.{stage}"
                ),
            });
        }
    }
    for (key, _) in spec.aliases.iter() {
        let protected = ctx.options.protect.contains(&key.value);
        let gated = gates
            .get(&GateTarget::Alias(key.value.clone()))
            .is_some_and(|g| !g.is_empty());
        if protected && !gated && alias_problem(&key.value).is_none() {
            ctx.error(
                key,
                format!(
                    "alias \"{0}\" is protected: declare gates for it under spec.gates.{0}",
                    key.value
                ),
            );
        }
    }
}

fn version_number(ctx: &mut Ctx<'_>, number: &Located<i64>) -> Option<u64> {
    match u64::try_from(number.value) {
        Ok(n) if n >= 1 => Some(n),
        _ => {
            ctx.error(
                number,
                format!(
                    "invalid version number {}: version numbers start at 1",
                    number.value
                ),
            );
            None
        }
    }
}

/// Resolves a stage or alias target to a handle (adding bare numbers to
/// the versions), or reports why it cannot.
fn resolve(
    ctx: &mut Ctx<'_>,
    mc: &mut ModelCheck,
    target: &Located<VersionRef>,
) -> Option<(String, Identity)> {
    match &target.value {
        VersionRef::Number(raw) => {
            let n = version_number(
                ctx,
                &Located {
                    value: *raw,
                    line: target.line,
                    column: target.column,
                },
            )?;
            let handle = n.to_string();
            let origin = ctx.origin(target);
            mc.versions
                .entry(handle.clone())
                .or_insert_with(|| DesiredVersion {
                    origin,
                    locator: Locator::Number(n),
                    description: None,
                    tags: BTreeMap::new(),
                });
            Some((handle, Identity::Number(n)))
        }
        VersionRef::Handle(h) => match mc.versions.get(h) {
            Some(v) => {
                let identity = match v.locator {
                    Locator::Number(n) => Identity::Number(n),
                    Locator::Source { .. } | Locator::From(_) => Identity::Handle(h.clone()),
                };
                Some((h.clone(), identity))
            }
            None if mc.declared.contains(h) => None,
            None => {
                let known: Vec<&str> = mc.declared.iter().map(String::as_str).collect();
                let hint = if known.is_empty() {
                    "no versions are defined under spec.versions".to_string()
                } else {
                    format!("defined handles: {}", known.join(", "))
                };
                ctx.error(
                    target,
                    format!("handle \"{h}\" is not defined under spec.versions ({hint})"),
                );
                None
            }
        },
    }
}

/// Reports an empty or invalid `metadata.name` (a registered model's or a
/// prompt's: MLflow's naming rules are the same); true when it is fine.
pub(super) fn name_ok(ctx: &mut Ctx<'_>, name: &Located<String>) -> bool {
    if name.value.trim().is_empty() {
        ctx.error(
            name,
            "empty name: metadata.name must not be empty".to_string(),
        );
        return false;
    }
    if let Some(problem) = model_name_problem(&name.value) {
        ctx.error(name, problem);
        return false;
    }
    true
}

#[cfg(test)]
mod tests;
