//! The embedded registry's file: its serde types, parsing with clear errors,
//! deterministic serialization, atomic replacement and the sibling lock file.
//!
//! This module knows the bytes on disk; it knows nothing of MLflow's rules
//! (those live in `ops` and `validate`).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::registry::{RegistryError, Result};
use crate::state::{
    LiveExperiment, LiveLoggedModel, LiveModel, LiveRun, LiveVersion, ResolvedSource,
};

/// The value of the top-level `format` field this code reads and writes.
pub const FORMAT: &str = "modelsync-embedded/v1";

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Data {
    pub format: String,
    /// Registered models by name.
    #[serde(default)]
    pub models: BTreeMap<String, StoredModel>,
    /// Experiments by name.
    #[serde(default)]
    pub experiments: BTreeMap<String, LiveExperiment>,
    /// The id the next experiment gets.
    #[serde(default)]
    pub next_experiment_id: u64,
    /// Runs by id, with their latest metric values.
    #[serde(default)]
    pub runs: BTreeMap<String, LiveRun>,
    /// MLflow 3 logged models by id, with their metrics (kept from an
    /// exported snapshot, or seeded; usually empty).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub logged_models: BTreeMap<String, LiveLoggedModel>,
    /// Declared source -> what a registry resolved it to (kept from an
    /// exported snapshot so offline plans match; usually empty).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resolved_sources: BTreeMap<String, ResolvedSource>,
    /// Declared source -> why a registry cannot register it (kept from an
    /// exported snapshot, like `resolved_sources`; usually empty).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unresolvable_sources: BTreeMap<String, String>,
    /// The freeze (`modelsync freeze`), while one stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze: Option<crate::state::hold::Freeze>,
}

impl Default for Data {
    fn default() -> Self {
        Data {
            format: FORMAT.to_string(),
            models: BTreeMap::new(),
            experiments: BTreeMap::new(),
            next_experiment_id: 0,
            runs: BTreeMap::new(),
            logged_models: BTreeMap::new(),
            resolved_sources: BTreeMap::new(),
            unresolvable_sources: BTreeMap::new(),
            freeze: None,
        }
    }
}

/// A registered model as stored: [`LiveModel`] plus the next version number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredModel {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Alias -> version number.
    #[serde(default)]
    pub aliases: BTreeMap<String, u64>,
    /// Version number -> version.
    #[serde(default)]
    pub versions: BTreeMap<u64, LiveVersion>,
    /// The number the next version gets; never decreases, so numbers are
    /// never reused.
    pub next_version: u64,
    #[serde(default)]
    pub creation_timestamp: i64,
    #[serde(default)]
    pub last_updated_timestamp: i64,
}

impl StoredModel {
    /// The model as the rest of modelsync sees it.
    pub fn to_live(&self) -> LiveModel {
        LiveModel {
            name: self.name.clone(),
            description: self.description.clone(),
            tags: self
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            aliases: self.aliases.iter().map(|(a, v)| (a.clone(), *v)).collect(),
            versions: self.versions.clone(),
            creation_timestamp: self.creation_timestamp,
            last_updated_timestamp: self.last_updated_timestamp,
        }
    }

    /// Stores a live model; `next_version` is one past the highest number.
    pub fn from_live(model: &LiveModel) -> StoredModel {
        let max = model.versions.keys().next_back().copied().unwrap_or(0);
        StoredModel {
            name: model.name.clone(),
            description: model.description.clone(),
            tags: model
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            aliases: model.aliases.iter().map(|(a, v)| (a.clone(), *v)).collect(),
            versions: model.versions.clone(),
            next_version: max + 1,
            creation_timestamp: model.creation_timestamp,
            last_updated_timestamp: model.last_updated_timestamp,
        }
    }
}

/// Only the `format` field, read before the rest so an unknown format is
/// reported as such rather than as a missing field.
#[derive(Deserialize)]
struct Header {
    format: Option<serde_json::Value>,
}

