//! Sources of manifests: folders on disk and, for the daemon, git branches.
//!
//! This is where manifest files are found and read; `manifest/` only ever
//! sees their bytes. Errors name the path.

pub mod config;
pub mod folder;
pub mod git;
pub mod outputs;
pub mod signature;
pub mod transport;
pub mod tree;

pub use folder::read_paths;

use std::collections::BTreeMap;

/// Why manifests could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The message names the path and the OS error, once (the OS error is
    /// deliberately not also a `source()`, which `{:#}` would print again).
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{0}: no such file or directory")]
    Missing(String),
    /// A manifest found under a folder is a symbolic link leading out of
    /// it (`crate::manifest::paths`).
    #[error("{path}: {escape}")]
    Outside {
        path: String,
        escape: crate::manifest::paths::Escape,
    },
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
    /// The manifests roots (`crate::manifest::paths`): the watched folders,
    /// or `--path` in the commit.
    pub roots: Vec<String>,
    /// Where the paths the manifests name are read: the commit's tree
    /// under `--path` (git), the host's folders (folders).
    pub tree: crate::manifest::paths::Tree,
    /// Folders only: the template and approval files under the roots, by
    /// path (see [`others`]), read so that an edit of one is a change of
    /// the source. A commit's are in `tree`.
    pub others: BTreeMap<String, String>,
}

/// Extensions of the files a watched folder's daemon treats as templates
/// (reads into [`Fetched::others`] and reacts to): not `.json`, so that an
/// embedded registry file kept beside the manifests is never one.
pub const TEMPLATE_EXTENSIONS: [&str; 10] = [
    "txt", "md", "prompt", "j2", "jinja", "jinja2", "tmpl", "tpl", "mustache", "hbs",
];

/// True when `path` has one of [`TEMPLATE_EXTENSIONS`].
pub fn is_template_file(path: &std::path::Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| TEMPLATE_EXTENSIONS.contains(&e))
}

/// True for the files besides manifests a watched folder's daemon reads
/// into [`Fetched::others`] and reacts to: templates, and signed approval
/// files (`*.approval`).
pub fn is_other_file(path: &std::path::Path) -> bool {
    is_template_file(path)
        || path
            .extension()
            .is_some_and(|e| e == crate::manifest::approval::EXTENSION)
}

/// The largest file kept in [`Fetched::others`] (MLflow keeps a template in
/// a tag, which holds far less).
pub const MAX_OTHER: usize = 1024 * 1024;

/// Keeps `contents` as one of [`Fetched::others`] when it is text and not
/// too large; binary and oversized files are left out (a `templateFile`
/// naming one is then reported as unreadable).
pub fn others(files: impl IntoIterator<Item = (String, Vec<u8>)>) -> BTreeMap<String, String> {
    files
        .into_iter()
        .filter(|(_, c)| c.len() <= MAX_OTHER)
        .filter_map(|(p, c)| String::from_utf8(c).ok().map(|t| (p, t)))
        .collect()
}
