//! The applier lease as the rest of modelsync sees it: [`Lease`], opaque,
//! taken, kept and released through [`AnyRegistry`], and [`HeldLease`],
//! the executor's side (the guard it asks before writing, and
//! [`HeldLease::confirm`]). The deadline arithmetic is `crate::term`'s; the
//! MLflow lease model is `mlflow/lease.rs`'s (its settings come with the
//! registry's configuration, `MlflowConfig::lease`).
//!
//! The holder's heartbeat ([`AnyRegistry::keep_lease`]) renews the lease
//! every TTL/3; a renewal that finds the lease held by someone else, or
//! released (`lease release --force`), marks it lost at once, with that
//! cause; the executor has it renew at once after a conflict
//! ([`HeldLease::confirm`]), which is how such a loss shows first.

use std::convert::Infallible;
use std::sync::Arc;

use tracing::{debug, info, warn};

pub use super::mlflow::lease::LeaseInfo;
use super::mlflow::lease::Renewal;
use super::{AnyRegistry, RegistryError, Result, mlflow};
use crate::clock::wall_ms;
use crate::term::{LeaseGuard, lost_reason, renew_every};

/// The applier lease held on a registry, opaque to callers: keep it with
/// [`AnyRegistry::keep_lease`], hand [`Lease::held`] to the writes,
/// release it with [`AnyRegistry::release_lease`]. On the embedded
/// registry it holds nothing (the file's exclusive lock plays that role).
#[derive(Debug)]
pub struct Lease(Option<(mlflow::lease::Lease, HeldLease)>);

impl Lease {
    /// What the executor asks before each write; `None` on the embedded
    /// registry, whose lock cannot be lost.
    pub fn held(&self) -> Option<HeldLease> {
        self.0.as_ref().map(|(_, h)| h.clone())
    }
}

/// The executor's side of a held applier lease: the guard it asks before
/// each write, and [`HeldLease::confirm`], which has the heartbeat renew
/// at once — asked after a conflict, which is how a forced release or a
/// take-over by another applier shows up first. Clones share both.
#[derive(Debug, Clone)]
pub struct HeldLease {
    guard: LeaseGuard,
    recheck: Arc<Recheck>,
}

/// The executor asks for a renewal now; the heartbeat says it tried.
#[derive(Debug, Default)]
struct Recheck {
    asked: tokio::sync::Notify,
    answered: tokio::sync::Notify,
}

impl HeldLease {
    /// The guard the writes ask.
    pub fn guard(&self) -> &LeaseGuard {
        &self.guard
    }

    /// Has the heartbeat renew now and waits (at most TTL/3) for a renewal
    /// that started after the question: `Err` with [`lost_reason`] when the
    /// lease turns out lost (or its deadline passed meanwhile).
    pub async fn confirm(&self) -> Result<(), String> {
        let asked = wall_ms();
        let renewed = async {
            loop {
                let answered = self.recheck.answered.notified();
                tokio::pin!(answered);
                answered.as_mut().enable();
                if self.guard.is_lost() || self.guard.acked_ms() >= asked {
                    return;
                }
                self.recheck.asked.notify_one();
                answered.await;
            }
        };
        let _ = tokio::time::timeout(renew_every(self.guard.ttl()), renewed).await;
        self.guard
            .check_at(wall_ms())
            .map_err(|_| lost_reason(&self.guard))
    }
}

impl AnyRegistry {
    /// Takes the applier lease before a plan that will be applied: MLflow
    /// gets a lease model (see `mlflow::lease`; its name, wait and TTL
    /// from the registry's configuration: `MODELSYNC_LEASE_MODEL`,
    /// `MODELSYNC_LEASE_WAIT`, default 10m, `MODELSYNC_LEASE_TTL`, default
    /// 30s, both on the wall clock); the embedded registry is already
    /// locked exclusively by `open(write: true)`.
    pub async fn acquire_lease(&self) -> Result<Lease> {
        match self {
            AnyRegistry::Embedded(_) => Ok(Lease(None)),
            AnyRegistry::Mlflow(r) => {
                let lease = r.acquire_lease().await?;
                let held = HeldLease {
                    guard: LeaseGuard::new(r.lease_config().ttl, lease.taken_ms),
                    recheck: Arc::default(),
                };
                Ok(Lease(Some((lease, held))))
            }
        }
    }

