//! Holds written and released (issue 19): [`place`] (a rollback, a
//! verification's `onFailure: hold`) and [`release`] (`modelsync hold
//! release`; the pass releases a hold whose version the manifests declare
//! through its own plan action, `Action::ReleaseHold`). A hold is the model
//! tag `modelsync.hold.<target>` (`state::hold`).

use crate::registry::{AnyRegistry, HeldLease, Registry, RegistryError};
use crate::state::hold::{self, Hold};

/// Places `hold` on `target` of `model` (replacing one that stands), for a
/// caller under the applier lease.
pub async fn place<R: Registry>(
    reg: &R,
    model: &str,
    target: &str,
    hold: &Hold,
) -> Result<(), RegistryError> {
    reg.set_model_tag(model, &hold::tag_key(target), &hold.render())
        .await
}

/// Releases the hold on `target` of `model` under the applier lease, which
/// it takes: the hold released, `None` when there was none.
pub async fn release(
    reg: &AnyRegistry,
    model: &str,
    target: &str,
) -> Result<Option<Hold>, RegistryError> {
    let lease = reg.acquire_lease().await?;
    let held = lease.held();
    let out = tokio::select! {
        out = release_under_lease(reg, model, target, held.as_ref()) => out,
        never = reg.keep_lease(&lease) => match never {},
    };
    if let Err(e) = reg.release_lease(lease).await {
        tracing::warn!(error = %e, "could not release the applier lease");
    }
    out
}

/// [`release`] for a caller that holds the applier lease.
pub async fn release_under_lease<R: Registry>(
    reg: &R,
    model: &str,
    target: &str,
    lease: Option<&HeldLease>,
) -> Result<Option<Hold>, RegistryError> {
    let Some(live) = reg.get_model(model).await? else {
        return Err(RegistryError::NotFound(format!("model {model:?}")));
    };
    let Some(was) = hold::holds(&live).remove(target) else {
        return Ok(None);
    };
    if let Some(h) = lease
        && h.guard().check_at(crate::clock::wall_ms()).is_err()
    {
        return Err(RegistryError::Other(crate::term::lost_reason(h.guard())));
    }
    reg.delete_model_tag(model, &hold::tag_key(target)).await?;
    reg.flush().await?;
    tracing::info!(model, target, version = was.version, "hold released");
    Ok(Some(was))
}
