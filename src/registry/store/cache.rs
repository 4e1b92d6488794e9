//! [`HashCache`]: the hashes one registry instance took, so that a pass
//! reads each artifact file once (beside `store.rs`, which fills it; the
//! registries hold one each).

use std::collections::HashMap;
use std::sync::Mutex;

/// Hashes already taken by one registry instance (one pass): a file of a
/// tree, with the same size (and, where the store has one, the same ETag
/// or modification time), is not read again — the plan, the plan under
/// the lease and a gate's re-check before the move read a tree once.
///
/// It also remembers a store that failed as a whole (no credentials, an
/// endpoint that does not answer): later trees in it fail at once with
/// the same reason, so a pass pays for such a failure once per bucket.
#[derive(Debug, Default)]
pub struct HashCache {
    hashes: Mutex<HashMap<(String, String, u64, String), String>>,
    failed: Mutex<HashMap<String, String>>,
}

impl HashCache {
    pub(super) fn get(&self, key: &(String, String, u64, String)) -> Option<String> {
        self.hashes.lock().expect("hash cache").get(key).cloned()
    }

    pub(super) fn put(&self, key: (String, String, u64, String), sha256: String) {
        self.hashes.lock().expect("hash cache").insert(key, sha256);
    }

    pub(super) fn failed(&self, store: &str) -> Option<String> {
        self.failed.lock().expect("hash cache").get(store).cloned()
    }

    pub(super) fn fail(&self, store: String, why: String) {
        self.failed.lock().expect("hash cache").insert(store, why);
    }
}
