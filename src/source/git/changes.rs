//! `--changed-since REV`: the files under the manifests that differ
//! between a git revision and the working tree (a child of `git.rs`);
//! and, for the daemon, those that differ between two fetched commits
//! ([`GitSource::changes_between`]: a push reconciles what it changed).
//!
//! Read through git2 from the repository that holds the manifests, as
//! `git diff REV -- PATHS` sees them: committed, staged and unstaged
//! changes and untracked files (not ignored ones), each with its contents
//! at the revision; and whether a `modelsync.toml` beside the manifests
//! changed. Hidden files and folders are left out, as the manifests are
//! found. What the changes select is `manifest::targets`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use git2::{DiffOptions, Oid, Repository, Tree};

use super::{GitError, GitSource, MAX_READ};
use crate::manifest::paths::normalize;
use crate::manifest::targets::{ChangedFile, Changes};
use crate::source::config::FILE_NAME;
use crate::uri::without_userinfo;

/// A manifests path: as given (how the manifests name their files), and
/// relative to the repository's working tree.
struct Root {
    shown: String,
    /// `""` for the working tree's own root.
    rel: String,
    dir: bool,
}

/// What changed under `paths` (the manifests paths, as given) between
/// `rev` and the working tree of the repository that holds them.
pub fn changed_since(paths: &[PathBuf], rev: &str) -> Result<Changes, GitError> {
    let fail = |message: String| GitError::ChangedSince {
        rev: rev.to_string(),
        message,
    };
    let first = paths.first().map_or(Path::new("."), PathBuf::as_path);
    let repo = Repository::discover(first).map_err(|e| {
        fail(format!(
            "{} is not in a git repository ({})",
            first.display(),
            e.message()
        ))
    })?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| fail("the repository has no working tree".to_string()))?
        .canonicalize()
        .map_err(|e| fail(format!("the repository's working tree: {e}")))?;
    let base = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_tree())
        .map_err(|e| {
            fail(format!(
                "no such revision in {} ({}); in a shallow CI checkout, fetch it first (git fetch --depth=1 origin BRANCH)",
                workdir.display(),
                e.message()
            ))
        })?;
    let roots = paths
        .iter()
        .map(|p| root(p, &workdir))
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    let changed = changed_paths(&repo, &base, &roots).map_err(|e| fail(e.message().to_string()))?;
    let mut out = Changes {
        since: rev.to_string(),
        ..Changes::default()
    };
    for path in changed {
        if let Some(r) = roots.iter().find(|r| config_of(&r.rel, r.dir) == path) {
            out.config.push(config_of(&r.shown, r.dir));
        } else if let Some(shown) = roots.iter().find_map(|r| shown(r, &path)) {
            let before = blob_at(&repo, &base, &path);
            out.files.push(ChangedFile {
                path: shown,
                before,
            });
        }
    }
    Ok(out)
}

impl GitSource {
    /// What changed under `--path` from the fetched commit `old` (the one
    /// applied) to the fetched commit `new`: the files with their contents
    /// at `old`, named as the fetched manifests are (repository-relative),
    /// and whether the `modelsync.toml` beside them changed.
    pub fn changes_between(&self, old: &str, new: &str) -> Result<Changes, GitError> {
        let url = without_userinfo(&self.opts.url);
        let git = |e: git2::Error| GitError::Git {
            url: url.clone(),
            message: e.message().to_string(),
        };
        let repo = self.repo.as_ref().ok_or_else(|| GitError::Git {
            url: url.clone(),
            message: "not fetched yet".into(),
        })?;
        let tree = |id: &str| {
            let oid = Oid::from_str(id)?;
            repo.find_commit(oid)?.tree()
        };
        let (before, after) = (tree(old).map_err(git)?, tree(new).map_err(git)?);
        let prefix = super::root_of(&self.opts.path);
        let root = Root {
            shown: prefix.clone(),
            rel: prefix.clone(),
            dir: true,
        };
        let config = config_of(&prefix, true);
        let mut opts = DiffOptions::new();
        opts.include_typechange(true);
        if !prefix.is_empty() {
            opts.pathspec(&prefix);
            opts.pathspec(&config);
        }
        let diff = repo
            .diff_tree_to_tree(Some(&before), Some(&after), Some(&mut opts))
            .map_err(git)?;
        let mut out = Changes {
            since: old.to_string(),
            ..Changes::default()
        };
        for path in paths_of(&diff) {
            if path == config {
                out.config.push(config.clone());
            } else if let Some(shown) = shown(&root, &path) {
                let before = blob_at(repo, &before, &path);
                out.files.push(ChangedFile {
                    path: shown,
                    before,
                });
            }
        }
        Ok(out)
    }
}

