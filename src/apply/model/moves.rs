//! Stage moves, alias moves and archivals of one model: each move's gates
//! re-checked just before it (`recheck.rs`), then the move, then its audit
//! tag naming the approvers the gates counted (unless the version's create
//! carried it); a replaced holder archived
//! only once its replacement is in place (or by the move itself,
//! `archive_existing_versions`, where `prepare.rs` allowed it).
//!
//! A move that did not happen (blocked, failed or skipped) is remembered by
//! its target, the stage or alias ([`Moves::mark_unmoved`]): the holders it
//! would have replaced are not archived, and the ownership record does not
//! claim it.

use std::collections::{BTreeMap, BTreeSet};

use tracing::warn;

use super::{ModelRun, StepError};
use crate::apply::ApplyOptions;
use crate::apply::prepare::{self, Prepared};
use crate::manifest::GateTarget;
use crate::plan::{Action, ModelPlan, VersionRef};
use crate::registry::{Registry, RegistryError};
use crate::state::{LiveVersion, Stage, tags};

/// What the moves of one model run share.
#[derive(Debug)]
pub(super) struct Moves {
    prepared: Prepared,
    /// (version, audit tag key) the version got in its create body.
    tagged_on_create: BTreeSet<(u64, String)>,
    /// Versions the server archived with a move (`archive_existing_versions`).
    archived_by_move: BTreeSet<u64>,
    /// Stages and aliases whose move did not happen.
    unmoved: BTreeSet<GateTarget>,
}

impl Moves {
    pub(super) fn new(mp: &ModelPlan, opts: &ApplyOptions) -> Moves {
        Moves {
            prepared: prepare::prepare(mp, opts.now_ms, opts.revision.as_deref()),
            tagged_on_create: BTreeSet::new(),
            archived_by_move: BTreeSet::new(),
            unmoved: BTreeSet::new(),
        }
    }

    /// The audit tags of the moves planned for the new version `handle`,
    /// to send in its create body (once).
    pub(super) fn audit_for_create(&mut self, handle: &str) -> BTreeMap<String, String> {
        self.prepared
            .audit_on_create
            .remove(handle)
            .unwrap_or_default()
    }

    /// The version `v` was created with `audit`: the tags it carries need
    /// no write after its moves.
    pub(super) fn created_with(&mut self, v: &LiveVersion, audit: BTreeMap<String, String>) {
        for (key, value) in audit {
            if v.tags.get(&key) == Some(&value) {
                self.tagged_on_create.insert((v.version, key));
            }
        }
    }

    /// Version `n` was replaced by a concurrent applier's: its audit tags
    /// are written after the moves of the kept one.
    pub(super) fn replaced(&mut self, n: u64) {
        self.tagged_on_create.retain(|(v, _)| *v != n);
    }

    /// Remembers that `action`'s move (if it is one) did not happen.
    pub(super) fn mark_unmoved(&mut self, action: &Action) {
        if let Some((_, target)) = move_of(action) {
            self.unmoved.insert(target);
        }
    }

    /// The stages and aliases whose move did not happen.
    pub(super) fn unmoved(&self) -> &BTreeSet<GateTarget> {
        &self.unmoved
    }
}

/// The version a move puts in place and its target (stage or alias);
/// `None` for an action that is not a move.
fn move_of(action: &Action) -> Option<(&VersionRef, GateTarget)> {
    match action {
        Action::TransitionStage { version, to, .. } => Some((version, GateTarget::Stage(*to))),
        Action::SetAlias { version, alias, .. } => {
            Some((version, GateTarget::Alias(alias.clone())))
        }
        _ => None,
    }
}

/// The stage or alias name a target's audit tag is keyed by.
fn target_name(target: &GateTarget) -> &str {
    match target {
        GateTarget::Stage(s) => s.as_str(),
        GateTarget::Alias(a) => a,
    }
}

