//! The embedded registry: one JSON file with MLflow's registry semantics.
//!
//! It backs the quickstart, offline plans against an exported snapshot
//! (`export --snapshot`), and fast tests. It must behave like MLflow's model
//! registry (numbering, stages, aliases, tags, validation; see
//! `docs/mlflow-rest.md`), which the conformance suite
//! (`tests/integration/conformance.rs`) checks.
//!
//! # Concurrency and durability
//!
//! [`EmbeddedRegistry::open`] takes a lock on the sibling file `<path>.lock`
//! (never on the data file, which is replaced by rename): shared for
//! readers, exclusive for writers, held until the registry is dropped. The
//! file is read once, under the lock; the state then lives in memory behind a
//! `std` mutex that is never held across an `.await`. Writes change memory
//! and mark it dirty; [`Registry::flush`] writes only when dirty: a temp
//! file in the same directory, fsync, rename over the data file, fsync of
//! the directory. Two writers therefore serialize on the lock and the
//! second sees the first's result. When the parent directory does not exist
//! yet, no lock file can be made: the registry is empty, and a writer takes
//! its lock when its first flush creates the directory (failing if another
//! process created the file meanwhile).
//!
//! # File format (`modelsync-embedded/v1`)
//!
//! Pretty-printed JSON, keys sorted, final newline, so the bytes depend only
//! on the content:
//!
//! ```json
//! {
//!   "format": "modelsync-embedded/v1",
//!   "models": {
//!     "<name>": {
//!       "name": "<name>", "description": "", "tags": {"k": "v"},
//!       "aliases": {"champion": 2},
//!       "versions": {
//!         "1": {"version": 1, "stage": "Production", "source": "s3://…",
//!               "run_id": "", "model_id": "", "status": "READY",
//!               "description": "", "tags": {"modelsync.source": "s3://…"},
//!               "creation_timestamp": 1733400000000,
//!               "last_updated_timestamp": 1733400000000}
//!       },
//!       "next_version": 2,
//!       "creation_timestamp": 1733400000000, "last_updated_timestamp": 1733400000000
//!     }
//!   },
//!   "experiments": {
//!     "<name>": {"experiment_id": "0", "name": "<name>",
//!                "artifact_location": "file:./mlruns/0", "tags": {}}
//!   },
//!   "next_experiment_id": 1,
//!   "runs": {"<run_id>": {"run_id": "<run_id>", "experiment_id": "0",
//!                         "metrics": {"accuracy": 0.93, "loss": "NaN"}}},
//!   "logged_models": {"m-…": {"model_id": "m-…", "experiment_id": "0",
//!                     "metrics": [{"key": "auc", "value": 0.91, "step": 0,
//!                                  "timestamp": 1733400000000,
//!                                  "dataset_name": "holdout", "dataset_digest": "…",
//!                                  "run_id": "<evaluation run>"}]}},
//!   "resolved_sources": {"runs:/<run>/model": {"source": "models:/m-…",
//!                        "run_id": "<run>", "model_id": "m-…"}},
//!   "unresolvable_sources": {"runs:/<run>/typo": "run <run> logged no model under path \"typo\""},
//!   "freeze": {"by": "alice@laptop", "at": "2026-03-01T10:00:00Z", "reason": "incident 42"}
//! }
//! ```
//!
//! Timestamps are milliseconds since the epoch; `next_version` only grows,
//! so version numbers are never reused. `logged_models` (MLflow 3's, with
//! the metrics gates read), `resolved_sources` and
//! `unresolvable_sources` are optional (an exported snapshot of an MLflow
//! registry keeps what it answered for declared `runs:/` sources, so an
//! offline plan matches the online one). The file holds only the runs gates
//! read, so a `runs:/` source is not checked against `runs`. A file with another `format`, or
//! with unknown fields, is refused with an error naming the file; malformed
//! JSON is refused with the file, line and column. Never a silent empty
//! registry.

mod artifacts;
mod ops;
mod store;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{NewVersion, Registry, RegistryError, Result, SnapshotRequest};
use crate::state::artifacts::ArtifactTree;
use crate::state::{
    LiveLoggedModel, LiveModel, LiveRun, LiveState, LiveVersion, ResolvedSource, SourceResolution,
    Stage,
};
use store::{Data, StoredModel};

pub use store::FORMAT;

/// A registry kept in one JSON file.
pub struct EmbeddedRegistry {
    path: PathBuf,
    write: bool,
    /// The secrets the file held when opened for writing: a write may keep
    /// them (they were published before), never add one.
    leaked_before: Vec<String>,
    inner: Mutex<Inner>,
    /// Files hashed in this instance (`resolve`).
    hashes: super::store::HashCache,
}

/// The in-memory state and the lock that protects the file.
struct Inner {
    data: Data,
    dirty: bool,
    /// The locked `<path>.lock`; `None` only while its directory is missing.
    lock: Option<File>,
}