/// Every path a diff names, old and new.
fn paths_of(diff: &git2::Diff<'_>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for delta in diff.deltas() {
        for file in [delta.old_file(), delta.new_file()] {
            if let Some(p) = file.path().and_then(Path::to_str) {
                out.insert(p.to_string());
            }
        }
    }
    out
}

/// The repository paths that differ between `base` and the working tree
/// (with the index), under the roots and their `modelsync.toml`.
fn changed_paths(
    repo: &Repository,
    base: &Tree<'_>,
    roots: &[Root],
) -> Result<BTreeSet<String>, git2::Error> {
    let mut opts = DiffOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_typechange(true);
    // The whole working tree when a root is its top; else only the roots.
    if roots.iter().all(|r| !r.rel.is_empty()) {
        for r in roots {
            opts.pathspec(&r.rel);
            opts.pathspec(config_of(&r.rel, r.dir));
        }
    }
    let diff = repo.diff_tree_to_workdir_with_index(Some(base), Some(&mut opts))?;
    Ok(paths_of(&diff))
}

fn root(path: &Path, workdir: &Path) -> Result<Root, String> {
    let abs = path
        .canonicalize()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let rel = abs.strip_prefix(workdir).map_err(|_| {
        format!(
            "{} is outside the git repository at {}",
            path.display(),
            workdir.display()
        )
    })?;
    let rel = rel
        .to_str()
        .ok_or_else(|| format!("{}: the path is not UTF-8", path.display()))?;
    Ok(Root {
        shown: normalize(&path.display().to_string()),
        rel: rel.to_string(),
        dir: abs.is_dir(),
    })
}

/// The repository path `path` as the manifests under `r` name it; `None`
/// when it is not under `r`, or is hidden there.
fn shown(r: &Root, path: &str) -> Option<String> {
    if !r.dir {
        return (path == r.rel).then(|| r.shown.clone());
    }
    let rest = match r.rel.as_str() {
        "" => path,
        rel => path.strip_prefix(rel)?.strip_prefix('/')?,
    };
    if rest.split('/').any(|c| c.starts_with('.')) {
        return None;
    }
    Some(join(&r.shown, rest))
}

/// The `modelsync.toml` beside a root: in the folder, or beside the file.
fn config_of(root: &str, dir: bool) -> String {
    let folder = if dir {
        root
    } else {
        root.rsplit_once('/').map_or("", |(parent, _)| parent)
    };
    join(folder, FILE_NAME)
}

fn join(folder: &str, rest: &str) -> String {
    if folder.is_empty() {
        rest.to_string()
    } else {
        normalize(&format!("{folder}/{rest}"))
    }
}

/// The contents of `path` in `tree` (at most what a manifest may hold and
/// one byte more, which the parser reports as too large); `None` when it
/// is not a file there.
fn blob_at(repo: &Repository, tree: &Tree<'_>, path: &str) -> Option<Vec<u8>> {
    let entry = tree.get_path(Path::new(path)).ok()?;
    let object = entry.to_object(repo).ok()?;
    let blob = object.as_blob()?;
    let content = blob.content();
    Some(content[..content.len().min(MAX_READ)].to_vec())
}
