//! The planner: `plan(&DesiredState, &LiveState, &PlanContext) -> Plan`.
//!
//! Pure, synchronous and deterministic: same inputs, same plan, same bytes.
//! No I/O, no async, no clock (the time comes in through [`PlanContext`]).
//!
//! - `describe.rs`: the one description of each action, for people.
//! - `diff.rs`: computes the actions per model and experiment.
//! - `gates.rs`: evaluates gates against the live state (runs, tags).
//! - `approvals.rs`: which signed approvals an `approvals` gate counts,
//!   and why the others do not.
//! - `saved.rs`: the saved-plan file format (`plan --out`, `apply --plan`).
//! - `prompts.rs`: the plan of each prompt (`kind: Prompt`).
//! - `access.rs`: the permissions `kind: AccessPolicy` declares, per model.
//! - `hidden.rs`: hidden and bidirectional characters in templates.
//! - `windows.rs`: promotion windows and the freeze, checked like gates.
//! - `capabilities.rs`: what the manifests need that the registry lacks.
//! - `outputs.rs`: the version a marker's reference stands for, as read
//!   or after the plan's moves (issue 20's outputs).
//! - `stale.rs`: checks a saved plan's observed values against a new snapshot.
//! - `render/`: text, JSON and Markdown renderings.

pub mod access;
pub mod approvals;
pub mod capabilities;
pub mod describe;
pub mod diff;
pub mod gates;
pub mod hidden;
pub mod outputs;
pub mod prompts;
pub mod render;
pub mod saved;
pub mod stale;
pub mod verify;
pub mod windows;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::state::Stage;

pub use diff::{
    TreesNeeded, logged_models_needed, plan, runs_needed, sources_to_resolve, trees_needed,
    versions_pending,
};
pub use saved::{PLAN_FORMAT_VERSION, SavedManifest, SavedPlan};

/// Inputs to the planner that are not registry state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanContext {
    /// The current time, ms since the epoch (soak gates, approvals'
    /// expiry).
    pub now_ms: i64,
    /// Remove owned aliases and stage holders no longer declared.
    pub prune: bool,
    /// The registry as modelsync prints it (`AnyRegistry::uri`, with
    /// `#workspace=NAME`): what a signed approval must name.
    pub registry: String,
    /// `--break-glass --reason TEXT`: moves go through windows and a
    /// freeze, each such check shown as overridden and the move stamped.
    pub break_glass: Option<BreakGlass>,
}

/// Who broke the glass and why (`--break-glass --reason TEXT`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakGlass {
    pub by: String,
    pub reason: String,
}

/// A full plan: what apply would do, and what it observed to decide it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    /// Models with at least one action or problem, sorted by name.
    pub models: Vec<ModelPlan>,
    /// Experiments with at least one action, sorted by name.
    pub experiments: Vec<ExperimentPlan>,
    /// Prompts with at least one action or problem, sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<prompts::PromptPlan>,
    /// A targeted plan's models and experiments (`--model`,
    /// `--changed-since`); nothing else was read or planned. Absent: a
    /// plan of everything the manifests declare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<crate::manifest::targets::Targets>,
    /// Registered models whose permissions change (`kind: AccessPolicy`),
    /// or with a warning or a problem, sorted by name; applied after the
    /// models and prompts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access: Vec<access::AccessPlan>,
    /// The marked fields of the outputs (`[outputs]` of `modelsync.toml`)
    /// this plan would change (`plan` only: filled in by the pass, after
    /// planning; not counted as actions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<crate::outputs::Report>,
}

/// The actions for one registered model, in execution order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPlan {
    pub model: String,
    pub actions: Vec<Action>,
    /// Problems found while planning this model (e.g. a declared version
    /// number that does not exist). A model with errors has no actions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Moves the manifests ask for that a hold keeps from happening (not
    /// actions: a held difference is no change).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<Held>,
}