impl EmbeddedRegistry {
    /// Opens (or prepares to create) the registry file at `path`, taking a
    /// shared lock, or an exclusive one when `write` is true, and reads it.
    /// Blocks while another process holds a conflicting lock.
    pub fn open(path: &Path, write: bool) -> Result<Self> {
        let dir = store::parent_dir(path);
        let lock = if dir.is_dir() {
            match store::acquire_lock(path, write) {
                Ok(lock) => Some(lock),
                // A reader of a file in a read-only place (a snapshot in a
                // read-only checkout) cannot make the lock file. Reading
                // unlocked is still safe: writers replace the file by rename,
                // so one read sees one whole version.
                Err(e)
                    if !write
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::PermissionDenied
                                | std::io::ErrorKind::ReadOnlyFilesystem
                        ) =>
                {
                    tracing::debug!(path = %path.display(), error = %e, "reading the registry without a lock");
                    None
                }
                Err(e) => {
                    return Err(RegistryError::Unreachable(format!(
                        "cannot lock {}: {e}",
                        store::lock_path(path).display()
                    )));
                }
            }
        } else {
            None
        };
        let data = store::load(path)?;
        let leaked_before = match write {
            true => store::leaks(&store::serialize(&data))
                .into_iter()
                .map(|l| l.name)
                .collect(),
            false => Vec::new(),
        };
        Ok(EmbeddedRegistry {
            path: path.to_path_buf(),
            write,
            leaked_before,
            inner: Mutex::new(Inner {
                data,
                dirty: false,
                lock,
            }),
            hashes: Default::default(),
        })
    }

    /// Writes `live` as a new embedded-registry file (export --snapshot),
    /// atomically and under the exclusive lock. Resolved sources are kept;
    /// version numbering continues after the highest version.
    pub fn write_snapshot(path: &Path, live: &LiveState) -> Result<()> {
        let data = Data {
            models: live
                .models
                .iter()
                .map(|(n, m)| (n.clone(), StoredModel::from_live(m)))
                .collect(),
            experiments: live.experiments.clone(),
            next_experiment_id: live
                .experiments
                .values()
                .filter_map(|e| e.experiment_id.parse::<u64>().ok())
                .max()
                .map_or(0, |m| m + 1),
            runs: live.runs.clone(),
            logged_models: live.logged_models.clone(),
            resolved_sources: live.resolved_sources.clone(),
            unresolvable_sources: live.unresolvable_sources.clone(),
            freeze: live.freeze.clone(),
            ..Data::default()
        };
        let dir = store::parent_dir(path);
        std::fs::create_dir_all(&dir).map_err(|e| write_error(path, &e))?;
        let bytes = store::serialize(&data);
        refuse_leaks(path, &bytes, &[])?;
        let _lock = store::acquire_lock(path, true).map_err(|e| write_error(path, &e))?;
        store::write_atomic(path, &bytes).map_err(|e| write_error(path, &e))
    }

    /// Adds or replaces a run (a test and seeding helper: gates read run
    /// metrics, which MLflow records but modelsync never writes).
    pub fn insert_run(&self, run: LiveRun) {
        let mut inner = self.lock();
        if inner.data.runs.get(&run.run_id) != Some(&run) {
            inner.data.runs.insert(run.run_id.clone(), run);
            inner.dirty = true;
        }
    }

    /// Adds or replaces a logged model (a test and seeding helper, like
    /// [`EmbeddedRegistry::insert_run`]: MLflow 3 records metrics on logged
    /// models, modelsync only reads them).
    pub fn insert_logged_model(&self, model: LiveLoggedModel) {
        let mut inner = self.lock();
        if inner.data.logged_models.get(&model.model_id) != Some(&model) {
            inner
                .data
                .logged_models
                .insert(model.model_id.clone(), model);
            inner.dirty = true;
        }
    }

    /// Every registered model's tags.
    pub fn model_tags(&self) -> BTreeMap<String, crate::state::SmallMap<String, String>> {
        let inner = self.lock();
        let models = inner.data.models.iter();
        models.map(|(n, m)| (n.clone(), m.to_live().tags)).collect()
    }

    /// The freeze the file holds.
    pub fn freeze(&self) -> Option<crate::state::hold::Freeze> {
        self.lock().data.freeze.clone()
    }

    /// Sets (`Some`) or lifts (`None`) the freeze; the one it replaced.
    /// Written by the next flush.
    pub fn set_freeze(
        &self,
        freeze: Option<crate::state::hold::Freeze>,
    ) -> Option<crate::state::hold::Freeze> {
        let mut inner = self.lock();
        if inner.data.freeze == freeze {
            return freeze;
        }
        inner.dirty = true;
        std::mem::replace(&mut inner.data.freeze, freeze)
    }

    /// The data file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The data stays consistent even if a panic poisoned the mutex: every
        // operation validates before it mutates.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a mutation stamped with the current time; marks dirty on change.
    fn mutate<T>(&self, op: impl FnOnce(&mut Data, i64) -> Result<(T, bool)>) -> Result<T> {
        let mut inner = self.lock();
        let (out, changed) = op(&mut inner.data, now_ms())?;
        inner.dirty |= changed;
        Ok(out)
    }

    fn mutate_unit(&self, op: impl FnOnce(&mut Data, i64) -> Result<bool>) -> Result<()> {
        self.mutate(|d, now| op(d, now).map(|c| ((), c)))
    }

    fn flush_sync(&self) -> Result<()> {
        let mut inner = self.lock();
        if !inner.dirty {
            return Ok(());
        }
        if !self.write {
            return Err(RegistryError::Other(format!(
                "{}: registry was opened read-only; cannot write changes",
                self.path.display()
            )));
        }
        let bytes = store::serialize(&inner.data);
        refuse_leaks(&self.path, &bytes, &self.leaked_before)?;
        if inner.lock.is_none() {
            inner.lock = Some(self.lock_late()?);
        }
        store::write_atomic(&self.path, &bytes).map_err(|e| write_error(&self.path, &e))?;
        inner.dirty = false;
        Ok(())
    }

    /// Creates the missing directory and takes the exclusive lock at the
    /// first flush; refuses if another process created the file meanwhile.
    fn lock_late(&self) -> Result<File> {
        let dir = store::parent_dir(&self.path);
        std::fs::create_dir_all(&dir).map_err(|e| write_error(&self.path, &e))?;
        let lock =
            store::acquire_lock(&self.path, true).map_err(|e| write_error(&self.path, &e))?;
        if self.path.exists() {
            return Err(RegistryError::Other(format!(
                "{}: another process created the registry file while this one ran; run again",
                self.path.display()
            )));
        }
        Ok(lock)
    }
}

