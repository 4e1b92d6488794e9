//! Copies between registries (`from:`) as the rest of modelsync sees
//! them: [`Sources`], the other registries `modelsync.toml` names, opened,
//! which read the version a `from:` names and open its artifact store; and
//! [`CopyTarget`] (`Registry::copy_target`), the registry a copy goes into.
//! Both are MLflow servers (only MLflow holds runs and artifact stores);
//! the steps are `mlflow/copy.rs`'s and the stores `store.rs`'s.

use std::collections::BTreeMap;
use std::sync::Arc;

pub use super::mlflow::copy::{CopyRun, CopyTarget};
pub use super::store::{ByteStream, Store, hash_stream};

use super::mlflow::{MlflowConfig, MlflowRegistry, copy};
use super::{RegistryError, Result};
use crate::manifest::FromRef;
use crate::state::CopySource;

/// The other registries `from:` names, opened, by name. Opaque: callers
/// read through it ([`Sources::read`]) and stream from it
/// ([`Sources::store`]).
#[derive(Clone, Default)]
pub struct Sources(Arc<BTreeMap<String, MlflowRegistry>>);

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, r)| (k, r.display().to_string())))
            .finish()
    }
}

impl Sources {
    /// Reads the version `from` names in its registry. `Ok(Err)` for what
    /// makes it uncopyable (the registry is not open; no such model,
    /// alias, version or stage holder; no files); `Err` when the registry
    /// cannot be read at all (unreachable: exit 3), the error naming it.
    pub async fn read(&self, from: &FromRef) -> Result<std::result::Result<CopySource, String>> {
        let Some(src) = self.0.get(&from.registry) else {
            return Ok(Err(format!("registry {:?} is not open", from.registry)));
        };
        copy::read_source(src, &from.registry, from)
            .await
            .map_err(|e| {
                e.at(&format!(
                    "source registry {} ({})",
                    from.registry,
                    src.display()
                ))
            })
    }

    /// The artifact store at `uri` in the registry `name`; `whose` names it
    /// in messages.
    pub fn store(&self, name: &str, uri: &str, whose: &str) -> Result<Store<'_>> {
        let src = self
            .0
            .get(name)
            .ok_or_else(|| RegistryError::Invalid(format!("registry {name} is not open")))?;
        Store::open(uri, Some(src), whose)
    }
}

/// Opens the registries of `[registries.NAME]` (name -> URI). Credentials
/// come from `MODELSYNC_REGISTRY_<NAME>_TOKEN` or `_USERNAME`/`_PASSWORD`
/// (NAME upper-cased, `-` as `_`); TLS and retry settings as for the main
/// registry (`MLFLOW_TRACKING_INSECURE_TLS`, `…_SERVER_CERT_PATH`, …).
pub fn open_sources(registries: &BTreeMap<String, String>) -> Result<Sources> {
    let mut out = BTreeMap::new();
    for (name, uri) in registries {
        let prefix = format!(
            "MODELSYNC_REGISTRY_{}_",
            name.to_ascii_uppercase().replace('-', "_")
        );
        let config = MlflowConfig::from_lookup(|k| {
            let own = match k {
                "MLFLOW_TRACKING_TOKEN" => Some("TOKEN"),
                "MLFLOW_TRACKING_USERNAME" => Some("USERNAME"),
                "MLFLOW_TRACKING_PASSWORD" => Some("PASSWORD"),
                _ => None,
            };
            match own {
                Some(suffix) => std::env::var(format!("{prefix}{suffix}")).ok(),
                None => std::env::var(k).ok(),
            }
        })
        .map_err(|e| RegistryError::Invalid(format!("registry {name}: {e}")))?;
        let reg = MlflowRegistry::new(uri, config)
            .map_err(|e| RegistryError::Invalid(format!("registry {name}: {e}")))?;
        out.insert(name.clone(), reg);
    }
    Ok(Sources(Arc::new(out)))
}
