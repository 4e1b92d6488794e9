//! Manifests from a git branch (git2), for the daemon; and
//! (`git/changes.rs`) what changed under the manifests since a revision,
//! for `--changed-since`.
//!
//! The repository is cloned once, bare, into a cache folder; each
//! [`GitSource::fetch`] fetches the one branch (depth 1 on the first fetch
//! where the transport allows it, incremental afterwards) and reads the
//! manifests straight from the tree of the fetched commit under `path`; no
//! working copy is written. A force-push is just a new head (logged); a
//! deleted branch is an error, never a panic.
//!
//! Credentials come from the environment: `MODELSYNC_GIT_TOKEN` for https
//! (user `MODELSYNC_GIT_USERNAME`, default `x-access-token`). libgit2 is
//! built without SSH ([`super::transport::unsupported_transport`] refuses
//! such URLs at
//! start); the ssh branch of the credential callback serves a build that
//! enables git2's `ssh` feature.

use std::path::{Path, PathBuf};

use git2::{
    AutotagOption, Cred, CredentialType, FetchOptions, FetchPrune, ObjectType, Oid,
    RemoteCallbacks, Repository, TreeWalkMode, TreeWalkResult,
};
use sha2::{Digest, Sha256};

mod changes;
mod verified;

pub use changes::changed_since;
pub use verified::VERIFIED_REF;

use super::Fetched;
use super::config::{Config, FILE_NAME};
use crate::manifest::SourceFile;
use crate::manifest::paths::{Snapshot, Tree};
use crate::secret::Secret;
use crate::uri::without_userinfo;

/// Same limit as folders: `manifest/` reports oversized files.
const MAX_READ: usize = 4 * 1024 * 1024 + 1;

/// Why a git fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git {url}: {message}")]
    Git { url: String, message: String },
    #[error("git {url}: branch {branch:?} does not exist (deleted?)")]
    BranchMissing { url: String, branch: String },
    #[error("git {url}: path {path:?} does not exist in {branch}@{revision}")]
    PathMissing {
        url: String,
        branch: String,
        path: String,
        revision: String,
    },
    #[error("git cache {path}: {message}")]
    Cache { path: String, message: String },
    /// `modelsync.toml` in the commit is invalid (file:line:col: message).
    #[error("{message} (at {revision})")]
    Config { message: String, revision: String },
    /// `--changed-since REV` could not be worked out.
    #[error("--changed-since {rev}: {message}")]
    ChangedSince { rev: String, message: String },
}

/// Where and what to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitOptions {
    pub url: String,
    pub branch: String,
    /// Folder inside the repository (`""` or `"."` for the root).
    pub path: String,
    pub cache_dir: PathBuf,
}

/// Who made a commit and when (for `/status`, the page, notifications).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommitInfo {
    pub id: String,
    /// `Name <email>`.
    pub author: String,
    /// RFC 3339 (the author time).
    pub time: String,
    /// The first line of the message.
    pub summary: String,
}

/// A commit's signature (ASCII armoured) and the bytes it signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSignature {
    pub signature: Vec<u8>,
    pub signed_data: Vec<u8>,
}

/// A git branch as a source of manifests.
pub struct GitSource {
    opts: GitOptions,
    repo: Option<Repository>,
    head: Option<Oid>,
}

impl GitSource {
    pub fn new(opts: GitOptions) -> GitSource {
        GitSource {
            opts,
            repo: None,
            head: None,
        }
    }

    /// `URL@branch:path`, for status and logs.
    pub fn describe(&self) -> String {
        format!(
            "{}@{}:{}",
            without_userinfo(&self.opts.url),
            self.opts.branch,
            self.path()
        )
    }

    /// The default cache folder of `url`: `$XDG_CACHE_HOME` (else
    /// `~/.cache`) `/modelsync/git/<name>-<hash of the URL>`.
    pub fn default_cache_dir(url: &str) -> PathBuf {
        cache_dir("git", url)
    }