/// Refuses to write a registry file that would hold a secret's value it
/// did not hold before (`before`: the names of those it did).
fn refuse_leaks(path: &Path, bytes: &[u8], before: &[String]) -> Result<()> {
    let new = store::leaks(bytes)
        .into_iter()
        .find(|l| !before.contains(&l.name));
    match new {
        Some(leak) => Err(RegistryError::Leak {
            operation: format!("write {}", path.display()),
            leak,
        }),
        None => Ok(()),
    }
}

fn write_error(path: &Path, e: &std::io::Error) -> RegistryError {
    RegistryError::Other(format!("cannot write {}: {e}", path.display()))
}

/// Milliseconds since the Unix epoch (the wall clock: registry timestamps).
fn now_ms() -> i64 {
    crate::clock::wall_ms()
}

impl Registry for EmbeddedRegistry {
    fn uri(&self) -> String {
        format!("file:{}", self.path.display())
    }

    async fn snapshot(&self, req: &SnapshotRequest) -> Result<LiveState> {
        let inner = self.lock();
        let data = &inner.data;
        let all = req.models == super::Scope::All;
        Ok(LiveState {
            models: data
                .models
                .iter()
                .filter(|(name, _)| req.models.contains(name))
                .map(|(name, m)| (name.clone(), m.to_live()))
                .collect(),
            experiments: data
                .experiments
                .iter()
                .filter(|(name, _)| all || req.experiments.contains(*name))
                .map(|(name, e)| (name.clone(), e.clone()))
                .collect(),
            freeze: data.freeze.clone(),
            ..LiveState::default()
        })
    }

    async fn resolve_sources(
        &self,
        sources: &[String],
    ) -> Result<BTreeMap<String, SourceResolution>> {
        let inner = self.lock();
        let data = &inner.data;
        Ok(sources
            .iter()
            .filter_map(|s| {
                let answer = match data.resolved_sources.get(s) {
                    Some(r) => SourceResolution::Resolved(r.clone()),
                    None => SourceResolution::NotFound(data.unresolvable_sources.get(s)?.clone()),
                };
                Some((s.clone(), answer))
            })
            .collect())
    }

    async fn await_registration(&self, model: &str, version: u64) -> Result<Option<LiveVersion>> {
        // Versions registered here are READY at once: nothing to wait for.
        let inner = self.lock();
        Ok(inner
            .data
            .models
            .get(model)
            .and_then(|m| m.versions.get(&version))
            .cloned())
    }

    async fn get_runs(&self, run_ids: &[String]) -> Result<BTreeMap<String, LiveRun>> {
        let inner = self.lock();
        let runs = &inner.data.runs;
        Ok(run_ids
            .iter()
            .filter_map(|id| runs.get(id).map(|r| (id.clone(), r.clone())))
            .collect())
    }