/// Parses the file's bytes. Errors name the file, and the line and column
/// for malformed JSON.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Data> {
    let shown = path.display();
    let at = |e: &serde_json::Error| format!("{shown}:{}:{}", e.line(), e.column());
    let header: Header = serde_json::from_slice(bytes).map_err(|e| {
        RegistryError::Other(format!("{}: corrupt embedded registry file: {e}", at(&e)))
    })?;
    match header.format {
        Some(serde_json::Value::String(f)) if f == FORMAT => {}
        Some(other) => {
            return Err(RegistryError::Other(format!(
                "{shown}: unknown embedded registry format {other}: expected \"{FORMAT}\""
            )));
        }
        None => {
            return Err(RegistryError::Other(format!(
                "{shown}: not an embedded registry file: no \"format\" field (expected \"{FORMAT}\")"
            )));
        }
    }
    let data: Data = serde_json::from_slice(bytes).map_err(|e| {
        RegistryError::Other(format!("{}: invalid embedded registry file: {e}", at(&e)))
    })?;
    check_consistency(path, &data)?;
    Ok(data)
}

/// Rejects files whose keys disagree with their contents, or whose
/// `next_version` would reuse a number.
fn check_consistency(path: &Path, data: &Data) -> Result<()> {
    let bad = |msg: String| {
        RegistryError::Other(format!(
            "{}: invalid embedded registry file: {msg}",
            path.display()
        ))
    };
    for (name, model) in &data.models {
        if &model.name != name {
            return Err(bad(format!("model {name:?} has name {:?}", model.name)));
        }
        for (n, v) in &model.versions {
            if v.version != *n {
                return Err(bad(format!(
                    "model {name:?}: version {n} has number {}",
                    v.version
                )));
            }
            if *n >= model.next_version {
                return Err(bad(format!(
                    "model {name:?}: next_version {} is not above version {n}",
                    model.next_version
                )));
            }
        }
        for (alias, n) in &model.aliases {
            if !model.versions.contains_key(n) {
                return Err(bad(format!(
                    "model {name:?}: alias {alias:?} points at missing version {n}"
                )));
            }
        }
    }
    for (name, exp) in &data.experiments {
        if &exp.name != name {
            return Err(bad(format!("experiment {name:?} has name {:?}", exp.name)));
        }
    }
    Ok(())
}

/// The secrets (`crate::secret`) a serialized registry file holds.
pub fn leaks(bytes: &[u8]) -> Vec<crate::secret::Leak> {
    crate::secret::leaks(&String::from_utf8_lossy(bytes))
}

/// Serializes deterministically: pretty JSON, sorted keys, final newline.
pub fn serialize(data: &Data) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(data).expect("registry data always serializes to JSON");
    out.push(b'\n');
    out
}

/// Reads and parses the file; a missing file is an empty registry.
pub fn load(path: &Path) -> Result<Data> {
    match fs::read(path) {
        Ok(bytes) => parse(path, &bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Data::default()),
        Err(e) => Err(RegistryError::Unreachable(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// Replaces `path` with `bytes` atomically: temp file in the same
/// directory, fsync, rename, fsync of the directory. Creates the parent
/// directories first.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(&dir)?;
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "registry path has no file name",
        )
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The sibling lock file: `<path>.lock`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Opens (creating it if needed) and locks `<path>.lock`, waiting for other
/// holders; exclusive when `exclusive`, else shared.
pub fn acquire_lock(path: &Path, exclusive: bool) -> io::Result<File> {
    let lock = lock_path(path);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)?;
    let tried = if exclusive {
        file.try_lock()
    } else {
        file.try_lock_shared()
    };
    match tried {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            tracing::info!(lock = %lock.display(), "waiting for another modelsync process to release the registry lock");
            if exclusive {
                file.lock()?
            } else {
                file.lock_shared()?
            }
        }
        Err(fs::TryLockError::Error(e)) => return Err(e),
    }
    Ok(file)
}
