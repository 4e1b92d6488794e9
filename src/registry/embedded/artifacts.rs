//! The bytes behind the embedded registry's versions. It holds only what
//! manifests wrote (its sources are never checked against anything), so a
//! pass reads no host path it names; it reads stores (`s3://`) as MLflow's
//! versions' are read. `modelsync resolve`, run by a person against their
//! own registry file, also reads `file:` sources (and bare absolute
//! paths). Files are read through [`crate::registry::store`].

use crate::registry::store::{HashCache, Store};
use crate::state::artifacts::{ArtifactTree, is_host_path};

/// The bytes at `location` for a pass: never a host path.
pub async fn for_pass(hashes: &HashCache, location: &str) -> Result<ArtifactTree, String> {
    if is_host_path(location) {
        return Err(format!(
            "{location} is a path on this machine that a manifest wrote: the embedded registry \
             reads none during a pass (`modelsync resolve` reads it for the person who runs it)"
        ));
    }
    read(hashes, location).await
}

/// The bytes at `location`, host paths included (`modelsync resolve`).
pub async fn read(hashes: &HashCache, location: &str) -> Result<ArtifactTree, String> {
    let whose = "the embedded registry";
    let tree = async {
        let store = Store::open(location, None, whose)?;
        store.tree(hashes).await
    }
    .await
    .map_err(|e| e.to_string())?;
    if tree.files.is_empty() {
        return Err(format!("there are no files at {location} ({whose})"));
    }
    Ok(ArtifactTree {
        location: location.to_string(),
        tree,
    })
}
