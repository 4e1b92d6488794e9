//! `--verify-signatures`' memory of the last verified commit applied, and
//! the forward check against it (a child of `git.rs`).
//!
//! The commit is kept as the ref [`VERIFIED_REF`] of the cached bare
//! clone: the ref keeps its objects (and their history) in the cache
//! whatever the branch does — a forced fetch moves only
//! `refs/remotes/origin/*` — and it survives a restart of the daemon
//! whose cache survives. A head is *forward* when it is that commit or
//! descends from it (`git merge-base --is-ancestor`).

use git2::Oid;

use super::{GitError, GitSource};
use crate::uri::without_userinfo;

/// The ref that holds the last verified commit applied.
pub const VERIFIED_REF: &str = "refs/modelsync/verified-applied";

impl GitSource {
    /// The last verified commit applied, as recorded in the cache (`None`:
    /// none recorded, or the cache cannot be opened).
    pub fn verified_applied(&mut self) -> Option<String> {
        let repo = self.repo().ok()?;
        let target = repo.find_reference(VERIFIED_REF).ok()?.target()?;
        Some(target.to_string())
    }

    /// Records `id` as the last verified commit applied.
    pub fn set_verified_applied(&mut self, id: &str) -> Result<(), GitError> {
        let url = without_userinfo(&self.opts.url);
        let git = |e: git2::Error| GitError::Git {
            url: url.clone(),
            message: e.message().to_string(),
        };
        let oid = Oid::from_str(id).map_err(git)?;
        let repo = self.repo()?;
        repo.reference(VERIFIED_REF, oid, true, "modelsync: verified and applied")
            .map_err(git)?;
        Ok(())
    }

    /// Whether the fetched commit `head` is `ancestor` or descends from it.
    pub fn descends_from(&self, head: &str, ancestor: &str) -> Result<bool, GitError> {
        let git = |e: git2::Error| GitError::Git {
            url: without_userinfo(&self.opts.url),
            message: e.message().to_string(),
        };
        let repo = self.repo.as_ref().ok_or_else(|| GitError::Git {
            url: without_userinfo(&self.opts.url),
            message: "not fetched yet".into(),
        })?;
        let (head, ancestor) = (
            Oid::from_str(head).map_err(git)?,
            Oid::from_str(ancestor).map_err(git)?,
        );
        if head == ancestor {
            return Ok(true);
        }
        repo.find_commit(ancestor).map_err(git)?;
        repo.graph_descendant_of(head, ancestor).map_err(git)
    }
}
