//! An elected daemon leader's fence and its fencing token as written on
//! models (`modelsync.epoch`): which namespace an epoch belongs to, how the
//! tag reads and writes, and how a leader judges a model's tag. Pure: no
//! I/O, no async (the guard is a few atomics; the caller passes the time).
//!
//! Epochs only order leaders of one election on one incarnation of one
//! engine: etcd's create revisions restart with a new cluster, a recreated
//! PostgreSQL epoch row starts again at 1, and two election names never
//! compare. So an epoch is written with its [`Namespace`] — engine,
//! incarnation (etcd's cluster id; the random id PostgreSQL's epoch row
//! gets when it is created) and election name — as
//! `<epoch>@<engine>/<incarnation>/<election>`, and compared only within
//! one namespace. A model stamped in another namespace (another engine,
//! election name, a restored or recreated engine, or a plain number
//! written by a release before namespaces) is simply stamped again; only
//! a newer epoch of the leader's own namespace makes it step down.

use std::fmt;

use super::{LOST_LEADERSHIP, LeaseGuard};

/// An elected daemon leader's fence (`watch --leader-election`): its term's
/// epoch and the namespace it was issued in (together, the fencing token
/// stamped on every model it writes), and a guard whose deadline the
/// election moves with each acknowledged renewal of the leadership (etcd's
/// lease keep-alive, PostgreSQL's self-check) and which is marked lost
/// when the leader steps down — by the election, or by the executor with
/// the cause (a model carried a newer epoch of the same namespace). The
/// executor asks it before each write, as it asks the applier lease's
/// guard. Clones share the guard.
#[derive(Debug, Clone)]
pub struct Fence {
    pub epoch: u64,
    pub namespace: Namespace,
    pub guard: LeaseGuard,
}

impl Fence {
    /// Whether the leader may write at `now_ms` (the wall clock,
    /// `clock::wall_ms`).
    pub fn check_at(&self, now_ms: i64) -> Result<(), &'static str> {
        self.guard.check_at(now_ms).map_err(|_| LOST_LEADERSHIP)
    }

    /// The token this leader stamps on the models it writes.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            epoch: self.epoch,
            namespace: Some(self.namespace.clone()),
        }
    }

    /// Steps down for `cause` (kept for the logs and the report; the first
    /// cause recorded wins).
    pub fn step_down(&self, cause: String) {
        self.guard.lose_because(cause);
    }

    /// Why the leadership was given up, when a cause was recorded.
    pub fn cause(&self) -> Option<String> {
        self.guard.cause()
    }

    /// Why a leader that is no longer sure it leads stops writing: `no
    /// longer the elected leader[: <cause>]`.
    pub fn lost_reason(&self) -> String {
        match self.cause() {
            Some(cause) => format!("{LOST_LEADERSHIP}: {cause}"),
            None => LOST_LEADERSHIP.into(),
        }
    }
}

/// Where an epoch is valid: one election of one incarnation of one engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// `etcd` or `postgresql`.
    pub engine: String,
    /// What a restore or re-creation of the engine's state changes: etcd's
    /// cluster id (hex), PostgreSQL's epoch-row id. No `/`.
    pub incarnation: String,
    /// `--leader-election-name`.
    pub election: String,
}

impl Namespace {
    /// An etcd cluster's namespace for `election`.
    pub fn etcd(cluster_id: u64, election: &str) -> Namespace {
        Namespace {
            engine: "etcd".into(),
            incarnation: format!("{cluster_id:016x}"),
            election: election.into(),
        }
    }

    /// A PostgreSQL epoch row's namespace for `election`.
    pub fn postgres(row_id: &str, election: &str) -> Namespace {
        Namespace {
            engine: "postgresql".into(),
            incarnation: row_id.replace('/', "_"),
            election: election.into(),
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} election {:?}",
            self.engine, self.incarnation, self.election
        )
    }
}

/// A `modelsync.epoch` value: an epoch and its namespace (`None`: a plain
/// number, as releases before namespaces wrote).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub epoch: u64,
    pub namespace: Option<Namespace>,
}

impl Stamp {
    /// `<epoch>@<engine>/<incarnation>/<election>` (a plain number without
    /// a namespace).
    pub fn render(&self) -> String {
        match &self.namespace {
            None => self.epoch.to_string(),
            Some(ns) => format!(
                "{}@{}/{}/{}",
                self.epoch, ns.engine, ns.incarnation, ns.election
            ),
        }
    }

    /// Reads a tag value; `None` when it is neither form.
    pub fn parse(value: &str) -> Option<Stamp> {
        let number = |s: &str| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u64>().ok())
                .flatten()
        };
        let Some((epoch, rest)) = value.split_once('@') else {
            return number(value).map(|epoch| Stamp {
                epoch,
                namespace: None,
            });
        };
        let (engine, rest) = rest.split_once('/')?;
        let (incarnation, election) = rest.split_once('/')?;
        if engine.is_empty() || incarnation.is_empty() || election.is_empty() {
            return None;
        }
        Some(Stamp {
            epoch: number(epoch)?,
            namespace: Some(Namespace {
                engine: engine.into(),
                incarnation: incarnation.into(),
                election: election.into(),
            }),
        })
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            None => write!(f, "epoch {} (no namespace: an older release)", self.epoch),
            Some(ns) => write!(f, "epoch {} of {ns}", self.epoch),
        }
    }
}

