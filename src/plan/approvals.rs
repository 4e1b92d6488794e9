//! Which signed approvals an `approvals` gate counts, and why each other
//! one does not (`docs/approvals.md`, "What counts").
//!
//! The gate reads both places an approval is kept: the version's
//! `modelsync.approval.*` tags, and the `approvals/` files read with the
//! manifests that name this model. The channel proves nothing — anyone
//! with EDIT can write a tag, anyone who can push can commit a file — so
//! each record counts only when its SSH signature verifies against the
//! approvers file for the principal it names (as `ssh-keygen -Y verify`
//! checks it) and it names this registry (and workspace), model, target,
//! version, source and (when it records one) digest. Of one principal's
//! valid statements the latest counts; a rejection blocks until the same
//! principal signs a later approval or it is removed; an expired one does
//! not count. Distinct principals are counted, each signing key once.
//! Pure: the live version, the approvals read and the time in, a
//! [`Tally`] out.

use std::collections::BTreeMap;
use std::fmt;

use crate::clock;
use crate::manifest::approval::{Decision, Record};
use crate::manifest::signers::{AllowedSigners, Refusal};
use crate::manifest::{Approvals, ApproverSet, GateTarget};
use crate::state::{LiveVersion, tags};

/// The move an approval must name.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The registry as modelsync prints it (with `#workspace=NAME`).
    pub registry: &'a str,
    pub model: &'a str,
    pub target: &'a GateTarget,
    pub version: &'a LiveVersion,
}

/// Where a record was found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Place {
    Tag(String),
    File(String),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Tag(key) => write!(f, "tag {key}"),
            Place::File(path) => write!(f, "file {path}"),
        }
    }
}

/// Why a record does not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotCounted {
    /// Not an approval record.
    Malformed(String),
    /// The signature does not verify against the approvers file: a key it
    /// does not list (never, or no longer), listed for another principal,
    /// or a statement altered after signing.
    Signature(Refusal),
    OtherRegistry(String),
    OtherModel(String),
    OtherTarget(GateTarget),
    OtherVersion(u64),
    OtherSource(String),
    /// The digest signed, and the version's now (`None`: it has none).
    OtherDigest {
        signed: String,
        now: Option<String>,
    },
    /// A valid statement by a principal the gate's `from` does not list.
    NotListed {
        principal: String,
        from: ApproverSet,
    },
    /// A later statement of the same principal replaces it.
    Superseded {
        principal: String,
        by: Decision,
        place: Place,
    },
    /// Its `expires` has passed (RFC 3339).
    Expired(String),
    /// Signed with a key whose approval already counted for another
    /// principal.
    SameKey {
        principal: String,
        other: String,
    },
}

/// What a gate found: whose approvals count, whose rejections block, and
/// every other record with why it does not count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Principals whose approvals count, in the order found.
    pub approved_by: Vec<String>,
    /// Principals whose rejections block, with their comments.
    pub rejected_by: Vec<(String, Option<String>)>,
    pub not_counted: Vec<(Place, NotCounted)>,
    /// Names in `from` that the approvers file does not list.
    pub unknown: Vec<String>,
}

/// A record that verified and names this move: who signed it, with which
/// key.
struct Valid<'a> {
    place: Place,
    record: &'a Record,
    fingerprint: String,
}

