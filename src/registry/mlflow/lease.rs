//! A lease against concurrent appliers (a CI job and the daemon, or two CI
//! jobs), built on the one atomic test-and-set MLflow has: registered model
//! names are unique, so `registered-models/create` of the lease model
//! succeeds for exactly one caller.
//!
//! The lease model (`modelsync-lease` by default) carries its holder,
//! start and expiry in tags; the holder's heartbeat renews the expiry
//! (`renew_lease`, see `registry::lease`). Released by deleting the model
//! (needs MANAGE) or, failing that, by expiring it. Its name and times
//! come with the registry's configuration ([`LeaseConfig`]). An expired lease is taken over by rewriting its
//! tags and reading them back after a pause; the per-create duplicate check
//! in `write.rs` is the backstop if two breakers race.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use tracing::{info, warn};

use super::MlflowRegistry;
use super::client::Payload;
use super::config::LeaseConfig;
use super::endpoints as ep;
use super::wire::Empty;
use crate::clock::rfc3339_seconds as rfc3339;
use crate::registry::{Registry, RegistryError, Result};
use crate::state::LiveModel;
use crate::state::tags::{LEASE_EXPIRES, LEASE_HOLDER, LEASE_STARTED};

/// A held lease; release it with [`MlflowRegistry::release_lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    /// When the take started (wall ms): its expiry is this + TTL.
    pub taken_ms: i64,
}

/// What one attempt at taking the lease found.
enum Attempt {
    Taken(Lease),
    /// Another holder, whose lease expires at `until` (wall ms).
    Held {
        who: String,
        until: i64,
    },
    /// Lost a race (released meanwhile, or overwritten): try again at once.
    Again,
}

/// The applier lease as read from the registry (`modelsync lease show`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The lease model.
    pub name: String,
    /// `host:pid:nonce`.
    pub holder: String,
    /// When it was taken, ms since the epoch (0: unknown).
    pub started_ms: i64,
    /// When it expires, ms since the epoch (0: released).
    pub expires_ms: i64,
}

impl LeaseInfo {
    /// The holder's host (the holder id's first part).
    pub fn host(&self) -> &str {
        self.holder.split(':').next().unwrap_or_default()
    }

    /// The holder's process id (the holder id's second part).
    pub fn pid(&self) -> Option<u32> {
        self.holder.split(':').nth(1).and_then(|p| p.parse().ok())
    }

    /// Held at `now_ms`: a holder and an expiry still ahead.
    pub fn held_at(&self, now_ms: i64) -> bool {
        !self.holder.is_empty() && self.expires_ms > now_ms
    }
}

/// What a renewal of the applier lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// Still held; renewed from `started_ms` (wall clock) on.
    Renewed { started_ms: i64 },
    /// No longer held: why (released by force, taken over).
    Lost(String),
}

impl MlflowRegistry {
    /// The applier lease's settings.
    pub fn lease_config(&self) -> &LeaseConfig {
        &self.lease
    }

    /// Takes the lease, waiting while someone else holds it.
    pub async fn acquire_lease(&self) -> Result<Lease> {
        let (name, wait) = (self.lease.model.as_str(), self.lease.wait);
        let holder = holder_id();
        let start = Instant::now();
        let mut announced = false;
        loop {
            let (who, until) = match self.try_take(&holder).await? {
                Attempt::Taken(lease) => return Ok(lease),
                Attempt::Again => continue,
                Attempt::Held { who, until } => (who, until),
            };
            if start.elapsed() >= wait {
                return Err(RegistryError::Other(format!(
                    "another modelsync holds the lease {name:?} ({who}, expires in {} s); gave up after {} s. \
                     If no other apply is running, delete the registered model {name:?}.",
                    (until - now_ms()).max(0) / 1000,
                    wait.as_secs()
                )));
            }
            if !announced {
                // Once, at warn level, so it shows at the default verbosity.
                warn!(
                    lease = name,
                    holder = %who,
                    until = %rfc3339(until),
                    expires_in_s = (until - now_ms()).max(0) / 1000,
                    "waiting for the applier lease held by another modelsync"
                );
                announced = true;
            }
            tokio::time::sleep(self.lease.poll).await;
        }
    }

