//! Per-model view of the last reconcile, for `/status`, the status page
//! and notifications: each declared model's stage holders and aliases (as
//! the registry holds them, read back after applying), and whether it is
//! in sync, drifted, gate-blocked or failed.
//!
//! Derived from a pass's [`Outcome`] only (pure); `reconciler.rs` stores it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::apply::Outcome as ActionOutcome;
use crate::plan::{Action, GateStatus, describe};
use crate::reconcile::{Mode, Outcome};
use crate::state::{LiveModel, LivePrompt, LiveVersion, Stage, tags};

/// One declared model (or prompt).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelView {
    pub name: String,
    /// `model` or `prompt` (`kind: Prompt`: no stages; its aliases'
    /// `source` is the template's first line).
    pub kind: &'static str,
    #[serde(flatten)]
    pub state: ModelState,
    /// Staging and Production holders.
    pub stages: Vec<Holder>,
    /// Every alias of the model.
    pub aliases: Vec<Holder>,
    /// RFC 3339 (to the millisecond): when a pass last read, planned and (unless it only
    /// reported drift) applied this model — a full pass, or one targeted
    /// at it (an MLflow webhook, a push that changed it).
    pub last_reconciled: Option<String>,
}

/// A stage or alias and the version behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    /// The stage name or the alias.
    pub target: String,
    pub version: u64,
    pub source: String,
    /// Who approved the move that put the version there (its audit
    /// stamp), when approvals gated it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approved_by: Vec<String>,
    /// The version's verification in this target, when it has one
    /// (`verifying since …`, `verified at …`, `failed at …: why`): as the
    /// last pass read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<String>,
}

/// Whether the registry matches the manifests for one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ModelState {
    InSync,
    /// The registry differs and was not repaired (`--drift warn`, or a
    /// pass that wrote nothing): what applying would do.
    Drifted {
        actions: Vec<String>,
    },
    /// A gate blocked a move: the move, the failing gate, what it observed.
    Blocked {
        action: String,
        gate: String,
        observed: String,
    },
    /// Planning or an action failed.
    Failed {
        error: String,
    },
    /// A move is blocked by the registry's freeze (`modelsync freeze`):
    /// the move, and who froze, when and why.
    Frozen {
        action: String,
        freeze: String,
    },
    /// In sync but for targets a hold keeps where they are (`modelsync
    /// rollback`): one line each, who held it and why.
    Held {
        holds: Vec<String>,
    },
}

impl ModelState {
    /// `in_sync`, `drifted`, `blocked`, `failed`, `frozen`, `held`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ModelState::InSync => "in_sync",
            ModelState::Drifted { .. } => "drifted",
            ModelState::Blocked { .. } => "blocked",
            ModelState::Failed { .. } => "failed",
            ModelState::Frozen { .. } => "frozen",
            ModelState::Held { .. } => "held",
        }
    }
}

/// The views of every declared model after a pass that planned (not one
/// stopped by invalid manifests or an unreachable registry), and the
/// registry's reading of them (for `/models/NAME`).
pub fn views(out: &Outcome, mode: Mode) -> Option<(Vec<ModelView>, BTreeMap<String, LiveModel>)> {
    let desired = out.desired.as_ref()?;
    let live = out.verified.as_ref().or(out.observed.as_ref())?;
    let mut views = Vec::new();
    let mut models = BTreeMap::new();
    for name in desired.models.keys() {
        let model = live.models.get(name);
        views.push(ModelView {
            name: name.clone(),
            kind: "model",
            state: state_of(name, out, mode),
            stages: model.map(stages).unwrap_or_default(),
            aliases: model.map(aliases).unwrap_or_default(),
            last_reconciled: None,
        });
        if let Some(m) = model {
            models.insert(name.clone(), m.clone());
        }
    }
    for name in desired.prompts.keys() {
        views.push(ModelView {
            name: name.clone(),
            kind: "prompt",
            state: prompt_state(name, out, mode),
            stages: Vec::new(),
            aliases: live
                .prompts
                .get(name)
                .map(prompt_aliases)
                .unwrap_or_default(),
            last_reconciled: None,
        });
    }
    Some((views, models))
}

/// A prompt's state, as [`state_of`] for a model (prompts have no gates).
fn prompt_state(name: &str, out: &Outcome, mode: Mode) -> ModelState {
    let plan = out
        .plan
        .as_ref()
        .and_then(|p| p.prompts.iter().find(|pp| pp.prompt == name));
    let errors = plan.map(|pp| pp.errors.as_slice()).unwrap_or_default();
    if let Some(failed) = failure(errors, name, &format!("prompt {name}: "), out) {
        return failed;
    }
    let actions = plan.map(|pp| pp.actions.as_slice()).unwrap_or_default();
    drifted(
        actions.iter().map(describe::prompt_action).collect(),
        out,
        mode,
    )
    .unwrap_or(ModelState::InSync)
}

