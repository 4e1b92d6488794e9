//! Tag keys modelsync writes on registry objects: vocabulary shared by the
//! planner (which reads them), the applier and the registries (which write
//! and search them), and `history` (which reports them).

/// Every tag modelsync writes starts with this (`export` leaves them out).
pub const PREFIX: &str = "modelsync.";
/// On a version: the source as declared in the manifest (how a version
/// registered from `runs:/...` is recognised after MLflow resolved it).
pub const SOURCE: &str = "modelsync.source";
/// On a version: the revision (git commit) of the last move.
pub const REVISION: &str = "modelsync.revision";
/// On a version: `modelsync.promoted-at.<stage-or-alias>` (RFC 3339).
pub const PROMOTED_AT_PREFIX: &str = "modelsync.promoted-at.";
/// On a version: `modelsync.previous.<stage-or-alias>` (replaced version).
pub const PREVIOUS_PREFIX: &str = "modelsync.previous.";
/// On a model: JSON inventory of the stages and aliases modelsync set.
pub const MANAGED: &str = "modelsync.managed";
/// On the lease model: the lease's tags start with this.
pub const LEASE_PREFIX: &str = "modelsync.lease.";
/// On the lease model: who holds the lease (`host:pid:nonce`).
pub const LEASE_HOLDER: &str = "modelsync.lease.holder";
/// On the lease model: when the lease expires, ms since the epoch (`0`:
/// released).
pub const LEASE_EXPIRES: &str = "modelsync.lease.expires";
/// On the lease model: when the holder took the lease, ms since the epoch.
pub const LEASE_STARTED: &str = "modelsync.lease.started";

/// On a copied version and its run: the copy's lineage
/// (`registry/model/version/model-id/digest`, see `state::CopySource`).
pub const COPY_LINEAGE: &str = "modelsync.copy.lineage";
/// On a copied version: `registry/model/version` it was copied from.
pub const COPY_OF: &str = "modelsync.copy.of";
/// On a copy's run: the logged model (MLflow 3) the files go to.
pub const COPY_MODEL_ID: &str = "modelsync.copy.model-id";
/// On a copy's run: `true` once every file is uploaded and verified.
pub const COPY_COMPLETE: &str = "modelsync.copy.complete";
/// On an experiment modelsync created to hold copied runs.
pub const COPY_EXPERIMENT: &str = "modelsync.copy.experiment";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_under_the_prefix() {
        for key in [
            SOURCE,
            REVISION,
            PROMOTED_AT_PREFIX,
            PREVIOUS_PREFIX,
            MANAGED,
            LEASE_PREFIX,
        ] {
            assert!(key.starts_with(PREFIX), "{key}");
        }
        assert!(LEASE_HOLDER.starts_with(LEASE_PREFIX));
        assert!(LEASE_EXPIRES.starts_with(LEASE_PREFIX));
        assert!(LEASE_STARTED.starts_with(LEASE_PREFIX));
    }
}
