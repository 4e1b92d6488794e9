//! Saved plans: the file `plan --out` writes and `apply --plan` reads.
//!
//! A saved plan holds the plan as reviewed, the gates to re-check just before
//! each move, and what the registry held for every declared model and
//! experiment when the plan was made ([`Observed`]), so that `apply --plan`
//! can refuse a registry that moved underneath (see [`super::stale`]).
//!
//! The format is JSON, versioned by [`PLAN_FORMAT_VERSION`]: a reader refuses
//! a newer version (written by a newer modelsync), an older one below
//! [`OLDEST_READABLE_VERSION`] (it records too little to check), and one
//! older than [`COPIES_RECORDED_SINCE`] whose manifests declare a `from:`
//! (it did not record the copy sources, or recorded a digest of their
//! listing only, so the copies cannot be checked).
//! `docs/pull-requests.md` ("Saved plan format") documents the fields.
//! Pure: strings in and out; the CLI reads and writes the file.

mod access;
mod observed;
mod regate;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use self::access::ObservedAccess;
pub use self::observed::{
    Observed, ObservedCopy, ObservedExperiment, ObservedModel, ObservedVersion,
};
pub use self::regate::regated;
use super::Plan;
use crate::manifest::paths::{Snapshot, Tree};
use crate::manifest::targets::Targets;
use crate::manifest::validate::{ApproversSetting, LoadOptions};
use crate::manifest::{DesiredState, Diagnostic, GateSpecs, SourceFile};
use crate::state::LiveState;

/// The saved-plan format this modelsync writes. Version 2 added
/// [`SavedPlan::observed`] and spells gate targets as strings; version 3
/// added prompts (the plan's `prompts`, `observed.prompts` and
/// [`SavedPlan::templates`]), which an older modelsync would skip; version
/// 4 added the copy sources `from:` names (`observed.copies`), which an
/// older modelsync would not check, and `approvals` gates
/// ([`SavedPlan::approvers`], [`SavedPlan::approvals`], a gate check's
/// `approved_by`); version 5 records the copy sources' digests over the
/// bytes (`state::digest`, every file's sha256, where 4 had a digest of
/// paths and sizes), the `digest: unchanged` gate, the digests of the
/// versions the plan pins or checks (`observed.version_trees`,
/// `observed.source_trees`), permissions (the plan's `access` and
/// `observed.access`), which an older modelsync would skip, and targeted
/// plans ([`SavedPlan::targets`]), which it would apply as full ones.
/// Version 5 also added promotion windows ([`SavedPlan::windows`]), holds
/// (a model plan's `held`, `release_hold` actions) and gate checks a
/// `--break-glass` overrode: an older modelsync would apply through them.
pub const PLAN_FORMAT_VERSION: u32 = 5;

/// The first format that records the copy sources (`observed.copies`)
/// with a digest over their bytes: an older plan is still read when its
/// manifests declare no `from:`.
pub const COPIES_RECORDED_SINCE: u32 = 5;

/// The oldest format `apply --plan` accepts: version 1 did not record what
/// the registry held for models without actions, so it cannot be checked.
pub const OLDEST_READABLE_VERSION: u32 = 2;

/// A plan saved by `plan --out`, applied later by `apply --plan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    /// [`PLAN_FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// The registry URI the plan was made against (no credentials).
    pub registry: String,
    /// The manifests' digest (`sha256:…`).
    pub manifests_digest: String,
    /// The git revision of the manifests, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// RFC 3339 time the plan was made.
    pub created_at: String,
    pub prune: bool,
    pub plan: Plan,
    /// The gates of the declared models, re-checked just before each move.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub gates: GateSpecs,
    /// What the registry held for every declared model and experiment.
    pub observed: Observed,
    /// The manifest files the plan was made from: `apply --plan` plans
    /// from them again to verify the registry after applying.
    pub manifests: Vec<SavedManifest>,
    /// The protected stages and aliases they were validated with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protect: Vec<String>,
    /// The other registries (`[registries.NAME]`) `from:` may name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub registries: BTreeMap<String, String>,
    /// The prompts' `templateFile`s: path -> text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub templates: BTreeMap<String, String>,
    /// The manifests roots the plan was made with
    /// (`crate::manifest::paths`); a plan without them: each manifest's
    /// own folder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roots: Vec<String>,
    /// `approvers` of `modelsync.toml`, as written and where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers: Option<ApproversSetting>,
    /// The approvers file and the approval files the plan read: path ->
    /// text (approvals stored as tags are read again when applied).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub approvals: BTreeMap<String, String>,
    /// `[[windows]]` of `modelsync.toml`, as written: evaluated again when
    /// the plan is applied. Format 5 on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<crate::manifest::windows::WindowSetting>,
    /// A targeted plan's models and experiments (`--model`,
    /// `--changed-since`; format 5 on): it observed, planned and applies
    /// only those, and is applied only with targeting that selects exactly
    /// them ([`SavedPlan::applies_as`]). Absent: a full plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Targets>,
    /// The outputs of `modelsync.toml` (`[outputs]`) the plan was made
    /// with: `apply --plan` writes them after applying. (An older
    /// modelsync would not write them.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<crate::outputs::Settings>,
}