/// `Failed` when planning `name` found `errors`, one of its actions failed
/// or conflicted, or a line of what is still pending after the apply
/// starts with `prefix`.
fn failure(errors: &[String], name: &str, prefix: &str, out: &Outcome) -> Option<ModelState> {
    if !errors.is_empty() {
        return Some(ModelState::Failed {
            error: errors.join("; "),
        });
    }
    let results = out.report.iter().flat_map(|r| &r.results);
    for r in results.filter(|r| r.object == name) {
        if let ActionOutcome::Failed(why) | ActionOutcome::Conflict(why) = &r.outcome {
            return Some(ModelState::Failed {
                error: format!("{}: {why}", r.action),
            });
        }
    }
    let line = out.pending.iter().find(|l| l.starts_with(prefix))?;
    Some(ModelState::Failed {
        error: format!("not converged after apply: {line}"),
    })
}

/// `Drifted` when there are `actions` (described) and the pass did not
/// execute them.
fn drifted(actions: Vec<String>, out: &Outcome, mode: Mode) -> Option<ModelState> {
    let executed = out.report.is_some() && mode == Mode::Apply;
    (!actions.is_empty() && !executed).then_some(ModelState::Drifted { actions })
}

/// A prompt's aliases, each with the first line of its template.
fn prompt_aliases(p: &LivePrompt) -> Vec<Holder> {
    p.aliases
        .iter()
        .map(|(alias, n)| Holder {
            approved_by: Vec::new(),
            verification: None,
            target: alias.clone(),
            version: *n,
            source: p
                .versions
                .get(n)
                .and_then(|t| t.lines().next())
                .map(|l| l.chars().take(60).collect())
                .unwrap_or_default(),
        })
        .collect()
}

/// Marks every view failed with `error` (the registry could not be read:
/// the holders shown are the last ones read).
/// A targeted pass's views replace those of the same models; the others
/// stay as the last pass that covered them left them.
pub fn merge(into: &mut Vec<ModelView>, views: Vec<ModelView>) {
    for v in views {
        match into.iter_mut().find(|o| o.name == v.name) {
            Some(old) => *old = v,
            None => into.push(v),
        }
    }
}

pub fn all_failed(views: &mut [ModelView], error: &str) {
    for v in views {
        v.state = ModelState::Failed {
            error: error.to_string(),
        };
    }
}

fn state_of(name: &str, out: &Outcome, mode: Mode) -> ModelState {
    let plan = out
        .plan
        .as_ref()
        .and_then(|p| p.models.iter().find(|m| m.model == name));
    let errors = plan.map(|mp| mp.errors.as_slice()).unwrap_or_default();
    if let Some(failed) = failure(errors, name, &format!("{name}: "), out) {
        return failed;
    }
    let results: Vec<_> = out
        .report
        .iter()
        .flat_map(|r| &r.results)
        .filter(|r| r.object == name)
        .collect();
    let actions = plan.map(|m| m.actions.as_slice()).unwrap_or_default();
    if let Some(blocked) = actions.iter().find(|a| a.is_blocked()) {
        return blocked_state(blocked);
    }
    if let Some(r) = results
        .iter()
        .find(|r| matches!(r.outcome, ActionOutcome::Blocked(_)))
    {
        let ActionOutcome::Blocked(why) = &r.outcome else {
            unreachable!("matched above")
        };
        return ModelState::Blocked {
            action: r.action.clone(),
            gate: why.clone(),
            observed: String::new(),
        };
    }
    let held = plan.map(|m| m.held.as_slice()).unwrap_or_default();
    drifted(actions.iter().map(describe::action).collect(), out, mode).unwrap_or_else(|| {
        if held.is_empty() {
            ModelState::InSync
        } else {
            ModelState::Held {
                holds: held.iter().map(describe::held).collect(),
            }
        }
    })
}