    /// Fetches the branch and reads the manifests of its head commit.
    pub fn fetch(&mut self) -> Result<Fetched, GitError> {
        let first = self.head.is_none();
        let previous = self.head;
        let url = self.opts.url.clone();
        let branch = self.opts.branch.clone();
        let path = self.opts.path.clone();
        let git = |e: git2::Error| GitError::Git {
            url: without_userinfo(&url),
            message: e.message().to_string(),
        };
        let repo = self.repo()?;
        let tracking = format!("refs/remotes/origin/{branch}");
        let shallow = first && repo.find_reference(&tracking).is_err();
        let advertised = fetch_branch(repo, &branch, shallow).map_err(git)?;
        if !advertised {
            return Err(GitError::BranchMissing {
                url: without_userinfo(&url),
                branch,
            });
        }
        let commit = repo
            .find_reference(&tracking)
            .and_then(|r| r.peel_to_commit())
            .map_err(|_| GitError::BranchMissing {
                url: without_userinfo(&url),
                branch: branch.clone(),
            })?;
        let id = commit.id();
        if let Some(old) = previous.filter(|old| *old != id) {
            if repo.graph_descendant_of(id, old).unwrap_or(false) {
                tracing::info!(from = %old, to = %id, branch, "new commit on the branch");
            } else {
                tracing::warn!(from = %old, to = %id, branch, "branch head moved to a commit that does not descend from the previous one (force-push?)");
            }
        }
        let (files, mut snapshot) = read_tree(repo, &commit, &path).map_err(|e| match e {
            TreeError::Missing => GitError::PathMissing {
                url: without_userinfo(&url),
                branch: branch.clone(),
                path: path.clone(),
                revision: id.to_string(),
            },
            TreeError::Git(e) => git(e),
        })?;
        let config = read_config(repo, &commit, &path).map_err(|e| match e {
            ConfigError::Git(e) => git(e),
            ConfigError::Invalid(message) => GitError::Config {
                message,
                revision: id.to_string(),
            },
        })?;
        drop(commit);
        self.head = Some(id);
        snapshot.name = format!("commit {id} under --path {}", self.path());
        Ok(Fetched {
            files,
            revision: Some(id.to_string()),
            config,
            roots: vec![root_of(&path)],
            tree: Tree::Snapshot(snapshot),
            others: Default::default(),
        })
    }

    /// Author, time and summary of a fetched commit.
    pub fn commit_info(&self, id: &str) -> Option<CommitInfo> {
        let repo = self.repo.as_ref()?;
        let commit = repo.find_commit(Oid::from_str(id).ok()?).ok()?;
        let author = commit.author();
        let secs = u64::try_from(author.when().seconds()).unwrap_or(0);
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        Some(CommitInfo {
            id: id.to_string(),
            author: format!(
                "{} <{}>",
                String::from_utf8_lossy(author.name_bytes()),
                String::from_utf8_lossy(author.email_bytes())
            ),
            time: humantime::format_rfc3339_seconds(time).to_string(),
            summary: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default())
                .into_owned(),
        })
    }

    /// The signature of a fetched commit (`gpgsig` header), `None` when it
    /// is unsigned.
    pub fn commit_signature(&self, id: &str) -> Result<Option<CommitSignature>, GitError> {
        let git = |e: git2::Error| GitError::Git {
            url: without_userinfo(&self.opts.url),
            message: e.message().to_string(),
        };
        let repo = self.repo.as_ref().ok_or_else(|| GitError::Git {
            url: without_userinfo(&self.opts.url),
            message: "not fetched yet".into(),
        })?;
        let oid = Oid::from_str(id).map_err(git)?;
        match repo.extract_signature(&oid, None) {
            Ok((sig, data)) => Ok(Some(CommitSignature {
                signature: sig.to_vec(),
                signed_data: data.to_vec(),
            })),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(git(e)),
        }
    }

    /// The URL being watched (it may hold credentials: never log it
    /// without [`crate::uri::without_userinfo`]).
    pub fn url(&self) -> &str {
        &self.opts.url
    }

    fn path(&self) -> &str {
        let p = self.opts.path.trim_matches('/');
        if p.is_empty() { "." } else { p }
    }

    /// Opens the cached bare repository, creating it on first use.
    fn repo(&mut self) -> Result<&Repository, GitError> {
        if self.repo.is_none() {
            let dir = &self.opts.cache_dir;
            let cache = |e: &dyn std::fmt::Display| GitError::Cache {
                path: dir.display().to_string(),
                message: e.to_string(),
            };
            let repo = match Repository::open_bare(dir) {
                Ok(r) => r,
                Err(_) => {
                    std::fs::create_dir_all(dir).map_err(|e| cache(&e))?;
                    Repository::init_bare(dir).map_err(|e| cache(&e))?
                }
            };
            match repo.find_remote("origin") {
                Ok(r) if r.url().ok() == Some(self.opts.url.as_str()) => {}
                Ok(_) => repo
                    .remote_set_url("origin", &self.opts.url)
                    .map_err(|e| cache(&e))?,
                Err(_) => {
                    repo.remote_with_fetch(
                        "origin",
                        &self.opts.url,
                        "+refs/heads/*:refs/remotes/origin/*",
                    )
                    .map_err(|e| cache(&e))?;
                }
            }
            self.repo = Some(repo);
        }
        Ok(self.repo.as_ref().expect("repository opened above"))
    }
}

