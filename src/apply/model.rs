//! Applies the actions of one model (in order) or one experiment.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, UNIX_EPOCH};

use tracing::{info, warn};

use super::{ActionResult, ApplyOptions, CancelFlag, Outcome};
use crate::manifest::{Gate, GateTarget};
use crate::plan::diff::ownership::Inventory;
use crate::plan::{
    Action, ExperimentAction, ExperimentPlan, GateStatus, ModelPlan, Plan, Target, describe, gates,
};
use crate::registry::lease::LOST_REASON;
use crate::registry::{NewVersion, Registry, RegistryError};
use crate::state::{LiveState, LiveVersion, Stage, tags};

/// Applies one model's actions in order; see the module docs of `apply`.
pub async fn apply_model<R: Registry>(
    reg: &R,
    mp: &ModelPlan,
    opts: &ApplyOptions,
) -> Vec<ActionResult> {
    let mut run = ModelRun {
        reg,
        model: &mp.model,
        opts,
        new_versions: BTreeMap::new(),
        not_moved: BTreeSet::new(),
        not_set: BTreeSet::new(),
        created_inventory: None,
        stop: None,
        results: Vec::new(),
    };
    if opts.cancel.as_ref().is_some_and(CancelFlag::is_cancelled) {
        for action in &mp.actions {
            run.record(action, Outcome::Skipped("shutting down".into()));
        }
        return run.results;
    }
    if let Err(reason) = opts.may_write() {
        for action in &mp.actions {
            run.record(action, Outcome::Skipped(reason.into()));
        }
        return run.results;
    }
    if let Err(reason) = run.check_fresh(mp).await {
        for action in &mp.actions {
            run.record(action, Outcome::Conflict(reason.clone()));
        }
        return run.results;
    }
    for action in &mp.actions {
        run.step(action).await;
    }
    run.correct_created_inventory().await;
    run.results
}

/// Applies one experiment's actions in order.
pub async fn apply_experiment<R: Registry>(
    reg: &R,
    ep: &ExperimentPlan,
    opts: &ApplyOptions,
) -> Vec<ActionResult> {
    let mut results = Vec::new();
    let mut id: Option<String> = None;
    for action in &ep.actions {
        let outcome = match action {
            _ if opts.may_write().is_err() => Outcome::Skipped(LOST_REASON.into()),
            ExperimentAction::CreateExperiment {
                artifact_location,
                tags,
            } => match reg
                .create_experiment(&ep.experiment, artifact_location.as_deref(), tags)
                .await
            {
                Ok(new_id) => {
                    id = Some(new_id);
                    Outcome::Applied
                }
                Err(e) => Outcome::Failed(e.to_string()),
            },
            ExperimentAction::SetExperimentTag { key, after, .. } => {
                match experiment_id(reg, &ep.experiment, &mut id).await {
                    Ok(eid) => match reg.set_experiment_tag(&eid, key, after).await {
                        Ok(()) => Outcome::Applied,
                        Err(e) => Outcome::Failed(e.to_string()),
                    },
                    Err(e) => Outcome::Failed(e),
                }
            }
        };
        let description = describe::experiment_action(action);
        log_outcome(&ep.experiment, &description, &outcome);
        results.push(ActionResult {
            object: ep.experiment.clone(),
            action: description,
            kind: match action {
                ExperimentAction::CreateExperiment { .. } => "create_experiment",
                ExperimentAction::SetExperimentTag { .. } => "set_experiment_tag",
            },
            outcome,
        });
    }
    results
}

async fn experiment_id<R: Registry>(
    reg: &R,
    name: &str,
    cached: &mut Option<String>,
) -> Result<String, String> {
    if let Some(id) = cached {
        return Ok(id.clone());
    }
    let req = crate::registry::SnapshotRequest {
        models: crate::registry::Scope::Named(BTreeSet::new()),
        experiments: BTreeSet::from([name.to_string()]),
    };
    let live = reg.snapshot(&req).await.map_err(|e| e.to_string())?;
    let id = live
        .experiments
        .get(name)
        .map(|e| e.experiment_id.clone())
        .ok_or_else(|| format!("experiment {name:?} does not exist"))?;
    *cached = Some(id.clone());
    Ok(id)
}

