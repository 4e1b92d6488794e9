//! Applies the actions of one model, in order (see the module docs of
//! `apply`): the read before the first write, then each action as one step
//! whose outcome is recorded. Registrations are `model/register.rs`,
//! stage and alias moves and archivals `model/moves.rs` (their gates
//! re-checked in `model/recheck.rs`), the ownership record
//! `model/ownership.rs`: each adds its steps to `ModelRun`.

mod moves;
mod ownership;
mod recheck;
mod register;

use tracing::{info, warn};

use super::{ActionResult, ApplyOptions, CancelFlag, Outcome};
use crate::plan::{Action, ModelPlan, Plan, describe};
use crate::registry::{NewVersion, Registry, RegistryError};
use crate::state::{LiveModel, LiveState, tags};
use moves::Moves;
use register::Versions;

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
        versions: Versions::default(),
        moves: Moves::new(mp, opts),
        created_inventory: None,
        stop: None,
        results: Vec::new(),
    };
    if let Err(outcome) = run.begin(mp).await {
        for action in &mp.actions {
            run.record(action, outcome.clone());
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

/// One model being applied: what its steps share.
struct ModelRun<'a, R> {
    reg: &'a R,
    model: &'a str,
    opts: &'a ApplyOptions,
    /// The versions the model held before its first write, and those this
    /// run registered.
    versions: Versions,
    /// What the moves share: audit tags sent with creates, archivals done
    /// by moves, the targets not moved.
    moves: Moves,
    /// The ownership record written with the model's creation, if any.
    created_inventory: Option<String>,
    /// Set after a failure: the reason the remaining actions are skipped.
    stop: Option<String>,
    results: Vec<ActionResult>,
}

/// Why a step did not apply.
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

impl<R: Registry> ModelRun<'_, R> {
    /// Before the model's first write: a shutdown, a lost lease or
    /// leadership, a changed model (read-check-write) or a model another
    /// leader fenced skips all its actions, with this outcome.
    async fn begin(&mut self, mp: &ModelPlan) -> Result<(), Outcome> {
        let opts = self.opts;
        if opts.cancel.as_ref().is_some_and(CancelFlag::is_cancelled) {
            return Err(Outcome::Skipped("shutting down".into()));
        }
        opts.may_write().map_err(Outcome::Skipped)?;
        // A model the plan creates needs no read first: its create is the
        // check (an existing model answers RESOURCE_ALREADY_EXISTS: a conflict).
        if !matches!(mp.actions.first(), Some(Action::CreateModel { .. })) {
            match self.check_fresh(mp).await {
                Ok(fresh) => self.versions.fresh = Some(fresh),
                Err(reason) => {
                    return Err(match opts.lease_held_still().await {
                        Ok(()) => Outcome::Conflict(reason),
                        Err(lost) => Outcome::Skipped(lost),
                    });
                }
            }
        }
        let fresh_tags = self.versions.fresh.as_ref().map(|m| &m.tags);
        super::fence::fence_model(self.reg, self.model, opts, fresh_tags)
            .await
            .map_err(Outcome::Skipped)
    }

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

    /// Performs one action and records its outcome; a move that did not
    /// happen is remembered (`Moves::unmoved`) and its audit tag removed.
    async fn step(&mut self, action: &Action) {
        let outcome = self.outcome_of(action).await;
        if outcome != Outcome::Applied {
            self.moves.mark_unmoved(action);
            self.untag_unmoved(action).await;
        }
        self.record(action, outcome);
    }

    async fn outcome_of(&mut self, action: &Action) -> Outcome {
        if let Some(reason) = &self.stop {
            return Outcome::Skipped(reason.clone());
        }
        if action.is_blocked() {
            return Outcome::Blocked(describe::blocked_gates(action.gates()));
        }
        if let Err(reason) = self.opts.may_write() {
            self.stop = Some(reason.clone());
            return Outcome::Skipped(reason);
        }
        match self.perform(action).await {
            Ok(()) => Outcome::Applied,
            Err(StepError::Skip(reason)) => Outcome::Skipped(reason),
            Err(StepError::Blocked(reason)) => Outcome::Blocked(reason),
            Err(StepError::Registry(e)) => {
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
        }
    }

    /// Performs one action: each kind in its own step (a move is told
    /// whether it overrides a blocked gate, `glass`).
    async fn perform(&mut self, action: &Action) -> Result<(), StepError> {
        let (reg, model, glass) = (self.reg, self.model, action.breaks_glass());
        match action {
            Action::CreateModel { description, tags } => {
                self.create_model(description.as_deref(), tags).await?
            }
            Action::UpdateModelDescription { after, .. } => {
                reg.update_model_description(model, after).await?
            }
            Action::SetModelTag { key, before, after } if key == tags::MANAGED => {
                self.record_ownership(before.as_deref(), after).await?
            }
            Action::SetModelTag { key, after, .. } => reg.set_model_tag(model, key, after).await?,
            Action::RegisterVersion {
                handle,
                declared_source,
                source,
                run_id,
                model_id,
                description,
                tags,
            } => {
                let new = NewVersion {
                    declared_source: declared_source.clone(),
                    source: source.clone(),
                    run_id: run_id.clone(),
                    model_id: model_id.clone(),
                    description: description.clone(),
                    tags: tags.clone(),
                };
                self.register(handle, new).await?
            }
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
                self.copy(handle, &job).await?
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
            Action::TransitionStage {
                version,
                to,
                holders,
                ..
            } => self.move_stage(version, (*to, glass), holders).await?,
            Action::SetAlias {
                alias,
                version,
                before,
                ..
            } => self.set_alias((alias, glass), version, *before).await?,
            Action::ArchiveVersion {
                version,
                from,
                replaced_by,
            } => self.archive(*version, *from, replaced_by.as_ref()).await?,
            Action::DeleteAlias { alias, .. } => reg.delete_alias(model, alias).await?,
            Action::ReleaseHold { target, .. } => self.release_hold(target).await?,
        }
        Ok(())
    }

    /// Creates the model (with an elected leader's token); a model that
    /// exists now is a conflict: the plan saw none.
    async fn create_model(
        &mut self,
        description: Option<&str>,
        model_tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), StepError> {
        let model = self.model;
        let all_tags = super::fence::created_tags(self.opts, model_tags);
        match self.reg.create_model(model, description, &all_tags).await {
            Ok(()) => {}
            Err(RegistryError::AlreadyExists(_)) => {
                return Err(StepError::Conflict(format!(
                    "the registry changed since the plan was made: {model}: the model now exists, the plan saw none"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        self.created_inventory = all_tags.get(tags::MANAGED).cloned();
        self.versions.model_created();
        self.versions.fresh = Some(LiveModel {
            name: model.to_string(),
            ..LiveModel::default()
        });
        Ok(())
    }

    /// Records one action's result and logs it.
    pub(super) fn record(&mut self, action: &Action, outcome: Outcome) {
        let description = describe::action(action);
        log_outcome(self.model, &description, &outcome);
        self.results.push(ActionResult {
            object: self.model.to_string(),
            action: description,
            kind: action.kind(),
            outcome,
        });
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
