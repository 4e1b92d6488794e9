//! The git side of outputs (issue 20): a bare clone of an outputs
//! repository kept in the cache folder (`…/modelsync/outputs/<name>`),
//! the marked files read from its branch's head commit (never from a
//! working copy, never from the host), one commit of the rewritten files
//! on top of that head — signed as `git -c gpg.format=ssh commit -S`
//! signs: an SSHSIG in namespace `git` over the commit object, in its
//! `gpgsig` header — and its push.
//!
//! What to write and the retry after a rejected push are the caller's
//! (`reconcile/outputs.rs`); the markers are [`crate::outputs::markers`].
//! The signing key comes only from `MODELSYNC_OUTPUTS_SIGNING_KEY` (a
//! file's path); credentials as for the daemon's git source
//! (`MODELSYNC_GIT_TOKEN`). Paths come from `modelsync.toml` checked by
//! [`crate::manifest::paths::named`] and are looked up in the commit's
//! tree: nothing outside the repository is reachable, symbolic links are
//! not followed.

pub mod github;

use std::path::Path;

use git2::build::TreeUpdateBuilder;
use git2::{FileMode, ObjectType, Oid, PushOptions, Repository, TreeWalkMode, TreeWalkResult};
use ssh_key::{HashAlg, LineEnding, PrivateKey};

use crate::outputs::{MARKER_KEY, SIGNING_KEY_VAR, Settings};
use crate::uri::without_userinfo;

/// The largest marked file read (serving manifests are small).
const MAX_FILE: usize = 1024 * 1024;

/// The namespace git signs commits in (`git verify-commit` checks it).
const NAMESPACE: &str = "git";

/// A fetched outputs branch.
pub struct Branch {
    repo: Repository,
    settings: Settings,
    /// The branch's head as fetched; `None`: the branch does not exist.
    pub head: Option<Oid>,
}

/// Why a push did not land.
#[derive(Debug)]
pub enum PushError {
    /// The branch moved since it was fetched (not a fast-forward).
    Moved(String),
    Other(String),
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Moved(m) | PushError::Other(m) => f.write_str(m),
        }
    }
}

impl Branch {
    /// Fetches `settings.branch` of `settings.repo` into the cached bare
    /// clone (all of its history: commits are made on top of it).
    pub fn fetch(settings: &Settings) -> Result<Branch, String> {
        let dir = super::git::cache_dir("outputs", &settings.repo);
        let repo = open_cache(&dir, &settings.repo)?;
        let head = fetch(&repo, &settings.branch)?;
        Ok(Branch {
            repo,
            settings: settings.clone(),
            head,
        })
    }

    /// Fetches the branch again (after a rejected push).
    pub fn refetch(&mut self) -> Result<(), String> {
        self.head = fetch(&self.repo, &self.settings.branch)?;
        Ok(())
    }

    /// The head of another branch of the same repository (a pull
    /// request's), fetched now; `None` when it does not exist.
    pub fn fetch_other(&self, branch: &str) -> Result<Option<Oid>, String> {
        fetch(&self.repo, branch)
    }

