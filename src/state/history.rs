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
    line
}
