//! `modelsync freeze` and `unfreeze` (issue 19): the freeze written to the
//! registry (`registry::hold`), which every pass reads with its snapshot
//! and which blocks every move like a failing gate.
//!
//! [`freeze`] sets the freeze first (every pass that plans from then on is
//! blocked) and then waits for the applier lease and lets it go at once: a
//! pass that planned before the freeze holds the lease until it finishes,
//! so once `freeze` returns, no applier is still making moves planned
//! before it. (The embedded registry's writer lock already waited.)

use crate::registry::{AnyRegistry, Registry, RegistryError};
use crate::state::hold::Freeze;

/// Freezes the registry; the freeze it replaced, if one stood.
pub async fn freeze(reg: &AnyRegistry, freeze: &Freeze) -> Result<Option<Freeze>, RegistryError> {
    let was = reg.read_freeze().await?;
    reg.set_freeze(freeze).await?;
    reg.flush().await?;
    let lease = reg.acquire_lease().await?;
    reg.release_lease(lease).await?;
    tracing::info!(by = %freeze.by, reason = %freeze.reason, "frozen");
    Ok(was)
}

/// Lifts the freeze; the one that stood (`None`: none did).
pub async fn unfreeze(reg: &AnyRegistry) -> Result<Option<Freeze>, RegistryError> {
    let was = reg.clear_freeze().await?;
    reg.flush().await?;
    if was.is_some() {
        tracing::info!("unfrozen");
    }
    Ok(was)
}