/// One manifest file inside a saved plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedManifest {
    pub path: String,
    pub text: String,
}

/// Where and how a plan was made: the parts of a [`SavedPlan`] that are not
/// derived from the plan, the manifests or the registry's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The registry URI (no credentials).
    pub registry: String,
    /// The git revision of the manifests, when known.
    pub revision: Option<String>,
    /// RFC 3339 time the plan was made.
    pub created_at: String,
    /// Whether the plan was made with `--prune`.
    pub prune: bool,
    /// The manifest files, and the protected targets they were validated
    /// with.
    pub files: Vec<SourceFile>,
    pub protect: Vec<String>,
    /// The manifests roots they were found under.
    pub roots: Vec<String>,
    /// `approvers` of `modelsync.toml`.
    pub approvers: Option<ApproversSetting>,
    /// `[[windows]]` of `modelsync.toml`.
    pub windows: Vec<crate::manifest::windows::WindowSetting>,
}

/// The models and experiments a saved plan covers: what `apply --plan`
/// must read to check it (a snapshot request, by name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    pub models: BTreeSet<String>,
    pub experiments: BTreeSet<String>,
}

/// Why a plan is not saved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaveError {
    /// Some models could not be planned; applying the rest is not what
    /// was reviewed.
    #[error("the plan has errors (model {}); a plan with errors is not saved", .0.join(", "))]
    PlanHasErrors(Vec<String>),
    #[error("the plan could not be serialized: {0}")]
    Serialize(String),
}

/// Why a text is not a saved plan this modelsync can apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not a saved plan (invalid JSON: {0})")]
    NotJson(String),
    #[error("not a saved plan (no format_version)")]
    NoVersion,
    #[error(
        "plan format {found} is newer than this modelsync understands ({PLAN_FORMAT_VERSION}); upgrade modelsync"
    )]
    Newer { found: u64 },
    #[error(
        "plan format {found} was written by an older modelsync and records too little to check against the registry (this modelsync reads {OLDEST_READABLE_VERSION} to {PLAN_FORMAT_VERSION}); run `modelsync plan --out` again"
    )]
    Older { found: u64 },
    #[error(
        "plan format {found} was written by an older modelsync that did not record the bytes of the source versions its `from:` copies (format {COPIES_RECORDED_SINCE} does), so the copies cannot be checked against their registries; run `modelsync plan --out` again"
    )]
    CopiesNotRecorded { found: u64 },
    #[error("not a valid saved plan: {0}")]
    Invalid(String),
}

impl SavedPlan {
    /// The saved form of `plan`, made from `desired` against `live` (the
    /// state the plan was computed from). A plan with errors is refused.
    pub fn new(
        plan: Plan,
        desired: &DesiredState,
        live: &LiveState,
        made: Provenance,
    ) -> Result<SavedPlan, SaveError> {
        let models = plan.models.iter().filter(|m| !m.errors.is_empty());
        let prompts = plan.prompts.iter().filter(|p| !p.errors.is_empty());
        let access = plan.access.iter().filter(|a| !a.errors.is_empty());
        let failed: Vec<String> = models
            .map(|m| m.model.clone())
            .chain(prompts.map(|p| format!("prompt {}", p.prompt)))
            .chain(access.map(|a| format!("access {}", a.model)))
            .collect();
        if !failed.is_empty() {
            return Err(SaveError::PlanHasErrors(failed));
        }
        Ok(SavedPlan {
            format_version: PLAN_FORMAT_VERSION,
            registry: made.registry,
            manifests_digest: desired.digest.clone(),
            revision: made.revision,
            created_at: made.created_at,
            prune: made.prune,
            plan,
            gates: desired.gate_specs(),
            observed: Observed::capture(desired, live),
            manifests: made
                .files
                .iter()
                .map(|f| SavedManifest {
                    path: f.path.clone(),
                    text: String::from_utf8_lossy(&f.contents).into_owned(),
                })
                .collect(),
            protect: made.protect,
            registries: desired.registries.clone(),
            templates: desired.template_files(),
            roots: made.roots,
            approvers: made.approvers,
            approvals: desired.approvals.texts(),
            windows: made.windows,
            targets: desired.targets.clone(),
            outputs: Vec::new(),
        })
    }

    /// The manifests as files, with the options they were validated with.
    pub fn inputs(&self) -> (Vec<SourceFile>, LoadOptions) {
        let files = self
            .manifests
            .iter()
            .map(|m| SourceFile {
                path: m.path.clone(),
                contents: m.text.clone().into_bytes(),
            })
            .collect();
        let options = LoadOptions {
            protect: self.protect.clone(),
            registries: self.registries.clone(),
            roots: self.roots.clone(),
            tree: Tree::Snapshot(self.snapshot()),
            approvers: self.approvers.clone(),
            windows: self.windows.clone(),
        };
        (files, options)
    }

    /// The desired state the plan was made from, validated again (every
    /// `templateFile` inside its root), its templates, approvers file and
    /// approval files read from the plan; a targeted plan's narrowed to
    /// its targets.
    pub fn desired(&self) -> Result<DesiredState, Vec<Diagnostic>> {
        let all = self.desired_all()?;
        Ok(match &self.targets {
            Some(t) => all.narrowed(t),
            None => all,
        })
    }

