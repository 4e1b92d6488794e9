//! The registry operations on the in-memory [`Data`], with MLflow's
//! semantics (`docs/mlflow-rest.md`). Pure: the caller passes the time and
//! marks the registry dirty when an operation reports a change. An operation that
//! would store what is already there reports no change and touches no
//! timestamp, so a no-op apply leaves the file byte-identical.

use std::collections::BTreeMap;

use super::store::{Data, StoredModel};
use super::validate;
use crate::registry::{NewVersion, RegistryError, Result};
use crate::state::tags::SOURCE as SOURCE_TAG;
use crate::state::{LiveExperiment, LiveVersion, Stage, VersionStatus};

/// Whether an operation changed the data.
pub type Changed = bool;

impl Data {
    /// The model named `name`, or NotFound.
    fn model_mut(&mut self, name: &str) -> Result<&mut StoredModel> {
        self.models
            .get_mut(name)
            .ok_or_else(|| RegistryError::NotFound(format!("registered model {name:?}")))
    }

    /// The version, or NotFound; also returns its model.
    fn version_mut(&mut self, model: &str, version: u64) -> Result<(&mut StoredModel, u64)> {
        let m = self.model_mut(model)?;
        if !m.versions.contains_key(&version) {
            return Err(RegistryError::NotFound(format!(
                "version {version} of model {model:?}"
            )));
        }
        Ok((m, version))
    }

    pub fn create_model(
        &mut self,
        name: &str,
        description: Option<&str>,
        tags: &BTreeMap<String, String>,
        now: i64,
    ) -> Result<Changed> {
        validate::model_name(name)?;
        validate::description(description.unwrap_or(""))?;
        for (k, v) in tags {
            validate::tag(k, v)?;
        }
        if self.models.contains_key(name) {
            return Err(RegistryError::AlreadyExists(format!(
                "registered model {name:?}"
            )));
        }
        let model = StoredModel {
            name: name.to_string(),
            description: description.unwrap_or("").to_string(),
            tags: tags.clone(),
            aliases: BTreeMap::new(),
            versions: BTreeMap::new(),
            next_version: 1,
            creation_timestamp: now,
            last_updated_timestamp: now,
        };
        self.models.insert(name.to_string(), model);
        Ok(true)
    }

    pub fn update_model_description(
        &mut self,
        name: &str,
        description: &str,
        now: i64,
    ) -> Result<Changed> {
        validate::description(description)?;
        let m = self.model_mut(name)?;
        Ok(update(
            &mut m.description,
            description,
            &mut m.last_updated_timestamp,
            now,
        ))
    }

    pub fn set_model_tag(
        &mut self,
        name: &str,
        key: &str,
        value: &str,
        now: i64,
    ) -> Result<Changed> {
        validate::tag(key, value)?;
        let m = self.model_mut(name)?;
        if m.tags.get(key).map(String::as_str) == Some(value) {
            return Ok(false);
        }
        m.tags.insert(key.to_string(), value.to_string());
        m.last_updated_timestamp = now;
        Ok(true)
    }

    pub fn delete_model_tag(&mut self, name: &str, key: &str, now: i64) -> Result<Changed> {
        validate::tag_key(key)?;
        let m = self.model_mut(name)?;
        let removed = m.tags.remove(key).is_some();
        if removed {
            m.last_updated_timestamp = now;
        }
        Ok(removed)
    }

    /// Returns the version the declared source already is
    /// ([`NewVersion::declared`]: by the `modelsync.source` tag, else by
    /// its stored source), if one exists; otherwise registers a new one
    /// numbered `next_version`.
    pub fn create_version(
        &mut self,
        model: &str,
        new: &NewVersion,
        now: i64,
    ) -> Result<(LiveVersion, Changed)> {
        validate::model_name(model)?;
        validate::source(&new.source)?;
        validate::description(new.description.as_deref().unwrap_or(""))?;
        validate::tag(SOURCE_TAG, &new.declared_source)?;
        for (k, v) in &new.tags {
            validate::tag(k, v)?;
        }
        let m = self.model_mut(model)?;
        if let Some(v) = new.declared().find_in(m.versions.values()) {
            return Ok((v.clone(), false));
        }
        let number = m
            .next_version
            .max(m.versions.keys().next_back().map_or(1, |n| n + 1));
        let version = LiveVersion {
            version: number,
            stage: Stage::None,
            source: new.source.clone(),
            run_id: new.run_id.clone().unwrap_or_default(),
            model_id: new.model_id.clone().unwrap_or_default(),
            status: VersionStatus::Ready,
            status_message: String::new(),
            description: new.description.clone().unwrap_or_default(),
            tags: new.tags_with_source(),
            creation_timestamp: now,
            last_updated_timestamp: now,
        };
        m.versions.insert(number, version.clone());
        m.next_version = number + 1;
        m.last_updated_timestamp = now;
        Ok((version, true))
    }

    pub fn update_version_description(
        &mut self,
        model: &str,
        version: u64,
        text: &str,
        now: i64,
    ) -> Result<Changed> {
        validate::description(text)?;
        let (m, n) = self.version_mut(model, version)?;
        let v = m
            .versions
            .get_mut(&n)
            .expect("version_mut checked the version exists");
        let changed = update(&mut v.description, text, &mut v.last_updated_timestamp, now);
        if changed {
            m.last_updated_timestamp = now;
        }
        Ok(changed)
    }