impl<R: Registry> ModelRun<'_, R> {
    /// Moves `version` into stage `to` (archiving the other `holders` in
    /// the same request where prepared), then writes its audit tag.
    pub(super) async fn move_stage(
        &mut self,
        version: &VersionRef,
        (to, glass): (Stage, bool),
        holders: &[u64],
    ) -> Result<(), StepError> {
        let (reg, model) = (self.reg, self.model);
        let n = self.resolve(version)?;
        let approvers = self.recheck_gates(&GateTarget::Stage(to), n).await?;
        if self.moves.prepared.archiving.contains(&to) {
            if reg.transition_stage_archiving(model, n, to).await? {
                let others = holders.iter().copied().filter(|h| *h != n);
                self.moves.archived_by_move.extend(others);
            }
        } else {
            reg.transition_stage(model, n, to).await?;
        }
        if prepare::audited(to) {
            let previous = holders.iter().copied().find(|h| *h != n);
            self.audit(n, (to.as_str(), glass), (previous, approvers))
                .await?;
        }
        Ok(())
    }

    /// Points `alias` at `version`, then writes its audit tag.
    pub(super) async fn set_alias(
        &mut self,
        (alias, glass): (&str, bool),
        version: &VersionRef,
        before: Option<u64>,
    ) -> Result<(), StepError> {
        let n = self.resolve(version)?;
        let approvers = self
            .recheck_gates(&GateTarget::Alias(alias.to_string()), n)
            .await?;
        self.reg.set_alias(self.model, alias, n).await?;
        let previous = before.filter(|b| *b != n);
        self.audit(n, (alias, glass), (previous, approvers)).await?;
        Ok(())
    }

    /// Archives `version`, a holder of `from` replaced by `replaced_by`:
    /// not while the move into `from` did not happen, and not again when
    /// that move archived it already.
    pub(super) async fn archive(
        &mut self,
        version: u64,
        from: Stage,
        replaced_by: Option<&VersionRef>,
    ) -> Result<(), StepError> {
        if let Some(t) = replaced_by
            && self.moves.unmoved.contains(&GateTarget::Stage(from))
        {
            return Err(StepError::Skip(format!(
                "its replacement ({t}) is not in place"
            )));
        }
        if self.moves.archived_by_move.contains(&version) {
            // Archived by its replacement's move, in one request.
            return Ok(());
        }
        self.reg
            .transition_stage(self.model, version, Stage::Archived)
            .await?;
        Ok(())
    }

    /// Removes the hold on `target` the manifests caught up with: not while
    /// the target's move did not happen (the hold stays).
    pub(super) async fn release_hold(&mut self, target: &str) -> Result<(), StepError> {
        if self.moves.unmoved.contains(&GateTarget::from_key(target)) {
            return Err(StepError::Skip(format!(
                "the move of {target} did not happen; the hold stays"
            )));
        }
        let key = crate::state::hold::tag_key(target);
        self.reg.delete_model_tag(self.model, &key).await?;
        Ok(())
    }

    /// Writes the audit tag of a move of `version` into `target` (one
    /// tag: the version it replaced and the approvers counted; and, for a
    /// move that broke the glass, who and why), unless the version's
    /// create carried it already.
    async fn audit(
        &mut self,
        version: u64,
        (target, glass): (&str, bool),
        replaced_and_approvers: (Option<u64>, Vec<String>),
    ) -> Result<(), RegistryError> {
        let glass = self.opts.break_glass.as_ref().filter(|_| glass);
        let (key, value) = prepare::audit_tag(
            target,
            self.opts.now_ms,
            replaced_and_approvers,
            self.opts.revision.as_deref(),
            glass,
        );
        if self.moves.tagged_on_create.remove(&(version, key.clone())) {
            return Ok(());
        }
        self.reg
            .set_version_tag(self.model, version, &key, &value)
            .await
    }

    /// A move of a new version that did not happen: the audit tag its create
    /// carried is removed again (only on this path; never after the lease is
    /// lost).
    pub(super) async fn untag_unmoved(&mut self, action: &Action) {
        let Some((version, target)) = move_of(action) else {
            return;
        };
        let Ok(n) = self.resolve(version) else {
            return;
        };
        let key = format!("{}{}", tags::PROMOTED_AT_PREFIX, target_name(&target));
        if !self.moves.tagged_on_create.remove(&(n, key.clone())) || self.opts.may_write().is_err()
        {
            return;
        }
        if let Err(e) = self.reg.delete_version_tag(self.model, n, &key).await {
            warn!(model = self.model, version = n, key, error = %e,
                "the move did not happen and its audit tag could not be removed");
        }
    }
}