/// `$XDG_CACHE_HOME` (else `~/.cache`) `/modelsync/<kind>/<name>-<hash of
/// the URL>`: where a bare clone of `url` is kept.
pub fn cache_dir(kind: &str, url: &str) -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("modelsync").join(kind).join(cache_name(url))
}

/// Fetches `branch` into `refs/remotes/origin/<branch>`; returns whether the
/// remote advertised the branch. Retries without depth when the transport
/// refuses a shallow fetch.
pub(super) fn fetch_branch(
    repo: &Repository,
    branch: &str,
    shallow: bool,
) -> Result<bool, git2::Error> {
    let refspec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
    let mut remote = repo.find_remote("origin")?;
    let attempt = |remote: &mut git2::Remote<'_>, depth: Option<i32>| {
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(callbacks())
            .prune(FetchPrune::On)
            .download_tags(AutotagOption::None);
        if let Some(d) = depth {
            opts.depth(d);
        }
        remote.fetch(&[refspec.as_str()], Some(&mut opts), None)
    };
    if shallow {
        if let Err(e) = attempt(&mut remote, Some(1)) {
            tracing::debug!(error = %e.message(), "shallow fetch refused; fetching full history");
            attempt(&mut remote, None)?;
        }
    } else {
        attempt(&mut remote, None)?;
    }
    let wanted = format!("refs/heads/{branch}");
    let heads = remote.list()?;
    Ok(heads.iter().any(|h| h.name() == wanted))
}

/// Credentials from the environment; gives up after a few attempts so a
/// wrong token does not loop.
pub(super) fn callbacks() -> RemoteCallbacks<'static> {
    let mut cb = RemoteCallbacks::new();
    let mut tries = 0;
    cb.credentials(move |_url, user_from_url, allowed| {
        tries += 1;
        if tries > 3 {
            return Err(git2::Error::from_str(
                "authentication failed (check MODELSYNC_GIT_TOKEN, MODELSYNC_GIT_SSH_KEY or the ssh agent)",
            ));
        }
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
            && let Some(token) = Secret::from_env("MODELSYNC_GIT_TOKEN")
        {
            let user = env("MODELSYNC_GIT_USERNAME").unwrap_or_else(|| "x-access-token".into());
            return Cred::userpass_plaintext(&user, token.expose());
        }
        let user = user_from_url.unwrap_or("git");
        if allowed.contains(CredentialType::SSH_KEY) {
            return match env("MODELSYNC_GIT_SSH_KEY") {
                Some(key) => Cred::ssh_key(user, None, Path::new(&key), None),
                None => Cred::ssh_key_from_agent(user),
            };
        }
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(user);
        }
        Err(git2::Error::from_str(
            "the remote asks for credentials: set MODELSYNC_GIT_TOKEN (https) or MODELSYNC_GIT_SSH_KEY / an ssh agent (ssh)",
        ))
    });
    cb
}

enum TreeError {
    Missing,
    Git(git2::Error),
}

impl From<git2::Error> for TreeError {
    fn from(e: git2::Error) -> Self {
        TreeError::Git(e)
    }
}

enum ConfigError {
    Git(git2::Error),
    Invalid(String),
}