    pub fn set_version_tag(
        &mut self,
        model: &str,
        version: u64,
        key: &str,
        value: &str,
        now: i64,
    ) -> Result<Changed> {
        validate::tag(key, value)?;
        let (m, n) = self.version_mut(model, version)?;
        let v = m
            .versions
            .get_mut(&n)
            .expect("version_mut checked the version exists");
        if v.tags.get(key).map(String::as_str) == Some(value) {
            return Ok(false);
        }
        v.tags.insert(key.to_string(), value.to_string());
        v.last_updated_timestamp = now;
        m.last_updated_timestamp = now;
        Ok(true)
    }

    pub fn delete_version_tag(
        &mut self,
        model: &str,
        version: u64,
        key: &str,
        now: i64,
    ) -> Result<Changed> {
        validate::tag_key(key)?;
        let (m, n) = self.version_mut(model, version)?;
        let v = m
            .versions
            .get_mut(&n)
            .expect("version_mut checked the version exists");
        let removed = v.tags.remove(key).is_some();
        if removed {
            v.last_updated_timestamp = now;
            m.last_updated_timestamp = now;
        }
        Ok(removed)
    }

    /// Moves this one version into `stage`; other versions keep theirs.
    pub fn transition_stage(
        &mut self,
        model: &str,
        version: u64,
        stage: Stage,
        now: i64,
    ) -> Result<Changed> {
        let (m, n) = self.version_mut(model, version)?;
        let v = m
            .versions
            .get_mut(&n)
            .expect("version_mut checked the version exists");
        if v.stage == stage {
            return Ok(false);
        }
        v.stage = stage;
        v.last_updated_timestamp = now;
        m.last_updated_timestamp = now;
        Ok(true)
    }

    /// Moves `version` into `stage` and archives the model's other versions
    /// in that stage, as MLflow's `archive_existing_versions=true` does
    /// (only for Staging and Production).
    pub fn transition_stage_archiving(
        &mut self,
        model: &str,
        version: u64,
        stage: Stage,
        now: i64,
    ) -> Result<Changed> {
        if !matches!(stage, Stage::Staging | Stage::Production) {
            return Err(RegistryError::Invalid(format!(
                "cannot archive existing versions: {stage} is not Staging or Production"
            )));
        }
        let (m, n) = self.version_mut(model, version)?;
        let mut changed = false;
        for v in m.versions.values_mut() {
            if v.version != n && v.stage == stage {
                v.stage = Stage::Archived;
                v.last_updated_timestamp = now;
                changed = true;
            }
        }
        if changed {
            m.last_updated_timestamp = now;
        }
        Ok(self.transition_stage(model, version, stage, now)? || changed)
    }

    /// Points `alias` at `version` (an upsert).
    pub fn set_alias(
        &mut self,
        model: &str,
        alias: &str,
        version: u64,
        now: i64,
    ) -> Result<Changed> {
        validate::alias_for_set(alias)?;
        let (m, n) = self.version_mut(model, version)?;
        if m.aliases.get(alias) == Some(&n) {
            return Ok(false);
        }
        m.aliases.insert(alias.to_string(), n);
        m.last_updated_timestamp = now;
        Ok(true)
    }

    /// Removes `alias`; a missing alias is fine, a missing model is not.
    pub fn delete_alias(&mut self, model: &str, alias: &str, now: i64) -> Result<Changed> {
        validate::alias_format(alias)?;
        let m = self.model_mut(model)?;
        let removed = m.aliases.remove(alias).is_some();
        if removed {
            m.last_updated_timestamp = now;
        }
        Ok(removed)
    }

    /// Creates an experiment with the next id; returns the id.
    pub fn create_experiment(
        &mut self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        validate::experiment_name(name)?;
        for (k, v) in tags {
            validate::experiment_tag(k, v)?;
        }
        if self.experiments.contains_key(name) {
            return Err(RegistryError::AlreadyExists(format!("experiment {name:?}")));
        }
        let mut next = self.next_experiment_id;
        while self
            .experiments
            .values()
            .any(|e| e.experiment_id == next.to_string())
        {
            next += 1;
        }
        let id = next.to_string();
        let location =
            artifact_location.map_or_else(|| format!("file:./mlruns/{id}"), str::to_string);
        self.experiments.insert(
            name.to_string(),
            LiveExperiment {
                experiment_id: id.clone(),
                name: name.to_string(),
                artifact_location: location,
                tags: tags.clone(),
            },
        );
        self.next_experiment_id = next + 1;
        Ok(id)
    }

    pub fn set_experiment_tag(
        &mut self,
        experiment_id: &str,
        key: &str,
        value: &str,
    ) -> Result<Changed> {
        validate::experiment_tag(key, value)?;
        let exp = self
            .experiments
            .values_mut()
            .find(|e| e.experiment_id == experiment_id)
            .ok_or_else(|| {
                RegistryError::NotFound(format!("experiment with id {experiment_id:?}"))
            })?;
        if exp.tags.get(key).map(String::as_str) == Some(value) {
            return Ok(false);
        }
        exp.tags.insert(key.to_string(), value.to_string());
        Ok(true)
    }
}

/// Sets `field` to `value` and bumps `stamp` when they differ.
fn update(field: &mut String, value: &str, stamp: &mut i64, now: i64) -> Changed {
    if field == value {
        return false;
    }
    *field = value.to_string();
    *stamp = now;
    true
}
