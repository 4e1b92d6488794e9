//! The embedded registry in a temporary directory, for integration tests.

use std::path::{Path, PathBuf};

use modelsync::registry::embedded::EmbeddedRegistry;

/// An embedded registry (opened for writing) whose file lives in a
/// temporary directory removed on drop.
pub struct TempRegistry {
    pub registry: EmbeddedRegistry,
    path: PathBuf,
    // Dropped last: the registry (and its lock) goes before the directory.
    _dir: tempfile::TempDir,
}

impl TempRegistry {
    /// A fresh, empty registry at `<tempdir>/registry.json` (not yet written).
    pub fn new() -> TempRegistry {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("registry.json");
        let registry = EmbeddedRegistry::open(&path, true).expect("open a fresh embedded registry");
        TempRegistry {
            registry,
            path,
            _dir: dir,
        }
    }

    /// The registry file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `file:` URI for `--registry`.
    pub fn uri(&self) -> String {
        format!("file:{}", self.path.display())
    }
}