/// A target whose declared holder differs from the version a hold keeps
/// there: modelsync leaves it alone until the manifests declare the held
/// version or a person releases the hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    /// The stage's name or the alias.
    pub target: String,
    /// What the manifests declare there (`None`: a prune would remove it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared: Option<VersionRef>,
    /// The version there now (observed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<u64>,
    pub hold: crate::state::hold::Hold,
}

/// The actions for one experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentPlan {
    pub experiment: String,
    pub actions: Vec<ExperimentAction>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Problems that keep the experiment from being planned (e.g. it exists
    /// only deleted). An experiment with errors has no actions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// A version an action applies to: an existing number, or a version that
/// an earlier `register_version` in the same model plan creates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionRef {
    Existing(u64),
    New(String),
}

impl fmt::Display for VersionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionRef::Existing(n) => write!(f, "version {n}"),
            VersionRef::New(h) => write!(f, "new version ({h})"),
        }
    }
}

/// One change to a registered model. Every variant records the live value
/// it observed (`before`), so a saved plan can be checked for staleness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    CreateModel {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: BTreeMap<String, String>,
    },
    UpdateModelDescription {
        before: String,
        after: String,
    },
    SetModelTag {
        key: String,
        before: Option<String>,
        after: String,
    },
    RegisterVersion {
        handle: String,
        /// The source as declared.
        declared_source: String,
        /// The source sent to the registry (differs for resolved `runs:/`).
        source: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: BTreeMap<String, String>,
    },
    /// Copy a version of another registry's model into this registry (its
    /// files, a run with its metrics and params, a logged model on MLflow
    /// 3) and register it from this registry's own store.
    CopyVersion {
        handle: String,
        /// The source version, as read in its registry.
        from: Box<crate::state::CopySource>,
        /// The experiment here that holds the copied run.
        experiment: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: BTreeMap<String, String>,
    },
    UpdateVersionDescription {
        version: u64,
        before: String,
        after: String,
    },
    SetVersionTag {
        version: u64,
        key: String,
        before: Option<String>,
        after: String,
    },
    /// Move `version` into stage `to` (never archives others by itself).
    TransitionStage {
        version: VersionRef,
        /// The version's stage now (`None` for a new version).
        from: Stage,
        to: Stage,
        /// Versions holding `to` now (observed).
        holders: Vec<u64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        gates: Vec<GateCheck>,
    },
    SetAlias {
        alias: String,
        version: VersionRef,
        before: Option<u64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        gates: Vec<GateCheck>,
    },
    /// Move a replaced holder to `Archived`, after its replacement is in place.
    ArchiveVersion {
        version: u64,
        from: Stage,
        /// The move this archival depends on (make-before-break); `None`
        /// when pruning a stage no longer declared.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaced_by: Option<VersionRef>,
    },
    DeleteAlias {
        alias: String,
        before: u64,
    },
    /// Remove the hold on `target`: the manifests declare the version it
    /// holds (git caught up). After the target's move, if it has one.
    ReleaseHold {
        target: String,
        /// The hold as observed.
        hold: crate::state::hold::Hold,
    },
}

impl Action {
    /// The gates attached to a move; empty for other actions.
    pub fn gates(&self) -> &[GateCheck] {
        match self {
            Action::TransitionStage { gates, .. } | Action::SetAlias { gates, .. } => gates,
            _ => &[],
        }
    }

    /// True when a gate blocks this action.
    pub fn is_blocked(&self) -> bool {
        self.gates().iter().any(|g| g.status == GateStatus::Blocked)
    }

    /// True when the move goes through a window or a freeze by
    /// `--break-glass` (its audit stamp says so).
    pub fn breaks_glass(&self) -> bool {
        self.gates()
            .iter()
            .any(|g| g.status == GateStatus::Overridden)
    }

