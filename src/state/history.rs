//! The promotions a model's audit tags record (`modelsync history` and the
//! daemon's `/models/NAME` page show them). Pure: tags in, events out.

use serde::Serialize;

use super::LiveModel;
use super::tags;

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
            });
        }
    }
    events.sort_by(|a, b| {
        b.at.cmp(&a.at)
            .then(b.version.cmp(&a.version))
            .then(a.target.cmp(&b.target))
    });
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
    line
}
