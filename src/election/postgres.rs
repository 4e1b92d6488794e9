//! The PostgreSQL engine (`tokio-postgres`): a session-level advisory lock
//! on one dedicated, unpooled connection, and an epoch row as the fencing
//! token.
//!
//! - The lock key is a stable 64-bit hash of the election name; the lock
//!   is only ever asked for with `pg_try_advisory_lock` (a standby polls
//!   every TTL/6), and never twice on one session (a second grant would
//!   stack, and one unlock would not free it).
//! - Winning bumps `modelsync_leader.epoch` for the name
//!   (`UPDATE … SET epoch = epoch + 1 RETURNING epoch`, the row created if
//!   missing, with a random `incarnation` id): the new leader's epoch is
//!   larger than every earlier one of that row, and is valid in the
//!   namespace of the row's id and the election name (a recreated table
//!   or row starts again at 1 under another id).
//! - A dead leader's session must end so its lock is freed: the client
//!   sends TCP keepalives, and the session sets the server's
//!   `tcp_keepalives_*`, `tcp_user_timeout` and `idle_session_timeout`
//!   (the TTL: a leader self-checks every TTL/3, so only a stopped or cut
//!   off leader is idle that long).
//! - The leader self-checks every TTL/3 with a deadline (its backend may
//!   have been terminated): it still holds the lock on this backend and the
//!   row still carries its epoch. After any failure or timeout the
//!   connection is dropped, never reused.

use std::time::Duration;

use tokio_postgres::{Client, NoTls};
use tracing::debug;

use super::{Backend, Ctx, ElectionConfig, Won, renew_every};
use crate::clock::wall_ms;
use crate::term::{Fence, Namespace};

/// One dedicated connection and whether it holds the lock.
pub struct Session {
    client: Client,
    conn: tokio::task::JoinHandle<()>,
    key: i64,
    name: String,
    ttl: Duration,
    locked: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        // Closing the socket ends the backend, which frees the lock.
        self.conn.abort();
    }
}

/// The epoch table, and its `incarnation` column (added to a table an
/// older release created): a random id given to each election's row when
/// it is created, so that epochs of a recreated table or row never compare
/// with those stamped before.
const SETUP: &str = "CREATE TABLE IF NOT EXISTS modelsync_leader (\
     name text PRIMARY KEY, epoch bigint NOT NULL DEFAULT 0, holder text, since timestamptz, \
     incarnation text); \
     DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM information_schema.columns \
     WHERE table_schema = current_schema() AND table_name = 'modelsync_leader' \
     AND column_name = 'incarnation') THEN \
     ALTER TABLE modelsync_leader ADD COLUMN IF NOT EXISTS incarnation text; END IF; END $$";