    async fn get_logged_models(
        &self,
        model_ids: &[String],
        _experiment_ids: &[String],
    ) -> Result<BTreeMap<String, LiveLoggedModel>> {
        let inner = self.lock();
        let models = &inner.data.logged_models;
        Ok(model_ids
            .iter()
            .filter_map(|id| models.get(id).map(|m| (id.clone(), m.clone())))
            .collect())
    }

    async fn get_model(&self, name: &str) -> Result<Option<LiveModel>> {
        Ok(self.lock().data.models.get(name).map(StoredModel::to_live))
    }

    async fn create_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.mutate_unit(|d, now| d.create_model(name, description, tags, now))
    }

    async fn update_model_description(&self, name: &str, description: &str) -> Result<()> {
        self.mutate_unit(|d, now| d.update_model_description(name, description, now))
    }

    async fn set_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        self.mutate_unit(|d, now| d.set_model_tag(name, key, value, now))
    }

    async fn delete_model_tag(&self, name: &str, key: &str) -> Result<()> {
        self.mutate_unit(|d, now| d.delete_model_tag(name, key, now))
    }

    async fn create_version(&self, model: &str, new: &NewVersion) -> Result<LiveVersion> {
        self.mutate(|d, now| d.create_version(model, new, now))
    }

    async fn create_version_unseen(&self, model: &str, new: &NewVersion) -> Result<LiveVersion> {
        // Looking for the source in memory costs nothing: keep the check.
        self.create_version(model, new).await
    }

    async fn keep_first_registered(
        &self,
        _model: &str,
        registered: &BTreeMap<String, u64>,
    ) -> Result<BTreeMap<String, u64>> {
        // The file lock excludes other writers: no concurrent duplicate.
        Ok(registered.clone())
    }

    async fn update_version_description(
        &self,
        model: &str,
        version: u64,
        description: &str,
    ) -> Result<()> {
        self.mutate_unit(|d, now| d.update_version_description(model, version, description, now))
    }

    async fn set_version_tag(
        &self,
        model: &str,
        version: u64,
        key: &str,
        value: &str,
    ) -> Result<()> {
        self.mutate_unit(|d, now| d.set_version_tag(model, version, key, value, now))
    }

    async fn delete_version_tag(&self, model: &str, version: u64, key: &str) -> Result<()> {
        self.mutate_unit(|d, now| d.delete_version_tag(model, version, key, now))
    }

    async fn transition_stage(&self, model: &str, version: u64, stage: Stage) -> Result<()> {
        self.mutate_unit(|d, now| d.transition_stage(model, version, stage, now))
    }

    async fn transition_stage_archiving(
        &self,
        model: &str,
        version: u64,
        stage: Stage,
    ) -> Result<bool> {
        self.mutate_unit(|d, now| d.transition_stage_archiving(model, version, stage, now))
            .map(|()| true)
    }

    async fn set_alias(&self, model: &str, alias: &str, version: u64) -> Result<()> {
        self.mutate_unit(|d, now| d.set_alias(model, alias, version, now))
    }

    async fn delete_alias(&self, model: &str, alias: &str) -> Result<()> {
        self.mutate_unit(|d, now| d.delete_alias(model, alias, now))
    }

    async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        self.mutate(|d, _| {
            d.create_experiment(name, artifact_location, tags)
                .map(|id| (id, true))
        })
    }

    async fn set_experiment_tag(&self, experiment_id: &str, key: &str, value: &str) -> Result<()> {
        self.mutate_unit(|d, _| d.set_experiment_tag(experiment_id, key, value))
    }

    async fn flush(&self) -> Result<()> {
        self.flush_sync()
    }

    /// Stages and aliases; no prompt registry, no logged models.
    async fn capabilities(&self) -> Result<crate::state::capabilities::Capabilities> {
        Ok(crate::state::capabilities::Capabilities::embedded())
    }

    /// The version's source: the embedded registry stores it as written.
    async fn locate_version(&self, _model: &str, version: &LiveVersion) -> Result<String> {
        Ok(version.source.clone())
    }

    async fn version_tree(
        &self,
        _model: &str,
        version: &LiveVersion,
    ) -> Result<std::result::Result<ArtifactTree, String>> {
        Ok(Err(artifacts::not_in_a_pass(&version.source)))
    }

    async fn source_tree(
        &self,
        declared: &str,
        resolved: Option<&ResolvedSource>,
    ) -> Result<std::result::Result<ArtifactTree, String>> {
        let location = resolved
            .and_then(|r| r.location.as_deref())
            .unwrap_or(declared);
        Ok(Err(artifacts::not_in_a_pass(location)))
    }

    async fn resolve_version(&self, _model: &str, version: &LiveVersion) -> Result<ArtifactTree> {
        artifacts::read(&self.hashes, &version.source)
            .await
            .map_err(RegistryError::Other)
    }
}
