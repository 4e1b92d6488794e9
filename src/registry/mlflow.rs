//! MLflow over REST.
//! STUB: to be implemented.
#![allow(unused)]

use std::collections::BTreeMap;

use super::{NewVersion, Registry, RegistryError, Result, SnapshotRequest};
use crate::state::{LiveModel, LiveRun, LiveState, LiveVersion, ResolvedSource, Stage};

/// Connection settings, from MLflow's environment variables.
#[derive(Clone, Default)]
pub struct MlflowConfig {}

impl MlflowConfig {
    /// Reads `MLFLOW_TRACKING_TOKEN`, `MLFLOW_TRACKING_USERNAME`/`PASSWORD`,
    /// `MLFLOW_TRACKING_INSECURE_TLS`, `MLFLOW_TRACKING_SERVER_CERT_PATH`,
    /// `MLFLOW_TRACKING_CLIENT_CERT_PATH`.
    pub fn from_env() -> Result<Self> {
        Ok(MlflowConfig {})
    }
}

/// An MLflow tracking server.
pub struct MlflowRegistry {}

impl MlflowRegistry {
    pub fn new(base_url: &str, config: MlflowConfig) -> Result<Self> {
        todo!()
    }
}

impl Registry for MlflowRegistry {
    fn uri(&self) -> String {
        todo!()
    }
    async fn snapshot(&self, _req: &SnapshotRequest) -> Result<LiveState> {
        todo!()
    }
    async fn resolve_sources(
        &self,
        _sources: &[String],
    ) -> Result<BTreeMap<String, ResolvedSource>> {
        todo!()
    }
    async fn get_runs(&self, _run_ids: &[String]) -> Result<BTreeMap<String, LiveRun>> {
        todo!()
    }
    async fn get_model(&self, _name: &str) -> Result<Option<LiveModel>> {
        todo!()
    }
    async fn create_model(
        &self,
        _name: &str,
        _description: Option<&str>,
        _tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        todo!()
    }
    async fn update_model_description(&self, _name: &str, _description: &str) -> Result<()> {
        todo!()
    }
    async fn set_model_tag(&self, _name: &str, _key: &str, _value: &str) -> Result<()> {
        todo!()
    }
    async fn delete_model_tag(&self, _name: &str, _key: &str) -> Result<()> {
        todo!()
    }
    async fn create_version(&self, _model: &str, _new: &NewVersion) -> Result<LiveVersion> {
        todo!()
    }
    async fn update_version_description(
        &self,
        _model: &str,
        _version: u64,
        _description: &str,
    ) -> Result<()> {
        todo!()
    }
    async fn set_version_tag(
        &self,
        _model: &str,
        _version: u64,
        _key: &str,
        _value: &str,
    ) -> Result<()> {
        todo!()
    }
    async fn delete_version_tag(&self, _model: &str, _version: u64, _key: &str) -> Result<()> {
        todo!()
    }
    async fn transition_stage(&self, _model: &str, _version: u64, _stage: Stage) -> Result<()> {
        todo!()
    }
    async fn set_alias(&self, _model: &str, _alias: &str, _version: u64) -> Result<()> {
        todo!()
    }
    async fn delete_alias(&self, _model: &str, _alias: &str) -> Result<()> {
        todo!()
    }
    async fn create_experiment(
        &self,
        _name: &str,
        _artifact_location: Option<&str>,
        _tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        todo!()
    }
    async fn set_experiment_tag(
        &self,
        _experiment_id: &str,
        _key: &str,
        _value: &str,
    ) -> Result<()> {
        todo!()
    }
    async fn flush(&self) -> Result<()> {
        todo!()
    }
}