    /// One attempt at taking the lease for `holder`: create the lease
    /// model (the test-and-set), or take over an expired or released one.
    async fn try_take(&self, holder: &str) -> Result<Attempt> {
        let name = self.lease.model.as_str();
        let taken_ms = now_ms();
        let expires = taken_ms + self.lease.ttl.as_millis() as i64;
        let tags = BTreeMap::from([
            (LEASE_HOLDER.to_string(), holder.to_string()),
            (LEASE_EXPIRES.to_string(), expires.to_string()),
            (LEASE_STARTED.to_string(), taken_ms.to_string()),
        ]);
        let description =
            "modelsync's lease against concurrent appliers; safe to delete when no apply runs";
        match self.create_model(name, Some(description), &tags).await {
            Ok(()) | Err(RegistryError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
        let current = self.get_model(name).await?;
        let who = current
            .as_ref()
            .and_then(|m| m.tags.get(LEASE_HOLDER).cloned())
            .unwrap_or_default();
        let until = current
            .as_ref()
            .and_then(|m| m.tags.get(LEASE_EXPIRES)?.parse::<i64>().ok())
            .unwrap_or(0);
        let lease = Lease {
            name: name.to_string(),
            holder: holder.to_string(),
            taken_ms,
        };
        if who == holder {
            info!(lease = name, holder = %holder, "lease taken");
            return Ok(Attempt::Taken(lease));
        }
        if current.is_some() && until <= now_ms() {
            warn!(lease = name, previous = %who, "taking over an expired lease");
            return self.take_over(lease, &tags).await;
        }
        Ok(Attempt::Held { who, until })
    }

    /// Takes over an expired or released lease: its tags rewritten, then,
    /// after a pause, read back to confirm that no other breaker overwrote
    /// them.
    async fn take_over(&self, lease: Lease, tags: &BTreeMap<String, String>) -> Result<Attempt> {
        let name = lease.name.as_str();
        let write = async {
            for key in [LEASE_HOLDER, LEASE_EXPIRES, LEASE_STARTED] {
                self.set_model_tag(name, key, &tags[key]).await?;
            }
            Ok(())
        };
        match write.await {
            Ok(()) => {}
            // Released (deleted) between our read and our write: the next
            // round creates it afresh.
            Err(RegistryError::NotFound(_)) => return Ok(Attempt::Again),
            Err(e) => return Err(not_permitted(name, e)),
        }
        tokio::time::sleep(self.lease.poll).await;
        let again = self.get_model(name).await?;
        let holder = again.and_then(|m| m.tags.get(LEASE_HOLDER).cloned());
        if holder.as_deref() == Some(lease.holder.as_str()) {
            info!(lease = name, holder = %lease.holder, "lease taken over");
            return Ok(Attempt::Taken(lease));
        }
        Ok(Attempt::Again)
    }

    /// Releases a lease: deletes the lease model, or expires it when this
    /// user may not delete models (MANAGE). `Ok(Some(cause))` when the
    /// lease was no longer this holder's (released by force, taken over):
    /// then nothing is written.
    pub async fn release_lease(&self, lease: &Lease) -> Result<Option<String>> {
        let current = self.get_model(&lease.name).await?;
        if let Some(cause) = not_ours(current.as_ref(), lease) {
            info!(lease = %lease.name, cause = %cause, "the applier lease was no longer held at release");
            return Ok(Some(cause));
        }
        let body = json!({ "name": lease.name });
        match self
            .client
            .call::<Empty>(&ep::DELETE_MODEL, Payload::Json(&body))
            .await
        {
            Ok(_) => Ok(None),
            Err(_) => self
                .set_model_tag(&lease.name, LEASE_EXPIRES, "0")
                .await
                .map(|()| None),
        }
    }
}

/// Why `lease` is no longer its holder's, judging by the lease model as
/// read (`None`: it still is).
fn not_ours(current: Option<&LiveModel>, lease: &Lease) -> Option<String> {
    let Some(model) = current else {
        return Some(format!(
            "it was released while this apply ran (`modelsync lease release --force`, or the \
             lease model {:?} deleted)",
            lease.name
        ));
    };
    match model.tags.get(LEASE_HOLDER).map(String::as_str) {
        Some(h) if h == lease.holder => None,
        None | Some("") => Some("it was released while this apply ran".into()),
        Some(other) => Some(format!("another modelsync took it over ({other})")),
    }
}

impl MlflowRegistry {
    /// Renews a held lease: reads the lease model and, when `lease` still
    /// holds it, sets its expiry to now + `ttl`: [`Renewal::Renewed`] with
    /// the time the renewal started (the new expiry is that + `ttl`), or
    /// [`Renewal::Lost`] with why it is no longer held.
    pub async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Renewal> {
        let started = now_ms();
        let current = self.get_model(&lease.name).await?;
        if let Some(cause) = not_ours(current.as_ref(), lease) {
            return Ok(Renewal::Lost(cause));
        }
        let expires = started + ttl.as_millis() as i64;
        self.set_model_tag(&lease.name, LEASE_EXPIRES, &expires.to_string())
            .await?;
        Ok(Renewal::Renewed {
            started_ms: started,
        })
    }

    /// The lease model as a lease; `None` when it does not exist.
    pub async fn read_lease(&self) -> Result<Option<LeaseInfo>> {
        let name = self.lease.model.as_str();
        let Some(m) = self.get_model(name).await? else {
            return Ok(None);
        };
        let ms = |k: &str| m.tags.get(k).and_then(|v| v.parse::<i64>().ok());
        Ok(Some(LeaseInfo {
            name: name.to_string(),
            holder: m.tags.get(LEASE_HOLDER).cloned().unwrap_or_default(),
            started_ms: ms(LEASE_STARTED).unwrap_or(0),
            expires_ms: ms(LEASE_EXPIRES).unwrap_or(0),
        }))
    }

    /// Frees the lease whoever holds it (`lease release --force`):
    /// deletes the lease model, or expires it when this user may not.
    pub async fn force_release_lease(&self) -> Result<()> {
        let name = self.lease.model.as_str();
        let body = json!({ "name": name });
        match self
            .client
            .call::<Empty>(&ep::DELETE_MODEL, Payload::Json(&body))
            .await
        {
            Ok(_) => Ok(()),
            Err(_) => self
                .set_model_tag(name, LEASE_EXPIRES, "0")
                .await
                .map_err(|e| not_permitted(name, e)),
        }
    }
}

/// A permission error on the lease model, said in terms of the lease: the
/// model was created by another user (who got MANAGE on it), and this user
/// needs EDIT on it to take it over.
fn not_permitted(name: &str, e: RegistryError) -> RegistryError {
    match e {
        RegistryError::PermissionDenied { operation, message } => RegistryError::PermissionDenied {
            operation: format!("taking over the applier lease {name:?} ({operation})"),
            message: format!(
                "{message}; the lease model was created by another user: grant this user EDIT on \
                 the registered model {name:?} (every applier sharing the lease needs it), or have \
                 its creator or an admin delete it"
            ),
        },
        other => other,
    }
}

fn holder_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!("{host}:{}:{:08x}", std::process::id(), fastrand::u32(..))
}

/// Lease expiry runs on the wall clock, never on `MODELSYNC_NOW`.
fn now_ms() -> i64 {
    crate::clock::wall_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_info_parses_the_holder() {
        let i = LeaseInfo {
            name: "modelsync-lease".into(),
            holder: "ci-7:4242:feedface".into(),
            started_ms: 1,
            expires_ms: 10,
        };
        assert_eq!((i.host(), i.pid()), ("ci-7", Some(4242)));
        assert!(i.held_at(9) && !i.held_at(10));
    }
}
