//! The etcd engine, through etcd's election API (the `etcd-client` crate).
//!
//! A session is one lease: granted with the TTL (the TTL the server
//! granted is read back and used), kept alive by a task from the moment it
//! is granted — also while the candidate waits in its campaign, so a
//! waiting candidate's lease never lapses — and revoked on a graceful
//! shutdown only (never on drop: a crashed replica's lease simply expires).
//! The campaign blocks until this replica leads, so it runs on a second
//! client *without* a request timeout (the keep-alive and observe streams
//! too); unary calls (grant, get, resign, revoke) use a client with one.
//! After winning, the replica re-reads its own key: it must exist, be
//! bound to its lease, and its create revision — the fencing token — must
//! be the one the campaign returned; the epoch is valid in the namespace of
//! the cluster's id and the election name (a new cluster, or a restore
//! with a new `--initial-cluster-token`, has another id; a restore keeping
//! the token and peer URLs keeps the id, and its revisions go back to the
//! snapshot's unless `--bump-revision` is given). Every request requires an
//! etcd leader
//! (`require_leader`), so a member cut off from its quorum answers with an
//! error at once instead of serving stale state.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, LeaderKey, ResignOptions};
use tracing::{debug, warn};

use super::{Ctx, ElectionConfig, Won, renew_every};
use crate::clock::wall_ms;
use crate::term::{Fence, Namespace};

/// One candidacy: a lease, its keep-alive, the observer.
pub struct Session {
    /// Unary calls, with a request timeout.
    client: Client,
    /// The blocking campaign and the streams: no request timeout.
    blocking: Client,
    lease: i64,
    ttl: Duration,
    /// The election's key prefix in etcd.
    name: String,
    /// `--leader-election-name`.
    election: String,
    key: Option<LeaderKey>,
    /// When the last acknowledged keep-alive started (wall ms).
    acked: Arc<AtomicI64>,
    /// The server said the lease is gone (TTL 0).
    expired: Arc<AtomicBool>,
    keeper: tokio::task::JoinHandle<()>,
    observer: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.keeper.abort();
        self.observer.abort();
    }
}

impl Session {
    /// Connects both clients and grants the lease.
    pub async fn connect(
        endpoints: &[String],
        cfg: &ElectionConfig,
        ctx: &Ctx,
    ) -> Result<Session, String> {
        let step = renew_every(cfg.ttl).max(Duration::from_millis(300));
        let base = ConnectOptions::new()
            .with_connect_timeout(step)
            .with_keep_alive(step, step)
            .with_require_leader(true);
        let client = Client::connect(endpoints, Some(base.clone().with_timeout(step)))
            .await
            .map_err(|e| format!("connecting to etcd: {e}"))?;
        let blocking = Client::connect(endpoints, Some(base))
            .await
            .map_err(|e| format!("connecting to etcd: {e}"))?;
        let want = cfg.ttl.as_secs().max(1) as i64;
        let started = wall_ms();
        super::sent();
        let granted = client
            .lease_client()
            .grant(want, None)
            .await
            .map_err(|e| format!("granting an etcd lease: {e}"))?;
        let ttl = Duration::from_secs(granted.ttl().max(1) as u64);
        if granted.ttl() != want {
            warn!(
                asked = want,
                granted = granted.ttl(),
                "etcd granted another TTL than asked; using it"
            );
        }
        ctx.granted(ttl);
        ctx.contact();
        let acked = Arc::new(AtomicI64::new(started));
        let expired = Arc::new(AtomicBool::new(false));
        let keeper = tokio::spawn(keep_alive(
            blocking.clone(),
            granted.id(),
            ttl,
            acked.clone(),
            expired.clone(),
            ctx.view.clone(),
        ));
        let observer = tokio::spawn(observe(
            blocking.clone(),
            cfg.name.clone(),
            ttl,
            ctx.view.clone(),
        ));
        Ok(Session {
            client,
            blocking,
            lease: granted.id(),
            ttl,
            name: election_name(&cfg.name),
            election: cfg.name.clone(),
            key: None,
            acked,
            expired,
            keeper,
            observer,
        })
    }

    /// Campaigns (blocking, lease kept alive meanwhile) and verifies the
    /// win by re-reading the own key.
    pub async fn campaign(&mut self, ctx: &Ctx) -> Result<Won, String> {
        let identity = ctx.identity();
        let mut election = self.blocking.election_client();
        let mut resp = loop {
            if self.expired.load(Ordering::SeqCst) {
                return Err("the candidate's etcd lease expired".into());
            }
            super::sent();
            match election
                .campaign(self.name.as_str(), identity.as_str(), self.lease)
                .await
            {
                Ok(r) => break r,
                Err(e) => {
                    debug!(error = %e, "etcd campaign interrupted; campaigning again");
                    tokio::time::sleep(renew_every(self.ttl) / 3).await;
                }
            }
        };
        let key = resp
            .take_leader()
            .ok_or("etcd's campaign answer has no leader key")?;
        super::sent();
        let got = self
            .client
            .kv_client()
            .get(key.key(), None)
            .await
            .map_err(|e| format!("re-reading the own leader key: {e}"))?;
        let kv = got
            .kvs()
            .first()
            .ok_or("the own leader key is gone right after winning")?;
        if kv.lease() != self.lease || kv.create_revision() != key.rev() {
            return Err(format!(
                "the own leader key does not match the campaign (lease {} vs {}, revision {} vs {})",
                kv.lease(),
                self.lease,
                kv.create_revision(),
                key.rev()
            ));
        }
        // Epochs of another cluster (a new one, a restore with a new
        // cluster token) never compare with this one's.
        let cluster = got
            .header()
            .map(|h| h.cluster_id())
            .ok_or("etcd's answer carries no header (cluster id)")?;
        ctx.contact();
        self.key = Some(key);
        Ok(Won {
            epoch: kv.create_revision() as u64,
            namespace: Namespace::etcd(cluster, &self.election),
            acked_ms: self.acked.load(Ordering::SeqCst),
        })
    }