impl Session {
    /// Opens the connection and prepares the session.
    pub async fn connect(b: &Backend, cfg: &ElectionConfig, ctx: &Ctx) -> Result<Session, String> {
        let Backend::Postgres {
            user,
            password,
            host,
            port,
            dbname,
        } = b
        else {
            unreachable!("a PostgreSQL backend");
        };
        let step = renew_every(cfg.ttl).max(Duration::from_millis(300));
        let mut pg = tokio_postgres::Config::new();
        pg.user(user)
            .host(host)
            .port(*port)
            .dbname(dbname)
            .application_name("modelsync-election")
            .connect_timeout(step)
            .keepalives(true)
            // TCP keepalive times are whole seconds (0 is EINVAL).
            .keepalives_idle(step.max(Duration::from_secs(1)))
            .keepalives_interval(Duration::from_secs(1))
            .keepalives_retries(3)
            .tcp_user_timeout(cfg.ttl);
        if let Some(p) = password {
            pg.password(p.expose().as_bytes());
        }
        super::sent();
        let connected = tokio::time::timeout(cfg.ttl, pg.connect(NoTls))
            .await
            .map_err(|_| "connecting to PostgreSQL timed out".to_string())?;
        let (client, connection) =
            connected.map_err(|e| format!("connecting to PostgreSQL: {}", chain(&e)))?;
        let conn = tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(error = %e, "the PostgreSQL election connection ended");
            }
        });
        let ttl_ms = cfg.ttl.as_millis();
        let secs = step.as_secs().max(1);
        let session_setup = format!(
            "SET idle_session_timeout = {ttl_ms}; SET tcp_keepalives_idle = {secs}; \
             SET tcp_keepalives_interval = {secs}; SET tcp_keepalives_count = 3; \
             SET tcp_user_timeout = {ttl_ms}; {SETUP}"
        );
        let s = Session {
            client,
            conn,
            key: lock_key(&cfg.name),
            name: cfg.name.clone(),
            ttl: cfg.ttl,
            locked: false,
        };
        s.timed(s.client.batch_execute(&session_setup))
            .await
            .map_err(|e| format!("preparing the PostgreSQL session: {e}"))?;
        ctx.contact();
        Ok(s)
    }

    /// Polls the lock (TTL/6) until it is granted, then bumps the epoch.
    pub async fn campaign(&mut self, ctx: &Ctx) -> Result<Won, String> {
        assert!(!self.locked, "never lock twice on one session");
        let poll = (self.ttl / 6).max(Duration::from_millis(100));
        loop {
            let started = wall_ms();
            let row = self
                .timed(
                    self.client
                        .query_one("SELECT pg_try_advisory_lock($1)", &[&self.key]),
                )
                .await?;
            ctx.contact();
            if row.get::<_, bool>(0) {
                self.locked = true;
                let (epoch, namespace) = self.bump_epoch(&ctx.identity()).await?;
                return Ok(Won {
                    epoch,
                    namespace,
                    acked_ms: started,
                });
            }
            let seen = self
                .timed(self.client.query_opt(
                    "SELECT holder, epoch FROM modelsync_leader WHERE name = $1",
                    &[&self.name],
                ))
                .await?;
            let (holder, epoch) = seen.map_or((None, None), |r| {
                let epoch: i64 = r.get(1);
                (r.get::<_, Option<String>>(0), Some(epoch as u64))
            });
            ctx.observed(holder, epoch);
            tokio::time::sleep(poll).await;
        }
    }

    /// Bumps the election's epoch (creating its row with a fresh random
    /// id if missing; a row of an older release gets one now); the epoch and
    /// the namespace it is valid in.
    async fn bump_epoch(&self, identity: &str) -> Result<(u64, Namespace), String> {
        let fresh = format!("{:016x}", fastrand::u64(..));
        self.timed(self.client.execute(
            "INSERT INTO modelsync_leader (name, incarnation) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING",
            &[&self.name, &fresh],
        ))
        .await?;
        let row = self
            .timed(self.client.query_one(
                "UPDATE modelsync_leader SET epoch = epoch + 1, holder = $2, since = now(), \
                 incarnation = coalesce(incarnation, $3) WHERE name = $1 RETURNING epoch, incarnation",
                &[&self.name, &identity, &fresh],
            ))
            .await?;
        let epoch: i64 = row.get(0);
        let incarnation: String = row.get(1);
        Ok((epoch as u64, Namespace::postgres(&incarnation, &self.name)))
    }

    /// Self-checks every TTL/3 (with a deadline of TTL/3) until a check
    /// fails, the deadline passes, or the executor marks the fence lost.
    pub async fn hold(&mut self, fence: &Fence, ctx: &Ctx) -> String {
        let every = renew_every(self.ttl);
        let (hi, lo) = ((self.key >> 32) & 0xffff_ffff, self.key & 0xffff_ffff);
        let epoch = fence.epoch as i64;
        loop {
            tokio::time::sleep(every).await;
            if let Some(why) = super::fence_lost(fence, "self-check") {
                return why;
            }
            let started = wall_ms();
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                [&hi, &lo, &self.name, &epoch];
            let check = self.client.query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
                 AND pid = pg_backend_pid() AND granted AND classid = $1::bigint::oid \
                 AND objid = $2::bigint::oid AND objsubid = 1) \
                 AND coalesce((SELECT epoch FROM modelsync_leader WHERE name = $3) = $4, false)",
                &params,
            );
            match self.timed(check).await {
                Ok(row) if row.get::<_, bool>(0) => {
                    fence.guard.acknowledged(started);
                    ctx.contact();
                }
                Ok(_) => {
                    return "the advisory lock or the epoch row is no longer this leader's".into();
                }
                Err(e) => return format!("self-check failed: {e}"),
            }
        }
    }

    /// Graceful: unlock, then close the connection.
    pub async fn resign(self) {
        if self.locked {
            let _ = self
                .timed(
                    self.client
                        .query_one("SELECT pg_advisory_unlock($1)", &[&self.key]),
                )
                .await;
        }
    }

    /// Runs `f` with the deadline TTL/3; a timeout is an error (the caller
    /// then drops the connection).
    async fn timed<T>(
        &self,
        f: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, String> {
        super::sent();
        match tokio::time::timeout(renew_every(self.ttl), f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(chain(&e)),
            Err(_) => Err(format!(
                "PostgreSQL did not answer within {} ms",
                renew_every(self.ttl).as_millis()
            )),
        }
    }
}

/// An error with its causes (tokio-postgres keeps the server's message in
/// the source).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

/// A stable 64-bit key for the election name (FNV-1a; `std`'s hasher is
/// not stable across releases).
pub fn lock_key(name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "modelsync-election:".bytes().chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_key_is_stable_and_per_name() {
        assert_eq!(lock_key("modelsync"), lock_key("modelsync"));
        assert_ne!(lock_key("modelsync"), lock_key("staging"));
        // Pinned: replicas of different releases must compete for one key.
        assert_eq!(lock_key("modelsync"), -9_101_078_905_669_102_933);
    }
}