    /// The YAML files under the output's path at the head that hold a
    /// marker, as (repository-relative path, text), sorted by path.
    pub fn marked_files(&self) -> Result<Vec<(String, String)>, String> {
        let Some(head) = self.head else {
            return Err(format!("branch {:?} does not exist", self.settings.branch));
        };
        let tree = self
            .repo
            .find_commit(head)
            .and_then(|c| c.tree())
            .map_err(|e| self.err(e))?;
        let path = &self.settings.path;
        let mut found = Vec::new();
        if path.is_empty() {
            self.walk(&tree, "", &mut found)?;
        } else {
            let entry = tree
                .get_path(Path::new(path))
                .map_err(|_| format!("path {path:?} does not exist at {head}"))?;
            match entry.kind() {
                Some(ObjectType::Tree) => {
                    let sub = self.repo.find_tree(entry.id()).map_err(|e| self.err(e))?;
                    self.walk(&sub, &format!("{path}/"), &mut found)?;
                }
                Some(ObjectType::Blob) if entry.filemode() == i32::from(FileMode::Blob) => {
                    self.keep(path.clone(), entry.id(), &mut found)?;
                }
                _ => {
                    return Err(format!(
                        "path {path:?} is neither a folder nor a regular file"
                    ));
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// Commits `files` (path, new text) on top of the head, signed with
    /// `key` when given; the commit's id. The commit is kept under
    /// `refs/modelsync/outputs` of the cache, for [`Branch::push`].
    pub fn commit(
        &self,
        files: &[(String, String)],
        message: &str,
        key: Option<&PrivateKey>,
    ) -> Result<Oid, String> {
        let head = self
            .head
            .ok_or_else(|| format!("branch {:?} does not exist", self.settings.branch))?;
        let parent = self.repo.find_commit(head).map_err(|e| self.err(e))?;
        let base = parent.tree().map_err(|e| self.err(e))?;
        let mut update = TreeUpdateBuilder::new();
        for (path, text) in files {
            let blob = self.repo.blob(text.as_bytes()).map_err(|e| self.err(e))?;
            update.upsert(path.as_str(), blob, FileMode::Blob);
        }
        let tree_id = update
            .create_updated(&self.repo, &base)
            .map_err(|e| self.err(e))?;
        let tree = self.repo.find_tree(tree_id).map_err(|e| self.err(e))?;
        let a = &self.settings.author;
        let who = git2::Signature::now(&a.name, &a.email).map_err(|e| self.err(e))?;
        let buffer = self
            .repo
            .commit_create_buffer(&who, &who, message, &tree, &[&parent])
            .map_err(|e| self.err(e))?;
        let content = std::str::from_utf8(&buffer).map_err(|e| e.to_string())?;
        let id = match key {
            Some(key) => {
                let signature = key
                    .sign(NAMESPACE, HashAlg::Sha512, content.as_bytes())
                    .and_then(|s| s.to_pem(LineEnding::LF))
                    .map_err(|e| format!("signing the commit with {SIGNING_KEY_VAR}: {e}"))?;
                self.repo
                    .commit_signed(content, &signature, Some("gpgsig"))
                    .map_err(|e| self.err(e))?
            }
            None => self
                .repo
                .odb()
                .and_then(|odb| odb.write(ObjectType::Commit, content.as_bytes()))
                .map_err(|e| self.err(e))?,
        };
        self.repo
            .reference(LOCAL_REF, id, true, "modelsync outputs")
            .map_err(|e| self.err(e))?;
        Ok(id)
    }

    /// Pushes the last [`Branch::commit`] to `branch` (a fast-forward
    /// unless `force`: a pull request's own branch).
    pub fn push(&self, branch: &str, force: bool) -> Result<(), PushError> {
        let other = |e: git2::Error| PushError::Other(self.err(e));
        let mut remote = self.repo.find_remote("origin").map_err(other)?;
        let rejected = std::cell::RefCell::new(None);
        let mut cb = super::git::callbacks();
        cb.push_update_reference(|_, status| {
            if let Some(s) = status {
                *rejected.borrow_mut() = Some(s.to_string());
            }
            Ok(())
        });
        let mut opts = PushOptions::new();
        opts.remote_callbacks(cb);
        let spec = format!(
            "{}{LOCAL_REF}:refs/heads/{branch}",
            if force { "+" } else { "" }
        );
        match remote.push(&[spec.as_str()], Some(&mut opts)) {
            Err(e) if e.code() == git2::ErrorCode::NotFastForward => {
                return Err(PushError::Moved(self.err(e)));
            }
            Err(e) => return Err(other(e)),
            Ok(()) => {}
        }
        drop(opts);
        match rejected.into_inner() {
            None => Ok(()),
            Some(why)
                if why.contains("fast") || why.contains("fetch first") || why.contains("stale") =>
            {
                Err(PushError::Moved(why))
            }
            Some(why) => Err(PushError::Other(format!("the push was refused: {why}"))),
        }
    }

    /// The tree of `commit` (to compare a pull request's branch).
    pub fn tree_of(&self, commit: Oid) -> Option<Oid> {
        self.repo.find_commit(commit).ok().map(|c| c.tree_id())
    }

    /// The tree of the last [`Branch::commit`].
    pub fn committed_tree(&self) -> Option<Oid> {
        let id = self.repo.refname_to_id(LOCAL_REF).ok()?;
        self.tree_of(id)
    }

    /// `REPO@BRANCH:PATH`, without credentials.
    pub fn describe(&self) -> String {
        describe(&self.settings)
    }

    fn err(&self, e: git2::Error) -> String {
        e.message().to_string()
    }

    fn walk(
        &self,
        tree: &git2::Tree<'_>,
        prefix: &str,
        found: &mut Vec<(String, String)>,
    ) -> Result<(), String> {
        let mut blobs = Vec::new();
        tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
            let name = entry.name().unwrap_or_default();
            let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
            if entry.kind() == Some(ObjectType::Blob)
                && yaml
                && entry.filemode() == i32::from(FileMode::Blob)
            {
                blobs.push((format!("{prefix}{dir}{name}"), entry.id()));
            }
            TreeWalkResult::Ok
        })
        .map_err(|e| self.err(e))?;
        for (path, id) in blobs {
            self.keep(path, id, found)?;
        }
        Ok(())
    }

    /// Keeps the blob `id` at `path` when it is UTF-8 text holding a marker.
    fn keep(&self, path: String, id: Oid, found: &mut Vec<(String, String)>) -> Result<(), String> {
        let blob = self.repo.find_blob(id).map_err(|e| self.err(e))?;
        if blob.size() > MAX_FILE {
            return Ok(());
        }
        if let Ok(text) = std::str::from_utf8(blob.content())
            && text.contains(MARKER_KEY)
        {
            found.push((path, text.to_string()));
        }
        Ok(())
    }
}

/// `REPO@BRANCH:PATH` of `settings`, without credentials.
pub fn describe(settings: &Settings) -> String {
    let path = if settings.path.is_empty() {
        "."
    } else {
        &settings.path
    };
    format!(
        "{}@{}:{path}",
        without_userinfo(&settings.repo),
        settings.branch
    )
}

/// The key output commits are signed with (`MODELSYNC_OUTPUTS_SIGNING_KEY`:
/// the path of an unencrypted OpenSSH private key file); `None` when the
/// variable is unset.
pub fn signing_key() -> Result<Option<PrivateKey>, String> {
    let Some(path) = std::env::var_os(SIGNING_KEY_VAR).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let path = Path::new(&path);
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{SIGNING_KEY_VAR}: reading {}: {e}", path.display()))?;
    let key = PrivateKey::from_openssh(text.trim()).map_err(|_| {
        format!(
            "{SIGNING_KEY_VAR}: {} is not an OpenSSH private key",
            path.display()
        )
    })?;
    if key.is_encrypted() {
        return Err(format!(
            "{SIGNING_KEY_VAR}: {} is protected by a passphrase; give modelsync a key without one",
            path.display()
        ));
    }
    Ok(Some(key))
}

/// Where a commit waits for its push in the cache.
const LOCAL_REF: &str = "refs/modelsync/outputs";

fn open_cache(dir: &Path, url: &str) -> Result<Repository, String> {
    let cache = |e: &dyn std::fmt::Display| format!("outputs cache {}: {e}", dir.display());
    let repo = match Repository::open_bare(dir) {
        Ok(r) => r,
        Err(_) => {
            std::fs::create_dir_all(dir).map_err(|e| cache(&e))?;
            Repository::init_bare(dir).map_err(|e| cache(&e))?
        }
    };
    match repo.find_remote("origin") {
        Ok(r) if r.url().ok() == Some(url) => {}
        Ok(_) => repo.remote_set_url("origin", url).map_err(|e| cache(&e))?,
        Err(_) => {
            repo.remote_with_fetch("origin", url, "+refs/heads/*:refs/remotes/origin/*")
                .map_err(|e| cache(&e))?;
        }
    }
    Ok(repo)
}

/// Fetches `branch`; its head, `None` when the remote has no such branch.
fn fetch(repo: &Repository, branch: &str) -> Result<Option<Oid>, String> {
    let advertised = super::git::fetch_branch(repo, branch, false)
        .map_err(|e| format!("fetching {branch}: {}", e.message()))?;
    if !advertised {
        return Ok(None);
    }
    let tracking = format!("refs/remotes/origin/{branch}");
    Ok(repo.refname_to_id(&tracking).ok())
}
