//! The promotions a model's audit tags record (`modelsync history` and the
//! daemon's `/models/NAME` page show them), each version's latest move
//! into a target with the verification recorded for it
//! (`modelsync.verified.<target>`, `state::verification`). Pure: tags in,
//! events out.

use serde::Serialize;

use super::LiveModel;
use super::tags;
use super::verification::{self, Record};

/// One promotion reconstructed from tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Promotion {
    /// RFC 3339 time of the move.
    pub at: String,
    /// Stage name or alias.
    pub target: String,
    pub version: u64,
    /// The version it replaced, when recorded.
    pub previous: Option<u64>,
    /// The principals whose signed approvals the move's gates counted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approved_by: Vec<String>,
    /// The revision recorded on the version (its latest move).
    pub revision: Option<String>,
    /// A rollback (`modelsync rollback`), not a move the manifests declared.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
    /// The move went through a window or a freeze by `--break-glass`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
    /// Who rolled back or broke the glass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Why, as they said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The verification recorded on the version for the target (on the
    /// newest promotion of the version into it: one record each).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Record>,
}

/// Every promotion the tags record, newest first.
pub fn promotions(model: &LiveModel) -> Vec<Promotion> {
    let mut events = Vec::new();
    for v in model.versions.values() {
        for (key, value) in &v.tags {
            let Some(target) = key.strip_prefix(tags::PROMOTED_AT_PREFIX) else {
                continue;
            };
            // One tag per move; older releases wrote `previous` and
            // `revision` as tags of their own.
            let stamp = tags::Stamp::parse(value);
            let previous = stamp.previous.or_else(|| {
                v.tags
                    .get(&format!("{}{target}", tags::PREVIOUS_PREFIX))
                    .and_then(|p| p.parse().ok())
            });
            events.push(Promotion {
                at: stamp.at,
                target: target.to_string(),
                version: v.version,
                previous,
                approved_by: stamp.approved_by,
                revision: stamp
                    .revision
                    .or_else(|| v.tags.get(tags::REVISION).cloned()),
                rollback: stamp.rollback,
                break_glass: stamp.break_glass,
                by: stamp.by,
                reason: stamp.reason,
                verification: verification::of(v, target),
            });
        }
    }
    events.sort_by(|a, b| {
        b.at.cmp(&a.at)
            .then(b.version.cmp(&a.version))
            .then(a.target.cmp(&b.target))
    });
    // A version's record is about its latest move into the target.
    let mut seen = std::collections::BTreeSet::new();
    for e in &mut events {
        if !seen.insert((e.version, e.target.clone())) {
            e.verification = None;
        }
    }
    events
}

/// The version that held `target` before `current` did: the `previous=`
/// of `current`'s audit stamp for `target` (or the `modelsync.previous.*`
/// tag older releases wrote). What a rollback goes back to by default.
pub fn previous_holder(model: &LiveModel, target: &str, current: u64) -> Option<u64> {
    let v = model.versions.get(&current)?;
    let stamp = v
        .tags
        .get(&format!("{}{target}", tags::PROMOTED_AT_PREFIX))
        .map(|s| tags::Stamp::parse(s));
    stamp.and_then(|s| s.previous).or_else(|| {
        v.tags
            .get(&format!("{}{target}", tags::PREVIOUS_PREFIX))
            .and_then(|p| p.parse().ok())
    })
}

/// The text line `modelsync history` prints for one promotion.
pub fn line(e: &Promotion) -> String {
    let mut line = format!("{}  {:<12} version {}", e.at, e.target, e.version);
    if let Some(p) = e.previous {
        line.push_str(&format!(" (replaced version {p})"));
    }
    if !e.approved_by.is_empty() {
        line.push_str(&format!("  approved by {}", e.approved_by.join(", ")));
    }
    if let Some(r) = &e.revision {
        line.push_str(&format!("  revision {r}"));
    }
    let kind = match (e.rollback, e.break_glass) {
        (true, true) => Some("rollback, break-glass"),
        (true, false) => Some("rollback"),
        (false, true) => Some("break-glass"),
        (false, false) => None,
    };
    if let Some(kind) = kind {
        line.push_str(&format!("  {kind}"));
    }
    if let Some(by) = &e.by {
        line.push_str(&format!(" by {by}"));
    }
    if let Some(why) = &e.reason {
        line.push_str(&format!(": {why:?}"));
    }
    if let Some(r) = &e.verification {
        line.push_str(&format!("\n    verification: {}", r.describe()));
        for c in &r.checks {
            let mark = if c.ok { "ok" } else { "failing" };
            line.push_str(&format!("\n      {}: {} ({mark})", c.check, c.observed));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::LiveVersion;

    #[test]
    fn a_promotion_carries_the_verification_of_its_move_and_says_it() {
        let mut m = LiveModel::default();
        let mut v = LiveVersion {
            version: 7,
            ..LiveVersion::default()
        };
        v.tags.insert(
            "modelsync.promoted-at.Staging".into(),
            "2026-11-27T15:02:00Z previous=6".into(),
        );
        v.tags.insert(
            "modelsync.verified.Staging".into(),
            r#"{"state":"failed","since":"2026-11-27T15:02:10Z","at":"2026-11-27T15:17:10Z","finished":"2026-11-27T15:17:10Z","rounds":91,"checks":[{"check":"http POST http://scoring/invocations","ok":false,"observed":"status 500, expected 200"}],"reason":"http POST http://scoring/invocations: status 500, expected 200","then":"rolled back to version 6, held"}"#.into(),
        );
        // Production has no record: its promotion carries none.
        v.tags.insert(
            "modelsync.promoted-at.Production".into(),
            "2026-11-26T10:00:00Z".into(),
        );
        m.versions.insert(7, v);
        let events = promotions(&m);
        assert_eq!(events.len(), 2);
        let r = events[0].verification.as_ref().expect("Staging's record");
        assert_eq!(r.state, verification::State::Failed);
        assert_eq!(events[1].verification, None);
        let text = line(&events[0]);
        assert!(
            text.contains(
                "\n    verification: failed at 2026-11-27T15:17:10Z: http POST http://scoring/invocations: status 500, expected 200 (rolled back to version 6, held)"
            ) && text.contains("\n      http POST http://scoring/invocations: status 500, expected 200 (failing)"),
            "{text}"
        );
        let json = serde_json::to_value(&events[0]).expect("json");
        assert_eq!(json["verification"]["state"], "failed", "{json}");
        assert_eq!(
            json["verification"]["then"],
            "rolled back to version 6, held"
        );
    }
}