struct ModelRun<'a, R> {
    reg: &'a R,
    model: &'a str,
    opts: &'a ApplyOptions,
    /// Handle -> version number, for versions registered in this run.
    new_versions: BTreeMap<String, u64>,
    /// Targets whose move did not happen (blocked, failed, skipped): their
    /// replaced holders must not be archived.
    not_moved: BTreeSet<Target>,
    /// Stage names and aliases whose move did not happen: the ownership
    /// record must not claim them.
    not_set: BTreeSet<String>,
    /// The ownership record written with the model's creation, if any.
    created_inventory: Option<String>,
    /// Set after a failure: the reason the remaining actions are skipped.
    stop: Option<String>,
    results: Vec<ActionResult>,
}

impl<R: Registry> ModelRun<'_, R> {
    /// Re-reads the model and checks the plan's observed values for it.
    async fn check_fresh(&self, mp: &ModelPlan) -> Result<(), String> {
        let fresh = self
            .reg
            .get_model(self.model)
            .await
            .map_err(|e| format!("could not re-read the model before writing: {e}"))?;
        let mut live = LiveState::default();
        if let Some(m) = fresh {
            live.models.insert(self.model.to_string(), m);
        }
        let one = Plan {
            models: vec![mp.clone()],
            ..Plan::empty()
        };
        let stale = crate::plan::stale::check_actions(&one, &live);
        if stale.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the registry changed since the plan was made: {}",
                stale.join("; ")
            ))
        }
    }

    async fn step(&mut self, action: &Action) {
        if let Some(reason) = &self.stop {
            let reason = reason.clone();
            self.skip_move(action);
            self.record(action, Outcome::Skipped(reason));
            return;
        }
        if action.is_blocked() {
            self.skip_move(action);
            let why = action
                .gates()
                .iter()
                .filter(|g| g.status == GateStatus::Blocked)
                .map(|g| format!("{} ({})", g.gate, g.detail))
                .collect::<Vec<_>>()
                .join("; ");
            self.record(action, Outcome::Blocked(why));
            return;
        }
        if let Err(reason) = self.opts.may_write() {
            self.skip_move(action);
            self.stop = Some(reason.into());
            self.record(action, Outcome::Skipped(reason.into()));
            return;
        }
        let outcome = match self.perform(action).await {
            Ok(()) => Outcome::Applied,
            Err(StepError::Skip(reason)) => {
                self.skip_move(action);
                Outcome::Skipped(reason)
            }
            Err(StepError::Blocked(reason)) => {
                self.skip_move(action);
                Outcome::Blocked(reason)
            }
            Err(StepError::Registry(e)) => {
                self.skip_move(action);
                self.stop = Some(format!("an earlier action of {} failed", self.model));
                Outcome::Failed(e.to_string())
            }
        };
        self.record(action, outcome);
    }

    fn skip_move(&mut self, action: &Action) {
        match action {
            Action::TransitionStage { version, to, .. } => {
                self.not_moved.insert(version.clone());
                self.not_set.insert(to.as_str().to_string());
            }
            Action::SetAlias { version, alias, .. } => {
                self.not_moved.insert(version.clone());
                self.not_set.insert(alias.clone());
            }
            _ => {}
        }
    }

    /// A model created in this run got its ownership record with the
    /// create; when a move it lists did not happen, the record is written
    /// again with only what was done.
    async fn correct_created_inventory(&mut self) {
        let Some(planned) = self.created_inventory.take() else {
            return;
        };
        let earned = Inventory::earned(&planned, None, &self.not_set);
        if earned == planned {
            return;
        }
        if self.opts.may_write().is_err() {
            warn!(
                model = self.model,
                "lost the applier lease: the ownership record of this new model is left as created"
            );
            return;
        }
        let action = Action::SetModelTag {
            key: tags::MANAGED.to_string(),
            before: Some(planned),
            after: earned.clone(),
        };
        let outcome = match self
            .reg
            .set_model_tag(self.model, tags::MANAGED, &earned)
            .await
        {
            Ok(()) => Outcome::Applied,
            Err(e) => Outcome::Failed(e.to_string()),
        };
        self.record(&action, outcome);
    }

    fn record(&mut self, action: &Action, outcome: Outcome) {
        let description = describe::action(action);
        log_outcome(self.model, &description, &outcome);
        self.results.push(ActionResult {
            object: self.model.to_string(),
            action: description,
            kind: action.kind(),
            outcome,
        });
    }

    fn resolve(&self, target: &Target) -> Result<u64, StepError> {
        match target {
            Target::Existing(n) => Ok(*n),
            Target::New(handle) => {
                self.new_versions.get(handle).copied().ok_or_else(|| {
                    StepError::Skip(format!("version {handle:?} was not registered"))
                })
            }
        }
    }

    /// Performs one action; moves and registrations have their own steps.
    async fn perform(&mut self, action: &Action) -> Result<(), StepError> {
        let (reg, model) = (self.reg, self.model);
        match action {
            Action::CreateModel { description, tags } => {
                reg.create_model(model, description.as_deref(), tags)
                    .await?;
                self.created_inventory = tags.get(tags::MANAGED).cloned();
            }
            Action::UpdateModelDescription { after, .. } => {
                reg.update_model_description(model, after).await?
            }
            Action::SetModelTag { key, before, after } if key == tags::MANAGED => {
                self.record_ownership(before.as_deref(), after).await?
            }
            Action::SetModelTag { key, after, .. } => reg.set_model_tag(model, key, after).await?,
            Action::RegisterVersion { .. } => self.register(action).await?,
            Action::UpdateVersionDescription { version, after, .. } => {
                reg.update_version_description(model, *version, after)
                    .await?
            }
            Action::SetVersionTag {
                version,
                key,
                after,
                ..
            } => reg.set_version_tag(model, *version, key, after).await?,
            Action::TransitionStage { .. } | Action::SetAlias { .. } => {
                self.promote(action).await?
            }
            Action::ArchiveVersion {
                version,
                replaced_by,
                ..
            } => {
                if let Some(t) = replaced_by
                    && self.not_moved.contains(t)
                {
                    return Err(StepError::Skip(format!(
                        "its replacement ({t}) is not in place"
                    )));
                }
                reg.transition_stage(model, *version, Stage::Archived)
                    .await?
            }
            Action::DeleteAlias { alias, .. } => reg.delete_alias(model, alias).await?,
        }
        Ok(())
    }

    /// Registers a new version and remembers its number for later moves.
    async fn register(&mut self, action: &Action) -> Result<(), StepError> {
        let Action::RegisterVersion {
            handle,
            declared_source,
            source,
            run_id,
            model_id,
            description,
            tags,
        } = action
        else {
            unreachable!("register is called with a RegisterVersion");
        };
        let new = NewVersion {
            declared_source: declared_source.clone(),
            source: source.clone(),
            run_id: run_id.clone(),
            model_id: model_id.clone(),
            description: description.clone(),
            tags: tags.clone(),
        };
        let v = self.reg.create_version(self.model, &new).await?;
        info!(model = self.model, version = v.version, handle = %handle, "registered version");
        self.new_versions.insert(handle.clone(), v.version);
        Ok(())
    }

    /// A stage move or an alias: gates re-checked just before, then the
    /// move, then its audit tags.
    async fn promote(&mut self, action: &Action) -> Result<(), StepError> {
        let (reg, model) = (self.reg, self.model);
        match action {
            Action::TransitionStage {
                version,
                to,
                holders,
                ..
            } => {
                let n = self.resolve(version)?;
                self.recheck_gates(&GateTarget::Stage(*to), n).await?;
                reg.transition_stage(model, n, *to).await?;
                let previous = holders.iter().copied().find(|h| *h != n);
                if !matches!(to, Stage::None | Stage::Archived) {
                    self.audit(n, to.as_str(), previous).await?;
                }
            }
            Action::SetAlias {
                alias,
                version,
                before,
                ..
            } => {
                let n = self.resolve(version)?;
                self.recheck_gates(&GateTarget::Alias(alias.clone()), n)
                    .await?;
                reg.set_alias(model, alias, n).await?;
                self.audit(n, alias, before.filter(|b| *b != n)).await?;
            }
            _ => unreachable!("promote is called with a move"),
        }
        Ok(())
    }

    /// Writes the ownership record with only the targets whose move took
    /// effect (a move blocked at its re-check, failed or skipped is left
    /// out); nothing when that leaves the record as it was.
    async fn record_ownership(&self, before: Option<&str>, planned: &str) -> Result<(), StepError> {
        let earned = Inventory::earned(planned, before, &self.not_set);
        if before == Some(earned.as_str()) {
            return Err(StepError::Skip(
                "no move it records took effect; the ownership record is unchanged".into(),
            ));
        }
        self.reg
            .set_model_tag(self.model, tags::MANAGED, &earned)
            .await?;
        Ok(())
    }

    /// Evaluates the target's gates again against a fresh read of the
    /// model and its runs, just before the move.
    async fn recheck_gates(&self, target: &GateTarget, version: u64) -> Result<(), StepError> {
        let Some(gates) = self.opts.gates.get(self.model).and_then(|g| g.get(target)) else {
            return Ok(());
        };
        let model = self.reg.get_model(self.model).await?.ok_or_else(|| {
            StepError::Registry(RegistryError::NotFound(format!("model {:?}", self.model)))
        })?;
        let candidate = model.versions.get(&version);
        let mut evidence: Vec<&LiveVersion> = candidate.into_iter().collect();
        for gate in gates {
            if let Gate::Beats { alias, .. } = gate
                && let Some(holder) = model.aliases.get(alias).and_then(|n| model.versions.get(n))
            {
                evidence.push(holder);
            }
        }
        let live = self.read_evidence(&evidence).await?;
        let checks = gates::evaluate(
            gates,
            &gates::Candidate {
                live: candidate,
                run_id: candidate
                    .map(|v| v.run_id.as_str())
                    .filter(|r| !r.is_empty()),
                model_id: candidate
                    .map(|v| v.model_id.as_str())
                    .filter(|m| !m.is_empty()),
            },
            Some(&model),
            &live,
            self.opts.now_ms,
        );
        let blocked: Vec<String> = checks
            .iter()
            .filter(|c| c.status == GateStatus::Blocked)
            .map(|c| format!("{} ({})", c.gate, c.detail))
            .collect();
        if blocked.is_empty() {
            Ok(())
        } else {
            Err(StepError::Blocked(format!(
                "gate no longer passes just before the move: {}",
                blocked.join("; ")
            )))
        }
    }

    /// Writes the audit tags of a move of `version` into `target`.
    /// The runs and logged models of `versions`, read fresh (a gate
    /// re-check just before a move).
    async fn read_evidence(&self, versions: &[&LiveVersion]) -> Result<LiveState, StepError> {
        let ids = |f: fn(&LiveVersion) -> &str| -> Vec<String> {
            let set: BTreeSet<String> = versions
                .iter()
                .map(|v| f(v))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            set.into_iter().collect()
        };
        let run_ids = ids(|v| v.run_id.as_str());
        let model_ids = ids(|v| v.model_id.as_str());
        let mut live = LiveState::default();
        if !run_ids.is_empty() {
            live.runs = self.reg.get_runs(&run_ids).await?;
        }
        if !model_ids.is_empty() {
            let experiments: BTreeSet<String> = live
                .runs
                .values()
                .map(|r| r.experiment_id.clone())
                .filter(|e| !e.is_empty())
                .collect();
            let experiments: Vec<String> = experiments.into_iter().collect();
            live.logged_models = self.reg.get_logged_models(&model_ids, &experiments).await?;
        }
        Ok(live)
    }

    async fn audit(
        &self,
        version: u64,
        target: &str,
        previous: Option<u64>,
    ) -> Result<(), RegistryError> {
        let at = UNIX_EPOCH + Duration::from_millis(self.opts.now_ms.max(0) as u64);
        let at = humantime::format_rfc3339_seconds(at).to_string();
        let key = format!("{}{target}", tags::PROMOTED_AT_PREFIX);
        self.reg
            .set_version_tag(self.model, version, &key, &at)
            .await?;
        if let Some(prev) = previous {
            let key = format!("{}{target}", tags::PREVIOUS_PREFIX);
            self.reg
                .set_version_tag(self.model, version, &key, &prev.to_string())
                .await?;
        }
        if let Some(rev) = &self.opts.revision {
            self.reg
                .set_version_tag(self.model, version, tags::REVISION, rev)
                .await?;
        }
        Ok(())
    }
}

enum StepError {
    /// Not attempted, for the reason given; the model goes on.
    Skip(String),
    /// A gate blocked the move when re-checked; the model goes on.
    Blocked(String),
    /// The registry failed; the model stops.
    Registry(RegistryError),
}

impl From<RegistryError> for StepError {
    fn from(e: RegistryError) -> Self {
        StepError::Registry(e)
    }
}

fn log_outcome(object: &str, description: &str, outcome: &Outcome) {
    match outcome {
        Outcome::Applied => info!(model = object, action = description, "applied"),
        other => warn!(model = object, action = description, outcome = ?other, "not applied"),
    }
}