/// Tallies the approvals of `subject` — its version's tags, and the files
/// in `approvals` naming its model — against the approvers file, for a
/// gate that counts `from`, at `now_ms`.
pub fn tally(
    subject: &Subject<'_>,
    from: &ApproverSet,
    approvals: &Approvals,
    signers: &AllowedSigners,
    now_ms: i64,
) -> Tally {
    let mut out = Tally::default();
    if let ApproverSet::Listed(names) = from {
        out.unknown = names
            .iter()
            .filter(|n| !signers.lists(n))
            .cloned()
            .collect();
    }
    let tags = tag_records(subject.version);
    let files = approvals
        .files
        .iter()
        .filter(|(_, f)| f.record.statement.model == subject.model)
        .map(|(path, f)| (Place::File(path.clone()), Ok(&f.record)));
    let mut valid = Vec::new();
    for (place, record) in tags
        .iter()
        .map(|(p, r)| (p.clone(), r.as_ref()))
        .chain(files)
    {
        match record
            .map_err(|m| NotCounted::Malformed(m.clone()))
            .and_then(|r| judge(subject, from, signers, r).map(|fingerprint| (r, fingerprint)))
        {
            Ok((record, fingerprint)) => valid.push(Valid {
                place,
                record,
                fingerprint,
            }),
            Err(why) => out.not_counted.push((place, why)),
        }
    }
    let winners = latest(valid, &mut out.not_counted);
    count(&mut out, winners, now_ms);
    out
}

/// The version's approval tags, parsed.
fn tag_records(version: &LiveVersion) -> Vec<(Place, Result<Record, String>)> {
    version
        .tags
        .iter()
        .filter(|(k, _)| k.starts_with(tags::APPROVAL_PREFIX))
        .map(|(k, v)| {
            let record = Record::parse(v).map_err(|m| m.to_string());
            (Place::Tag(k.clone()), record)
        })
        .collect()
}

/// Whether one record verifies and names this move (and a principal the
/// gate counts): the key's fingerprint, or why not.
fn judge(
    subject: &Subject<'_>,
    from: &ApproverSet,
    signers: &AllowedSigners,
    record: &Record,
) -> Result<String, NotCounted> {
    let verified = record.verify(signers).map_err(NotCounted::Signature)?;
    let s = &record.statement;
    let v = subject.version;
    if s.registry != subject.registry {
        return Err(NotCounted::OtherRegistry(s.registry.clone()));
    }
    if s.model != subject.model {
        return Err(NotCounted::OtherModel(s.model.clone()));
    }
    if s.target != *subject.target {
        return Err(NotCounted::OtherTarget(s.target.clone()));
    }
    if s.version != v.version {
        return Err(NotCounted::OtherVersion(s.version));
    }
    if s.source != v.source {
        return Err(NotCounted::OtherSource(s.source.clone()));
    }
    let digest = v.tags.get(tags::DIGEST);
    if let Some(signed) = &s.digest
        && digest != Some(signed)
    {
        return Err(NotCounted::OtherDigest {
            signed: signed.clone(),
            now: digest.cloned(),
        });
    }
    if !from.admits(&s.principal) {
        return Err(NotCounted::NotListed {
            principal: s.principal.clone(),
            from: from.clone(),
        });
    }
    Ok(verified.fingerprint)
}

/// Each principal's latest statement (by `time`; a rejection wins a tie);
/// the others are superseded.
fn latest<'a>(valid: Vec<Valid<'a>>, not_counted: &mut Vec<(Place, NotCounted)>) -> Vec<Valid<'a>> {
    let mut by: BTreeMap<String, Vec<Valid<'a>>> = BTreeMap::new();
    for v in valid {
        by.entry(v.record.statement.principal.clone())
            .or_default()
            .push(v);
    }
    let mut winners = Vec::new();
    for (principal, mut list) in by {
        list.sort_by_key(|v| (v.record.statement.time_ms, v.record.statement.decision));
        let winner = list.pop().expect("one statement at least");
        for older in list {
            not_counted.push((
                older.place,
                NotCounted::Superseded {
                    principal: principal.clone(),
                    by: winner.record.statement.decision,
                    place: winner.place.clone(),
                },
            ));
        }
        winners.push(winner);
    }
    winners.sort_by(|a, b| a.place.cmp(&b.place));
    winners
}

