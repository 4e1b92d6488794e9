//! Applies the actions of one model (in order) or one experiment.

use std::collections::{BTreeMap, BTreeSet};

use tracing::{info, warn};

use super::prepare::{self, Prepared};
use super::{ActionResult, ApplyOptions, CancelFlag, Outcome};
use crate::manifest::{Gate, GateTarget};
use crate::plan::diff::ownership::Inventory;
use crate::plan::{
    Action, ExperimentAction, ExperimentPlan, GateStatus, ModelPlan, Plan, Target, describe, gates,
};
use crate::registry::{NewVersion, Registry, RegistryError};
use crate::state::{LiveModel, LiveState, LiveVersion, Stage, tags};

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
        prepared: prepare::prepare(mp, opts.now_ms, opts.revision.as_deref()),
        fresh: None,
        new_versions: BTreeMap::new(),
        unchecked: BTreeMap::new(),
        tagged_on_create: BTreeSet::new(),
        archived_by_move: BTreeSet::new(),
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
            run.record(action, Outcome::Skipped(reason.clone()));
        }
        return run.results;
    }
    // A model the plan creates needs no read first: its create is the
    // check (an existing model answers RESOURCE_ALREADY_EXISTS: a conflict).
    if !matches!(mp.actions.first(), Some(Action::CreateModel { .. })) {
        match run.check_fresh(mp).await {
            Ok(fresh) => run.fresh = Some(fresh),
            Err(reason) => {
                let outcome = match opts.lease_held_still().await {
                    Ok(()) => Outcome::Conflict(reason),
                    Err(lost) => Outcome::Skipped(lost),
                };
                for action in &mp.actions {
                    run.record(action, outcome.clone());
                }
                return run.results;
            }
        }
    }
    let fresh_tags = run.fresh.as_ref().map(|m| m.tags.clone());
    if let Err(reason) = super::fence::fence_model(reg, &mp.model, opts, fresh_tags.as_ref()).await
    {
        for action in &mp.actions {
            run.record(action, Outcome::Skipped(reason.clone()));
        }
        return run.results;
    }
    for action in &mp.actions {
        if !matches!(action, Action::RegisterVersion { .. }) {
            run.keep_first_registered().await;
        }
        run.step(action).await;
    }
    run.keep_first_registered().await;
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
        let outcome = match (opts.may_write(), action) {
            (Err(reason), _) => Outcome::Skipped(reason),
            (
                Ok(()),
                ExperimentAction::CreateExperiment {
                    artifact_location,
                    tags,
                },
            ) => match reg
                .create_experiment(&ep.experiment, artifact_location.as_deref(), tags)
                .await
            {
                Ok(new_id) => {
                    id = Some(new_id);
                    Outcome::Applied
                }
                Err(e) => Outcome::Failed(e.to_string()),
            },
            (Ok(()), ExperimentAction::SetExperimentTag { key, after, .. }) => {
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
    prepared: Prepared,
    /// The model as read before its first write (for a model this run
    /// creates: empty once created): answers "is this source registered?".
    fresh: Option<LiveModel>,
    /// Handle -> version number, for versions registered in this run.
    new_versions: BTreeMap<String, u64>,
    /// Declared source -> (handle, version) registered without a search
    /// first, not yet checked for a concurrent duplicate.
    unchecked: BTreeMap<String, (String, u64)>,
    /// (version, audit tag key) the version got in its create body.
    tagged_on_create: BTreeSet<(u64, String)>,
    /// Versions the server archived with a move (`archive_existing_versions`).
    archived_by_move: BTreeSet<u64>,
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
    /// Re-reads the model and checks the plan's observed values for it;
    /// answers the model as read.
    async fn check_fresh(&self, mp: &ModelPlan) -> Result<LiveModel, String> {
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
            Ok(live.models.remove(self.model).unwrap_or_default())
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
            self.untag_unmoved(action).await;
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
            self.stop = Some(reason.clone());
            self.record(action, Outcome::Skipped(reason));
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
            Err(StepError::Conflict(reason)) => match self.opts.lease_held_still().await {
                Ok(()) => {
                    self.stop = Some(format!("an earlier action of {} conflicted", self.model));
                    Outcome::Conflict(reason)
                }
                Err(lost) => {
                    self.stop = Some(lost.clone());
                    Outcome::Skipped(lost)
                }
            },
        };
        if outcome != Outcome::Applied {
            self.untag_unmoved(action).await;
        }
        self.record(action, outcome);
    }

    /// A move of a new version that did not happen: the audit tag its create
    /// carried is removed again (only on this path; never after the lease is
    /// lost).
    async fn untag_unmoved(&mut self, action: &Action) {
        let (version, target) = match action {
            Action::TransitionStage { version, to, .. } => (version, to.as_str()),
            Action::SetAlias { version, alias, .. } => (version, alias.as_str()),
            _ => return,
        };
        let Ok(n) = self.resolve(version) else {
            return;
        };
        let key = format!("{}{target}", tags::PROMOTED_AT_PREFIX);
        if !self.tagged_on_create.remove(&(n, key.clone())) || self.opts.may_write().is_err() {
            return;
        }
        if let Err(e) = self.reg.delete_version_tag(self.model, n, &key).await {
            warn!(model = self.model, version = n, key, error = %e,
                "the move did not happen and its audit tag could not be removed");
        }
    }

    fn skip_move(&mut self, action: &Action) {
        let (version, target) = match action {
            Action::TransitionStage { version, to, .. } => (version, to.as_str()),
            Action::SetAlias { version, alias, .. } => (version, alias.as_str()),
            _ => return,
        };
        self.not_moved.insert(version.clone());
        self.not_set.insert(target.to_string());
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
                let tags = &super::fence::created_tags(self.opts, tags);
                match reg.create_model(model, description.as_deref(), tags).await {
                    Ok(()) => {}
                    Err(RegistryError::AlreadyExists(_)) => {
                        return Err(StepError::Conflict(format!(
                            "the registry changed since the plan was made: {model}: the model now exists, the plan saw none"
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
                self.created_inventory = tags.get(tags::MANAGED).cloned();
                self.fresh = Some(LiveModel {
                    name: model.to_string(),
                    ..LiveModel::default()
                });
            }
            Action::UpdateModelDescription { after, .. } => {
                reg.update_model_description(model, after).await?
            }
            Action::SetModelTag { key, before, after } if key == tags::MANAGED => {
                self.record_ownership(before.as_deref(), after).await?
            }
            Action::SetModelTag { key, after, .. } => reg.set_model_tag(model, key, after).await?,
            Action::RegisterVersion { .. } => self.register(action).await?,
            Action::CopyVersion {
                handle,
                from,
                experiment,
                description,
                tags,
            } => {
                let job = super::copy::CopyJob {
                    model,
                    from,
                    experiment,
                    description: description.as_ref(),
                    tags,
                };
                let v = super::copy::copy_version(reg, self.opts, &job).await?;
                info!(model, version = v.version, handle = %handle, "copied version");
                self.new_versions.insert(handle.clone(), v.version);
            }
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
                if self.archived_by_move.contains(version) {
                    // Archived by its replacement's move, in one request.
                    return Ok(());
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
        // The read before the model's first write lists its versions: a
        // source registered since the plan is found there, with no search.
        let known = self.fresh.as_ref().and_then(|m| {
            m.versions
                .values()
                .filter(|v| v.tags.get(tags::SOURCE) == Some(declared_source))
                .map(|v| v.version)
                .min()
        });
        if let Some(n) = known {
            info!(model = self.model, version = n, handle = %handle,
                "a version with this source exists; not registering again");
            self.new_versions.insert(handle.clone(), n);
            return Ok(());
        }
        let mut all_tags = tags.clone();
        let audit = self
            .prepared
            .audit_on_create
            .remove(handle)
            .unwrap_or_default();
        all_tags.extend(audit.clone());
        let new = NewVersion {
            declared_source: declared_source.clone(),
            source: source.clone(),
            run_id: run_id.clone(),
            model_id: model_id.clone(),
            description: description.clone(),
            tags: all_tags,
        };
        let v = if self.fresh.is_some() {
            let v = self.reg.create_version_unseen(self.model, &new).await?;
            self.unchecked
                .insert(declared_source.clone(), (handle.clone(), v.version));
            v
        } else {
            self.reg.create_version(self.model, &new).await?
        };
        info!(model = self.model, version = v.version, handle = %handle, "registered version");
        for (key, value) in audit {
            if v.tags.get(&key) == Some(&value) {
                self.tagged_on_create.insert((v.version, key));
            }
        }
        self.new_versions.insert(handle.clone(), v.version);
        Ok(())
    }

    /// The duplicate backstop for the versions registered without a search
    /// (one read of the model's versions, once its registrations are done):
    /// a concurrent applier's lower version with the same source wins, ours
    /// is deleted, and the moves use the kept one (their audit tags then
    /// written after the move, as for any existing version).
    async fn keep_first_registered(&mut self) {
        if self.unchecked.is_empty() {
            return;
        }
        let unchecked = std::mem::take(&mut self.unchecked);
        let ours: BTreeMap<String, u64> = unchecked
            .iter()
            .map(|(src, (_, n))| (src.clone(), *n))
            .collect();
        match self.reg.keep_first_registered(self.model, &ours).await {
            Ok(kept) => {
                for (src, (handle, n)) in &unchecked {
                    if let Some(k) = kept.get(src).filter(|k| *k != n) {
                        self.new_versions.insert(handle.clone(), *k);
                        self.tagged_on_create.retain(|(v, _)| v != n);
                    }
                }
            }
            Err(e) => {
                warn!(model = self.model, error = %e, "could not check the new versions for concurrent duplicates");
                self.stop = Some(format!(
                    "the check of {}'s new versions for concurrent duplicates failed: {e}",
                    self.model
                ));
            }
        }
    }

    /// A stage move or an alias: gates re-checked just before, then the
    /// move, then its audit tags (naming the approvers the gates counted).
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
                let approvers = self.recheck_gates(&GateTarget::Stage(*to), n).await?;
                if self.prepared.archiving.contains(to) {
                    if reg.transition_stage_archiving(model, n, *to).await? {
                        self.archived_by_move
                            .extend(holders.iter().copied().filter(|h| *h != n));
                    }
                } else {
                    reg.transition_stage(model, n, *to).await?;
                }
                let previous = holders.iter().copied().find(|h| *h != n);
                if prepare::audited(*to) {
                    self.audit(n, to.as_str(), previous, approvers).await?;
                }
            }
            Action::SetAlias {
                alias,
                version,
                before,
                ..
            } => {
                let n = self.resolve(version)?;
                let approvers = self
                    .recheck_gates(&GateTarget::Alias(alias.clone()), n)
                    .await?;
                reg.set_alias(model, alias, n).await?;
                self.audit(n, alias, before.filter(|b| *b != n), approvers)
                    .await?;
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
    /// model (its approval tags) and its runs, just before the move: the
    /// principals whose approvals counted.
    async fn recheck_gates(
        &self,
        target: &GateTarget,
        version: u64,
    ) -> Result<Vec<String>, StepError> {
        let Some(gates) = self.opts.gates.get(self.model).and_then(|g| g.get(target)) else {
            return Ok(Vec::new());
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
        let mut live = self.read_evidence(&evidence).await?;
        if gates.contains(&Gate::DigestUnchanged)
            && let Some(v) = candidate
        {
            self.read_bytes(v, &mut live).await?;
        }
        let registry = self.reg.uri();
        let env = gates::Env {
            now_ms: self.opts.now_ms,
            registry: &registry,
            approvals: &self.opts.approvals,
        };
        let checks = gates::evaluate(
            gates,
            &gates::Candidate {
                model: self.model,
                target,
                live: candidate,
                run_id: candidate
                    .map(|v| v.run_id.as_str())
                    .filter(|r| !r.is_empty()),
                model_id: candidate
                    .map(|v| v.model_id.as_str())
                    .filter(|m| !m.is_empty()),
                pinned: None,
            },
            Some(&model),
            &live,
            &env,
        );
        let blocked: Vec<String> = checks
            .iter()
            .filter(|c| c.status == GateStatus::Blocked)
            .map(|c| format!("{} ({})", c.gate, c.detail))
            .collect();
        if blocked.is_empty() {
            Ok(gates::approvers(&checks))
        } else {
            Err(StepError::Blocked(format!(
                "gate no longer passes just before the move: {}",
                blocked.join("; ")
            )))
        }
    }

    /// The bytes behind `v`, read again for a `digest: unchanged` gate's
    /// re-check just before the move (files hashed earlier in this pass,
    /// unchanged in size and stamp, are not read again).
    async fn read_bytes(&self, v: &LiveVersion, live: &mut LiveState) -> Result<(), StepError> {
        let tree = self.reg.version_tree(self.model, v).await?;
        live.version_trees
            .entry(self.model.to_string())
            .or_default()
            .insert(v.version, tree.map(|t| t.tree));
        Ok(())
    }

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

    /// Writes the audit tag of a move of `version` into `target` (one
    /// tag), unless the version's create carried it already.
    async fn audit(
        &mut self,
        version: u64,
        target: &str,
        previous: Option<u64>,
        approved_by: Vec<String>,
    ) -> Result<(), RegistryError> {
        let (key, value) = prepare::audit_tag(
            target,
            self.opts.now_ms,
            (previous, approved_by),
            self.opts.revision.as_deref(),
        );
        if self.tagged_on_create.remove(&(version, key.clone())) {
            return Ok(());
        }
        self.reg
            .set_version_tag(self.model, version, &key, &value)
            .await
    }
}

enum StepError {
    /// Not attempted, for the reason given; the model goes on.
    Skip(String),
    /// A gate blocked the move when re-checked; the model goes on.
    Blocked(String),
    /// The registry failed; the model stops.
    Registry(RegistryError),
    /// The registry changed since the plan was made; the model stops.
    Conflict(String),
}

impl From<RegistryError> for StepError {
    fn from(e: RegistryError) -> Self {
        StepError::Registry(e)
    }
}

/// Logs one action's outcome: a skip at info (its cause — a failure, a
/// lost lease, a shutdown — is reported once, where it happened), anything
/// else not applied at warn.
pub(super) fn log_outcome(object: &str, description: &str, outcome: &Outcome) {
    match outcome {
        Outcome::Applied => info!(model = object, action = description, "applied"),
        Outcome::Skipped(why) => info!(model = object, action = description, why, "skipped"),
        other => warn!(model = object, action = description, outcome = ?other, "not applied"),
    }
}