fn blocked_state(action: &Action) -> ModelState {
    let failing: Vec<_> = action
        .gates()
        .iter()
        .filter(|g| g.status == GateStatus::Blocked)
        .collect();
    if let Some(f) = failing
        .iter()
        .find(|g| g.gate == crate::plan::windows::FREEZE)
    {
        return ModelState::Frozen {
            action: describe::action(action),
            freeze: f.detail.clone(),
        };
    }
    ModelState::Blocked {
        action: describe::action(action),
        gate: failing
            .iter()
            .map(|g| g.gate.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        observed: failing
            .iter()
            .map(|g| g.detail.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn stages(m: &LiveModel) -> Vec<Holder> {
    [Stage::Production, Stage::Staging]
        .into_iter()
        .flat_map(|s| {
            m.holders(s).map(move |v| Holder {
                target: s.as_str().to_string(),
                version: v.version,
                source: v.source.clone(),
                approved_by: approved_by(v, s.as_str()),
                verification: verification(v, s.as_str()),
            })
        })
        .collect()
}

fn aliases(m: &LiveModel) -> Vec<Holder> {
    m.aliases
        .iter()
        .map(|(alias, n)| {
            let v = m.versions.get(n);
            Holder {
                target: alias.clone(),
                version: *n,
                source: v.map(|v| v.source.clone()).unwrap_or_default(),
                approved_by: v.map(|v| approved_by(v, alias)).unwrap_or_default(),
                verification: v.and_then(|v| verification(v, alias)),
            }
        })
        .collect()
}

/// What `v`'s verification in `target` is (`state::verification`).
fn verification(v: &LiveVersion, target: &str) -> Option<String> {
    crate::state::verification::of(v, target).map(|r| r.describe())
}

/// The approvers the audit stamp of `v`'s move into `target` names.
fn approved_by(v: &LiveVersion, target: &str) -> Vec<String> {
    v.tags
        .get(&format!("{}{target}", tags::PROMOTED_AT_PREFIX))
        .map(|stamp| tags::Stamp::parse(stamp).approved_by)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_names_who_approved_its_move() {
        let stamp = |approvers: &str| {
            format!("2026-05-01T12:00:00Z previous=1 approved-by={approvers} revision=abc")
        };
        let version = LiveVersion {
            version: 2,
            stage: Stage::Production,
            tags: [
                ("modelsync.promoted-at.Production", stamp("alice,bob")),
                ("modelsync.promoted-at.champion", stamp("carol")),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            ..LiveVersion::default()
        };
        let model = LiveModel {
            name: "m".into(),
            aliases: [("champion".to_string(), 2), ("other".to_string(), 2)]
                .into_iter()
                .collect(),
            versions: [(2, version)].into(),
            ..LiveModel::default()
        };
        assert_eq!(stages(&model)[0].approved_by, ["alice", "bob"]);
        let by: Vec<_> = aliases(&model).into_iter().map(|h| h.approved_by).collect();
        assert_eq!(by, [vec!["carol".to_string()], Vec::new()]);
    }

    #[test]
    fn a_row_says_held_or_frozen_with_who_and_why() {
        use crate::plan::{GateCheck, Held, ModelPlan, Plan, VersionRef};
        use crate::state::hold::{Cause, Hold};
        let hold = Hold {
            version: 1,
            by: "alice".into(),
            at: "2026-05-01T12:00:00Z".into(),
            reason: "p99 doubled".into(),
            cause: Cause::Rollback,
            extra: Default::default(),
        };
        let mut plan = Plan::empty();
        plan.models.push(ModelPlan {
            model: "m".into(),
            actions: Vec::new(),
            errors: Vec::new(),
            held: vec![Held {
                target: "champion".into(),
                declared: Some(VersionRef::Existing(2)),
                live: Some(1),
                hold,
            }],
        });
        let mut out = Outcome {
            plan: Some(plan),
            ..Outcome::default()
        };
        let ModelState::Held { holds } = state_of("m", &out, Mode::Apply) else {
            panic!("not held");
        };
        assert!(
            holds[0].contains("alice") && holds[0].contains("p99 doubled"),
            "{holds:?}"
        );
        let frozen = Action::SetAlias {
            alias: "canary".into(),
            version: VersionRef::Existing(2),
            before: None,
            gates: vec![GateCheck {
                gate: crate::plan::windows::FREEZE.into(),
                status: GateStatus::Blocked,
                detail: "frozen by bob: \"incident\"".into(),
                approved_by: Vec::new(),
            }],
        };
        out.plan.as_mut().expect("plan").models[0]
            .actions
            .push(frozen);
        let state = state_of("m", &out, Mode::Apply);
        assert_eq!(state.as_str(), "frozen");
        let ModelState::Frozen { freeze, .. } = state else {
            panic!("not frozen");
        };
        assert!(
            freeze.contains("bob") && freeze.contains("incident"),
            "{freeze}"
        );
    }
}