/// Counts the winners: expired ones do not count, rejections block, each
/// key counts once.
fn count(out: &mut Tally, winners: Vec<Valid<'_>>, now_ms: i64) {
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    for w in winners {
        let s = &w.record.statement;
        if s.expires_ms <= now_ms {
            let at = clock::rfc3339_seconds(s.expires_ms);
            out.not_counted.push((w.place, NotCounted::Expired(at)));
            continue;
        }
        if s.decision == Decision::Reject {
            out.rejected_by
                .push((s.principal.clone(), s.comment.clone()));
            continue;
        }
        if let Some(other) = keys.get(&w.fingerprint) {
            let why = NotCounted::SameKey {
                principal: s.principal.clone(),
                other: other.clone(),
            };
            out.not_counted.push((w.place, why));
            continue;
        }
        keys.insert(w.fingerprint.clone(), s.principal.clone());
        out.approved_by.push(s.principal.clone());
    }
}

impl fmt::Display for NotCounted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotCounted::Malformed(why) => write!(f, "not an approval record ({why})"),
            NotCounted::Signature(Refusal::UnknownKey { fingerprint }) => write!(
                f,
                "signed by key {fingerprint}, which the approvers file does not list (never, or no longer)"
            ),
            NotCounted::Signature(Refusal::BadSignature { fingerprint }) => write!(
                f,
                "the signature does not verify: the statement was altered after key {fingerprint} signed it"
            ),
            NotCounted::Signature(refusal) => write!(f, "{refusal}"),
            NotCounted::OtherRegistry(r) => write!(f, "signed for registry {r}"),
            NotCounted::OtherModel(m) => write!(f, "signed for model {m}"),
            NotCounted::OtherTarget(t) => write!(f, "signed for {t}"),
            NotCounted::OtherVersion(n) => write!(f, "signed for version {n}"),
            NotCounted::OtherSource(s) => write!(f, "signed for source {s}"),
            NotCounted::OtherDigest {
                signed,
                now: Some(now),
            } => write!(f, "signed for digest {signed}, the version's is {now}"),
            NotCounted::OtherDigest { signed, now: None } => {
                write!(f, "signed for digest {signed}, the version records none")
            }
            NotCounted::NotListed { principal, from } => {
                write!(f, "by {principal}, who is not among {from}")
            }
            NotCounted::Superseded {
                principal,
                by,
                place,
            } => write!(
                f,
                "superseded by {principal}'s later {} ({place})",
                match by {
                    Decision::Approve => "approval",
                    Decision::Reject => "rejection",
                }
            ),
            NotCounted::Expired(at) => write!(f, "expired at {at}"),
            NotCounted::SameKey { principal, other } => write!(
                f,
                "by {principal} with the key that already counted for {other}"
            ),
        }
    }
}

impl Tally {
    /// The gate's outcome: `Ok` with what passed, or `Err` with why it is
    /// blocked; either way naming every record that does not count.
    pub fn outcome(&self, required: u32) -> Result<String, String> {
        let got = self.approved_by.len();
        let counted = match got {
            1 => "1 approval".to_string(),
            n => format!("{n} approvals"),
        };
        let mut parts = vec![match got {
            0 => format!("{counted}, {required} required"),
            _ => format!(
                "{counted}, {required} required: {}",
                self.approved_by.join(", ")
            ),
        }];
        for (who, comment) in &self.rejected_by {
            parts.insert(
                0,
                match comment {
                    Some(c) => format!("rejected by {who} ({c:?})"),
                    None => format!("rejected by {who}"),
                },
            );
        }
        if !self.unknown.is_empty() {
            parts.push(format!(
                "not in the approvers file: {}",
                self.unknown.join(", ")
            ));
        }
        for (place, why) in &self.not_counted {
            parts.push(format!("not counted: {place}: {why}"));
        }
        let text = parts.join("; ");
        if self.rejected_by.is_empty() && got >= required as usize {
            Ok(text)
        } else {
            Err(text)
        }
    }
}

#[cfg(test)]
mod tests;
