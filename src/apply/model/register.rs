//! Registrations and copies of one model's new versions, and the numbers
//! the later moves use for them.
//!
//! The model's read before its first write answers "is this source
//! registered already?" (`LiveModel::version_for_source`, the one rule), so
//! a version is created without a search (`create_version_unseen`); the
//! versions created so are checked for a concurrent applier's duplicate
//! once, when the model's registrations are done
//! ([`ModelRun::keep_first_registered`]) — unless this run created the
//! model and its creates were answered 1, 2, …, k ([`numbered_alone`]):
//! then no other version existed below any of them, so any concurrent
//! duplicate is higher than ours and is its own applier's to delete (that
//! applier read the model before registering, so it runs the backstop too).

use std::collections::{BTreeMap, BTreeSet};

use tracing::{debug, info, warn};

use super::{ModelRun, StepError};
use crate::plan::VersionRef;
use crate::registry::{NewVersion, Registry};
use crate::state::LiveModel;

/// The versions a model run knows.
#[derive(Debug, Default)]
pub(super) struct Versions {
    /// The model as read before its first write (for a model this run
    /// creates: empty once created): answers "is this source registered?".
    pub fresh: Option<LiveModel>,
    /// Handle -> version number, for versions registered (or found) in
    /// this run.
    new: BTreeMap<String, u64>,
    /// Declared source -> (handle, version) registered without a search
    /// first, not yet checked for a concurrent duplicate.
    unchecked: BTreeMap<String, (String, u64)>,
    /// The numbers of the versions this run registered in a model it
    /// created; `None` for a model it did not create, or once anything
    /// else (a copy) added a version.
    created_alone: Option<BTreeSet<u64>>,
}

impl Versions {
    /// This run created the model: the versions it registers from now on
    /// may be known to be the model's only ones ([`numbered_alone`]).
    pub fn model_created(&mut self) {
        self.created_alone = Some(BTreeSet::new());
    }
}

/// True when the versions a run registered in a model it created are
/// numbered exactly 1..=k. A registry numbers each model's versions one
/// above the highest it holds (deleted ones counted where it keeps them),
/// so then no version but ours existed below any of ours: a concurrent
/// applier's twin of one of our sources can only be higher, and the lowest
/// version of each source is ours.
pub(super) fn numbered_alone(created: &BTreeSet<u64>) -> bool {
    !created.is_empty() && created.iter().copied().eq(1..=created.len() as u64)
}

impl<R: Registry> ModelRun<'_, R> {
    /// The version number `target` names: an existing one, or the one
    /// registered for a handle in this run.
    pub(super) fn resolve(&self, target: &VersionRef) -> Result<u64, StepError> {
        match target {
            VersionRef::Existing(n) => Ok(*n),
            VersionRef::New(handle) => {
                self.versions.new.get(handle).copied().ok_or_else(|| {
                    StepError::Skip(format!("version {handle:?} was not registered"))
                })
            }
        }
    }

    /// Registers a new version for `handle` (with the audit tags of its
    /// planned moves) unless the model as read holds it already, and
    /// remembers its number for later moves.
    pub(super) async fn register(
        &mut self,
        handle: &str,
        mut new: NewVersion,
    ) -> Result<(), StepError> {
        let known = self
            .versions
            .fresh
            .as_ref()
            .and_then(|m| m.version_for_source(&new.declared()).map(|v| v.version));
        if let Some(n) = known {
            info!(model = self.model, version = n, handle = %handle,
                "a version with this source exists; not registering again");
            self.versions.new.insert(handle.to_string(), n);
            return Ok(());
        }
        let audit = self.moves.audit_for_create(handle);
        new.tags.extend(audit.clone());
        let v = if self.versions.fresh.is_some() {
            let v = self.reg.create_version_unseen(self.model, &new).await?;
            self.versions
                .unchecked
                .insert(new.declared_source.clone(), (handle.to_string(), v.version));
            if let Some(created) = &mut self.versions.created_alone {
                created.insert(v.version);
            }
            v
        } else {
            self.reg.create_version(self.model, &new).await?
        };
        info!(model = self.model, version = v.version, handle = %handle, "registered version");
        self.moves.created_with(&v, audit);
        self.versions.new.insert(handle.to_string(), v.version);
        Ok(())
    }

    /// Copies a version from another registry for `handle`.
    pub(super) async fn copy(
        &mut self,
        handle: &str,
        job: &crate::apply::copy::CopyJob<'_>,
    ) -> Result<(), StepError> {
        self.versions.created_alone = None;
        let v = crate::apply::copy::copy_version(self.reg, self.opts, job).await?;
        info!(model = self.model, version = v.version, handle = %handle, "copied version");
        self.versions.new.insert(handle.to_string(), v.version);
        Ok(())
    }

    /// The duplicate backstop for the versions registered without a search
    /// (one read of the model's versions, once its registrations are done):
    /// a concurrent applier's lower version with the same source wins, ours
    /// is deleted, and the moves use the kept one (their audit tags then
    /// written after the move, as for any existing version). Not needed,
    /// and not read, when the versions are [`numbered_alone`].
    pub(super) async fn keep_first_registered(&mut self) {
        if self.versions.unchecked.is_empty() {
            return;
        }
        let unchecked = std::mem::take(&mut self.versions.unchecked);
        if self
            .versions
            .created_alone
            .as_ref()
            .is_some_and(numbered_alone)
        {
            debug!(
                model = self.model,
                "the model's versions are all this run's: no duplicate check needed"
            );
            return;
        }
        let ours: BTreeMap<String, u64> = unchecked
            .iter()
            .map(|(src, (_, n))| (src.clone(), *n))
            .collect();
        match self.reg.keep_first_registered(self.model, &ours).await {
            Ok(kept) => {
                for (src, (handle, n)) in &unchecked {
                    if let Some(k) = kept.get(src).filter(|k| *k != n) {
                        self.versions.new.insert(handle.clone(), *k);
                        self.moves.replaced(*n);
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
}

#[cfg(test)]
mod tests {
    use super::numbered_alone;
    use std::collections::BTreeSet;

    fn set(v: &[u64]) -> BTreeSet<u64> {
        v.iter().copied().collect()
    }

    #[test]
    fn versions_numbered_from_one_without_gaps_are_alone() {
        assert!(numbered_alone(&set(&[1])));
        assert!(numbered_alone(&set(&[1, 2, 3, 4, 5])));
    }

    #[test]
    fn a_gap_or_a_late_start_means_another_version_existed() {
        assert!(!numbered_alone(&set(&[])));
        assert!(!numbered_alone(&set(&[2])));
        assert!(!numbered_alone(&set(&[1, 3])));
        assert!(!numbered_alone(&set(&[2, 3, 4, 5, 6])));
    }
}