    /// The heartbeat: renews `lease` every TTL/3 — and at once when the
    /// executor asks ([`HeldLease::confirm`]) — for as long as it is polled
    /// (run it beside the work the lease protects; it never ends). A failed
    /// renewal is retried sooner; one that finds the lease released or
    /// held by another marks the guard lost, with why, and stops renewing.
    pub async fn keep_lease(&self, lease: &Lease) -> Infallible {
        let (AnyRegistry::Mlflow(r), Some((lease, held))) = (self, &lease.0) else {
            return std::future::pending().await;
        };
        let (guard, recheck) = (&held.guard, &held.recheck);
        let every = renew_every(guard.ttl());
        let mut next = every;
        loop {
            tokio::select! {
                () = tokio::time::sleep(next) => {}
                () = recheck.asked.notified() => {}
            }
            if guard.is_lost() {
                recheck.answered.notify_waiters();
                return std::future::pending().await;
            }
            next = every;
            match tokio::time::timeout(every, r.renew_lease(lease, guard.ttl())).await {
                Ok(Ok(Renewal::Renewed { started_ms })) => {
                    guard.acknowledged(started_ms);
                    debug!(lease = %lease.name, "lease renewed");
                }
                Ok(Ok(Renewal::Lost(cause))) => {
                    // Reported once, with the pass's outcome.
                    info!(lease = %lease.name, cause = %cause, "the applier lease is no longer held");
                    guard.lose_because(cause);
                }
                Ok(Err(e)) => {
                    warn!(lease = %lease.name, error = %e, "could not renew the applier lease; retrying");
                    next = every / 3;
                }
                Err(_) => {
                    warn!(lease = %lease.name, "renewing the applier lease timed out; retrying");
                    next = every / 3;
                }
            }
            recheck.answered.notify_waiters();
        }
    }

    /// Releases a lease taken by [`AnyRegistry::acquire_lease`]. `Ok(Some(
    /// cause))` when it turns out it was no longer held although its
    /// deadline had not passed (released by force, taken over before it
    /// expired): the writes made since were not protected by it, and the
    /// guard is marked lost with that cause. Found taken over after its
    /// deadline passed, it was simply expired: every write was made before.
    pub async fn release_lease(&self, lease: Lease) -> Result<Option<String>> {
        let (AnyRegistry::Mlflow(r), Some((lease, held))) = (self, lease.0) else {
            return Ok(None);
        };
        let believed = !held.guard.is_lost() && wall_ms() < held.guard.deadline_ms();
        let lost = r.release_lease(&lease).await?.filter(|_| believed);
        if let Some(cause) = &lost {
            held.guard.lose_because(cause.clone());
        }
        Ok(lost)
    }

    /// The applier lease as the registry has it: the embedded registry's
    /// is its file lock; MLflow's a lease model, read.
    pub async fn read_lease(&self) -> Result<LeaseRecord> {
        match self {
            AnyRegistry::Embedded(_) => Ok(LeaseRecord::FileLock),
            AnyRegistry::Mlflow(r) => Ok(LeaseRecord::Model {
                name: r.lease_config().model.clone(),
                info: r.read_lease().await?,
            }),
        }
    }

    /// Frees the applier lease whoever holds it (`lease release --force`);
    /// an error on the embedded registry, which has no lease but its file
    /// lock.
    pub async fn force_release_lease(&self) -> Result<()> {
        match self {
            AnyRegistry::Embedded(_) => Err(RegistryError::Invalid(EMBEDDED.into())),
            AnyRegistry::Mlflow(r) => r.force_release_lease().await,
        }
    }

    /// The name of the model that holds the applier lease, where a lease
    /// model holds it (MLflow), to leave out of what is exported.
    pub fn lease_model_name(&self) -> Option<&str> {
        match self {
            AnyRegistry::Embedded(_) => None,
            AnyRegistry::Mlflow(r) => Some(&r.lease_config().model),
        }
    }
}

/// What holds the applier lease on a registry (`modelsync lease show`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseRecord {
    /// The embedded registry: its file lock ([`EMBEDDED`]), held by an
    /// apply while it runs.
    FileLock,
    /// The lease model `name`, as read (`None`: it does not exist).
    Model {
        name: String,
        info: Option<LeaseInfo>,
    },
}

/// Why the embedded registry has no lease to show or release.
pub const EMBEDDED: &str = "the embedded registry's applier lease is its file lock, held by an \
     apply while it runs and freed when it exits (even when killed); there is no lease to show or release";