/// `modelsync.toml` beside the manifests in the commit's tree (the same
/// rule as for folders); the default when there is none.
fn read_config(
    repo: &Repository,
    commit: &git2::Commit<'_>,
    path: &str,
) -> Result<Config, ConfigError> {
    let prefix = path.trim_matches('/');
    let file = match prefix {
        "" | "." => FILE_NAME.to_string(),
        p => format!("{p}/{FILE_NAME}"),
    };
    let root = commit.tree().map_err(ConfigError::Git)?;
    let entry = match root.get_path(Path::new(&file)) {
        Ok(e) => e,
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(Config::default()),
        Err(e) => return Err(ConfigError::Git(e)),
    };
    let object = entry.to_object(repo).map_err(ConfigError::Git)?;
    let Some(blob) = object.as_blob() else {
        return Ok(Config::default());
    };
    let text = String::from_utf8_lossy(blob.content());
    Config::parse(&file, &text).map_err(|e| ConfigError::Invalid(e.to_string()))
}

/// Reads every `*.yaml`/`*.yml` blob under `path` in the commit's tree
/// (skipping hidden entries), sorted by path, and beside them the other
/// text files and the symbolic links under `path` (where a `templateFile`
/// resolves; nothing else exists for it); paths are repository-relative.
fn read_tree(
    repo: &Repository,
    commit: &git2::Commit<'_>,
    path: &str,
) -> Result<(Vec<SourceFile>, Snapshot), TreeError> {
    let root = commit.tree()?;
    let prefix = root_of(path);
    let tree = if prefix.is_empty() {
        root
    } else {
        let entry = root
            .get_path(Path::new(&prefix))
            .map_err(|e| match e.code() {
                git2::ErrorCode::NotFound => TreeError::Missing,
                _ => TreeError::Git(e),
            })?;
        if entry.kind() != Some(ObjectType::Tree) {
            return Err(TreeError::Missing);
        }
        entry.to_object(repo)?.peel_to_tree()?
    };
    let mut blobs = Vec::new();
    let mut other_blobs = Vec::new();
    let mut link_blobs = Vec::new();
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        let Ok(name) = entry.name() else {
            return TreeWalkResult::Skip;
        };
        if name.starts_with('.') {
            return TreeWalkResult::Skip;
        }
        if entry.kind() != Some(ObjectType::Blob) {
            return TreeWalkResult::Ok;
        }
        let full = if prefix.is_empty() {
            format!("{dir}{name}")
        } else {
            format!("{prefix}/{dir}{name}")
        };
        if entry.filemode() == LINK_MODE {
            link_blobs.push((full.clone(), entry.id()));
        }
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            blobs.push((full, entry.id()));
        } else if entry.filemode() != LINK_MODE {
            other_blobs.push((full, entry.id()));
        }
        TreeWalkResult::Ok
    })?;
    let mut others = Vec::new();
    for (path, id) in other_blobs {
        let blob = repo.find_blob(id)?;
        if blob.size() <= super::MAX_OTHER {
            others.push((path, blob.content().to_vec()));
        }
    }
    let mut links = std::collections::BTreeMap::new();
    for (path, id) in link_blobs {
        let blob = repo.find_blob(id)?;
        links.insert(path, String::from_utf8_lossy(blob.content()).into_owned());
    }
    blobs.sort();
    let mut files = Vec::with_capacity(blobs.len());
    for (path, id) in blobs {
        let blob = repo.find_blob(id)?;
        let content = blob.content();
        files.push(SourceFile {
            path,
            contents: content[..content.len().min(MAX_READ)].to_vec(),
        });
    }
    let snapshot = Snapshot {
        name: String::new(),
        files: super::others(others),
        links,
    };
    Ok((files, snapshot))
}

/// The git mode of a symbolic link.
const LINK_MODE: i32 = 0o120000;

/// `--path` as a manifests root: repository-relative, normalized (`""`
/// for the repository's root).
fn root_of(path: &str) -> String {
    crate::manifest::paths::normalize(path.trim_start_matches('/'))
}

/// `<last path segment>-<16 hex of sha256(url)>`, safe as a folder name.
fn cache_name(url: &str) -> String {
    let hash = Sha256::digest(url.as_bytes());
    let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let last = url
        .trim_end_matches('/')
        .trim_end_matches(".git")
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repo");
    let name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("{}-{hex}", if name.is_empty() { "repo" } else { &name })
}

#[cfg(test)]
#[path = "git_tests.rs"]
mod tests;