    /// [`SavedPlan::desired`] before narrowing: everything its manifests
    /// declare (what targeting flags given to `apply --plan` select from).
    pub fn desired_all(&self) -> Result<DesiredState, Vec<Diagnostic>> {
        use crate::manifest::validate;
        let (files, options) = self.inputs();
        let mut desired = validate::load_with(&files, &options)?;
        let snapshot = self.snapshot();
        let read = |root: &str, path: &str| snapshot.read(root, path);
        validate::resolve_templates(&mut desired, &read)?;
        let roots = validate::approval_roots(&files, &options);
        validate::resolve_approvals(&mut desired, &roots, &read, &|root, dir| {
            snapshot.list(root, dir)
        })?;
        Ok(desired)
    }

    /// True when the plan copies a version or its manifests declare a
    /// `from:` (manifests that do not validate declare none here; applying
    /// them reports why).
    fn declares_copies(&self) -> bool {
        let mut actions = self.plan.models.iter().flat_map(|m| &m.actions);
        actions.any(|a| matches!(a, super::Action::CopyVersion { .. }))
            || self.desired().is_ok_and(|d| !d.copy_refs().is_empty())
    }

    /// The templates and approval files the plan holds, as the only files
    /// its manifests can read.
    fn snapshot(&self) -> Snapshot {
        let mut files = self.templates.clone();
        files.extend(self.approvals.clone());
        Snapshot {
            name: "the saved plan".to_string(),
            files,
            links: BTreeMap::new(),
        }
    }

    /// The models and experiments to read to check this plan: every one
    /// it observed or acts on.
    pub fn coverage(&self) -> Coverage {
        let models = self.observed.models.keys().cloned();
        let planned = self.plan.models.iter().map(|m| m.model.clone());
        let experiments = self.observed.experiments.keys().cloned();
        let planned_exps = self.plan.experiments.iter().map(|e| e.experiment.clone());
        Coverage {
            models: models.chain(planned).collect(),
            experiments: experiments.chain(planned_exps).collect(),
        }
    }
}

/// Why a saved plan is not applied with the targeting it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetsMismatch {
    #[error(
        "the saved plan is targeted (it covers only {}); applied as a full plan it would leave every other model unchecked: apply it with --model or --changed-since selecting exactly those",
        .0.names().join(", ")
    )]
    Targeted(Targets),
    #[error(
        "the saved plan is a full plan; --model and --changed-since select part of it ({}): apply it without them, or make a targeted plan with them",
        .0.names().join(", ")
    )]
    Full(Targets),
    #[error(
        "--model/--changed-since select {} here, but the saved plan covers {}: apply it with targeting that selects exactly what it was made for",
        list(.asked),
        list(.planned)
    )]
    Differs { planned: Targets, asked: Targets },
}

fn list(t: &Targets) -> String {
    match t.names() {
        names if names.is_empty() => "nothing".to_string(),
        names => names.join(", "),
    }
}

impl SavedPlan {
    /// The rule for applying a saved plan with targeting flags: a full
    /// plan is applied without any (`asked` is `None`), a targeted one
    /// only with targeting that selects exactly its targets (resolved
    /// over the plan's own manifests).
    pub fn applies_as(&self, asked: Option<&Targets>) -> Result<(), TargetsMismatch> {
        match (&self.targets, asked) {
            (None, None) => Ok(()),
            (Some(t), None) => Err(TargetsMismatch::Targeted(t.clone())),
            (None, Some(a)) => Err(TargetsMismatch::Full(a.clone())),
            (Some(t), Some(a)) if t == a => Ok(()),
            (Some(t), Some(a)) => Err(TargetsMismatch::Differs {
                planned: t.clone(),
                asked: a.clone(),
            }),
        }
    }
}

/// The saved plan as the file's text (pretty JSON, one trailing newline).
pub fn to_json(saved: &SavedPlan) -> Result<String, SaveError> {
    serde_json::to_string_pretty(saved)
        .map(|body| body + "\n")
        .map_err(|e| SaveError::Serialize(e.to_string()))
}

/// Reads a saved plan, refusing versions this modelsync cannot apply.
pub fn from_json(text: &str) -> Result<SavedPlan, FormatError> {
    let raw: serde_json::Value =
        serde_json::from_str(text).map_err(|e| FormatError::NotJson(e.to_string()))?;
    let found = raw
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or(FormatError::NoVersion)?;
    if found > u64::from(PLAN_FORMAT_VERSION) {
        return Err(FormatError::Newer { found });
    }
    if found < u64::from(OLDEST_READABLE_VERSION) {
        return Err(FormatError::Older { found });
    }
    let saved: SavedPlan =
        serde_json::from_value(raw).map_err(|e| FormatError::Invalid(e.to_string()))?;
    if found < u64::from(COPIES_RECORDED_SINCE) && saved.declares_copies() {
        return Err(FormatError::CopiesNotRecorded { found });
    }
    Ok(saved)
}