    /// A stable short name of the kind of action (for metrics and logs).
    pub fn kind(&self) -> &'static str {
        match self {
            Action::CreateModel { .. } => "create_model",
            Action::UpdateModelDescription { .. } => "update_model_description",
            Action::SetModelTag { .. } => "set_model_tag",
            Action::RegisterVersion { .. } => "register_version",
            Action::CopyVersion { .. } => "copy_version",
            Action::UpdateVersionDescription { .. } => "update_version_description",
            Action::SetVersionTag { .. } => "set_version_tag",
            Action::TransitionStage { .. } => "transition_stage",
            Action::SetAlias { .. } => "set_alias",
            Action::ArchiveVersion { .. } => "archive_version",
            Action::DeleteAlias { .. } => "delete_alias",
            Action::ReleaseHold { .. } => "release_hold",
        }
    }
}

/// One change to an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ExperimentAction {
    CreateExperiment {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        artifact_location: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: BTreeMap<String, String>,
    },
    SetExperimentTag {
        key: String,
        before: Option<String>,
        after: String,
    },
}

/// The outcome of one gate for one move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateCheck {
    /// The gate as written, e.g. `metric accuracy >= 0.9`.
    pub gate: String,
    pub status: GateStatus,
    /// What was observed, e.g. `accuracy 0.85 < 0.90`.
    pub detail: String,
    /// An `approvals` gate: the principals whose signed approvals counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approved_by: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    Passed,
    Blocked,
    /// A window or a freeze that would block, passed by `--break-glass`.
    Overridden,
}

impl Plan {
    /// An empty plan.
    pub fn empty() -> Plan {
        Plan {
            format_version: PLAN_FORMAT_VERSION,
            models: Vec::new(),
            experiments: Vec::new(),
            prompts: Vec::new(),
            targets: None,
            access: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// True when there is nothing to do (errors do not count as changes).
    pub fn is_empty(&self) -> bool {
        self.action_count() == 0
    }

    /// Number of actions, experiments' and prompts' included.
    pub fn action_count(&self) -> usize {
        self.models.iter().map(|m| m.actions.len()).sum::<usize>()
            + self
                .experiments
                .iter()
                .map(|e| e.actions.len())
                .sum::<usize>()
            + self.prompts.iter().map(|p| p.actions.len()).sum::<usize>()
            + self.access.iter().map(|a| a.actions.len()).sum::<usize>()
    }

    /// True when any model, experiment or prompt could not be planned.
    pub fn has_errors(&self) -> bool {
        self.models.iter().any(|m| !m.errors.is_empty())
            || self.experiments.iter().any(|e| !e.errors.is_empty())
            || self.prompts.iter().any(|p| !p.errors.is_empty())
            || self.access.iter().any(|a| !a.errors.is_empty())
    }

    /// Why models, experiments, prompts or permissions could not be
    /// planned, one line each (`model m: …`, `experiment e: …`, `prompt p:
    /// …`, `access m: …`).
    pub fn errors(&self) -> Vec<String> {
        let models = self.models.iter().map(|m| ("model", &m.model, &m.errors));
        let experiments = self
            .experiments
            .iter()
            .map(|e| ("experiment", &e.experiment, &e.errors));
        let prompts = self
            .prompts
            .iter()
            .map(|p| ("prompt", &p.prompt, &p.errors));
        let access = self.access.iter().map(|a| ("access", &a.model, &a.errors));
        models
            .chain(experiments)
            .chain(prompts)
            .chain(access)
            .flat_map(|(kind, name, errors)| {
                errors.iter().map(move |e| format!("{kind} {name}: {e}"))
            })
            .collect()
    }

    /// Every held difference, as (model, held).
    pub fn held(&self) -> impl Iterator<Item = (&str, &Held)> {
        self.models
            .iter()
            .flat_map(|m| m.held.iter().map(move |h| (m.model.as_str(), h)))
    }

    /// What a protected model's protection lacks, one line each (`access
    /// m: …`): modelsync warns at every run.
    pub fn warnings(&self) -> Vec<String> {
        self.access
            .iter()
            .flat_map(|a| {
                a.warnings
                    .iter()
                    .map(move |w| format!("access {}: {w}", a.model))
            })
            .collect()
    }

    /// True when any move is blocked by a gate.
    pub fn has_blocked(&self) -> bool {
        self.models
            .iter()
            .flat_map(|m| &m.actions)
            .any(Action::is_blocked)
    }
}