    /// Moves the fence's deadline with each keep-alive until the lease
    /// expires, the deadline passes, the executor marks the fence lost, or
    /// the observed leader is someone else.
    pub async fn hold(&mut self, fence: &Fence, ctx: &Ctx) -> String {
        let mut view = ctx.view.subscribe();
        let tick = (renew_every(self.ttl) / 3).max(Duration::from_millis(50));
        loop {
            fence.guard.acknowledged(self.acked.load(Ordering::SeqCst));
            if self.expired.load(Ordering::SeqCst) {
                return "the etcd lease expired".into();
            }
            if let Some(why) = super::fence_lost(fence, "keep-alive") {
                return why;
            }
            if let Some(seen) = newer_epoch(&view, fence.epoch) {
                return format!("etcd reports a newer leader (epoch {seen})");
            }
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                _ = view.changed() => {}
            }
        }
    }

    /// Graceful: resign when leading, then revoke the lease.
    pub async fn resign(mut self) {
        if let Some(key) = self.key.take() {
            let opts = ResignOptions::new().with_leader(key);
            super::sent();
            if let Err(e) = self.client.election_client().resign(Some(opts)).await {
                warn!(error = %e, "etcd resign failed; the lease is revoked instead");
            }
        }
        super::sent();
        if let Err(e) = self.client.lease_client().revoke(self.lease).await {
            warn!(error = %e, "revoking the etcd lease failed; it expires after its TTL");
        }
    }
}

/// The election key prefix for `--leader-election-name`.
fn election_name(name: &str) -> String {
    format!("modelsync/election/{name}")
}

/// The observed leader epoch, when newer than `mine`.
fn newer_epoch(view: &tokio::sync::watch::Receiver<super::View>, mine: u64) -> Option<u64> {
    view.borrow().observed_epoch.filter(|e| *e > mine)
}

/// Keeps the lease alive every TTL/3 (re-opening the stream after an
/// error) until the server says it expired.
async fn keep_alive(
    client: Client,
    lease: i64,
    ttl: Duration,
    acked: Arc<AtomicI64>,
    expired: Arc<AtomicBool>,
    view: tokio::sync::watch::Sender<super::View>,
) {
    let every = renew_every(ttl);
    loop {
        super::sent();
        let opened = tokio::time::timeout(every, client.lease_client().keep_alive(lease)).await;
        let (mut keeper, mut stream) = match opened {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => {
                debug!(error = %e, "etcd keep-alive stream failed to open; retrying");
                tokio::time::sleep(every / 3).await;
                continue;
            }
            Err(_) => continue,
        };
        loop {
            let started = wall_ms();
            super::sent();
            if keeper.keep_alive().await.is_err() {
                break;
            }
            match tokio::time::timeout(every, stream.message()).await {
                Ok(Ok(Some(resp))) if resp.ttl() <= 0 => {
                    expired.store(true, Ordering::SeqCst);
                    return;
                }
                Ok(Ok(Some(_))) => {
                    acked.fetch_max(started, Ordering::SeqCst);
                    view.send_modify(|v| v.contact_ms = wall_ms());
                }
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => {
                    debug!("etcd keep-alive stream broke; re-opening");
                    break;
                }
            }
            tokio::time::sleep(every).await;
        }
        tokio::time::sleep(every / 6).await;
    }
}

/// Follows the election's leader (for `/status`), re-opening the stream
/// after an error.
async fn observe(
    client: Client,
    name: String,
    ttl: Duration,
    view: tokio::sync::watch::Sender<super::View>,
) {
    let ctx = Ctx { view };
    let name = election_name(&name);
    loop {
        super::sent();
        match client.election_client().observe(name.as_str()).await {
            Ok(mut stream) => {
                while let Ok(Some(resp)) = stream.message().await {
                    let (leader, epoch) = match resp.kv() {
                        Some(kv) => (
                            kv.value_str().ok().map(str::to_string),
                            Some(kv.create_revision() as u64),
                        ),
                        None => (None, None),
                    };
                    ctx.contact();
                    ctx.observed(leader, epoch);
                }
            }
            Err(e) => debug!(error = %e, "etcd observe failed; retrying"),
        }
        tokio::time::sleep(renew_every(ttl) / 2).await;
    }
}
