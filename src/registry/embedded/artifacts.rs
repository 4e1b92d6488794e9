//! The bytes behind the embedded registry's versions. It holds only what
//! manifests wrote (its sources are never checked against anything) and
//! serves offline plans (a snapshot, a fork's pull request without
//! secrets), so a pass reads no bytes at all: not a path on this machine a
//! manifest named, not a store with whatever credentials the environment
//! has. `modelsync resolve`, run by a person against their own registry
//! file, reads `file:` sources (and bare absolute paths) and `s3://` ones.
//! Files are read through [`crate::registry::store`].

use crate::registry::store::{HashCache, Store};
use crate::state::artifacts::ArtifactTree;

/// Why a pass reads nothing behind `location`.
pub fn not_in_a_pass(location: &str) -> String {
    format!(
        "{location} is what a manifest wrote: the embedded registry reads no artifact bytes \
         during a pass (`modelsync resolve` reads them for the person who runs it)"
    )
}

/// The bytes at `location`, host paths included (`modelsync resolve`).
pub async fn read(hashes: &HashCache, location: &str) -> Result<ArtifactTree, String> {
    let whose = "the embedded registry";
    let tree = async {
        if let Some(why) = Store::failed_earlier(location, hashes) {
            return Err(crate::registry::RegistryError::Other(why));
        }
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
