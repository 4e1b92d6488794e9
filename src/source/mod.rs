//! Sources of manifests: folders on disk and, for the daemon, git branches.
//!
//! This is where manifest files are found and read; `manifest/` only ever
//! sees their bytes. Errors name the path.

pub mod config;
pub mod folder;
pub mod git;
pub mod signature;

pub use folder::read_paths;

/// Why manifests could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The message names the path and the OS error, once (the OS error is
    /// deliberately not also a `source()`, which `{:#}` would print again).
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{0}: no such file or directory")]
    Missing(String),
    /// A symbolic link whose target does not exist.
    #[error("{path}: broken symbolic link: its target {target} does not exist")]
    BrokenLink { path: String, target: String },
    #[error(transparent)]
    Git(#[from] git::GitError),
    /// `modelsync.toml` is invalid (the message names file, line, column).
    #[error("{0}")]
    Config(String),
}

/// Manifest files read from a source, and the revision they came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    pub files: Vec<crate::manifest::SourceFile>,
    /// The git commit, when known.
    pub revision: Option<String>,
    /// `modelsync.toml` beside the manifests (in the folder, or in the
    /// commit's tree).
    pub config: config::Config,
}