/// What a leader does with a model, given the model's `modelsync.epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Stamped with this leader's own token: nothing to write.
    Current,
    /// Stamp it with this leader's token (why: [`Restamp`]).
    Restamp(Restamp),
    /// A newer epoch of this leader's namespace: another replica leads;
    /// write nothing and step down.
    Newer(u64),
}

/// Why a model is stamped again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restamp {
    /// No tag.
    Unstamped,
    /// A tag that is neither form.
    Unreadable(String),
    /// An older epoch of this leader's namespace.
    Older(u64),
    /// Another namespace's stamp (or a plain number): not comparable.
    Foreign(Stamp),
}

/// Judges a model carrying `theirs` (its `modelsync.epoch`, if any) for a
/// leader whose token is `mine`.
pub fn judge(mine: &Stamp, theirs: Option<&str>) -> Judgement {
    let Some(value) = theirs else {
        return Judgement::Restamp(Restamp::Unstamped);
    };
    let Some(stamp) = Stamp::parse(value) else {
        return Judgement::Restamp(Restamp::Unreadable(value.into()));
    };
    if stamp.namespace.is_none() || stamp.namespace != mine.namespace {
        return Judgement::Restamp(Restamp::Foreign(stamp));
    }
    match stamp.epoch.cmp(&mine.epoch) {
        std::cmp::Ordering::Greater => Judgement::Newer(stamp.epoch),
        std::cmp::Ordering::Equal => Judgement::Current,
        std::cmp::Ordering::Less => Judgement::Restamp(Restamp::Older(stamp.epoch)),
    }
}

/// The cause a leader steps down with when `model` carries `newer`, an
/// epoch of its own namespace newer than `mine`.
pub fn newer_epoch_cause(model: &str, newer: u64, mine: &Stamp) -> String {
    let ns = mine
        .namespace
        .as_ref()
        .map_or_else(String::new, |ns| format!(" of {ns}"));
    format!(
        "model {model:?} carries epoch {newer}{ns}, newer than this leader's epoch {}: another replica leads",
        mine.epoch
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(engine: &str, inc: &str, election: &str) -> Namespace {
        Namespace {
            engine: engine.into(),
            incarnation: inc.into(),
            election: election.into(),
        }
    }

    fn mine(epoch: u64) -> Stamp {
        Stamp {
            epoch,
            namespace: Some(ns("postgresql", "a1b2", "modelsync")),
        }
    }

    #[test]
    fn stamps_round_trip_and_plain_numbers_read_as_no_namespace() {
        for s in [
            mine(7),
            Stamp {
                epoch: 48213,
                namespace: Some(Namespace::etcd(0xcdf8_1819_4e3a_8c32, "a/b@c d")),
            },
            Stamp {
                epoch: 3,
                namespace: None,
            },
        ] {
            assert_eq!(Stamp::parse(&s.render()), Some(s.clone()), "{}", s.render());
        }
        assert_eq!(mine(7).render(), "7@postgresql/a1b2/modelsync");
        assert_eq!(
            Namespace::etcd(1, "x").incarnation,
            "0000000000000001",
            "fixed width"
        );
        assert_eq!(Namespace::postgres("a/b", "x").incarnation, "a_b");
        assert_eq!(
            Stamp::parse("48213"),
            Some(Stamp {
                epoch: 48213,
                namespace: None
            })
        );
        for bad in [
            "",
            "-1",
            "+4",
            "x@etcd/1/n",
            "4@etcd/1/",
            "4@etcd//n",
            "4@/1/n",
            "4@etcd",
            "1e3",
        ] {
            assert_eq!(Stamp::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_a_newer_epoch_of_the_own_namespace_makes_a_leader_step_down() {
        let me = mine(7);
        assert_eq!(judge(&me, Some(&mine(7).render())), Judgement::Current);
        assert_eq!(judge(&me, Some(&mine(8).render())), Judgement::Newer(8));
        assert_eq!(
            judge(&me, Some(&mine(6).render())),
            Judgement::Restamp(Restamp::Older(6))
        );
        assert_eq!(judge(&me, None), Judgement::Restamp(Restamp::Unstamped));
        assert_eq!(
            judge(&me, Some("garbage")),
            Judgement::Restamp(Restamp::Unreadable("garbage".into()))
        );
        // History: a plain number from an etcd era, another engine, another
        // election name, a restored etcd or a recreated epoch row.
        for other in [
            "48213".to_string(),
            "48213@etcd/00000000000000ff/modelsync".into(),
            "48213@postgresql/a1b2/staging".into(),
            "48213@postgresql/ffff/modelsync".into(),
        ] {
            let j = judge(&me, Some(&other));
            assert!(
                matches!(&j, Judgement::Restamp(Restamp::Foreign(s)) if s.epoch == 48213),
                "{other}: {j:?}"
            );
        }
    }

    #[test]
    fn the_cause_names_the_model_and_both_epochs() {
        let c = newer_epoch_cause("churn", 9, &mine(7));
        assert!(c.contains("\"churn\"") && c.contains("epoch 9") && c.contains("epoch 7"));
        assert!(c.contains("postgresql a1b2 election \"modelsync\""), "{c}");
    }
}
